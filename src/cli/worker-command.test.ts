// `nodeai worker` in a child process beside a runtime without a worker (what `nodeai serve
// --no-worker` runs): the worker trains the job a run waits on, the runtime notices that the job
// ended and resumes the run; SIGTERM stops the worker cleanly.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../server/runtime.ts';
import { tempDir, until } from '../store/testing.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'nodeai.js');
const JSONL = Array.from({ length: 12 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `What is ${i}+1?` }, { role: 'assistant', content: `${i + 1}.` }] })).join('\n');

describe('nodeai worker', () => {
  let dataDir: string;
  let runtime: Runtime;
  beforeAll(async () => {
    dataDir = tempDir('nodeai-worker-');
    runtime = await createRuntime({ dataDir, databaseUrl: '', worker: false, resumePollMs: 100 });
  });
  afterAll(async () => {
    await runtime.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('trains the job that a run waits on; the run resumes in the other process; SIGTERM stops it', { timeout: 90_000 }, async () => {
    const { runId } = await runtime.engine.startRun({
      name: 'split',
      nodes: [
        { id: 'data', type: 'data_loader', config: { text: JSONL } },
        { id: 'ft', type: 'finetune', config: { epochs: 1, model_name: 'split' } },
      ],
      edges: [{ source: 'data', target: 'ft' }],
    });
    const waiting = await until(() => runtime.engine.getRun(runId), { ok: (r) => r.status === 'waiting', what: 'the run to wait' });
    const jobId = waiting.waiting!.jobId;
    // Nobody trains here: the job stays queued.
    await new Promise((r) => setTimeout(r, 300));
    expect((await runtime.jobs.get(jobId)).status).toBe('queued');

    const child = spawn(process.execPath, [BIN, 'worker', '--data-dir', dataDir, '--threads', '1'], {
      env: { ...process.env, DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      const run = await until(() => runtime.engine.getRun(runId), { ok: (r) => r.status === 'succeeded' || r.status === 'failed', ms: 60_000, every: 100, what: 'the run to finish' });
      expect(run.status).toBe('succeeded');
      const ft = run.nodes.find((n) => n.nodeId === 'ft')!.outputs!;
      expect(ft).toMatchObject({ job_id: jobId, status: 'succeeded', fine_tuned_model: expect.stringMatching(/^ft:nodeai-tiny:split:/) });
      expect((await runtime.jobs.get(jobId)).status).toBe('succeeded');
      expect(stdout).toMatch(/worker .* waiting for jobs/);
      expect(stdout).toContain(`${jobId}  Fine-tuning job started`);
      expect(stdout).toContain(`New model: ${ft.fine_tuned_model}`);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stderr).toBe('');
    expect(stdout).toMatch(/SIGTERM: stopping/);
  });

  it('refuses arguments it does not take', async () => {
    const child = spawn(process.execPath, [BIN, 'worker', '--threads', 'many', '--data-dir', dataDir], { env: { ...process.env, DATABASE_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    expect(await new Promise((resolve) => child.on('close', resolve))).toBe(2);
    expect(stderr).toMatch(/--threads must be a whole number/);
  });
});
