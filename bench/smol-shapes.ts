// SmolLM2-135M's shapes (the smol_lora benchmark's model): vocab 49152, d 576, 30 layers, 9 heads
// over 3 KV heads, SwiGLU 1536, tied embeddings, context 256 as the benchmarks train it.
import type { LlamaConfig } from '../src/trainer/llama-model.ts';

export const SMOL_LM2_135M_SHAPES: LlamaConfig = {
  vocabSize: 49152,
  contextLength: 256,
  embeddingLength: 576,
  blockCount: 30,
  headCount: 9,
  headCountKv: 3,
  feedForwardLength: 1536,
  ropeFreqBase: 10000,
  rmsNormEps: 1e-5,
  tiedEmbeddings: true,
};
