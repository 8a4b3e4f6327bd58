import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run } from './data.ts';
import { main } from './main.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const exec = promisify(execFile);

async function nodeai(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, ['bin/nodeai.js', ...args], { cwd: root, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Runs the command in-process, capturing what it prints. */
async function call(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((s: string) => void out.push(s));
  const error = vi.spyOn(console, 'error').mockImplementation((s: string) => void err.push(s));
  try {
    const code = await main(['data', ...args]);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodeai-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('nodeai data (real process)', () => {
  it("runs the README's command: exit 0 and a clear verdict", async () => {
    const r = await nodeai('data', 'check', 'examples/data/customer-support.jsonl');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Tokens (nodeai-tiny · bytes tokenizer · limit 256 per example)');
    expect(r.stdout).toMatch(/^ {2}histogram {5}\d+ [▁▂▃▄▅▆▇█ ]+ \d+ tokens \(\d+ bins of \d+\)$/m);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('✓ Ready to train: 62 examples, no errors, 0 warnings.');
    expect(r.stderr).toBe('');
  });

  it('prints one JSON object with --json and exits 1 on errors', async () => {
    const r = await nodeai('data', 'check', 'examples/data/broken/cookbook-errors.jsonl', '--json', '--model', 'gpt-4o-mini', '--epochs', '4', '--seed', '3', '--validation-split', '0.25');
    expect(r.code).toBe(1);
    const j = JSON.parse(r.stdout);
    expect(Object.keys(j)).toEqual(expect.arrayContaining(['format', 'examples', 'valid_examples', 'errors', 'warnings', 'tokens', 'split', 'cost']));
    expect(j).toMatchObject({ format: 'chat', examples: 14, valid_examples: 4, split: { train: 3, validation: 1, seed: 3 }, cost: { model: 'gpt-4o-mini-2024-07-18', epochs: 4 } });
    expect(j.errors[0]).toEqual({ severity: 'error', code: 'data_type', line: 2, path: null, message: 'Each example must be a JSON object, found a number', hint: 'Write each example as one JSON object: {"messages": [...]}' });
    expect(Object.keys(j.tokens)).toEqual(['model', 'tokenizer', 'limit', 'total', 'per_example', 'per_example_histogram', 'assistant_per_example', 'over_limit']);
    expect(Object.keys(j.tokens.per_example)).toEqual(['min', 'max', 'mean', 'median', 'p10', 'p90']);
    expect(Object.keys(j.cost)).toEqual(['model', 'epochs', 'billed_tokens', 'usd']);
  });

  it('exits 2 on a usage error, with the reason on stderr', async () => {
    const r = await nodeai('data', 'check', 'examples/data/customer-support.jsonl', '--epochs', 'many');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("nodeai data: --epochs must be a whole number from 1 to 50 or 'auto', got 'many'");
    expect(r.stdout).toBe('');
  });

  it('converts, then refuses to convert a broken file and writes nothing', async () => {
    const out = join(dir, 'out');
    const ok = await nodeai('data', 'convert', 'examples/data/legal-qa.jsonl', '--out', out, '--validation-split', '0.1', '--seed', '5');
    expect(ok.code).toBe(0);
    expect(ok.stdout.trim()).toBe(`Wrote 51 examples to ${join(out, 'train.jsonl')} and 6 to ${join(out, 'validation.jsonl')}.`);
    expect((await readFile(join(out, 'validation.jsonl'), 'utf8')).trimEnd().split('\n')).toHaveLength(6);
    const bad = join(dir, 'bad');
    const r = await nodeai('data', 'convert', 'examples/data/broken/mixed-formats.jsonl', '--out', bad);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('mixed_formats');
    expect(r.stderr).toContain(`Nothing was written to ${bad}: the file has errors.`);
    await expect(readdir(bad)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('nodeai data (in-process)', () => {
  it('shows the no-data message followed by what to do', async () => {
    const r = await call('check', 'examples/data/broken/empty.jsonl');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/file {2}no_training_data {2}No training data provided\n {8}→ Add at least 10 examples, one JSON object per line/);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('✗ Not trainable: 1 error, 0 warnings. Fix the errors and run the check again.');
  });

  it('shows the unknown-format message followed by what to do', async () => {
    const r = await call('check', 'examples/data/broken/unknown-format.jsonl');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("line 1  unknown_format    Training example must have 'messages' or 'prompt'/'completion'\n");
    expect(r.stdout).toContain('→ Write each line as {"messages": [...]} (chat)');
  });

  it('caps the printed issues and summarizes the rest by code', async () => {
    const { writeFile } = await import('node:fs/promises');
    const p = join(dir, 'many.jsonl');
    await writeFile(p, Array.from({ length: 300 }, (_, i) => (i % 3 ? `bad ${i}` : '42')).join('\n'));
    const r = await call('check', p);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('Errors (300)');
    expect(r.stdout).toContain('  … and 280 more (data_type 93, invalid_json 187); --json lists the first ones with their lines');
  });

  it.each([
    [['check'], "'data check' needs a FILE"],
    [['check', 'a.jsonl', 'b.jsonl'], "'data check' takes one FILE, got 2: a.jsonl b.jsonl"],
    [['check', 'no/such/file.jsonl'], 'No such file: no/such/file.jsonl. Check the path and try again'],
    [['check', 'examples/data/customer-support.jsonl', '--model', 'gpt-5'], "Unknown model 'gpt-5'. Use one of: nodeai-tiny"],
    [['check', 'examples/data/customer-support.jsonl', '--validation-split', '1'], "--validation-split must be a number from 0 to 0.99, got '1'"],
    [['check', 'examples/data/customer-support.jsonl', '--seed=-3'], "--seed must be a whole number ≥ 0, got '-3'"],
    [['check', 'examples/data/customer-support.jsonl', '--frobnicate'], "Unknown option '--frobnicate'"],
    [['convert', 'examples/data/customer-support.jsonl'], "'data convert' needs --out DIR"],
    [['lint', 'x'], "unknown sub-command 'data lint'"],
  ])('%j is a usage error (exit 2)', async (args, message) => {
    const r = await call(...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });

  it('prints help with exit 0', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    expect(await run(['check', '--help'])).toBe(0);
    expect(log.mock.calls[0][0]).toMatch(/^Usage:\n {2}nodeai data check FILE \[--model M\] \[--epochs N\|auto\] \[--validation-split X\] \[--seed S\] \[--json\]/);
    log.mockRestore();
  });
});
