import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable, Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout } from 'node:timers/promises';
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

/** A body written to the store under a temporary name, waiting to be committed or discarded. */
export interface StagedFile {
  readonly filename: string;
  readonly bytes: number;
  readonly sha256: string;
  /** Renames it into place and records it; the purpose is checked first. */
  commit(meta: { purpose: string }): Promise<FileRecord>;
  /** Removes the temporary body; a no-op after commit. */
  discard(): Promise<void>;
}

export type FileSource = Readable | AsyncIterable<Uint8Array | string> | string;

export function isValidFileId(id: unknown): id is string {
  return typeof id === 'string' && FILE_ID_PATTERN.test(id);
}

export class FileStore {
  readonly dir: string;
  readonly maxBytes: number;
  private readonly openWriteStream: (path: string) => Writable;
  /** Temporary bodies this process is writing or holding staged; a sweep leaves them alone. */
  private readonly writing = new Set<string>();

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
    const purpose = checkPurpose(options.purpose ?? 'fine-tune');
    const staged = await this.stage(source, options);
    return staged.commit({ purpose });
  }

  /**
   * The first half of `put`: the body written under a temporary name, with its size and hash,
   * but no row yet. An upload whose other form fields arrive after the file is staged, checked
   * once the form is complete, then committed or discarded: nothing is kept on any failure.
   */
  async stage(source: FileSource, options: Omit<PutFileOptions, 'purpose'> = {}): Promise<StagedFile> {
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

    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    // Each upload also clears what a killed process left behind, not only the next start.
    await this.sweepPartials().catch(() => undefined);
    const id = newId(idPrefix.file);
    const finalPath = join(this.dir, id);
    // The writer's process ID in the name tells a sweep whether anyone may still be writing it.
    const partialPath = `${finalPath}.${process.pid}${PARTIAL_SUFFIX}`;
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

    this.writing.add(partialPath);
    const out = this.openWriteStream(partialPath);
    try {
      await pipeline(input, meter, out, ...(options.signal ? [{ signal: options.signal }] : []));
    } catch (err) {
      // A source that fails at once can beat the file's open: the file would then appear after
      // the removal below. Wait (briefly) for the stream to close first.
      if (!out.closed) await Promise.race([once(out, 'close'), setTimeout(2000)]).catch(() => undefined);
      await this.discardPartial(partialPath);
      if (err instanceof StoreError || (err as Error).name === 'AbortError') throw err;
      throw new FileWriteError(filename, err);
    }
    const sha256 = hash.digest('hex');
    let settled = false;
    return {
      filename,
      bytes,
      sha256,
      commit: async ({ purpose }) => {
        if (settled) throw new StoreError('upload_failed', `Upload ${JSON.stringify(filename)} was already committed or discarded.`);
        checkPurpose(purpose);
        settled = true;
        try {
          await rename(partialPath, finalPath);
        } catch (err) {
          await this.discardPartial(partialPath);
          throw new FileWriteError(filename, err);
        }
        this.writing.delete(partialPath);
        const record: FileRecord = { id, filename, purpose, bytes, sha256, created_at: Date.now() };
        try {
          await this.db.insertInto('files').values(record).execute();
        } catch (err) {
          await rm(finalPath, { force: true });
          throw new StoreError('file_record_failed', `Upload ${JSON.stringify(filename)} was written but its record could not be saved: ${(err as Error).message}. Nothing was kept; upload again.`, { cause: err });
        }
        return record;
      },
      discard: async () => {
        if (settled) return;
        settled = true;
        await this.discardPartial(partialPath);
      },
    };
  }

  private async discardPartial(path: string): Promise<void> {
    await rm(path, { force: true });
    this.writing.delete(path);
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
      throw new StoreError('file_body_missing', `File ${id} is recorded but its data cannot be read (${(err as NodeJS.ErrnoException).code ?? 'read error'}). Delete it and upload again.`, { cause: err });
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
   * Removes temporary upload files nobody is writing: this process's own that no upload holds,
   * and those of processes that are gone (a server or CLI killed mid-upload). Another live
   * process's are kept unless they have not changed for an hour; so are unnamed ones of older
   * versions, which cannot say who writes them.
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
      const pid = /\.(\d+)\.part$/.exec(name)?.[1];
      let abandoned: boolean;
      if (pid !== undefined && Number(pid) === process.pid) abandoned = !this.writing.has(path);
      else if (pid !== undefined && !isProcessAlive(Number(pid))) abandoned = true;
      else {
        const info = await stat(path).catch(() => undefined);
        abandoned = info !== undefined && Date.now() - info.mtimeMs > olderThanMs;
      }
      if (abandoned) {
        await rm(path, { force: true });
        removed++;
      }
    }
    return removed;
  }
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function checkPurpose(purpose: string): string {
  if (typeof purpose !== 'string' || !PURPOSE.test(purpose)) {
    throw new InvalidInputError('purpose', `Invalid file purpose ${JSON.stringify(String(purpose).slice(0, 80))}: use lower-case letters, digits, "_" or "-" (at most 64), e.g. "fine-tune".`);
  }
  return purpose;
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
