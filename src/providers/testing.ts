// Test support: a real HTTP server on 127.0.0.1 that answers each request as a test scripts it —
// a status with a JSON body and headers, an SSE stream, a dropped connection, or silence.
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SeenRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: string;
}

export type Reply =
  | { status?: number; headers?: Record<string, string>; json?: unknown }
  /** Server-sent events: `[event name or null, data]` pairs, written in order. */
  | { sse: [string | null, unknown][]; headers?: Record<string, string> }
  | { drop: true }
  | { hang: true };

export interface FakeServer {
  url: string;
  requests: SeenRequest[];
  close(): Promise<void>;
}

export async function startFakeServer(handle: (req: SeenRequest, n: number) => Reply | Promise<Reply>): Promise<FakeServer> {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const seen: SeenRequest = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      requests.push(seen);
      const reply = await handle(seen, requests.length);
      if ('drop' in reply) return req.socket.destroy();
      if ('hang' in reply) return;
      if ('sse' in reply) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', ...reply.headers });
        for (const [event, data] of reply.sse) res.write(`${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
        return res.end();
      }
      res.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers });
      res.end(reply.json === undefined ? '' : JSON.stringify(reply.json));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** OpenAI's error body. */
export const openAIError = (status: number, message: string, extra: { code?: string | null; type?: string; param?: string | null; headers?: Record<string, string> } = {}): Reply => ({
  status,
  ...(extra.headers ? { headers: extra.headers } : {}),
  json: { error: { message, type: extra.type ?? (status >= 500 ? 'server_error' : 'invalid_request_error'), param: extra.param ?? null, code: extra.code ?? null } },
});

/** A fine-tuning job as OpenAI returns it. */
export function remoteJob(id: string, status: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const hyperparameters = { n_epochs: 2, batch_size: 1, learning_rate_multiplier: 1 };
  return {
    id,
    object: 'fine_tuning.job',
    created_at: 1_790_000_000,
    finished_at: null,
    model: 'gpt-4o-mini-2024-07-18',
    fine_tuned_model: null,
    organization_id: 'org-test',
    status,
    training_file: 'file-train',
    validation_file: null,
    trained_tokens: null,
    hyperparameters,
    method: { type: 'supervised', supervised: { hyperparameters } },
    result_files: [],
    error: null,
    seed: 42,
    ...extra,
  };
}
