// Tokenizers for Llama-family models, exact with respect to llama.cpp:
// - byte-level vocabularies (nodeai-tiny) are tokenized here in TypeScript, one token per byte
//   plus control tokens, which is exactly what llama.cpp's BPE does with no merges;
// - any other vocabulary is tokenized by llama.cpp itself (node-llama-cpp, vocab only), so
//   training and inference tokens are the same by construction.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LlamaModel as LlamaCppModel } from 'node-llama-cpp';
import { gguf, writeGguf, type GgufValue } from './gguf.ts';
import { tokenizerMetadata } from './gguf-model.ts';
import { getLocalLlama } from './inference-runtime.ts';
import type { LlamaModel, TokenizerSpec } from './llama-model.ts';
import { gpt2ByteAlphabet, TOKEN_TYPE } from './tiny-model.ts';

export interface EncodeOptions {
  /** Parse control-token text such as `<|im_end|>` into its single token (as chat templates need). Default true. */
  special?: boolean;
}

export interface DecodeOptions {
  /** Render control tokens as their text; default false (llama.cpp's detokenize default for output text). */
  special?: boolean;
}

/** Turns a stream of token ids into text chunks, holding back incomplete UTF-8 sequences. */
export interface StreamDecoder {
  push(token: number): string;
  flush(): string;
}

export interface Tokenizer {
  readonly kind: 'byte-level' | 'llama.cpp';
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  encode(text: string, options?: EncodeOptions): number[];
  decode(tokens: ArrayLike<number>, options?: DecodeOptions): string;
  createDecoder(options?: DecodeOptions): StreamDecoder;
  /** True for tokens that end generation (EOS, end-of-turn such as `<|im_end|>`). */
  isEndOfGeneration(token: number): boolean;
  /** The id of a token given its exact text (special tokens included), if the vocabulary has it. */
  tokenId(text: string): number | undefined;
  dispose(): Promise<void>;
}

// Token texts llama.cpp treats as end-of-turn even when the GGUF does not say so (llama-vocab.cpp).
const END_OF_TURN_TEXTS = new Set([
  '<|eot_id|>',
  '<|im_end|>',
  '<|end|>',
  '<end_of_turn>',
  '<|endoftext|>',
  '<|end_of_text|>',
  '<EOT>',
  '<|eom_id|>',
]);

/** True when llama.cpp would tokenize this vocabulary byte by byte (gpt2, no merges, byte alphabet, control extras). */
export function isByteLevelSpec(spec: TokenizerSpec): boolean {
  if (spec.model !== 'gpt2' || (spec.merges && spec.merges.length > 0) || spec.tokens.length < 256) return false;
  const alphabet = gpt2ByteAlphabet();
  for (let i = 0; i < 256; i++) if (spec.tokens[i] !== alphabet[i]) return false;
  for (let i = 256; i < spec.tokens.length; i++) if (spec.tokenTypes?.[i] !== TOKEN_TYPE.control) return false;
  return true;
}

export class ByteLevelTokenizer implements Tokenizer {
  readonly kind = 'byte-level' as const;
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  private readonly specials: Array<{ text: string; id: number }>;
  private readonly specialIds = new Set<number>();
  private readonly eog = new Set<number>();
  private readonly encoder = new TextEncoder();

  constructor(private readonly spec: TokenizerSpec) {
    if (!isByteLevelSpec(spec)) throw new TypeError('ByteLevelTokenizer needs a byte-level gpt2 vocabulary with no merges');
    this.vocabSize = spec.tokens.length;
    this.bosId = spec.bosId;
    this.eosId = spec.eosId;
    this.specials = spec.tokens
      .map((text, id) => ({ text, id }))
      .slice(256)
      // llama.cpp tries longer special tokens first when partitioning text.
      .sort((a, b) => b.text.length - a.text.length || a.id - b.id);
    for (const s of this.specials) {
      this.specialIds.add(s.id);
      if (END_OF_TURN_TEXTS.has(s.text)) this.eog.add(s.id);
    }
    if (spec.eosId !== undefined) this.eog.add(spec.eosId);
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    const out: number[] = [];
    const pushBytes = (s: string) => {
      for (const b of this.encoder.encode(s)) out.push(b);
    };
    if (options.special === false || this.specials.length === 0) {
      pushBytes(text);
      return out;
    }
    let start = 0;
    let plainFrom = 0;
    while (start < text.length) {
      let hit: { text: string; id: number } | undefined;
      let at = -1;
      // Leftmost match wins; among matches at the same place, the longest (specials are sorted so).
      for (const s of this.specials) {
        const i = text.indexOf(s.text, start);
        if (i !== -1 && (at === -1 || i < at)) {
          at = i;
          hit = s;
        }
      }
      if (!hit) break;
      pushBytes(text.slice(plainFrom, at));
      out.push(hit.id);
      start = plainFrom = at + hit.text.length;
    }
    pushBytes(text.slice(plainFrom));
    return out;
  }

  decode(tokens: ArrayLike<number>, options: DecodeOptions = {}): string {
    const d = this.createDecoder(options);
    let s = '';
    for (let i = 0; i < tokens.length; i++) s += d.push(tokens[i]);
    return s + d.flush();
  }

  createDecoder(options: DecodeOptions = {}): StreamDecoder {
    const utf8 = new TextDecoder('utf-8', { fatal: false });
    const one = new Uint8Array(1);
    return {
      push: (token) => {
        if (token >= 0 && token < 256) {
          one[0] = token;
          return utf8.decode(one, { stream: true });
        }
        if (!options.special || token < 0 || token >= this.vocabSize) return '';
        return utf8.decode(undefined, { stream: false }) + this.spec.tokens[token];
      },
      flush: () => utf8.decode(),
    };
  }

  isEndOfGeneration(token: number): boolean {
    return this.eog.has(token);
  }

  tokenId(text: string): number | undefined {
    const s = this.specials.find((x) => x.text === text);
    if (s) return s.id;
    const alphabet = gpt2ByteAlphabet();
    const i = alphabet.indexOf(text);
    return i === -1 ? undefined : i;
  }

  async dispose(): Promise<void> {}
}

/** A tokenizer backed by a node-llama-cpp model (vocab-only or full); exact by construction. */
export class LlamaCppTokenizer implements Tokenizer {
  readonly kind = 'llama.cpp' as const;
  readonly vocabSize: number;
  readonly bosId: number | undefined;
  readonly eosId: number | undefined;
  private byText: Map<string, number> | undefined;

  constructor(
    readonly model: LlamaCppModel,
    private readonly spec: TokenizerSpec,
    private readonly onDispose: () => Promise<void> = async () => {},
  ) {
    this.vocabSize = spec.tokens.length;
    this.bosId = model.tokens.bos ?? undefined;
    this.eosId = model.tokens.eos ?? undefined;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    return Array.from(this.model.tokenize(text, options.special ?? true));
  }

  decode(tokens: ArrayLike<number>, options: DecodeOptions = {}): string {
    return this.model.detokenize(Array.from(tokens) as never, options.special ?? false);
  }

  createDecoder(options: DecodeOptions = {}): StreamDecoder {
    const all: number[] = [];
    let emitted = '';
    const render = (final: boolean) => {
      const text = this.decode(all, options);
      // A trailing U+FFFD is usually half a UTF-8 character; wait for the rest unless flushing.
      const stable = final || !text.endsWith('\uFFFD') ? text : text.slice(0, -1);
      if (!stable.startsWith(emitted)) {
        // Detokenizer cleanup changed earlier text; give only what is new after the common part.
        let i = 0;
        while (i < emitted.length && i < stable.length && emitted[i] === stable[i]) i++;
        emitted = stable;
        return stable.slice(i);
      }
      const chunk = stable.slice(emitted.length);
      emitted = stable;
      return chunk;
    };
    return {
      push: (token) => {
        all.push(token);
        return render(false);
      },
      flush: () => render(true),
    };
  }

  isEndOfGeneration(token: number): boolean {
    return this.model.isEogToken(token as never);
  }

  tokenId(text: string): number | undefined {
    if (!this.byText) {
      this.byText = new Map();
      this.spec.tokens.forEach((t, i) => this.byText!.set(t, i));
    }
    return this.byText.get(text);
  }

  async dispose(): Promise<void> {
    await this.onDispose();
  }
}

/**
 * A tokenizer for `model`: in-process for byte-level vocabularies, otherwise llama.cpp's own
 * tokenizer loaded vocab-only — from `ggufPath` when the model came from a file, or from a
 * metadata-only GGUF written to a temporary folder. Dispose it when done.
 */
export async function createTokenizer(model: LlamaModel, options: { ggufPath?: string } = {}): Promise<Tokenizer> {
  if (isByteLevelSpec(model.tokenizer) || options.ggufPath) return ggufTokenizer(options.ggufPath ?? '', model.tokenizer);
  const tmp = await mkdtemp(join(tmpdir(), 'nodeai-vocab-'));
  try {
    const path = join(tmp, 'vocab.gguf');
    await writeGguf(path, vocabOnlyMetadata(model), []);
    return await ggufTokenizer(path, model.tokenizer, () => rm(tmp, { recursive: true, force: true }));
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/**
 * The tokenizer of the GGUF at `path` (whose header gave `spec`), without its weights: in-process
 * for byte-level vocabularies, otherwise llama.cpp's loaded vocab-only. Dispose it when done.
 */
export async function ggufTokenizer(path: string, spec: TokenizerSpec, onDispose: () => Promise<void> = async () => {}): Promise<Tokenizer> {
  if (isByteLevelSpec(spec)) return new ByteLevelTokenizer(spec);
  const cppModel = await (await getLocalLlama()).loadModel({ modelPath: path, vocabOnly: true });
  return new LlamaCppTokenizer(cppModel, spec, async () => {
    await cppModel.dispose();
    await onDispose();
  });
}

function vocabOnlyMetadata(model: LlamaModel): Map<string, GgufValue> {
  const c = model.config;
  const m = new Map<string, GgufValue>([
    ['general.architecture', gguf.str('llama')],
    ['llama.context_length', gguf.u32(c.contextLength)],
    ['llama.embedding_length', gguf.u32(c.embeddingLength)],
    ['llama.block_count', gguf.u32(c.blockCount)],
    ['llama.feed_forward_length', gguf.u32(c.feedForwardLength)],
    ['llama.attention.head_count', gguf.u32(c.headCount)],
    ['llama.attention.head_count_kv', gguf.u32(c.headCountKv)],
    ['llama.attention.layer_norm_rms_epsilon', gguf.f32(c.rmsNormEps)],
  ]);
  for (const [k, v] of tokenizerMetadata(model)) m.set(k, v);
  return m;
}
