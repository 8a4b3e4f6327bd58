// LlamaModel and LoraAdapter in and out of GGUF, in the layout llama.cpp reads for the
// architectures in architectures/ (src/models/<arch>.cpp, src/llama-model.cpp's common keys,
// src/llama-vocab.cpp) and for LoRA adapters (src/llama-adapter.cpp) at the release
// node-llama-cpp 3.21.1 ships.

import {
  assertFloatTensors,
  assertLoraBaseTensors,
  GgufError,
  gguf,
  ggmlTypeId,
  ggufStem,
  metaNumber,
  metaString,
  openGguf,
  readGgufHeader,
  writeGguf,
  writeGgufLayout,
  type GgmlFloatType,
  type GgufHeader,
  type AnyTensorToWrite,
  type GgufTensorLayout,
  type GgufTensorToWrite,
  type GgufValue,
} from './gguf.ts';
import { ARCHITECTURE_NAMES, architectureSpec, isArchitectureName, type ArchitectureName } from './architectures/index.ts';
import {
  expectedTensors,
  headDimOf,
  loraTensorNames,
  tensorNames,
  type LlamaConfig,
  type LlamaModel,
  type LoraAdapter,
  type NamedTensor,
  type StoredTensor,
  type TokenizerSpec,
} from './llama-model.ts';

/** Architectures whose GGUF tensors and graph this trainer builds exactly (architectures/). */
export const SUPPORTED_ARCHITECTURES: readonly ArchitectureName[] = ARCHITECTURE_NAMES;

// Architectures that look like a supported one but differ in a way that would silently train the
// wrong model; named in the error so the user knows why.
const NEAR_MISSES: Record<string, string> = {
  mistral3: 'it is a vision-language model',
  gemma: 'it is Gemma 1, whose GGUF norms and graph differ from Gemma 3',
  gemma2: 'it soft-caps attention logits',
  phi3: 'it fuses QKV and uses different RoPE',
  llama4: 'it is a mixture-of-experts model with a different attention layout',
  qwen2moe: 'it is a mixture-of-experts model',
  qwen3moe: 'it is a mixture-of-experts model',
};

function unsupportedArch(path: string, arch: string | undefined): GgufError {
  const why = arch && NEAR_MISSES[arch] ? ` (${NEAR_MISSES[arch]})` : '';
  return new GgufError(
    'GGUF_UNSUPPORTED_ARCHITECTURE',
    `${path}: architecture '${arch ?? '(missing general.architecture)'}' is not supported${why}; ` +
      `the local trainer supports ${SUPPORTED_ARCHITECTURES.join(', ')} (Llama 1–3, Mistral 7B, SmolLM2, TinyLlama … GGUFs use 'llama'; Qwen2.5 'qwen2'; Qwen3 'qwen3'; Gemma 3 'gemma3'; SmolLM3 'smollm3')`,
    path,
  );
}

// ---------------------------------------------------------------------------------------------
// Reading

/** Keys this module derives from LlamaConfig/TokenizerSpec; everything else is carried through. */
function isDerivedKey(key: string, arch: string): boolean {
  if (key.startsWith(`${arch}.`)) return true;
  return [
    'general.architecture',
    'general.alignment',
    'general.file_type',
    'general.quantization_version',
    'general.type',
    'tokenizer.ggml.model',
    'tokenizer.ggml.pre',
    'tokenizer.ggml.tokens',
    'tokenizer.ggml.scores',
    'tokenizer.ggml.token_type',
    'tokenizer.ggml.merges',
    'tokenizer.ggml.bos_token_id',
    'tokenizer.ggml.eos_token_id',
    'tokenizer.ggml.padding_token_id',
    'tokenizer.ggml.add_bos_token',
    'tokenizer.ggml.add_space_prefix',
    'tokenizer.chat_template',
    'general.name',
  ].includes(key);
}

function readConfig(h: GgufHeader, arch: ArchitectureName, vocabFromTokens: number): LlamaConfig {
  const p = h.path;
  const req = (key: string): number => {
    const v = h.metadata.get(`${arch}.${key}`);
    if (v && v.type === 'array') {
      throw new GgufError('GGUF_UNSUPPORTED_MODEL', `${p}: '${arch}.${key}' varies per layer, which is not supported`, p);
    }
    const n = metaNumber(h, `${arch}.${key}`);
    if (n === undefined) throw new GgufError('GGUF_INVALID_MODEL', `${p}: missing metadata '${arch}.${key}'`, p);
    return n;
  };
  const opt = (key: string, dflt: number) => (h.metadata.has(`${arch}.${key}`) ? req(key) : dflt);
  const headCount = req('attention.head_count');
  const embeddingLength = req('embedding_length');
  const config: LlamaConfig = {
    vocabSize: opt('vocab_size', vocabFromTokens),
    contextLength: req('context_length'),
    embeddingLength,
    blockCount: req('block_count'),
    headCount,
    headCountKv: opt('attention.head_count_kv', headCount),
    feedForwardLength: req('feed_forward_length'),
    ropeFreqBase: opt('rope.freq_base', 10000),
    rmsNormEps: req('attention.layer_norm_rms_epsilon'),
    tiedEmbeddings: !h.tensors.some((t) => t.name === tensorNames.output),
  };
  const unsupported = (what: string) =>
    new GgufError('GGUF_UNSUPPORTED_MODEL', `${p}: ${what} is not supported by the local trainer yet`, p);
  if (headCount % config.headCountKv !== 0) {
    throw new GgufError('GGUF_INVALID_MODEL', `${p}: ${headCount} heads are not a multiple of ${config.headCountKv} KV heads`, p);
  }
  // Head size: llama.cpp takes key_length/value_length when present, else d_model / heads.
  const defaultHeadDim = embeddingLength / headCount;
  const keyLength = opt('attention.key_length', defaultHeadDim);
  const valueLength = opt('attention.value_length', defaultHeadDim);
  if (keyLength !== valueLength) throw unsupported(`key length ${keyLength} ≠ value length ${valueLength}`);
  if (!Number.isInteger(keyLength)) {
    throw new GgufError('GGUF_INVALID_MODEL', `${p}: ${headCount} heads do not divide d_model ${embeddingLength} and no key_length is set`, p);
  }
  if (keyLength !== defaultHeadDim) config.headDim = keyLength;
  const rotated = opt('rope.dimension_count', keyLength);
  if (rotated !== keyLength) throw unsupported(`partial RoPE ('${arch}.rope.dimension_count' = ${rotated} of head size ${keyLength})`);
  if (opt('expert_count', 0) > 0) throw unsupported('a mixture-of-experts model');
  const scaling = metaString(h, `${arch}.rope.scaling.type`) ?? 'linear';
  const factor = h.metadata.has(`${arch}.rope.scaling.factor`) ? req('rope.scaling.factor') : opt('rope.scale_linear', 0);
  if (scaling !== 'none' && scaling !== 'linear' && factor !== 0 && factor !== 1) throw unsupported(`RoPE scaling '${scaling}'`);
  if (scaling === 'linear' && factor !== 0 && factor !== 1) config.ropeScaleLinear = factor;
  if (arch !== 'llama') config.architecture = arch;
  const spec = architectureSpec(arch);
  const archKeys = spec.readConfig(
    {
      num: (key) => (h.metadata.has(`${arch}.${key}`) ? req(key) : undefined),
      str: (key) => metaString(h, `${arch}.${key}`),
      unsupported,
    },
    config,
  );
  Object.assign(config, archKeys);
  if (h.tensors.some((t) => t.name === tensorNames.ropeFreqs)) {
    if (!spec.allowsRopeFreqs) throw unsupported(`'${tensorNames.ropeFreqs}' in a ${arch} model`);
    config.ropeFreqFactors = true;
  }
  return config;
}

export function readTokenizerSpec(h: GgufHeader): TokenizerSpec {
  const p = h.path;
  const model = metaString(h, 'tokenizer.ggml.model');
  if (model !== 'llama' && model !== 'gpt2') {
    throw new GgufError(
      model === undefined ? 'GGUF_INVALID_MODEL' : 'GGUF_UNSUPPORTED_MODEL',
      model === undefined
        ? `${p}: missing 'tokenizer.ggml.model'`
        : `${p}: tokenizer '${model}' is not supported; only 'llama' (SentencePiece) and 'gpt2' (BPE) vocabularies are`,
      p,
    );
  }
  const arr = (key: string) => {
    const v = h.metadata.get(key);
    if (v === undefined) return undefined;
    if (v.type !== 'array') throw new GgufError('GGUF_INVALID_MODEL', `${p}: '${key}' is not an array`, p);
    return v.value;
  };
  const tokens = arr('tokenizer.ggml.tokens');
  if (!tokens) throw new GgufError('GGUF_INVALID_MODEL', `${p}: missing 'tokenizer.ggml.tokens'`, p);
  const spec: TokenizerSpec = {
    model,
    tokens: tokens.map(String),
    chatTemplate: metaString(h, 'tokenizer.chat_template') ?? '',
  };
  const scores = arr('tokenizer.ggml.scores');
  if (scores) spec.scores = scores.map(Number);
  const types = arr('tokenizer.ggml.token_type');
  if (types) spec.tokenTypes = types.map(Number);
  const merges = arr('tokenizer.ggml.merges');
  if (merges) spec.merges = merges.map(String);
  const pre = metaString(h, 'tokenizer.ggml.pre');
  if (pre !== undefined) spec.pre = pre;
  const bos = metaNumber(h, 'tokenizer.ggml.bos_token_id');
  if (bos !== undefined) spec.bosId = bos;
  const eos = metaNumber(h, 'tokenizer.ggml.eos_token_id');
  if (eos !== undefined) spec.eosId = eos;
  const pad = metaNumber(h, 'tokenizer.ggml.padding_token_id');
  if (pad !== undefined) spec.padId = pad;
  const addBos = h.metadata.get('tokenizer.ggml.add_bos_token');
  if (addBos?.type === 'bool') spec.addBos = addBos.value;
  const addSpacePrefix = h.metadata.get('tokenizer.ggml.add_space_prefix');
  if (addSpacePrefix?.type === 'bool') spec.addSpacePrefix = addSpacePrefix.value;
  return spec;
}

/**
 * How a base's weights are read: `float32` widens every tensor into a JavaScript array (full
 * fine-tuning trains them all, so F32/F16/BF16 only); `stored` leaves every tensor as the file
 * stores it, quantized included ({@link StoredTensor}), for a LoRA run whose base stays frozen.
 */
export type BaseWeights = 'float32' | 'stored';

/** What the header alone tells of a base model, after the checks that need no tensor data. */
function checkBaseHeader(
  h: GgufHeader,
  path: string,
  weights: BaseWeights,
): { arch: ArchitectureName; tokenizer: TokenizerSpec; config: LlamaConfig } {
  const arch = metaString(h, 'general.architecture');
  if (metaString(h, 'general.type') === 'adapter') {
    throw new GgufError('GGUF_INVALID_MODEL', `${path} is a LoRA adapter, not a base model; pass the base model's GGUF`, path);
  }
  if (!isArchitectureName(arch)) throw unsupportedArch(path, arch);
  if (weights === 'float32') assertFloatTensors(h);
  else assertLoraBaseTensors(h);
  const tokenizer = readTokenizerSpec(h);
  return { arch, tokenizer, config: readConfig(h, arch, tokenizer.tokens.length) };
}

/**
 * Checks a base model from its header only (no weights read): a Llama-family GGUF whose tensors
 * fit `weights` (default `float32`: F32, F16 or BF16, as full fine-tuning needs; `stored`: a LoRA
 * base, quantized allowed). Throws a {@link GgufError} saying what is wrong; the trainer reads and
 * checks the rest when the job runs. For a caller that wants to refuse a wrong file before queuing work.
 */
export async function inspectGgufBase(
  path: string,
  options: { weights?: BaseWeights } = {},
): Promise<{ name: string; config: LlamaConfig; tokenizer: TokenizerSpec }> {
  const h = await readGgufHeader(path);
  const { tokenizer, config } = checkBaseHeader(h, path, options.weights ?? 'float32');
  return { name: metaString(h, 'general.name') ?? ggufStem(path), config, tokenizer };
}

/**
 * Reads a Llama-family base model: with `weights: 'float32'` (the default) F32, F16 or BF16
 * tensors widened to float32 in `tensors`; with `weights: 'stored'` only the tensors' places and
 * types, in `stored`, for the trainer to read straight into ggml memory (a LoRA base, quantized
 * allowed). Refuses, with a {@link GgufError}, types the mode cannot train (a quantized file for
 * full fine-tuning says to use LoRA or an F16/BF16 file), other architectures, tensors the
 * trainer's graph does not have (biases, RoPE factors, experts) and files whose shapes do not
 * match their metadata.
 */
export async function readGgufModel(path: string, options: { weights?: BaseWeights } = {}): Promise<LlamaModel> {
  const weights = options.weights ?? 'float32';
  const reader = await openGguf(path);
  try {
    const h = reader.header;
    const { arch, tokenizer, config } = checkBaseHeader(h, path, weights);

    const expected = expectedTensors(config);
    const byName = new Map(h.tensors.map((t) => [t.name, t]));
    const extra = h.tensors.filter((t) => !expected.some((e) => e.name === t.name)).map((t) => t.name);
    if (extra.length) {
      throw new GgufError(
        'GGUF_UNSUPPORTED_MODEL',
        `${path}: tensors the local trainer's ${arch} graph does not have: ${extra.slice(0, 5).join(', ')}${extra.length > 5 ? ` (+${extra.length - 5} more)` : ''}`,
        path,
      );
    }
    const tensors = new Map<string, NamedTensor>();
    const stored = new Map<string, StoredTensor>();
    for (const e of expected) {
      const info = byName.get(e.name);
      if (!info) throw new GgufError('GGUF_INVALID_MODEL', `${path}: missing tensor '${e.name}'`, path);
      if (info.shape.length !== e.shape.length || info.shape.some((d, i) => d !== e.shape[i])) {
        throw new GgufError(
          'GGUF_INVALID_MODEL',
          `${path}: tensor '${e.name}' has shape [${info.shape}], but the metadata implies [${e.shape}]`,
          path,
        );
      }
      const shape = [...info.shape];
      if (weights === 'float32') tensors.set(e.name, { name: e.name, shape, data: await reader.readTensor(info) });
      else {
        const { type, typeName, byteLength } = info;
        stored.set(e.name, { name: e.name, shape, type, typeName, path, offset: h.dataOffset + info.offset, byteLength });
      }
    }

    const extraMetadata = new Map<string, GgufValue>();
    for (const [k, v] of h.metadata) if (!isDerivedKey(k, arch)) extraMetadata.set(k, v);
    const name = metaString(h, 'general.name') ?? ggufStem(path);
    return { name, config, tokenizer, tensors, ...(weights === 'stored' ? { stored } : {}), extraMetadata };
  } finally {
    await reader.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

/** The `tokenizer.*` keys of a model: derived from its TokenizerSpec, plus carried-through extras. */
export function tokenizerMetadata(model: LlamaModel): Map<string, GgufValue> {
  const t = model.tokenizer;
  const m = new Map<string, GgufValue>();
  for (const [k, v] of model.extraMetadata ?? []) if (k.startsWith('tokenizer.') && !isDerivedKey(k, 'llama')) m.set(k, v);
  m.set('tokenizer.ggml.model', gguf.str(t.model));
  if (t.pre !== undefined) m.set('tokenizer.ggml.pre', gguf.str(t.pre));
  m.set('tokenizer.ggml.tokens', gguf.arr('string', t.tokens));
  if (t.scores) m.set('tokenizer.ggml.scores', gguf.arr('float32', t.scores));
  if (t.tokenTypes) m.set('tokenizer.ggml.token_type', gguf.arr('int32', t.tokenTypes));
  // llama.cpp's BPE loader refuses a gpt2 vocabulary without a merges key, even an empty one.
  if (t.merges || t.model === 'gpt2') m.set('tokenizer.ggml.merges', gguf.arr('string', t.merges ?? []));
  if (t.bosId !== undefined) m.set('tokenizer.ggml.bos_token_id', gguf.u32(t.bosId));
  if (t.eosId !== undefined) m.set('tokenizer.ggml.eos_token_id', gguf.u32(t.eosId));
  if (t.padId !== undefined) m.set('tokenizer.ggml.padding_token_id', gguf.u32(t.padId));
  if (t.addBos !== undefined) m.set('tokenizer.ggml.add_bos_token', gguf.bool(t.addBos));
  if (t.addSpacePrefix !== undefined) m.set('tokenizer.ggml.add_space_prefix', gguf.bool(t.addSpacePrefix));
  if (t.chatTemplate) m.set('tokenizer.chat_template', gguf.str(t.chatTemplate));
  return m;
}

function modelMetadata(model: LlamaModel, fileType: number): Map<string, GgufValue> {
  const c = model.config;
  const arch = c.architecture ?? 'llama';
  const m = new Map<string, GgufValue>();
  m.set('general.architecture', gguf.str(arch));
  m.set('general.type', gguf.str('model'));
  m.set('general.name', gguf.str(model.name));
  m.set('general.file_type', gguf.u32(fileType));
  for (const [k, v] of model.extraMetadata ?? []) {
    if (!isDerivedKey(k, arch) && !k.startsWith('tokenizer.')) m.set(k, v);
  }
  const hd = headDimOf(c);
  m.set(`${arch}.vocab_size`, gguf.u32(c.vocabSize));
  m.set(`${arch}.context_length`, gguf.u32(c.contextLength));
  m.set(`${arch}.embedding_length`, gguf.u32(c.embeddingLength));
  m.set(`${arch}.block_count`, gguf.u32(c.blockCount));
  m.set(`${arch}.feed_forward_length`, gguf.u32(c.feedForwardLength));
  m.set(`${arch}.attention.head_count`, gguf.u32(c.headCount));
  m.set(`${arch}.attention.head_count_kv`, gguf.u32(c.headCountKv));
  if (c.headDim !== undefined) {
    m.set(`${arch}.attention.key_length`, gguf.u32(hd));
    m.set(`${arch}.attention.value_length`, gguf.u32(hd));
  }
  m.set(`${arch}.rope.dimension_count`, gguf.u32(hd));
  m.set(`${arch}.rope.freq_base`, gguf.f32(c.ropeFreqBase));
  if (c.ropeScaleLinear !== undefined) {
    m.set(`${arch}.rope.scaling.type`, gguf.str('linear'));
    m.set(`${arch}.rope.scaling.factor`, gguf.f32(c.ropeScaleLinear));
  }
  m.set(`${arch}.attention.layer_norm_rms_epsilon`, gguf.f32(c.rmsNormEps));
  for (const [k, v] of architectureSpec(c.architecture).writeMetadata(c)) m.set(`${arch}.${k}`, v);
  for (const [k, v] of tokenizerMetadata(model)) m.set(k, v);
  return m;
}

export function validateModel(model: LlamaModel, path = model.name): void {
  const bad = (msg: string) => new GgufError('GGUF_INVALID_MODEL', `model '${model.name}': ${msg}`, path);
  const c = model.config;
  if (!Number.isInteger(headDimOf(c)) || c.headCount % c.headCountKv !== 0) {
    throw bad(`head counts ${c.headCount}/${c.headCountKv} do not divide d_model ${c.embeddingLength}`);
  }
  if (model.tokenizer.tokens.length !== c.vocabSize) {
    throw bad(`the tokenizer has ${model.tokenizer.tokens.length} tokens but vocabSize is ${c.vocabSize}`);
  }
  for (const e of expectedTensors(c)) {
    const t = model.tensors.get(e.name);
    if (!t) throw bad(`missing tensor '${e.name}'`);
    if (t.shape.length !== e.shape.length || t.shape.some((d, i) => d !== e.shape[i])) {
      throw bad(`tensor '${e.name}' has shape [${t.shape}], expected [${e.shape}]`);
    }
  }
  const allowed = new Set(expectedTensors(c).map((e) => e.name));
  for (const name of model.tensors.keys()) if (!allowed.has(name)) throw bad(`unexpected tensor '${name}'`);
}

export interface WriteGgufModelOptions {
  /** Storage type of the 2-D weights; norms always stay F32 (as llama.cpp's converter does). Default F32. */
  type?: GgmlFloatType;
}

/** Writes a model llama.cpp / node-llama-cpp / Ollama can load, atomically. */
export async function writeGgufModel(path: string, model: LlamaModel, options: WriteGgufModelOptions = {}): Promise<void> {
  validateModel(model, path);
  const type = options.type ?? 'F32';
  const fileType = { F32: 0, F16: 1, BF16: 32 }[type];
  const tensors: GgufTensorToWrite[] = expectedTensors(model.config).map((e) => {
    const t = model.tensors.get(e.name)!;
    return { name: e.name, shape: t.shape, data: t.data, type: t.shape.length >= 2 ? type : 'F32' };
  });
  await writeGguf(path, modelMetadata(model, fileType), tensors);
}

/**
 * GGUF key of the system prompt that every training example of a fine-tuned model began with
 * (absent when they differed or had none): exports give it to Ollama as SYSTEM. llama.cpp
 * ignores keys it does not know.
 */
export const TRAINED_SYSTEM_PROMPT_KEY = 'nodeai.training.system_prompt';

/**
 * A model whose weights are produced one tensor at a time as they are written (a trainer's
 * export: merging a LoRA into a large base must never hold the whole model as float32).
 */
export interface ModelToWrite extends Omit<LlamaModel, 'tensors' | 'stored'> {
  /** One per expected tensor, in any order; float values or raw bytes of any ggml type. */
  weights: AnyTensorToWrite[];
  /** general.file_type (llama_ftype): what most of the weights are, e.g. 1 for mostly F16. */
  fileType: number;
}

/** Writes a {@link ModelToWrite}, atomically, with the same metadata as {@link writeGgufModel}. */
export async function writeGgufModelWeights(path: string, model: ModelToWrite): Promise<void> {
  const expected = expectedTensors(model.config);
  const byName = new Map(model.weights.map((w) => [w.name, w]));
  const bad = (msg: string) => new GgufError('GGUF_INVALID_MODEL', `model '${model.name}': ${msg}`, path);
  if (model.tokenizer.tokens.length !== model.config.vocabSize) {
    throw bad(`the tokenizer has ${model.tokenizer.tokens.length} tokens but vocabSize is ${model.config.vocabSize}`);
  }
  if (byName.size !== expected.length) throw bad(`${byName.size} weights given, the ${model.config.architecture ?? 'llama'} graph has ${expected.length}`);
  const ordered = expected.map((e) => {
    const w = byName.get(e.name);
    if (!w) throw bad(`missing tensor '${e.name}'`);
    if (w.shape.length !== e.shape.length || w.shape.some((d, i) => d !== e.shape[i])) throw bad(`tensor '${e.name}' has shape [${w.shape}], expected [${e.shape}]`);
    return w;
  });
  await writeGguf(path, modelMetadata({ ...model, tensors: new Map() }, model.fileType), ordered);
}

/** A model's GGUF metadata and tensor layout with its 2-D weights in `type` (norms F32, as {@link writeGgufModel} writes them), without weights. */
export function ggufModelLayout(model: Omit<LlamaModel, 'tensors' | 'stored'>, type: GgmlFloatType): { metadata: Map<string, GgufValue>; tensors: GgufTensorLayout[] } {
  const fileType = { F32: 0, F16: 1, BF16: 32 }[type];
  const tensorType = ggmlTypeId(type)!;
  const f32 = ggmlTypeId('F32')!;
  const tensors = expectedTensors(model.config).map((e) => ({ name: e.name, shape: [...e.shape], ggmlType: e.shape.length >= 2 ? tensorType : f32 }));
  return { metadata: modelMetadata({ ...model, tensors: new Map() }, fileType), tensors };
}

/**
 * Writes the GGUF file of a model with `model`'s shapes and tokenizer in `type`, at its full length
 * but with no weights written (a sparse file; the data reads as zeros): what llama.cpp's quantizer
 * needs for a dry run, without gigabytes of disk for a multi-billion-parameter model.
 */
export async function writeGgufModelLayout(path: string, model: Omit<LlamaModel, 'tensors' | 'stored'>, type: GgmlFloatType): Promise<void> {
  if (model.tokenizer.tokens.length !== model.config.vocabSize) {
    throw new GgufError('GGUF_INVALID_MODEL', `model '${model.name}': the tokenizer has ${model.tokenizer.tokens.length} tokens but vocabSize is ${model.config.vocabSize}`, path);
  }
  const { metadata, tensors } = ggufModelLayout(model, type);
  await writeGgufLayout(path, metadata, tensors);
}

// ---------------------------------------------------------------------------------------------
// LoRA adapters

function checkAdapterAgainstBase(adapter: LoraAdapter, base: LlamaModel, path: string): void {
  const bad = (msg: string) => new GgufError('GGUF_ADAPTER_MISMATCH', `${path}: ${msg}`, path);
  if (!(adapter.rank > 0)) throw bad(`LoRA rank must be positive, got ${adapter.rank}`);
  for (const target of adapter.targets) {
    const w = base.tensors.get(target) ?? base.stored?.get(target);
    if (!w) {
      const hint = target === tensorNames.output && base.config.tiedEmbeddings ? ' (the base ties the output head to token_embd.weight)' : '';
      throw bad(`LoRA target '${target}' is not a tensor of base model '${base.name}'${hint}`);
    }
    if (target === tensorNames.tokenEmbd) {
      // llama.cpp applies LoRA to the embedding lookup with A and B swapped (llm_build_inp_embd).
      throw bad(`LoRA on '${target}' is not supported; target the projection weights instead`);
    }
    if (w.shape.length !== 2) throw bad(`LoRA target '${target}' is not a matrix`);
    const names = loraTensorNames(target);
    const a = adapter.tensors.get(names.a);
    const b = adapter.tensors.get(names.b);
    if (!a || !b) throw bad(`LoRA target '${target}' lacks '${!a ? names.a : names.b}'`);
    const [nIn, nOut] = w.shape;
    if (a.shape[0] !== nIn || a.shape[1] !== adapter.rank || b.shape[0] !== adapter.rank || b.shape[1] !== nOut) {
      throw bad(
        `LoRA tensors for '${target}' have shapes A [${a.shape}] and B [${b.shape}]; for a base weight [${nIn}, ${nOut}] ` +
          `and rank ${adapter.rank} llama.cpp expects A [${nIn}, ${adapter.rank}] and B [${adapter.rank}, ${nOut}]`,
      );
    }
  }
}

/**
 * Writes a LoRA adapter GGUF that llama.cpp loads onto `baseModel` (general.type = adapter,
 * adapter.type = lora, adapter.lora.alpha; tensors `<base>.lora_a` [n_in, r] and
 * `<base>.lora_b` [r, n_out]). llama.cpp scales B·A·x by alpha / r, as the trainer does.
 */
export async function writeGgufAdapter(path: string, adapter: LoraAdapter, baseModel: LlamaModel): Promise<void> {
  checkAdapterAgainstBase(adapter, baseModel, path);
  const m = new Map<string, GgufValue>();
  m.set('general.architecture', gguf.str(baseModel.config.architecture ?? 'llama'));
  m.set('general.type', gguf.str('adapter'));
  m.set('general.name', gguf.str(`${baseModel.name}-lora`));
  m.set('adapter.type', gguf.str('lora'));
  m.set('adapter.lora.alpha', gguf.f32(adapter.alpha));
  const tensors: GgufTensorToWrite[] = [];
  for (const target of adapter.targets) {
    const names = loraTensorNames(target);
    for (const n of [names.a, names.b]) {
      const t = adapter.tensors.get(n)!;
      tensors.push({ name: n, shape: t.shape, data: t.data });
    }
  }
  await writeGguf(path, m, tensors);
}

/** Reads a LoRA adapter GGUF; with `baseModel`, also checks it fits that base as llama.cpp does. */
export async function readGgufAdapter(path: string, baseModel?: LlamaModel): Promise<LoraAdapter> {
  const reader = await openGguf(path);
  try {
    const h = reader.header;
    if (metaString(h, 'general.type') !== 'adapter' || metaString(h, 'adapter.type') !== 'lora') {
      throw new GgufError(
        'GGUF_NOT_ADAPTER',
        `${path} is not a LoRA adapter GGUF (general.type = '${metaString(h, 'general.type') ?? ''}', adapter.type = '${metaString(h, 'adapter.type') ?? ''}')`,
        path,
      );
    }
    const arch = metaString(h, 'general.architecture');
    if (!isArchitectureName(arch)) throw unsupportedArch(path, arch);
    if (baseModel && arch !== (baseModel.config.architecture ?? 'llama')) {
      throw new GgufError('GGUF_ADAPTER_MISMATCH', `${path}: a ${arch} adapter cannot apply to ${baseModel.config.architecture ?? 'llama'} base '${baseModel.name}'`, path);
    }
    reader.assertFloatTensors();
    const tensors = new Map<string, NamedTensor>();
    const targets: string[] = [];
    let rank = 0;
    for (const info of h.tensors) {
      if (info.name.endsWith('_norm.weight')) continue; // llama.cpp ignores norm tensors in adapters too
      const m = /^(.*)\.lora_([ab])$/.exec(info.name);
      if (!m) throw new GgufError('GGUF_CORRUPT', `${path}: adapter tensor '${info.name}' has an unexpected suffix`, path);
      tensors.set(info.name, { name: info.name, shape: [...info.shape], data: await reader.readTensor(info) });
      if (m[2] === 'a') targets.push(m[1]);
      else rank = info.shape[0];
    }
    for (const t of targets) {
      if (!tensors.has(loraTensorNames(t).b)) throw new GgufError('GGUF_CORRUPT', `${path}: '${t}.lora_b' is missing`, path);
    }
    const adapter: LoraAdapter = { rank, alpha: metaNumber(h, 'adapter.lora.alpha') ?? 0, targets, tensors };
    if (baseModel) checkAdapterAgainstBase(adapter, baseModel, path);
    return adapter;
  } finally {
    await reader.close();
  }
}
