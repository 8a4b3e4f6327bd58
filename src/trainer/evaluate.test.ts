import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateModels, localEvalModel, parseJudgeScore } from './evaluate.ts';
import { isContainsMatch, isExactMatch, maxNewTokens } from './evaluation-report.ts';
import { writeGgufAdapter } from './gguf-model.ts';
import { qa, trainTinyPair } from './evaluation-fixture.ts';
import { disposeInference } from './inference.ts';
import { createTrainer } from './train.ts';

const SET = [qa('1+1?', 'two'), qa('2+2?', 'four'), qa('color of sky?', 'blue')];

let dir: string;
let basePath: string;
let tunedPath: string;
let adapterPath: string;
let trainerLoss: number;
let loraLoss: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodeai-eval-'));
  const pair = await trainTinyPair(dir, SET);
  ({ basePath, tunedPath, trainerLoss } = pair);
  const lora = createTrainer({ model: pair.base, train: pair.sequences, valid: pair.sequences, epochs: 5, batchSize: 3, learningRate: 0.01, seed: 1, threads: 1, lora: { rank: 4 } });
  while (!lora.done) lora.step();
  loraLoss = lora.evaluate().validLoss;
  adapterPath = join(dir, 'adapter.gguf');
  await writeGgufAdapter(adapterPath, lora.exportAdapter(), pair.base);
  lora.dispose();
}, 120_000);

afterAll(async () => {
  await disposeInference();
  await rm(dir, { recursive: true, force: true });
});

describe('evaluateModels', () => {
  it('scores a model trained on the set above its base, with the trainer\'s own loss', async () => {
    const models = [await localEvalModel({ name: 'base', path: basePath, threads: 1 }), await localEvalModel({ name: 'tuned', path: tunedPath, threads: 1 })];
    const progress: number[] = [];
    const report = await evaluateModels(models, SET, { onProgress: (p) => progress.push(p.done) });
    for (const m of models) await m.dispose();
    expect(report.models).toEqual(['base', 'tuned']);
    expect(report.summary.tuned.exact_match).toBe(1);
    expect(report.summary.base.exact_match).toBe(0);
    expect(report.summary.tuned.loss!).toBeCloseTo(trainerLoss, 4);
    expect(report.summary.base.loss!).toBeGreaterThan(report.summary.tuned.loss! + 1);
    expect(report.summary.tuned.perplexity).toBeCloseTo(Math.exp(report.summary.tuned.loss!), 6);
    expect(report.examples[1]).toMatchObject({ messages: [{ role: 'user', content: '2+2?' }], expected: 'four', answers: { tuned: 'four' }, exact: { tuned: true, base: false } });
    expect(progress.at(-1)).toBe(6);
  }, 120_000);

  it('applies a LoRA adapter to both the loss and the answers', async () => {
    const withAdapter = await localEvalModel({ name: 'lora', path: basePath, lora: adapterPath, threads: 1 });
    const report = await evaluateModels([withAdapter], SET);
    await withAdapter.dispose();
    expect(report.summary.lora.loss!).toBeCloseTo(loraLoss, 4);
  }, 120_000);

  it('refuses an example without an answer to compare with', async () => {
    const m = await localEvalModel({ name: 'base', path: basePath, threads: 1 });
    await expect(evaluateModels([m], [{ messages: [{ role: 'user', content: 'hi' }] }])).rejects.toThrow(/example 1: the last message must be the expected assistant answer/);
    await m.dispose();
  });
});

describe('answer comparison', () => {
  it('normalises whitespace; contains-match also case', () => {
    expect(isExactMatch('  four\n', 'four')).toBe(true);
    expect(isExactMatch('Four', 'four')).toBe(false);
    expect(isContainsMatch('It is  Four.', 'four')).toBe(true);
    expect(isExactMatch('a \t b', 'a b')).toBe(true);
  });
  it('budgets twice the expected tokens, capped at 256', () => {
    expect(maxNewTokens(3)).toBe(6);
    expect(maxNewTokens(0)).toBe(1);
    expect(maxNewTokens(500)).toBe(256);
  });
  it('reads the first score 1-5 from a judge reply', () => {
    expect(parseJudgeScore('Score: 4')).toBe(4);
    expect(parseJudgeScore('no idea')).toBeNull();
  });
});
