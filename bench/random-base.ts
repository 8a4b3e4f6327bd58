// Quantized random-weight bases in a real model's exact layout, for benchmarks and demos where the
// real weights cannot be downloaded: written as F16 by NodeAI, then quantized by llama.cpp's own
// quantizer, as the real GGUF files were made from F16 ones.
import { unlink } from 'node:fs/promises';
import { llamaQuantize, type LlamaFtypeName } from '../src/trainer/ggml/llama-quantize.ts';
import { writeGgufModel } from '../src/trainer/gguf-model.ts';
import type { LlamaModel, TokenizerSpec } from '../src/trainer/llama-model.ts';
import { TOKEN_TYPE, tinyTokenizerSpec } from '../src/trainer/tiny-model.ts';

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
  const tiny = tinyTokenizerSpec();
  const tokens = [...tiny.tokens];
  const tokenTypes = [...(tiny.tokenTypes ?? [])];
  for (let id = tokens.length; id < size; id++) {
    tokens.push(`[PAD${id}]`);
    tokenTypes.push(TOKEN_TYPE.unused);
  }
  return { ...tiny, tokens, tokenTypes };
}
