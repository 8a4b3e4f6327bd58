// A job that fails because the disk is full leaves no partial checkpoint and no sidecar without
// its checkpoint. The disk is "full" for the real `nodeai worker` process through its file-size
// limit (ulimit -f): every write past it fails with EFBIG, as ENOSPC would.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRuntime, type Runtime } from '../server/runtime.ts';
import { tempDir, until } from '../store/testing.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'nodeai.js');
const JSONL = Array.from({ length: 12 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `What is ${i}+1?` }, { role: 'assistant', content: `${i + 1}.` }] })).join('\n');
// nodeai-tiny's checkpoint (weights and optimizer state) is ~11 MB; the database and job files stay far below 3 MB.
const FILE_SIZE_LIMIT_BLOCKS = 6144; // of 512 bytes: 3 MiB

/** Every file under `dir`, relative to it. */
function listAll(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? listAll(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]));
}

describe('a full disk during training', () => {
  let dataDir: string;
  let runtime: Runtime;
  beforeAll(async () => {
    dataDir = tempDir('nodeai-fulldisk-');
    runtime = await createRuntime({ dataDir, databaseUrl: '', worker: false, resumePollMs: 100 });
  });
  afterAll(async () => {
    await runtime?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('fails the job and leaves no partial checkpoint or orphan sidecar', { timeout: 120_000 }, async () => {
    const { runId } = await runtime.engine.startRun({
      name: 'full disk',
      nodes: [
        { id: 'data', type: 'data_loader', config: { text: JSONL } },
        { id: 'ft', type: 'finetune', config: { epochs: 1, model_name: 'full' } },
      ],
      edges: [{ source: 'data', target: 'ft' }],
    });
    const waiting = await until(() => runtime.engine.getRun(runId), { ok: (r) => r.status === 'waiting', what: 'the run to wait' });
    const jobId = waiting.waiting!.jobId;
    const child = spawn('/bin/sh', ['-c', `ulimit -f ${FILE_SIZE_LIMIT_BLOCKS}; exec "$0" "$@"`, process.execPath, BIN, 'worker', '--data-dir', dataDir, '--threads', '1'], {
      env: { ...process.env, DATABASE_URL: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    try {
      const job = await until(() => runtime.jobs.get(jobId), { ok: (j) => j.status === 'failed' || j.status === 'succeeded', ms: 100_000, every: 200, what: `the job to end; worker said: ${output}` });
      expect(job.status).toBe('failed');
      expect(job.error?.message).toMatch(/EFBIG|too large|no space/i);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('close', resolve));
    }
    const files = listAll(join(dataDir, 'jobs', jobId));
    expect(files.filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const sidecars = files.filter((f) => /\.json$/.test(f) && f.includes('checkpoint'));
    for (const sidecar of sidecars) expect(files, `${sidecar} without its checkpoint`).toContain(sidecar.replace(/\.json$/, '.ckpt'));
    // The file-size limit really was what the checkpoint met.
    expect(files.some((f) => f.endsWith('.ckpt'))).toBe(false);
  });
});
