// `general.architecture = gemma3` (llama.cpp src/models/gemma3.cpp; Gemma 3 text models):
// - token embeddings scaled by √d_model;
// - per-head Q/K RMSNorm before RoPE mode NEOX, then Q scaled by f_attention_scale
//   (1/√key_length; 1/√(d_model/heads) for the 62-layer 27B) and softmax without a further scale;
// - RMSNorm after attention and after the FFN, before each residual add
//   (`post_attention_norm`, `post_ffw_norm`);
// - GEGLU FFN (tanh-approximated GELU of the gate times the up projection);
// - sliding-window layers: with `gemma3.attention.sliding_window` = W, layer l is local when
//   l % P < P - 1 (P = `sliding_window_pattern`, default 6): keys more than W - 1 positions back
//   are masked, and RoPE uses `rope.freq_base_swa` (default 10000) with no scaling; the other
//   layers use `rope.freq_base` and the file's linear scaling.
// GGUF norms already hold Gemma's (1 + w), so every norm is a plain RMSNorm times its weight.
import { gguf } from '../gguf.ts';
import type { LlamaConfig } from '../llama-model.ts';
import { globalRope, headDimOf, LLAMA_DECODER } from './common.ts';
import type { ArchitectureSpec, LayerAttention } from './types.ts';

const DEFAULT_SWA_PATTERN = 6;
const DEFAULT_SWA_FREQ_BASE = 10000;

function isSlidingLayer(c: LlamaConfig, layer: number): boolean {
  if (!c.slidingWindow) return false;
  const p = c.slidingWindowPattern ?? DEFAULT_SWA_PATTERN;
  return p === 0 || layer % p < p - 1;
}

export const gemma3: ArchitectureSpec = {
  ...LLAMA_DECODER,
  name: 'gemma3',
  ropeMode: 2,
  qkNorm: true,
  postNorms: true,
  ffnActivation: 'gelu',
  embeddingScale: (c) => Math.fround(Math.sqrt(c.embeddingLength)),
  attentionScale: (c) => (c.blockCount === 62 ? 1 / Math.sqrt(c.embeddingLength / c.headCount) : 1 / Math.sqrt(headDimOf(c))),
  layerAttention(c, layer): LayerAttention {
    if (!isSlidingLayer(c, layer)) return globalRope(c);
    return { ropeFreqBase: c.ropeFreqBaseSwa ?? DEFAULT_SWA_FREQ_BASE, ropeFreqScale: 1, window: c.slidingWindow! };
  },
  readConfig(meta) {
    const out: Partial<LlamaConfig> = {};
    const softcap = meta.num('final_logit_softcapping');
    if (softcap) throw meta.unsupported(`final logit soft-capping (${softcap})`);
    const window = meta.num('attention.sliding_window');
    if (window) {
      out.slidingWindow = window;
      const pattern = meta.num('attention.sliding_window_pattern');
      if (pattern !== undefined) out.slidingWindowPattern = pattern;
      const base = meta.num('rope.freq_base_swa');
      if (base !== undefined) out.ropeFreqBaseSwa = base;
    }
    return out;
  },
  writeMetadata(c) {
    const out: Array<[string, ReturnType<typeof gguf.u32>]> = [];
    if (c.slidingWindow) {
      out.push(['attention.sliding_window', gguf.u32(c.slidingWindow)]);
      if (c.slidingWindowPattern !== undefined) out.push(['attention.sliding_window_pattern', gguf.u32(c.slidingWindowPattern)]);
      if (c.ropeFreqBaseSwa !== undefined) out.push(['rope.freq_base_swa', gguf.f32(c.ropeFreqBaseSwa)]);
    }
    return out;
  },
};
