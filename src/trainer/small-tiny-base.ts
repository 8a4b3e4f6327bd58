// For tests: a base model shaped like nodeai-tiny (its byte tokenizer and ChatML template) but a
// quarter as wide with one block, written as a GGUF file. Process-level tests (supervisor, leases,
// takeover) train it by path, as a user trains any GGUF, so a run of a few dozen steps takes about
// a second instead of the built-in model's several.
import { join } from 'node:path';
import { writeGgufModel } from './gguf-model.ts';
import { createTinyModel } from './tiny-model.ts';

/** The shape overrides of the smaller model (vocabulary and context stay nodeai-tiny's). */
export const SMALL_TINY_SHAPE = { embeddingLength: 32, blockCount: 1, headCount: 2, headCountKv: 1, feedForwardLength: 64 } as const;

/** The file's stem, which names what a run writes (`ft-small-tiny.gguf`) and the jobs' models (`ft:small-tiny:…`). */
export const SMALL_TINY_STEM = 'small-tiny';

/** Writes the smaller base (weights from `seed`) as `dir/small-tiny.gguf` and returns its path. */
export async function writeSmallTinyBase(dir: string, seed = 0): Promise<string> {
  const path = join(dir, `${SMALL_TINY_STEM}.gguf`);
  await writeGgufModel(path, createTinyModel({ seed, name: SMALL_TINY_STEM, ...SMALL_TINY_SHAPE }));
  return path;
}
