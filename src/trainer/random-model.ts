// Random-weight models in any supported architecture's exact tensor layout, from a seed: the
// parity tests' fixtures, and (with a real tokenizer from hf-tokenizer.ts and a real model's
// shapes) stand-ins for real bases in benchmarks and demos where the real weights cannot be used.
import type { ArchitectureName } from './architectures/index.ts';
import { expectedTensors, headDimOf, tensorNames, type LlamaConfig, type LlamaModel, type NamedTensor, type TokenizerSpec } from './llama-model.ts';
import { SeededRandom } from './tiny-model.ts';

/** Llama 3.x RoPE scaling (HF `rope_scaling` with rope_type llama3), as llama.cpp's converter turns it into rope_freqs. */
export interface Llama3RopeScaling {
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalContextLength: number;
}

/** Llama 3.2's published values. */
export const LLAMA3_ROPE_SCALING: Llama3RopeScaling = { factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 8192 };

/** The `rope_freqs.weight` values convert_hf_to_gguf.py writes for a Llama 3.x model (one per rotated pair). */
export function llama3RopeFactors(headDim: number, freqBase: number, s: Llama3RopeScaling = LLAMA3_ROPE_SCALING): Float32Array {
  const lowWavelen = s.originalContextLength / s.lowFreqFactor;
  const highWavelen = s.originalContextLength / s.highFreqFactor;
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < headDim / 2; i++) {
    const freq = 1 / Math.pow(freqBase, (2 * i) / headDim);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = (s.originalContextLength / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

export interface BuildRandomModelOptions {
  architecture: ArchitectureName;
  /** Everything but the vocabulary size (the tokenizer's) and the architecture. */
  config: Omit<LlamaConfig, 'vocabSize' | 'architecture'>;
  tokenizer: TokenizerSpec;
  seed: number;
  name?: string;
  /** Std of the projection and embedding weights (default 0.02; larger makes attention sharper). */
  weightStd?: number;
  /** Std of the biases (default weightStd). */
  biasStd?: number;
  /** Norm weights are 1 + normJitter·N(0, 1) (default 0), so a wrongly applied norm shows. */
  normJitter?: number;
  /** Llama 3.x RoPE factors when config.ropeFreqFactors is set (default LLAMA3_ROPE_SCALING). */
  ropeScaling?: Llama3RopeScaling;
}

/** A model llama.cpp loads and the trainer trains, with seeded random weights. */
export function buildRandomModel(o: BuildRandomModelOptions): LlamaModel {
  const config: LlamaConfig = { ...o.config, vocabSize: o.tokenizer.tokens.length };
  if (o.architecture !== 'llama') config.architecture = o.architecture;
  // As the GGUF reader does: a head size of d_model / heads is the default, not a field.
  if (config.headDim === config.embeddingLength / config.headCount) delete config.headDim;
  const rng = new SeededRandom(o.seed);
  const std = o.weightStd ?? 0.02;
  const biasStd = o.biasStd ?? std;
  const jitter = o.normJitter ?? 0;
  const tensors = new Map<string, NamedTensor>();
  for (const { name, shape } of expectedTensors(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (name === tensorNames.ropeFreqs) data = llama3RopeFactors(headDimOf(config), config.ropeFreqBase, o.ropeScaling);
    else if (name.endsWith('norm.weight')) data = Float32Array.from({ length: n }, () => 1 + jitter * rng.normal());
    else if (name.endsWith('.bias')) data = Float32Array.from({ length: n }, () => biasStd * rng.normal());
    else data = Float32Array.from({ length: n }, () => std * rng.normal());
    tensors.set(name, { name, shape: [...shape], data });
  }
  return { name: o.name ?? `random-${o.architecture}`, config, tokenizer: o.tokenizer, tensors };
}
