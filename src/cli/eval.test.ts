import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobQueue } from '../jobs/index.ts';
import { createStore } from '../store/index.ts';
import { evaluateModels, localEvalModel } from '../trainer/evaluate.ts';
import { qa, trainTinyPair, type TrainedPair } from '../trainer/evaluation-fixture.ts';
import { disposeInference } from '../trainer/inference.ts';
import { startLoopbackHub, type LoopbackHub } from '../trainer/hub-fixture.ts';

const BIN = fileURLToPath(new URL('../../bin/nodeai.js', import.meta.url));
const exec = promisify(execFile);
// Each test spawns the real CLI; on a busy two-core machine one start takes seconds.
const CLI_TEST_MS = 240_000;
const SET = [qa('1+1?', 'two'), qa('2+2?', 'four'), qa('color of sky?', 'blue')];

let root: string;
let pair: TrainedPair;
let hub: LoopbackHub;

async function nodeai(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec(process.execPath, [BIN, ...args], { cwd: root, env: { ...process.env, HOME: root, DATABASE_URL: '', HF_ENDPOINT: hub.endpoint, HF_TOKEN: '' }, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'nodeai-eval-cli-'));
  pair = await trainTinyPair(root, SET);
  // The tuned model on a stand-in for the Hugging Face hub, as an hf: reference names it.
  hub = await startLoopbackHub({ 'acme/Tuned-GGUF': { files: { 'Tuned-Q8_0.gguf': await readFile(pair.tunedPath) } } });
  await writeFile(join(root, 'set.jsonl'), SET.map((e) => JSON.stringify(e)).join('\n') + '\n');
  await writeFile(join(root, 'bad.jsonl'), `${JSON.stringify(SET[0])}\n{"messages": [{"role": "user", "content": "no answer"}]}\n`);
  const endsWithUser = { messages: [...SET[0].messages, { role: 'user', content: 'and then?' }] };
  await writeFile(join(root, 'unanswered.jsonl'), `${JSON.stringify(SET[1])}\n${JSON.stringify(endsWithUser)}\n`);
}, 120_000);

afterAll(async () => {
  await disposeInference();
  await hub?.close();
  await rm(root, { recursive: true, force: true });
});

describe('nodeai eval (the real CLI)', () => {
  it('--json: one object with the totals as shares, per-example rows, the base beside it', { timeout: CLI_TEST_MS }, async () => {
    const r = await nodeai(['eval', 'tuned.gguf', 'set.jsonl', '--base', 'base.gguf', '--json', '--data-dir', join(root, 'data')]);
    expect(r.stderr).toMatch(/evaluating: 6\/6/);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ model: 'tuned.gguf', examples: 3, exact_match: 1, contains_match: 1, base: { model: 'base.gguf', exact_match: 0 } });
    expect(out.loss).toBeCloseTo(pair.trainerLoss, 4);
    expect(out.perplexity).toBeCloseTo(Math.exp(out.loss), 6);
    expect(out.base.loss).toBeGreaterThan(out.loss + 1);
    expect(out.rows).toHaveLength(3);
    expect(out.rows[2]).toMatchObject({ messages: [{ role: 'user', content: 'color of sky?' }], expected: 'blue', answers: { 'tuned.gguf': 'blue' }, exact: { 'tuned.gguf': true, 'base.gguf': false } });
    expect(out.report).toMatchObject({ object: 'evaluation', models: ['base.gguf', 'tuned.gguf'] });
  });

  it('prints a readable table without --json', { timeout: CLI_TEST_MS }, async () => {
    const r = await nodeai(['eval', 'tuned.gguf', 'set.jsonl', '--max-examples', '2', '--data-dir', join(root, 'data')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^2 examples/);
    expect(r.stdout).toMatch(/tuned\.gguf\s+\d+\.\d{4}\s+\d+\.\d{4}\s+100\.0%\s+100\.0%/);
    expect(r.stdout).toMatch(/= four/);
  });

  it('evaluates an hf: model, downloaded into the data dir first', { timeout: CLI_TEST_MS }, async () => {
    const r = await nodeai(['eval', 'hf:acme/Tuned-GGUF:Q8_0', 'set.jsonl', '--json', '--data-dir', join(root, 'data')]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ model: 'hf:acme/Tuned-GGUF:Q8_0', examples: 3, exact_match: 1 });
    expect(out.loss).toBeCloseTo(pair.trainerLoss, 4);
  });

  it('says what is wrong with a bad file, a missing file or an unknown model', { timeout: CLI_TEST_MS }, async () => {
    const bad = await nodeai(['eval', 'tuned.gguf', 'bad.jsonl', '--data-dir', join(root, 'data')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/bad\.jsonl: line 2: Example has no assistant message/);
    const unanswered = await nodeai(['eval', 'tuned.gguf', 'unanswered.jsonl', '--data-dir', join(root, 'data')]);
    expect(unanswered.code).toBe(1);
    expect(unanswered.stderr).toMatch(/unanswered\.jsonl line 2: the last message must be the expected assistant answer, as text; it is a user message/);
    const missing = await nodeai(['eval', 'tuned.gguf', 'nope.jsonl', '--data-dir', join(root, 'data')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/nope\.jsonl: no such file/);
    const unknown = await nodeai(['eval', 'no-such-model', 'set.jsonl', '--data-dir', join(root, 'data')]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/Model "no-such-model" is not a registered fine-tuned model/);
    const usage = await nodeai(['eval', 'tuned.gguf']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/missing FILE/);
  });

  it('nodeai models show prints a model\'s stored evaluation', { timeout: CLI_TEST_MS }, async () => {
    const dataDir = join(root, 'data-show');
    const store = await createStore({ dataDir, databaseUrl: '' });
    try {
      const models = [await localEvalModel({ name: 'nodeai-tiny', path: pair.basePath, threads: 1 }), await localEvalModel({ name: 'ft:nodeai-tiny:qa:abcd1234', path: pair.tunedPath, threads: 1 })];
      const report = await evaluateModels(models, SET);
      for (const m of models) await m.dispose();
      const jobs = new JobQueue(store);
      const file = await store.files.put(join(root, 'set.jsonl'));
      const job = await jobs.create({ model: 'nodeai-tiny', training_file: file.id, suffix: 'qa' });
      await jobs.models.register({ job: { id: job.id, base_model: 'nodeai-tiny', provider: 'local', suffix: 'qa' }, name: 'ft:nodeai-tiny:qa:abcd1234', files: { model: pair.tunedPath }, evaluation: report });
    } finally {
      await store.close();
    }
    const r = await nodeai(['models', 'show', 'ft:nodeai-tiny:qa:abcd1234', '--data-dir', dataDir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/evaluation: {3}on 3 validation examples: nodeai-tiny loss \d+\.\d{4} exact 0% contains 0% · ft:nodeai-tiny:qa:abcd1234 loss \d+\.\d{4} exact 100% contains 100%/);
  });
});
