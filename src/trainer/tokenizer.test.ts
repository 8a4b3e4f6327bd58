import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LlamaModel as LlamaCppModel } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderPromptForInference } from './chat-format.ts';
import { writeGgufModel } from './gguf-model.ts';
import { disposeLocalLlama, getLocalLlama } from './inference-runtime.ts';
import { createTinyModel, TINY_TOKEN_IDS } from './tiny-model.ts';
import { ByteLevelTokenizer, createTokenizer, isByteLevelSpec } from './tokenizer.ts';

const model = createTinyModel({ seed: 3, blockCount: 1, embeddingLength: 32, headCount: 2, headCountKv: 1, feedForwardLength: 64 });
const tok = new ByteLevelTokenizer(model.tokenizer);

const samples = [
  'Hello, world!',
  'a , b . c ? d !',
  "don't   stop\n\n\ttabs and  spaces ",
  'Ünïcödé — “quotes” 日本語 🙂👍🏽',
  '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n',
  'almost <|im_start special <|im_end|><|im_end|> <|endoftext|>x',
  '\u0000\u0001\u007f byte edge cases \u00ad\u00a0',
  '',
];

let dir: string;
let cpp: LlamaCppModel;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodeai-tok-'));
  const path = join(dir, 'tiny.gguf');
  await writeGgufModel(path, model);
  cpp = await (await getLocalLlama()).loadModel({ modelPath: path, vocabOnly: true });
});
afterAll(async () => {
  await cpp?.dispose();
  await disposeLocalLlama();
  await rm(dir, { recursive: true, force: true });
});

describe('byte-level tokenizer', () => {
  it('is recognised from the nodeai-tiny vocabulary', () => {
    expect(isByteLevelSpec(model.tokenizer)).toBe(true);
    expect(isByteLevelSpec({ ...model.tokenizer, merges: ['Ġ a'] })).toBe(false);
  });

  it('tokenizes exactly like llama.cpp on the exported GGUF, with and without special tokens', () => {
    for (const text of samples) {
      expect(tok.encode(text, { special: true }), JSON.stringify(text)).toEqual(Array.from(cpp.tokenize(text, true)));
      expect(tok.encode(text, { special: false }), JSON.stringify(text)).toEqual(Array.from(cpp.tokenize(text, false)));
    }
  });

  it('tokenizes the rendered chat template like llama.cpp', () => {
    const text = renderPromptForInference(model, [
      { role: 'system', content: 'Answer briefly.' },
      { role: 'user', content: 'Wie spät ist es? 🕑' },
      { role: 'assistant', content: 'Zwölf.' },
      { role: 'user', content: 'Danke!' },
    ]);
    const ours = tok.encode(text);
    expect(ours).toEqual(Array.from(cpp.tokenize(text, true)));
    expect(ours.filter((t) => t === TINY_TOKEN_IDS.imStart)).toHaveLength(5);
    expect(ours.at(-1)).toBe(10); // "\n" after "assistant"
  });

  it('decodes bytes back to text, special tokens only on request', () => {
    for (const text of samples) expect(tok.decode(tok.encode(text, { special: false }))).toBe(text);
    const ids = tok.encode('hi<|im_end|>');
    expect(tok.decode(ids)).toBe('hi');
    expect(tok.decode(ids, { special: true })).toBe('hi<|im_end|>');
    // llama.cpp agrees on plain bytes (its BPE clean-up only touches " ," and the like)
    expect(cpp.detokenize(tok.encode('Ünïcödé 🙂', { special: false }) as never)).toBe('Ünïcödé 🙂');
  });

  it('streams multi-byte characters whole', () => {
    const d = tok.createDecoder();
    const chunks = tok.encode('é🙂', { special: false }).map((t) => d.push(t));
    expect(chunks).toEqual(['', 'é', '', '', '', '🙂']);
    expect(d.flush()).toBe('');
  });

  it('knows the end-of-turn tokens', () => {
    expect(tok.isEndOfGeneration(TINY_TOKEN_IDS.imEnd)).toBe(true);
    expect(tok.isEndOfGeneration(TINY_TOKEN_IDS.endOfText)).toBe(true);
    expect(tok.isEndOfGeneration(TINY_TOKEN_IDS.imStart)).toBe(false);
    expect(tok.isEndOfGeneration(65)).toBe(false);
    expect(cpp.isEogToken(TINY_TOKEN_IDS.imEnd as never)).toBe(true);
    expect(tok.tokenId('<|im_end|>')).toBe(258);
  });
});

describe('llama.cpp-backed tokenizer for other vocabularies', () => {
  it('loads the vocabulary alone from a metadata-only GGUF and tokenizes with it', async () => {
    // One BPE merge makes the vocabulary non-byte-level, so llama.cpp must do the work.
    const m = createTinyModel({ seed: 3, blockCount: 1, embeddingLength: 32, headCount: 2, headCountKv: 1, feedForwardLength: 64 });
    m.tokenizer = { ...m.tokenizer, tokens: [...m.tokenizer.tokens, 'ab'], tokenTypes: [...m.tokenizer.tokenTypes!, 1], merges: ['a b'] };
    m.config = { ...m.config, vocabSize: m.tokenizer.tokens.length };
    const t = await createTokenizer(m);
    try {
      expect(t.kind).toBe('llama.cpp');
      expect(t.encode('cab<|im_end|>')).toEqual([99, 259, 258]);
      expect(t.decode([99, 259])).toBe('cab');
      expect(t.isEndOfGeneration(258)).toBe(true);
      const d = t.createDecoder();
      expect([d.push(99), d.push(259), d.flush()].join('')).toBe('cab');
    } finally {
      await t.dispose();
    }
  });
});
