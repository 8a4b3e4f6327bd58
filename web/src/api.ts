// The canvas talks to the same /api/v1 as every other client, with the API token that
// `nodeai serve` printed; EventSource cannot send headers, so live events are opened with a
// short-lived single-use ticket asked for with the token (the server takes no token in a URL).

export interface NodeType {
  type: string;
  name: string;
  category: string;
  description: string;
  inputs: Array<{ name: string; description?: string }>;
  outputs: Array<{ name: string; description?: string }>;
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
  edges: Array<{ source: string; target: string }>;
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

  validate(workflow: WorkflowJson): Promise<{ valid: boolean; issues: Array<{ message: string; node_id: string | null }> }> {
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

  /** Live events of one run (its nodes and its training job); returns a function that stops them. */
  events(runId: string, on: (event: string, data: Record<string, unknown>) => void): () => void {
    const names = ['node.started', 'node.succeeded', 'node.failed', 'node.waiting', 'node.log', 'run.resumed', 'run.finished', 'job.metrics', 'job.status', 'job.event'];
    let source: EventSource | undefined;
    let stopped = false;
    // A ticket opens the stream once; after a dropped connection a new one is asked for.
    const open = () =>
      this.request<{ ticket: string }>('/api/v1/events/tickets', { method: 'POST' }).then(({ ticket }) => {
        if (stopped) return;
        source = new EventSource(`/api/v1/events?run_id=${encodeURIComponent(runId)}&ticket=${encodeURIComponent(ticket)}`);
        for (const name of names) source.addEventListener(name, (e) => on(name, JSON.parse((e as MessageEvent).data)));
        source.onerror = () => {
          source?.close();
          if (!stopped) setTimeout(() => void open().catch(() => undefined), 1000);
        };
      });
    void open().catch(() => undefined);
    return () => {
      stopped = true;
      source?.close();
    };
  }
}
