// `general.architecture = smollm3` (llama.cpp src/models/smollm3.cpp; SmolLM3): the Llama block
// with RoPE mode NORMAL, except that every 4th layer (l + 1 ≡ 0 mod 4, n_no_rope_layer_step)
// attends without any positional encoding (NoPE).
import { globalRope, LLAMA_DECODER } from './common.ts';
import type { ArchitectureSpec } from './types.ts';

const NO_ROPE_LAYER_STEP = 4;

export const smollm3: ArchitectureSpec = {
  ...LLAMA_DECODER,
  name: 'smollm3',
  ropeMode: 0,
  layerAttention: (c, layer) => ({ ...globalRope(c), rope: (layer + 1) % NO_ROPE_LAYER_STEP !== 0 }),
};
