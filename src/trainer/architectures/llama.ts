// `general.architecture = llama` (llama.cpp src/models/llama.cpp): RMSNorm → attention with RoPE
// mode NORMAL → SwiGLU. Llama 3.x files add `rope_freqs.weight`, per-pair frequency factors that
// ggml_rope_ext divides each pair's angle by (get_rope_factors). Llama, Llama 3.x, Mistral 7B,
// SmolLM2 and TinyLlama GGUFs all use this architecture.
import { LLAMA_DECODER } from './common.ts';
import type { ArchitectureSpec } from './types.ts';

export const llama: ArchitectureSpec = { ...LLAMA_DECODER, name: 'llama', ropeMode: 0, allowsRopeFreqs: true };
