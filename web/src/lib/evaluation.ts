// The evaluation report of a fine-tuned model (GET /api/v1/models/:id/evaluation) as the compare
// view shows it: one summary line per model, and one row per validation example with its prompt,
// the expected answer and each model's answer and match marks. The shape is the server's
// EvaluationReport (src/trainer/evaluation-report.ts), restated here because the web build does
// not import from src/.

export interface EvaluationSummary {
  loss: number | null;
  perplexity: number | null;
  exact_match: number;
  contains_match: number;
}

export interface EvaluationExample {
  messages: Array<{ role: string; content: string }>;
  expected: string;
  answers: Record<string, string>;
  exact: Record<string, boolean>;
  contains?: Record<string, boolean>;
}

export interface EvaluationReport {
  model?: string;
  /** The base model first when base and fine-tuned were compared. */
  models: string[];
  summary: Record<string, EvaluationSummary>;
  examples: EvaluationExample[];
}

export interface SummaryRow {
  model: string;
  loss: string;
  perplexity: string;
  exact: string;
  contains: string;
}

export interface ExampleRow {
  /** The index in the report, stable across filtering. */
  index: number;
  /** What the model was asked: the last user message. */
  prompt: string;
  /** Messages before it (a system prompt, earlier turns), said in the row, not shown in full. */
  context: number;
  expected: string;
  answers: Array<{ model: string; text: string; exact: boolean; contains: boolean }>;
}

/** Which examples to list: all, those where the models' exact matches differ, or where the last model misses. */
export type ExampleFilter = 'all' | 'changed' | 'missed';

const percent = (share: number) => `${Math.round(share * 1000) / 10}%`;
const fixed = (n: number | null, digits: number) => (n === null || !Number.isFinite(n) ? '–' : n.toFixed(digits));

export function summaryRows(report: EvaluationReport): SummaryRow[] {
  return report.models.map((model) => {
    const s = report.summary[model];
    return s
      ? { model, loss: fixed(s.loss, 3), perplexity: fixed(s.perplexity, 2), exact: percent(s.exact_match), contains: percent(s.contains_match) }
      : { model, loss: '–', perplexity: '–', exact: '–', contains: '–' };
  });
}

export function exampleRows(report: EvaluationReport, filter: ExampleFilter = 'all', text = ''): ExampleRow[] {
  const needle = text.trim().toLowerCase();
  const last = report.models[report.models.length - 1];
  const rows: ExampleRow[] = [];
  report.examples.forEach((e, index) => {
    const marks = report.models.map((m) => e.exact[m] === true);
    if (filter === 'changed' && marks.every((m) => m === marks[0])) return;
    if (filter === 'missed' && e.exact[last] === true) return;
    let promptAt = -1;
    e.messages.forEach((m, i) => m.role === 'user' && (promptAt = i));
    const row: ExampleRow = {
      index,
      prompt: promptAt >= 0 ? e.messages[promptAt].content : (e.messages[e.messages.length - 1]?.content ?? ''),
      context: Math.max(0, promptAt),
      expected: e.expected,
      answers: report.models.map((model) => ({ model, text: e.answers[model] ?? '', exact: e.exact[model] === true, contains: e.contains?.[model] === true })),
    };
    if (needle && ![row.prompt, row.expected, ...row.answers.map((a) => a.text)].some((t) => t.toLowerCase().includes(needle))) return;
    rows.push(row);
  });
  return rows;
}
