// `nodeai serve` keeps its data directory private: created 0700 with 0600 files, and an existing
// one left readable by an older version tightened at start with a one-line notice.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir } from '../store/testing.ts';

const BIN = new URL('../../bin/nodeai.js', import.meta.url).pathname;
const TOKEN = 'private-dir-test-token-0123456789';
const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

async function serve(dataDir: string): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--no-worker'], { env: { ...process.env, NODEAI_DATA_DIR: dataDir, NODEAI_API_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 30_000);
    child.stdout!.on('data', (d) => {
      stdout += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
  });
  return { child, url, stderr: () => stderr };
}

describe('private data directory', () => {
  const dirs: string[] = [];
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) c.kill('SIGKILL');
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('creates everything private: the directory, the database with -wal/-shm, uploads and models', async () => {
    const dataDir = join(tempDir('nodeai-private-'), 'data');
    dirs.push(dataDir);
    const s = await serve(dataDir);
    children.push(s.child);
    const api = (path: string, init: RequestInit = {}) => fetch(s.url + path, { ...init, headers: { authorization: `Bearer ${TOKEN}`, ...(init.headers as Record<string, string>) } });
    const fd = new FormData();
    fd.set('file', new Blob(['{"messages":[]}\n']), 'a.jsonl');
    const file = (await (await api('/api/v1/files', { method: 'POST', body: fd })).json()) as { id: string };
    expect((await api('/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'nodeai-tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 1 }) })).status).toBe(200);

    expect(mode(dataDir)).toBe('700');
    for (const name of ['nodeai.db', 'nodeai.db-wal', 'nodeai.db-shm', 'secret.key']) expect(mode(join(dataDir, name)), name).toBe('600');
    for (const name of ['files', 'models']) expect(mode(join(dataDir, name)), name).toBe('700');
    expect(mode(join(dataDir, 'files', file.id))).toBe('600');
    for (const name of readdirSync(join(dataDir, 'models'))) expect(mode(join(dataDir, 'models', name)), name).toBe('600');
    expect(s.stderr()).not.toMatch(/private/);
  });

  it('tightens a readable data directory at start, with a one-line notice', async () => {
    const dataDir = tempDir('nodeai-private-');
    dirs.push(dataDir);
    chmodSync(dataDir, 0o755);
    mkdirSync(join(dataDir, 'jobs'), { mode: 0o755 });
    chmodSync(join(dataDir, 'jobs'), 0o755);
    writeFileSync(join(dataDir, 'nodeai.db'), '');
    chmodSync(join(dataDir, 'nodeai.db'), 0o644);
    const s = await serve(dataDir);
    children.push(s.child);
    const notices = s.stderr().split('\n').filter((l) => /private/.test(l));
    expect(notices).toEqual([expect.stringMatching(/^nodeai: made the data directory .* private \(mode 700; 600\/700 on (jobs, nodeai\.db|nodeai\.db, jobs)\): other users could read it\.$/)]);
    expect(mode(dataDir)).toBe('700');
    expect(mode(join(dataDir, 'jobs'))).toBe('700');
    expect(mode(join(dataDir, 'nodeai.db'))).toBe('600');
  });
});
