// The shared description of a decoder model: the trainer's graph, the GGUF reader/writer, the
// tiny-model factory and the checkpoints all speak this shape. The name is historical: `config`
// covers every architecture in architectures/ (llama, qwen2, qwen3, gemma3), whose differences
// are optional fields that are absent for a plain Llama.
//
// Tensor names and layouts follow llama.cpp's GGUF convention (tensor-names.ts), so a model
// written from these weights loads in llama.cpp / node-llama-cpp unchanged. Shapes are in ggml
// order (ne0 first): a projection `blk.N.attn_q.weight` from d_model to n_head*head_dim has shape
// [d_model, n_head*head_dim]. Q/K weights are in the layout the architecture's RoPE mode expects.

import { architectureSpec, type ArchitectureName } from './architectures/index.ts';
import { headDimOf } from './architectures/common.ts';
import type { GgufValue } from './gguf.ts';
import { tensorNames } from './tensor-names.ts';

export { headDimOf, tensorNames };
export type { ArchitectureName };

export interface LlamaConfig {
  vocabSize: number;
  contextLength: number;
  embeddingLength: number; // d_model
  blockCount: number;
  headCount: number;
  headCountKv: number; // grouped-query attention: headCount % headCountKv === 0
  feedForwardLength: number;
  ropeFreqBase: number;
  rmsNormEps: number;
  /** When true there is no `output.weight`: the head reuses `token_embd.weight`. */
  tiedEmbeddings: boolean;
  // Optional fields, absent for a plain Llama (so configs of older files and checkpoints compare
  // equal): what the other architectures (architectures/*.ts) need.
  /** `general.architecture`; absent means 'llama'. */
  architecture?: ArchitectureName;
  /** Head size (key_length = value_length) when it is not embeddingLength / headCount. */
  headDim?: number;
  /** The model has `rope_freqs.weight` (Llama 3.x RoPE frequency factors). */
  ropeFreqFactors?: boolean;
  /** Linear RoPE scaling factor (`rope.scaling.factor` with type linear); absent means 1. */
  ropeScaleLinear?: number;
  /** Sliding-window attention size of the local layers (Gemma 3). */
  slidingWindow?: number;
  /** Every P-th layer is global, the rest local (Gemma 3; default 6). */
  slidingWindowPattern?: number;
  /** RoPE base of the sliding-window layers (Gemma 3; default 10000). */
  ropeFreqBaseSwa?: number;
}

export interface NamedTensor {
  name: string;
  /** ggml order: shape[0] is the fastest-varying dimension. */
  shape: number[];
  data: Float32Array;
}

/**
 * A weight left as its GGUF file stores it (any ggml type, quantized included), to be read by the
 * trainer straight into a ggml tensor of the same type: a frozen LoRA base weight never exists as
 * a float32 JavaScript array.
 */
export interface StoredTensor {
  name: string;
  /** ggml order, as in {@link NamedTensor}. */
  shape: number[];
  /** ggml_type id (ggml.h), e.g. 12 for Q4_K. */
  type: number;
  typeName: string;
  /** Where its bytes are: `byteLength` bytes at absolute `offset` of the GGUF file `path`. */
  path: string;
  offset: number;
  byteLength: number;
}

/** Tokenizer facts stored with the model (GGUF `tokenizer.ggml.*`). */
export interface TokenizerSpec {
  model: 'llama' | 'gpt2';
  tokens: string[];
  scores?: number[];
  tokenTypes?: number[];
  merges?: string[];
  pre?: string;
  bosId?: number;
  eosId?: number;
  padId?: number;
  /**
   * Whether a prompt starts with BOS even when the chat template does not write it
   * (GGUF `tokenizer.ggml.add_bos_token`; llama.cpp's default is true for 'llama', false for 'gpt2').
   */
  addBos?: boolean;
  /**
   * Whether an SPM ('llama') vocabulary prepends a space to the text (GGUF
   * `tokenizer.ggml.add_space_prefix`; llama.cpp's default is true). Gemma's is false.
   */
  addSpacePrefix?: boolean;
  /** Jinja chat template (GGUF `tokenizer.chat_template`), rendered with @huggingface/jinja. */
  chatTemplate: string;
}

export interface LlamaModel {
  name: string;
  config: LlamaConfig;
  tokenizer: TokenizerSpec;
  tensors: Map<string, NamedTensor>;
  /**
   * Weights kept as their file stores them (read with `weights: 'stored'`, for LoRA): a tensor
   * name is in `tensors` or here, never both. Only the trainer's frozen base reads these.
   */
  stored?: Map<string, StoredTensor>;
  /**
   * GGUF metadata of the source file that the fields above do not describe (general.license,
   * tokenizer.ggml.add_bos_token, …), carried through unchanged when the model is written again.
   * Keys derived from `config` and `tokenizer` are always rewritten from those fields.
   */
  extraMetadata?: Map<string, GgufValue>;
}

/** Weights of a model of this shape. */
export function parameterCount(config: LlamaConfig): number {
  return expectedTensors(config).reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
}

export interface ExpectedTensor {
  name: string;
  shape: number[];
  /** Never trained, even in full fine-tuning (RoPE frequency factors: ggml has no gradient for them). */
  frozen?: boolean;
}

/** Every tensor a model with this config has, with its ggml shape, in file order. */
export function expectedTensors(c: LlamaConfig): ExpectedTensor[] {
  const arch = architectureSpec(c.architecture);
  const D = c.embeddingLength;
  const hd = headDimOf(c);
  const qDim = hd * c.headCount;
  const kvDim = hd * c.headCountKv;
  const out: ExpectedTensor[] = [{ name: tensorNames.tokenEmbd, shape: [D, c.vocabSize] }];
  if (c.ropeFreqFactors) out.push({ name: tensorNames.ropeFreqs, shape: [hd / 2], frozen: true });
  for (let i = 0; i < c.blockCount; i++) {
    out.push(
      { name: tensorNames.attnNorm(i), shape: [D] },
      { name: tensorNames.attnQ(i), shape: [D, qDim] },
      { name: tensorNames.attnK(i), shape: [D, kvDim] },
      { name: tensorNames.attnV(i), shape: [D, kvDim] },
    );
    if (arch.qkvBias) {
      out.push(
        { name: tensorNames.attnQBias(i), shape: [qDim] },
        { name: tensorNames.attnKBias(i), shape: [kvDim] },
        { name: tensorNames.attnVBias(i), shape: [kvDim] },
      );
    }
    if (arch.qkNorm) out.push({ name: tensorNames.attnQNorm(i), shape: [hd] }, { name: tensorNames.attnKNorm(i), shape: [hd] });
    out.push({ name: tensorNames.attnOutput(i), shape: [qDim, D] });
    if (arch.postNorms) out.push({ name: tensorNames.attnPostNorm(i), shape: [D] });
    out.push(
      { name: tensorNames.ffnNorm(i), shape: [D] },
      { name: tensorNames.ffnGate(i), shape: [D, c.feedForwardLength] },
      { name: tensorNames.ffnUp(i), shape: [D, c.feedForwardLength] },
      { name: tensorNames.ffnDown(i), shape: [c.feedForwardLength, D] },
    );
    if (arch.postNorms) out.push({ name: tensorNames.ffnPostNorm(i), shape: [D] });
  }
  out.push({ name: tensorNames.outputNorm, shape: [D] });
  if (!c.tiedEmbeddings) out.push({ name: tensorNames.output, shape: [D, c.vocabSize] });
  return out;
}

/**
 * A LoRA adapter in llama.cpp's GGUF adapter convention: for a base weight `W` named `X.weight`
 * with ggml shape [n_in, n_out], `X.weight.lora_a` has shape [n_in, rank] and `X.weight.lora_b`
 * has shape [rank, n_out]; the layer computes W·x + (alpha / rank) · B·(A·x).
 */
export interface LoraAdapter {
  rank: number;
  alpha: number;
  /** Base tensor names the adapter applies to, e.g. `blk.0.attn_q.weight`. */
  targets: string[];
  tensors: Map<string, NamedTensor>;
}

export const loraTensorNames = (base: string) => ({ a: `${base}.lora_a`, b: `${base}.lora_b` });

/** One training sequence, already rendered with the chat template and tokenized. */
export interface TrainingSequence {
  tokens: Int32Array;
  /** 1 where the next-token loss counts (assistant tokens with weight 1), 0 elsewhere. */
  lossMask: Uint8Array;
}
