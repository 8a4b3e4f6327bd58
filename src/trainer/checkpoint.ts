// Checkpoint files: a JSON header plus raw little-endian float32 tensors, ending in a SHA-256 of
// everything before it, written to a temporary file and renamed into place so a crash mid-write
// never leaves a truncated checkpoint under the real name.
//
// Layout: "NAICKPT1" | u32 headerBytes | header JSON (utf8) | pad to 4 | tensor data | sha256 (32 bytes)
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, basename, join } from 'node:path';
import { TrainerError } from './train-errors.js';

const MAGIC = Buffer.from('NAICKPT1', 'ascii');
const HASH_BYTES = 32;

export interface CheckpointTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/**
 * A tensor to write: its values, or a function that copies values [from, from + into.length) into
 * `into` as it is written, so a trainer copying its tensors out of ggml needs one small buffer for
 * all of them instead of a copy of each (for full fine-tuning: the weights and both AdamW moments,
 * three times the model, at every checkpoint).
 */
export interface CheckpointTensorToWrite {
  name: string;
  shape: number[];
  data: Float32Array | ((into: Float32Array, from: number) => void);
}

/** Values a lazily given tensor is copied through at a time (1 Mi floats: 4 MiB). */
const WRITE_CHUNK_VALUES = 1 << 20;

export interface CheckpointFile<H> {
  header: H;
  tensors: CheckpointTensor[];
}

interface StoredHeader<H> {
  header: H;
  tensors: Array<{ name: string; shape: number[]; offset: number; length: number }>;
}

/** Writes atomically (temp file + fsync + rename). Returns the number of bytes written. */
export function writeCheckpointFile<H>(path: string, file: { header: H; tensors: CheckpointTensorToWrite[] }): number {
  let offset = 0;
  const dir: StoredHeader<H>['tensors'] = [];
  // A lazily given tensor has as many values as its shape says.
  const lengths = file.tensors.map((t) => (typeof t.data === 'function' ? t.shape.reduce((a, b) => a * b, 1) : t.data.length));
  file.tensors.forEach((t, i) => {
    dir.push({ name: t.name, shape: t.shape, offset, length: lengths[i] });
    offset += lengths[i] * 4;
  });
  const headerBuf = Buffer.from(JSON.stringify({ header: file.header, tensors: dir } satisfies StoredHeader<H>), 'utf8');
  const lenBuf = Buffer.alloc(4);
  lenBuf.writeUInt32LE(headerBuf.length);
  const pad = Buffer.alloc((4 - ((MAGIC.length + 4 + headerBuf.length) % 4)) % 4);
  const hash = createHash('sha256');
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'w');
  let total = 0;
  try {
    const put = (buf: Uint8Array) => {
      hash.update(buf);
      let done = 0;
      while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done);
      total += buf.length;
    };
    put(MAGIC);
    put(lenBuf);
    put(headerBuf);
    put(pad);
    const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    let chunk: Float32Array | null = null;
    file.tensors.forEach((t, i) => {
      const read = t.data;
      if (typeof read !== 'function') {
        put(bytes(read));
        return;
      }
      chunk ??= new Float32Array(Math.min(WRITE_CHUNK_VALUES, Math.max(...lengths)));
      for (let from = 0; from < lengths[i]; from += chunk.length) {
        const part = chunk.subarray(0, Math.min(chunk.length, lengths[i] - from));
        read(part, from);
        put(bytes(part));
      }
    });
    const digest = hash.digest();
    writeSync(fd, digest);
    total += digest.length;
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, path);
  return total;
}

export function readCheckpointFile<H>(path: string): CheckpointFile<H> {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new TrainerError('CHECKPOINT_CORRUPT', `Cannot read checkpoint ${path}: ${(e as Error).message}`);
  }
  const corrupt = (why: string) =>
    new TrainerError('CHECKPOINT_CORRUPT', `Checkpoint ${path} is damaged (${why}); resume from an earlier checkpoint or restart the run.`);
  if (buf.length < MAGIC.length + 4 + HASH_BYTES || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw corrupt('not a NodeAI checkpoint');
  }
  const body = buf.subarray(0, buf.length - HASH_BYTES);
  const digest = createHash('sha256').update(body).digest();
  if (!digest.equals(buf.subarray(buf.length - HASH_BYTES))) throw corrupt('checksum mismatch');
  const headerLen = body.readUInt32LE(MAGIC.length);
  const headerStart = MAGIC.length + 4;
  let stored: StoredHeader<H>;
  try {
    stored = JSON.parse(body.subarray(headerStart, headerStart + headerLen).toString('utf8')) as StoredHeader<H>;
  } catch {
    throw corrupt('unreadable header');
  }
  const dataStart = headerStart + headerLen + ((4 - ((headerStart + headerLen) % 4)) % 4);
  const tensors: CheckpointTensor[] = stored.tensors.map((t) => {
    const begin = dataStart + t.offset;
    const end = begin + t.length * 4;
    if (end > body.length) throw corrupt(`tensor ${t.name} runs past the end`);
    // Copy: the file buffer's offset need not be 4-byte aligned within its ArrayBuffer.
    const data = new Float32Array(t.length);
    new Uint8Array(data.buffer).set(body.subarray(begin, end));
    return { name: t.name, shape: t.shape, data };
  });
  return { header: stored.header, tensors };
}
