// A vault key goes only where it may: its provider's official host and the hosts allowed for it.
// A loopback listener records the headers a Chat node with a foreign base_url sends.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Engine } from '../../engine/index.ts';
import { createNodeRegistry, createNodeServices } from '../../nodes/index.ts';
import { startFakeServer, type FakeServer } from '../../providers/testing.ts';
import { until } from '../../store/testing.ts';
import { startTestServer, type TestServer } from '../testing.ts';

const VAULT_KEY = 'sk-vault-key-0123456789abcdef';
const ENV_KEY = 'sk-from-the-environment-0123456789';
const NODE_KEY = 'sk-typed-into-the-node-0123456789';
const completion = { id: 'c', object: 'chat.completion', created: 0, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } };
const anthropicReply = { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-test', content: [{ type: 'text', text: 'hi' }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 1, output_tokens: 1 } };

describe('vault keys bound to hosts', () => {
  let t: TestServer;
  let engine: Engine;
  let listener: FakeServer;
  const savedEnv = { openai: process.env.OPENAI_API_KEY, anthropic: process.env.ANTHROPIC_API_KEY };

  beforeAll(async () => {
    delete process.env.OPENAI_API_KEY;
    delete process.env.ANTHROPIC_API_KEY;
    listener = await startFakeServer((req) => ({ json: req.path.endsWith('/messages') ? anthropicReply : completion }));
    t = await startTestServer({
      wire: (store) => {
        engine = new Engine({ store, registry: createNodeRegistry(), services: { nodeai: createNodeServices(store) } });
        return { engine };
      },
    });
  });
  afterAll(async () => {
    await t?.close();
    engine?.close();
    await listener?.close();
    if (savedEnv.openai !== undefined) process.env.OPENAI_API_KEY = savedEnv.openai;
    if (savedEnv.anthropic !== undefined) process.env.ANTHROPIC_API_KEY = savedEnv.anthropic;
  });
  beforeEach(() => {
    listener.requests.length = 0;
  });

  /** Runs one Chat node through /api/v1 and returns the finished run. */
  async function chat(config: Record<string, unknown>) {
    const workflow = { name: 'keys', nodes: [{ id: 'chat', type: 'chat', config: { prompt: 'Hi', ...config } }], edges: [] };
    const { id } = await (await t.api('/api/v1/runs', { method: 'POST', json: { workflow } })).json();
    return until(async () => {
      const run = await (await t.api(`/api/v1/runs/${id}`)).json();
      return run.status === 'failed' || run.status === 'succeeded' ? run : undefined;
    });
  }
  const seenKeys = () => listener.requests.map((r) => r.headers.authorization ?? r.headers['x-api-key'] ?? null);
  const host = () => new URL(listener.url).host;

  it('sends no key from the environment to a base_url other than its provider\'s', async () => {
    process.env.OPENAI_API_KEY = ENV_KEY;
    try {
      const run = await chat({ provider: 'openai', base_url: `${listener.url}/v1` });
      expect(run.nodes[0].error).toMatchObject({ code: 'api_key_not_allowed', message: expect.stringContaining(`The OPENAI_API_KEY from the environment is not sent to ${host()}`) });
      expect(listener.requests).toEqual([]);
    } finally {
      delete process.env.OPENAI_API_KEY;
    }
  });

  it('sends no vault key to a base_url that was not allowed for it, and says why', async () => {
    expect((await t.api('/api/v1/secrets', { method: 'POST', json: { name: 'OPENAI_API_KEY', value: VAULT_KEY } })).status).toBe(201);
    const run = await chat({ provider: 'openai', base_url: `${listener.url}/v1` });
    expect(run.status).toBe('failed');
    const error = run.nodes[0].error;
    expect(error.code).toBe('api_key_not_allowed');
    expect(error.message).toContain(`not sent to ${host()}`);
    expect(error.message).toContain('api.openai.com');
    expect(error.message).toContain(`nodeai secrets set OPENAI_API_KEY --allow-host ${host()}`);
    expect(listener.requests).toEqual([]);
  });

  it('sends a key typed into the node wherever its base_url says', async () => {
    const run = await chat({ provider: 'openai', base_url: `${listener.url}/v1`, api_key: NODE_KEY });
    expect(run.status).toBe('succeeded');
    expect(seenKeys()).toEqual([`Bearer ${NODE_KEY}`]);
  });

  it("binds a vault key picked by reference ($secret:NAME, as the canvas's key picker stores it) the same way", async () => {
    const picked = await chat({ provider: 'openai', base_url: `${listener.url}/v1`, api_key: '$secret:OPENAI_API_KEY' });
    expect(picked.status).toBe('failed');
    expect(picked.nodes[0].error).toMatchObject({ code: 'api_key_not_allowed', message: expect.stringContaining(`nodeai secrets set OPENAI_API_KEY --allow-host ${host()}`) });
    // Under another name too: a stored key is bound to the provider's own host whatever it is called.
    expect((await t.api('/api/v1/secrets', { method: 'POST', json: { name: 'TEAM_KEY', value: VAULT_KEY } })).status).toBe(201);
    const renamed = await chat({ provider: 'openai', base_url: `${listener.url}/v1`, api_key: '$secret:TEAM_KEY' });
    expect(renamed.nodes[0].error).toMatchObject({ code: 'api_key_not_allowed', message: expect.stringContaining(`nodeai secrets set TEAM_KEY --allow-host ${host()}`) });
    expect(listener.requests).toEqual([]);
    // A reference outside a key setting is plain text: it never reads the vault.
    const prompt = await chat({ provider: 'openai', base_url: `${listener.url}/v1`, api_key: NODE_KEY, prompt: '$secret:OPENAI_API_KEY' });
    expect(prompt.status).toBe('succeeded');
    expect(listener.requests.map((r) => r.body).join('\n')).not.toContain(VAULT_KEY);
    const missing = await chat({ provider: 'openai', api_key: '$secret:NO_SUCH_KEY' });
    expect(missing.nodes[0].error).toMatchObject({ code: 'api_key_missing', message: expect.stringContaining('NO_SUCH_KEY') });
    await t.api('/api/v1/secrets/TEAM_KEY', { method: 'DELETE' });
  });

  it("sends a key typed into a saved workflow only from that workflow's runs, not from another workflow that names it", async () => {
    const saved = await (await t.api('/api/v1/workflows', { method: 'POST', json: { name: 'typed', nodes: [{ id: 'chat', type: 'chat', config: { prompt: 'Hi', provider: 'openai', base_url: `${listener.url}/v1`, api_key: NODE_KEY } }], edges: [] } })).json();
    const sealed = saved.definition.nodes[0].config.api_key as string;
    expect(sealed).toMatch(/^\$secret:wf\./);
    const { id } = await (await t.api(`/api/v1/workflows/${saved.id}/run`, { method: 'POST' })).json();
    const own = await until(async () => {
      const run = await (await t.api(`/api/v1/runs/${id}`)).json();
      return run.status === 'failed' || run.status === 'succeeded' ? run : undefined;
    });
    expect(own.status).toBe('succeeded');
    expect(seenKeys()).toEqual([`Bearer ${NODE_KEY}`]);
    // Named from a workflow of someone else's, with a base_url of theirs: a stored key like any other.
    const other = await chat({ provider: 'openai', base_url: `http://127.0.0.1:1/v1`, api_key: sealed });
    expect(other.nodes[0].error).toMatchObject({ code: 'api_key_not_allowed' });
    expect(seenKeys()).toHaveLength(1);
    await t.api(`/api/v1/workflows/${saved.id}`, { method: 'DELETE' });
  });

  it('sends the vault key to a host allowed for it when it was stored (API), and lists the hosts', async () => {
    const put = await t.api('/api/v1/secrets/OPENAI_API_KEY', { method: 'PUT', json: { value: VAULT_KEY, allowed_hosts: [host()] } });
    expect(put.status).toBe(200);
    expect((await put.json()).allowed_hosts).toEqual([host()]);
    const run = await chat({ provider: 'openai', base_url: `${listener.url}/v1` });
    expect(run.status).toBe('succeeded');
    expect(seenKeys()).toEqual([`Bearer ${VAULT_KEY}`]);
    // Another port of the same address is another host.
    const other = await chat({ provider: 'openai', base_url: `http://127.0.0.1:1/v1` });
    expect(other.nodes[0].error.code).toBe('api_key_not_allowed');
    // A value-only update keeps the hosts.
    await t.api('/api/v1/secrets/OPENAI_API_KEY', { method: 'PUT', json: { value: VAULT_KEY } });
    const listed = await (await t.api('/api/v1/secrets')).json();
    expect(listed.data).toEqual([expect.objectContaining({ name: 'OPENAI_API_KEY', allowed_hosts: [host()] })]);
  });

  it('binds Anthropic keys the same way', async () => {
    await t.api('/api/v1/secrets', { method: 'POST', json: { name: 'ANTHROPIC_API_KEY', value: VAULT_KEY } });
    const refused = await chat({ provider: 'anthropic', base_url: listener.url, model: 'claude-test' });
    expect(refused.nodes[0].error).toMatchObject({ code: 'api_key_not_allowed', message: expect.stringContaining('api.anthropic.com') });
    expect(listener.requests).toEqual([]);
    await t.api('/api/v1/secrets/ANTHROPIC_API_KEY', { method: 'PUT', json: { value: VAULT_KEY, allowed_hosts: ['127.0.0.1'] } });
    expect((await chat({ provider: 'anthropic', base_url: listener.url, model: 'claude-test' })).status).toBe('succeeded');
    expect(listener.requests).toHaveLength(1);
  });

  it('refuses an allowed host that is not a host, naming the field', async () => {
    for (const bad of ['evil.example/path', 'a b', 'host:99999', '']) {
      const res = await t.api('/api/v1/secrets', { method: 'POST', json: { name: 'X_KEY', value: VAULT_KEY, allowed_hosts: [bad] } });
      expect(res.status, bad).toBe(400);
      expect((await res.json()).error).toMatchObject({ code: 'invalid_input', param: 'allowed_hosts' });
    }
  });
});
