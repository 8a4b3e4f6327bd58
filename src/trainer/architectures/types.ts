// What one architecture adds to the shared decoder (graph.ts, expectedTensors): which optional
// parts it has, how it reads and writes its own GGUF metadata keys, and its per-layer RoPE and
// attention window. Each architecture file fills this in from the llama.cpp graph it mirrors.
import type { GgufValue } from '../gguf.ts';
import type { LlamaConfig } from '../llama-model.ts';

/** Reads `<arch>.<key>` metadata: numbers (undefined when absent) and strings. */
export interface ArchMetadataReader {
  num(key: string): number | undefined;
  str(key: string): string | undefined;
  /** A GgufError naming the file, for a value the trainer cannot express. */
  unsupported(what: string): Error;
}

export interface LayerAttention {
  ropeFreqBase: number;
  /** ggml's freq_scale: 1 / linear scaling factor. */
  ropeFreqScale: number;
  /** Sliding window (keys at distance ≥ window are masked), or null for full causal attention. */
  window: number | null;
}

export interface ArchitectureSpec {
  readonly name: string;
  /** ggml rope mode: 0 = NORMAL (adjacent pairs), 2 = NEOX (halves), as llama_model_rope_type picks. */
  readonly ropeMode: 0 | 2;
  /** Q/K/V projections carry biases `blk.N.attn_{q,k,v}.bias`. */
  readonly qkvBias: boolean;
  /** Per-head RMSNorm of Q and K before RoPE (`blk.N.attn_{q,k}_norm.weight`, [head_dim]). */
  readonly qkNorm: boolean;
  /** RMSNorm of the attention and FFN outputs before each residual add (Gemma's post-norms). */
  readonly postNorms: boolean;
  /** Gated FFN activation: SiLU (SwiGLU) or tanh-approximated GELU (GEGLU). */
  readonly ffnActivation: 'silu' | 'gelu';
  /** The file may carry `rope_freqs.weight` (Llama 3.x frequency factors). */
  readonly allowsRopeFreqs: boolean;
  /** Factor on the token embeddings (Gemma: √d_model). */
  embeddingScale(c: LlamaConfig): number;
  /** Scale of Q·K before the softmax. */
  attentionScale(c: LlamaConfig): number;
  layerAttention(c: LlamaConfig, layer: number): LayerAttention;
  /** Architecture-only config fields from `<arch>.*` metadata; refuses what the graph lacks. */
  readConfig(meta: ArchMetadataReader, c: LlamaConfig): Partial<LlamaConfig>;
  /** Architecture-only `<arch>.*` keys (without the prefix) for a config. */
  writeMetadata(c: LlamaConfig): Array<[string, GgufValue]>;
}
