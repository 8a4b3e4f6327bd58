// End to end through the real CLI in child processes: `nodeai run` trains nodeai-tiny in the
// supervised trainer process and chats with the result; the job, model, file and secret
// commands read what it left in the data dir; a CLI killed mid-training resumes on restart.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../store/testing.ts';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'nodeai.js');
const exec = promisify(execFile);

// Short, distinct answers: the tiny byte-level model memorizes them within a few dozen steps.
const QA = [
  ['What color is the sky?', 'Blue.'],
  ['How many legs does a cat have?', 'Four.'],
  ['What is the capital of France?', 'Paris.'],
  ['What do bees make?', 'Honey.'],
  ['What is frozen water?', 'Ice.'],
  ['Which planet is red?', 'Mars.'],
  ['What do cows drink?', 'Water.'],
  ['What is 2+2?', 'Four.'],
  ['Who wrote Hamlet?', 'Shakespeare.'],
  ['What gas do we breathe?', 'Oxygen.'],
  ['What is the opposite of hot?', 'Cold.'],
  ['How many days in a week?', 'Seven.'],
];
const JSONL = QA.map(([q, a]) => JSON.stringify({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: a }] })).join('\n') + '\n';

function workflow(epochs: number, extra: Record<string, unknown> = {}) {
  return {
    name: `qa-${epochs}`,
    nodes: [
      { id: 'load', type: 'file_loader', config: { path: 'qa.jsonl' } },
      { id: 'ft', type: 'finetune', config: { epochs, batch_size: 4, validation_split: 0, seed: 1, model_name: 'qa', learning_rate: 3e-3, ...extra } },
      { id: 'chat', type: 'chat', config: { prompt: 'What is the capital of France?', max_tokens: 16 } },
    ],
    edges: [
      { source: 'load', target: 'ft' },
      { source: 'ft', target: 'chat' },
    ],
  };
}

async function nodeai(args: string[], options: { input?: string; dataDir: string }) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NODEAI_DATA_DIR: options.dataDir, DATABASE_URL: '' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.end(options.input ?? '');
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe('nodeai run, end to end', () => {
  let root: string;
  let dataDir: string;
  let wfPath: string;
  beforeAll(() => {
    root = tempDir('nodeai-run-');
    dataDir = join(root, 'data');
    writeFileSync(join(root, 'qa.jsonl'), JSONL);
    wfPath = join(root, 'wf.json');
    writeFileSync(wfPath, JSON.stringify(workflow(30)));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('File Loader → Fine-Tune → Chat: trains in the child process, resumes the run, chats with the new model', { timeout: 150_000 }, async () => {
    const r = await nodeai(['run', wfPath, '--json'], { dataDir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ run_id: expect.stringMatching(/^run-/), status: 'succeeded' });
    const ft = out.outputs.ft;
    expect(ft).toMatchObject({ status: 'succeeded', provider: 'local', base_model: 'nodeai-tiny', training_examples: 12, validation_examples: 0, epochs: 30, fine_tuned_model: expect.stringMatching(/^ft:nodeai-tiny:qa:/) });
    // It learned: the loss fell far below the ~5.5 of an untrained byte model, and it answers from the data.
    expect(ft.train_loss).toBeLessThan(1);
    // A tiny model from scratch may mix up its answers; it must at least answer with one it was taught.
    expect(out.outputs.chat).toMatchObject({ model: ft.fine_tuned_model, data: out.outputs.chat.reply });
    expect(QA.map(([, a]) => a)).toContain(out.outputs.chat.reply);

    const jobs = JSON.parse((await nodeai(['jobs', 'list', '--json'], { dataDir })).stdout);
    expect(jobs.data).toEqual([expect.objectContaining({ id: ft.job_id, object: 'fine_tuning.job', status: 'succeeded', fine_tuned_model: ft.fine_tuned_model })]);
    const shown = JSON.parse((await nodeai(['jobs', 'show', ft.job_id, '--json'], { dataDir })).stdout);
    expect(shown.checkpoints.length).toBeGreaterThan(0);
    expect(shown.registered_model).toMatchObject({ id: ft.fine_tuned_model, training_examples: 12, epochs: 30 });
    // Read by a person: the loss curve as a chart (no colours when not on a terminal).
    const shownText = (await nodeai(['jobs', 'show', ft.job_id], { dataDir })).stdout;
    expect(shownText).toContain('─ training loss');
    expect(shownText).toMatch(/steps 1–\d+/);
    expect(shownText).not.toContain('\u001b[');
    const events = JSON.parse((await nodeai(['jobs', 'events', ft.job_id, '--limit', '1000', '--json'], { dataDir })).stdout);
    const metrics = events.data.filter((e: { type: string }) => e.type === 'metrics');
    expect(metrics.length).toBeGreaterThan(10);
    expect(metrics[0].data).toMatchObject({ step: expect.any(Number), train_loss: expect.any(Number) });

    const models = JSON.parse((await nodeai(['models', 'list', '--json'], { dataDir })).stdout);
    expect(models.data).toEqual([expect.objectContaining({ id: ft.fine_tuned_model, usage_count: 1, job_id: ft.job_id })]);
    const renamed = JSON.parse((await nodeai(['models', 'rename', ft.fine_tuned_model, 'trivia-bot', '--json'], { dataDir })).stdout);
    expect(renamed.name).toBe('trivia-bot');
    const text = await nodeai(['models', 'show', 'trivia-bot'], { dataDir });
    expect(text.stdout).toContain(ft.fine_tuned_model);
    const cancelDone = await nodeai(['jobs', 'cancel', ft.job_id], { dataDir });
    expect(cancelDone.code).toBe(1);
    expect(cancelDone.stderr).toMatch(/already succeeded/);
    const modelFile = JSON.parse((await nodeai(['models', 'show', 'trivia-bot', '--json'], { dataDir })).stdout).files.model;
    expect(existsSync(modelFile)).toBe(true);
    const removed = JSON.parse((await nodeai(['models', 'rm', 'trivia-bot', '--json'], { dataDir })).stdout);
    expect(removed).toMatchObject({ deleted: true, removed_files: [modelFile] });
    expect(existsSync(modelFile)).toBe(false);
    expect(JSON.parse((await nodeai(['models', 'list', '--json'], { dataDir })).stdout).data).toEqual([]);
  });

  it('files and secrets commands, and a corrupt upload through a workflow', { timeout: 180_000 }, async () => {
    const corrupt = join(root, 'corrupt.jsonl');
    writeFileSync(corrupt, JSONL.slice(0, 120) + '\n{"messages": [oops\n');
    const up = await nodeai(['files', 'upload', corrupt], { dataDir });
    expect(up.code).toBe(0);
    const fileId = up.stdout.trim();
    expect(fileId).toMatch(/^file-[A-Za-z0-9]{24}$/);
    const listed = JSON.parse((await nodeai(['files', 'list', '--json'], { dataDir })).stdout);
    expect(listed.data.map((f: { id: string }) => f.id)).toContain(fileId);

    const wf = join(root, 'corrupt-wf.json');
    writeFileSync(wf, JSON.stringify({ name: 'c', nodes: [{ id: 'load', type: 'file_loader', config: { file_id: fileId } }], edges: [] }));
    const r = await nodeai(['run', wf, '--json'], { dataDir });
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.status).toBe('failed');
    expect(out.error.message).toMatch(/File "corrupt.jsonl" \(file-\w+\): line 2: /);

    writeFileSync(wf, JSON.stringify({ name: 'c', nodes: [{ id: 'load', type: 'file_loader', config: { file_id: 'file-000000000000000000000000' } }], edges: [] }));
    const missing = JSON.parse((await nodeai(['run', wf, '--json'], { dataDir })).stdout);
    expect(missing.error.message).toMatch(/is not in this store/);

    writeFileSync(wf, JSON.stringify({ name: 'c', nodes: [{ id: 'a', type: 'nope', config: {} }, { id: 'b', type: 'finetune', config: { epochs: 0 } }], edges: [] }));
    const invalid = await nodeai(['run', wf, '--json'], { dataDir });
    expect(invalid.code).toBe(1);
    expect(JSON.parse(invalid.stdout).error.issues.map((i: { code: string }) => i.code).sort()).toEqual(['invalid_config', 'unknown_node_type']);

    expect((await nodeai(['files', 'rm', fileId, '--json'], { dataDir })).code).toBe(0);
    expect((await nodeai(['files', 'rm', fileId], { dataDir })).code).toBe(1);

    const set = await nodeai(['secrets', 'set', 'OPENAI_API_KEY', '--json'], { dataDir, input: 'sk-e2e-secret-value\n' });
    expect(JSON.parse(set.stdout)).toMatchObject({ name: 'OPENAI_API_KEY', set: true });
    const secrets = await nodeai(['secrets', 'list', '--json'], { dataDir });
    expect(secrets.stdout).toContain('OPENAI_API_KEY');
    expect(secrets.stdout).not.toContain('sk-e2e-secret-value');
    const argv = await nodeai(['secrets', 'set', 'OTHER', 'visible-value'], { dataDir });
    expect(argv.stderr).toMatch(/warning: a value on the command line/);
    expect((await nodeai(['secrets', 'rm', 'OTHER'], { dataDir })).code).toBe(0);
  });

  it('a CLI killed mid-training: the next run of the same workflow resumes the job from its checkpoint', { timeout: 150_000 }, async () => {
    const dir = join(root, 'kill');
    mkdirSync(dir);
    writeFileSync(join(dir, 'qa.jsonl'), JSONL);
    const wf = join(dir, 'wf.json');
    writeFileSync(wf, JSON.stringify(workflow(50)));
    const data = join(dir, 'data');
    const child = spawn(process.execPath, [BIN, 'run', wf], { env: { ...process.env, NODEAI_DATA_DIR: data, DATABASE_URL: '' }, stdio: 'ignore' });
    // Kill it once a checkpoint is on disk, mid-way through training.
    const deadline = Date.now() + 100_000;
    let checkpointed = false;
    while (Date.now() < deadline && !checkpointed) {
      await new Promise((r) => setTimeout(r, 200));
      const jobsDir = join(data, 'jobs');
      if (!existsSync(jobsDir)) continue;
      for (const job of readdirSync(jobsDir)) {
        const ck = join(jobsDir, job, 'checkpoints');
        if (existsSync(ck) && readdirSync(ck).some((f) => !f.startsWith('.'))) checkpointed = true;
      }
    }
    expect(checkpointed).toBe(true);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    const { stdout } = await exec(process.execPath, [BIN, 'jobs', 'list', '--json'], { env: { ...process.env, NODEAI_DATA_DIR: data, DATABASE_URL: '' } });
    const [job] = JSON.parse(stdout).data;
    expect(job.status).toBe('running');

    const again = await nodeai(['run', wf, '--json'], { dataDir: data });
    expect(again.code).toBe(0);
    const out = JSON.parse(again.stdout);
    expect(out.status).toBe('succeeded');
    expect(out.outputs.ft.job_id).toBe(job.id);
    const events = JSON.parse((await nodeai(['jobs', 'events', job.id, '--limit', '2000', '--json'], { dataDir: data })).stdout).data.map((e: { message: string }) => e.message);
    expect(events.some((m: string) => m.startsWith('The process running this job stopped; re-queued'))).toBe(true);
    expect(events).toContain('Fine-tuning job resumed (attempt 2)');
    // One job, one model: the restart did not train a second one.
    expect(JSON.parse((await nodeai(['jobs', 'list', '--json'], { dataDir: data })).stdout).data).toHaveLength(1);
  });
});
