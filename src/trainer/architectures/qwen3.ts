// `general.architecture = qwen3` (llama.cpp src/models/qwen3.cpp; Qwen3 dense): no biases, but a
// per-head RMSNorm on Q and K (weights [head_dim]) before RoPE mode NEOX. Its head size is set by
// `qwen3.attention.key_length` (Qwen3-0.6B: 16 heads of 128 on a 1024-wide model).
import { LLAMA_DECODER } from './common.ts';
import type { ArchitectureSpec } from './types.ts';

export const qwen3: ArchitectureSpec = { ...LLAMA_DECODER, name: 'qwen3', ropeMode: 2, qkNorm: true };
