import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertDataset } from './convert.ts';
import { InvalidDatasetError, InvalidExampleError } from './errors.ts';
import { readExamples } from './read-examples.ts';

const example = (name: string) => new URL(`../../examples/data/${name}`, import.meta.url);
const broken = (name: string) => new URL(`../../examples/data/broken/${name}`, import.meta.url);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodeai-convert-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const readJsonl = async (p: string) => (await readFile(p, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l));

describe('readExamples', () => {
  it('yields normalized examples with their line numbers', async () => {
    const out = [];
    for await (const r of readExamples(example('customer-support.jsonl'))) out.push(r);
    expect(out).toHaveLength(62);
    expect(out[0]).toMatchObject({ line: 1, format: 'chat', example: { messages: [{ role: 'system' }, { role: 'user', content: 'How do I reset my password?' }, { role: 'assistant' }] } });
    expect(out.at(-1)?.line).toBe(62);
  });

  it('throws at the first error by default, naming line and code', async () => {
    const seen: number[] = [];
    try {
      for await (const r of readExamples(broken('cookbook-errors.jsonl'))) seen.push(r.line);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidExampleError);
      expect(err).toMatchObject({ code: 'invalid_example', issueCode: 'data_type', line: 2 });
      expect((err as Error).message).toBe('line 2: Each example must be a JSON object, found a number. Write each example as one JSON object: {"messages": [...]}');
    }
    expect(seen).toEqual([1]);
  });

  it('skips bad examples on request and reports them', async () => {
    const codes: string[] = [];
    const lines: number[] = [];
    for await (const r of readExamples(broken('cookbook-errors.jsonl'), { onInvalid: 'skip', onIssue: (i) => codes.push(i.code) })) lines.push(r.line);
    expect(lines).toEqual([1, 13, 14, 15]);
    expect(codes).toContain('unrecognized_role');
  });
});

describe('convertDataset', () => {
  it('writes train.jsonl and validation.jsonl as the check splits them, reproducibly', async () => {
    const out = join(dir, 'cs');
    const r = await convertDataset(example('customer-support.jsonl'), { outDir: out, seed: 7 });
    expect(r.train).toEqual({ path: join(out, 'train.jsonl'), examples: 50 });
    expect(r.validation).toEqual({ path: join(out, 'validation.jsonl'), examples: 12 });
    expect(await readdir(out)).toEqual(['train.jsonl', 'validation.jsonl']); // no temp files left
    const train = await readJsonl(r.train.path);
    const validation = await readJsonl(r.validation!.path);
    expect(train).toHaveLength(50);
    const again = await convertDataset(example('customer-support.jsonl'), { outDir: join(dir, 'cs2'), seed: 7 });
    expect(await readJsonl(again.validation!.path)).toEqual(validation);
    const other = await convertDataset(example('customer-support.jsonl'), { outDir: join(dir, 'cs3'), seed: 8 });
    expect(await readJsonl(other.validation!.path)).not.toEqual(validation);
  });

  it('normalizes completion CSV rows to chat lines', async () => {
    const csv = join(dir, 'qa.csv');
    await writeFile(csv, 'prompt,completion\n' + Array.from({ length: 10 }, (_, i) => `"Q${i}, please","A${i}"`).join('\n') + '\n');
    const r = await convertDataset(csv, { outDir: join(dir, 'qa'), validationSplit: 0 });
    expect(r.validation).toBeNull();
    const lines = await readJsonl(r.train.path);
    expect(lines[0]).toEqual({ messages: [{ role: 'user', content: 'Q0, please' }, { role: 'assistant', content: 'A0' }] });
    expect(await readdir(join(dir, 'qa'))).toEqual(['train.jsonl']);
  });

  it('writes nothing when the file has errors', async () => {
    const out = join(dir, 'bad');
    for (const name of ['cookbook-errors.jsonl', 'empty.jsonl', 'binary.jsonl', 'invalid-utf8.jsonl']) {
      await expect(convertDataset(broken(name), { outDir: out })).rejects.toBeInstanceOf(InvalidDatasetError);
    }
    await expect(readdir(out)).rejects.toMatchObject({ code: 'ENOENT' });
    try {
      await convertDataset(broken('cookbook-errors.jsonl'), { outDir: out });
    } catch (err) {
      expect(err).toMatchObject({ code: 'invalid_dataset', message: "The dataset has 10 errors. Run 'nodeai data check FILE' to see them, fix the file, and try again" });
      expect((err as InvalidDatasetError<{ error_count: number }>).report.error_count).toBe(10);
    }
  });

  it('removes its temporary files when the source fails half way', async () => {
    const out = join(dir, 'half');
    let opened = 0;
    const good = (i: number) => JSON.stringify({ messages: [{ role: 'user', content: `q${i}` }, { role: 'assistant', content: `a${i}` }] }) + '\n';
    const source = {
      name: 'flaky.jsonl',
      async *open() {
        opened++;
        for (let i = 0; i < 20; i++) {
          if (opened === 2 && i === 12) throw new Error('disk gone');
          yield Buffer.from(good(i));
        }
      },
    };
    await expect(convertDataset(source, { outDir: out })).rejects.toThrow('disk gone');
    expect(await readdir(out)).toEqual([]);
  });
});
