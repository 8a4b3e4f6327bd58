// The built-in base model `nodeai-tiny`: a small Llama-family model created from a seed, so that
// fine-tuning and chat work offline with nothing downloaded, and tests build their models the
// same way.
//
// Tokenizer: byte-level. Token id b (0..255) is byte b, spelled with GPT-2's byte-to-unicode
// alphabet and stored as a `gpt2` vocabulary with no merges. llama.cpp's BPE tokenizer then maps
// every byte of the text to exactly that token (nothing to merge), so our TypeScript tokenizer
// and llama.cpp agree by construction — tokenizer.test.ts checks it against node-llama-cpp. (An
// SPM `llama` vocabulary of <0xNN> tokens was rejected: SPM rewrites spaces to U+2581 and adds a
// space prefix, which would spend three byte tokens on every space.)
//
// Head: untied (`output.weight` separate from `token_embd.weight`). The vocabulary is tiny, so it
// costs ~33k parameters, and full fine-tuning or LoRA can move the head without moving the input
// embeddings. `createTinyModel({tiedEmbeddings: true})` builds the tied variant.

import { tensorNames, expectedTensors, type LlamaConfig, type LlamaModel, type NamedTensor, type TokenizerSpec } from './llama-model.ts';

export const NODEAI_TINY = 'nodeai-tiny';

export const TINY_SPECIAL_TOKENS = {
  endOfText: '<|endoftext|>',
  imStart: '<|im_start|>',
  imEnd: '<|im_end|>',
} as const;

/** Ids of the special tokens that follow the 256 byte tokens. */
export const TINY_TOKEN_IDS = { endOfText: 256, imStart: 257, imEnd: 258 } as const;

/** ggml/llama.cpp token types (llama_token_type). */
export const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

export const TINY_CONFIG: LlamaConfig = {
  vocabSize: 259,
  contextLength: 256,
  embeddingLength: 128,
  blockCount: 4,
  headCount: 4,
  headCountKv: 2,
  feedForwardLength: 384,
  ropeFreqBase: 10000,
  rmsNormEps: 1e-5,
  tiedEmbeddings: false,
};

/**
 * ChatML, as Qwen and SmolLM use it, with an optional tools block. Every turn is
 * `<|im_start|>{role}\n{content}<|im_end|>\n`; the assistant opener is `<|im_start|>assistant\n`.
 * Rendered with @huggingface/jinja in training and in inference alike.
 */
export const CHATML_TEMPLATE = [
  "{%- if tools %}",
  "{{- '<|im_start|>system\\n' }}",
  "{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] + '\\n\\n' }}{%- endif %}",
  "{{- '# Tools\\n\\nYou may call one or more of these functions:\\n<tools>\\n' }}",
  "{%- for tool in tools %}{{- (tool | tojson) + '\\n' }}{%- endfor %}",
  "{{- '</tools>\\nTo call one, reply with <tool_call>{\"name\": <function-name>, \"arguments\": <args-json-object>}</tool_call>.<|im_end|>\\n' }}",
  "{%- elif messages[0]['role'] == 'system' %}",
  "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}",
  "{%- endif %}",
  "{%- for message in messages %}",
  "{%- if message['role'] == 'system' and loop.first %}",
  "{%- elif message['role'] == 'assistant' and message['tool_calls'] %}",
  "{{- '<|im_start|>assistant\\n' }}",
  "{%- if message['content'] %}{{- message['content'] + '\\n' }}{%- endif %}",
  "{%- for tc in message['tool_calls'] %}",
  "{%- set fn = tc['function'] if tc['function'] else tc %}",
  "{{- '<tool_call>{\"name\": \"' + fn['name'] + '\", \"arguments\": ' + (fn['arguments'] if fn['arguments'] is string else (fn['arguments'] | tojson)) + '}</tool_call>' }}",
  "{%- endfor %}",
  "{{- '<|im_end|>\\n' }}",
  "{%- elif message['role'] == 'tool' %}",
  "{{- '<|im_start|>tool\\n' + message['content'] + '<|im_end|>\\n' }}",
  "{%- else %}",
  "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}",
  "{%- endif %}",
  "{%- endfor %}",
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
].join('');

let byteAlphabet: string[] | undefined;

/**
 * GPT-2's byte-to-unicode alphabet: printable Latin-1 bytes stand for themselves, the other 68
 * bytes are shifted to U+0100.. so that every byte is one visible character. llama.cpp decodes
 * BPE token text through the inverse of this map.
 */
export function gpt2ByteAlphabet(): string[] {
  if (byteAlphabet) return byteAlphabet;
  const out: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCodePoint(printable ? b : next++);
  }
  byteAlphabet = out;
  return out;
}

export function tinyTokenizerSpec(): TokenizerSpec {
  const tokens = [...gpt2ByteAlphabet(), TINY_SPECIAL_TOKENS.endOfText, TINY_SPECIAL_TOKENS.imStart, TINY_SPECIAL_TOKENS.imEnd];
  return {
    model: 'gpt2',
    pre: 'default',
    tokens,
    tokenTypes: tokens.map((_, i) => (i < 256 ? TOKEN_TYPE.normal : TOKEN_TYPE.control)),
    merges: [],
    bosId: TINY_TOKEN_IDS.endOfText,
    eosId: TINY_TOKEN_IDS.imEnd,
    padId: TINY_TOKEN_IDS.endOfText,
    chatTemplate: CHATML_TEMPLATE,
  };
}

/** A small seeded PRNG (mulberry32) with Gaussian draws, so the same seed gives the same model everywhere. */
export class SeededRandom {
  private state: number;
  private spare: number | undefined;
  constructor(seed: number) {
    this.state = (Math.trunc(seed) ^ 0x9e3779b9) >>> 0;
  }
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  normal(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}

export interface CreateTinyModelOptions extends Partial<LlamaConfig> {
  seed: number;
  name?: string;
  /** Standard deviation of the weight init (GPT-2's 0.02 by default). */
  initStd?: number;
}

/**
 * Builds `nodeai-tiny` (or a smaller variant for tests) deterministically from `seed`: normal
 * init with std 0.02, residual output projections scaled by 1/sqrt(2·layers), norms at 1.
 * `vocabSize` is fixed by the byte-level tokenizer and cannot be overridden.
 */
export function createTinyModel(options: CreateTinyModelOptions): LlamaModel {
  const { seed, name, initStd = 0.02, ...overrides } = options;
  const tokenizer = tinyTokenizerSpec();
  const config: LlamaConfig = { ...TINY_CONFIG, ...overrides, vocabSize: tokenizer.tokens.length };
  if (config.embeddingLength % config.headCount !== 0 || config.headCount % config.headCountKv !== 0) {
    throw new RangeError(`nodeai-tiny: head counts ${config.headCount}/${config.headCountKv} do not divide d_model ${config.embeddingLength}`);
  }
  if ((config.embeddingLength / config.headCount) % 2 !== 0) throw new RangeError('nodeai-tiny: RoPE needs an even head dimension');
  const rng = new SeededRandom(seed);
  const residualStd = initStd / Math.sqrt(2 * config.blockCount);
  const tensors = new Map<string, NamedTensor>();
  for (const { name: tname, shape } of expectedTensors(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (shape.length === 1) {
      data.fill(1);
    } else {
      const isResidualOut = /\.(attn_output|ffn_down)\.weight$/.test(tname);
      const std = isResidualOut ? residualStd : initStd;
      for (let i = 0; i < n; i++) data[i] = rng.normal() * std;
    }
    tensors.set(tname, { name: tname, shape: [...shape], data });
  }
  return { name: name ?? NODEAI_TINY, config, tokenizer, tensors };
}

/** Name of the head tensor the model actually uses for logits (tied models reuse the embeddings). */
export function headTensorName(model: LlamaModel): string {
  return model.config.tiedEmbeddings ? tensorNames.tokenEmbd : tensorNames.output;
}
