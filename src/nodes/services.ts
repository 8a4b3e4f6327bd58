// What the four nodes need from the application, wired once by whoever builds the engine (CLI,
// server, tests): the job queue, the model registry, the local chat provider, and — from the
// CLI only — the directory that relative file paths in a workflow are read from.
import type { EngineServices, NodeContext } from '../engine/index.ts';
import { NodeAIError } from '../nodeai-error.ts';
import { JobQueue, ModelRegistry } from '../jobs/index.ts';
import { isGgufPath } from '../trainer/gguf.ts';
import { openAIConnector, RemoteJobTracker } from '../jobs/remote-tracker.ts';
import type { OpenAIProviderOptions } from '../providers/openai.ts';
import { LocalChatProvider, type LocalModelFiles } from '../providers/local.ts';
import type { ChatProvider } from '../providers/spec.ts';
import type { Store } from '../store/index.ts';
import { parseModelRef, type RemoteModelRef } from '../trainer/model-ref.ts';
import { resolveModelFile, type ModelFile, type ModelFileOptions } from '../trainer/model-source.ts';
import { ModelSourceError } from '../trainer/model-source-errors.ts';
import { NODEAI_TINY } from '../trainer/tiny-model.ts';
import { ensureTinyBaseModel } from '../trainer/tiny-model-file.ts';

export { ensureTinyBaseModel, TINY_BASE_SEED } from '../trainer/tiny-model-file.ts';

export interface NodeServices {
  jobs: JobQueue;
  models: ModelRegistry;
  localChat: ChatProvider;
  /** Submits and follows jobs of remote providers (OpenAI and compatible); the application stops it on shutdown. */
  remoteJobs: RemoteJobTracker;
  /**
   * The local GGUF of an hf: or ollama: model: downloaded into the data dir on first use (with
   * progress), read in place from Ollama's store. Throws ModelSourceError.
   */
  modelFile: (ref: RemoteModelRef, options?: Pick<ModelFileOptions, 'onProgress' | 'signal'>) => Promise<ModelFile>;
  /** Timeouts and retries for OpenAI clients the nodes build (tests shorten them). */
  openai?: Partial<OpenAIProviderOptions>;
  /**
   * Where a File Loader's relative `path` is resolved (the CLI sets the workflow file's folder).
   * Unset on the server: there a node may not read the server's disk, only uploaded files.
   */
  workflowDir?: string;
}

declare module '../engine/node.ts' {
  interface EngineServices {
    nodeai?: NodeServices;
  }
}

export function createNodeServices(
  store: Store,
  options: { jobs?: JobQueue; workflowDir?: string; remoteJobs?: RemoteJobTracker; openai?: Partial<OpenAIProviderOptions>; modelEnv?: NodeJS.ProcessEnv } = {},
): NodeServices {
  const jobs = options.jobs ?? new JobQueue(store);
  const models = jobs.models;
  const modelFile: NodeServices['modelFile'] = (ref, o = {}) => resolveModelFile(ref, { dataDir: store.dataDir, ...(options.modelEnv ? { env: options.modelEnv } : {}), ...o });
  const resolve = async (name: string): Promise<LocalModelFiles | undefined> => {
    if (name === NODEAI_TINY || name === 'tiny') return { model: await ensureTinyBaseModel(store.dataDir) };
    // hf: and ollama: models (a malformed one is simply not found here; the node says why).
    const ref = (() => {
      try {
        return parseModelRef(name);
      } catch {
        return undefined;
      }
    })();
    if (ref?.kind === 'hf' || ref?.kind === 'ollama') return { model: (await modelFile(ref)).path };
    const found = await models.find(name);
    if (!found || found.provider !== 'local') return undefined;
    // The trainer's model file already has a LoRA adapter merged in; the adapter is for other tools
    // (and for a record that kept only it, on top of its base).
    if (found.files.model) return { model: found.files.model };
    if (found.files.adapter) return { model: isGgufPath(found.base_model) ? found.base_model : await ensureTinyBaseModel(store.dataDir), lora: found.files.adapter };
    return undefined;
  };
  const remoteJobs = options.remoteJobs ?? new RemoteJobTracker(jobs, { connect: openAIConnector(jobs, { provider: options.openai }) });
  return { jobs, models, localChat: new LocalChatProvider(resolve), modelFile, remoteJobs, ...(options.openai ? { openai: options.openai } : {}), ...(options.workflowDir ? { workflowDir: options.workflowDir } : {}) };
}

/** The services, or a clear error naming what the application forgot to wire. */
export function servicesOf(ctx: Pick<NodeContext, 'services'>): NodeServices {
  const s = (ctx.services as EngineServices).nodeai;
  if (!s) throw Object.assign(new Error('NodeAI services are not configured for this engine: pass services: { nodeai: createNodeServices(store) } to new Engine(...).'), { code: 'services_missing' });
  return s;
}

/** An error with a stable code; the engine keeps the code and prefixes the node. */
export function nodeError(code: string, message: string): NodeAIError {
  return new NodeAIError(code, message);
}

const PROGRESS_LOG_MS = 5000;

/**
 * The file of an hf:/ollama: model for a node's run: downloaded on first use (an ollama: one is
 * read in place), with the progress in the run's log every few seconds.
 */
export async function fetchModelFile(ctx: Pick<NodeContext<unknown>, 'logger' | 'signal'>, services: NodeServices, ref: RemoteModelRef): Promise<ModelFile> {
  let lastLog = 0;
  try {
    const file = await services.modelFile(ref, {
      signal: ctx.signal,
      onProgress: (p) => {
        const now = Date.now();
        const finished = p.total > 0 && p.bytes >= p.total;
        if (!finished && now - lastLog < PROGRESS_LOG_MS) return;
        lastLog = now;
        const pct = p.total > 0 ? ` ${Math.floor((100 * p.bytes) / p.total)}%` : '';
        ctx.logger.info(`downloading ${ref.text}:${pct} ${(p.bytes / 1e6).toFixed(1)}/${(p.total / 1e6).toFixed(1)} MB, ${(p.bytesPerSecond / 1e6).toFixed(1)} MB/s${p.etaSeconds !== null ? `, ${Math.round(p.etaSeconds)} s left` : ''}`);
      },
    });
    if (file.downloaded) ctx.logger.info(`${ref.text} downloaded and verified (${(file.bytes / 1e6).toFixed(1)} MB)`);
    return file;
  } catch (e) {
    if (e instanceof ModelSourceError) throw nodeError(e.code, e.message);
    throw e;
  }
}
