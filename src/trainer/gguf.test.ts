import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { f16ToF32, f32ToF16, gguf, GgufError, openGguf, readGgufHeader, readStoredBytes, writeGguf, type GgufValue } from './gguf.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodeai-gguf-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const metadata: Array<[string, GgufValue]> = [
  ['general.architecture', gguf.str('llama')],
  ['t.u8', { type: 'uint8', value: 200 }],
  ['t.i8', { type: 'int8', value: -100 }],
  ['t.u16', { type: 'uint16', value: 60000 }],
  ['t.i16', { type: 'int16', value: -30000 }],
  ['t.u32', gguf.u32(4_000_000_000)],
  ['t.i32', gguf.i32(-2_000_000_000)],
  ['t.f32', gguf.f32(1e-5)],
  ['t.f64', { type: 'float64', value: Math.PI }],
  ['t.u64', { type: 'uint64', value: 2n ** 63n + 5n }],
  ['t.i64', { type: 'int64', value: -(2n ** 62n) }],
  ['t.bool', gguf.bool(true)],
  ['t.str', gguf.str('héllo\n<|im_end|> 🙂')],
  ['t.arr.str', gguf.arr('string', ['a', '', 'Ġb'])],
  ['t.arr.i32', gguf.arr('int32', [1, -2, 3])],
  ['t.arr.f32', gguf.arr('float32', [0.5, -1.25])],
  ['t.arr.empty', gguf.arr('string', [])],
];

async function expectGgufError(p: Promise<unknown>, code: string, text?: RegExp) {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(GgufError);
  expect((e as GgufError).code).toBe(code);
  if (text) expect((e as Error).message).toMatch(text);
  return e as GgufError;
}

describe('GGUF v3 reader/writer', () => {
  it('round-trips every metadata type and F32/F16/BF16 tensors', async () => {
    const path = join(dir, 'all.gguf');
    const a = Float32Array.from({ length: 6 }, (_, i) => i * 0.37 - 1);
    const b = Float32Array.from([1, -2, 0.5, 65504, 2 ** -24, 0]);
    const c = Float32Array.from([1, -2, 3.5, 256]);
    await writeGguf(path, metadata, [
      { name: 'a', shape: [3, 2], data: a },
      { name: 'b', shape: [6], data: b, type: 'F16' },
      { name: 'c', shape: [2, 1, 2], data: c, type: 'BF16' },
    ]);
    const r = await openGguf(path);
    try {
      expect(r.header.version).toBe(3);
      expect([...r.header.metadata]).toEqual(metadata);
      expect(r.header.tensors.map((t) => [t.name, t.shape, t.typeName])).toEqual([
        ['a', [3, 2], 'F32'],
        ['b', [6], 'F16'],
        ['c', [2, 1, 2], 'BF16'],
      ]);
      expect(r.header.dataOffset % 32).toBe(0);
      expect(r.header.tensors.every((t) => t.offset % 32 === 0)).toBe(true);
      expect(await r.readTensor(r.header.tensors[0])).toEqual(a);
      expect(await r.readTensor(r.header.tensors[1])).toEqual(b);
      expect(await r.readTensor(r.header.tensors[2])).toEqual(c);
    } finally {
      await r.close();
    }
  });

  it('honours general.alignment', async () => {
    const path = join(dir, 'align.gguf');
    await writeGguf(path, [['general.alignment', gguf.u32(64)]], [
      { name: 'x', shape: [3], data: new Float32Array([1, 2, 3]) },
      { name: 'y', shape: [1], data: new Float32Array([4]) },
    ]);
    const h = await readGgufHeader(path);
    expect(h.alignment).toBe(64);
    expect(h.dataOffset % 64).toBe(0);
    expect(h.tensors[1].offset).toBe(64);
  });

  it('converts half precision like IEEE 754', () => {
    for (const x of [0, 1, -1, 0.5, 65504, 2 ** -14, 2 ** -24, 0.1, -3.140625]) {
      expect(f16ToF32(f32ToF16(x))).toBeCloseTo(x, x === 0.1 ? 3 : 6);
    }
    expect(f32ToF16(1e6)).toBe(0x7c00); // overflow → +inf
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie rounds to even
    expect(Number.isNaN(f16ToF32(f32ToF16(Number.NaN)))).toBe(true);
  });

  it('names a missing file', async () => {
    await expectGgufError(readGgufHeader(join(dir, 'nope.gguf')), 'GGUF_NOT_FOUND', /nope\.gguf/);
  });

  it('rejects a bad magic with the file path', async () => {
    const path = join(dir, 'bad-magic.gguf');
    await writeFile(path, Buffer.from('GGML\x03\x00\x00\x00 and some more bytes here'));
    await expectGgufError(readGgufHeader(path), 'GGUF_CORRUPT', /bad-magic\.gguf.*bad magic "GGML"/);
  });

  it('rejects a truncated file, in the header and in the tensor data', async () => {
    const path = join(dir, 'full.gguf');
    await writeGguf(path, metadata, [{ name: 'a', shape: [64], data: new Float32Array(64) }]);
    const bytes = await readFile(path);
    const cutHeader = join(dir, 'cut-header.gguf');
    await writeFile(cutHeader, bytes.subarray(0, 100));
    await expectGgufError(readGgufHeader(cutHeader), 'GGUF_CORRUPT', /cut-header\.gguf.*(end of file|past the end)/);
    const cutData = join(dir, 'cut-data.gguf');
    await writeFile(cutData, bytes.subarray(0, bytes.length - 10));
    await expectGgufError(readGgufHeader(cutData), 'GGUF_CORRUPT', /tensor 'a'.*truncated/);
  });

  it('refuses quantized tensors with the type named', async () => {
    const path = join(dir, 'q8.gguf');
    await writeGguf(path, [], [{ name: 'w', shape: [32, 4], data: new Float32Array(128) }]);
    const bytes = await readFile(path);
    // header (24) + name (8 + 1) + n_dims (4) + dims (2 × 8) → the ggml type field
    const typeAt = 24 + 9 + 4 + 16;
    expect(bytes.readInt32LE(typeAt)).toBe(0);
    bytes.writeInt32LE(8, typeAt); // Q8_0
    await writeFile(path, bytes);
    const r = await openGguf(path);
    try {
      expect(r.header.tensors[0].typeName).toBe('Q8_0');
      await expectGgufError(
        r.readTensor(r.header.tensors[0]),
        'GGUF_QUANTIZED',
        /quantized \(Q8_0, tensor 'w'\): full fine-tuning needs F32, F16 or BF16 weights — train a LoRA adapter.*or use an F16\/BF16 GGUF/,
      );
    } finally {
      await r.close();
    }
  });

  it("reads a tensor's stored bytes into a given buffer, and says when the file is short or gone", async () => {
    const path = join(dir, 'stored.gguf');
    const data = Float32Array.from({ length: 64 }, (_, i) => i / 8);
    await writeGguf(path, [], [{ name: 'w', shape: [16, 4], data, type: 'F16' }]);
    const h = await readGgufHeader(path);
    const t = h.tensors[0];
    const into = new Uint8Array(t.byteLength);
    readStoredBytes(path, h.dataOffset + t.offset, into, "tensor 'w'");
    const halves = new Uint16Array(into.buffer);
    expect(Array.from(halves, f16ToF32)).toEqual(Array.from(data));
    const call = (p: string, offset: number) => () => readStoredBytes(p, offset, new Uint8Array(t.byteLength), "tensor 'w'");
    expect(call(path, h.fileSize - 10)).toThrow(/stored\.gguf: short read of tensor 'w'/);
    expect(call(join(dir, 'gone.gguf'), 0)).toThrow(/cannot open GGUF file .*gone\.gguf to read tensor 'w'/);
  });

  it('writes atomically: a failed write leaves no file and no temp file', async () => {
    const path = join(dir, 'sub', 'x.gguf');
    await expectGgufError(writeGguf(path, [], [{ name: 'a', shape: [1], data: new Float32Array(1) }]), 'GGUF_WRITE_FAILED');
    await expectGgufError(
      writeGguf(join(dir, 'bad-shape.gguf'), [], [{ name: 'a', shape: [2], data: new Float32Array(3) }]),
      'GGUF_WRITE_FAILED',
      /3 values but shape \[2\]/,
    );
  });
});
