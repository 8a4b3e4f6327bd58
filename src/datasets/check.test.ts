import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDataset } from './check.ts';
import { DatasetReadError, InvalidArgumentError, UnknownModelError } from './errors.ts';

const broken = (name: string) => new URL(`../../examples/data/broken/${name}`, import.meta.url);
const example = (name: string) => new URL(`../../examples/data/${name}`, import.meta.url);

const line = (u: string, a: string, sys = true) =>
  JSON.stringify({ messages: [...(sys ? [{ role: 'system', content: 'Be brief.' }] : []), { role: 'user', content: u }, { role: 'assistant', content: a }] });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodeai-check-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, text: string | Buffer) {
  const p = join(dir, name);
  await writeFile(p, text);
  return p;
}

describe('checkDataset on the bundled examples', () => {
  it('passes the customer-support set cleanly on the local default model', async () => {
    const r = await checkDataset(example('customer-support.jsonl'));
    expect(r).toMatchObject({ format: 'chat', file_type: 'jsonl', examples: 62, valid_examples: 62, trainable: true, error_count: 0, warning_count: 0 });
    expect(r.tokens).toMatchObject({ model: 'nodeai-tiny', tokenizer: 'bytes', limit: 256, over_limit: 0 });
    expect(r.split).toEqual({ train: 50, validation: 12, seed: 42, validation_split: 0.2 });
    expect(r.cost).toMatchObject({ model: 'nodeai-tiny', epochs: 3, usd: 0 });
    expect(r.messages_per_example).toMatchObject({ min: 3, max: 5 });
  });

  it('passes the legal Q&A set on gpt-4o-mini with a cost in dollars', async () => {
    const r = await checkDataset(example('legal-qa.jsonl'), { model: 'gpt-4o-mini', now: new Date('2026-11-25') });
    expect(r).toMatchObject({ examples: 57, valid_examples: 57, trainable: true, error_count: 0, warning_count: 0 });
    expect(r.cost?.epochs).toBe(3);
    expect(r.cost?.usd).toBeCloseTo((r.cost!.billed_tokens / 1e6) * 3, 4);
    expect(r.tokens?.per_example?.max).toBeLessThan(300);
  });

  it('warns when the legal answers are too long for the 256-token local model', async () => {
    const r = await checkDataset(example('legal-qa.jsonl'));
    expect(r.trainable).toBe(true);
    expect(r.issue_counts.over_token_limit).toBe(r.tokens?.over_limit);
    expect(r.tokens?.over_limit).toBeGreaterThan(40);
    expect(r.warnings[0].message).toMatch(/^Example has \d+ tokens, over nodeai-tiny's limit of 256; it will be truncated$/);
  });
});

describe('checkDataset on broken files', () => {
  it('names every cookbook error with its line and path', async () => {
    const r = await checkDataset(broken('cookbook-errors.jsonl'));
    expect(r.trainable).toBe(false);
    expect(r.errors.map((e) => [e.line, e.code, e.path])).toEqual([
      [2, 'data_type', null],
      [3, 'missing_messages_list', 'messages'],
      [4, 'message_missing_key', 'messages[1].role'],
      [5, 'message_unrecognized_key', 'messages[1].mood'],
      [6, 'unrecognized_role', 'messages[1].role'],
      [7, 'missing_content', 'messages[1].content'],
      [8, 'example_missing_assistant_message', 'messages'],
      [9, 'invalid_json', null],
      [10, 'role_order', 'messages[1].role'],
      [11, 'invalid_weight', 'messages[2].weight'],
    ]);
    expect(r.warnings.map((w) => [w.line, w.code, w.message])).toEqual([
      [15, 'duplicate_example', 'Same example as line 1'],
      [null, 'few_examples', 'The file has 14 examples; results usually improve clearly from 50 on'],
    ]);
    expect(r).toMatchObject({ examples: 14, valid_examples: 4, error_count: 10, warning_count: 2 });
  });

  it('says "No training data provided" for an empty file and a file of blank lines', async () => {
    for (const name of ['empty.jsonl', 'blank-lines.jsonl']) {
      const r = await checkDataset(broken(name));
      expect(r.errors).toEqual([
        {
          severity: 'error',
          code: 'no_training_data',
          line: null,
          path: null,
          message: 'No training data provided',
          hint: 'Add at least 10 examples, one JSON object per line, e.g. {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}',
        },
      ]);
      expect(r).toMatchObject({ examples: 0, trainable: false, tokens: { total: 0, per_example: null }, split: { train: 0, validation: 0 } });
    }
  });

  it.each([
    ['unknown-format.jsonl', [[1, 'unknown_format'], [2, 'unknown_format'], [null, 'too_few_examples']]],
    ['mixed-formats.jsonl', [[4, 'mixed_formats'], [null, 'too_few_examples']]],
    ['invalid-utf8.jsonl', [[2, 'invalid_utf8'], [null, 'too_few_examples']]],
    ['binary.jsonl', [[1, 'binary_file']]],
    ['too-few.jsonl', [[null, 'too_few_examples']]],
    ['unclosed-array.json', [[4, 'invalid_json'], [null, 'too_few_examples']]],
    ['bad-columns.csv', [[1, 'unknown_format']]],
    ['bad-dpo.jsonl', [[2, 'invalid_dpo'], [3, 'invalid_dpo'], [4, 'invalid_dpo'], [4, 'invalid_dpo'], [null, 'too_few_examples'], [null, 'unsupported_method']]],
  ])('%s', async (name, expected) => {
    const r = await checkDataset(broken(name));
    expect(r.trainable).toBe(false);
    expect(r.errors.map((e) => [e.line, e.code])).toEqual(expected);
  });

  it('reports the unclosed array after the examples it could read', async () => {
    const r = await checkDataset(broken('unclosed-array.json'));
    expect(r).toMatchObject({ file_type: 'json', examples: 2, valid_examples: 2 });
    expect(r.errors[0].message).toBe('The JSON array is not closed: the file ends before its ]');
  });
});

describe('checkDataset: formats and options', () => {
  it('reads a JSON array and a CSV the same way as JSONL', async () => {
    const rows = Array.from({ length: 12 }, (_, i) => ({ prompt: `Question ${i}?`, completion: `Answer ${i}.` }));
    const json = await checkDataset(await file('qa.json', JSON.stringify(rows, null, 2)));
    expect(json).toMatchObject({ file_type: 'json', format: 'completion', examples: 12, valid_examples: 12, error_count: 0 });
    expect(json.warnings.map((w) => w.code)).toEqual(['few_examples']);
    const csv = await checkDataset(await file('qa.csv', 'prompt,completion\n' + rows.map((r) => `"${r.prompt}","${r.completion}"`).join('\r\n')));
    expect(csv).toMatchObject({ file_type: 'csv', format: 'completion', examples: 12, valid_examples: 12, error_count: 0 });
    expect(csv.tokens?.total).toBe(json.tokens?.total);
  });

  it('reads a .txt of JSONL by looking at its first byte', async () => {
    const r = await checkDataset(await file('data.txt', Array.from({ length: 10 }, (_, i) => line(`q${i}`, `a${i}`)).join('\n')));
    expect(r).toMatchObject({ file_type: 'jsonl', valid_examples: 10 });
  });

  it('counts all issues but keeps only the first maxIssues in detail', async () => {
    const text = Array.from({ length: 5000 }, (_, i) => (i % 2 ? 'oops' : line(`q${i}`, `a${i}`))).join('\n');
    const r = await checkDataset(await file('many.jsonl', text), { maxIssues: 25 });
    expect(r.error_count).toBe(2500);
    expect(r.errors).toHaveLength(25);
    expect(r.errors[24].line).toBe(50);
    expect(r.issue_counts).toEqual({ invalid_json: 2500 });
  });

  it('flags examples over the token limit and bills them at the limit', async () => {
    const long = line('x'.repeat(300), 'y');
    const lines = [long, ...Array.from({ length: 9 }, (_, i) => line(`q${i}`, `a${i}`))];
    const r = await checkDataset(await file('long.jsonl', lines.join('\n')), { validationSplit: 0, epochs: 2 });
    expect(r.tokens?.over_limit).toBe(1);
    expect(r.warnings.find((w) => w.code === 'over_token_limit')).toMatchObject({ line: 1, message: "Example has 341 tokens, over nodeai-tiny's limit of 256; it will be truncated" });
    const small = r.tokens!.total - 341; // 300 + 1 + 9 content bytes, 19 role bytes, 4 per message
    expect(r.cost).toEqual({ model: 'nodeai-tiny', epochs: 2, billed_tokens: (256 + small) * 2, usd: 0 });
  });

  it('skips tokens entirely when asked', async () => {
    const r = await checkDataset(example('customer-support.jsonl'), { countTokens: false });
    expect(r.tokens).toBeNull();
    expect(r.cost).toBeNull();
    expect(r.split.train).toBe(50);
  });

  it('warns after the OpenAI dates and refuses DPO on a model without it', async () => {
    const after = await checkDataset(example('legal-qa.jsonl'), { model: 'gpt-4.1-nano', now: new Date('2027-02-01') });
    expect(after.warnings.map((w) => [w.code, w.message])).toEqual([['fine_tuning_ended', 'OpenAI stopped accepting new fine-tuning jobs on 2027-01-06']]);
    const shut = await checkDataset(example('legal-qa.jsonl'), { model: 'gpt-4o', now: new Date('2027-01-20') });
    expect(shut.warnings.map((w) => w.code)).toEqual(['model_shutdown']);
    expect(shut.warnings[0].message).toBe('gpt-4o-2024-08-06 was shut down on 2027-01-14; it and fine-tunes built on it no longer serve');
  });

  it('accepts DPO data on a model that trains DPO', async () => {
    const pair = (i: number) => JSON.stringify({ input: { messages: [{ role: 'system', content: 'Be kind.' }, { role: 'user', content: `Q${i}` }] }, preferred_output: [{ role: 'assistant', content: `Good ${i}` }], non_preferred_output: [{ role: 'assistant', content: `Bad ${i}` }] });
    const r = await checkDataset(await file('dpo.jsonl', Array.from({ length: 10 }, (_, i) => pair(i)).join('\n')), { model: 'gpt-4.1-mini', now: new Date('2026-11-25') });
    expect(r).toMatchObject({ format: 'dpo', valid_examples: 10, error_count: 0 });
  });

  it('reports progress and stops when aborted', async () => {
    const seen: number[] = [];
    await checkDataset(example('customer-support.jsonl'), { onProgress: (p) => seen.push(p.bytes) });
    expect(seen.at(-1)).toBeGreaterThan(17_000);
    const ac = new AbortController();
    ac.abort(new Error('stop'));
    await expect(checkDataset(example('customer-support.jsonl'), { signal: ac.signal })).rejects.toThrow('stop');
  });

  it('throws typed errors for a missing file, a directory, an unknown model and bad options', async () => {
    await expect(checkDataset(join(dir, 'nope.jsonl'))).rejects.toMatchObject({ code: 'file_not_found', message: `No such file: ${join(dir, 'nope.jsonl')}. Check the path and try again` });
    await expect(checkDataset(dir)).rejects.toBeInstanceOf(DatasetReadError);
    await expect(checkDataset(example('customer-support.jsonl'), { model: 'gpt-5' })).rejects.toBeInstanceOf(UnknownModelError);
    await expect(checkDataset(example('customer-support.jsonl'), { validationSplit: 2 })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(checkDataset(example('customer-support.jsonl'), { epochs: 0 })).rejects.toMatchObject({ code: 'invalid_argument' });
  });

  it('finds duplicates in 200k streamed examples in bounded memory', async () => {
    const n = 200_000;
    async function* gen() {
      let batch = '';
      for (let i = 0; i < n; i++) {
        batch += line(`question ${i % 150_000}`, `answer ${i % 150_000}`) + '\n';
        if (batch.length > 1 << 20) {
          yield Buffer.from(batch);
          batch = '';
        }
      }
      yield Buffer.from(batch);
    }
    const r = await checkDataset({ name: 'generated.jsonl', open: gen }, { countTokens: false, maxIssues: 5 });
    expect(r).toMatchObject({ examples: n, valid_examples: n, warning_count: 50_000, error_count: 0 });
    expect(r.warnings[0]).toMatchObject({ line: 150_001, message: 'Same example as line 1' });
  });
});
