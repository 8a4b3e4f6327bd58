import { describe, expect, it } from 'vitest';
import { LlamaGraph, loraTargetTensors, validateLlamaConfig, type MatmulPlacement } from './graph.js';
import { tensorNames, type LlamaModel, type TrainingSequence } from './llama-model.js';
import { TrainerError } from './train-errors.js';
import { randomModel, testConfig } from './train-fixtures.js';
import { createTrainer } from './train.js';
import { Rng } from './train-rng.js';
import type { ArchitectureName } from './architectures/index.js';
import { buildRandomModel } from './random-model.js';
import { probeBlas, type BlasLimits, type MatmulBackend } from './ggml/blas.js';
import { GGML_TYPE_BF16 } from './ggml/lib.js';
import { chooseComputeDevice } from './ggml/device.js';
import { testDevice, testDeviceBuilt } from './ggml/test-device.js';
import { tinyTokenizerSpec } from './tiny-model.js';

/** The model's weights, random adapters, and random tokens and labels with every `masked`-th position masked out. */
function fillRandomBatch(graph: LlamaGraph, model: LlamaModel, rng: Rng, masked: number): void {
  for (const [name, t] of graph.weights) graph.writeF32(t, model.tensors.get(name)!.data);
  for (const t of graph.loraTensors.values()) graph.writeF32(t, Float32Array.from({ length: graph.g.nelements(t) }, () => rng.normal() * 0.1));
  const n = graph.batch * graph.seqLen;
  const [tok, lab, mask] = [new Int32Array(n), new Int32Array(n), new Float32Array(n)];
  for (let i = 0; i < n; i++) {
    tok[i] = rng.int(model.config.vocabSize);
    lab[i] = rng.int(model.config.vocabSize);
    mask[i] = i % masked === 0 ? 0 : 1;
  }
  writeBatch(graph, tok, lab, mask);
}

/** Tokens, label ids and the loss mask into the graph's inputs. */
function writeBatch(graph: LlamaGraph, tok: Int32Array, lab: Int32Array, mask: Float32Array): void {
  graph.writeI32(graph.tokens, tok);
  graph.writeI32(graph.labelIds, lab);
  graph.writeF32(graph.mask, mask);
}

const archShape = {
  contextLength: 32,
  embeddingLength: 32,
  blockCount: 2,
  headCount: 2,
  headCountKv: 1,
  feedForwardLength: 48,
  ropeFreqBase: 1000,
  rmsNormEps: 1e-6,
  tiedEmbeddings: false,
};

/** Plain-JS Llama forward (what llama.cpp computes), returning the masked mean next-token loss. */
function referenceLoss(model: LlamaModel, seqs: TrainingSequence[]): number {
  const c = model.config;
  const D = c.embeddingLength;
  const hd = D / c.headCount;
  const group = c.headCount / c.headCountKv;
  const w = (name: string) => model.tensors.get(name)!.data;
  const matvec = (name: string, x: Float64Array, nOut: number) => {
    const W = w(name);
    const nIn = x.length;
    const y = new Float64Array(nOut);
    for (let o = 0; o < nOut; o++) {
      let s = 0;
      for (let i = 0; i < nIn; i++) s += W[o * nIn + i] * x[i];
      y[o] = s;
    }
    return y;
  };
  const rms = (x: Float64Array, name: string) => {
    const g = w(name);
    let ss = 0;
    for (const v of x) ss += v * v;
    const k = 1 / Math.sqrt(ss / x.length + c.rmsNormEps);
    return x.map((v, i) => v * k * g[i]);
  };
  const rope = (x: Float64Array, heads: number, pos: number) => {
    for (let h = 0; h < heads; h++) {
      for (let j = 0; j < hd / 2; j++) {
        const theta = pos * Math.pow(c.ropeFreqBase, (-2 * j) / hd);
        const a = x[h * hd + 2 * j];
        const b = x[h * hd + 2 * j + 1];
        x[h * hd + 2 * j] = a * Math.cos(theta) - b * Math.sin(theta);
        x[h * hd + 2 * j + 1] = a * Math.sin(theta) + b * Math.cos(theta);
      }
    }
    return x;
  };
  let total = 0;
  let counted = 0;
  for (const seq of seqs) {
    const T = seq.tokens.length - 1;
    const emb = w(tensorNames.tokenEmbd);
    let xs = Array.from({ length: T }, (_, t) => Float64Array.from(emb.subarray(seq.tokens[t] * D, (seq.tokens[t] + 1) * D)));
    for (let l = 0; l < c.blockCount; l++) {
      const hs = xs.map((x) => rms(x, tensorNames.attnNorm(l)));
      const q = hs.map((h, t) => rope(matvec(tensorNames.attnQ(l), h, D), c.headCount, t));
      const k = hs.map((h, t) => rope(matvec(tensorNames.attnK(l), h, hd * c.headCountKv), c.headCountKv, t));
      const v = hs.map((h) => matvec(tensorNames.attnV(l), h, hd * c.headCountKv));
      xs = xs.map((x, t) => {
        const o = new Float64Array(D);
        for (let h = 0; h < c.headCount; h++) {
          const g = Math.floor(h / group);
          const sc = Array.from({ length: t + 1 }, (_, u) => {
            let s = 0;
            for (let i = 0; i < hd; i++) s += q[t][h * hd + i] * k[u][g * hd + i];
            return s / Math.sqrt(hd);
          });
          const mx = Math.max(...sc);
          const e = sc.map((s) => Math.exp(s - mx));
          const z = e.reduce((a, b) => a + b, 0);
          for (let u = 0; u <= t; u++) for (let i = 0; i < hd; i++) o[h * hd + i] += (e[u] / z) * v[u][g * hd + i];
        }
        const y = matvec(tensorNames.attnOutput(l), o, D);
        return x.map((xv, i) => xv + y[i]);
      });
      xs = xs.map((x) => {
        const h2 = rms(x, tensorNames.ffnNorm(l));
        const gate = matvec(tensorNames.ffnGate(l), h2, c.feedForwardLength);
        const up = matvec(tensorNames.ffnUp(l), h2, c.feedForwardLength);
        const act = gate.map((gv, i) => (gv / (1 + Math.exp(-gv))) * up[i]);
        const y = matvec(tensorNames.ffnDown(l), act, D);
        return x.map((xv, i) => xv + y[i]);
      });
    }
    const head = c.tiedEmbeddings ? tensorNames.tokenEmbd : tensorNames.output;
    for (let t = 0; t < T; t++) {
      if (seq.lossMask[t + 1] !== 1) continue;
      const logits = matvec(head, rms(xs[t], tensorNames.outputNorm), c.vocabSize);
      const mx = Math.max(...logits);
      const lse = mx + Math.log(logits.reduce((a, b) => a + Math.exp(b - mx), 0));
      total += lse - logits[seq.tokens[t + 1]];
      counted++;
    }
  }
  return total / counted;
}

function randomSequences(n: number, len: (i: number) => number, vocab: number, seed: number): TrainingSequence[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const L = len(i);
    const tokens = Int32Array.from({ length: L }, () => rng.int(vocab));
    const lossMask = Uint8Array.from({ length: L }, (_, t) => (t > 2 && rng.next() < 0.7 ? 1 : 0));
    lossMask[L - 1] = 1;
    return { tokens, lossMask };
  });
}

describe('Llama graph', () => {
  for (const [label, over] of [
    ['multi-head, untied', { headCount: 4, headCountKv: 4, tiedEmbeddings: false }],
    ['grouped-query (4 heads / 2 kv), tied head', { headCount: 4, headCountKv: 2, tiedEmbeddings: true }],
  ] as const) {
    it(`forward loss matches a plain-JS Llama reference: ${label}`, () => {
      const config = testConfig({ vocabSize: 40, embeddingLength: 32, feedForwardLength: 48, blockCount: 2, ropeFreqBase: 100, ...over });
      const model = randomModel(config, 3);
      // Larger weights than the init so attention patterns and RoPE actually matter.
      for (const t of model.tensors.values()) if (t.shape.length === 2) t.data.forEach((v, i) => (t.data[i] = v * 10));
      const seqs = randomSequences(3, (i) => 6 + 3 * i, 40, 5);
      const tr = createTrainer({ model, train: seqs, batchSize: 2, threads: 2, epochs: 1 });
      try {
        const { validLoss } = tr.evaluate(seqs);
        expect(validLoss).toBeGreaterThan(0.5);
        expect(Math.abs(validLoss - referenceLoss(model, seqs))).toBeLessThan(2e-4 * validLoss);
      } finally {
        tr.dispose();
      }
    });
  }

  for (const [label, over, lora] of [
    ['full fine-tuning, untied', { headCount: 4, headCountKv: 4, tiedEmbeddings: false }, false],
    ['LoRA, grouped-query, tied head', { headCount: 4, headCountKv: 2, tiedEmbeddings: true }, true],
  ] as const) {
    it(`the mul_mat backward gives ggml's out_prod gradients: ${label}`, () => {
      const config = testConfig({ vocabSize: 40, embeddingLength: 32, feedForwardLength: 48, blockCount: 2, ...over });
      const model = randomModel(config, 4);
      const spec = lora
        ? { rank: 4, alpha: 8, targets: loraTargetTensors(config, ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down']) }
        : undefined;
      const grads = (plainAutodiff: boolean) => {
        const graph = new LlamaGraph({ config, batch: 2, seqLen: 8, threads: 1, lora: spec, plainAutodiff });
        try {
          const rng = new Rng(9);
          for (const [name, t] of graph.weights) graph.writeF32(t, model.tensors.get(name)!.data);
          // Non-zero B as well as A, so every adapter gradient is non-trivial.
          for (const t of graph.loraTensors.values()) graph.writeF32(t, Float32Array.from({ length: graph.g.nelements(t) }, () => rng.normal() * 0.1));
          const n = graph.batch * graph.seqLen;
          const [tok, lab, mask] = [new Int32Array(n), new Int32Array(n), new Float32Array(n)];
          for (let i = 0; i < n; i++) {
            tok[i] = rng.int(config.vocabSize);
            mask[i] = i % 3 === 0 ? 0 : 1;
            if (mask[i]) lab[i] = rng.int(config.vocabSize);
          }
          writeBatch(graph, tok, lab, mask);
          graph.setLossGradScale(1);
          graph.runTrain();
          return new Map(graph.trainables.map((t) => [t.name, graph.readF32(t.gradAcc)]));
        } finally {
          graph.dispose();
        }
      };
      const ref = grads(true);
      const got = grads(false);
      expect([...got.keys()]).toEqual([...ref.keys()]);
      for (const [name, r] of ref) {
        const gv = got.get(name)!;
        const scale = Math.max(...r.map(Math.abs));
        expect(scale, name).toBeGreaterThan(0);
        let worst = 0;
        for (let i = 0; i < r.length; i++) worst = Math.max(worst, Math.abs(gv[i] - r[i]));
        expect(worst / scale, name).toBeLessThan(1e-4);
      }
    });
  }

  for (const [label, over, lora] of [
    ['LoRA, tied head', { tiedEmbeddings: true }, true],
    ['LoRA, untied head', { tiedEmbeddings: false }, true],
    // An adapter on the head itself: its A and B gradients are summed over the chunks too.
    ['LoRA on the untied head too', { tiedEmbeddings: false }, 'head'],
    // Full fine-tuning trains the head too: its gradient comes from the chunks as well.
    ['full fine-tuning, tied head', { tiedEmbeddings: true }, false],
    ['full fine-tuning, untied head', { tiedEmbeddings: false }, false],
  ] as const) {
    it(`the chunked cross-entropy from label ids gives ggml's dense loss, argmax and gradients: ${label}`, () => {
      const config = testConfig({ vocabSize: 40, embeddingLength: 32, feedForwardLength: 48, blockCount: 2, headCount: 4, headCountKv: 2, ...over });
      const model = randomModel(config, 5);
      const modules = ['attn_q', 'attn_v', 'ffn_down', ...(lora === 'head' ? ['output'] : [])];
      const spec = lora ? { rank: 4, alpha: 8, targets: loraTargetTensors(config, modules) } : undefined;
      if (lora === 'head') expect(spec!.targets).toContain('output.weight');
      const run = (denseHead: boolean) => {
        // 16 tokens in chunks of 3: five full chunks and a last one of one token.
        const graph = new LlamaGraph({ config, batch: 2, seqLen: 8, threads: 1, lora: spec, denseHead, headChunkTokens: 3 });
        try {
          expect(graph.chunkedHead).toBe(!denseHead);
          fillRandomBatch(graph, model, new Rng(11), 5);
          graph.setLossGradScale(2);
          graph.runTrain();
          const trained = { loss: graph.readF32(graph.loss, 1)[0], argmax: [...graph.readI32(graph.argmax)], grads: graph.trainables.map((t) => graph.readF32(t.gradAcc)) };
          graph.runEval();
          return { ...trained, evalLoss: graph.readF32(graph.loss, 1)[0], logits: graph.logitsF32() };
        } finally {
          graph.dispose();
        }
      };
      const dense = run(true);
      const chunked = run(false);
      expect(chunked.loss).toBeCloseTo(dense.loss, 4);
      expect(chunked.evalLoss).toBeCloseTo(dense.loss, 4);
      expect(chunked.argmax).toEqual(dense.argmax);
      let worstLogit = 0;
      for (let i = 0; i < dense.logits.length; i++) worstLogit = Math.max(worstLogit, Math.abs(chunked.logits[i] - dense.logits[i]));
      expect(worstLogit).toBeLessThan(1e-5);
      expect(chunked.grads.length).toBe(dense.grads.length);
      dense.grads.forEach((r, k) => {
        const scale = Math.max(...r.map(Math.abs));
        expect(scale).toBeGreaterThan(0);
        let worst = 0;
        for (let i = 0; i < r.length; i++) worst = Math.max(worst, Math.abs(chunked.grads[k][i] - r[i]));
        expect(worst / scale).toBeLessThan(1e-4);
      });
    });
  }

  it('rejects configs it cannot express with UNSUPPORTED_CONFIG', () => {
    const bad = [
      testConfig({ headCount: 3 }),
      testConfig({ headCount: 4, headCountKv: 3 }),
      testConfig({ embeddingLength: 12, headCount: 4 }),
      testConfig({ blockCount: 0 }),
      testConfig({ rmsNormEps: 0 }),
    ];
    for (const c of bad) {
      expect(() => validateLlamaConfig(c)).toThrow(expect.objectContaining({ code: 'UNSUPPORTED_CONFIG' }));
    }
  });

  it('maps LoRA target modules to tensor names and rejects unknown ones', () => {
    const c = testConfig({ blockCount: 2 });
    expect(loraTargetTensors(c, ['attn_q', 'ffn_down'])).toEqual([
      'blk.0.attn_q.weight', 'blk.0.ffn_down.weight', 'blk.1.attn_q.weight', 'blk.1.ffn_down.weight',
    ]);
    expect(() => loraTargetTensors(c, ['attn_qq'])).toThrow(TrainerError);
    expect(() => loraTargetTensors(testConfig({ tiedEmbeddings: true }), ['output'])).toThrow(/untied/);
  });

  it('sizes its context from the graph and frees it', () => {
    const graph = new LlamaGraph({ config: testConfig(), batch: 2, seqLen: 16, threads: 1 });
    expect(graph.memBytes).toBeGreaterThan(0);
    expect(graph.memBytes).toBeLessThan(64 << 20);
    expect(graph.trainables).toHaveLength(2 * 9 + 3);
    graph.dispose();
    expect(() => graph.runEval()).toThrow(expect.objectContaining({ code: 'TRAINER_DISPOSED' }));
  });
});

describe('gradients of every architecture', () => {
  // ggml's autodiff differentiates the graph as built, so each architecture's extra parts (biases,
  // Q/K norms, post-norms, the GELU composed of sqr/softplus/exp, sliding-window masks, embedding
  // scale) are checked against central finite differences of the loss itself.
  const cases: Array<[string, Parameters<typeof buildRandomModel>[0]['config'], ArchitectureName, string[]]> = [
    ['qwen2', { ...archShape }, 'qwen2', ['blk.0.attn_q.bias', 'blk.1.attn_k.bias', 'blk.0.attn_v.bias', 'blk.1.ffn_gate.weight']],
    ['qwen3', { ...archShape, headDim: 16 }, 'qwen3', ['blk.0.attn_q_norm.weight', 'blk.1.attn_k_norm.weight', 'blk.0.attn_q.weight']],
    [
      'gemma3',
      { ...archShape, headDim: 16, tiedEmbeddings: true, slidingWindow: 3, slidingWindowPattern: 2 },
      'gemma3',
      ['blk.0.ffn_gate.weight', 'blk.1.ffn_up.weight', 'blk.0.post_attention_norm.weight', 'blk.1.post_ffw_norm.weight', 'token_embd.weight', 'blk.0.attn_k_norm.weight'],
    ],
    ['llama 3 (rope_freqs stays frozen)', { ...archShape, ropeFreqFactors: true }, 'llama', ['blk.0.attn_q.weight', 'blk.1.attn_k.weight']],
  ];
  for (const [label, config, architecture, probe] of cases) {
    it(`${label}: backward matches finite differences`, () => {
      const model = buildRandomModel({ architecture, config, tokenizer: tinyTokenizerSpec(), seed: 2, weightStd: 0.2, biasStd: 0.3, normJitter: 0.2 });
      const graph = new LlamaGraph({ config: model.config, batch: 1, seqLen: 8, threads: 1 });
      try {
        const rng = new Rng(4);
        for (const [name, t] of graph.weights) graph.writeF32(t, model.tensors.get(name)!.data);
        const V = model.config.vocabSize;
        const [tok, lab] = [new Int32Array(8), new Int32Array(8)];
        for (let i = 0; i < tok.length; i++) {
          tok[i] = rng.int(V);
          lab[i] = rng.int(V);
        }
        writeBatch(graph, tok, lab, new Float32Array(8).fill(1));
        expect(graph.trainables.some((t) => t.name === tensorNames.ropeFreqs)).toBe(false);
        graph.setLossGradScale(1);
        graph.runTrain();
        const loss = () => {
          graph.runEval();
          return graph.readF32(graph.loss, 1)[0] / tok.length; // the gradients are the mean's (scale 1)
        };
        for (const name of probe) {
          const t = graph.trainables.find((x) => x.name === name)!;
          const grad = graph.readF32(t.gradAcc);
          let at = 0;
          for (let i = 1; i < grad.length; i++) if (Math.abs(grad[i]) > Math.abs(grad[at])) at = i;
          const w0 = graph.readF32(t.tensor)[at];
          const h = 1e-2 * Math.max(0.1, Math.abs(w0));
          graph.writeF32(t.tensor, [w0 + h], at);
          const up = loss();
          graph.writeF32(t.tensor, [w0 - h], at);
          const down = loss();
          graph.writeF32(t.tensor, [w0], at);
          const numeric = (up - down) / (2 * h);
          expect(Math.abs(grad[at]), name).toBeGreaterThan(1e-4);
          expect(Math.abs(numeric - grad[at]) / Math.abs(grad[at]), name).toBeLessThan(0.03);
        }
      } finally {
        graph.dispose();
      }
    });
  }
});

describe('activation checkpointing', () => {
  for (const [label, over, lora] of [
    ['LoRA, chunked head', { tiedEmbeddings: true }, true],
    ['full fine-tuning, trained chunked head, trained embeddings', { tiedEmbeddings: false }, false],
  ] as const) {
    it(`recomputing each layer in the backward gives the same loss and gradients: ${label}`, () => {
      const config = testConfig({ vocabSize: 40, embeddingLength: 32, feedForwardLength: 48, blockCount: 3, headCount: 4, headCountKv: 2, ...over });
      const model = randomModel(config, 6);
      const spec = lora ? { rank: 4, alpha: 8, targets: loraTargetTensors(config, ['attn_q', 'attn_v', 'ffn_down']) } : undefined;
      const run = (checkpointLayers: boolean) => {
        const graph = new LlamaGraph({ config, batch: 2, seqLen: 8, threads: 1, lora: spec, checkpointLayers, headChunkTokens: 5 });
        try {
          fillRandomBatch(graph, model, new Rng(12), 4);
          const grads: Float32Array[][] = [];
          for (let pass = 0; pass < 2; pass++) {
            // Two passes: the checkpoints' own accumulators must start from zero each time.
            graph.zeroGradients();
            graph.setLossGradScale(3);
            graph.runTrain();
            grads.push(graph.trainables.map((t) => graph.readF32(t.gradAcc)));
          }
          const trainLoss = graph.readF32(graph.loss, 1)[0];
          graph.runEval();
          return { trainLoss, evalLoss: graph.readF32(graph.loss, 1)[0], grads, computeBytes: graph.computeBytes };
        } finally {
          graph.dispose();
        }
      };
      const plain = run(false);
      const checkpointed = run(true);
      expect(checkpointed.trainLoss).toBeCloseTo(plain.trainLoss, 5);
      expect(checkpointed.evalLoss).toBeCloseTo(plain.evalLoss, 5);
      for (const pass of [0, 1]) {
        plain.grads[pass].forEach((r, k) => {
          const scale = Math.max(...r.map(Math.abs));
          expect(scale).toBeGreaterThan(0);
          let worst = 0;
          for (let i = 0; i < r.length; i++) worst = Math.max(worst, Math.abs(checkpointed.grads[pass][k][i] - r[i]));
          expect(worst / scale).toBeLessThan(1e-5);
        });
      }
    });
  }
});

describe('LoRA rank padding', () => {
  it('padding the rank with zeros gives the same loss and gradients (rank 8, every projection, with checkpointing too)', () => {
    const config = testConfig({ vocabSize: 40, embeddingLength: 32, feedForwardLength: 48, blockCount: 2, headCount: 4, headCountKv: 2 });
    const model = randomModel(config, 6);
    const spec = { rank: 8, alpha: 16, targets: loraTargetTensors(config, ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down', 'output']) };
    const run = (padLoraRank: boolean, checkpointLayers: boolean) => {
      const graph = new LlamaGraph({ config, batch: 2, seqLen: 8, threads: 1, lora: spec, padLoraRank, checkpointLayers });
      try {
        fillRandomBatch(graph, model, new Rng(13), 4);
        graph.setLossGradScale(1);
        graph.runTrain();
        return { loss: graph.readF32(graph.loss, 1)[0], grads: graph.trainables.map((t) => graph.readF32(t.gradAcc)) };
      } finally {
        graph.dispose();
      }
    };
    const plain = run(false, false);
    for (const checkpointLayers of [false, true]) {
      const padded = run(true, checkpointLayers);
      expect(padded.loss).toBeCloseTo(plain.loss, 5);
      plain.grads.forEach((r, k) => {
        const scale = Math.max(...r.map(Math.abs));
        expect(scale).toBeGreaterThan(0);
        let worst = 0;
        for (let i = 0; i < r.length; i++) worst = Math.max(worst, Math.abs(padded.grads[k][i] - r[i]));
        expect(worst / scale, `${spec.targets.length} targets, gradient ${k}`).toBeLessThan(1e-5);
      });
    }
  });
});

const blas = probeBlas();
describe.skipIf(!blas.ok)('BLAS-backend matmuls, oneDNN or OpenBLAS (ggml_backend_sched over [BLAS, CPU])', () => {
  for (const [label, over, lora] of [
    ['LoRA, chunked head, checkpointed layers', { tiedEmbeddings: true }, true],
    ['full fine-tuning, trained chunked head', { tiedEmbeddings: false }, false],
  ] as const) {
    it(`gives ggml-cpu's loss, gradients and loss after an AdamW step, with the large matmuls on BLAS: ${label}`, () => {
      if (!blas.ok) return;
      // Every dimension ≥ 32, the BLAS backend's threshold, so the projections go to sgemm.
      const config = testConfig({ vocabSize: 96, embeddingLength: 64, feedForwardLength: 96, blockCount: 2, headCount: 4, headCountKv: 2, ...over });
      const model = randomModel(config, 7);
      const spec = lora ? { rank: 8, alpha: 16, targets: loraTargetTensors(config, ['attn_q', 'attn_v', 'ffn_down']) } : undefined;
      const run = (matmul: MatmulBackend) => {
        // Limits off: this model's products are far below the size that goes to BLAS by default.
        const graph = new LlamaGraph({ config, batch: 4, seqLen: 16, threads: 1, lora: spec, matmul, headChunkTokens: 24, blasLimits: { minMultiplyAdds: 0 } });
        try {
          fillRandomBatch(graph, model, new Rng(14), 4);
          const grads: Float32Array[][] = [];
          for (let pass = 0; pass < 2; pass++) {
            graph.zeroGradients();
            graph.setLossGradScale(2);
            graph.runTrain();
            grads.push(graph.trainables.map((t) => graph.readF32(t.gradAcc)));
          }
          const trainLoss = graph.readF32(graph.loss, 1)[0];
          const split = graph.matmulPlacement();
          // AdamW's first step at lr 1e-2: 1/(1-β1), 1/(1-β2) as the trainer writes them.
          graph.writeF32(graph.optParamsDecay, [1e-2, 0.9, 0.999, 1e-8, 0.01, 10, 1000]);
          graph.writeF32(graph.optParamsNoDecay, [1e-2, 0.9, 0.999, 1e-8, 0, 10, 1000]);
          graph.runOptimizer();
          graph.runEval();
          // After the step: AdamW's first update is ±lr wherever a gradient is not ~0, so the
          // parameters are compared through the loss they give, not element by element.
          return { trainLoss, evalLoss: graph.readF32(graph.loss, 1)[0], grads, split };
        } finally {
          graph.dispose();
        }
      };
      const ggml = run({ kind: 'ggml', reason: 'test' });
      const viaBlas = run({ ...blas, kind: 'blas', reason: 'test' });
      expect(ggml.split).toBeNull();
      const on = (backend: string) => viaBlas.split!.filter((m) => m.backend === backend).length;
      expect(on('BLAS')).toBeGreaterThanOrEqual(lora ? 8 : 20);
      // The LoRA products have rank 16 (8 padded) < 32: ggml-blas leaves them to ggml-cpu with
      // OpenBLAS; a oneDNN build takes them (and every other matmul of this graph) as well.
      if (blas.everyF32Product) expect(on('CPU')).toBe(0);
      else expect(on('CPU')).toBeGreaterThan(0);
      // Relative: the summed loss is in the hundreds, where one float32 step is ~1.5e-5, and
      // OpenBLAS adds its products in another order than ggml-cpu.
      const relative = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
      expect(relative(viaBlas.trainLoss, ggml.trainLoss), `${viaBlas.trainLoss} vs ${ggml.trainLoss}`).toBeLessThan(1e-6);
      expect(relative(viaBlas.evalLoss, ggml.evalLoss), `${viaBlas.evalLoss} vs ${ggml.evalLoss}`).toBeLessThan(1e-6);
      const close = (a: Float32Array[], b: Float32Array[], what: string) =>
        a.forEach((r, k) => {
          const scale = Math.max(...r.map(Math.abs));
          expect(scale).toBeGreaterThan(0);
          let worst = 0;
          for (let i = 0; i < r.length; i++) worst = Math.max(worst, Math.abs(b[k][i] - r[i]));
          expect(worst / scale, `${what} ${k}`).toBeLessThan(1e-4);
        });
      for (const pass of [0, 1]) close(ggml.grads[pass], viaBlas.grads[pass], `gradient, pass ${pass}`);
    });
  }

  it('a matmul by a BF16 weight whose F32 copy would pass the limit (unless oneDNN multiplies BF16 as it is), or a small one, stays on ggml-cpu', () => {
    if (!blas.ok) return;
    const config = testConfig({ vocabSize: 160, embeddingLength: 64, feedForwardLength: 96, blockCount: 2, headCount: 4, headCountKv: 2, tiedEmbeddings: true });
    const model = randomModel(config, 8);
    const spec = { rank: 8, alpha: 16, targets: loraTargetTensors(config, ['attn_q', 'attn_v']) };
    const weightTypes = new Map([...model.tensors.values()].filter((t) => t.shape.length === 2).map((t) => [t.name, GGML_TYPE_BF16]));
    const matmul: MatmulBackend = { ...blas, kind: 'blas', reason: 'test' };
    const placement = (blasLimits?: Partial<BlasLimits>) => {
      const graph = new LlamaGraph({ config, batch: 4, seqLen: 16, threads: 1, lora: spec, matmul, weightTypes, ...(blasLimits ? { blasLimits } : {}) });
      try {
        graph.loadWeights(model);
        const rng = new Rng(15);
        for (const t of graph.loraTensors.values()) graph.writeF32(t, Float32Array.from({ length: graph.g.nelements(t) }, () => rng.normal() * 0.1));
        graph.writeI32(graph.tokens, Int32Array.from({ length: 64 }, () => rng.int(config.vocabSize)));
        graph.writeF32(graph.mask, new Float32Array(64).fill(1));
        graph.setLossGradScale(1);
        graph.runTrain();
        expect(Number.isFinite(graph.readF32(graph.loss, 1)[0])).toBe(true);
        return graph.matmulPlacement()!;
      } finally {
        graph.dispose();
      }
    };
    // BF16 matmuls on BLAS, by the element count of their weight.
    const bf16OnBlas = (p: MatmulPlacement[]) =>
      p.filter((m) => m.op === 'MUL_MAT' && m.weightType === GGML_TYPE_BF16 && m.backend === 'BLAS').map((m) => m.weightElements);
    // The head (160 × 64: 40 KiB in F32) is the largest weight; the projections are 8–24 KiB.
    const all = placement({ maxConvertedBytes: 1 << 20, minMultiplyAdds: 0 });
    const headOnCpu = placement({ maxConvertedBytes: 32 * 1024, minMultiplyAdds: 0 });
    const noneOnBlas = placement({ maxConvertedBytes: 1, minMultiplyAdds: 0 });
    expect(bf16OnBlas(all)).toContain(160 * 64);
    if (blas.bf16) {
      // oneDNN multiplies a BF16 weight in BF16, converting nothing: no size limit applies.
      expect(bf16OnBlas(headOnCpu)).toEqual(bf16OnBlas(all));
      expect(bf16OnBlas(noneOnBlas)).toEqual(bf16OnBlas(all));
    } else {
      expect(bf16OnBlas(headOnCpu).length).toBeGreaterThan(0);
      expect(bf16OnBlas(headOnCpu).every((n) => 4 * n <= 32 * 1024)).toBe(true);
      expect(bf16OnBlas(headOnCpu).length).toBe(bf16OnBlas(all).filter((n) => 4 * n <= 32 * 1024).length);
      expect(bf16OnBlas(noneOnBlas)).toEqual([]);
    }
    // The same graph either way: only where the matmuls run differs.
    expect(noneOnBlas.length).toBe(all.length);
    // By default a product this small (64 tokens × 64 × 160 at most) stays on ggml-cpu, BF16 or F32.
    expect(placement().filter((m) => m.backend === 'BLAS')).toEqual([]);
    const smallest = Math.min(...all.filter((m) => m.backend === 'BLAS').map((m) => m.weightElements * 64));
    expect(placement({ maxConvertedBytes: 1 << 20, minMultiplyAdds: smallest + 1 }).filter((m) => m.backend === 'BLAS').length).toBeLessThan(
      all.filter((m) => m.backend === 'BLAS').length,
    );
  });
});

describe('gradient norm and clipping', () => {
  it.skipIf(!testDeviceBuilt()).each([
    ['full fine-tuning', null],
    ['LoRA', ['attn_q', 'attn_v']],
    ['LoRA on the head too', ['attn_q', 'attn_v', 'output']],
  ] as const)('on a device whose memory is not host memory, the one-off graphs read back what the CPU does: %s', (_, modules) => {
    const config = testConfig({ vocabSize: 40, embeddingLength: 32, feedForwardLength: 48, blockCount: 2, headCount: 4, headCountKv: 2, tiedEmbeddings: false });
    const model = randomModel(config, 5);
    const lora = modules ? { rank: 4, alpha: 8, targets: loraTargetTensors(config, modules) } : undefined;
    const readBack = (device: ReturnType<typeof testDevice>) => {
      const graph = new LlamaGraph({ config, batch: 2, seqLen: 8, threads: 1, lora, device });
      try {
        fillRandomBatch(graph, model, new Rng(3), 4);
        graph.setLossGradScale(1);
        graph.runTrain();
        const norm = graph.gradientNorm();
        graph.scaleGradients(0.5);
        const grads = graph.trainables.map((t) => graph.readF32(t.gradAcc));
        graph.runEval();
        // Scratch graphs of a few nodes, one reading a view of the hidden state: on a device they go
        // through a scheduler of their own.
        return { norm, grads, logits: graph.logitsF32(), weight: graph.weightF32('output.weight'), loss: graph.readF32(graph.loss, 1)[0] };
      } finally {
        graph.dispose();
      }
    };
    const onCpu = readBack(chooseComputeDevice('cpu'));
    expect(readBack(testDevice())).toEqual(onCpu);
  });

  it('computes the global L2 norm of the gradients and scales them in place, as the sums say', () => {
    const config = testConfig({ vocabSize: 40, embeddingLength: 32, feedForwardLength: 48, blockCount: 2, headCount: 4, headCountKv: 2 });
    const model = randomModel(config, 3);
    const graph = new LlamaGraph({ config, batch: 2, seqLen: 8, threads: 2 });
    try {
      fillRandomBatch(graph, model, new Rng(4), 5);
      graph.setLossGradScale(1);
      graph.runTrain();
      const before = graph.trainables.map((t) => graph.readF32(t.gradAcc));
      let sum = 0;
      for (const a of before) for (const x of a) sum += x * x;
      expect(sum).toBeGreaterThan(0);
      expect(Math.abs(graph.gradientNorm() / Math.sqrt(sum) - 1)).toBeLessThan(1e-6);
      graph.scaleGradients(0.25);
      graph.trainables.forEach((t, k) => expect([...graph.readF32(t.gradAcc)]).toEqual([...before[k]].map((x) => Math.fround(x * 0.25))));
    } finally {
      graph.dispose();
    }
  });
});
