// The OpenAI provider on the official SDK: fine-tuning (files, jobs, events, checkpoints) and
// chat, against api.openai.com, Azure OpenAI, or any server that speaks the same REST contract —
// another NodeAI included. The SDK's own retries are switched off so that one policy (bounded
// count and total time, Retry-After honoured) and one error mapping apply to every call.
import { createReadStream } from 'node:fs';
import OpenAI, { AzureOpenAI, toFile } from 'openai';
import { OPENAI_PROVIDER_ID } from './openai-key.ts';
import {
  ProviderError,
  type Checkpoint,
  type ChatProvider,
  type ChatRequest,
  type ChatResult,
  type CreateJobRequest,
  type FineTuneProvider,
  type FineTuningJob,
  type Hyperparameters,
  type JobEvent,
  type JobStatus,
  type Page,
  type UploadedFile,
} from './spec.ts';

export const OPENAI_API_URL = 'https://api.openai.com/v1';
/** The Azure OpenAI data-plane version that has fine-tuning GA; `?api-version=` in base_url overrides it. */
export const DEFAULT_AZURE_API_VERSION = '2024-10-21';
/** OpenAI stops accepting new fine-tuning jobs from this day (https://platform.openai.com/docs/deprecations). */
export const OPENAI_FINE_TUNING_END = '2027-01-06';

export const FINE_TUNING_ENDED_MESSAGE =
  `OpenAI no longer accepts new fine-tuning jobs (self-serve fine-tuning ended on ${OPENAI_FINE_TUNING_END}). ` +
  'Use provider "local" to train on this machine (the default), or set base_url to another NodeAI server that trains for you.';

export interface RetryPolicy {
  /** Retries after the first try; default 4. */
  maxRetries: number;
  /** First backoff; doubles each retry, with jitter. Default 500 ms. */
  initialDelayMs: number;
  /** Longest single wait; default 20 s. */
  maxDelayMs: number;
  /** No retry starts after this much time since the first try; default 60 s. */
  maxElapsedMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxRetries: 4, initialDelayMs: 500, maxDelayMs: 20_000, maxElapsedMs: 60_000 };

export interface OpenAIProviderOptions {
  apiKey: string;
  /**
   * Default api.openai.com. An Azure resource (`https://<name>.openai.azure.com`, optionally
   * `?api-version=…`) uses the SDK's Azure client; any other URL is an OpenAI-compatible server.
   */
  baseURL?: string | null;
  organization?: string | null;
  /** Per request; default 60 s. Uploads get `uploadTimeoutMs` (default 10 min). */
  timeoutMs?: number;
  uploadTimeoutMs?: number;
  /** Longest silence between two chunks of a streamed reply; default `timeoutMs`. */
  streamIdleTimeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Tests replace the clock's sleep and the jitter. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
}

/** What a base_url means: which client to build and where it points. */
export interface ResolvedEndpoint {
  kind: 'openai' | 'azure' | 'compatible';
  baseURL: string;
  azure?: { endpoint: string; apiVersion: string };
}

const AZURE_HOST = /\.(openai\.azure\.com|cognitiveservices\.azure\.com|services\.ai\.azure\.com)$/i;

export function resolveEndpoint(baseURL?: string | null): ResolvedEndpoint {
  const raw = baseURL?.trim();
  if (!raw) return { kind: 'openai', baseURL: OPENAI_API_URL };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ProviderError('invalid_base_url', `base_url ${JSON.stringify(raw.slice(0, 200))} is not a URL; use e.g. "http://127.0.0.1:8787/v1" or "https://<resource>.openai.azure.com".`, OPENAI_PROVIDER_ID);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ProviderError('invalid_base_url', `base_url must start with http:// or https://, got ${JSON.stringify(url.protocol)}.`, OPENAI_PROVIDER_ID);
  }
  const apiVersion = url.searchParams.get('api-version');
  // Azure's v1 surface (`…/openai/v1`) is plain OpenAI; the classic one needs the Azure client.
  const azureV1 = /\/openai\/v1\/?$/.test(url.pathname);
  if (!azureV1 && (AZURE_HOST.test(url.hostname) || apiVersion)) {
    return { kind: 'azure', baseURL: url.origin, azure: { endpoint: url.origin, apiVersion: apiVersion || DEFAULT_AZURE_API_VERSION } };
  }
  const clean = url.toString().replace(/\/+$/, '');
  return { kind: clean === OPENAI_API_URL ? 'openai' : 'compatible', baseURL: clean };
}

/** A provider failure with what retrying needs; `code` is one of the stable codes below. */
export class OpenAIProviderError extends ProviderError {
  constructor(
    code: OpenAIErrorCode,
    message: string,
    status: number | undefined,
    readonly retryable: boolean,
    readonly retryAfterMs?: number,
    param?: string | null,
  ) {
    super(code, message, OPENAI_PROVIDER_ID, status, { param: param ?? null });
    this.name = 'OpenAIProviderError';
  }
}

export type OpenAIErrorCode =
  | 'auth'
  | 'not_found'
  | 'rate_limited'
  | 'quota_exceeded'
  | 'invalid_request'
  | 'server_error'
  | 'connection_error'
  | 'fine_tuning_ended'
  | 'aborted'
  | 'provider_error';

type Operation = 'upload' | 'create_job' | 'get_job' | 'list_events' | 'list_checkpoints' | 'cancel_job' | 'chat';

const OPERATION: Record<Operation, string> = {
  upload: 'uploading the training file',
  create_job: 'creating the fine-tuning job',
  get_job: 'reading the fine-tuning job',
  list_events: "reading the job's events",
  list_checkpoints: "reading the job's checkpoints",
  cancel_job: 'cancelling the job',
  chat: 'chatting',
};

// What OpenAI's refusal will say is not published yet; these catch the wordings its deprecation
// notices and error bodies use ("no longer available", "deprecated", "not available", …) when they
// are about fine-tuning.
const ENDED_WORDS = /(no longer (available|supported|accept)|not (be )?available|unavailable|deprecat|discontinu|retired|sunset|has ended|shut ?down|disabled)/i;
const FINE_TUNING_WORDS = /fine[- _]?tun/i;
const ENDED_CODE = /^(fine_tuning_(ended|unavailable|deprecated|disabled|not_available)|fine_tuning_no_longer_available)$/i;

function retryAfterMs(headers: Headers | undefined): number | undefined {
  if (!headers) return undefined;
  const ms = Number.parseFloat(headers.get('retry-after-ms') ?? '');
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const value = headers.get('retry-after');
  if (!value) return undefined;
  const seconds = Number.parseFloat(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** The one status → error mapping: every SDK failure becomes an OpenAIProviderError. */
export function toOpenAIProviderError(err: unknown, context: { operation: Operation; host: string; apiKey?: string }): OpenAIProviderError {
  if (err instanceof OpenAIProviderError) return err;
  const scrub = (text: string) => (context.apiKey && context.apiKey.length >= 4 ? text.split(context.apiKey).join('[REDACTED]') : text);
  const doing = `${OPERATION[context.operation]} at ${context.host}`;
  if (err instanceof OpenAI.APIUserAbortError || (err instanceof Error && err.name === 'AbortError')) {
    return new OpenAIProviderError('aborted', `Stopped ${doing}: the request was cancelled.`, undefined, false);
  }
  if (err instanceof OpenAI.APIConnectionTimeoutError) {
    return new OpenAIProviderError('connection_error', `Timed out ${doing}: no answer in time. Check the network or base_url; NodeAI retried with backoff.`, undefined, true);
  }
  if (err instanceof OpenAI.APIConnectionError) {
    const cause = err.cause instanceof Error ? `: ${scrub((err.cause as Error & { code?: string }).code ?? err.cause.message)}` : '';
    return new OpenAIProviderError('connection_error', `Lost the connection ${doing}${cause}. Check that the server is up and base_url is right; NodeAI retried with backoff.`, undefined, true);
  }
  if (err instanceof OpenAI.APIError) {
    const status = err.status;
    const body = (err.error ?? {}) as { message?: unknown; code?: unknown };
    const said = scrub(typeof body.message === 'string' && body.message ? body.message : err.message);
    const code = typeof err.code === 'string' ? err.code : typeof body.code === 'string' ? body.code : '';
    const theySaid = ` (${status}${code ? ` ${code}` : ''}: ${said})`;
    const fineTuningCall = context.operation === 'create_job' || context.operation === 'upload';
    if (status !== undefined && fineTuningCall && [400, 403, 404, 410].includes(status) && (ENDED_CODE.test(code) || (FINE_TUNING_WORDS.test(said) && ENDED_WORDS.test(said)))) {
      return new OpenAIProviderError('fine_tuning_ended', `${FINE_TUNING_ENDED_MESSAGE} ${context.host} said: ${said}`, status, false, undefined, err.param);
    }
    const after = retryAfterMs(err.headers);
    if (status === 401 || status === 403) {
      return new OpenAIProviderError(
        'auth',
        `${context.host} refused the API key while ${OPERATION[context.operation]}${theySaid}. Check the key in the node's "api_key" setting or in the vault ("nodeai secrets set OPENAI_API_KEY"); for another NodeAI server use its API token.`,
        status,
        false,
      );
    }
    if (status === 404) return new OpenAIProviderError('not_found', `Not found while ${doing}${theySaid}. Check the model name or job ID, and that base_url points at the right server.`, status, false, undefined, err.param);
    if (status === 429 && (code === 'insufficient_quota' || /quota/i.test(said))) {
      return new OpenAIProviderError('quota_exceeded', `The account's quota is used up (${doing})${theySaid}. Add credit or raise the limit, then run again.`, status, false);
    }
    if (status === 429) return new OpenAIProviderError('rate_limited', `Rate limited while ${doing}${theySaid}. NodeAI retried with backoff; wait a minute and run again, or lower the request rate.`, status, true, after);
    if (status === 408 || status === 409) return new OpenAIProviderError('server_error', `${context.host} timed out or hit a conflict while ${OPERATION[context.operation]}${theySaid}.`, status, true, after);
    if (status !== undefined && status >= 500) {
      return new OpenAIProviderError('server_error', `${context.host} failed while ${OPERATION[context.operation]}${theySaid}. NodeAI retried with backoff; try again later.`, status, true, after);
    }
    if (status !== undefined && status >= 400) {
      return new OpenAIProviderError('invalid_request', `${context.host} rejected the request while ${OPERATION[context.operation]}${theySaid}${err.param ? ` — field "${err.param}"` : ''}.`, status, false, undefined, err.param);
    }
  }
  const message = err instanceof Error ? err.message : String(err);
  return new OpenAIProviderError('provider_error', `Failed ${doing}: ${scrub(message)}`, undefined, false);
}

const defaultSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });

/** Shared by the fine-tuning and chat halves: one client, one retry policy, one error mapping. */
class OpenAIConnection {
  readonly client: OpenAI;
  readonly endpoint: ResolvedEndpoint;
  readonly host: string;
  readonly timeoutMs: number;
  readonly uploadTimeoutMs: number;
  readonly streamIdleTimeoutMs: number;
  private readonly retry: RetryPolicy;
  private readonly apiKey: string;
  private readonly sleep: NonNullable<OpenAIProviderOptions['sleep']>;
  private readonly random: () => number;

  constructor(options: OpenAIProviderOptions) {
    if (!options.apiKey) throw new ProviderError('api_key_missing', 'The OpenAI provider needs an API key.', OPENAI_PROVIDER_ID, 401);
    this.apiKey = options.apiKey;
    this.endpoint = resolveEndpoint(options.baseURL);
    this.host = new URL(this.endpoint.baseURL).host;
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.uploadTimeoutMs = options.uploadTimeoutMs ?? 10 * 60_000;
    this.streamIdleTimeoutMs = options.streamIdleTimeoutMs ?? this.timeoutMs;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.sleep = options.sleep ?? defaultSleep;
    this.random = options.random ?? Math.random;
    const common = { apiKey: options.apiKey, maxRetries: 0, timeout: this.timeoutMs, ...(options.organization ? { organization: options.organization } : {}) };
    this.client = this.endpoint.azure
      ? new AzureOpenAI({ ...common, endpoint: this.endpoint.azure.endpoint, apiVersion: this.endpoint.azure.apiVersion })
      : // baseURL is always given so that OPENAI_BASE_URL in the environment cannot redirect keys.
        new OpenAI({ ...common, baseURL: this.endpoint.baseURL });
  }

  error(err: unknown, operation: Operation): OpenAIProviderError {
    return toOpenAIProviderError(err, { operation, host: this.host, apiKey: this.apiKey });
  }

  /** Exponential backoff with jitter, at most `maxRetries` retries and `maxElapsedMs` in all. */
  async call<T>(operation: Operation, fn: (attempt: number) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn(attempt);
      } catch (raw) {
        const err = this.error(raw, operation);
        if (!err.retryable || attempt >= this.retry.maxRetries || signal?.aborted) throw err;
        const backoff = Math.min(this.retry.maxDelayMs, this.retry.initialDelayMs * 2 ** attempt);
        // Half fixed, half random: spreads clients that failed together without starving any.
        const wait = err.retryAfterMs !== undefined ? err.retryAfterMs : backoff / 2 + (backoff / 2) * this.random();
        if (Date.now() - started + wait > this.retry.maxElapsedMs) {
          const why = err.retryAfterMs !== undefined ? ` The server asked to wait ${Math.ceil(err.retryAfterMs / 1000)} s, beyond the ${Math.round(this.retry.maxElapsedMs / 1000)} s NodeAI allows.` : '';
          throw new OpenAIProviderError(err.code as OpenAIErrorCode, err.message + why, err.upstreamStatus, err.retryable, err.retryAfterMs, err.param);
        }
        await this.sleep(wait, signal);
      }
    }
  }
}

const toSeconds = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const STATUSES: JobStatus[] = ['validating_files', 'queued', 'running', 'succeeded', 'failed', 'cancelled'];

/** The SDK's job (or another server's) in the spec's shape; unknown statuses read as running. */
export function normalizeJob(raw: Record<string, unknown>): FineTuningJob {
  const method = (raw.method ?? {}) as { type?: string; supervised?: { hyperparameters?: Partial<Hyperparameters> }; dpo?: { hyperparameters?: Partial<Hyperparameters> } };
  const hp = { ...((raw.hyperparameters as Partial<Hyperparameters>) ?? {}), ...(method.supervised?.hyperparameters ?? method.dpo?.hyperparameters ?? {}) };
  const hyperparameters: Hyperparameters = { n_epochs: hp.n_epochs ?? 'auto', batch_size: hp.batch_size ?? 'auto', learning_rate_multiplier: hp.learning_rate_multiplier ?? 'auto' };
  const status = String(raw.status);
  const error = raw.error as { code?: unknown; message?: unknown; param?: unknown } | null | undefined;
  return {
    id: String(raw.id),
    object: 'fine_tuning.job',
    created_at: toSeconds(raw.created_at) ?? Math.floor(Date.now() / 1000),
    finished_at: toSeconds(raw.finished_at),
    model: String(raw.model ?? ''),
    fine_tuned_model: typeof raw.fine_tuned_model === 'string' ? raw.fine_tuned_model : null,
    organization_id: String(raw.organization_id ?? ''),
    status: (STATUSES as string[]).includes(status) ? (status as JobStatus) : status === 'paused' ? 'queued' : 'running',
    training_file: String(raw.training_file ?? ''),
    validation_file: typeof raw.validation_file === 'string' ? raw.validation_file : null,
    trained_tokens: toSeconds(raw.trained_tokens),
    hyperparameters,
    method: { type: method.type === 'dpo' ? 'dpo' : 'supervised', supervised: { hyperparameters } },
    result_files: Array.isArray(raw.result_files) ? raw.result_files.map(String) : [],
    // OpenAI sends an all-null error object on jobs that did not fail.
    error: error && (error.message || error.code) ? { code: String(error.code ?? 'job_failed'), message: String(error.message ?? ''), param: typeof error.param === 'string' ? error.param : null } : null,
    seed: toSeconds(raw.seed) ?? 0,
    suffix: typeof raw.suffix === 'string' ? raw.suffix : null,
    metadata: (raw.metadata as Record<string, string> | null | undefined) ?? null,
    estimated_finish: toSeconds(raw.estimated_finish),
  };
}

export class OpenAIFineTuneProvider implements FineTuneProvider {
  readonly id = OPENAI_PROVIDER_ID;
  private readonly conn: OpenAIConnection;

  constructor(options: OpenAIProviderOptions) {
    this.conn = new OpenAIConnection(options);
  }

  get endpoint(): ResolvedEndpoint {
    return this.conn.endpoint;
  }

  async uploadFile(file: { path: string; filename: string }, options: { signal?: AbortSignal } = {}): Promise<UploadedFile> {
    // A fresh stream per attempt: a retried upload must start from the first byte.
    const res = await this.conn.call(
      'upload',
      async () => this.conn.client.files.create({ file: await toFile(createReadStream(file.path), file.filename), purpose: 'fine-tune' }, { timeout: this.conn.uploadTimeoutMs, signal: options.signal ?? null }),
      options.signal,
    );
    return { id: res.id, object: 'file', bytes: res.bytes, created_at: res.created_at, filename: res.filename, purpose: res.purpose };
  }

  async createJob(req: CreateJobRequest, options: { signal?: AbortSignal } = {}): Promise<FineTuningJob> {
    const hp: Record<string, number | 'auto'> = {};
    for (const key of ['n_epochs', 'batch_size', 'learning_rate_multiplier'] as const) {
      const v = req.hyperparameters?.[key];
      if (v !== undefined) hp[key] = v;
    }
    const job = await this.conn.call(
      'create_job',
      () =>
        this.conn.client.fineTuning.jobs.create(
          {
            model: req.model,
            training_file: req.training_file,
            ...(req.validation_file ? { validation_file: req.validation_file } : {}),
            method: { type: 'supervised', supervised: { hyperparameters: hp } },
            ...(req.suffix ? { suffix: req.suffix } : {}),
            ...(req.seed !== undefined && req.seed !== null ? { seed: req.seed } : {}),
            ...(req.metadata ? { metadata: req.metadata } : {}),
          },
          { signal: options.signal ?? null },
        ),
      options.signal,
    );
    return normalizeJob(job as unknown as Record<string, unknown>);
  }

  async getJob(id: string): Promise<FineTuningJob> {
    const job = await this.conn.call('get_job', () => this.conn.client.fineTuning.jobs.retrieve(id));
    return normalizeJob(job as unknown as Record<string, unknown>);
  }

  async listEvents(id: string, opts: { after?: string; limit?: number } = {}): Promise<Page<JobEvent>> {
    const page = await this.conn.call('list_events', () => this.conn.client.fineTuning.jobs.listEvents(id, { ...(opts.after ? { after: opts.after } : {}), ...(opts.limit ? { limit: opts.limit } : {}) }));
    return {
      data: page.data.map((e) => ({
        id: e.id,
        object: 'fine_tuning.job.event',
        created_at: e.created_at,
        level: e.level,
        message: e.message,
        type: e.type === 'metrics' ? 'metrics' : 'message',
        ...(e.data && typeof e.data === 'object' ? { data: e.data as Record<string, unknown> } : {}),
      })),
      has_more: page.has_more,
    };
  }

  async listCheckpoints(id: string, opts: { after?: string; limit?: number } = {}): Promise<Page<Checkpoint>> {
    const page = await this.conn.call('list_checkpoints', () => this.conn.client.fineTuning.jobs.checkpoints.list(id, { ...(opts.after ? { after: opts.after } : {}), ...(opts.limit ? { limit: opts.limit } : {}) }));
    return {
      data: page.data.map((c) => ({
        id: c.id,
        object: 'fine_tuning.job.checkpoint',
        created_at: c.created_at,
        fine_tuned_model_checkpoint: c.fine_tuned_model_checkpoint,
        fine_tuning_job_id: c.fine_tuning_job_id,
        step_number: c.step_number,
        metrics: Object.fromEntries(Object.entries(c.metrics ?? {}).filter(([, v]) => typeof v === 'number')) as Checkpoint['metrics'],
      })),
      has_more: page.has_more,
    };
  }

  async cancelJob(id: string): Promise<FineTuningJob> {
    const job = await this.conn.call('cancel_job', () => this.conn.client.fineTuning.jobs.cancel(id));
    return normalizeJob(job as unknown as Record<string, unknown>);
  }
}

export class OpenAIChatProvider implements ChatProvider {
  readonly id = OPENAI_PROVIDER_ID;
  private readonly conn: OpenAIConnection;

  constructor(options: OpenAIProviderOptions) {
    this.conn = new OpenAIConnection(options);
  }

  get endpoint(): ResolvedEndpoint {
    return this.conn.endpoint;
  }

  private body(req: ChatRequest) {
    if (!req.messages || req.messages.length === 0) {
      throw new ProviderError('invalid_request', 'A chat request needs at least one message, e.g. [{"role": "user", "content": "Hello"}].', this.id);
    }
    // Newer OpenAI models refuse max_tokens; most compatible servers know only max_tokens.
    const limit = req.max_tokens === undefined ? {} : this.conn.endpoint.kind === 'openai' ? { max_completion_tokens: req.max_tokens } : { max_tokens: req.max_tokens };
    return {
      model: req.model,
      // A tool message needs a tool_call_id this contract does not carry; it reads as user text.
      messages: req.messages.map((m) => ({ role: m.role === 'tool' ? ('user' as const) : m.role, content: m.content })),
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      ...(req.top_p !== undefined ? { top_p: req.top_p } : {}),
      ...(req.seed !== undefined ? { seed: req.seed } : {}),
      ...limit,
    };
  }

  async chat(req: ChatRequest): Promise<ChatResult> {
    const body = this.body(req);
    const res = await this.conn.call('chat', () => this.conn.client.chat.completions.create({ ...body, stream: false }, { signal: req.signal ?? null }), req.signal);
    const choice = res.choices[0];
    const usage = res.usage ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    return {
      text: choice?.message?.content ?? '',
      model: res.model || req.model,
      finish_reason: choice?.finish_reason === 'length' ? 'length' : 'stop',
      usage: { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens, total_tokens: usage.total_tokens },
    };
  }

  /** Retries only until the stream opens: once text has been handed out, a failure ends the stream. */
  async *stream(req: ChatRequest): AsyncIterable<string> {
    const body = this.body(req);
    const controller = new AbortController();
    const onAbort = () => controller.abort(req.signal?.reason);
    req.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const stream = await this.conn.call('chat', () => this.conn.client.chat.completions.create({ ...body, stream: true }, { signal: controller.signal }), req.signal);
      const iterator = stream[Symbol.asyncIterator]();
      for (;;) {
        let timer: NodeJS.Timeout | undefined;
        const idle = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            controller.abort();
            reject(new OpenAIProviderError('connection_error', `${this.conn.host} stopped sending the streamed reply (nothing for ${Math.round(this.conn.streamIdleTimeoutMs / 1000)} s).`, undefined, false));
          }, this.conn.streamIdleTimeoutMs);
        });
        let next: IteratorResult<OpenAI.Chat.Completions.ChatCompletionChunk>;
        try {
          next = await Promise.race([iterator.next(), idle]);
        } catch (err) {
          throw this.conn.error(err, 'chat');
        } finally {
          clearTimeout(timer);
        }
        if (next.done) return;
        const chunk = next.value as OpenAI.Chat.Completions.ChatCompletionChunk & { error?: { message?: string; code?: string } };
        // Some servers (NodeAI's own among them) report a failure inside the stream.
        if (chunk.error) throw new OpenAIProviderError('server_error', `${this.conn.host} failed while streaming: ${chunk.error.message ?? 'no reason given'}`, undefined, false);
        const text = chunk.choices?.[0]?.delta?.content;
        if (text) yield text;
      }
    } finally {
      req.signal?.removeEventListener('abort', onAbort);
      controller.abort();
    }
  }
}
