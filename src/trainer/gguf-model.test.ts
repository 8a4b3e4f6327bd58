import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gguf, GgufError, readGgufHeader, writeGguf } from './gguf.ts';
import { readGgufAdapter, readGgufModel, writeGgufAdapter, writeGgufModel } from './gguf-model.ts';
import { loraTensorNames, type LlamaModel, type LoraAdapter } from './llama-model.ts';
import { createTinyModel } from './tiny-model.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodeai-ggufm-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const small = () => createTinyModel({ seed: 7, blockCount: 2, embeddingLength: 32, headCount: 4, headCountKv: 2, feedForwardLength: 64, contextLength: 64 });

async function codeOf(p: Promise<unknown>): Promise<[string, string]> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(GgufError);
  return [(e as GgufError).code, (e as Error).message];
}

function makeAdapter(model: LlamaModel, targets: string[], rank: number, seed = 1): LoraAdapter {
  const tensors = new Map();
  let s = seed;
  const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647) - 0.5;
  for (const t of targets) {
    const [nIn, nOut] = model.tensors.get(t)!.shape;
    const n = loraTensorNames(t);
    tensors.set(n.a, { name: n.a, shape: [nIn, rank], data: Float32Array.from({ length: nIn * rank }, rnd) });
    tensors.set(n.b, { name: n.b, shape: [rank, nOut], data: Float32Array.from({ length: rank * nOut }, rnd) });
  }
  return { rank, alpha: 2 * rank, targets, tensors };
}

describe('LlamaModel ⇄ GGUF', () => {
  it('round-trips tensors, config, tokenizer and extra metadata exactly (F32)', async () => {
    const m = small();
    m.extraMetadata = new Map([['general.license', gguf.str('MIT')]]);
    const path = join(dir, 'm.gguf');
    await writeGgufModel(path, m);
    const r = await readGgufModel(path);
    expect(r.name).toBe(m.name);
    expect(r.config).toEqual(m.config);
    expect(r.tokenizer).toEqual(m.tokenizer);
    expect([...r.tensors.keys()].sort()).toEqual([...m.tensors.keys()].sort());
    for (const [k, t] of m.tensors) {
      expect(r.tensors.get(k)!.shape).toEqual(t.shape);
      expect(r.tensors.get(k)!.data).toEqual(t.data);
    }
    expect(r.extraMetadata).toEqual(new Map([['general.license', gguf.str('MIT')]]));
    const h = await readGgufHeader(path);
    expect(h.metadata.get('general.architecture')).toEqual(gguf.str('llama'));
    expect(h.metadata.get('llama.rope.dimension_count')).toEqual(gguf.u32(8));
    expect(h.metadata.get('tokenizer.ggml.merges')).toEqual(gguf.arr('string', []));
  });

  it('writes F16 weights (norms stay F32) and reads them back widened', async () => {
    const m = small();
    const path = join(dir, 'm16.gguf');
    await writeGgufModel(path, m, { type: 'F16' });
    const h = await readGgufHeader(path);
    expect(h.tensors.find((t) => t.name === 'blk.0.attn_q.weight')!.typeName).toBe('F16');
    expect(h.tensors.find((t) => t.name === 'blk.0.attn_norm.weight')!.typeName).toBe('F32');
    const r = await readGgufModel(path);
    const a = m.tensors.get('blk.1.ffn_up.weight')!.data;
    const b = r.tensors.get('blk.1.ffn_up.weight')!.data;
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-4);
  });

  it('supports tied embeddings (no output.weight)', async () => {
    const m = createTinyModel({ seed: 1, blockCount: 1, embeddingLength: 16, headCount: 2, headCountKv: 1, feedForwardLength: 32, tiedEmbeddings: true });
    const path = join(dir, 'tied.gguf');
    await writeGgufModel(path, m);
    const r = await readGgufModel(path);
    expect(r.config.tiedEmbeddings).toBe(true);
    expect(r.tensors.has('output.weight')).toBe(false);
  });

  it('refuses an invalid model before writing', async () => {
    const m = small();
    m.tensors.delete('blk.1.ffn_up.weight');
    const [code, msg] = await codeOf(writeGgufModel(join(dir, 'x.gguf'), m));
    expect(code).toBe('GGUF_INVALID_MODEL');
    expect(msg).toMatch(/blk\.1\.ffn_up\.weight/);
  });

  it('gives clear typed errors for bad bases', async () => {
    const m = small();
    const good = join(dir, 'good.gguf');
    await writeGgufModel(good, m);

    expect(await codeOf(readGgufModel(join(dir, 'missing.gguf')))).toEqual(['GGUF_NOT_FOUND', expect.stringMatching(/missing\.gguf/)]);

    const bytes = await readFile(good);
    const truncated = join(dir, 'truncated.gguf');
    await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)));
    expect(await codeOf(readGgufModel(truncated))).toEqual(['GGUF_CORRUPT', expect.stringMatching(/truncated\.gguf.*truncated/)]);

    const gemma2 = join(dir, 'gemma2.gguf');
    await writeGguf(gemma2, [['general.architecture', gguf.str('gemma2')]], []);
    expect(await codeOf(readGgufModel(gemma2))).toEqual(['GGUF_UNSUPPORTED_ARCHITECTURE', expect.stringMatching(/'gemma2'.*soft-caps.*llama, qwen2, qwen3, gemma3/)]);

    const gpt = join(dir, 'gptneox.gguf');
    await writeGguf(gpt, [['general.architecture', gguf.str('gptneox')]], []);
    expect((await codeOf(readGgufModel(gpt)))[0]).toBe('GGUF_UNSUPPORTED_ARCHITECTURE');

    // A Llama file with a tensor our graph lacks (an output bias).
    const header = await readGgufHeader(good);
    const outputBias = join(dir, 'output-bias.gguf');
    const r = await readGgufModel(good);
    await writeGguf(outputBias, header.metadata, [
      ...[...r.tensors.values()].map((t) => ({ name: t.name, shape: t.shape, data: t.data })),
      { name: 'output.bias', shape: [259], data: new Float32Array(259) },
    ]);
    expect(await codeOf(readGgufModel(outputBias))).toEqual(['GGUF_UNSUPPORTED_MODEL', expect.stringMatching(/llama graph does not have: output\.bias/)]);
  });

  it('refuses a quantized base with the type named', async () => {
    const path = join(dir, 'q.gguf');
    await writeGguf(path, [['general.architecture', gguf.str('llama')]], [{ name: 'token_embd.weight', shape: [256, 2], data: new Float32Array(512) }]);
    const bytes = await readFile(path);
    // name bytes, then n_dims (u32) and two i64 dims, then the ggml type
    const typeAt = bytes.indexOf(Buffer.from('token_embd.weight')) + 17 + 4 + 16;
    expect(bytes.readInt32LE(typeAt)).toBe(0);
    bytes.writeInt32LE(12, typeAt); // Q4_K (256-element blocks: the row of 32 is then invalid, so use 256)
    await writeFile(path, bytes);
    const [code, msg] = await codeOf(readGgufModel(path));
    expect(code).toBe('GGUF_QUANTIZED');
    expect(msg).toContain("is quantized (Q4_K, tensor 'token_embd.weight'): full fine-tuning needs F32, F16 or BF16 weights");
    expect(msg).toMatch(/LoRA.*F16\/BF16/);
  });
});

describe('LoRA adapter GGUF', () => {
  it('round-trips an adapter and writes llama.cpp metadata', async () => {
    const m = small();
    const adapter = makeAdapter(m, ['blk.0.attn_q.weight', 'blk.1.ffn_down.weight', 'output.weight'], 4);
    const path = join(dir, 'lora.gguf');
    await writeGgufAdapter(path, adapter, m);
    const h = await readGgufHeader(path);
    expect(h.metadata.get('general.type')).toEqual(gguf.str('adapter'));
    expect(h.metadata.get('adapter.type')).toEqual(gguf.str('lora'));
    expect(h.metadata.get('adapter.lora.alpha')).toEqual(gguf.f32(8));
    expect(h.metadata.get('general.architecture')).toEqual(gguf.str('llama'));
    expect(h.tensors.find((t) => t.name === 'blk.1.ffn_down.weight.lora_a')!.shape).toEqual([64, 4]);
    expect(h.tensors.find((t) => t.name === 'blk.1.ffn_down.weight.lora_b')!.shape).toEqual([4, 32]);
    const back = await readGgufAdapter(path, m);
    expect(back.rank).toBe(4);
    expect(back.alpha).toBe(8);
    expect(back.targets.sort()).toEqual([...adapter.targets].sort());
    for (const [k, t] of adapter.tensors) expect(back.tensors.get(k)!.data).toEqual(t.data);
  });

  it('refuses adapters that do not fit the base', async () => {
    const m = small();
    const bad = makeAdapter(m, ['blk.0.attn_k.weight'], 2);
    bad.tensors.get('blk.0.attn_k.weight.lora_b')!.shape = [16, 2]; // transposed
    expect(await codeOf(writeGgufAdapter(join(dir, 'bad.gguf'), bad, m))).toEqual([
      'GGUF_ADAPTER_MISMATCH',
      expect.stringMatching(/expects A \[32, 2\] and B \[2, 16\]/),
    ]);
    const unknown = makeAdapter(m, ['blk.0.attn_k.weight'], 2);
    unknown.targets = ['blk.9.attn_k.weight'];
    expect((await codeOf(writeGgufAdapter(join(dir, 'bad2.gguf'), unknown, m)))[0]).toBe('GGUF_ADAPTER_MISMATCH');
    const base = join(dir, 'base.gguf');
    await writeGgufModel(base, m);
    expect((await codeOf(readGgufAdapter(base)))[0]).toBe('GGUF_NOT_ADAPTER');
  });
});
