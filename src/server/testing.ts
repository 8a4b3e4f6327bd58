// Test support: a real store, engine and server on 127.0.0.1 with a random port.
import { rmSync } from 'node:fs';
import { Engine, NodeRegistry } from '../engine/index.ts';
import { testNodes } from '../engine/testing.ts';
import { JobQueue } from '../jobs/index.ts';
import { createNodeRegistry, createNodeServices } from '../nodes/index.ts';
import { createStore, type Store } from '../store/index.ts';
import { tempDir } from '../store/testing.ts';
import { startServer, type RunningServer, type StartOptions } from './start.ts';

export const TEST_TOKEN = 'test-token-0123456789abcdef';

/** Test code reads JSON bodies loosely; the assertions are the type check. */
export type JsonResponse = Omit<Response, 'json'> & { json(): Promise<any> };

export interface TestServer {
  server: RunningServer;
  store: Store;
  engine: Engine;
  url: string;
  dataDir: string;
  /** fetch with the token and the server's base URL. */
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<JsonResponse>;
  close(): Promise<void>;
}

export async function startTestServer(extra: Partial<StartOptions> & { wire?: (store: Store) => Partial<StartOptions> } = {}): Promise<TestServer> {
  const dataDir = tempDir('nodeai-server-');
  const store = await createStore({ dataDir, databaseUrl: '' });
  const { wire, ...rest } = extra;
  extra = { ...rest, ...(wire ? wire(store) : {}) };
  // The engine the server runs (the wired one, if any), so `engine` and close() mean that one.
  const engine = extra.engine ?? new Engine({ store, registry: extra.registry ?? new NodeRegistry(testNodes), heartbeatMs: 60_000 });
  const server = await startServer({ store, engine, token: TEST_TOKEN, host: '127.0.0.1', port: 0, jobPollMs: 50, onError: () => undefined, ...extra });
  return {
    server,
    store,
    engine,
    url: server.url,
    dataDir,
    api(path, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has('authorization')) headers.set('authorization', `Bearer ${TEST_TOKEN}`);
      let body = init.body;
      if (init.json !== undefined) {
        body = JSON.stringify(init.json);
        headers.set('content-type', 'application/json');
      }
      return fetch(server.url + path, { ...init, headers, body });
    },
    async close() {
      await server.close(1000);
      engine.close();
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A `wire` for startTestServer: the built-in nodes with their services, a job queue and local chat. */
export function builtInNodes(store: Store): Partial<StartOptions> {
  const jobs = new JobQueue(store);
  const services = createNodeServices(store, { jobs });
  return { jobs, engine: new Engine({ store, registry: createNodeRegistry(), services: { nodeai: services } }), chat: services.localChat };
}

export interface SseMessage {
  id?: string;
  event: string;
  data: string;
}

export interface SseClient {
  messages: SseMessage[];
  lastEventId?: string;
  /** Resolves with the first message (from the start) that satisfies `pred`. */
  waitFor(pred: (m: SseMessage) => boolean, timeoutMs?: number): Promise<SseMessage>;
  /** Drops the connection abruptly, as a closed tab or a lost network would. */
  drop(): void;
}

/** A bare SSE client over node:http, so the test sees exactly what goes over the socket. */
export async function openSse(url: string, options: { token?: string; lastEventId?: string } = {}): Promise<SseClient> {
  const http = await import('node:http');
  const messages: SseMessage[] = [];
  const waiters = new Set<() => void>();
  const client: SseClient = {
    messages,
    lastEventId: options.lastEventId,
    waitFor(pred, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = messages.find(pred);
          if (hit) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(hit);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no matching SSE message within ${timeoutMs} ms; got ${JSON.stringify(messages.map((m) => m.event))}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    drop() {
      req.destroy();
    },
  };
  const headers: Record<string, string> = { accept: 'text/event-stream', authorization: `Bearer ${options.token ?? TEST_TOKEN}` };
  if (options.lastEventId) headers['last-event-id'] = options.lastEventId;
  const req = http.request(url, { headers });
  await new Promise<void>((resolve, reject) => {
    req.once('response', (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE status ${res.statusCode}`));
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const msg: SseMessage = { event: 'message', data: '' };
          const data: string[] = [];
          let any = false;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const i = line.indexOf(':');
            const field = i < 0 ? line : line.slice(0, i);
            const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
            any = true;
            if (field === 'id') msg.id = value;
            else if (field === 'event') msg.event = value;
            else if (field === 'data') data.push(value);
          }
          if (!any) continue;
          msg.data = data.join('\n');
          if (msg.id !== undefined) client.lastEventId = msg.id;
          messages.push(msg);
          for (const w of [...waiters]) w();
        }
      });
      res.on('error', () => undefined);
      resolve();
    });
    req.once('error', reject);
    req.end();
  });
  return client;
}
