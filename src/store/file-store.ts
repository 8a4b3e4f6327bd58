import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Kysely } from 'kysely';
import { FileNotFoundError, FileSourceError, FileTooLargeError, FileWriteError, InvalidFileIdError, InvalidInputError, StoreError } from './errors.ts';
import { ID_BODY_LENGTH, idPrefix, newId } from './ids.ts';
import type { Database, FileRow } from './schema.ts';

export type FileRecord = FileRow;

/** Anchored and alphabet-limited: no '/', '.', '\\' or NUL can reach a path built from an ID. */
export const FILE_ID_PATTERN = new RegExp(`^${idPrefix.file}-[A-Za-z0-9]{${ID_BODY_LENGTH}}$`);
export const DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024;
const PURPOSE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const PARTIAL_SUFFIX = '.part';
const STALE_PARTIAL_MS = 60 * 60 * 1000;

export interface FileStoreOptions {
  /** Where the file bodies live; one file per ID, named by the ID. */
  dir: string;
  /** Default upload limit in bytes. */
  maxBytes?: number;
  /** Opens the stream an upload is written to. A seam for fault injection (a full disk). */
  openWriteStream?: (path: string) => Writable;
}

export interface PutFileOptions {
  /** Shown in listings; only metadata, never used as a path. Defaults to the source's base name. */
  filename?: string;
  /** OpenAI's file purpose; default `fine-tune`. */
  purpose?: string;
  /** Overrides the store's limit for this upload. */
  maxBytes?: number;
  signal?: AbortSignal;
}

export type FileSource = Readable | AsyncIterable<Uint8Array | string> | string;

export function isValidFileId(id: unknown): id is string {
  return typeof id === 'string' && FILE_ID_PATTERN.test(id);
}

export class FileStore {
  readonly dir: string;
  readonly maxBytes: number;
  private readonly openWriteStream: (path: string) => Writable;

  constructor(
    private readonly db: Kysely<Database>,
    options: FileStoreOptions,
  ) {
    this.dir = options.dir;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_FILE_BYTES;
    this.openWriteStream = options.openWriteStream ?? ((path) => createWriteStream(path, { flags: 'wx', mode: 0o600 }));
  }

  /**
   * Streams `source` (a readable, an async iterable, or a path on disk) into the store while
   * counting and hashing it. The body is written under a temporary name and renamed into place
   * before its row is inserted, so a failure at any point leaves neither a row nor a file.
   */
  async put(source: FileSource, options: PutFileOptions = {}): Promise<FileRecord> {
    const purpose = options.purpose ?? 'fine-tune';
    if (!PURPOSE.test(purpose)) {
      throw new InvalidInputError('purpose', `Invalid file purpose ${JSON.stringify(purpose.slice(0, 80))}: use lower-case letters, digits, "_" or "-", e.g. "fine-tune".`);
    }
    let input: Readable | AsyncIterable<Uint8Array | string>;
    let defaultName = 'upload';
    if (typeof source === 'string') {
      input = await openSourcePath(source);
      defaultName = basename(source);
    } else {
      input = source;
    }
    const filename = cleanFilename(options.filename ?? defaultName);
    const limit = options.maxBytes ?? this.maxBytes;

    await mkdir(this.dir, { recursive: true });
    const id = newId(idPrefix.file);
    const finalPath = join(this.dir, id);
    const partialPath = finalPath + PARTIAL_SUFFIX;
    const hash = createHash('sha256');
    let bytes = 0;
    const meter = new Transform({
      transform(chunk: Buffer | string, _enc, done) {
        const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        bytes += buf.length;
        if (bytes > limit) return done(new FileTooLargeError(filename, limit));
        hash.update(buf);
        done(null, buf);
      },
    });

    try {
      await pipeline(input, meter, this.openWriteStream(partialPath), ...(options.signal ? [{ signal: options.signal }] : []));
      await rename(partialPath, finalPath);
    } catch (err) {
      await rm(partialPath, { force: true });
      if (err instanceof StoreError || (err as Error).name === 'AbortError') throw err;
      throw new FileWriteError(filename, err);
    }

    const record: FileRecord = { id, filename, purpose, bytes, sha256: hash.digest('hex'), created_at: Date.now() };
    try {
      await this.db.insertInto('files').values(record).execute();
    } catch (err) {
      await rm(finalPath, { force: true });
      throw new StoreError('file_record_failed', `Upload ${JSON.stringify(filename)} was written but its record could not be saved: ${(err as Error).message}. Nothing was kept; upload again.`, { cause: err });
    }
    return record;
  }

  async find(id: string): Promise<FileRecord | undefined> {
    checkId(id);
    return this.db.selectFrom('files').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async get(id: string): Promise<FileRecord> {
    const row = await this.find(id);
    if (!row) throw new FileNotFoundError(id);
    return row;
  }

  /** Newest first. */
  async list(options: { purpose?: string; limit?: number } = {}): Promise<FileRecord[]> {
    let q = this.db.selectFrom('files').selectAll().orderBy('created_at', 'desc').orderBy('id');
    if (options.purpose) q = q.where('purpose', '=', options.purpose);
    if (options.limit) q = q.limit(options.limit);
    return q.execute();
  }

  /** Absolute path of a stored file's body, for readers that need a path (the trainer). */
  async path(id: string): Promise<string> {
    await this.get(id);
    return join(this.dir, id);
  }

  /** Opens the body for reading; fails now, not on first read, if it is missing. */
  async open(id: string): Promise<Readable> {
    const path = await this.path(id);
    try {
      const handle = await open(path, 'r');
      return handle.createReadStream();
    } catch (err) {
      throw new StoreError('file_body_missing', `File ${id} is recorded but its data at ${path} cannot be read (${(err as Error).message}). Delete it and upload again.`, { cause: err });
    }
  }

  /** True when a file was deleted, false when there was none with that ID. */
  async delete(id: string): Promise<boolean> {
    checkId(id);
    const result = await this.db.deleteFrom('files').where('id', '=', id).executeTakeFirst();
    await rm(join(this.dir, id), { force: true });
    return Number(result.numDeletedRows) > 0;
  }

  /**
   * Removes temporary upload files left by a process that died mid-upload. Only old ones: a
   * young one may belong to an upload that another process is writing right now.
   */
  async sweepPartials(olderThanMs = STALE_PARTIAL_MS): Promise<number> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch {
      return 0;
    }
    let removed = 0;
    for (const name of names) {
      if (!name.endsWith(PARTIAL_SUFFIX)) continue;
      const path = join(this.dir, name);
      const info = await stat(path).catch(() => undefined);
      if (info && Date.now() - info.mtimeMs > olderThanMs) {
        await rm(path, { force: true });
        removed++;
      }
    }
    return removed;
  }
}

function checkId(id: string): void {
  if (!isValidFileId(id)) throw new InvalidFileIdError(String(id));
}

async function openSourcePath(path: string): Promise<Readable> {
  const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
    throw new FileSourceError(path, err.code === 'ENOENT' ? 'no such file' : err.message);
  });
  if (!info.isFile()) throw new FileSourceError(path, 'it is not a regular file');
  const handle = await open(path, 'r');
  return handle.createReadStream();
}

/** Keeps the last path segment, drops control characters, caps the length. */
function cleanFilename(name: string): string {
  const last = String(name).split(/[\\/]/).pop() ?? '';
  // eslint-disable-next-line no-control-regex
  const cleaned = last.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 255);
  return cleaned === '' || cleaned === '.' || cleaned === '..' ? 'upload' : cleaned;
}
