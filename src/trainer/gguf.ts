// A GGUF v3 reader and writer (the file format of llama.cpp / ggml), checked against
// ggml/include/gguf.h and ggml/src/gguf.cpp of the llama.cpp release that node-llama-cpp 3.21.1
// ships. The reader parses the header and tensor infos only; tensor data is read by offset, so a
// multi-GB file is never loaded whole.

import { closeSync, constants as fsConstants, openSync, readSync } from 'node:fs';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { NodeAIError } from '../nodeai-error.ts';

/** Whether a model name is a GGUF file's path rather than a model ID. */
export function isGgufPath(name: string): boolean {
  return /\.gguf$/i.test(name);
}

/** A GGUF file's name without folder and extension (`/models/SmolLM2-135M.gguf` → `SmolLM2-135M`). */
export function ggufStem(path: string): string {
  return path.replace(/^.*[\\/]/, '').replace(/\.gguf$/i, '');
}

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml's GGML_MAX_NAME: a tensor name must be shorter than this (bytes, without the NUL). */
export const GGML_MAX_NAME = 64;
const GGML_MAX_DIMS = 4;

export type GgufErrorCode =
  | 'GGUF_NOT_FOUND'
  | 'GGUF_CORRUPT'
  | 'GGUF_UNSUPPORTED_VERSION'
  | 'GGUF_QUANTIZED'
  | 'GGUF_UNSUPPORTED_TENSOR_TYPE'
  | 'GGUF_UNSUPPORTED_ARCHITECTURE'
  | 'GGUF_UNSUPPORTED_MODEL'
  | 'GGUF_INVALID_MODEL'
  | 'GGUF_NOT_ADAPTER'
  | 'GGUF_ADAPTER_MISMATCH'
  | 'GGUF_WRITE_FAILED';

/** Every problem with a GGUF file a user can meet; `code` is stable, `path` names the file. */
export class GgufError extends NodeAIError {
  override readonly name = 'GgufError';
  constructor(
    override readonly code: GgufErrorCode,
    message: string,
    readonly path?: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, { cause: options?.cause });
  }
}

// ---------------------------------------------------------------------------------------------
// Metadata values

export type GgufScalarType =
  | 'uint8'
  | 'int8'
  | 'uint16'
  | 'int16'
  | 'uint32'
  | 'int32'
  | 'float32'
  | 'bool'
  | 'string'
  | 'uint64'
  | 'int64'
  | 'float64';

export type GgufScalar = number | bigint | boolean | string;

/**
 * One metadata value with its exact GGUF type: llama.cpp checks the stored type of many keys
 * (a `uint32` key written as `int32` is refused), so the type travels with the value.
 * 64-bit integers are bigint; arrays hold scalars (GGUF arrays of arrays are not used by llama.cpp).
 */
export type GgufValue =
  | { type: Exclude<GgufScalarType, 'uint64' | 'int64' | 'bool' | 'string'>; value: number }
  | { type: 'uint64' | 'int64'; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; itemType: GgufScalarType; value: GgufScalar[] };

export const gguf = {
  u32: (value: number): GgufValue => ({ type: 'uint32', value }),
  i32: (value: number): GgufValue => ({ type: 'int32', value }),
  f32: (value: number): GgufValue => ({ type: 'float32', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  str: (value: string): GgufValue => ({ type: 'string', value }),
  arr: (itemType: GgufScalarType, value: GgufScalar[]): GgufValue => ({ type: 'array', itemType, value }),
};

const TYPE_IDS: Record<GgufScalarType | 'array', number> = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
};
const TYPE_NAMES = Object.fromEntries(Object.entries(TYPE_IDS).map(([k, v]) => [v, k])) as Record<
  number,
  GgufScalarType | 'array'
>;
const SCALAR_SIZES: Partial<Record<GgufScalarType, number>> = {
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  float32: 4,
  bool: 1,
  uint64: 8,
  int64: 8,
  float64: 8,
};

// ---------------------------------------------------------------------------------------------
// Tensor types

/** ggml_type ids (ggml/include/ggml.h) with block size and bytes per block, for size checks. */
const GGML_TYPES: Record<number, { name: string; blck: number; size: number }> = {
  0: { name: 'F32', blck: 1, size: 4 },
  1: { name: 'F16', blck: 1, size: 2 },
  2: { name: 'Q4_0', blck: 32, size: 18 },
  3: { name: 'Q4_1', blck: 32, size: 20 },
  6: { name: 'Q5_0', blck: 32, size: 22 },
  7: { name: 'Q5_1', blck: 32, size: 24 },
  8: { name: 'Q8_0', blck: 32, size: 34 },
  9: { name: 'Q8_1', blck: 32, size: 36 },
  10: { name: 'Q2_K', blck: 256, size: 84 },
  11: { name: 'Q3_K', blck: 256, size: 110 },
  12: { name: 'Q4_K', blck: 256, size: 144 },
  13: { name: 'Q5_K', blck: 256, size: 176 },
  14: { name: 'Q6_K', blck: 256, size: 210 },
  15: { name: 'Q8_K', blck: 256, size: 292 },
  16: { name: 'IQ2_XXS', blck: 256, size: 66 },
  17: { name: 'IQ2_XS', blck: 256, size: 74 },
  18: { name: 'IQ3_XXS', blck: 256, size: 98 },
  19: { name: 'IQ1_S', blck: 256, size: 50 },
  20: { name: 'IQ4_NL', blck: 32, size: 18 },
  21: { name: 'IQ3_S', blck: 256, size: 110 },
  22: { name: 'IQ2_S', blck: 256, size: 82 },
  23: { name: 'IQ4_XS', blck: 256, size: 136 },
  24: { name: 'I8', blck: 1, size: 1 },
  25: { name: 'I16', blck: 1, size: 2 },
  26: { name: 'I32', blck: 1, size: 4 },
  27: { name: 'I64', blck: 1, size: 8 },
  28: { name: 'F64', blck: 1, size: 8 },
  29: { name: 'IQ1_M', blck: 256, size: 56 },
  30: { name: 'BF16', blck: 1, size: 2 },
  34: { name: 'TQ1_0', blck: 256, size: 54 },
  35: { name: 'TQ2_0', blck: 256, size: 66 },
  39: { name: 'MXFP4', blck: 32, size: 17 },
};
const GGML_TYPE_COUNT = 43;

export type GgmlFloatType = 'F32' | 'F16' | 'BF16';
const FLOAT_TYPE_IDS: Record<GgmlFloatType, number> = { F32: 0, F16: 1, BF16: 30 };

export function ggmlTypeName(type: number): string {
  return GGML_TYPES[type]?.name ?? `ggml type ${type}`;
}

/** The ggml_type id of a type name, in any case (`q4_K` as ggml_type_name prints it, or `Q4_K`); undefined when unknown. */
export function ggmlTypeId(name: string): number | undefined {
  const upper = name.toUpperCase();
  for (const [id, t] of Object.entries(GGML_TYPES)) if (t.name === upper) return Number(id);
  return undefined;
}

export interface GgufTensorInfo {
  name: string;
  /** ggml order: shape[0] is the fastest-varying dimension. */
  shape: number[];
  /** ggml_type id; see {@link ggmlTypeName}. */
  type: number;
  typeName: string;
  /** Offset of the data from the start of the data section. */
  offset: number;
  byteLength: number;
}

export interface GgufHeader {
  path: string;
  version: number;
  alignment: number;
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  /** Absolute file offset where the (aligned) tensor data section starts. */
  dataOffset: number;
  fileSize: number;
}

// ---------------------------------------------------------------------------------------------
// Reading

class EndOfFile extends Error {}

/** Sequential little-endian reads over a file handle, through a refillable buffer. */
class ChunkedReader {
  private buf = Buffer.alloc(0);
  private bufStart = 0; // file offset of buf[0]
  pos = 0; // file offset of the next byte

  constructor(
    private readonly fh: FileHandle,
    readonly fileSize: number,
    private readonly chunk = 1 << 20,
  ) {}

  private async ensure(n: number): Promise<Buffer> {
    const rel = this.pos - this.bufStart;
    if (rel >= 0 && rel + n <= this.buf.length) return this.buf;
    if (this.pos + n > this.fileSize) throw new EndOfFile();
    const want = Math.max(n, this.chunk);
    const len = Math.min(want, this.fileSize - this.pos);
    const next = Buffer.allocUnsafe(len);
    const { bytesRead } = await this.fh.read(next, 0, len, this.pos);
    if (bytesRead < n) throw new EndOfFile();
    this.buf = next.subarray(0, bytesRead);
    this.bufStart = this.pos;
    return this.buf;
  }

  async bytes(n: number): Promise<Buffer> {
    const b = await this.ensure(n);
    const rel = this.pos - this.bufStart;
    this.pos += n;
    return b.subarray(rel, rel + n);
  }
  async u8() { return (await this.bytes(1)).readUInt8(0); } // prettier-ignore
  async u32() { return (await this.bytes(4)).readUInt32LE(0); } // prettier-ignore
  async i32() { return (await this.bytes(4)).readInt32LE(0); } // prettier-ignore
  async u64() { return (await this.bytes(8)).readBigUInt64LE(0); } // prettier-ignore
  async i64() { return (await this.bytes(8)).readBigInt64LE(0); } // prettier-ignore

  /** A uint64 that must fit a JS number (lengths, counts, offsets). */
  async size(what: string): Promise<number> {
    const v = await this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptAt(`${what} is implausibly large (${v})`);
    return Number(v);
  }

  async string(what: string): Promise<string> {
    const n = await this.size(`length of ${what}`);
    if (n > this.fileSize - this.pos) throw new CorruptAt(`${what} claims ${n} bytes, past the end of the file`);
    return (await this.bytes(n)).toString('utf8');
  }
}

class CorruptAt extends Error {}

async function readScalar(r: ChunkedReader, type: GgufScalarType, what: string): Promise<GgufScalar> {
  switch (type) {
    case 'uint8': return r.u8(); // prettier-ignore
    case 'int8': return (await r.bytes(1)).readInt8(0);
    case 'uint16': return (await r.bytes(2)).readUInt16LE(0);
    case 'int16': return (await r.bytes(2)).readInt16LE(0);
    case 'uint32': return r.u32();
    case 'int32': return r.i32();
    case 'float32': return shortestFloat32((await r.bytes(4)).readFloatLE(0));
    case 'float64': return (await r.bytes(8)).readDoubleLE(0);
    case 'uint64': return r.u64();
    case 'int64': return r.i64();
    case 'bool': {
      const b = await r.u8();
      if (b > 1) throw new CorruptAt(`${what}: invalid bool value ${b}`);
      return b === 1;
    }
    case 'string': return r.string(what);
  }
}

/** The shortest decimal that is the same float32, so 1e-5 reads back as 1e-5, not 9.99999974e-6. */
function shortestFloat32(x: number): number {
  if (!Number.isFinite(x)) return x;
  for (let p = 1; p <= 9; p++) {
    const c = Number(x.toPrecision(p));
    if (Math.fround(c) === x) return c;
  }
  return x;
}

function typeFromId(id: number, what: string): GgufScalarType | 'array' {
  const t = TYPE_NAMES[id];
  if (t === undefined) throw new CorruptAt(`${what} has unknown value type ${id}`);
  return t;
}

async function readValue(r: ChunkedReader, key: string): Promise<GgufValue> {
  const type = typeFromId(await r.i32(), `metadata key '${key}'`);
  if (type !== 'array') return { type, value: await readScalar(r, type, `metadata key '${key}'`) } as GgufValue;
  const itemType = typeFromId(await r.i32(), `array '${key}'`);
  if (itemType === 'array') throw new CorruptAt(`metadata key '${key}' is a nested array, which GGUF readers do not support`);
  const n = await r.size(`length of array '${key}'`);
  const minBytes = SCALAR_SIZES[itemType] ?? 8;
  if (n * minBytes > r.fileSize - r.pos) throw new CorruptAt(`array '${key}' claims ${n} items, past the end of the file`);
  const value: GgufScalar[] = new Array(n);
  for (let i = 0; i < n; i++) value[i] = await readScalar(r, itemType, `item ${i} of '${key}'`);
  return { type: 'array', itemType, value };
}

function pad(x: number, alignment: number): number {
  return Math.ceil(x / alignment) * alignment;
}

async function openForRead(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new GgufError('GGUF_NOT_FOUND', `GGUF file not found: ${path}`, path, { cause: e });
    if (err.code === 'EISDIR') throw new GgufError('GGUF_NOT_FOUND', `expected a GGUF file but found a directory: ${path}`, path);
    throw new GgufError('GGUF_NOT_FOUND', `cannot open GGUF file ${path}: ${err.message}`, path, { cause: e });
  }
}

/** Parses header, metadata and tensor infos; reads no tensor data. */
export async function readGgufHeader(path: string): Promise<GgufHeader> {
  const fh = await openForRead(path);
  try {
    const { size: fileSize } = await fh.stat();
    return await parseHeader(fh, path, fileSize);
  } finally {
    await fh.close();
  }
}

async function parseHeader(fh: FileHandle, path: string, fileSize: number): Promise<GgufHeader> {
  const corrupt = (what: string) =>
    new GgufError('GGUF_CORRUPT', `${path} is not a valid GGUF file: ${what}`, path);
  const r = new ChunkedReader(fh, fileSize);
  try {
    if (fileSize < 4) throw new CorruptAt(`the file is only ${fileSize} bytes long`);
    const magic = await r.u32();
    if (magic !== GGUF_MAGIC) {
      const shown = Buffer.alloc(4);
      shown.writeUInt32LE(magic);
      throw new CorruptAt(`bad magic ${JSON.stringify(shown.toString('latin1'))}, expected "GGUF"`);
    }
    const version = await r.u32();
    if (version === 1 || version > GGUF_VERSION) {
      throw new GgufError(
        'GGUF_UNSUPPORTED_VERSION',
        `${path} is GGUF version ${version}; only versions 2 and 3 are supported — re-convert it with a current llama.cpp`,
        path,
      );
    }
    const nTensors = Number(await r.i64());
    const nKv = Number(await r.i64());
    if (nTensors < 0 || nTensors > fileSize) throw new CorruptAt(`invalid tensor count ${nTensors}`);
    if (nKv < 0 || nKv > fileSize) throw new CorruptAt(`invalid metadata count ${nKv}`);

    const metadata = new Map<string, GgufValue>();
    for (let i = 0; i < nKv; i++) {
      const key = await r.string(`metadata key ${i}`);
      if (metadata.has(key)) throw new CorruptAt(`duplicate metadata key '${key}'`);
      metadata.set(key, await readValue(r, key));
    }

    let alignment = GGUF_DEFAULT_ALIGNMENT;
    const al = metadata.get('general.alignment');
    if (al) {
      if (al.type !== 'uint32') throw new CorruptAt(`general.alignment has type ${al.type}, expected uint32`);
      alignment = al.value;
      if (alignment === 0 || (alignment & (alignment - 1)) !== 0) throw new CorruptAt(`general.alignment ${alignment} is not a power of 2`);
    }

    const tensors: GgufTensorInfo[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < nTensors; i++) {
      const name = await r.string(`name of tensor ${i}`);
      if (Buffer.byteLength(name) >= GGML_MAX_NAME) throw new CorruptAt(`tensor name '${name}' is too long`);
      if (seen.has(name)) throw new CorruptAt(`duplicate tensor name '${name}'`);
      seen.add(name);
      const nDims = await r.u32();
      if (nDims > GGML_MAX_DIMS) throw new CorruptAt(`tensor '${name}' has ${nDims} dimensions (max ${GGML_MAX_DIMS})`);
      const shape: number[] = [];
      for (let j = 0; j < nDims; j++) {
        const ne = await r.i64();
        if (ne < 0n || ne > BigInt(Number.MAX_SAFE_INTEGER)) throw new CorruptAt(`tensor '${name}' has invalid dimension ${ne}`);
        shape.push(Number(ne));
      }
      const type = await r.i32();
      if (type < 0 || type >= GGML_TYPE_COUNT) throw new CorruptAt(`tensor '${name}' has invalid ggml type ${type}`);
      const offset = await r.size(`offset of tensor '${name}'`);
      const t = GGML_TYPES[type];
      const nElements = shape.reduce((a, b) => a * b, 1);
      let byteLength = Number.NaN;
      if (t) {
        if ((shape[0] ?? 1) % t.blck !== 0) throw new CorruptAt(`tensor '${name}' rows are not a multiple of the ${t.name} block size`);
        byteLength = (nElements / t.blck) * t.size;
      }
      tensors.push({ name, shape, type, typeName: ggmlTypeName(type), offset, byteLength });
    }

    const dataOffset = nTensors > 0 ? pad(r.pos, alignment) : r.pos;
    // gguf.cpp requires each tensor to start exactly where the previous one's padded data ends.
    let expected = 0;
    for (const t of tensors) {
      if (t.offset !== expected && Number.isFinite(t.byteLength)) {
        throw new CorruptAt(`tensor '${t.name}' has data offset ${t.offset}, expected ${expected}`);
      }
      if (t.offset % alignment !== 0) throw new CorruptAt(`tensor '${t.name}' data offset ${t.offset} is not aligned to ${alignment}`);
      if (Number.isFinite(t.byteLength)) {
        if (dataOffset + t.offset + t.byteLength > fileSize) {
          throw new CorruptAt(
            `the data of tensor '${t.name}' ends at byte ${dataOffset + t.offset + t.byteLength} but the file has only ${fileSize} bytes (truncated?)`,
          );
        }
        expected = t.offset + pad(t.byteLength, alignment);
      }
    }
    return { path, version, alignment, metadata, tensors, dataOffset, fileSize };
  } catch (e) {
    if (e instanceof EndOfFile) throw corrupt(`unexpected end of file at byte ${r.pos} of ${fileSize} (truncated?)`);
    if (e instanceof CorruptAt) throw corrupt(e.message);
    throw e;
  }
}

/** True for the ggml types this reader converts to float32. */
export function isFloatTensorType(type: number): boolean {
  return type === 0 || type === 1 || type === 30;
}

/**
 * ggml types a LoRA base may have: the floats and the quantizations ggml-cpu has mul_mat and
 * get_rows kernels for that llama.cpp's K_M/K_S and Q8_0/Q4_0 files are made of (the 32-block
 * Q4_1/Q5_0/Q5_1 are what llama.cpp's quantizer falls back to for rows that are not a multiple
 * of 256, so real Q4_K_M/Q5_K_M files hold them). Others (Q2_K, Q3_K, IQ*, TQ*, MXFP4) are
 * refused: untested here.
 */
const LORA_BASE_TYPE_IDS = new Set([0, 1, 30, 2, 3, 6, 7, 8, 12, 13, 14]);
export const LORA_BASE_TYPE_NAMES = [...LORA_BASE_TYPE_IDS].map(ggmlTypeName);

/** True for the ggml types a frozen (LoRA) base weight may have. */
export function isLoraBaseTensorType(type: number): boolean {
  return LORA_BASE_TYPE_IDS.has(type);
}

/** Bytes of a tensor of this ggml type and shape (ggml_row_size × rows), or NaN for an unknown type. */
export function ggmlTensorBytes(type: number, shape: readonly number[]): number {
  const t = GGML_TYPES[type];
  if (!t) return Number.NaN;
  const n = shape.reduce((a, b) => a * b, 1);
  return (n / t.blck) * t.size;
}

/** Throws a clear {@link GgufError} unless every tensor is F32, F16 or BF16 (so full fine-tuning can train it). */
export function assertFloatTensors(header: GgufHeader): void {
  for (const t of header.tensors) assertReadableType(header, t);
}

/** Throws a clear {@link GgufError} unless every tensor has a type a LoRA base may have. */
export function assertLoraBaseTensors(header: GgufHeader): void {
  for (const t of header.tensors) {
    if (isLoraBaseTensorType(t.type)) continue;
    throw new GgufError(
      'GGUF_UNSUPPORTED_TENSOR_TYPE',
      `tensor '${t.name}' in ${header.path} has type ${t.typeName}, which the local trainer cannot train on; ` +
        `base weights must be ${LORA_BASE_TYPE_NAMES.join(', ')} — use a Q4_K_M, Q5_K_M, Q6_K, Q8_0 or F16 file of the model`,
      header.path,
    );
  }
}

function assertReadableType(header: GgufHeader, t: GgufTensorInfo): void {
  if (isFloatTensorType(t.type)) return;
  const known = GGML_TYPES[t.type];
  if (known && known.blck > 1) {
    throw new GgufError(
      'GGUF_QUANTIZED',
      `${header.path} is quantized (${known.name}, tensor '${t.name}'): full fine-tuning needs F32, F16 or BF16 weights — ` +
        'train a LoRA adapter on it instead (set a LoRA rank), or use an F16/BF16 GGUF of the model',
      header.path,
    );
  }
  throw new GgufError(
    'GGUF_UNSUPPORTED_TENSOR_TYPE',
    `tensor '${t.name}' in ${header.path} has type ${t.typeName}; only F32, F16 and BF16 tensors are supported`,
    header.path,
  );
}

/** Opens a GGUF file for reading tensors by offset; close it when done. */
export async function openGguf(path: string): Promise<GgufReader> {
  const fh = await openForRead(path);
  try {
    const { size } = await fh.stat();
    const header = await parseHeader(fh, path, size);
    return new GgufReader(fh, header);
  } catch (e) {
    await fh.close();
    throw e;
  }
}

export class GgufReader {
  constructor(
    private readonly fh: FileHandle,
    readonly header: GgufHeader,
  ) {}

  /** Checks that every tensor is a float type this reader can convert, before any data is read. */
  assertFloatTensors(): void {
    assertFloatTensors(this.header);
  }

  /** Reads one tensor as float32 (F16 and BF16 are widened). */
  async readTensor(info: GgufTensorInfo): Promise<Float32Array> {
    assertReadableType(this.header, info);
    const n = info.shape.reduce((a, b) => a * b, 1);
    const raw = Buffer.allocUnsafe(info.byteLength);
    await readExactly(this.fh, this.header, info, raw);
    const out = new Float32Array(n);
    if (info.type === 0) {
      for (let i = 0; i < n; i++) out[i] = raw.readFloatLE(i * 4);
    } else if (info.type === 1) {
      for (let i = 0; i < n; i++) out[i] = f16ToF32(raw.readUInt16LE(i * 2));
    } else {
      const u = new Uint32Array(1);
      const f = new Float32Array(u.buffer);
      for (let i = 0; i < n; i++) {
        u[0] = raw.readUInt16LE(i * 2) << 16;
        out[i] = f[0];
      }
    }
    return out;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/**
 * Reads `into.byteLength` bytes stored at absolute `offset` of the GGUF file `path` into `into` —
 * e.g. a tensor's data straight into the memory of a ggml tensor of the same type, so no
 * JavaScript copy is made. Synchronous: the trainer reads its frozen weights while it is built.
 */
export function readStoredBytes(path: string, offset: number, into: Uint8Array, what: string): void {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new GgufError('GGUF_NOT_FOUND', `cannot open GGUF file ${path} to read ${what}: ${(e as Error).message}`, path, { cause: e });
  }
  try {
    const chunk = 1 << 30;
    for (let done = 0; done < into.byteLength; ) {
      const n = readSync(fd, into, done, Math.min(chunk, into.byteLength - done), offset + done);
      if (n === 0) throw new GgufError('GGUF_CORRUPT', `${path}: short read of ${what} (truncated, or changed since it was opened?)`, path);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** Reads a tensor's data in chunks (a single read() is capped near 2 GiB), or says the file is short. */
async function readExactly(fh: FileHandle, header: GgufHeader, info: GgufTensorInfo, into: Uint8Array): Promise<void> {
  const chunk = 1 << 30;
  for (let done = 0; done < info.byteLength; ) {
    const len = Math.min(chunk, info.byteLength - done);
    const { bytesRead } = await fh.read(into, done, len, header.dataOffset + info.offset + done);
    if (bytesRead === 0) {
      throw new GgufError('GGUF_CORRUPT', `${header.path}: short read of tensor '${info.name}' (truncated?)`, header.path);
    }
    done += bytesRead;
  }
}

// ---------------------------------------------------------------------------------------------
// Half precision

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? Number.NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** float32 → IEEE half, round to nearest even (as ggml's ggml_fp32_to_fp16 does). */
export function f32ToF16(x: number): number {
  f32buf[0] = x;
  const u = u32buf[0];
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = mant & ((1 << shift) - 1);
    let r = mant >>> shift;
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  const rem = mant & 0x1fff;
  let r = mant >>> 13;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

// ---------------------------------------------------------------------------------------------
// Writing

export interface GgufTensorToWrite {
  name: string;
  shape: number[];
  /**
   * The values, or a function that gives them when the tensor's turn to be written comes: a
   * model written from functions never has more than one tensor's values in memory.
   */
  data: Float32Array | (() => Float32Array);
  /** Stored type; F32 unless said otherwise. */
  type?: GgmlFloatType;
}

/** A tensor's entry in a GGUF header, without its data: what fixes the file's layout and size. */
export interface GgufTensorLayout {
  name: string;
  shape: number[];
  /** ggml_type id (ggml.h). */
  ggmlType: number;
}

/** A tensor already in its stored form (any ggml type, quantized included), written byte for byte. */
export interface GgufRawTensorToWrite extends GgufTensorLayout {
  /** Its bytes, asked for when the tensor is written; exactly ggmlTensorBytes(ggmlType, shape) of them. */
  bytes: () => Uint8Array;
}

export type AnyTensorToWrite = GgufTensorToWrite | GgufRawTensorToWrite;

const isRaw = (t: AnyTensorToWrite | GgufTensorLayout): t is GgufTensorLayout => 'ggmlType' in t;

class ByteSink {
  private parts: Buffer[] = [];
  length = 0;
  push(b: Buffer) {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number) { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); } // prettier-ignore
  i32(v: number) { const b = Buffer.alloc(4); b.writeInt32LE(v); this.push(b); } // prettier-ignore
  u64(v: number | bigint) { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); } // prettier-ignore
  i64(v: number | bigint) { const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(v)); this.push(b); } // prettier-ignore
  string(s: string) {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  toBuffer() {
    return Buffer.concat(this.parts, this.length);
  }
}

function writeScalar(s: ByteSink, type: GgufScalarType, v: GgufScalar, key: string): void {
  const bad = () => new TypeError(`GGUF metadata '${key}': value ${String(v)} does not fit type ${type}`);
  if (type === 'string') {
    if (typeof v !== 'string') throw bad();
    s.string(v);
    return;
  }
  if (type === 'bool') {
    if (typeof v !== 'boolean') throw bad();
    s.push(Buffer.from([v ? 1 : 0]));
    return;
  }
  if (type === 'uint64' || type === 'int64') {
    if (typeof v !== 'bigint' && typeof v !== 'number') throw bad();
    if (type === 'uint64') s.u64(v);
    else s.i64(v);
    return;
  }
  if (typeof v !== 'number') throw bad();
  const b = Buffer.alloc(SCALAR_SIZES[type]!);
  switch (type) {
    case 'uint8': b.writeUInt8(v); break; // prettier-ignore
    case 'int8': b.writeInt8(v); break; // prettier-ignore
    case 'uint16': b.writeUInt16LE(v); break; // prettier-ignore
    case 'int16': b.writeInt16LE(v); break; // prettier-ignore
    case 'uint32': b.writeUInt32LE(v); break; // prettier-ignore
    case 'int32': b.writeInt32LE(v); break; // prettier-ignore
    case 'float32': b.writeFloatLE(v); break; // prettier-ignore
    case 'float64': b.writeDoubleLE(v); break; // prettier-ignore
  }
  s.push(b);
}

function tensorBytes(t: AnyTensorToWrite | GgufTensorLayout): number {
  if (isRaw(t)) return ggmlTensorBytes(t.ggmlType, t.shape);
  const n = t.shape.reduce((a, b) => a * b, 1);
  return n * ((t.type ?? 'F32') === 'F32' ? 4 : 2);
}

function encodeTensor(t: AnyTensorToWrite, path: string): Uint8Array {
  const wrongSize = (what: string) => new GgufError('GGUF_WRITE_FAILED', `tensor '${t.name}' has ${what} but shape [${t.shape}] needs ${tensorBytes(t)} bytes`, path);
  if ('bytes' in t) {
    const b = t.bytes();
    if (b.byteLength !== tensorBytes(t)) throw wrongSize(`${b.byteLength} bytes of ${ggmlTypeName(t.ggmlType)}`);
    return b;
  }
  const d = typeof t.data === 'function' ? t.data() : t.data;
  if (d.length !== t.shape.reduce((a, b) => a * b, 1)) throw wrongSize(`${d.length} values`);
  return encodeFloatValues(d, t.type ?? 'F32');
}

/** float32 values as the bytes of a ggml tensor of that float type (F32 as they are: no copy). */
export function encodeFloatValues(d: Float32Array, type: GgmlFloatType): Buffer {
  if (type === 'F32') return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
  const out = Buffer.allocUnsafe(d.length * 2);
  if (type === 'F16') {
    for (let i = 0; i < d.length; i++) out.writeUInt16LE(f32ToF16(d[i]), i * 2);
  } else {
    for (let i = 0; i < d.length; i++) {
      // BF16 by round-to-nearest-even of the upper half, as ggml_fp32_to_bf16 does for finite values.
      f32buf[0] = d[i];
      const u = u32buf[0];
      const r = Number.isNaN(d[i]) ? (u >>> 16) | 64 : (u + (0x7fff + ((u >>> 16) & 1))) >>> 16;
      out.writeUInt16LE(r & 0xffff, i * 2);
    }
  }
  return out;
}

/** The header of a GGUF v3 file (padded to the alignment) and the length of the data section after it. */
function encodeGgufHeader(
  path: string,
  metadata: Map<string, GgufValue> | Array<[string, GgufValue]>,
  tensors: Array<AnyTensorToWrite | GgufTensorLayout>,
): { header: Buffer; alignment: number; dataLength: number } {
  const kvs = [...metadata];
  const alignEntry = kvs.find(([k]) => k === 'general.alignment');
  const alignment = alignEntry ? Number(alignEntry[1].value) : GGUF_DEFAULT_ALIGNMENT;

  for (const t of tensors) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (!isRaw(t) && typeof t.data !== 'function' && t.data.length !== n) {
      throw new GgufError('GGUF_WRITE_FAILED', `tensor '${t.name}' has ${t.data.length} values but shape [${t.shape}] needs ${n}`, path);
    }
    if (isRaw(t) && !Number.isInteger(tensorBytes(t))) {
      throw new GgufError('GGUF_WRITE_FAILED', `tensor '${t.name}': shape [${t.shape}] does not fit ggml type ${ggmlTypeName(t.ggmlType)}`, path);
    }
    if (Buffer.byteLength(t.name) >= GGML_MAX_NAME) {
      throw new GgufError('GGUF_WRITE_FAILED', `tensor name '${t.name}' is ${GGML_MAX_NAME} bytes or longer`, path);
    }
    if (t.shape.length < 1 || t.shape.length > GGML_MAX_DIMS) {
      throw new GgufError('GGUF_WRITE_FAILED', `tensor '${t.name}' has ${t.shape.length} dimensions`, path);
    }
  }

  const s = new ByteSink();
  s.u32(GGUF_MAGIC);
  s.u32(GGUF_VERSION);
  s.i64(tensors.length);
  s.i64(kvs.length);
  for (const [key, v] of kvs) {
    s.string(key);
    s.i32(TYPE_IDS[v.type]);
    if (v.type === 'array') {
      s.i32(TYPE_IDS[v.itemType]);
      s.u64(v.value.length);
      for (const item of v.value) writeScalar(s, v.itemType, item, key);
    } else {
      writeScalar(s, v.type, v.value, key);
    }
  }
  let offset = 0;
  for (const t of tensors) {
    s.string(t.name);
    s.u32(t.shape.length);
    for (const d of t.shape) s.i64(d);
    s.i32(isRaw(t) ? t.ggmlType : FLOAT_TYPE_IDS[t.type ?? 'F32']);
    s.u64(offset);
    offset += pad(tensorBytes(t), alignment);
  }
  const headerLen = s.length;
  s.push(Buffer.alloc(pad(headerLen, alignment) - headerLen));
  return { header: s.toBuffer(), alignment, dataLength: offset };
}

/**
 * The size in bytes of the GGUF file {@link writeGguf} would write with this metadata and these
 * tensors, computed without writing: the header (metadata and tensor infos, padded to the
 * alignment) and the data (each tensor padded to the alignment).
 */
export function ggufFileSize(
  metadata: Map<string, GgufValue> | Array<[string, GgufValue]>,
  tensors: Array<AnyTensorToWrite | GgufTensorLayout>,
): { headerBytes: number; dataBytes: number; totalBytes: number } {
  const { header, dataLength } = encodeGgufHeader('(size only)', metadata, tensors);
  return { headerBytes: header.length, dataBytes: dataLength, totalBytes: header.length + dataLength };
}

/**
 * Writes a GGUF v3 file's header and extends the file to its full length without writing the
 * tensor data: a sparse file whose data reads as zeros and takes no disk space. For tools that read
 * only the header and tensor infos (llama.cpp's quantizer in its dry run), so a multi-GB model's
 * layout costs a few MB of disk.
 */
export async function writeGgufLayout(
  path: string,
  metadata: Map<string, GgufValue> | Array<[string, GgufValue]>,
  tensors: GgufTensorLayout[],
): Promise<void> {
  const { header, dataLength } = encodeGgufHeader(path, metadata, tensors);
  await writeAtomically(path, async (fh) => {
    await fh.write(header);
    await fh.truncate(header.length + dataLength);
  });
}

/**
 * Writes a GGUF v3 file atomically (a temporary file in the same folder, fsync, rename), so a
 * reader never sees half a model. Tensors are written in the given order.
 */
export async function writeGguf(
  path: string,
  metadata: Map<string, GgufValue> | Array<[string, GgufValue]>,
  tensors: AnyTensorToWrite[],
): Promise<void> {
  const { header, alignment } = encodeGgufHeader(path, metadata, tensors);
  await writeAtomically(path, async (fh) => {
    await fh.write(header);
    for (const t of tensors) {
      const bytes = encodeTensor(t, path);
      await fh.write(bytes);
      const padLen = pad(bytes.length, alignment) - bytes.length;
      if (padLen) await fh.write(Buffer.alloc(padLen));
    }
  });
}

/** Runs `write` on a temporary file in `path`'s folder, then fsyncs it and renames it to `path`; removes it on failure. */
async function writeAtomically(path: string, write: (fh: FileHandle) => Promise<void>): Promise<void> {
  if (endianness() !== 'LE') throw new GgufError('GGUF_WRITE_FAILED', 'GGUF writing needs a little-endian machine', path);
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fh: FileHandle | undefined;
  try {
    fh = await open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
    await write(fh);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (e) {
    await fh?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    if (e instanceof GgufError) throw e;
    throw new GgufError('GGUF_WRITE_FAILED', `cannot write GGUF file ${path}: ${(e as Error).message}`, path, { cause: e });
  }
}

// ---------------------------------------------------------------------------------------------
// Metadata access helpers

export function metaString(h: GgufHeader, key: string): string | undefined {
  const v = h.metadata.get(key);
  return v?.type === 'string' ? v.value : undefined;
}

export function metaNumber(h: GgufHeader, key: string): number | undefined {
  const v = h.metadata.get(key);
  if (!v || v.type === 'array' || v.type === 'string' || v.type === 'bool') return undefined;
  return Number(v.value);
}
