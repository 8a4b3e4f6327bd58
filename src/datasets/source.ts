import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatasetReadError } from './errors.ts';
import type { FileType } from './types.ts';

/**
 * Where the data comes from: a file path, a file URL, or anything that can be opened into a stream
 * of bytes (an upload in progress, a blob in the file store, a test generator). `open` may be
 * called more than once: `convertDataset` checks first and writes on a second pass.
 */
export type DatasetSource = string | URL | { name?: string; open(): AsyncIterable<Uint8Array> };

export interface OpenedSource {
  /** A path or name for messages, null when the caller gave none. */
  name: string | null;
  fileType: FileType;
  chunks: AsyncIterable<Uint8Array>;
  /** Bytes, when known up front (a file on disk). */
  size?: number;
}

/**
 * Read size. Per-chunk work (one await, one isUtf8) is already noise next to parsing at 64 KiB,
 * and a chunk's lines and parsed examples then die young: with 1 MiB chunks they lived long
 * enough (a tokenized chunk takes ~80 ms) to be promoted to the old generation, whose garbage
 * pushed a tokenized check of a 150 MB file to ~280 MB peak RSS (~210 MB at 64 KiB), and the
 * check without tokens ran no faster.
 */
export const CHUNK_BYTES = 64 * 1024;

function pathOf(source: string | URL): string {
  return source instanceof URL ? fileURLToPath(source) : source;
}

function typeFromName(name: string | null): FileType | null {
  if (!name) return null;
  switch (extname(name).toLowerCase()) {
    case '.jsonl':
    case '.ndjson':
      return 'jsonl';
    case '.csv':
      return 'csv';
    case '.tsv':
    case '.tab':
      return 'tsv';
    default:
      return null; // `.json` may hold an array or (often, mislabelled) JSONL: look at the bytes
  }
}

/** A JSON array starts with `[`; anything else is read as JSONL (bad lines then get line numbers). */
function sniff(first: Uint8Array | undefined): FileType {
  if (!first) return 'jsonl';
  let i = first[0] === 0xef && first[1] === 0xbb && first[2] === 0xbf ? 3 : 0;
  while (i < first.length && (first[i] === 0x20 || first[i] === 0x0a || first[i] === 0x0d || first[i] === 0x09)) i++;
  return first[i] === 0x5b /* [ */ ? 'json' : 'jsonl';
}

async function* readFile(path: string): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: CHUNK_BYTES })) yield chunk as Buffer;
  } catch (err) {
    throw new DatasetReadError('read_failed', `Cannot read ${path}: ${(err as Error).message}`, { path, cause: err });
  }
}

export async function openSource(source: DatasetSource, fileType?: FileType): Promise<OpenedSource> {
  let name: string | null;
  let chunks: AsyncIterable<Uint8Array>;
  let size: number | undefined;
  if (typeof source === 'string' || source instanceof URL) {
    const path = pathOf(source);
    name = path;
    let info;
    try {
      info = await stat(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        throw new DatasetReadError('file_not_found', `No such file: ${path}`, { path, hint: 'Check the path and try again', cause: err });
      }
      throw new DatasetReadError('read_failed', `Cannot read ${path}: ${(err as Error).message}`, { path, cause: err });
    }
    if (!info.isFile()) {
      throw new DatasetReadError('read_failed', `${path} is not a file`, { path, hint: 'Give the path of a .jsonl, .json, .csv or .tsv file' });
    }
    chunks = readFile(path);
    size = info.size;
  } else {
    name = source.name ?? null;
    chunks = source.open();
  }
  const known = fileType ?? typeFromName(name);
  if (known) return { name, fileType: known, chunks, size };
  // Peek at the first chunk to tell a JSON array from JSONL, then hand the chunk back.
  const it = chunks[Symbol.asyncIterator]();
  const first = await it.next();
  const head = first.done ? undefined : first.value;
  async function* replay(): AsyncGenerator<Uint8Array> {
    try {
      if (head) yield head;
      for (;;) {
        const next = await it.next();
        if (next.done) return;
        yield next.value;
      }
    } finally {
      await it.return?.(); // close the file when the reader stops early (a fatal issue)
    }
  }
  return { name, fileType: sniff(head), chunks: replay(), size };
}
