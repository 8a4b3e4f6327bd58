// Local chat: generation with node-llama-cpp (prebuilt CPU binaries) on an exported GGUF,
// optionally with a LoRA adapter GGUF. Prompts are rendered with the model's own chat template
// and tokenized exactly as in training (chat-format.ts). Loaded models and contexts are kept in a
// small cache keyed by file path (and modification time), so a chat does not reload per message.

import { stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import type { LlamaContext, LlamaModel as LlamaCppModel } from 'node-llama-cpp';
import { ContextOverflowError, encodePromptForInference, encodeRendered, type ChatMessage } from './chat-format.ts';
import { GgufError, metaString, readGgufHeader } from './gguf.ts';
import { readTokenizerSpec } from './gguf-model.ts';
import { getLocalLlama, disposeLocalLlama, recentLlamaLogs } from './inference-runtime.ts';
import type { TokenizerSpec } from './llama-model.ts';
import { ByteLevelTokenizer, isByteLevelSpec, LlamaCppTokenizer, type Tokenizer } from './tokenizer.ts';
import { NodeAIError } from '../nodeai-error.ts';

export interface GenerateOptions {
  /** Path of the model GGUF. */
  model: string;
  /** A LoRA adapter GGUF for that model, applied at `scale` (default 1). */
  lora?: string | { path: string; scale?: number };
  /** The conversation; the prompt is rendered with the model's chat template. */
  messages?: ChatMessage[];
  /** A raw text prompt instead of `messages` (no chat template applied). */
  prompt?: string;
  tools?: unknown[];
  /** Most tokens to generate (default 256); also capped by the room left in the context. */
  maxTokens?: number;
  /** 0 (default) is greedy decoding; above 0 samples with `topP`/`topK` and `seed`. */
  temperature?: number;
  topP?: number;
  topK?: number;
  /** Makes sampling reproducible; without it sampling differs per call. */
  seed?: number;
  /** Context size in tokens; default the model's training context, at most 4096. */
  contextSize?: number;
  threads?: number;
  signal?: AbortSignal;
}

export interface GenerateResult {
  text: string;
  tokens: number[];
  /** 'stop': the model ended its turn; 'length': maxTokens or the context ran out; 'aborted': the signal fired. */
  finishReason: 'stop' | 'length' | 'aborted';
  usage: { promptTokens: number; completionTokens: number; totalTokens: number };
}

export type InferenceErrorCode = 'MODEL_LOAD_FAILED' | 'ADAPTER_LOAD_FAILED' | 'BAD_REQUEST';

export class InferenceError extends NodeAIError {
  override readonly name = 'InferenceError';
  constructor(
    override readonly code: InferenceErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, { status: code === 'BAD_REQUEST' ? 400 : 500, cause: options?.cause });
  }
}

interface ContextEntry {
  context: LlamaContext;
  /** Calls on one context run one after another (it has a single sequence). */
  queue: Promise<void>;
  lastUsed: number;
}

interface LoadedModel {
  key: string;
  model: LlamaCppModel;
  spec: TokenizerSpec;
  tokenizer: Tokenizer;
  contexts: Map<string, Promise<ContextEntry>>;
  lastUsed: number;
}

const MAX_MODELS = 3;
const MAX_CONTEXTS_PER_MODEL = 2;
const models = new Map<string, Promise<LoadedModel>>();

async function fileKey(path: string, what: 'model' | 'adapter'): Promise<string> {
  try {
    const s = await stat(path);
    return `${path}\0${s.mtimeMs}\0${s.size}`;
  } catch {
    throw new GgufError('GGUF_NOT_FOUND', `${what} file not found: ${path}`, path);
  }
}

function llamaCppReason(e: unknown): string {
  const logs = recentLlamaLogs(4).filter(Boolean);
  return `${(e as Error)?.message ?? String(e)}${logs.length ? ` (llama.cpp: ${logs.join(' | ')})` : ''}`;
}

async function disposeLoaded(p: Promise<LoadedModel>): Promise<void> {
  const m = await p.catch(() => undefined);
  if (!m) return;
  for (const c of m.contexts.values()) {
    const entry = await c.catch(() => undefined);
    await entry?.queue.catch(() => {});
    await entry?.context.dispose().catch(() => {});
  }
  await m.tokenizer.dispose();
  await m.model.dispose().catch(() => {});
}

async function loadModel(path: string): Promise<LoadedModel> {
  const key = await fileKey(path, 'model');
  const cached = models.get(path);
  if (cached) {
    const m = await cached.catch(() => undefined);
    if (m && m.key === key) {
      m.lastUsed = Date.now();
      return m;
    }
    models.delete(path);
    await disposeLoaded(cached);
  }
  const loading = (async (): Promise<LoadedModel> => {
    // Our own parser first: a missing, truncated or foreign file gets a clear GgufError instead of
    // a terse llama.cpp failure. Quantized models are fine here; only training needs float weights.
    const header = await readGgufHeader(path);
    if (metaString(header, 'general.type') === 'adapter') {
      throw new GgufError('GGUF_INVALID_MODEL', `${path} is a LoRA adapter; pass its base model as the model and the adapter as lora`, path);
    }
    const spec = readTokenizerSpec(header);
    const llama = await getLocalLlama();
    let model: LlamaCppModel;
    try {
      model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
    } catch (e) {
      throw new InferenceError('MODEL_LOAD_FAILED', `llama.cpp could not load ${path}: ${llamaCppReason(e)}`, { cause: e });
    }
    // Byte-level vocabularies decode in TypeScript: llama.cpp's BPE detokenizer "cleans up" spaces
    // before punctuation, which would change the model's output text.
    const tokenizer = isByteLevelSpec(spec) ? new ByteLevelTokenizer(spec) : new LlamaCppTokenizer(model, spec);
    return { key, model, spec, tokenizer, contexts: new Map(), lastUsed: Date.now() };
  })();
  models.set(path, loading);
  loading.catch(() => {
    if (models.get(path) === loading) models.delete(path);
  });
  if (models.size > MAX_MODELS) {
    const entries = await Promise.all([...models].map(async ([p, m]) => [p, await m.catch(() => undefined)] as const));
    const oldest = entries.filter(([p, m]) => p !== path && m).sort((a, b) => a[1]!.lastUsed - b[1]!.lastUsed)[0];
    if (oldest) {
      const victim = models.get(oldest[0])!;
      models.delete(oldest[0]);
      await disposeLoaded(victim);
    }
  }
  return loading;
}

async function getContext(m: LoadedModel, opts: GenerateOptions): Promise<ContextEntry> {
  const lora = typeof opts.lora === 'string' ? { path: opts.lora, scale: 1 } : opts.lora;
  let loraKey = '';
  if (lora) {
    loraKey = `${await fileKey(lora.path, 'adapter')}\0${lora.scale ?? 1}`;
    const h = await readGgufHeader(lora.path);
    if (metaString(h, 'general.type') !== 'adapter' || metaString(h, 'adapter.type') !== 'lora') {
      throw new GgufError('GGUF_NOT_ADAPTER', `${lora.path} is not a LoRA adapter GGUF`, lora.path);
    }
    const modelArch = m.model.fileInfo.metadata.general.architecture;
    const arch = metaString(h, 'general.architecture');
    if (arch !== modelArch) {
      throw new GgufError('GGUF_ADAPTER_MISMATCH', `${lora.path} is an adapter for '${arch}' models, but ${opts.model} is '${modelArch}'`, lora.path);
    }
  }
  const contextSize = Math.min(opts.contextSize ?? 4096, m.model.trainContextSize);
  const threads = opts.threads ?? defaultThreads(m.model);
  const key = `${loraKey}\0${contextSize}\0${threads}`;
  let entry = m.contexts.get(key);
  if (!entry) {
    entry = (async () => {
      try {
        const context = await m.model.createContext({
          contextSize,
          sequences: 1,
          threads,
          ...(lora ? { lora: { adapters: [{ filePath: lora.path, scale: lora.scale ?? 1 }] } } : {}),
        });
        return { context, queue: Promise.resolve(), lastUsed: Date.now() };
      } catch (e) {
        throw new InferenceError(
          lora ? 'ADAPTER_LOAD_FAILED' : 'MODEL_LOAD_FAILED',
          lora ? `llama.cpp could not apply adapter ${lora.path} to ${opts.model}: ${llamaCppReason(e)}` : `llama.cpp could not create a context: ${llamaCppReason(e)}`,
          { cause: e },
        );
      }
    })();
    m.contexts.set(key, entry);
    entry.catch(() => m.contexts.delete(key));
    if (m.contexts.size > MAX_CONTEXTS_PER_MODEL) {
      const [oldKey, old] = [...m.contexts].find(([k]) => k !== key)!;
      m.contexts.delete(oldKey);
      void old.then(async (o) => {
        await o.queue.catch(() => {});
        await o.context.dispose();
      }, () => {});
    }
  }
  const e = await entry;
  e.lastUsed = Date.now();
  return e;
}

/**
 * Small models decode fastest on one thread: ggml's worker threads spin while waiting, and on a
 * busy machine extra threads turn milliseconds into seconds (measured: nodeai-tiny, 12 tokens,
 * 14 ms on 1 thread vs 3.7 s on 2 and 20–30 s on node-llama-cpp's default 4 with 2 busy cores).
 */
function defaultThreads(model: LlamaCppModel): number {
  const cores = Math.max(1, availableParallelism());
  return model.size < 256 * 2 ** 20 ? 1 : cores;
}

function promptTokens(m: LoadedModel, opts: GenerateOptions): number[] {
  if ((opts.messages === undefined) === (opts.prompt === undefined)) {
    throw new InferenceError('BAD_REQUEST', 'pass exactly one of `messages` or `prompt`');
  }
  if (opts.messages) return encodePromptForInference(m.spec, m.tokenizer, opts.messages, { tools: opts.tools });
  return encodeRendered(m.spec, m.tokenizer, opts.prompt!);
}

/**
 * Generates the assistant's reply as a stream of text chunks; the generator's return value is
 * the full result with token usage. Stops at the end of the assistant turn (EOS / `<|im_end|>`),
 * at `maxTokens`, when the context is full, or when `signal` aborts.
 */
export async function* generateStream(opts: GenerateOptions): AsyncGenerator<string, GenerateResult, undefined> {
  const maxTokens = opts.maxTokens ?? 256;
  if (!(maxTokens >= 1)) throw new InferenceError('BAD_REQUEST', `maxTokens must be at least 1, got ${maxTokens}`);
  const m = await loadModel(opts.model);
  const prompt = promptTokens(m, opts);
  const entry = await getContext(m, opts);
  // llama.cpp may round the context up; positions past the training context are not trusted.
  const contextSize = Math.min(entry.context.contextSize, m.model.trainContextSize);
  if (prompt.length >= contextSize) throw new ContextOverflowError(prompt.length + 1, contextSize, 'the prompt (plus one reply token)');

  let release!: () => void;
  const previous = entry.queue;
  entry.queue = new Promise<void>((r) => (release = r));
  await previous.catch(() => {});
  const sequence = entry.context.getSequence();
  const tokens: number[] = [];
  let text = '';
  let finishReason: GenerateResult['finishReason'] = 'length';
  try {
    const room = Math.min(maxTokens, contextSize - prompt.length);
    const decoder = m.tokenizer.createDecoder();
    const temperature = opts.temperature ?? 0;
    const evaluation = sequence.evaluate(prompt as never[], {
      temperature,
      ...(temperature > 0 ? { seed: opts.seed ?? Date.now() % 2 ** 31, topP: opts.topP ?? 1, ...(opts.topK !== undefined ? { topK: opts.topK } : {}) } : {}),
      yieldEogToken: true,
      contextShift: { strategy: 'eraseBeginning' },
    });
    for await (const token of evaluation) {
      if (opts.signal?.aborted) {
        finishReason = 'aborted';
        break;
      }
      if (m.tokenizer.isEndOfGeneration(token)) {
        tokens.push(token);
        finishReason = 'stop';
        break;
      }
      tokens.push(token);
      const chunk = decoder.push(token);
      if (chunk) {
        text += chunk;
        yield chunk;
      }
      if (tokens.length >= room) break;
    }
    const rest = decoder.flush();
    if (rest) {
      text += rest;
      yield rest;
    }
  } finally {
    await sequence.dispose().catch(() => {});
    release();
  }
  const generated = finishReason === 'stop' ? tokens.slice(0, -1) : tokens;
  return {
    text,
    tokens: generated,
    finishReason,
    usage: { promptTokens: prompt.length, completionTokens: tokens.length, totalTokens: prompt.length + tokens.length },
  };
}

/** Generates the whole reply; see {@link generateStream}. */
export async function generate(opts: GenerateOptions): Promise<GenerateResult> {
  const it = generateStream(opts);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}

/** Unloads every cached model, context and adapter, and the llama.cpp runtime. */
export async function disposeInference(): Promise<void> {
  const all = [...models.values()];
  models.clear();
  for (const m of all) await disposeLoaded(m);
  await disposeLocalLlama();
}
