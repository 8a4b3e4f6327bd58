// Where the file of an hf: or ollama: model reference is on this machine: the one entry point for
// chat, the Fine-Tune service and `nodeai models pull`. hf: files are downloaded (once) into the
// data dir; ollama: files are read in place from Ollama's store.
import { findDownloadedHubModel, resolveHubModel, type DownloadProgress, type ProgressListener } from './hub-download.ts';
import { parseModelRef, type RemoteModelRef } from './model-ref.ts';
import { ModelSourceError } from './model-source-errors.ts';
import { resolveOllamaModel } from './ollama-store.ts';

export type { DownloadProgress, ProgressListener };

export interface ModelFileOptions {
  /** The NodeAI data dir (hf: downloads go to DATA_DIR/models/hf/…). */
  dataDir: string;
  /** HF_ENDPOINT, HF_TOKEN, OLLAMA_MODELS… (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Download progress (hf: only; ollama: files are read in place). */
  onProgress?: ProgressListener;
  /** Stops a download; its partial file is kept for a resume. */
  signal?: AbortSignal;
  /** false: never download; an hf: model not yet downloaded is `not_downloaded`. Default true. */
  download?: boolean;
}

export interface ModelFile {
  /** Canonical reference (`hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M`, `ollama:qwen2.5:0.5b`). */
  model: string;
  source: 'hf' | 'ollama';
  /** Absolute path of a complete, verified GGUF that the pinned llama.cpp can load. */
  path: string;
  bytes: number;
  /** True when this call downloaded it. */
  downloaded: boolean;
}

/**
 * Resolves an hf: or ollama: reference to a local GGUF. Throws {@link ModelSourceError} (see its
 * codes) with a message naming the model and what to do.
 */
export async function resolveModelFile(ref: RemoteModelRef, options: ModelFileOptions): Promise<ModelFile> {
  if (ref.kind === 'ollama') {
    if (options.signal?.aborted) throw new ModelSourceError('aborted', ref.text, `Reading ${ref.text} was stopped.`);
    const found = await resolveOllamaModel(ref, { dataDir: options.dataDir, ...(options.env ? { env: options.env } : {}) });
    return { model: ref.text, source: 'ollama', path: found.path, bytes: found.bytes, downloaded: false };
  }
  const found = await resolveHubModel(ref, options);
  return { model: ref.text, source: 'hf', path: found.path, bytes: found.bytes, downloaded: found.downloaded };
}

/** The local file of a reference if it is already here (an hf: download, an Ollama model); no network, no errors. */
export async function findModelFile(ref: RemoteModelRef, options: Pick<ModelFileOptions, 'dataDir' | 'env'>): Promise<string | undefined> {
  if (ref.kind === 'hf') return (await findDownloadedHubModel(ref, options.dataDir))?.path;
  return resolveOllamaModel(ref, { dataDir: options.dataDir, ...(options.env ? { env: options.env } : {}) }).then((f) => f.path, () => undefined);
}

/**
 * Parses `text` and resolves it when it is an hf: or ollama: reference; undefined for any other
 * kind (nodeai-tiny, a path, a registered name), which the caller resolves as before.
 */
export async function resolveModelFileText(text: string, options: ModelFileOptions): Promise<ModelFile | undefined> {
  const ref = parseModelRef(text);
  return ref.kind === 'hf' || ref.kind === 'ollama' ? resolveModelFile(ref, options) : undefined;
}
