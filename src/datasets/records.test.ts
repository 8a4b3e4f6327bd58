import { describe, expect, it } from 'vitest';
import { readRecords, type RecordItem } from './records.ts';
import type { FileType } from './types.ts';

async function* pieces(text: string | Buffer, size: number): AsyncGenerator<Uint8Array> {
  const bytes = Buffer.isBuffer(text) ? text : Buffer.from(text);
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

async function read(text: string | Buffer, type: FileType, size = 1 << 20, options = {}): Promise<RecordItem[]> {
  const out: RecordItem[] = [];
  for await (const batch of readRecords(pieces(text, size), type, options)) out.push(...batch);
  return out;
}

const simple = (items: RecordItem[]) => items.map((i) => (i.issue ? [i.line, i.issue.code] : [i.line, i.value]));

describe('readRecords: JSONL', () => {
  it('parses each line and names the bad ones', async () => {
    const items = await read('{"a":1}\n{"a":\n[1,2]\n', 'jsonl');
    expect(simple(items)).toEqual([
      [1, { a: 1 }],
      [2, 'invalid_json'],
      [3, [1, 2]],
    ]);
    expect(items[1].issue?.message).toMatch(/^Line is not valid JSON \(/);
  });
});

describe('readRecords: JSON array', () => {
  const text = '\uFEFF[\n  {"q": "a ] tricky } \\" string [", "n": [1, {"x": 2}]},\n  42,\n  "s",\n\n  {"last": true}\n]\n';

  it('streams elements with the line each starts on, at every chunk size', async () => {
    for (const size of [1, 2, 3, 7, 1 << 20]) {
      expect(simple(await read(text, 'json', size)), `chunk ${size}`).toEqual([
        [2, { q: 'a ] tricky } " string [', n: [1, { x: 2 }] }],
        [3, 42],
        [4, 's'],
        [6, { last: true }],
      ]);
    }
  });

  it('reads an empty array as no records', async () => {
    expect(await read(' [ ] ', 'json')).toEqual([]);
  });

  it('reports an element that is not JSON and goes on to the next', async () => {
    expect(simple(await read('[{"a": tru}, {"b": 1}]', 'json'))).toEqual([
      [1, 'invalid_json'],
      [1, { b: 1 }],
    ]);
  });

  it('stops with a clear error on an unclosed array, a missing comma or text after ]', async () => {
    const unclosed = await read('[\n{"a":1},\n{"b":2}\n', 'json');
    expect(simple(unclosed)).toEqual([
      [2, { a: 1 }],
      [3, { b: 2 }],
      [4, 'invalid_json'],
    ]);
    expect(unclosed[2]).toMatchObject({ fatal: true, issue: { message: 'The JSON array is not closed: the file ends before its ]' } });
    const noComma = await read('[{"a":1}\n{"b":2}]', 'json');
    expect(noComma.at(-1)).toMatchObject({ line: 2, fatal: true, issue: { message: "Expected ',' or ']' after array element 1" } });
    const after = await read('[{"a":1}] x', 'json');
    expect(after.at(-1)?.issue?.message).toBe('Unexpected text after the closing ] of the array');
  });

  it('skips an element over the size limit without keeping it', async () => {
    const big = `[{"a":"${'x'.repeat(5000)}"},{"b":1}]`;
    for (const size of [64, 1 << 20]) expect(simple(await read(big, 'json', size, { maxLineBytes: 1000 }))).toEqual([
      [1, 'line_too_long'],
      [1, { b: 1 }],
    ]);
  });
});

describe('readRecords: CSV and TSV', () => {
  it('maps prompt/completion columns, with quoted commas and newlines', async () => {
    const csv = 'Prompt,Completion\n"Hello, there","Hi!"\n"Two\nlines",ok\n';
    expect(simple(await read(csv, 'csv', 5))).toEqual([
      [2, { prompt: 'Hello, there', completion: 'Hi!' }],
      [4, { prompt: 'Two\nlines', completion: 'ok' }],
    ]);
  });

  it('maps system/user/assistant columns to chat, leaving out an empty system cell', async () => {
    const tsv = 'system\tuser\tassistant\nBe brief.\tHi\tHello\n\tBye\tSee you\n';
    expect(simple(await read(tsv, 'tsv'))).toEqual([
      [2, { messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] }],
      [3, { messages: [{ role: 'user', content: 'Bye' }, { role: 'assistant', content: 'See you' }] }],
    ]);
  });

  it('uses an explicit column mapping', async () => {
    const csv = 'question,answer\nWhat is NodeAI?,A workflow tool.\n';
    expect(simple(await read(csv, 'csv', 1 << 20, { csv: { columns: { user: 'Question', assistant: 'Answer' } } }))).toEqual([
      [2, { messages: [{ role: 'user', content: 'What is NodeAI?' }, { role: 'assistant', content: 'A workflow tool.' }] }],
    ]);
  });

  it('rejects a header it cannot map, and a broken quote, with the line', async () => {
    const unknown = await read('question,answer\na,b\n', 'csv');
    expect(unknown).toHaveLength(1);
    expect(unknown[0]).toMatchObject({ line: 1, fatal: true, issue: { code: 'unknown_format' } });
    expect(unknown[0].issue?.message).toBe("Training example must have 'messages' or 'prompt'/'completion': the CSV header has columns 'question', 'answer'");
    const broken = await read('prompt,completion\na,b\n"c,d\n', 'csv');
    expect(broken.at(-1)).toMatchObject({ line: 3, fatal: true, issue: { code: 'invalid_csv' } });
    expect(broken.at(-1)?.issue?.message).toMatch(/^The CSV cannot be read: Quote Not Closed/);
  });

  it('stops on invalid UTF-8 instead of inventing replacement characters', async () => {
    const bytes = Buffer.concat([Buffer.from('prompt,completion\na,b\n'), Buffer.from([0x63, 0xc3, 0x28, 0x2c, 0x64, 0x0a])]);
    const items = await read(bytes, 'csv');
    expect(items.at(-1)).toMatchObject({ fatal: true, issue: { code: 'invalid_utf8' } });
  });
});
