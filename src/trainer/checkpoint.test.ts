import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readCheckpointFile, writeCheckpointFile } from './checkpoint.js';
import { buildRandomModel } from './random-model.js';
import { tinyTokenizerSpec } from './tiny-model.js';
import { qaDataset, randomModel, testConfig } from './train-fixtures.js';
import { createTrainer, DEFAULT_LORA_TARGETS, resumeTrainer, type TrainerOptions } from './train.js';

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

  it('a LoRA checkpoint holds the true rank and resumes across rank padding, either way', () => {
    // Rank padding (graph.ts padLoraRank, on by default) exists only inside the graph: what is
    // saved is the rank-4 adapter and its AdamW moments, so a checkpoint written by the plain
    // graph resumes bit-identically on the plain graph and, within float rounding, on the padded one.
    const opts: TrainerOptions = { model, train: data, valid, epochs: 2, batchSize: 4, learningRate: 3e-3, seed: 5, threads: 1, lora: { rank: 4, alpha: 4 } };
    const plainRun = (t: ReturnType<typeof createTrainer>) => {
      const losses: number[] = [];
      while (!t.done) losses.push(t.step().trainLoss);
      t.dispose();
      return losses;
    };
    const reference = plainRun(createTrainer({ ...opts, padLoraRank: false }));
    const stopAt = 4;
    const path = join(dir, 'lora-unpadded.ckpt');
    const first = createTrainer({ ...opts, padLoraRank: false });
    const head = Array.from({ length: stopAt }, () => first.step().trainLoss);
    first.saveCheckpoint(path);
    first.dispose();

    const saved = readCheckpointFile(path).tensors.filter((t) => t.name.includes('.lora_'));
    expect(saved.length).toBe(3 * 2 * DEFAULT_LORA_TARGETS.length * model.config.blockCount); // A and B, with two moments each, per projection
    for (const t of saved) {
      expect(t.shape[t.name.includes('.lora_a') ? 1 : 0], t.name).toBe(4);
      expect(t.data.length, t.name).toBe(t.shape[0] * t.shape[1]);
    }

    const resumed = (padLoraRank?: boolean) => [...head, ...plainRun(resumeTrainer(path, { model, train: data, valid, ...(padLoraRank === undefined ? {} : { padLoraRank }) }))];
    expect(resumed(false)).toEqual(reference);
    const padded = resumed();
    expect(padded.length).toBe(reference.length);
    padded.forEach((loss, i) => expect(Math.abs(loss - reference[i]) / reference[i], `step ${i + 1}`).toBeLessThan(1e-4));
  });

  it('copies lazily given tensors in chunks, in order, as it writes them, and leaves no file when a copy fails', () => {
    const path = join(dir, 'lazy.ckpt');
    const asked: Array<[string, number, number]> = [];
    // 1.5 Mi values: two chunks of the writer's 1 Mi buffer.
    const big = Float32Array.from({ length: 3 << 19 }, (_, i) => i % 1000);
    const lazy = (name: string, values: Float32Array) => (into: Float32Array, from: number) => {
      asked.push([name, from, into.length]);
      into.set(values.subarray(from, from + into.length));
    };
    writeCheckpointFile(path, { header: {}, tensors: [{ name: 'a', shape: [2], data: lazy('a', Float32Array.of(1, 2)) }, { name: 'big', shape: [3, 1 << 19], data: lazy('big', big) }] });
    expect(asked).toEqual([['a', 0, 2], ['big', 0, 1 << 20], ['big', 1 << 20, 1 << 19]]);
    const back = readCheckpointFile(path).tensors;
    expect(Array.from(back[0].data)).toEqual([1, 2]);
    expect(back[1].data).toEqual(big);
    const broken = join(dir, 'broken.ckpt');
    const failing = () => {
      throw new Error('tensor gone');
    };
    expect(() => writeCheckpointFile(broken, { header: {}, tensors: [{ name: 'c', shape: [4], data: failing }] })).toThrow('tensor gone');
    expect(readdirSync(dir).filter((f) => f.includes('broken.ckpt'))).toEqual([]);
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
