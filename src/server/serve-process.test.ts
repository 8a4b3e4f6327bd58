// `nodeai serve` as a user runs it: a real process, a real trainer, a shutdown in mid-training
// and a restart that resumes the job.
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { JobQueue } from '../jobs/index.ts';
import { createStore } from '../store/index.ts';
import { tempDir, until } from '../store/testing.ts';

const BIN = new URL('../../bin/nodeai.js', import.meta.url).pathname;
const example = (i: number) => ({ messages: [{ role: 'user', content: `What is ${i}+1?` }, { role: 'assistant', content: `${i + 1}.` }] });
const JSONL = Array.from({ length: 12 }, (_, i) => JSON.stringify(example(i))).join('\n') + '\n';

interface Serve {
  child: ChildProcess;
  url: string;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

async function serve(dataDir: string, args: string[] = []): Promise<Serve> {
  const env = { ...process.env, NODEAI_DATA_DIR: dataDir, NODEAI_API_TOKEN: '' };
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const s: Serve = { child, url: '', stdout: '', stderr: '', exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
  child.stderr!.on('data', (d) => (s.stderr += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${s.stderr}`)), 30_000);
    child.stdout!.on('data', (d) => {
      s.stdout += d;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(s.stdout);
      if (m && /API token/.test(s.stdout)) {
        s.url = m[1];
        clearTimeout(timer);
        resolve();
      }
    });
    void s.exited.then((code) => reject(new Error(`serve exited with ${code}: ${s.stderr}`)));
  });
  return s;
}

describe('nodeai serve (process)', () => {
  const dataDir = tempDir('nodeai-serve-');
  const running: Serve[] = [];
  afterAll(() => {
    for (const s of running) s.child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('prints a generated token once, enforces it, trains, shuts down gracefully mid-job and resumes it on restart', async () => {
    const first = await serve(dataDir);
    running.push(first);
    const token = /API token \(shown once[^)]*\): (\S+)/.exec(first.stdout)?.[1];
    expect(token).toBeDefined();
    expect(statSync(join(dataDir, 'api-token')).mode & 0o777).toBe(0o600);
    const api = (url: string, path: string, init: RequestInit = {}) => fetch(url + path, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) } });

    expect((await fetch(first.url + '/health')).status).toBe(200);
    expect((await fetch(first.url + '/api/v1/files')).status).toBe(401);

    const form = new FormData();
    form.set('purpose', 'fine-tune');
    form.set('file', new Blob([JSONL]), 'math.jsonl');
    const file = (await (await api(first.url, '/v1/files', { method: 'POST', body: form })).json()) as { id: string };
    const created = await api(first.url, '/v1/fine_tuning/jobs', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'nodeai-tiny', training_file: file.id, hyperparameters: { n_epochs: 40, batch_size: 1 }, suffix: 'math', seed: 1 }),
    });
    const job = (await created.json()) as { id: string };
    expect(created.status).toBe(200);

    // Wait for training to be under way (a metrics event), then ask the server to stop.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const events = (await (await api(first.url, `/v1/fine_tuning/jobs/${job.id}/events?limit=100`)).json()) as { data: { type: string }[] };
      if (events.data.some((e) => e.type === 'metrics')) break;
      if (Date.now() > deadline) throw new Error('training never started: ' + first.stderr);
      await new Promise((r) => setTimeout(r, 200));
    }
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.stderr).toMatch(/SIGTERM: stopping/);

    const second = await serve(dataDir);
    running.push(second);
    expect(second.stdout).not.toContain(token);
    let status = '';
    let model: string | null = null;
    const end = Date.now() + 120_000;
    while (Date.now() < end) {
      const j = (await (await api(second.url, `/v1/fine_tuning/jobs/${job.id}`)).json()) as { status: string; fine_tuned_model: string | null };
      status = j.status;
      model = j.fine_tuned_model;
      if (['succeeded', 'failed', 'cancelled'].includes(status)) break;
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(status).toBe('succeeded');
    const events = (await (await api(second.url, `/v1/fine_tuning/jobs/${job.id}/events?limit=1000`)).json()) as { data: { message: string }[] };
    // The second process went on from the first one's checkpoint instead of starting over.
    expect(events.data.map((e) => e.message).join('\n')).toMatch(/Resuming from the checkpoint at step [1-9]\d*/);

    const chat = await api(second.url, '/v1/chat/completions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, messages: [{ role: 'user', content: 'What is 3+1?' }], max_tokens: 8, temperature: 0 }),
    });
    expect(chat.status).toBe(200);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 200_000);

  it('resumes a job after the server was killed outright in mid-training', async () => {
    const token = (await import('node:fs')).readFileSync(join(dataDir, 'api-token'), 'utf8').trim();
    const api = (url: string, path: string, init: RequestInit = {}) => fetch(url + path, { ...init, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...(init.headers as Record<string, string>) } });
    const first = await serve(dataDir);
    running.push(first);
    const files = (await (await api(first.url, '/v1/files')).json()) as { data: { id: string }[] };
    const job = (await (await api(first.url, '/v1/fine_tuning/jobs', { method: 'POST', body: JSON.stringify({ model: 'nodeai-tiny', training_file: files.data[0].id, hyperparameters: { n_epochs: 30, batch_size: 1 }, seed: 2 }) })).json()) as { id: string };
    const deadline = Date.now() + 60_000;
    for (;;) {
      const ckpts = (await (await api(first.url, `/api/v1/jobs/${job.id}/events?limit=1000`)).json()) as { data: { message: string }[] };
      if (ckpts.data.some((e) => /Checkpoint saved/.test(e.message))) break;
      if (Date.now() > deadline) throw new Error('no checkpoint: ' + first.stderr);
      await new Promise((r) => setTimeout(r, 100));
    }
    first.child.kill('SIGKILL');
    await first.exited;

    const second = await serve(dataDir);
    running.push(second);
    let status = '';
    const end = Date.now() + 120_000;
    while (Date.now() < end && !['succeeded', 'failed', 'cancelled'].includes(status)) {
      await new Promise((r) => setTimeout(r, 300));
      status = ((await (await api(second.url, `/v1/fine_tuning/jobs/${job.id}`)).json()) as { status: string }).status;
    }
    expect(status).toBe('succeeded');
    const events = (await (await api(second.url, `/api/v1/jobs/${job.id}/events?limit=2000`)).json()) as { data: { message: string }[] };
    expect(events.data.map((e) => e.message).join('\n')).toMatch(/Resuming from the checkpoint at step [1-9]\d*/);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 200_000);
});

describe('two nodeai serve processes on one data directory', () => {
  const dataDir = tempDir('nodeai-serve-two-');
  const running: Serve[] = [];
  afterAll(() => {
    for (const s of running) s.child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('the survivor takes over the job of the one killed with -9 and finishes it from its checkpoint', async () => {
    const a = await serve(dataDir);
    running.push(a);
    const b = await serve(dataDir);
    running.push(b);
    const token = (await import('node:fs')).readFileSync(join(dataDir, 'api-token'), 'utf8').trim();
    const api = (url: string, path: string, init: RequestInit = {}) => fetch(url + path, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string>) } });
    const form = new FormData();
    form.set('purpose', 'fine-tune');
    form.set('file', new Blob([JSONL]), 'math.jsonl');
    const file = (await (await api(a.url, '/v1/files', { method: 'POST', body: form })).json()) as { id: string };
    const job = (await (
      await api(a.url, '/v1/fine_tuning/jobs', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        // Six epochs of 12 steps, a checkpoint after each: the holder dies after the first, the survivor trains the other five.
        body: JSON.stringify({ model: 'nodeai-tiny', training_file: file.id, hyperparameters: { n_epochs: 6, batch_size: 1 }, seed: 4 }),
      })
    ).json()) as { id: string };

    // Whichever server claimed the job holds it; kill that one outright once it has a checkpoint.
    const store = await createStore({ dataDir, databaseUrl: '' });
    try {
      const queue = new JobQueue(store);
      await until(async () => (await queue.listCheckpoints(job.id)).data.length > 0, { ms: 60_000, every: 20, what: 'a checkpoint' });
      const holderPid = Number((await queue.getRow(job.id)).locked_by?.split(':')[1]);
      const [holder, survivor] = holderPid === a.child.pid ? [a, b] : [b, a];
      expect(holder.child.pid).toBe(holderPid);
      holder.child.kill('SIGKILL');
      await holder.exited;

      // Not a restart: the survivor, which was idle all along, notices and takes the job.
      const done = await until(() => queue.getRow(job.id), { ok: (r) => ['succeeded', 'failed', 'cancelled'].includes(r.status), ms: 150_000, every: 300, what: 'the job to end' });
      expect(done.status).toBe('succeeded');
      expect(Number(done.fencing_token)).toBe(2);
      expect(survivor.stderr).toMatch(/took back job\(s\) whose holder stopped, to resume from their checkpoints: ftjob-/);
      const events = (await queue.listEvents(job.id, { limit: 5000 })).data.map((e) => e.message);
      expect(events.join('\n')).toMatch(/Resuming from the checkpoint at step [1-9]\d*/);
      expect(events).toContain('Fine-tuning job resumed (attempt 2)');
      expect(await queue.models.list()).toHaveLength(1);
    } finally {
      await store.close();
    }
    const survivor = running.find((s) => s.child.exitCode === null && s.child.signalCode === null)!;
    survivor.child.kill('SIGTERM');
    expect(await survivor.exited).toBe(0);
  }, 240_000);
});
