// Defaults most architectures share: llama.cpp's RoPE (the file's base and linear factor on every
// layer, full causal attention) and 1/√head_dim attention.
import type { LlamaConfig } from '../llama-model.ts';
import type { ArchitectureSpec, LayerAttention } from './types.ts';

export function globalRope(c: LlamaConfig): LayerAttention {
  return { ropeFreqBase: c.ropeFreqBase, ropeFreqScale: 1 / (c.ropeScaleLinear ?? 1), window: null };
}

export function inverseSqrtHeadDim(c: LlamaConfig): number {
  return 1 / Math.sqrt(headDimOf(c));
}

/** Size of one attention head: `<arch>.attention.key_length` when the file sets it, else d_model / heads. */
export function headDimOf(c: LlamaConfig): number {
  return c.headDim ?? c.embeddingLength / c.headCount;
}

/**
 * The Llama decoder's answers to every question of ArchitectureSpec but its name and RoPE mode:
 * an architecture file spreads this and overrides what its llama.cpp graph does differently.
 */
export const LLAMA_DECODER: Omit<ArchitectureSpec, 'name' | 'ropeMode'> = {
  qkvBias: false,
  qkNorm: false,
  postNorms: false,
  ffnActivation: 'silu',
  allowsRopeFreqs: false,
  embeddingScale: () => 1,
  attentionScale: inverseSqrtHeadDim,
  layerAttention: (c) => globalRope(c),
  readConfig: () => ({}),
  writeMetadata: () => [],
};
