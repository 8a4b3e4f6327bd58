import { Readable } from 'node:stream';
import { writeFileSync, existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { describeEachDialect, type TestDb } from '../store/testing.ts';
import { OUTPUT_DIR_METADATA_KEY } from '../providers/fine-tune-request.ts';
import type { LocalTrainingRunner } from '../providers/local.ts';
import type { LocalFineTuneSpec } from '../trainer/supervised-job-types.ts';
import { fineTunedModelName, isInside, JobQueue, JobWorker, type JobFinished } from './index.ts';

const TRAIN = Array.from({ length: 12 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `q${i}` }, { role: 'assistant', content: `a${i}` }] })).join('\n') + '\n';

/** A stand-in trainer honouring the supervisor's contract: events, a model file in jobDir, abort. */
function fakeTrainer(opts: { hold?: boolean; holdFirst?: boolean; fail?: boolean } = {}) {
  const calls: { jobDir: string; resumedFrom?: boolean }[] = [];
  const run: LocalTrainingRunner = async (spec, { onEvent, signal }) => {
    calls.push({ jobDir: spec.jobDir, resumedFrom: existsSync(join(spec.jobDir, 'ckpt')) });
    const emit = onEvent ?? (() => {});
    emit({ type: 'status', status: 'running', message: 'Training started', time: Date.now() });
    for (let step = 1; step <= 3; step++) {
      emit({ type: 'metrics', time: Date.now(), step, total_steps: 3, epoch: 1, total_epochs: 2, train_loss: 3 - step * 0.5, valid_loss: 3.2 - step * 0.4, trained_tokens: step * 100, eta_seconds: 3 - step });
    }
    writeFileSync(join(spec.jobDir, 'ckpt'), 'x');
    emit({ type: 'checkpoint', time: Date.now(), step: 3, epoch: 1, path: join(spec.jobDir, 'ckpt'), bytes: 1 });
    if (opts.hold || (opts.holdFirst && calls.length === 1)) {
      await new Promise<void>((resolve) => (signal?.aborted ? resolve() : signal?.addEventListener('abort', () => resolve())));
      return { status: 'cancelled', trainedTokens: 300, steps: 3, resumed: false };
    }
    if (opts.fail) return { status: 'failed', trainedTokens: 0, steps: 0, resumed: false, error: { code: 'training_diverged', message: 'loss became NaN at step 2' } };
    const modelPath = join(spec.jobDir, 'model.gguf');
    writeFileSync(modelPath, 'GGUF');
    return { status: 'succeeded', modelPath, trainedTokens: 300, steps: 3, resumed: false, finalMetrics: { train_loss: 1.5, valid_loss: 1.9 } };
  };
  return { run, calls };
}

/** A pid that surely belonged to a process on this host that has exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
  return Number(r.stdout.toString());
}

describe('fineTunedModelName', () => {
  it('follows ft:<base>:<suffix>:<job part>', () => {
    expect(fineTunedModelName({ id: 'ftjob-AbCdEfGh12345678abcdefgh', base_model: 'nodeai-tiny', suffix: 'Support Bot' })).toBe('ft:nodeai-tiny:support-bot:AbCdEfGh');
    expect(fineTunedModelName({ id: 'ftjob-AbCdEfGh12345678abcdefgh', base_model: 'nodeai-tiny', suffix: null })).toBe('ft:nodeai-tiny::AbCdEfGh');
    // a GGUF base by its file name; a fine-tuned base by its own base
    expect(fineTunedModelName({ id: 'ftjob-AbCdEfGh12345678abcdefgh', base_model: '/models/SmolLM2-135M.gguf', suffix: 'x' })).toBe('ft:SmolLM2-135M:x:AbCdEfGh');
    expect(fineTunedModelName({ id: 'ftjob-AbCdEfGh12345678abcdefgh', base_model: 'ft:nodeai-tiny:support:12345678', suffix: 'more' })).toBe('ft:nodeai-tiny:more:AbCdEfGh');
    expect(fineTunedModelName({ id: 'ftjob-AbCdEfGh12345678abcdefgh', base_model: 'hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q8_0', suffix: 'faq' })).toBe('ft:Qwen2.5-0.5B-Instruct:faq:AbCdEfGh');
    expect(fineTunedModelName({ id: 'ftjob-AbCdEfGh12345678abcdefgh', base_model: 'hf:acme/models/sub/tiny.Q8_0.gguf', suffix: null })).toBe('ft:tiny.Q8_0::AbCdEfGh');
    expect(fineTunedModelName({ id: 'ftjob-AbCdEfGh12345678abcdefgh', base_model: 'ollama:qwen2.5:0.5b', suffix: null })).toBe('ft:qwen2.5-0.5b::AbCdEfGh');
  });
  it('isInside refuses paths outside the directory', () => {
    expect(isInside('/data', '/data/jobs/x/model.gguf')).toBe(true);
    expect(isInside('/data', '/data/../etc/passwd')).toBe(false);
    expect(isInside('/data', '/data')).toBe(false);
  });
});

describeEachDialect('job queue', (dialect) => {
  let t: TestDb;
  afterEach(async () => {
    await t?.cleanup();
  });

  async function setup() {
    t = await dialect.open();
    const queue = new JobQueue(t.store);
    const file = await t.store.files.put(Readable.from([TRAIN]), { filename: 'train.jsonl' });
    return { queue, file };
  }

  it('creates a queued job in OpenAI shape with its validation events', async () => {
    const { queue, file } = await setup();
    const job = await queue.create({ model: 'nodeai-tiny', training_file: file.id, hyperparameters: { n_epochs: 2 }, suffix: 'support' });
    expect(job).toMatchObject({ object: 'fine_tuning.job', status: 'queued', model: 'nodeai-tiny', training_file: file.id, fine_tuned_model: null, hyperparameters: { n_epochs: 2, batch_size: 'auto', learning_rate_multiplier: 'auto' }, seed: 42 });
    expect(job.id).toMatch(/^ftjob-[A-Za-z0-9]{24}$/);
    const events = await queue.listEvents(job.id);
    expect(events.data.map((e) => e.message).reverse()).toEqual([`Created fine-tuning job: ${job.id}`, expect.stringContaining('Validating training file'), 'Files validated, moving job to queued state']);
    expect((await queue.list()).data.map((j) => j.id)).toEqual([job.id]);
  });

  it("hands NodeAI's own hyperparameters and a fine-tuned base's file to the trainer", async () => {
    const { queue, file } = await setup();
    const specs: LocalFineTuneSpec[] = [];
    const trainer = fakeTrainer();
    const capture: LocalTrainingRunner = (spec, o) => (specs.push(spec), trainer.run(spec, o));
    const worker = new JobWorker(queue, { train: capture });
    const first = await queue.create({ model: 'nodeai-tiny', training_file: file.id, hyperparameters: { lora_rank: 4, early_stopping_patience: 3 } });
    expect(first.hyperparameters).toMatchObject({ lora_rank: 4, early_stopping_patience: 3 });
    await worker.runNext();
    expect(specs[0]).toMatchObject({ baseModel: 'nodeai-tiny', loraRank: 4, earlyStoppingPatience: 3 });
    const model = (await queue.get(first.id)).fine_tuned_model!;
    await queue.create({ model, training_file: file.id, hyperparameters: { learning_rate_multiplier: 2 } });
    await worker.runNext();
    expect(specs[1].baseModel).toBe((await queue.models.get(model)).files.model);
    expect(specs[1]).not.toHaveProperty('loraRank');
    // A GGUF file's automatic rate depends on its size: the trainer applies the multiple.
    expect(specs[1]).toMatchObject({ learningRate: 'auto', learningRateMultiplier: 2 });
    // An absolute rate (the local trainer's learning_rate) goes as it is; the LoRA scale with its rank.
    await queue.create({ model: 'nodeai-tiny', training_file: file.id, hyperparameters: { learning_rate: 1e-3, lora_rank: 2, lora_alpha: 4 } });
    await worker.runNext();
    expect(specs[2]).toMatchObject({ learningRate: 1e-3, loraRank: 2, loraAlpha: 4 });
    expect(specs[2]).not.toHaveProperty('learningRateMultiplier');
    // `nodeai finetune --out DIR`: the job keeps its files in DIR, the model named by the suffix.
    const out = join(queue.store.dataDir, 'cli-out');
    await queue.create({ model: 'nodeai-tiny', training_file: file.id, suffix: 'mine', metadata: { [OUTPUT_DIR_METADATA_KEY]: out } });
    await worker.runNext();
    expect(specs[3]).toMatchObject({ jobDir: out, outputName: 'mine' });
  });

  it('fails a job whose file is missing or not a file ID, and says which', async () => {
    const { queue } = await setup();
    const job = await queue.create({ model: 'nodeai-tiny', training_file: 'file-AAAAAAAAAAAAAAAAAAAAAAAA' });
    expect(job.status).toBe('failed');
    expect(job.error).toMatchObject({ code: 'invalid_file', param: 'training_file' });
    expect(job.error!.message).toContain('does not exist in this store');
    await expect(queue.create({ model: 'nodeai-tiny', training_file: '../../etc/passwd' })).rejects.toThrow(/not a file ID/);
    await expect(queue.get('ftjob-nope')).rejects.toMatchObject({ code: 'job_not_found' });
  });

  it('runs a job: running → succeeded, metrics and checkpoint rows, the model registered once, listeners told', async () => {
    const { queue, file } = await setup();
    const trainer = fakeTrainer();
    const finished: JobFinished[] = [];
    queue.onFinished((o) => void finished.push(o));
    const job = await queue.create({ model: 'nodeai-tiny', training_file: file.id, suffix: 'support' });
    const worker = new JobWorker(queue, { train: trainer.run });
    expect(await worker.runNext()).toBe(job.id);
    expect(await worker.runNext()).toBeUndefined();

    const done = await queue.get(job.id);
    expect(done.status).toBe('succeeded');
    expect(done.fine_tuned_model).toBe(fineTunedModelName({ id: job.id, base_model: 'nodeai-tiny', suffix: 'support' }));
    expect(done.trained_tokens).toBe(300);
    expect(trainer.calls[0].jobDir).toBe(join(t.dataDir, 'jobs', job.id));

    const events = (await queue.listEvents(job.id, { limit: 100 })).data;
    const metrics = events.filter((e) => e.type === 'metrics');
    expect(metrics).toHaveLength(3);
    expect(metrics[0].data).toMatchObject({ step: 3, total_steps: 3, train_loss: 1.5 });
    expect(metrics[0].message).toBe('Step 3/3: training loss=1.5000, validation loss=1.9999999999999998'.replace('1.9999999999999998', (3.2 - 1.2).toFixed(4)));
    const cps = await queue.listCheckpoints(job.id);
    expect(cps.data).toEqual([expect.objectContaining({ object: 'fine_tuning.job.checkpoint', step_number: 3, fine_tuning_job_id: job.id, metrics: expect.objectContaining({ step: 3, train_loss: 1.5 }) })]);

    const models = await queue.models.list();
    expect(models).toHaveLength(1);
    expect(models[0]).toMatchObject({ id: done.fine_tuned_model, base_model: 'nodeai-tiny', provider: 'local', job_id: job.id, training_examples: 12, epochs: 2, metrics: { train_loss: 1.5, valid_loss: 1.9, steps: 3 } });
    expect(models[0].files.model).toBe(join(t.dataDir, 'jobs', job.id, 'model.gguf'));

    // Exactly once: registering again (a duplicate finish, a racing process) changes nothing.
    const again = await queue.models.register({ job: { id: job.id, base_model: 'nodeai-tiny', provider: 'local', suffix: 'other' }, files: { model: '/elsewhere' } });
    expect(again.id).toBe(done.fine_tuned_model);
    expect(await queue.finish(job.id, 'succeeded', { model: { files: {} } }, undefined)).toBe(false);
    expect(await queue.models.list()).toHaveLength(1);

    expect(finished).toEqual([{ jobId: job.id, status: 'succeeded', outputs: expect.objectContaining({ fine_tuned_model: done.fine_tuned_model, train_loss: 1.5, valid_loss: 1.9 }) }]);
    expect(await queue.outcome(job.id)).toMatchObject({ status: 'succeeded' });
  });

  it('records a training failure with the trainer reason', async () => {
    const { queue, file } = await setup();
    const job = await queue.create({ model: 'nodeai-tiny', training_file: file.id });
    await new JobWorker(queue, { train: fakeTrainer({ fail: true }).run }).runNext();
    const failed = await queue.get(job.id);
    expect(failed.status).toBe('failed');
    expect(failed.error).toEqual({ code: 'training_diverged', message: 'loss became NaN at step 2', param: null });
    expect(await queue.models.list()).toHaveLength(0);
    expect(await queue.outcome(job.id)).toMatchObject({ status: 'failed', error: { code: 'training_diverged' } });
  });

  it('cancels a queued job at once and a running one through the abort signal', async () => {
    const { queue, file } = await setup();
    const queued = await queue.create({ model: 'nodeai-tiny', training_file: file.id });
    expect((await queue.cancel(queued.id)).status).toBe('cancelled');
    await expect(queue.cancel(queued.id)).rejects.toMatchObject({ code: 'job_state' });

    const job = await queue.create({ model: 'nodeai-tiny', training_file: file.id });
    const worker = new JobWorker(queue, { train: fakeTrainer({ hold: true }).run });
    const running = worker.runNext();
    for (let i = 0; i < 100 && (await queue.get(job.id)).status !== 'running'; i++) await new Promise((r) => setTimeout(r, 10));
    // Wait for the trainer to be mid-run (its checkpoint recorded) before cancelling.
    for (let i = 0; i < 100 && (await queue.listCheckpoints(job.id)).data.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await queue.cancel(job.id);
    await running;
    expect((await queue.get(job.id)).status).toBe('cancelled');
    expect((await queue.outcome(job.id))?.status).toBe('cancelled');
  });

  it('two workers never claim the same job', async () => {
    const { queue, file } = await setup();
    const job = await queue.create({ model: 'nodeai-tiny', training_file: file.id });
    const other = new JobQueue(await t.reopen());
    const [a, b] = await Promise.all([queue.claim('w1', 30_000), other.claim('w2', 30_000)]);
    expect([a?.id, b?.id].filter(Boolean)).toEqual([job.id]);
  });

  it('after a crash, a restarted process re-queues the running job and resumes it from its job directory', async () => {
    const { queue, file } = await setup();
    const job = await queue.create({ model: 'nodeai-tiny', training_file: file.id });
    // The "dead" process: it claimed the job under a pid that no longer exists, and left a checkpoint.
    const claimed = await queue.claim(`${hostname()}:${deadPid()}:abc`, 60_000);
    expect(claimed?.id).toBe(job.id);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(queue.jobDir(job.id), { recursive: true });
    writeFileSync(join(queue.jobDir(job.id), 'ckpt'), 'x');

    const restarted = new JobQueue(await t.reopen());
    const report = await restarted.recoverInterrupted();
    expect(report).toEqual({ requeued: [job.id], failed: [], cancelled: [] });
    expect((await restarted.get(job.id)).status).toBe('queued');
    const trainer = fakeTrainer();
    await new JobWorker(restarted, { train: trainer.run }).runNext();
    expect(trainer.calls).toEqual([{ jobDir: queue.jobDir(job.id), resumedFrom: true }]);
    expect((await restarted.get(job.id)).status).toBe('succeeded');
    const messages = (await restarted.listEvents(job.id, { limit: 100 })).data.map((e) => e.message);
    expect(messages).toContain('Fine-tuning job resumed (attempt 2)');
    expect(messages.some((m) => m.startsWith('The process running this job stopped; re-queued'))).toBe(true);
  });

  it('a live holder is left alone; a job out of attempts fails honestly', async () => {
    const { queue, file } = await setup();
    const live = await queue.create({ model: 'nodeai-tiny', training_file: file.id });
    await queue.claim(`${hostname()}:${process.ppid}:live`, 60_000);
    expect((await queue.recoverInterrupted()).requeued).toEqual([]);
    expect((await queue.get(live.id)).status).toBe('running');
    await queue.store.db.updateTable('jobs').set({ status: 'cancelled' }).where('id', '=', live.id).execute();

    const job = await queue.create({ model: 'nodeai-tiny', training_file: file.id, maxAttempts: 1 });
    await queue.claim(`${hostname()}:${deadPid()}:x`, 60_000);
    const report = await new JobQueue(await t.reopen()).recoverInterrupted();
    expect(report.failed).toEqual([job.id]);
    const failed = await queue.get(job.id);
    expect(failed.status).toBe('failed');
    expect(failed.error?.message).toMatch(/cannot be resumed: it was interrupted 1 times/);
  });

  it('a shutdown hands the running job back to the queue', async () => {
    const { queue, file } = await setup();
    const job = await queue.create({ model: 'nodeai-tiny', training_file: file.id });
    const worker = new JobWorker(queue, { train: fakeTrainer({ hold: true }).run, pollMs: 20 });
    worker.start();
    for (let i = 0; i < 200 && (await queue.listCheckpoints(job.id)).data.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    await worker.stop();
    const row = await queue.getRow(job.id);
    expect(row.status).toBe('queued');
    expect(row.locked_by).toBeNull();
    expect(Number(row.attempts)).toBe(0);
  });

  it('pauses a queued job, which nothing claims or recovers until it is resumed and runs', async () => {
    const { queue, file } = await setup();
    const job = await queue.create({ model: 'nodeai-tiny', training_file: file.id });
    expect(await queue.pause(job.id)).toMatchObject({ id: job.id, status: 'paused' });
    const trainer = fakeTrainer();
    const worker = new JobWorker(queue, { train: trainer.run });
    expect(await worker.runNext()).toBeUndefined();
    expect(await new JobQueue(await t.reopen()).recoverInterrupted()).toEqual({ requeued: [], failed: [], cancelled: [] });
    expect((await queue.list({ status: 'paused' })).data.map((j) => j.id)).toEqual([job.id]);

    expect(await queue.resume(job.id)).toMatchObject({ status: 'queued' });
    expect(await worker.runNext()).toBe(job.id);
    expect((await queue.get(job.id)).status).toBe('succeeded');
    expect(trainer.calls).toHaveLength(1);
    const messages = (await queue.listEvents(job.id, { limit: 100 })).data.map((e) => e.message).reverse();
    expect(messages.indexOf('Fine-tuning job paused')).toBeLessThan(messages.indexOf('Fine-tuning job resumed'));
  });

  it('pauses a running job at its checkpoint, releases it, and a resume continues from there and registers the model once', async () => {
    const { queue, file } = await setup();
    const job = await queue.create({ model: 'nodeai-tiny', training_file: file.id });
    const trainer = fakeTrainer({ holdFirst: true });
    const worker = new JobWorker(queue, { train: trainer.run });
    const running = worker.runNext();
    for (let i = 0; i < 200 && (await queue.listCheckpoints(job.id)).data.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await queue.pause(job.id)).status).toBe('paused');
    await running;

    const row = await queue.getRow(job.id);
    expect(row).toMatchObject({ status: 'paused', locked_by: null, locked_until: null, finished_at: null });
    expect(Number(row.attempts)).toBe(0);
    const events = (await queue.listEvents(job.id, { limit: 100 })).data.map((e) => e.message);
    expect(events).toContain('Fine-tuning job paused at step 3');
    expect(events).not.toContain('The job was cancelled');
    expect(await queue.outcome(job.id)).toBeNull();
    expect(await worker.runNext()).toBeUndefined();
    expect((await new JobQueue(await t.reopen()).recoverInterrupted()).requeued).toEqual([]);

    await queue.resume(job.id);
    expect(await worker.runNext()).toBe(job.id);
    expect(trainer.calls).toEqual([
      { jobDir: queue.jobDir(job.id), resumedFrom: false },
      { jobDir: queue.jobDir(job.id), resumedFrom: true },
    ]);
    const done = await queue.get(job.id);
    expect(done.status).toBe('succeeded');
    expect((await queue.models.list()).map((m) => m.id)).toEqual([done.fine_tuned_model]);
    expect((await queue.listEvents(job.id, { limit: 100 })).data.map((e) => e.message)).toContain('Fine-tuning job continues from its last checkpoint');
  });

  it('a worker in another process sees a pause through the row when it checks its lease', async () => {
    const { queue, file } = await setup();
    const job = await queue.create({ model: 'nodeai-tiny', training_file: file.id });
    const worker = new JobWorker(queue, { train: fakeTrainer({ hold: true }).run, checkMs: 20 });
    const running = worker.runNext();
    for (let i = 0; i < 200 && (await queue.listCheckpoints(job.id)).data.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const other = new JobQueue(await t.reopen());
    expect((await other.pause(job.id)).status).toBe('paused');
    await running;
    expect(await queue.getRow(job.id)).toMatchObject({ status: 'paused', locked_by: null });
    expect((await other.resume(job.id)).status).toBe('queued');
  });

  it('refuses pause and resume from the wrong states', async () => {
    const { queue, file } = await setup();
    const job = await queue.create({ model: 'nodeai-tiny', training_file: file.id });
    await expect(queue.resume(job.id)).rejects.toMatchObject({ code: 'job_state' });
    await queue.pause(job.id);
    await expect(queue.pause(job.id)).rejects.toMatchObject({ code: 'job_state' });
    await queue.cancel(job.id);
    await expect(queue.pause(job.id)).rejects.toMatchObject({ code: 'job_state' });
    await expect(queue.resume(job.id)).rejects.toMatchObject({ code: 'job_state' });
    await expect(queue.pause('ftjob-nope')).rejects.toMatchObject({ code: 'job_not_found' });

    // Held by a live worker elsewhere that has not yet stopped: a resume must wait for it.
    const held = await queue.create({ model: 'nodeai-tiny', training_file: file.id });
    await queue.claim(`${hostname()}:${process.ppid}:live`, 60_000);
    await expect(queue.resume(held.id)).rejects.toMatchObject({ code: 'job_state' });
    expect(await queue.pause(held.id)).toMatchObject({ status: 'paused' });
    await expect(queue.resume(held.id)).rejects.toMatchObject({ code: 'job_state', message: expect.stringContaining('still saving') });
    expect(await queue.getRow(held.id)).toMatchObject({ status: 'paused', locked_by: `${hostname()}:${process.ppid}:live` });
  });
});
