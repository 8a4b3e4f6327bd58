// Parity with llama.cpp is the test of each architecture: a random-weight model in that
// architecture's exact GGUF layout, weights large enough that attention is far from uniform, the
// same tokens through the trainer's graph and through llama.cpp (node-llama-cpp, F32 weights and
// KV cache, no flash attention), and next-token log-probabilities compared at every position.
//
// Tolerances: 1e-4 on log p for the SiLU architectures (float32 rounding, measured ~5e-6); 5e-3
// for Gemma 3, whose GELU llama.cpp reads from an F16 table of rounded inputs (measured ~1e-3).
// The mutation tests show a wrong graph misses by far more than either.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGgufHeader, writeGguf, type GgufValue } from '../gguf.ts';
import { readGgufModel, writeGgufModel } from '../gguf-model.ts';
import { disposeLocalLlama } from '../inference-runtime.ts';
import { tensorNames, type LlamaConfig, type LlamaModel } from '../llama-model.ts';
import { llamaCppLogProbs, maxLogProbGap, trainerLogProbs } from '../parity-harness.ts';
import { buildRandomModel, type BuildRandomModelOptions } from '../random-model.ts';
import { tinyTokenizerSpec } from '../tiny-model.ts';
import type { ArchitectureName } from './index.ts';

const SHAPE: BuildRandomModelOptions['config'] = {
  contextLength: 64,
  embeddingLength: 32,
  blockCount: 2,
  headCount: 4,
  headCountKv: 2,
  feedForwardLength: 48,
  ropeFreqBase: 100,
  rmsNormEps: 1e-6,
  tiedEmbeddings: false,
};

interface ParityCase {
  label: string;
  architecture: ArchitectureName;
  config: BuildRandomModelOptions['config'];
  tolerance: number;
}

const CASES: ParityCase[] = [
  { label: 'llama (Llama 2 / SmolLM2 layout)', architecture: 'llama', config: SHAPE, tolerance: 1e-4 },
  {
    label: 'llama 3 (rope_freqs, head size 16 on d_model 32)',
    architecture: 'llama',
    config: { ...SHAPE, headDim: 16, ropeFreqFactors: true, ropeFreqBase: 500000 },
    tolerance: 1e-4,
  },
  { label: 'qwen2 (Q/K/V biases, NEOX, tied head)', architecture: 'qwen2', config: { ...SHAPE, tiedEmbeddings: true }, tolerance: 1e-4 },
  { label: 'qwen3 (Q/K norms, NEOX, head size 16)', architecture: 'qwen3', config: { ...SHAPE, headDim: 16 }, tolerance: 1e-4 },
  {
    label: 'gemma3 (sliding window 4 on layer 0, own RoPE base; GEGLU, post-norms, √d scale)',
    architecture: 'gemma3',
    config: {
      ...SHAPE,
      headCount: 2,
      headCountKv: 1,
      headDim: 16,
      tiedEmbeddings: true,
      ropeFreqBase: 1000,
      slidingWindow: 4,
      slidingWindowPattern: 2,
      ropeFreqBaseSwa: 50,
    },
    tolerance: 5e-3,
  },
];

/** 16 positions: longer than the sliding window, so the window mask matters. */
const TOKENS = Array.from({ length: 16 }, (_, i) => (i * 37 + 11) % 256);

function randomModel(c: ParityCase): LlamaModel {
  return buildRandomModel({
    architecture: c.architecture,
    config: c.config,
    tokenizer: tinyTokenizerSpec(),
    seed: 3,
    weightStd: 0.3,
    biasStd: 0.5,
    normJitter: 0.2,
  });
}

/** Rewrites a GGUF's `<from>.*` keys and general.architecture to `to` (same tensors). */
async function relabel(src: string, dst: string, from: string, to: string): Promise<void> {
  const h = await readGgufHeader(src);
  const m = await readGgufModel(src);
  const meta = new Map<string, GgufValue>();
  for (const [k, v] of h.metadata) meta.set(k.startsWith(`${from}.`) ? `${to}.${k.slice(from.length + 1)}` : k, v);
  meta.set('general.architecture', { type: 'string', value: to });
  await writeGguf(dst, meta, [...m.tensors.values()].map((t) => ({ name: t.name, shape: t.shape, data: t.data })));
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodeai-parity-'));
});
afterAll(async () => {
  await disposeLocalLlama();
  await rm(dir, { recursive: true, force: true });
});

describe('trainer forward = llama.cpp forward', () => {
  for (const c of CASES) {
    it(c.label, async () => {
      const model = randomModel(c);
      const path = join(dir, `${c.architecture}-${CASES.indexOf(c)}.gguf`);
      await writeGgufModel(path, model);
      // Through the file, so the reader's config is what the trainer uses.
      const back = await readGgufModel(path);
      expect(back.config).toEqual(model.config);
      const ours = trainerLogProbs(back, TOKENS);
      const theirs = await llamaCppLogProbs(path, TOKENS, model.config.vocabSize);
      // The weights are large enough that predictions are far from flat somewhere (≥ 20× uniform).
      const top = Math.max(...theirs.map((lp) => Math.max(...lp.filter(Number.isFinite))));
      expect(top).toBeGreaterThan(Math.log(20 / model.config.vocabSize));
      expect(maxLogProbGap(ours, theirs)).toBeLessThan(c.tolerance);
    });
  }
});

describe('the parity check bites (mutations of the graph fail it)', () => {
  const byArch = (a: ArchitectureName) => CASES.find((c) => c.architecture === a && c.config.ropeFreqFactors !== true)!;

  async function gap(c: ParityCase, mutate: (m: LlamaModel) => LlamaModel, relabelAs?: string): Promise<number> {
    const model = randomModel(c);
    let path = join(dir, `m-${c.architecture}.gguf`);
    await writeGgufModel(path, model);
    if (relabelAs) {
      const other = join(dir, `m-${c.architecture}-as-${relabelAs}.gguf`);
      await relabel(path, other, c.architecture, relabelAs);
      path = other;
    }
    return maxLogProbGap(trainerLogProbs(mutate(model), TOKENS), await llamaCppLogProbs(path, TOKENS, model.config.vocabSize));
  }

  it('qwen2 with one bias dropped (attn_k.bias of layer 1 zeroed) fails', async () => {
    const c = byArch('qwen2');
    const g = await gap(c, (m) => {
      m.tensors.get(tensorNames.attnKBias(1))!.data.fill(0);
      return m;
    });
    expect(g).toBeGreaterThan(100 * c.tolerance);
  });

  it('the other RoPE mode fails: a llama graph (NORMAL) against llama.cpp running the same tensors as qwen2 (NEOX)', async () => {
    const c = byArch('llama');
    // llama.cpp's qwen2 takes Q/K/V biases as optional, so these tensors load as qwen2 unchanged.
    expect(await gap(c, (m) => m, 'qwen2')).toBeGreaterThan(100 * c.tolerance);
  });

  it('qwen3 without its Q/K norms fails', async () => {
    const c = byArch('qwen3');
    const g = await gap(c, (m) => {
      for (let l = 0; l < m.config.blockCount; l++) {
        m.tensors.get(tensorNames.attnQNorm(l))!.data.fill(1);
        m.tensors.get(tensorNames.attnKNorm(l))!.data.fill(1);
      }
      return m;
    });
    expect(g).toBeGreaterThan(10 * c.tolerance);
  });

  it('gemma3 without its sliding window (or with the global RoPE base on local layers) fails', async () => {
    const c = byArch('gemma3');
    const withConfig = (over: Partial<LlamaConfig>) => (m: LlamaModel) => ({ ...m, config: { ...m.config, ...over } });
    expect(await gap(c, withConfig({ slidingWindow: undefined }))).toBeGreaterThan(10 * c.tolerance);
    expect(await gap(c, withConfig({ ropeFreqBaseSwa: c.config.ropeFreqBase }))).toBeGreaterThan(10 * c.tolerance);
  });
});
