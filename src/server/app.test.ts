import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLoopbackHost, loadApiToken, tokensEqual } from './auth.ts';
import { startServer } from './start.ts';
import { startTestServer, TEST_TOKEN, type TestServer } from './testing.ts';

describe('API token', () => {
  it('is generated once with mode 0600 and read back afterwards', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodeai-token-'));
    try {
      const first = loadApiToken(dir, undefined);
      expect(first.created).toBe(true);
      expect(first.token.length).toBeGreaterThan(30);
      expect(statSync(first.path!).mode & 0o777).toBe(0o600);
      const again = loadApiToken(dir, undefined);
      expect(again).toMatchObject({ token: first.token, created: false });
      expect(loadApiToken(dir, 'from-the-environment-123')).toMatchObject({ token: 'from-the-environment-123', source: 'env' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a token file others can read', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodeai-token-'));
    try {
      writeFileSync(join(dir, 'api-token'), 'nodeai-some-long-enough-token\n', { mode: 0o644 });
      expect(() => loadApiToken(dir, undefined)).toThrow(/chmod 600/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('compares tokens of any length', () => {
    expect(tokensEqual('abc', 'abc')).toBe(true);
    expect(tokensEqual('abc', 'abcd')).toBe(false);
    expect(tokensEqual('', 'abc')).toBe(false);
  });

  it('knows loopback hosts', () => {
    expect(['127.0.0.1', 'localhost', '::1', '[::1]', '127.1.2.3'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '::', '192.168.1.2', 'example.com'].some(isLoopbackHost)).toBe(false);
  });
});

describe('server basics', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ maxJsonBytes: 2048 });
  });
  afterAll(() => t.close());

  it('serves /health without a token', async () => {
    const res = await fetch(t.url + '/health');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('answers 401 without detail to a missing or wrong token', async () => {
    const missing = await fetch(t.url + '/api/v1/secrets');
    const wrong = await fetch(t.url + '/api/v1/secrets', { headers: { authorization: 'Bearer nope' } });
    const almost = await fetch(t.url + '/v1/models', { headers: { authorization: `Bearer ${TEST_TOKEN}x` } });
    for (const res of [missing, wrong, almost]) {
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: { code: 'unauthorized', message: 'Missing or invalid API token.', param: null, type: 'authentication_error' } });
    }
    expect((await t.api('/api/v1/secrets')).status).toBe(200);
  });

  it('answers unknown routes with a JSON 404', async () => {
    const res = await t.api('/api/v1/nothing-here');
    expect(res.status).toBe(404);
    expect((await res.json()).error.code).toBe('route_not_found');
  });

  it('rejects a malformed JSON body and a body that fails its schema, naming the field', async () => {
    const bad = await t.api('/api/v1/secrets', { method: 'POST', body: '{"name":', headers: { 'content-type': 'application/json' } });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.code).toBe('invalid_json');
    const wrong = await t.api('/api/v1/secrets', { method: 'POST', json: { name: 'A', value: 42 } });
    expect(wrong.status).toBe(400);
    const body = await wrong.json();
    expect(body.error).toMatchObject({ code: 'invalid_request', param: 'value' });
  });

  it('rejects a JSON body over the limit with 413', async () => {
    const res = await t.api('/api/v1/secrets', { method: 'POST', json: { name: 'BIG', value: 'x'.repeat(5000) } });
    expect(res.status).toBe(413);
    expect((await res.json()).error.code).toBe('request_too_large');
  });

  it('lists node types with JSON Schema settings', async () => {
    const res = await t.api('/api/v1/node-types');
    const body = await res.json();
    const count = body.data.find((d: { type: string }) => d.type === 'test_count');
    expect(count.configSchema).toMatchObject({ type: 'object', properties: { times: { type: 'integer' } } });
  });

  it('refuses to listen beyond loopback without a token', async () => {
    await expect(startServer({ store: t.store, engine: t.engine, token: null, host: '0.0.0.0', port: 0 })).rejects.toThrow(/without an API token/);
  });
});
