import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContextOverflowError } from './chat-format.ts';
import { GgufError } from './gguf.ts';
import { writeGgufAdapter, writeGgufModel } from './gguf-model.ts';
import { disposeInference, generate, generateStream, InferenceError } from './inference.ts';
import { loraTensorNames, tensorNames, type LlamaModel, type LoraAdapter } from './llama-model.ts';
import { createTinyModel, TINY_TOKEN_IDS } from './tiny-model.ts';

const D = 128;

/**
 * A model whose layers add nothing (attn_output = ffn_down = 0), so the last hidden state is the
 * RMS-normalised embedding of the last token. Embedding row t is one-hot at t % D, and output row
 * u (1 ≤ u < 128) reads dim u-1: greedy decoding then continues "a" with "bcdef". That only
 * happens if token_embd.weight and output.weight are laid out the way llama.cpp reads them.
 */
function successorModel(): LlamaModel {
  const m = createTinyModel({ seed: 5, blockCount: 1, embeddingLength: D, headCount: 4, headCountKv: 2, feedForwardLength: 64 });
  m.name = 'successor';
  m.tensors.get(tensorNames.attnOutput(0))!.data.fill(0);
  m.tensors.get(tensorNames.ffnDown(0))!.data.fill(0);
  const embd = m.tensors.get(tensorNames.tokenEmbd)!.data.fill(0);
  for (let t = 0; t < m.config.vocabSize; t++) embd[t * D + (t % D)] = 1;
  const out = m.tensors.get(tensorNames.output)!.data.fill(0);
  for (let u = 1; u < 128; u++) out[u * D + (u - 1)] = 1;
  out[TINY_TOKEN_IDS.imEnd * D + 0x21] = 2; // after "!" the turn ends
  return m;
}

/**
 * Rank-2 LoRA on output.weight: component 0 reads "a", component 1 reads "c"; B sends them to
 * "z" and "x". Distinct entries in both A and B, so a transposed layout would change the result.
 */
function redirectAdapter(): LoraAdapter {
  const target = tensorNames.output;
  const n = loraTensorNames(target);
  const a = new Float32Array(D * 2);
  a[0 * D + 0x61] = 1;
  a[1 * D + 0x63] = 1;
  const b = new Float32Array(2 * 259);
  b[0x7a * 2 + 0] = 10;
  b[0x78 * 2 + 1] = 10;
  return {
    rank: 2,
    alpha: 2,
    targets: [target],
    tensors: new Map([
      [n.a, { name: n.a, shape: [D, 2], data: a }],
      [n.b, { name: n.b, shape: [2, 259], data: b }],
    ]),
  };
}

let dir: string;
let tiny: string;
let succ: string;
let lora: string;
let other: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodeai-inf-'));
  tiny = join(dir, 'tiny.gguf');
  succ = join(dir, 'succ.gguf');
  lora = join(dir, 'succ-lora.gguf');
  await writeGgufModel(tiny, createTinyModel({ seed: 11 }));
  const s = successorModel();
  await writeGgufModel(succ, s);
  await writeGgufAdapter(lora, redirectAdapter(), s);
  other = join(dir, 'other.gguf');
  await writeGgufModel(other, createTinyModel({ seed: 2, blockCount: 1, embeddingLength: 64, headCount: 2, headCountKv: 1, feedForwardLength: 64 }));
});
afterAll(async () => {
  await disposeInference();
  await rm(dir, { recursive: true, force: true });
});

describe('inference with node-llama-cpp', () => {
  it('generates from nodeai-tiny: within maxTokens, deterministic when greedy', async () => {
    const messages = [{ role: 'user', content: 'Hello there' }];
    const a = await generate({ model: tiny, messages, maxTokens: 12 });
    const b = await generate({ model: tiny, messages, maxTokens: 12 });
    expect(a.usage.completionTokens).toBeLessThanOrEqual(12);
    // bytes, with each of the three special tokens counted once
    expect(a.usage.promptTokens).toBe('<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n'.length - 2 * 11 - 9);
    expect(a.usage.totalTokens).toBe(a.usage.promptTokens + a.usage.completionTokens);
    expect(b.text).toBe(a.text);
    expect(b.tokens).toEqual(a.tokens);
  });

  it('samples reproducibly with a seed, and streams the same text', async () => {
    const opts = { model: tiny, prompt: 'Once upon', maxTokens: 16, temperature: 1.2, topP: 0.95, seed: 1234 };
    const a = await generate(opts);
    const b = await generate(opts);
    expect(b.tokens).toEqual(a.tokens);
    const chunks: string[] = [];
    const it = generateStream(opts);
    let r = await it.next();
    while (!r.done) {
      chunks.push(r.value);
      r = await it.next();
    }
    expect(chunks.join('')).toBe(a.text);
    expect(r.value.tokens).toEqual(a.tokens);
  });

  it('reads token_embd/output the way the weights were written (hand-built successor model)', async () => {
    const r = await generate({ model: succ, prompt: 'a', maxTokens: 5 });
    expect(r.text).toBe('bcdef');
    expect(r.finishReason).toBe('length');
    expect(r.usage).toEqual({ promptTokens: 1, completionTokens: 5, totalTokens: 6 });
  });

  it('loads F16 exports and tied-embedding models', async () => {
    const f16 = join(dir, 'succ-f16.gguf');
    await writeGgufModel(f16, successorModel(), { type: 'F16' });
    expect((await generate({ model: f16, prompt: 'k', maxTokens: 3 })).text).toBe('lmn');
    const tied = join(dir, 'tied.gguf');
    await writeGgufModel(tied, createTinyModel({ seed: 4, blockCount: 2, tiedEmbeddings: true }));
    const r = await generate({ model: tied, messages: [{ role: 'user', content: 'hi' }], maxTokens: 4 });
    expect(r.usage.completionTokens).toBeGreaterThan(0);
    expect(r.usage.completionTokens).toBeLessThanOrEqual(4);
  });

  it('stops at the end-of-turn token', async () => {
    const r = await generate({ model: succ, prompt: ' ', maxTokens: 10 });
    expect(r.text).toBe('!');
    expect(r.finishReason).toBe('stop');
    expect(r.usage.completionTokens).toBe(2); // "!" and <|im_end|>
  });

  it('applies a LoRA adapter GGUF with llama.cpp’s A/B layout', async () => {
    expect((await generate({ model: succ, lora, prompt: 'a', maxTokens: 5 })).text).toBe('z{|}~');
    expect((await generate({ model: succ, lora, prompt: 'b', maxTokens: 4 })).text).toBe('cxyz');
    expect((await generate({ model: succ, lora: { path: lora, scale: 0 }, prompt: 'a', maxTokens: 3 })).text).toBe('bcd');
    // the base without the adapter is unchanged
    expect((await generate({ model: succ, prompt: 'b', maxTokens: 4 })).text).toBe('cdef');
  });

  it('gives typed errors for bad inputs', async () => {
    const err = async (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as Error & { code: string });
    const missing = await err(generate({ model: join(dir, 'missing.gguf'), prompt: 'x' }));
    expect(missing).toBeInstanceOf(GgufError);
    expect(missing!.code).toBe('GGUF_NOT_FOUND');

    const corrupt = join(dir, 'corrupt.gguf');
    await writeFile(corrupt, (await readFile(tiny)).subarray(0, 5000));
    const c = await err(generate({ model: corrupt, prompt: 'x' }));
    expect(c!.code).toBe('GGUF_CORRUPT');
    expect(c!.message).toContain(corrupt);

    expect((await err(generate({ model: succ, lora: tiny, prompt: 'x' })))!.code).toBe('GGUF_NOT_ADAPTER');
    expect((await err(generate({ model: lora, prompt: 'x' })))!.code).toBe('GGUF_INVALID_MODEL');
    // An adapter for a different base: llama.cpp refuses the shapes; we report it, the process lives.
    const wrong = await err(generate({ model: other, lora, prompt: 'x', maxTokens: 1 }));
    expect(wrong).toBeInstanceOf(InferenceError);
    expect(wrong!.code).toBe('ADAPTER_LOAD_FAILED');
    expect(wrong!.message).toContain(lora);

    const long = await err(generate({ model: tiny, prompt: 'y'.repeat(300) }));
    expect(long).toBeInstanceOf(ContextOverflowError);
    expect(long!.code).toBe('CONTEXT_OVERFLOW');
    expect((await err(generate({ model: tiny } as never)))!.code).toBe('BAD_REQUEST');
  });
});
