// The catalogue's computed file sizes rest on this: a dry run of llama.cpp's quantizer, read by
// quantizedFileSize, gives exactly the size of the file a real run writes, tensor types included,
// and gives the same from a sparse layout file whose weights were never written.
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { llamaQuantize, llamaQuantizeDryRun, type LlamaFtypeName } from './ggml/llama-quantize.ts';
import { ggmlTypeName, readGgufHeader } from './gguf.ts';
import { writeGgufModel, writeGgufModelLayout } from './gguf-model.ts';
import { quantizedFileSize } from './quantized-file-size.ts';
import { createTinyModel } from './tiny-model.ts';

// Rows of 256 (d_model) fit every K-quant block; ffn_down's rows of 384 do not, so the quantizer
// falls back to a 32-block type there; the untied output head gets Q4_K_M's Q6_K. So the plan
// read from the log must follow llama.cpp's mix and fallbacks, not just the ftype's base type.
const model = createTinyModel({ seed: 5, tiedEmbeddings: false, blockCount: 2, embeddingLength: 256, headCount: 4, headCountKv: 2, feedForwardLength: 384, contextLength: 64 });
const FTYPES: LlamaFtypeName[] = ['Q8_0', 'Q4_K_M', 'Q6_K', 'Q4_0', 'BF16'];

let dir: string;
let f16: string;
let layout: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodeai-qsize-'));
  f16 = join(dir, 'model.f16.gguf');
  layout = join(dir, 'layout.f16.gguf');
  await writeGgufModel(f16, model, { type: 'F16' });
  await writeGgufModelLayout(layout, model, 'F16');
}, 60_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('quantizedFileSize', () => {
  it('writes a layout file with the full file’s header and length, its data left unwritten', async () => {
    const full = await readGgufHeader(f16);
    expect(statSync(layout).size).toBe(statSync(f16).size);
    expect(readFileSync(layout).subarray(0, full.dataOffset)).toEqual(readFileSync(f16).subarray(0, full.dataOffset));
    expect(readFileSync(layout).subarray(full.dataOffset).every((b) => b === 0)).toBe(true);
  });

  it.each(FTYPES)('equals the size of the file a real %s quantize writes, to the byte, with the same tensor types', async (ftype) => {
    const out = join(dir, `${ftype}.gguf`);
    llamaQuantize(f16, out, ftype, { pure: false, threads: 1 });
    const written = await readGgufHeader(out);

    const fromFull = await quantizedFileSize(f16, ftype);
    const fromLayout = await quantizedFileSize(layout, ftype);
    expect(fromFull.bytes).toBe(statSync(out).size);
    expect(fromLayout.bytes).toBe(fromFull.bytes);
    expect(fromFull.headerBytes).toBe(written.dataOffset);
    const planned = Object.fromEntries(fromLayout.plan.tensors.map((t) => [t.name, t.toType.toUpperCase()]));
    expect(planned).toEqual(Object.fromEntries(written.tensors.map((t) => [t.name, ggmlTypeName(t.type)])));
  });

  it('says what llama.cpp found wrong with a file it cannot plan', async () => {
    const notGguf = join(dir, 'not-a-model.gguf');
    await writeFile(notGguf, 'hello');
    expect(() => llamaQuantizeDryRun(notGguf, 'Q8_0')).toThrow(/could not plan .*not-a-model\.gguf as Q8_0: .*\S/);
  });

  it('follows the mix and the fallbacks of the ftype, not only its base type', () => {
    const plan = llamaQuantizeDryRun(layout, 'Q4_K_M');
    const typeOf = (name: string) => plan.tensors.find((t) => t.name === name)?.toType;
    expect(typeOf('output.weight')).toBe('q6_K');
    expect(typeOf('blk.0.attn_q.weight')).toBe('q4_K');
    expect(typeOf('blk.0.ffn_down.weight')).not.toMatch(/_K$/); // rows of 384: no K-quant block fits
    expect(typeOf('blk.0.attn_norm.weight')).toBe('f32');
  });
});
