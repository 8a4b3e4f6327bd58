// `nodeai serve` keeps its data directory private: created 0700 with 0600 files, and an existing
// one left readable by an older version tightened at start with a one-line notice.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir, until } from '../store/testing.ts';

const BIN = new URL('../../bin/nodeai.js', import.meta.url).pathname;
const TOKEN = 'private-dir-test-token-0123456789';
const TRAIN = Array.from({ length: 8 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `What is ${i}+1?` }, { role: 'assistant', content: `${i + 1}.` }] })).join('\n') + '\n';
const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);

/** Every folder and file under `dir` with its mode, as `path mode`, links left out. */
function modesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((name) => join(dir, name))
    .filter((path) => !lstatSync(path).isSymbolicLink())
    .map((path) => `${path.slice(dir.length + 1)} ${mode(path)}`);
}

async function serve(dataDir: string, args = ['--no-worker']): Promise<{ child: ChildProcess; url: string; stderr: () => string }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], { env: { ...process.env, NODEAI_DATA_DIR: dataDir, NODEAI_API_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'pipe'] });
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

  it('creates everything private: the directory, the database with -wal/-shm, uploads, job folders, checkpoints and models', async () => {
    const dataDir = join(tempDir('nodeai-private-'), 'data');
    dirs.push(dataDir);
    // With its worker: the trainer's child process writes the job folder, its checkpoint and the model.
    const s = await serve(dataDir, []);
    children.push(s.child);
    const api = (path: string, init: RequestInit = {}) => fetch(s.url + path, { ...init, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...(init.headers as Record<string, string>) } });
    const fd = new FormData();
    fd.set('file', new Blob([TRAIN]), 'a.jsonl');
    const file = (await (await fetch(s.url + '/api/v1/files', { method: 'POST', body: fd, headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { id: string };
    expect((await api('/v1/chat/completions', { method: 'POST', body: JSON.stringify({ model: 'nodeai-tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 1 }) })).status).toBe(200);
    const job = (await (await api('/v1/fine_tuning/jobs', { method: 'POST', body: JSON.stringify({ model: 'nodeai-tiny', training_file: file.id, hyperparameters: { n_epochs: 1, batch_size: 4 }, seed: 1 }) })).json()) as { id: string };
    const done = await until(async () => (await (await api(`/v1/fine_tuning/jobs/${job.id}`)).json()) as { status: string }, { ok: (j) => ['succeeded', 'failed', 'cancelled'].includes(j.status), ms: 90_000, every: 300, what: 'the job to end' });
    expect(done.status).toBe('succeeded');
    const checkpoints = (await (await api(`/v1/fine_tuning/jobs/${job.id}/checkpoints`)).json()) as { data: unknown[] };
    expect(checkpoints.data.length).toBeGreaterThan(0);
    const written = modesUnder(dataDir);
    expect(written.some((line) => line.startsWith(`jobs/${job.id}/`))).toBe(true);
    expect(written.filter((line) => !/ (600|700)$/.test(line))).toEqual([]);

    expect(mode(dataDir)).toBe('700');
    for (const name of ['nodeai.db', 'nodeai.db-wal', 'nodeai.db-shm', 'secret.key']) expect(mode(join(dataDir, name)), name).toBe('600');
    for (const name of ['files', 'models']) expect(mode(join(dataDir, name)), name).toBe('700');
    expect(mode(join(dataDir, 'files', file.id))).toBe('600');
    for (const name of readdirSync(join(dataDir, 'models'))) expect(mode(join(dataDir, 'models', name)), name).toBe('600');
    expect(s.stderr()).not.toMatch(/private/);
  });

  it('tightens a readable data directory at start, the database with its -wal/-shm included, with a one-line notice', async () => {
    const dataDir = tempDir('nodeai-private-');
    dirs.push(dataDir);
    // A database left with its -wal and -shm files (the server was killed), then opened up as an older version left it.
    const first = await serve(dataDir);
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('exit', resolve));
    const old = ['nodeai.db', 'nodeai.db-wal', 'nodeai.db-shm', 'jobs'];
    mkdirSync(join(dataDir, 'jobs'));
    chmodSync(dataDir, 0o755);
    for (const name of old) chmodSync(join(dataDir, name), name === 'jobs' ? 0o755 : 0o644);
    const s = await serve(dataDir);
    children.push(s.child);
    const notices = s.stderr().split('\n').filter((l) => /private/.test(l));
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatch(/^nodeai: made the data directory .* private \(mode 700; 600\/700 on .*\): other users could read it\.$/);
    for (const name of old) expect(notices[0]).toContain(name);
    expect(mode(dataDir)).toBe('700');
    expect(mode(join(dataDir, 'jobs'))).toBe('700');
    for (const name of old.filter((n) => n !== 'jobs')) expect(mode(join(dataDir, name)), name).toBe('600');
  });
});
