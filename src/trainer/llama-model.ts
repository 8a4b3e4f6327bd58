// The shared description of a Llama-family model: the trainer's graph, the GGUF reader/writer,
// the tiny-model factory and the checkpoints all speak this shape.
//
// Tensor names and layouts follow llama.cpp's GGUF convention for `general.architecture = llama`,
// so a model written from these weights loads in llama.cpp / node-llama-cpp unchanged. Shapes are
// in ggml order (ne0 first): a projection `blk.N.attn_q.weight` from d_model to n_head*head_dim
// has shape [d_model, n_head*head_dim]. Q/K weights are in the layout that ggml_rope mode 0
// (LLAMA_ROPE_TYPE_NORM) expects, which is what llama.cpp applies to the llama architecture.

import type { GgufValue } from './gguf.ts';

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

export const tensorNames = {
  tokenEmbd: 'token_embd.weight',
  outputNorm: 'output_norm.weight',
  output: 'output.weight',
  attnNorm: (i: number) => `blk.${i}.attn_norm.weight`,
  attnQ: (i: number) => `blk.${i}.attn_q.weight`,
  attnK: (i: number) => `blk.${i}.attn_k.weight`,
  attnV: (i: number) => `blk.${i}.attn_v.weight`,
  attnOutput: (i: number) => `blk.${i}.attn_output.weight`,
  ffnNorm: (i: number) => `blk.${i}.ffn_norm.weight`,
  ffnGate: (i: number) => `blk.${i}.ffn_gate.weight`,
  ffnUp: (i: number) => `blk.${i}.ffn_up.weight`,
  ffnDown: (i: number) => `blk.${i}.ffn_down.weight`,
} as const;

/** Every tensor a model with this config has, with its ggml shape. */
/** Weights of a model of this shape. */
export function parameterCount(config: LlamaConfig): number {
  return expectedTensors(config).reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
}

export function expectedTensors(c: LlamaConfig): Array<{ name: string; shape: number[] }> {
  const headDim = c.embeddingLength / c.headCount;
  const kvDim = headDim * c.headCountKv;
  const out: Array<{ name: string; shape: number[] }> = [
    { name: tensorNames.tokenEmbd, shape: [c.embeddingLength, c.vocabSize] },
  ];
  for (let i = 0; i < c.blockCount; i++) {
    out.push(
      { name: tensorNames.attnNorm(i), shape: [c.embeddingLength] },
      { name: tensorNames.attnQ(i), shape: [c.embeddingLength, c.embeddingLength] },
      { name: tensorNames.attnK(i), shape: [c.embeddingLength, kvDim] },
      { name: tensorNames.attnV(i), shape: [c.embeddingLength, kvDim] },
      { name: tensorNames.attnOutput(i), shape: [c.embeddingLength, c.embeddingLength] },
      { name: tensorNames.ffnNorm(i), shape: [c.embeddingLength] },
      { name: tensorNames.ffnGate(i), shape: [c.embeddingLength, c.feedForwardLength] },
      { name: tensorNames.ffnUp(i), shape: [c.embeddingLength, c.feedForwardLength] },
      { name: tensorNames.ffnDown(i), shape: [c.feedForwardLength, c.embeddingLength] },
    );
  }
  out.push({ name: tensorNames.outputNorm, shape: [c.embeddingLength] });
  if (!c.tiedEmbeddings) out.push({ name: tensorNames.output, shape: [c.embeddingLength, c.vocabSize] });
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
