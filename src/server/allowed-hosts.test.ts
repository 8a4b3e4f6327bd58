// DNS rebinding: a request naming another Host is refused, through the real server.
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostName, isHostAllowed } from './allowed-hosts.ts';
import { startServer } from './start.ts';
import { startTestServer, TEST_TOKEN, type TestServer } from './testing.ts';

/** GET with a chosen Host header (fetch does not let a caller set it). */
function getWithHost(url: string, host: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host, authorization: `Bearer ${TEST_TOKEN}` } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : null }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('Host check', () => {
  let t: TestServer;
  let named: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
    named = await startTestServer({ allowedHosts: ['nodeai.lan'] });
  });
  afterAll(async () => {
    await t?.close();
    await named?.close();
  });

  it('answers to the loopback names with any port', async () => {
    for (const host of ['127.0.0.1', `127.0.0.1:${t.server.port}`, 'localhost:8787', 'LOCALHOST', '[::1]:8787']) {
      expect((await getWithHost(t.url + '/api/v1/secrets', host)).status, host).toBe(200);
    }
  });

  it('refuses another name with 403 host_not_allowed, saying what to do, on every route', async () => {
    for (const path of ['/health', '/api/v1/secrets', '/v1/models', '/']) {
      const res = await getWithHost(t.url + path, 'attacker.example');
      expect(res.status, path).toBe(403);
      expect(res.body.error).toMatchObject({ code: 'host_not_allowed', type: 'permission_error' });
      expect(res.body.error.message).toContain('--allowed-host attacker.example');
    }
    expect((await getWithHost(t.url + '/api/v1/secrets', 'nodeai.lan')).status).toBe(403);
  });

  it('answers to names given with allowedHosts, and only those', async () => {
    expect((await getWithHost(named.url + '/api/v1/secrets', 'nodeai.lan:8787')).status).toBe(200);
    expect((await getWithHost(named.url + '/api/v1/secrets', 'other.lan')).status).toBe(403);
  });

  it('will not listen beyond loopback without allowed hosts, and says so', async () => {
    await expect(startServer({ store: t.store, engine: t.engine, token: TEST_TOKEN, host: '0.0.0.0', port: 0 })).rejects.toThrow(/--allowed-host NAME.*--allowed-host '\*'/);
    const any = await startServer({ store: t.store, engine: t.engine, token: TEST_TOKEN, host: '0.0.0.0', port: 0, allowedHosts: ['*'], webDir: null });
    try {
      expect((await getWithHost(`http://127.0.0.1:${any.port}/api/v1/secrets`, 'anything.example')).status).toBe(200);
    } finally {
      await any.close(100);
    }
  });

  it('reads the name out of a Host header', () => {
    expect(hostName('Example.COM:80')).toBe('example.com');
    expect(hostName('[::1]:8787')).toBe('[::1]');
    expect(isHostAllowed(undefined, [])).toBe(false);
    expect(isHostAllowed('127.0.0.1.evil.example', [])).toBe(false);
  });
});
