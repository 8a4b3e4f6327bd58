// Fuzzing the JSON API: a few hundred generated bodies per route, from a fixed seed so a failure
// replays, through the real server. Whatever arrives, the server answers in OpenAI's error shape
// with a 4xx (or a success), never a 500, never hangs, and stays up.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seededRandom } from '../datasets/split.ts';
import { builtInNodes, startTestServer, type TestServer } from './testing.ts';

const SEED = 20261130;
const BODIES_PER_ROUTE = 300;
/** A bound on the whole run, so a slow machine shortens it instead of timing out. */
const BUDGET_MS = 40_000;

const STRINGS = ['', ' ', 'auto', 'nodeai-tiny', 'fine-tune', '../../etc/passwd', 'file-AAAAAAAAAAAAAAAAAAAAAAAA', '\u0000', '\u001b[31m', '😀', 'ft:nodeai-tiny:x:y', 'OPENAI_API_KEY', 'x'.repeat(70_000), '<script>', '%00', 'null', '{"a":1}'];
const NUMBERS = [0, -1, 1, 0.5, 1e308, -1e308, 2 ** 53, 1.7976931348623157e308, Number.MIN_VALUE, 256, 257, 51, 4096, 4097];

function generator(next: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)];
  const value = (depth: number): unknown => {
    const r = next();
    if (r < 0.15) return pick(STRINGS);
    if (r < 0.3) return pick(NUMBERS);
    if (r < 0.38) return pick([true, false, null]);
    if (r < 0.45) return String.fromCharCode(...Array.from({ length: Math.floor(next() * 20) }, () => Math.floor(next() * 0xffff)));
    if (depth > 3 || r < 0.6) return Math.floor(next() * 1000) - 500;
    if (r < 0.8) return Array.from({ length: Math.floor(next() * 4) }, () => value(depth + 1));
    return Object.fromEntries(Array.from({ length: Math.floor(next() * 4) }, () => [pick(['name', 'value', 'model', 'messages', 'nodes', 'edges', 'id', 'type', 'config', 'n_epochs', '__proto__', 'constructor']), value(depth + 1)]));
  };
  /** A valid body with its fields dropped, retyped or replaced, or an arbitrary value. */
  const mutate = (template: Record<string, unknown>): unknown => {
    const r = next();
    if (r < 0.1) return value(0);
    const out: Record<string, unknown> = structuredClone(template);
    for (const key of Object.keys(out)) {
      const m = next();
      if (m < 0.2) delete out[key];
      else if (m < 0.5) out[key] = value(1);
      else if (m < 0.6 && out[key] && typeof out[key] === 'object') out[key] = mutate(out[key] as Record<string, unknown>);
    }
    if (next() < 0.2) out[pick(['extra', 'hyperparameters', 'allowed_hosts', 'stream', 'purpose'])] = value(1);
    return out;
  };
  /** Raw text: truncated or broken JSON. */
  const text = (body: unknown): string => {
    const json = JSON.stringify(body) ?? 'null';
    const r = next();
    if (r < 0.85) return json;
    if (r < 0.93) return json.slice(0, Math.floor(next() * json.length));
    return json.replace(/[:,]/, pick(['', '::', ',,', '\u0000']));
  };
  return { mutate, text };
}

const workflow = { name: 'fuzz', nodes: [{ id: 'a', type: 'chat', config: { prompt: 'Hi', max_tokens: 1 } }], edges: [] };
const ROUTES: { method: string; path: string; template: Record<string, unknown> }[] = [
  { method: 'POST', path: '/api/v1/secrets', template: { name: 'FUZZ_KEY', value: 'a-long-enough-value', allowed_hosts: ['127.0.0.1'] } },
  { method: 'PUT', path: '/api/v1/secrets/FUZZ_KEY', template: { value: 'a-long-enough-value', allowed_hosts: ['nodeai.lan:8787'] } },
  { method: 'POST', path: '/api/v1/workflows', template: { workflow } },
  { method: 'POST', path: '/api/v1/workflows/validate', template: { workflow } },
  { method: 'POST', path: '/api/v1/runs', template: { workflow } },
  { method: 'POST', path: '/api/v1/jobs', template: { model: 'nodeai-tiny', training_file: 'file-AAAAAAAAAAAAAAAAAAAAAAAA', hyperparameters: { n_epochs: 1, batch_size: 'auto' }, suffix: 'x' } },
  { method: 'POST', path: '/v1/fine_tuning/jobs', template: { model: 'nodeai-tiny', training_file: 'file-AAAAAAAAAAAAAAAAAAAAAAAA', method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 1 } } }, seed: 1, metadata: { a: 'b' } } },
  { method: 'POST', path: '/v1/chat/completions', template: { model: 'nodeai-tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 1, temperature: 0 } },
  { method: 'PATCH', path: '/api/v1/models/ft:nodeai-tiny:x:y', template: { name: 'renamed' } },
  { method: 'POST', path: '/api/v1/events/tickets', template: {} },
  { method: 'POST', path: '/api/v1/tickets', template: { path: '/api/v1/events' } },
  { method: 'POST', path: '/api/v1/evaluations', template: { model: 'nodeai-tiny', file_id: 'file-AAAAAAAAAAAAAAAAAAAAAAAA', max_examples: 2 } },
  { method: 'POST', path: '/api/v1/models/ft:nodeai-tiny:x:y/export', template: { to: 'gguf', adapter: false } },
];

/** Routes on things the test makes first (a stored file, a saved workflow), so a body gets past the 404. */
async function routesOnStoredThings(t: TestServer): Promise<typeof ROUTES> {
  const fd = new FormData();
  fd.set('file', new Blob([JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] }) + '\n']), 'a.jsonl');
  const file = (await (await t.api('/api/v1/files', { method: 'POST', body: fd })).json()) as { id: string };
  const saved = (await (await t.api('/api/v1/workflows', { method: 'POST', json: workflow })).json()) as { id: string };
  return [
    { method: 'POST', path: `/api/v1/files/${file.id}/check`, template: { model: 'nodeai-tiny', validation_split: 0.1, seed: 1, epochs: 1, max_issues: 10 } },
    { method: 'PUT', path: `/api/v1/workflows/${saved.id}`, template: workflow },
  ];
}

describe('JSON API fuzz', () => {
  let t: TestServer;
  let routes: typeof ROUTES;
  beforeAll(async () => {
    t = await startTestServer({
      wire: builtInNodes,
    });
    routes = [...ROUTES, ...(await routesOnStoredThings(t))];
  });
  afterAll(async () => {
    await t?.close();
  });

  it(`answers ${BODIES_PER_ROUTE} generated bodies per route with no 500, in OpenAI's error shape`, { timeout: BUDGET_MS + 30_000 }, async () => {
    const gen = generator(seededRandom(SEED));
    const deadline = Date.now() + BUDGET_MS;
    const failures: string[] = [];
    let sent = 0;
    for (let i = 0; i < BODIES_PER_ROUTE && Date.now() < deadline; i++) {
      for (const route of routes) {
        const body = gen.text(gen.mutate(route.template));
        const res = await t.api(route.path, { method: route.method, body, headers: { 'content-type': 'application/json' }, signal: AbortSignal.timeout(10_000) });
        sent++;
        const text = await res.text();
        const shown = `${route.method} ${route.path} ${body.slice(0, 200)} → ${res.status} ${text.slice(0, 200)}`;
        if (res.status >= 500) failures.push(shown);
        else if (res.status >= 400) {
          const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; type?: unknown } };
          if (typeof parsed.error?.code !== 'string' || typeof parsed.error.message !== 'string' || typeof parsed.error.type !== 'string') failures.push(`bad error shape: ${shown}`);
        }
      }
    }
    expect(failures).toEqual([]);
    // Enough of the plan ran to mean something, even on a loaded machine.
    expect(sent).toBeGreaterThanOrEqual(routes.length * 50);
    expect((await t.api('/health')).status).toBe(200);
  });
});
