// The built-in base model as a file: llama.cpp (chat, evaluation) reads models from GGUF files.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeGgufModel } from './gguf-model.ts';
import { createTinyModel, NODEAI_TINY } from './tiny-model.ts';

/** Seed of the built-in base model's weights, so every data dir holds the same `nodeai-tiny`. */
export const TINY_BASE_SEED = 0;

/** The untrained `nodeai-tiny` as a GGUF in the data dir, written on first use. */
export async function ensureTinyBaseModel(dataDir: string): Promise<string> {
  const path = join(dataDir, 'models', `${NODEAI_TINY}.gguf`);
  if (!existsSync(path)) {
    await mkdir(join(dataDir, 'models'), { recursive: true });
    await writeGgufModel(path, createTinyModel({ seed: TINY_BASE_SEED }));
  }
  return path;
}
