import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeChatForTraining } from './chat-format.ts';
import { evaluateModels, localEvalModel, parseJudgeScore, type EvalExample } from './evaluate.ts';
import { isContainsMatch, isExactMatch, maxNewTokens } from './evaluation-report.ts';
import { writeGgufAdapter, writeGgufModel } from './gguf-model.ts';
import { disposeInference } from './inference.ts';
import { createTinyModel } from './tiny-model.ts';
import { createTokenizer } from './tokenizer.ts';
import { createTrainer } from './train.ts';

const SMALL = { embeddingLength: 32, blockCount: 1, headCount: 2, headCountKv: 1, feedForwardLength: 64 };
const chat = (q: string, a: string): EvalExample => ({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] });
const SET = [chat('1+1?', 'two'), chat('2+2?', 'four'), chat('color of sky?', 'blue')];

let dir: string;
let basePath: string;
let tunedPath: string;
let loraBase: string;
let adapterPath: string;
let trainerLoss: number;
let loraLoss: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodeai-eval-'));
  const base = { ...createTinyModel({ seed: 3, ...SMALL }), name: 'base' };
  basePath = join(dir, 'base.gguf');
  await writeGgufModel(basePath, base);
  const tokenizer = await createTokenizer(base);
  const seqs = SET.map((e) => encodeChatForTraining(base, tokenizer, e.messages));
  // Trained to reproduce the set; the trainer's own validation loss on it is the reference.
  const full = createTrainer({ model: base, train: seqs, valid: seqs, epochs: 150, batchSize: 3, learningRate: 0.01, seed: 1, threads: 1 });
  while (!full.done) full.step();
  trainerLoss = full.evaluate().validLoss;
  tunedPath = join(dir, 'tuned.gguf');
  await writeGgufModel(tunedPath, { ...full.exportModel(), name: 'tuned' });
  full.dispose();
  const lora = createTrainer({ model: base, train: seqs, valid: seqs, epochs: 5, batchSize: 3, learningRate: 0.01, seed: 1, threads: 1, lora: { rank: 4 } });
  while (!lora.done) lora.step();
  loraLoss = lora.evaluate().validLoss;
  loraBase = basePath;
  adapterPath = join(dir, 'adapter.gguf');
  await writeGgufAdapter(adapterPath, lora.exportAdapter(), base);
  lora.dispose();
  await tokenizer.dispose();
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
    const withAdapter = await localEvalModel({ name: 'lora', path: loraBase, lora: adapterPath, threads: 1 });
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
