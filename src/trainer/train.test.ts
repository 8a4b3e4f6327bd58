import { describe, expect, it } from 'vitest';
import { tensorNames } from './llama-model.js';
import { checkpointsByDefault, layerActivationBytes } from './graph.js';
import { createTinyModel, TINY_CONFIG } from './tiny-model.js';
import { qaDataset, qaSequence, randomModel, testConfig } from './train-fixtures.js';
import { activationsEvent, autoWarmupSteps, createTrainer, frozenBaseEvent, learningRateAt, resolveFrozenBase, type TrainerOptions, type TrainerSettings, type TrainStepEvent } from './train.js';

const config = testConfig(); // byte vocab + specials, 2 layers, d 64, 4 heads
const model = randomModel(config, 1);
const data = qaDataset(32);

function run(opts: Partial<TrainerOptions>, steps = Infinity): TrainStepEvent[] {
  const tr = createTrainer({ model, train: data, epochs: 2, batchSize: 8, learningRate: 3e-3, seed: 1, threads: 1, ...opts });
  try {
    const out: TrainStepEvent[] = [];
    while (!tr.done && out.length < steps) out.push(tr.step());
    return out;
  } finally {
    tr.dispose();
  }
}

describe('trainer', () => {
  it('cuts the train loss of a tiny model by a large factor and reports accuracy', () => {
    const tr = createTrainer({ model, train: data, epochs: 25, batchSize: 8, learningRate: 3e-3, seed: 1, threads: 1 });
    try {
      const first = tr.step();
      expect(first.trainLoss).toBeGreaterThan(5);
      expect(first.trainLoss).toBeLessThan(6);
      let last = first;
      while (!tr.done) last = tr.step();
      expect(last.step).toBe(100);
      expect(last.epoch).toBe(25);
      expect(last.trainLoss).toBeLessThan(first.trainLoss / 4);
      expect(last.trainMeanTokenAccuracy).toBeGreaterThan(0.7);
      expect(last.tokens).toBeGreaterThan(last.trainedTokens);
      const ev = tr.evaluate(data);
      expect(ev.validLoss).toBeLessThan(first.trainLoss / 4);
      expect(() => tr.step()).toThrow(expect.objectContaining({ code: 'TRAINING_FINISHED' }));
      // The exported model is a copy with the trained weights.
      const out = tr.exportModel();
      expect(out.tensors.get(tensorNames.attnQ(0))!.data).not.toEqual(model.tensors.get(tensorNames.attnQ(0))!.data);
    } finally {
      tr.dispose();
    }
  });

  it('LoRA leaves the base weights bit-identical, lowers the loss, and exports adapter and merged model', () => {
    const before = new Map([...model.tensors].map(([k, t]) => [k, t.data.slice()]));
    const tr = createTrainer({
      model, train: data, epochs: 10, batchSize: 8, learningRate: 2e-2, seed: 1, threads: 1,
      lora: { rank: 4, alpha: 8, targets: ['attn_q', 'attn_v', 'ffn_up', 'ffn_down', 'output'] },
    });
    try {
      const first = tr.step();
      let last = first;
      while (!tr.done) last = tr.step();
      expect(last.trainLoss).toBeLessThan(first.trainLoss * 0.8);
      const adapter = tr.exportAdapter();
      expect(adapter.rank).toBe(4);
      expect(adapter.targets).toEqual(['blk.0.attn_q.weight', 'blk.0.attn_v.weight', 'blk.0.ffn_up.weight', 'blk.0.ffn_down.weight',
        'blk.1.attn_q.weight', 'blk.1.attn_v.weight', 'blk.1.ffn_up.weight', 'blk.1.ffn_down.weight', 'output.weight']);
      expect(adapter.tensors.get('blk.0.attn_q.weight.lora_a')!.shape).toEqual([64, 4]);
      expect(adapter.tensors.get('blk.0.ffn_up.weight.lora_b')!.shape).toEqual([4, 128]);
      const merged = tr.exportModel();
      const loraEval = tr.evaluate(data);
      // Base weights inside the trainer and in the caller's model are untouched.
      for (const [name, t] of model.tensors) expect(Buffer.from(t.data.buffer).equals(Buffer.from(before.get(name)!.buffer))).toBe(true);
      const tr2 = createTrainer({ model: merged, train: data, epochs: 1, batchSize: 8, threads: 1 });
      try {
        expect(tr2.evaluate(data).validLoss).toBeCloseTo(loraEval.validLoss, 3);
      } finally {
        tr2.dispose();
      }
      expect(merged.tensors.get('blk.0.attn_k.weight')!.data).toEqual(model.tensors.get('blk.0.attn_k.weight')!.data);
      // The same model for writing, tensor by tensor: merged targets as values; the rest as the
      // caller's float32 values (a LoRA base is exact there) or as the graph's bytes.
      const forWriting = tr.exportMerged();
      expect(forWriting.fileType).toBe(0);
      for (const w of forWriting.weights) {
        const expected = merged.tensors.get(w.name)!.data;
        if ('ggmlType' in w) {
          expect(adapter.targets, w.name).not.toContain(w.name);
          expect(Buffer.from(w.bytes()).equals(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)), w.name).toBe(true);
        } else {
          expect(typeof w.data === 'function' ? w.data() : w.data, w.name).toEqual(expected);
        }
      }
      expect(forWriting.weights.filter((w) => adapter.targets.includes(w.name)).every((w) => !('ggmlType' in w) && typeof w.data === 'function')).toBe(true);
    } finally {
      tr.dispose();
    }
  });

  it('masked targets do not affect the loss or the training', () => {
    // Tokens after the last counted target are targets with mask 0 that feed no counted
    // prediction (attention is causal): whatever they are, losses must be bit-identical.
    const withTail = (tail: number[]) =>
      data.map((s) => ({
        tokens: Int32Array.from([...s.tokens, ...tail]),
        lossMask: Uint8Array.from([...s.lossMask, ...tail.map(() => 0)]),
      }));
    const seqLen = Math.max(...data.map((s) => s.tokens.length)) + 3;
    const a = run({ seqLen }, 3).map((e) => e.trainLoss);
    const b = run({ seqLen, train: withTail([1, 2, 3, 4]) }, 3).map((e) => e.trainLoss);
    const c = run({ seqLen, train: withTail([200, 17, 99, 5]) }, 3).map((e) => e.trainLoss);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
    // The same prompt token counted instead of masked does change the loss.
    const counted = data.map((s) => ({ tokens: s.tokens, lossMask: Uint8Array.from(s.lossMask, (m, i) => (i === 2 ? 1 : m)) }));
    expect(run({ seqLen, train: counted }, 1)[0].trainLoss).not.toBe(a[0]);
  });

  it('same seed gives identical losses, a different seed different ones', () => {
    const a = run({ threads: 2 }, 4).map((e) => e.trainLoss);
    const b = run({ threads: 2 }, 4).map((e) => e.trainLoss);
    const c = run({ threads: 2, seed: 2 }, 4).map((e) => e.trainLoss);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  });

  it('warms up for 5% of the steps, at least 10, at most a fifth of a short run', () => {
    expect([5, 42, 105, 1000].map(autoWarmupSteps)).toEqual([1, 8, 10, 50]);
  });

  it('clips the global gradient norm before AdamW, and only when it is over the max', () => {
    const free = run({ maxGradNorm: 0 }, 6);
    expect(free.every((e) => Number.isFinite(e.gradNorm) && e.gradNorm > 0)).toBe(true);
    // A max above every norm seen changes nothing; the default max (1) is exceeded here, so it
    // does change the steps after the first (AdamW's first step is scale-free).
    const high = Math.max(...free.map((e) => e.gradNorm)) * 2;
    expect(run({ maxGradNorm: high }, 6).map((e) => e.trainLoss)).toEqual(free.map((e) => e.trainLoss));
    expect(free.some((e) => e.gradNorm > 1)).toBe(true);
    const clipped = run({}, 6);
    expect(clipped[0].trainLoss).toBe(free[0].trainLoss);
    expect(clipped.slice(2).map((e) => e.trainLoss)).not.toEqual(free.slice(2).map((e) => e.trainLoss));
    expect(() => run({ maxGradNorm: -1 }, 1)).toThrow(/maxGradNorm must be ≥ 0/);
  });

  it('gradient accumulation 2×4 matches batch 8 closely', () => {
    const a = run({ batchSize: 8, gradAccum: 1 }, 6);
    const b = run({ batchSize: 4, gradAccum: 2 }, 6);
    expect(b.map((e) => e.trainedTokens)).toEqual(a.map((e) => e.trainedTokens));
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i].trainLoss - b[i].trainLoss)).toBeLessThan(1e-3);
  });

  it('gives typed errors for bad inputs', () => {
    const base = { model, threads: 1, epochs: 1 } as const;
    expect(() => createTrainer({ ...base, train: [] })).toThrow(expect.objectContaining({ code: 'EMPTY_DATASET' }));
    const noTargets = [{ tokens: Int32Array.from([1, 2, 3]), lossMask: new Uint8Array(3) }];
    expect(() => createTrainer({ ...base, train: noTargets })).toThrow(expect.objectContaining({ code: 'EMPTY_DATASET' }));
    const long = qaSequence('x'.repeat(80), 'y');
    expect(() => createTrainer({ ...base, train: [data[0], long] })).toThrow(
      expect.objectContaining({ code: 'SEQUENCE_TOO_LONG', message: expect.stringContaining('training example 2') }),
    );
    expect(() => createTrainer({ ...base, train: data, valid: [long] })).toThrow(
      expect.objectContaining({ code: 'SEQUENCE_TOO_LONG', message: expect.stringContaining('validation example 1') }),
    );
    const badTok = [{ tokens: Int32Array.from([1, 999]), lossMask: Uint8Array.from([0, 1]) }];
    expect(() => createTrainer({ ...base, train: badTok })).toThrow(expect.objectContaining({ code: 'BAD_SEQUENCE' }));
    expect(() => createTrainer({ ...base, train: data, batchSize: 0 })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => createTrainer({ ...base, train: data, lora: { rank: 2, targets: ['nope' as never] } })).toThrow(
      expect.objectContaining({ code: 'BAD_OPTION' }),
    );
    expect(() => createTrainer({ ...base, train: data, model: randomModel(testConfig({ headCount: 5 }), 1) })).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED_CONFIG' }),
    );
    const missing = randomModel(config, 1);
    missing.tensors.delete(tensorNames.output);
    expect(() => createTrainer({ ...base, train: data, model: missing })).toThrow(expect.objectContaining({ code: 'MISSING_TENSOR' }));
    const tr = createTrainer({ ...base, train: data });
    expect(() => tr.exportAdapter()).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => tr.evaluate()).toThrow(expect.objectContaining({ code: 'EMPTY_DATASET' }));
    tr.dispose();
    expect(() => tr.step()).toThrow(expect.objectContaining({ code: 'TRAINER_DISPOSED' }));
  });

  it('resolves auto settings and schedules', () => {
    const tr = createTrainer({ model, train: data, threads: 1 });
    expect(tr.settings.learningRate).toBe(3e-3);
    expect(tr.settings.batchSize).toBe(4);
    expect(tr.settings.epochs).toBe(4);
    expect(tr.settings.seqLen).toBe(Math.max(...data.map((s) => s.tokens.length - 1)));
    tr.dispose();
    const s = { ...tr.settings, warmupSteps: 2, totalSteps: 10, learningRate: 1, schedule: 'cosine' as const };
    expect(learningRateAt(s, 0)).toBe(0.5);
    expect(learningRateAt(s, 1)).toBe(1);
    expect(learningRateAt(s, 2)).toBe(1);
    expect(learningRateAt(s, 6)).toBeCloseTo(0.5, 10);
    expect(learningRateAt({ ...s, schedule: 'linear' }, 6)).toBeCloseTo(0.5, 10);
    expect(learningRateAt({ ...s, schedule: 'constant' }, 9)).toBe(1);
  });

  it('trains the nodeai-tiny factory model (grouped-query attention) through the async step iterator', async () => {
    const tiny = createTinyModel({ seed: 3, blockCount: 1, embeddingLength: 32, feedForwardLength: 64, contextLength: 64 });
    expect(tiny.config.headCountKv).toBeLessThan(tiny.config.headCount);
    const tr = createTrainer({ model: tiny, train: data, epochs: 6, batchSize: 8, learningRate: 1e-2, seed: 1, threads: 1 });
    try {
      const events: TrainStepEvent[] = [];
      for await (const e of tr.steps()) events.push(e);
      expect(events).toHaveLength(tr.settings.totalSteps);
      expect(events.at(-1)!.trainLoss).toBeLessThan(events[0].trainLoss * 0.6);
    } finally {
      tr.dispose();
    }
  });
});

describe('frozenBase "auto"', () => {
  const cpu = { kind: 'ggml' as const, reason: 'test' };
  const library = { name: 'oneDNN 9.9 (Test)', everyF32Product: true, createBackend: () => { throw new Error('not used'); } };
  const withBf16 = { ...library, kind: 'blas' as const, reason: 'test', bf16: true };
  const withoutBf16 = { ...library, kind: 'blas' as const, reason: 'test', bf16: false };

  it('holds a LoRA base in BF16 exactly where the matmul backend multiplies BF16 in BF16, and says so', () => {
    expect(resolveFrozenBase(true, withBf16)).toBe('bf16');
    expect(resolveFrozenBase(true, withoutBf16)).toBe('f32');
    expect(resolveFrozenBase(true, cpu)).toBe('f32');
    expect(resolveFrozenBase(false, withBf16)).toBe('f32');
    const lora = { lora: { rank: 8, alpha: 16, targets: [] } } as unknown as TrainerSettings;
    expect(frozenBaseEvent({ ...lora, frozenBase: 'bf16' }, withBf16)).toBe(
      'Frozen base matrices given in float32 are held in BF16 (half the memory): oneDNN 9.9 (Test) multiplies them in BF16, several times faster than in F32.',
    );
    expect(frozenBaseEvent({ ...lora, frozenBase: 'f32' }, cpu)).toMatch(/held in F32: no BF16 matmuls here \(they need oneDNN/);
    expect(frozenBaseEvent({ lora: null } as unknown as TrainerSettings, withBf16)).toBeNull();
  });

  it("a trainer's default follows its matmul backend; 'f32' and 'bf16' are kept as asked; a full fine-tune stays F32", () => {
    const lora = { rank: 4, alpha: 8 };
    const make = (opts: Partial<TrainerOptions>) => {
      const tr = createTrainer({ model, train: data, epochs: 1, batchSize: 8, learningRate: 3e-3, seed: 1, threads: 1, ...opts });
      try {
        return { frozenBase: tr.settings.frozenBase, matmul: tr.matmul };
      } finally {
        tr.dispose();
      }
    };
    const auto = make({ lora });
    expect(auto.frozenBase).toBe(resolveFrozenBase(true, auto.matmul));
    expect(make({ lora, matmul: 'ggml' }).frozenBase).toBe('f32');
    expect(make({ lora, frozenBase: 'f32' }).frozenBase).toBe('f32');
    expect(make({ lora, frozenBase: 'bf16', matmul: 'ggml' }).frozenBase).toBe('bf16');
    expect(make({}).frozenBase).toBe('f32');
    expect(() => make({ lora, frozenBase: 'fp8' as 'f32' })).toThrow(expect.objectContaining({ code: 'BAD_OPTION', message: expect.stringContaining("'auto', 'f32' or 'bf16'") }));
  });
});

describe('layer checkpointing by default', () => {
  it('checkpoints where the activations are large, not on a tiny model, and says which and why', () => {
    const smol = { ...TINY_CONFIG, embeddingLength: 576, feedForwardLength: 1536, headCount: 9, headCountKv: 3, blockCount: 30, contextLength: 2048 };
    // The estimate against the compute buffers measured with and without checkpointing (MiB): within 10 %.
    expect(layerActivationBytes({ ...TINY_CONFIG, contextLength: 128 }, 8, 128) / 2 ** 20).toBeCloseTo(37, -1);
    expect(Math.abs(layerActivationBytes(smol, 4, 256) / 2 ** 20 / 1251 - 1)).toBeLessThan(0.1);
    expect(checkpointsByDefault({ ...TINY_CONFIG, contextLength: 128 }, 8, 128)).toBe(false);
    expect(checkpointsByDefault(smol, 4, 256)).toBe(true);
    const settings = { batchSize: 4, seqLen: 256 } as TrainerSettings;
    expect(activationsEvent(settings, smol, true)).toBe(
      'Layer activations are recomputed in the backward pass, layer by layer (checkpointing; checkpointing starts above 256 MiB): kept, they would take about 1148 MiB.',
    );
    expect(activationsEvent(settings, smol, false)).toBe('Layer activations are kept through the backward pass (about 1148 MiB; as asked).');
    const tiny = createTrainer({ model, train: data, epochs: 1, batchSize: 8, learningRate: 3e-3, seed: 1, threads: 1 });
    const forced = createTrainer({ model, train: data, epochs: 1, batchSize: 8, learningRate: 3e-3, seed: 1, threads: 1, checkpointLayers: true });
    try {
      expect(tiny.checkpointLayers).toBe(false);
      expect(forced.checkpointLayers).toBe(true);
      expect(activationsEvent(tiny.settings, model.config, false)).toMatch(/^Layer activations are kept through the backward pass \(about \d+ MiB; checkpointing starts above 256 MiB\)\.$/);
    } finally {
      tiny.dispose();
      forced.dispose();
    }
  });
});
