// Reading examples for the loader nodes: streamed through src/datasets, so parse errors name the
// line, and one bad line stops the load with that line's reason.
import { createReadStream } from 'node:fs';
import { DatasetError, readExamples, type DatasetSource, type Example, type FileType } from '../datasets/index.ts';
import { nodeError } from './services.ts';

export const FILE_TYPES = ['auto', 'jsonl', 'json', 'csv', 'tsv'] as const;
export type FileTypeSetting = (typeof FILE_TYPES)[number];

export function pathSource(path: string, name: string): DatasetSource {
  return {
    name,
    async *open() {
      for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) yield chunk as Buffer;
    },
  };
}

export function textSource(text: string, name: string): DatasetSource {
  return {
    name,
    async *open() {
      yield Buffer.from(text, 'utf8');
    },
  };
}

export interface LoadedExamples {
  examples: Example[];
  format: string | null;
}

/** Every example of the source; the first invalid one fails the load with its line and fix. */
export async function loadExamples(source: DatasetSource, where: string, options: { fileType?: FileTypeSetting; maxExamples?: number; signal?: AbortSignal } = {}): Promise<LoadedExamples> {
  const examples: Example[] = [];
  let format: string | null = null;
  try {
    const fileType = options.fileType && options.fileType !== 'auto' ? (options.fileType as FileType) : undefined;
    for await (const record of readExamples(source, { ...(fileType ? { fileType } : {}), ...(options.signal ? { signal: options.signal } : {}) })) {
      format ??= record.format;
      examples.push(record.example);
      if (options.maxExamples && examples.length >= options.maxExamples) break;
    }
  } catch (err) {
    if (DatasetError.isInstance(err)) throw nodeError(err.code, `${where}: ${err.message}`);
    throw err;
  }
  return { examples, format };
}
