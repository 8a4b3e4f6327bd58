import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BENCHMARK_FIGURES } from '../../trainer/base-catalog.ts';
import { writeGgufModel } from '../../trainer/gguf-model.ts';
import { startLoopbackHub, type LoopbackHub } from '../../trainer/hub-fixture.ts';
import { createTinyModel } from '../../trainer/tiny-model.ts';
import { createNodeServices } from '../../nodes/index.ts';
import { disposeInference } from '../../trainer/inference.ts';
import { openSse, startTestServer, type TestServer } from '../testing.ts';

const REPO = 'acme/Tiny-GGUF';

describe('/api/v1/models: catalog, pull and pulls', () => {
  let root: string;
  let hub: LoopbackHub;
  let t: TestServer;
  let gguf: Buffer;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'nodeai-pull-api-'));
    await writeGgufModel(join(root, 'tiny.gguf'), createTinyModel({ seed: 0 }));
    gguf = await readFile(join(root, 'tiny.gguf'));
    hub = await startLoopbackHub({ [REPO]: { files: { 'tiny-Q8_0.gguf': gguf, 'tiny-Q4_K_M.gguf': gguf } } });
    const modelEnv = { HF_ENDPOINT: hub.endpoint, HOME: root, OLLAMA_MODELS: join(root, 'ollama') };
    t = await startTestServer({ modelEnv, wire: (store) => ({ chat: createNodeServices(store, { modelEnv }).localChat }) });
  });
  afterAll(async () => {
    await t?.close();
    await disposeInference();
    await hub?.close();
    await rm(root, { recursive: true, force: true });
  });

  async function until(id: string, done: (p: { status: string }) => boolean) {
    for (let i = 0; i < 300; i++) {
      const p = await (await t.api(`/api/v1/models/pulls/${id}`)).json();
      if (done(p)) return p;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`pull ${id} did not finish`);
  }

  it('pulls a model in the background: polled to success, progress on the events stream, then in place', async () => {
    const events = await openSse(`${t.url}/api/v1/events`);
    const started = await t.api('/api/v1/models/pull', { method: 'POST', json: { model: `hf:${REPO}:q8_0` } });
    expect(started.status).toBe(202);
    const pull = await started.json();
    expect(pull).toMatchObject({ object: 'model.pull', model: `hf:${REPO}:Q8_0`, source: 'hf', status: 'running', id: expect.stringMatching(/^pull-[0-9a-f]{24}$/) });

    const done = await until(pull.id, (p) => p.status !== 'running');
    expect(done).toMatchObject({ status: 'succeeded', bytes: gguf.length, total: gguf.length, downloaded: true, error: null, finished_at: expect.any(Number) });
    expect((await stat(done.local_path)).size).toBe(gguf.length);

    const last = await events.waitFor((m) => m.event === 'model.pull' && JSON.parse(m.data).status === 'succeeded');
    expect(JSON.parse(last.data)).toMatchObject({ id: pull.id, bytes: gguf.length, total: gguf.length, local_path: done.local_path });
    expect(events.messages.some((m) => m.event === 'model.pull' && JSON.parse(m.data).status === 'running')).toBe(true);
    events.drop();

    // Asked again: already here, nothing fetched from the hub.
    hub.requests.length = 0;
    const again = await until((await (await t.api('/api/v1/models/pull', { method: 'POST', json: { model: `hf:${REPO}:Q8_0` } })).json()).id, (p) => p.status !== 'running');
    expect(again).toMatchObject({ status: 'succeeded', downloaded: false, local_path: done.local_path });
    expect(hub.requests).toEqual([]);
  });

  it('reports a failed pull with its code and message, and refuses what is not a pullable reference', async () => {
    const pull = await (await t.api('/api/v1/models/pull', { method: 'POST', json: { model: `hf:${REPO}:Q5_K_S` } })).json();
    const failed = await until(pull.id, (p) => p.status !== 'running');
    expect(failed).toMatchObject({ status: 'failed', local_path: null, error: { code: 'quant_not_found', message: expect.stringContaining('Quants in the repository: Q8_0, Q4_K_M') } });

    const ollama = await until((await (await t.api('/api/v1/models/pull', { method: 'POST', json: { model: 'ollama:llama3.2:1b' } })).json()).id, (p) => p.status !== 'running');
    expect(ollama.error).toMatchObject({ code: 'ollama_not_found', message: expect.stringContaining('ollama pull llama3.2:1b') });

    for (const model of ['nodeai-tiny', 'hf:only-owner', '']) {
      const res = await t.api('/api/v1/models/pull', { method: 'POST', json: { model } });
      expect(res.status).toBe(400);
      expect((await res.json()).error).toMatchObject({ param: 'model' });
    }
    const missing = await t.api('/api/v1/models/pulls/pull-000000000000000000000000');
    expect(missing.status).toBe(404);
  });

  it('shares one running pull between two requests for the same model', async () => {
    hub.stallAfterBytes = 1000;
    const a = await (await t.api('/api/v1/models/pull', { method: 'POST', json: { model: `hf:${REPO}:Q4_K_M` } })).json();
    const b = await (await t.api('/api/v1/models/pull', { method: 'POST', json: { model: `hf:${REPO}:q4_k_m` } })).json();
    expect(b.id).toBe(a.id);
    expect(b.status).toBe('running');
  });

  it('/v1/chat/completions chats with an hf: model, and a hub refusal keeps its code and a fitting status', async () => {
    const ok = await t.api('/v1/chat/completions', { method: 'POST', json: { model: `hf:${REPO}:Q8_0`, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 } });
    expect(ok.status).toBe(200);
    expect((await ok.json()).choices[0].message).toMatchObject({ role: 'assistant', content: expect.any(String) });

    const wrong = await t.api('/v1/chat/completions', { method: 'POST', json: { model: `hf:${REPO}:Q3_K_S`, messages: [{ role: 'user', content: 'Hi' }] } });
    expect(wrong.status).toBe(404);
    expect((await wrong.json()).error).toMatchObject({ code: 'quant_not_found', message: expect.stringContaining('Quants in the repository') });
  });

  it('serves the catalogue in the shape the canvas reads', async () => {
    const res = await t.api('/api/v1/models/catalog');
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.object).toBe('list');
    expect(body.data.length).toBeGreaterThanOrEqual(11);
    for (const m of body.data) {
      expect(Object.keys(m).sort()).toEqual(
        ['architecture', 'benchmark', 'context_length', 'default_quant', 'downloaded', 'est_peak_rss_mb', 'est_train_tok_s', 'family', 'files', 'id', 'license', 'local_path', 'name', 'parameters', 'uri'].sort(),
      );
      expect(m.files.find((f: { quant: string }) => f.quant === m.default_quant)?.uri).toBe(m.uri);
      for (const f of m.files) expect(Object.keys(f).sort(), `${m.id} ${f.quant}`).toEqual(['bytes', 'bytes_source', 'quant', 'uri']);
      for (const f of m.files) expect(['hub', 'computed']).toContain(f.bytes_source);
      expect(m.uri).toMatch(/^hf:[\w.-]+\/[\w.-]+:[A-Z0-9_]+$/);
    }
    const qwen = BENCHMARK_FIGURES['qwen2.5-0.5b-instruct'];
    expect(body.data.find((m: { id: string }) => m.id === 'qwen2.5-0.5b-instruct')).toMatchObject({ architecture: 'qwen2', license: 'apache-2.0', downloaded: false, local_path: null, est_train_tok_s: qwen?.est_train_tok_s ?? null, est_peak_rss_mb: qwen?.est_peak_rss_mb ?? null, benchmark: qwen?.benchmark ?? null });
    // A model no benchmark config has the shapes of has no figures.
    expect(body.data.find((m: { id: string }) => m.id === 'gemma-3-270m-it')).toMatchObject({ est_train_tok_s: null, est_peak_rss_mb: null, benchmark: null });
  });
});
