// The canvas talks to the same /api/v1 as every other client, with the API token that
// `nodeai serve` printed, always in the Authorization header: live events are read with fetch
// streaming rather than EventSource, which cannot send headers, and big downloads are plain links
// opened with a single-use ticket, so the token never sits in a URL.
import type { Distribution, Histogram } from '../../src/datasets/stats.ts';
import type { PortSpec } from '../../src/engine/port-spec.ts';
import type { Checkpoint, FineTuningJob, JobEvent } from '../../src/trainer/fine-tuning-job.ts';
import type { ApiIssue } from './lib/issues.ts';
import type { EvaluationReport, EvaluationTotals } from './lib/evaluation.ts';
import { SseParser } from './lib/sse.ts';

// The server's own types where the canvas reads the same objects (type-only imports: nothing of
// src/ enters the bundle).
export type { Checkpoint, Distribution, FineTuningJob, Histogram, JobEvent, PortSpec };

export interface NodeType {
  type: string;
  name: string;
  category: string;
  description: string;
  inputs: PortSpec[];
  outputs: PortSpec[];
  configSchema: JsonSchema;
}

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
}

export interface WorkflowJson {
  name: string;
  nodes: Array<{ id: string; type: string; config: Record<string, unknown>; position?: { x: number; y: number } }>;
  edges: Array<{ source: string; target: string; sourceHandle?: string | null; targetHandle?: string | null }>;
}

export interface ApiNodeResult {
  node_id: string;
  node_type: string;
  status: string;
  outputs: Record<string, unknown> | null;
  error: { code: string; message: string } | null;
}

export interface ApiRun {
  id: string;
  status: string;
  error: { code: string; message: string } | null;
  waiting: { node_id: string; job_id: string } | null;
  nodes: ApiNodeResult[];
}

export interface ApiModel {
  id: string;
  name: string | null;
  base_model: string;
  provider?: string;
  job_id?: string | null;
  training_examples?: number | null;
  epochs?: number | null;
  metrics?: Record<string, number> | null;
  /** Base vs fine-tuned on the validation examples, when the job evaluated its model. */
  evaluation?: EvaluationTotals | null;
  files?: string[];
  /** The GGUF's size; null when the model lives at its provider. */
  bytes?: number | null;
  /** The hyperparameters of the job that trained it; null when that job is gone. */
  hyperparameters?: FineTuningJob['hyperparameters'] | null;
  created_at?: number;
}

export type ExportTarget = 'ollama' | 'gguf' | 'lmstudio';
export type ExportQuant = 'f16' | 'q8_0' | 'q4_k_m';

/** What POST /api/v1/models/:id/export answers (docs/EXPORT.md). */
export interface ApiExport {
  model: string;
  to: ExportTarget;
  quant: ExportQuant | null;
  /** Every file written (server paths). */
  files: string[];
  /** The command that uses the export (`ollama create …` or `llama-server …`), shell-quoted. */
  command_line: string;
  modelfile_text: string | null;
  notes: string[];
  ollama_created: boolean;
  /** The path that streams the GGUF written; open it with a ticket (download()). */
  download: string;
}

export interface ApiSecret {
  name: string;
  updated_at: number;
  /** Hosts besides the provider's own that this key may be sent to. */
  allowed_hosts?: string[];
}

export interface ApiTemplate {
  id: string;
  name: string;
  description: string;
  workflow: WorkflowJson;
}

export interface CatalogModel {
  id: string;
  /** What a Fine-Tune node's base_model takes, e.g. hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q8_0. */
  uri: string;
  name: string;
  family?: string;
  parameters?: number;
  license?: string;
  context_length?: number;
  downloaded?: boolean;
  est_train_tok_s?: number;
  est_peak_rss_mb?: number;
  /** What the two figures above were measured on (the trainer benchmark's setup and date). */
  benchmark?: { setup: string; date: string } | null;
  /** The quant `uri` names. */
  default_quant?: string;
  /** One per quant; `bytes_source` 'computed': by llama.cpp's quantizer on the model's shapes, where the hub gave no size. */
  files?: Array<{ quant: string; bytes: number; bytes_source: 'hub' | 'computed'; uri: string }>;
}

export interface DataIssue {
  severity: 'error' | 'warning';
  code: string;
  line: number | null;
  path: string | null;
  message: string;
  hint: string;
}

export interface DataReport {
  file_id: string;
  file: string | null;
  format: string | null;
  bytes: number;
  examples: number;
  valid_examples: number;
  trainable: boolean;
  errors: DataIssue[];
  warnings: DataIssue[];
  error_count: number;
  warning_count: number;
  messages_per_example: Distribution | null;
  tokens: { model: string; limit: number; total: number; per_example: Distribution | null; per_example_histogram: Histogram | null; over_limit: number } | null;
  split: { train: number; validation: number; validation_split: number };
  cost: { model: string; epochs: number; billed_tokens: number; usd: number } | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN_KEY = 'nodeai.token';

export function savedToken(): string {
  const fromUrl = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromUrl) {
    localStorage.setItem(TOKEN_KEY, fromUrl);
    history.replaceState(null, '', location.pathname);
    return fromUrl;
  }
  return localStorage.getItem(TOKEN_KEY) ?? '';
}

export function saveToken(token: string): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

export class Api {
  constructor(readonly token: string) {}

  private async request<T>(path: string, init: RequestInit = {}): Promise<T> {
    const headers = new Headers(init.headers);
    headers.set('Authorization', `Bearer ${this.token}`);
    if (init.body && !(init.body instanceof FormData)) headers.set('Content-Type', 'application/json');
    const res = await fetch(path, { ...init, headers });
    const text = await res.text();
    const body = text ? JSON.parse(text) : null;
    if (!res.ok) throw new ApiError(res.status, body?.error?.message ?? `${res.status} ${res.statusText}`);
    return body as T;
  }

  private list<T>(path: string): Promise<T[]> {
    return this.request<{ data: T[] }>(path).then((r) => r.data);
  }

  private post<T>(path: string, body?: unknown, method = 'POST'): Promise<T> {
    return this.request(path, { method, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  }

  nodeTypes(): Promise<NodeType[]> {
    return this.request<{ data: NodeType[] }>('/api/v1/node-types').then((r) => r.data);
  }

  models(): Promise<ApiModel[]> {
    return this.request<{ data: ApiModel[] }>('/api/v1/models').then((r) => r.data);
  }

  upload(file: File): Promise<{ id: string; filename: string; bytes: number }> {
    const form = new FormData();
    form.set('purpose', 'fine-tune');
    form.set('file', file);
    return this.request('/api/v1/files', { method: 'POST', body: form });
  }

  jobMetrics(jobId: string): Promise<Array<Record<string, unknown>>> {
    return this.request<{ data: Array<Record<string, unknown>> }>(`/api/v1/jobs/${encodeURIComponent(jobId)}/metrics`).then((r) => r.data);
  }

  workflows(): Promise<Array<{ id: string; name: string; updated_at: number }>> {
    return this.request<{ data: Array<{ id: string; name: string; updated_at: number }> }>('/api/v1/workflows').then((r) => r.data);
  }

  workflow(id: string): Promise<{ id: string; name: string; definition: WorkflowJson }> {
    return this.request(`/api/v1/workflows/${encodeURIComponent(id)}`);
  }

  saveWorkflow(workflow: WorkflowJson, id?: string): Promise<{ id: string; name: string }> {
    return id
      ? this.request(`/api/v1/workflows/${encodeURIComponent(id)}`, { method: 'PUT', body: JSON.stringify(workflow) })
      : this.request('/api/v1/workflows', { method: 'POST', body: JSON.stringify(workflow) });
  }

  deleteWorkflow(id: string): Promise<unknown> {
    return this.post(`/api/v1/workflows/${encodeURIComponent(id)}`, undefined, 'DELETE');
  }

  templates(): Promise<ApiTemplate[]> {
    return this.list('/api/v1/templates');
  }

  /** The template as a draft whose File Loaders point at stored copies of its data. */
  useTemplate(id: string): Promise<WorkflowJson> {
    return this.post(`/api/v1/templates/${encodeURIComponent(id)}/use`);
  }

  checkFile(fileId: string, options: { model?: string; validation_split?: number; epochs?: number | 'auto' } = {}): Promise<DataReport> {
    return this.post(`/api/v1/files/${encodeURIComponent(fileId)}/check`, { ...options, max_issues: 1000 });
  }

  secrets(): Promise<ApiSecret[]> {
    return this.list('/api/v1/secrets');
  }

  /** Stores a key; `allowedHosts` replaces the hosts it may go to (none: its provider's only). */
  setSecret(name: string, value: string, allowedHosts: string[] = []): Promise<ApiSecret> {
    return this.post(`/api/v1/secrets/${encodeURIComponent(name)}`, { value, allowed_hosts: allowedHosts }, 'PUT');
  }

  deleteSecret(name: string): Promise<unknown> {
    return this.post(`/api/v1/secrets/${encodeURIComponent(name)}`, undefined, 'DELETE');
  }

  jobs(): Promise<FineTuningJob[]> {
    return this.list('/api/v1/jobs?limit=100');
  }

  job(id: string): Promise<FineTuningJob> {
    return this.request(`/api/v1/jobs/${encodeURIComponent(id)}`);
  }

  jobEvents(id: string): Promise<JobEvent[]> {
    return this.list(`/api/v1/jobs/${encodeURIComponent(id)}/events?limit=1000`);
  }

  jobCheckpoints(id: string): Promise<Checkpoint[]> {
    return this.list(`/api/v1/jobs/${encodeURIComponent(id)}/checkpoints?limit=100`);
  }

  jobAction(id: string, action: 'cancel' | 'pause' | 'resume'): Promise<FineTuningJob> {
    return this.post(`/api/v1/jobs/${encodeURIComponent(id)}/${action}`);
  }

  /** Saves a model's file (kind "model": the GGUF, "adapter": a LoRA adapter); see download(). */
  downloadModelFile(id: string, kind: string): Promise<void> {
    return this.download(`/api/v1/models/${encodeURIComponent(id)}/files/${encodeURIComponent(kind)}`);
  }

  /**
   * Saves what a ticketable GET path serves through the browser's own download: a plain link
   * opened with a single-use ticket, so a file of gigabytes streams to disk instead of through the
   * page's memory, and the token stays out of the URL.
   */
  async download(path: string): Promise<void> {
    const { url } = await this.post<{ url: string }>('/api/v1/tickets', { path });
    const a = document.createElement('a');
    a.href = url;
    a.download = '';
    a.click();
  }

  /** Writes the model for Ollama, llama.cpp or LM Studio on the server; returns when it is done. */
  exportModel(id: string, options: { to: ExportTarget; quant: ExportQuant; adapter: boolean }): Promise<ApiExport> {
    return this.post(`/api/v1/models/${encodeURIComponent(id)}/export`, options);
  }

  /** Base vs fine-tuned on the validation examples, made when local training ended (404 when none). */
  evaluation(id: string): Promise<EvaluationReport> {
    return this.request(`/api/v1/models/${encodeURIComponent(id)}/evaluation`);
  }

  renameModel(id: string, name: string): Promise<ApiModel> {
    return this.post(`/api/v1/models/${encodeURIComponent(id)}`, { name }, 'PATCH');
  }

  deleteModel(id: string): Promise<unknown> {
    return this.post(`/api/v1/models/${encodeURIComponent(id)}`, undefined, 'DELETE');
  }

  /** Base models this server can train; null when it has no catalog (then any name may be typed). */
  catalog(): Promise<CatalogModel[] | null> {
    return this.list<CatalogModel>('/api/v1/models/catalog').catch((err) => {
      if (err instanceof ApiError && (err.status === 404 || err.status === 501)) return null;
      throw err;
    });
  }

  validate(workflow: WorkflowJson): Promise<{ valid: boolean; issues: ApiIssue[] }> {
    return this.request('/api/v1/workflows/validate', { method: 'POST', body: JSON.stringify({ workflow }) });
  }

  startRun(workflow: WorkflowJson): Promise<{ id: string }> {
    return this.request('/api/v1/runs', { method: 'POST', body: JSON.stringify({ workflow }) });
  }

  run(id: string): Promise<ApiRun> {
    return this.request(`/api/v1/runs/${encodeURIComponent(id)}`);
  }

  cancelRun(id: string): Promise<ApiRun> {
    return this.request(`/api/v1/runs/${encodeURIComponent(id)}/cancel`, { method: 'POST' });
  }

  chat(model: string, messages: Array<{ role: string; content: string }>): Promise<string> {
    return this.request<{ choices: Array<{ message: { content: string } }> }>('/v1/chat/completions', {
      method: 'POST',
      body: JSON.stringify({ model, messages, max_tokens: 128, temperature: 0 }),
    }).then((r) => r.choices[0]?.message.content ?? '');
  }

  /**
   * Live events of one run (its nodes and its training job), read with fetch so the token goes in
   * the Authorization header; reconnects with Last-Event-ID after a dropped connection. Returns
   * a function that stops them.
   */
  events(runId: string, on: (event: string, data: Record<string, unknown>) => void): () => void {
    const abort = new AbortController();
    const parser = new SseParser();
    const read = async () => {
      for (let attempt = 0; !abort.signal.aborted; attempt++) {
        try {
          const headers: Record<string, string> = { Authorization: `Bearer ${this.token}`, Accept: 'text/event-stream' };
          if (parser.lastId) headers['Last-Event-ID'] = parser.lastId;
          const res = await fetch(`/api/v1/events?run_id=${encodeURIComponent(runId)}`, { headers, signal: abort.signal });
          if (!res.ok || !res.body) throw new ApiError(res.status, `events: ${res.status}`);
          attempt = 0;
          const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            for (const e of parser.push(value)) {
              try {
                on(e.event, JSON.parse(e.data) as Record<string, unknown>);
              } catch {
                // A handler's failure or a malformed event must not end the stream.
              }
            }
          }
        } catch (err) {
          if (abort.signal.aborted || (err instanceof ApiError && (err.status === 401 || err.status === 404))) return;
        }
        await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** attempt)));
      }
    };
    void read();
    return () => abort.abort();
  }
}
