// Leases renewed by the trainer's progress, fenced writes, takeover of jobs whose holder is gone,
// and the attempts cap — on SQLite and (with NODEAI_TEST_DATABASE_URL) Postgres, with the real
// supervised trainer where a stall must be noticed.
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeEach, expect, it } from 'vitest';
import type { LocalTrainingRunner } from '../providers/local.ts';
import { describeEachDialect, tempDir, until, type TestDb } from '../store/testing.ts';
import { writeSmallTinyBase } from '../trainer/small-tiny-base.ts';
import { runLocalFineTune } from '../trainer/supervisor.ts';
import { claimOf, JobQueue, JobWorker, LeaseReclaimer, type JobLease } from './index.ts';

const TRAIN = Array.from({ length: 12 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `What is ${i}+1?` }, { role: 'assistant', content: `${i + 1}.` }] })).join('\n') + '\n';
// A smaller nodeai-tiny, trained by path, so a real run takes about a second.
const baseDir = tempDir('nodeai-lease-base-');
afterAll(() => rmSync(baseDir, { recursive: true, force: true }));
const smallBase = await writeSmallTinyBase(baseDir);
/** Steps of the small base take milliseconds: the floor sets the allowance, so these make a stall show in about a second. */
const FAST = { stall: { startupMs: 60_000, floorMs: 800, capMs: 1_500 }, leaseGraceMs: 300, checkMs: 50 };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeEachDialect('job leases', (dialect) => {
  let t: TestDb;
  let queue: JobQueue;
  let file: { id: string };
  beforeEach(async () => {
    t = await dialect.open();
    queue = new JobQueue(t.store);
    file = await t.store.files.put(Readable.from([TRAIN]), { filename: 'train.jsonl' });
  });
  afterEach(() => t.cleanup());

  /** Every write of a claim that is no longer the job's: refused, and nothing of it recorded. */
  async function expectRefused(q: JobQueue, stale: JobLease) {
    const jobId = stale.jobId;
    await expect(q.addEvent(jobId, { type: 'metrics', message: 'Step 9/9', data: { step: 9 } }, { lease: stale })).rejects.toMatchObject({ code: 'lease_lost' });
    await expect(q.recordCheckpoint({ lease: stale }, { step: 9, name: 'x:ckpt-step-9', path: '/nowhere', metrics: { step: 9 }, createdAt: Date.now() })).rejects.toMatchObject({ code: 'lease_lost' });
    await expect(q.renew({ lease: stale, renewMs: 60_000 })).rejects.toMatchObject({ code: 'lease_lost' });
    expect(await q.finish(jobId, 'succeeded', { model: { files: { model: '/stale/model.gguf' } } }, stale, ['running', 'paused'])).toBe(false);
    expect(await q.release(stale, 'stale', { giveBackAttempt: true })).toBe(false);
    expect(await q.checkLease(stale)).toEqual({ held: false, cancelRequested: false, pauseRequested: false });
    expect((await q.listEvents(jobId, { limit: 100 })).data.map((e) => e.message)).not.toContain('Step 9/9');
    expect((await q.listCheckpoints(jobId)).data).toEqual([]);
    expect(await q.models.list()).toEqual([]);
  }

  it("refuses a stale holder's late writes once another worker took the job over: events, metrics, checkpoints, the model", async () => {
    const job = await queue.create({ model: 'nodeai-tiny', training_file: file.id });
    // A holder that is alive (this test's parent process) but stopped renewing: its lease ran out.
    const stale = claimOf((await queue.claim(`${hostname()}:${process.ppid}:stale`, 1))!)!;
    await sleep(5);
    const other = new JobQueue(await t.reopen());
    expect((await other.recoverInterrupted()).requeued).toEqual([job.id]);
    const fresh = claimOf((await other.claim('w2', 60_000))!)!;
    expect(fresh.token).toBe(stale.token + 1);

    await expectRefused(queue, stale);

    // The new holder's writes go through, and its lease is its own.
    await other.recordCheckpoint({ lease: fresh, renewMs: 60_000 }, { step: 2, name: 'x:ckpt-step-2', path: '/ckpt', metrics: { step: 2 }, createdAt: Date.now() });
    expect((await other.listCheckpoints(job.id)).data.map((c) => c.step_number)).toEqual([2]);
    expect(await other.checkLease(fresh)).toEqual({ held: true, cancelRequested: false, pauseRequested: false });
    const row = await other.getRow(job.id);
    expect(row).toMatchObject({ status: 'running', locked_by: 'w2', attempts: 2 });
  });

  it('refuses the late writes of an earlier claim of the same worker: the fencing token, not the name, decides', async () => {
    const job = await queue.create({ model: 'nodeai-tiny', training_file: file.id });
    // A worker with a fixed name (workerId) whose lease ran out, and the same name claiming the job again.
    const first = claimOf((await queue.claim('gpu-box', 1))!)!;
    await sleep(5);
    expect((await queue.recoverInterrupted()).requeued).toEqual([job.id]);
    const second = claimOf((await queue.claim('gpu-box', 60_000))!)!;
    expect(second).toEqual({ jobId: job.id, holder: 'gpu-box', token: first.token + 1 });
    await expectRefused(queue, first);
    expect(await queue.checkLease(second)).toEqual({ held: true, cancelRequested: false, pauseRequested: false });
  });

  it('renews the lease from the trainer’s progress, to its stall allowance plus the grace, never from a timer', async () => {
    const job = await queue.create({ model: 'nodeai-tiny', training_file: file.id });
    let release!: () => void;
    let go!: () => void;
    const started = new Promise<void>((resolve) => (go = resolve));
    const steps: LocalTrainingRunner = async (_spec, { onEvent, signal }) => {
      await started;
      for (let step = 1; step <= 3; step++) onEvent?.({ type: 'metrics', time: Date.now(), step, total_steps: 9, epoch: 1, total_epochs: 3, trained_tokens: step * 10 });
      await new Promise<void>((resolve) => {
        release = resolve;
        signal?.addEventListener('abort', () => resolve());
      });
      return { status: 'cancelled', trainedTokens: 30, steps: 3, resumed: false };
    };
    const worker = new JobWorker(queue, { train: steps, ...FAST });
    const running = worker.runNext();
    const claimed = await until(() => queue.getRow(job.id), { ok: (r) => r.status === 'running', what: 'the claim' });
    // Before the first step: the start-up allowance.
    expect(Number(claimed.locked_until) - Number(claimed.heartbeat_at)).toBe(60_000 + 300);
    go();
    const renewed = await until(() => queue.getRow(job.id), { ok: (r) => Number(r.trained_tokens) === 30, what: 'the third step' });
    // Steps measured (milliseconds each): the floor rules.
    expect(Number(renewed.locked_until) - Number(renewed.heartbeat_at)).toBe(800 + 300);
    // No progress, no renewal, however often the worker checks its lease.
    await sleep(300);
    expect((await queue.getRow(job.id)).heartbeat_at).toBe(renewed.heartbeat_at);
    // Cancelled before the trainer is let go: let go first, it may end the job before the cancel lands.
    await queue.cancel(job.id);
    release();
    await running;
  });

  it('a holder that finds its lease lost stops its trainer at once (the kill signal, not a cancel) and records nothing more', async () => {
    const job = await queue.create({ model: 'nodeai-tiny', training_file: file.id });
    const stopped: string[] = [];
    // A trainer that hears only the kill signal: it stands for one stuck in a long step.
    const deaf: LocalTrainingRunner = (_spec, { kill }) =>
      new Promise((resolve) => {
        kill?.addEventListener('abort', () => {
          stopped.push(String((kill.reason as Error).message));
          resolve({ status: 'failed', trainedTokens: 0, steps: 0, resumed: false, error: { code: 'lease_lost', message: 'stopped' } });
        });
      });
    const lost: string[] = [];
    // A lease of 200 ms from the claim, checked every 50 ms: the holder is "frozen" by never making progress.
    const worker = new JobWorker(queue, { train: deaf, stall: { startupMs: 200, floorMs: 100, capMs: 100 }, leaseGraceMs: 0, checkMs: 50, onLeaseLost: (id) => lost.push(id) });
    const running = worker.runNext();
    await until(() => queue.getRow(job.id), { ok: (r) => r.status === 'running', what: 'the claim' });
    const other = new JobQueue(await t.reopen());
    await until(async () => (await other.recoverInterrupted()).requeued.length > 0, { ms: 3_000, what: 'the lease to run out' });
    const taken = claimOf((await other.claim('w2', 60_000))!)!;
    const eventsAtTakeover = (await other.listEvents(job.id, { limit: 100 })).data.length;
    await until(() => stopped.length > 0, { ms: 2_000, what: 'the trainer to be killed' });
    await running;
    expect(stopped).toEqual([`job ${job.id} was taken over by another worker`]);
    expect(lost).toEqual([job.id]);
    expect(await other.getRow(job.id)).toMatchObject({ status: 'running', locked_by: 'w2', fencing_token: taken.token });
    expect((await other.listEvents(job.id, { limit: 100 })).data).toHaveLength(eventsAtTakeover);
  });

  it('kills a stalled trainer and resumes the job from its checkpoint, on the real supervisor', { timeout: 60_000 }, async () => {
    const job = await queue.create({ model: smallBase, training_file: file.id, hyperparameters: { n_epochs: 3, batch_size: 4 } });
    let runs = 0;
    const train: LocalTrainingRunner = (spec, options) => {
      const first = ++runs === 1;
      let pid = 0;
      return runLocalFineTune(spec, {
        ...options,
        onSpawn: (p) => (pid = p),
        onEvent: (e) => {
          options.onEvent?.(e);
          // Frozen after its first checkpoint, as a trainer stuck in native code: it sends nothing more.
          if (first && e.type === 'checkpoint') process.kill(pid, 'SIGSTOP');
        },
      });
    };
    const worker = new JobWorker(queue, { train, ...FAST });
    expect(await worker.runNext()).toBe(job.id);
    const released = await queue.getRow(job.id);
    expect(released).toMatchObject({ status: 'queued', locked_by: null, attempts: 1 });
    expect(await worker.runNext()).toBe(job.id);
    const done = await queue.get(job.id);
    expect(done.status).toBe('succeeded');
    const messages = (await queue.listEvents(job.id, { limit: 1000 })).data.map((e) => e.message).reverse();
    expect(messages).toContainEqual(expect.stringMatching(/^Attempt 1 of 3 ended: The training process made no progress for \d+ s after step \d+ .*so it was stopped\. Its last checkpoint is kept.* The job resumes from its last checkpoint\.$/s));
    expect(messages).toContain('Fine-tuning job resumed (attempt 2)');
    expect(messages.join('\n')).toMatch(/Resuming from the checkpoint at step [1-9]/);
    expect(await queue.models.list()).toHaveLength(1);
  });

  it('fails a job whose trainer keeps stalling or crashing once it used its attempts, with the reason', async () => {
    const job = await queue.create({ model: 'nodeai-tiny', training_file: file.id, maxAttempts: 2 });
    const dirs: boolean[] = [];
    const dies: LocalTrainingRunner = async (spec, { onEvent }) => {
      dirs.push(existsSync(join(spec.jobDir, 'ckpt')));
      writeFileSync(join(spec.jobDir, 'ckpt'), 'x');
      onEvent?.({ type: 'checkpoint', time: Date.now(), step: dirs.length, epoch: 1, path: join(spec.jobDir, 'ckpt'), bytes: 1 });
      return { status: 'failed', trainedTokens: 0, steps: dirs.length, resumed: false, error: { code: 'worker_crashed', message: 'The training process was killed by SIGKILL (out of memory, or killed) after step 1.' } };
    };
    const worker = new JobWorker(queue, { train: dies });
    await worker.runNext();
    expect(await queue.getRow(job.id)).toMatchObject({ status: 'queued', attempts: 1 });
    await worker.runNext();
    expect(await worker.runNext()).toBeUndefined();
    const failed = await queue.get(job.id);
    expect(failed.status).toBe('failed');
    expect(failed.error).toEqual({
      code: 'worker_crashed',
      message: "The training process was killed by SIGKILL (out of memory, or killed) after step 1. The job stopped this way on all 2 attempts; start a new job (or look at the machine's memory and load).",
      param: null,
    });
    // The second attempt went on from the first one's checkpoint.
    expect(dirs).toEqual([false, true]);
  });

  it('a live process takes back a job whose holder is gone, within about a lease period, not only at start-up', async () => {
    const job = await queue.create({ model: 'nodeai-tiny', training_file: file.id });
    await queue.claim(`${hostname()}:${process.ppid}:frozen`, 400);
    const other = new JobQueue(await t.reopen());
    const reclaimed: string[] = [];
    const reclaimer = new LeaseReclaimer(other, { everyMs: 50, onReclaimed: (r) => reclaimed.push(...r.requeued) });
    reclaimer.start();
    try {
      expect((await other.getRow(job.id)).status).toBe('running');
      await until(() => reclaimed.length > 0, { ms: 3_000, what: 'the takeover' });
      expect(reclaimed).toEqual([job.id]);
      expect((await other.getRow(job.id)).status).toBe('queued');
    } finally {
      await reclaimer.stop();
    }
  });
});
