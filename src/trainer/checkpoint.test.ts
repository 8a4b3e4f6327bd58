import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCheckpointFile, writeCheckpointFile } from './checkpoint.js';
import { buildRandomModel } from './random-model.js';
import { tinyTokenizerSpec } from './tiny-model.js';
import { qaDataset, randomModel, testConfig } from './train-fixtures.js';
import { createTrainer, resumeTrainer, type TrainerOptions } from './train.js';

const dir = mkdtempSync(join(tmpdir(), 'nodeai-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const defaultModel = randomModel(testConfig(), 1);
const model = defaultModel;
const data = qaDataset(20);
const valid = qaDataset(4, 99);

function resumeMatches(extra: Partial<TrainerOptions>, stopAt: number, model = defaultModel): void {
  const opts: TrainerOptions = {
    model, train: data, valid, epochs: 3, batchSize: 4, gradAccum: 2, learningRate: 3e-3, seed: 5, threads: 1, ...extra,
  };
  const full = createTrainer(opts);
  const reference: number[] = [];
  while (!full.done) reference.push(full.step().trainLoss);
  const refValid = full.evaluate().validLoss;
  const refWeights = extra.lora ? full.exportAdapter().tensors : full.exportModel().tensors;
  full.dispose();

  const path = join(dir, `run-${model.config.architecture ?? 'llama'}-${stopAt}${extra.lora ? '-lora' : ''}.ckpt`);
  const first = createTrainer(opts);
  const got: number[] = [];
  for (let i = 0; i < stopAt; i++) got.push(first.step().trainLoss);
  const info = first.saveCheckpoint(path);
  expect(info.step).toBe(stopAt);
  // Training on after the save must not change what the checkpoint holds.
  first.step();
  first.dispose();

  const resumed = resumeTrainer(path, { model, train: data, valid });
  expect(resumed.stepsDone).toBe(stopAt);
  while (!resumed.done) got.push(resumed.step().trainLoss);
  expect(got).toEqual(reference);
  expect(resumed.evaluate().validLoss).toBe(refValid);
  const weights = extra.lora ? resumed.exportAdapter().tensors : resumed.exportModel().tensors;
  for (const [name, t] of refWeights) expect(weights.get(name)!.data).toEqual(t.data);
  resumed.dispose();
}

describe('checkpoints', () => {
  it('resume from step k reaches bit-identical losses and weights (full fine-tuning, mid-epoch)', () => {
    resumeMatches({}, 4); // 3 steps per epoch: step 4 is inside epoch 2
  });

  it('resume is bit-identical for LoRA at an epoch boundary', () => {
    resumeMatches({ lora: { rank: 4, alpha: 4 } }, 3);
  });

  it('resume is bit-identical for the other architectures (gemma3 full, qwen2 LoRA)', () => {
    const shape = { ...testConfig(), headCount: 2, headCountKv: 1, headDim: 16 };
    const gemma3 = buildRandomModel({ architecture: 'gemma3', config: { ...shape, slidingWindow: 4, slidingWindowPattern: 2 }, tokenizer: tinyTokenizerSpec(), seed: 3 });
    resumeMatches({}, 4, gemma3);
    const qwen2 = buildRandomModel({ architecture: 'qwen2', config: shape, tokenizer: tinyTokenizerSpec(), seed: 3 });
    resumeMatches({ lora: { rank: 4, alpha: 4 } }, 3, qwen2);
  });

  it('writes atomically with a checksum and refuses damaged or mismatched files', () => {
    const path = join(dir, 'x.ckpt');
    writeCheckpointFile(path, { header: { a: 1 }, tensors: [{ name: 't', shape: [3], data: Float32Array.from([1, 2, 3]) }] });
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const back = readCheckpointFile<{ a: number }>(path);
    expect(back.header.a).toBe(1);
    expect(Array.from(back.tensors[0].data)).toEqual([1, 2, 3]);

    const bytes = readFileSync(path);
    bytes[bytes.length - 40] ^= 1;
    writeFileSync(path, bytes);
    expect(() => readCheckpointFile(path)).toThrow(expect.objectContaining({ code: 'CHECKPOINT_CORRUPT' }));
    writeFileSync(path, bytes.subarray(0, 20));
    expect(() => readCheckpointFile(path)).toThrow(expect.objectContaining({ code: 'CHECKPOINT_CORRUPT' }));

    const tr = createTrainer({ model, train: data, epochs: 1, batchSize: 4, threads: 1 });
    const ck = join(dir, 'y.ckpt');
    tr.step();
    tr.saveCheckpoint(ck);
    tr.dispose();
    expect(() => resumeTrainer(ck, { model, train: data.slice(1) })).toThrow(expect.objectContaining({ code: 'CHECKPOINT_MISMATCH' }));
    const other = randomModel(testConfig({ blockCount: 1 }), 1);
    expect(() => resumeTrainer(ck, { model: other, train: data })).toThrow(expect.objectContaining({ code: 'CHECKPOINT_MISMATCH' }));
  });
});
