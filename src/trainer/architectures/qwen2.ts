// `general.architecture = qwen2` (llama.cpp src/models/qwen2.cpp; Qwen2/Qwen2.5): the Llama block
// with biases on the Q, K and V projections and RoPE mode NEOX (rotating the two halves of each
// head rather than adjacent pairs).
import { LLAMA_DECODER } from './common.ts';
import type { ArchitectureSpec } from './types.ts';

export const qwen2: ArchitectureSpec = { ...LLAMA_DECODER, name: 'qwen2', ropeMode: 2, qkvBias: true };
