// A secret too short to mask safely (issue: a secret "e" turned "Hello there" into
// "H[REDACTED]llo th[REDACTED]r[REDACTED]") is refused when stored; one stored before still works
// but is never searched for; keys of JSON objects are never rewritten.
import { createCipheriv, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { run as secretsCli } from '../../cli/secrets.ts';
import { loadSecretKey } from '../../store/index.ts';
import { until } from '../../store/testing.ts';
import { startTestServer, type TestServer } from '../testing.ts';

const LONG_SECRET = 'sk-long-secret-value-123';

describe('redaction', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t?.close());

  /** Writes a secret as an older NodeAI, which took values of any length, stored it. */
  async function storeAsOlderVersion(name: string, value: string) {
    const { key, version } = loadSecretKey(t.dataDir, undefined);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    cipher.setAAD(Buffer.from(`nodeai-secret:${name}`));
    const ciphertext = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
    const now = Date.now();
    await t.store.db
      .insertInto('secrets')
      .values({ name, ciphertext: ciphertext.toString('base64'), iv: iv.toString('base64'), auth_tag: cipher.getAuthTag().toString('base64'), key_version: version, created_at: now, updated_at: now, allowed_hosts_json: null })
      .execute();
  }

  it('refuses to store a secret too short to mask, saying the minimum', async () => {
    const res = await t.api('/api/v1/secrets', { method: 'POST', json: { name: 'SHORT', value: 'e' } });
    expect(res.status).toBe(400);
    const { error } = await res.json();
    expect(error).toMatchObject({ code: 'invalid_input', param: 'value' });
    expect(error.message).toMatch(/is 1 bytes; the minimum is 8/);
  });

  it('refuses a value that is not well-formed text (a lone UTF-16 surrogate), which it could neither store as given nor mask', async () => {
    const res = await t.api('/api/v1/secrets', { method: 'POST', body: '{"name":"BROKEN","value":"sk-half-a-pair-\\udbd5-0123"}', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect((await res.json()).error).toMatchObject({ code: 'invalid_input', param: 'value', message: expect.stringMatching(/not well-formed text.*character 16/) });
    expect((await (await t.api('/api/v1/secrets')).json()).data.map((s: { name: string }) => s.name)).not.toContain('BROKEN');
  });

  it('keeps stored runs and keys intact while masking long secrets in values', async () => {
    await storeAsOlderVersion('SHORT', 'e');
    expect((await t.api('/api/v1/secrets', { method: 'POST', json: { name: 'LONG', value: LONG_SECRET } })).status).toBe(201);
    // As a server start does: every secret is read once so its value is known to the redactor.
    await t.store.secrets.primeRedactor();
    expect(await t.store.secrets.get('SHORT')).toBe('e');

    const value = { greeting: 'Hello there', [LONG_SECRET]: 'a key, not a value', echoed: `the key is ${LONG_SECRET}` };
    const workflow = { name: 'Hello there', nodes: [{ id: 'c', type: 'test_constant', config: { value } }], edges: [] };
    const { id } = await (await t.api('/api/v1/runs', { method: 'POST', json: { workflow } })).json();
    const run = await until(async () => {
      const r = await (await t.api(`/api/v1/runs/${id}`)).json();
      return r.status === 'succeeded' ? r : undefined;
    });
    expect(run.workflow_name).toBe('Hello there');
    expect(run.workflow.name).toBe('Hello there');
    expect(run.nodes[0].outputs.data).toEqual({ greeting: 'Hello there', [LONG_SECRET]: 'a key, not a value', echoed: 'the key is [REDACTED]' });
    expect(run.workflow.nodes[0].config.value.greeting).toBe('Hello there');
  });

  it('marks a short secret in the listings', async () => {
    const listed = (await (await t.api('/api/v1/secrets')).json()).data;
    expect(listed).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'SHORT', short: true }), expect.objectContaining({ name: 'LONG', short: false })]));
    const lines: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));
    try {
      expect(await secretsCli(['list', '--data-dir', t.dataDir])).toBe(0);
    } finally {
      log.mockRestore();
    }
    const text = lines.join('\n');
    expect(text).toMatch(/SHORT \(short!\)/);
    expect(text).not.toMatch(/LONG \(short!\)/);
    expect(text).toMatch(/too short to be masked.*at least 8 bytes/);
  });
});
