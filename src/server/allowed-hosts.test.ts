// DNS rebinding: a request naming another Host is refused, through the real server.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostName, isHostAllowed } from './allowed-hosts.ts';
import { startServer } from './start.ts';
import { startTestServer, TEST_TOKEN, type TestServer } from './testing.ts';
import { tempDir } from '../store/testing.ts';

const BIN = new URL('../../bin/nodeai.js', import.meta.url).pathname;

/** `nodeai serve ARGS` as a user starts it: its output until it says whom it answers to, or exits. */
async function serveOutput(args: string[]): Promise<{ code: number | null; out: string }> {
  const dataDir = tempDir('nodeai-hosts-');
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--no-worker', ...args], { env: { ...process.env, NODEAI_DATA_DIR: dataDir, NODEAI_API_TOKEN: TEST_TOKEN }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise<{ code: number | null; out: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve neither started nor exited: ${out}`)), 30_000);
    const read = (d: Buffer) => {
      out += d;
      // Started: stopped here, and reported once it has exited (code null).
      if (/Answering to Host: .*\n/.test(out)) child.kill('SIGKILL');
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  }).finally(() => rmSync(dataDir, { recursive: true, force: true }));
}

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

  it('nodeai serve on 0.0.0.0 refuses to start without --allowed-host, and says whom it answers to once given', async () => {
    const refused = await serveOutput(['--host', '0.0.0.0']);
    expect(refused.code).not.toBe(0);
    expect(refused.code).not.toBeNull();
    expect(refused.out).toMatch(/--allowed-host NAME/);
    const started = await serveOutput(['--host', '0.0.0.0', '--allowed-host', 'nodeai.lan']);
    expect(started.out).toContain('Answering to Host: 127.0.0.1, localhost, [::1], nodeai.lan');
  });

  it('reads the name out of a Host header', () => {
    expect(hostName('Example.COM:80')).toBe('example.com');
    expect(hostName('[::1]:8787')).toBe('[::1]');
    expect(isHostAllowed(undefined, [])).toBe(false);
    expect(isHostAllowed('127.0.0.1.evil.example', [])).toBe(false);
  });
});
