import { describe, expect, it } from 'vitest';
import { expectedTensors } from './llama-model.ts';
import { createTinyModel, gpt2ByteAlphabet, NODEAI_TINY, TINY_CONFIG } from './tiny-model.ts';

describe('nodeai-tiny', () => {
  it('has the reference config and every Llama tensor', () => {
    const m = createTinyModel({ seed: 0 });
    expect(m.name).toBe(NODEAI_TINY);
    expect(m.config).toEqual(TINY_CONFIG);
    expect(m.config).toMatchObject({ vocabSize: 259, blockCount: 4, embeddingLength: 128, headCount: 4, headCountKv: 2, feedForwardLength: 384, contextLength: 256 });
    for (const e of expectedTensors(m.config)) expect(m.tensors.get(e.name)!.shape).toEqual(e.shape);
    expect(m.tokenizer.tokens.slice(256)).toEqual(['<|endoftext|>', '<|im_start|>', '<|im_end|>']);
  });

  it('is deterministic per seed', () => {
    const a = createTinyModel({ seed: 42, blockCount: 1 });
    const b = createTinyModel({ seed: 42, blockCount: 1 });
    const c = createTinyModel({ seed: 43, blockCount: 1 });
    for (const [k, t] of a.tensors) expect(b.tensors.get(k)!.data).toEqual(t.data);
    expect(c.tensors.get('blk.0.attn_q.weight')!.data).not.toEqual(a.tensors.get('blk.0.attn_q.weight')!.data);
    const q = a.tensors.get('blk.0.attn_q.weight')!.data;
    const std = Math.sqrt(q.reduce((s, x) => s + x * x, 0) / q.length);
    expect(std).toBeGreaterThan(0.018);
    expect(std).toBeLessThan(0.022);
  });

  it('uses a byte alphabet that is a bijection onto single characters', () => {
    const alphabet = gpt2ByteAlphabet();
    expect(new Set(alphabet).size).toBe(256);
    expect(alphabet.every((c) => [...c].length === 1)).toBe(true);
    expect(alphabet[0x41]).toBe('A');
    expect(alphabet[0x20]).toBe('Ġ');
    expect(alphabet[0x0a]).toBe('Ċ');
  });

  it('builds smaller variants for tests and rejects impossible shapes', () => {
    const m = createTinyModel({ seed: 1, blockCount: 1, embeddingLength: 16, headCount: 2, headCountKv: 1, feedForwardLength: 24 });
    expect(m.tensors.get('blk.0.attn_k.weight')!.shape).toEqual([16, 8]);
    expect(() => createTinyModel({ seed: 1, embeddingLength: 30, headCount: 4 })).toThrow(/do not divide/);
  });
});
