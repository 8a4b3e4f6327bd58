// GGUF tensor names of the decoder families the trainer builds (llama.cpp's src/llama-arch.cpp,
// LLM_TENSOR_NAMES). One table for every architecture: each one uses a subset.

export const tensorNames = {
  tokenEmbd: 'token_embd.weight',
  outputNorm: 'output_norm.weight',
  output: 'output.weight',
  /** Llama 3.x RoPE frequency factors, one per rotated pair; frozen (ggml has no gradient for them). */
  ropeFreqs: 'rope_freqs.weight',
  attnNorm: (i: number) => `blk.${i}.attn_norm.weight`,
  attnQ: (i: number) => `blk.${i}.attn_q.weight`,
  attnK: (i: number) => `blk.${i}.attn_k.weight`,
  attnV: (i: number) => `blk.${i}.attn_v.weight`,
  attnQBias: (i: number) => `blk.${i}.attn_q.bias`,
  attnKBias: (i: number) => `blk.${i}.attn_k.bias`,
  attnVBias: (i: number) => `blk.${i}.attn_v.bias`,
  attnQNorm: (i: number) => `blk.${i}.attn_q_norm.weight`,
  attnKNorm: (i: number) => `blk.${i}.attn_k_norm.weight`,
  attnOutput: (i: number) => `blk.${i}.attn_output.weight`,
  attnPostNorm: (i: number) => `blk.${i}.post_attention_norm.weight`,
  ffnNorm: (i: number) => `blk.${i}.ffn_norm.weight`,
  ffnGate: (i: number) => `blk.${i}.ffn_gate.weight`,
  ffnUp: (i: number) => `blk.${i}.ffn_up.weight`,
  ffnDown: (i: number) => `blk.${i}.ffn_down.weight`,
  ffnPostNorm: (i: number) => `blk.${i}.post_ffw_norm.weight`,
} as const;
