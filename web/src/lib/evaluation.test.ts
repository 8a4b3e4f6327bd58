import { describe, expect, it } from 'vitest';
import { exampleRows, summaryRows, type EvaluationReport } from './evaluation.ts';

const BASE = 'nodeai-tiny';
const TUNED = 'ft:nodeai-tiny:faq:abc';
const report: EvaluationReport = {
  models: [BASE, TUNED],
  summary: {
    [BASE]: { loss: 4.5123, perplexity: 91.11, exact_match: 0, contains_match: 1 / 3 },
    [TUNED]: { loss: 0.2, perplexity: 1.2214, exact_match: 2 / 3, contains_match: 2 / 3 },
  },
  examples: [
    {
      messages: [
        { role: 'system', content: 'You are Lumen support.' },
        { role: 'user', content: 'How do I reset my password?' },
      ],
      expected: 'Tap Forgot password.',
      answers: { [BASE]: 'I do not know', [TUNED]: 'Tap Forgot password.' },
      exact: { [BASE]: false, [TUNED]: true },
      contains: { [BASE]: false, [TUNED]: true },
    },
    {
      messages: [{ role: 'user', content: 'Opening hours?' }],
      expected: '9 to 5.',
      answers: { [BASE]: 'We are open 9 to 5.', [TUNED]: '9 to 6.' },
      exact: { [BASE]: false, [TUNED]: false },
      contains: { [BASE]: true, [TUNED]: false },
    },
    {
      messages: [{ role: 'user', content: 'Refunds?' }],
      expected: 'Within 30 days.',
      answers: { [BASE]: 'Yes', [TUNED]: 'Within 30 days.' },
      exact: { [BASE]: false, [TUNED]: true },
    },
  ],
};

describe('the evaluation report in the compare view', () => {
  it('sums up each model in the report order, losses and shares as a person reads them', () => {
    expect(summaryRows(report)).toEqual([
      { model: BASE, loss: '4.512', perplexity: '91.11', exact: '0%', contains: '33.3%' },
      { model: TUNED, loss: '0.200', perplexity: '1.22', exact: '66.7%', contains: '66.7%' },
    ]);
    // A remote model has no loss; a model missing from the summary shows dashes, not a crash.
    const remote = summaryRows({ ...report, models: [BASE, 'gpt-x'], summary: { [BASE]: { ...report.summary[BASE], loss: null, perplexity: null } } });
    expect(remote[0]).toMatchObject({ loss: '–', perplexity: '–', exact: '0%' });
    expect(remote[1]).toEqual({ model: 'gpt-x', loss: '–', perplexity: '–', exact: '–', contains: '–' });
  });

  it('lists each example with its last user message as the prompt and every answer with its marks', () => {
    const rows = exampleRows(report);
    expect(rows).toHaveLength(3);
    expect(rows[0]).toEqual({
      index: 0,
      prompt: 'How do I reset my password?',
      context: 1,
      expected: 'Tap Forgot password.',
      answers: [
        { model: BASE, text: 'I do not know', exact: false, contains: false },
        { model: TUNED, text: 'Tap Forgot password.', exact: true, contains: true },
      ],
    });
    expect(rows[2].answers[1].contains).toBe(false); // no contains marks in the report: none shown
  });

  it('filters to the examples fine-tuning changed, the ones the last model misses, or by text', () => {
    expect(exampleRows(report, 'changed').map((r) => r.index)).toEqual([0, 2]);
    expect(exampleRows(report, 'missed').map((r) => r.index)).toEqual([1]);
    expect(exampleRows(report, 'all', 'OPEN 9').map((r) => r.index)).toEqual([1]);
    expect(exampleRows(report, 'changed', 'refund').map((r) => r.index)).toEqual([2]);
  });
});
