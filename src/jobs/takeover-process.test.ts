// Several worker processes sharing one Postgres database, as "nodeai worker" on several machines
// does: a worker killed outright loses its job to a live one, which finishes it from the
// checkpoint; a worker frozen past its lease loses its job too, and when it wakes up its late
// writes are refused and its trainer stopped.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TEST_PG_URL, testDialect, until, type TestDb } from '../store/testing.ts';
import { writeSmallTinyBase } from '../trainer/small-tiny-base.ts';
import { JobQueue } from './index.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'nodeai.js');
const TRAIN = Array.from({ length: 12 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `What is ${i}+1?` }, { role: 'assistant', content: `${i + 1}.` }] })).join('\n') + '\n';

interface Proc {
  child: ChildProcess;
  out: string;
  exited: Promise<number | null>;
}

function track(child: ChildProcess): Proc {
  const p: Proc = { child, out: '', exited: new Promise((resolve) => child.once('close', (code) => resolve(code))) };
  child.stdout!.on('data', (d) => (p.out += d));
  child.stderr!.on('data', (d) => (p.out += d));
  return p;
}

/** `nodeai worker` as a user starts it, on the test's database and data directory. */
function cliWorker(t: TestDb): Proc {
  return track(spawn(process.execPath, [BIN, 'worker', '--data-dir', t.dataDir, '--threads', '1'], { cwd: ROOT, env: { ...process.env, DATABASE_URL: t.databaseUrl }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/**
 * A worker process with short leases (set through JobWorker's options, as a test may), in its own
 * process group with its trainer, so that the group can be frozen as a whole (a paused VM).
 */
function shortLeaseWorker(t: TestDb): Proc {
  const url = (p: string) => JSON.stringify(pathToFileURL(join(ROOT, 'src', p)).href);
  const code = `
    import { createStore } from ${url('store/index.ts')};
    import { JobQueue, JobWorker } from ${url('jobs/index.ts')};
    const store = await createStore({ dataDir: ${JSON.stringify(t.dataDir)}, databaseUrl: ${JSON.stringify(t.databaseUrl)} });
    const worker = new JobWorker(new JobQueue(store), {
      threads: 1, stall: { startupMs: 30000, floorMs: 1000, capMs: 2000 }, leaseGraceMs: 500, checkMs: 200, reclaimMs: 500,
      onLeaseLost: (id) => console.log('lease lost: ' + id),
      onError: (err) => console.log('error: ' + err),
    });
    worker.start();
    console.log('started');
    process.on('SIGTERM', () => void worker.stop().then(() => store.close()).then(() => process.exit(0)));
  `;
  return track(spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: ROOT, detached: true, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] }));
}

/** The trainer processes (training-process.ts) in a process group: a worker's trainer. */
function trainersIn(pgid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === pgid) continue;
    try {
      // Field 5 of /proc/PID/stat is the process group; the name in field 2 may hold spaces.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) !== pgid) continue;
      // Not the esbuild service that tsx starts beside the worker.
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('training-process')) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const pgTitle = TEST_PG_URL ? 'worker processes on one Postgres database' : 'worker processes on one Postgres database — skipped: NODEAI_TEST_DATABASE_URL is not set (.ci/postgres.sh sets it)';
describe.skipIf(!TEST_PG_URL)(pgTitle, () => {
  let t: TestDb;
  const procs: Proc[] = [];
  afterEach(async () => {
    for (const p of procs.splice(0)) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) continue;
      try {
        // Whole groups: a frozen worker's trainer too.
        process.kill(-p.child.pid!, 'SIGKILL');
      } catch {
        p.child.kill('SIGKILL');
      }
    }
    await t.cleanup();
  });
  beforeEach(async () => {
    t = await testDialect('postgres').open();
  });

  async function jobOn(epochs: number) {
    const queue = new JobQueue(t.store);
    const file = await t.store.files.put(Readable.from([TRAIN]), { filename: 'train.jsonl' });
    // A smaller nodeai-tiny, trained by path: each epoch (12 steps, then a checkpoint) takes a fraction of a second.
    const base = await writeSmallTinyBase(t.dataDir);
    const job = await queue.create({ model: base, training_file: file.id, hyperparameters: { n_epochs: epochs, batch_size: 1 }, seed: 5 });
    return { queue, job };
  }

  it('a worker killed with -9 loses its job to a live worker, which finishes it from the checkpoint', { timeout: 120_000 }, async () => {
    // Both wait for work before the job exists: whichever claims it is killed at its first checkpoint.
    const workers = [cliWorker(t), cliWorker(t)];
    procs.push(...workers);
    await until(() => workers.every((w) => /waiting for jobs/.test(w.out)), { ms: 30_000, what: 'both workers to start' });
    const { queue, job } = await jobOn(30);
    await until(async () => (await queue.listCheckpoints(job.id)).data.length > 0, { ms: 60_000, every: 20, what: 'a checkpoint' });
    const holderPid = Number((await queue.getRow(job.id)).locked_by?.split(':')[1]);
    const [holder, survivor] = holderPid === workers[0].child.pid ? workers : [workers[1], workers[0]];
    expect(holder.child.pid).toBe(holderPid);
    holder.child.kill('SIGKILL');
    await holder.exited;

    const done = await until(() => queue.getRow(job.id), { ok: (r) => ['succeeded', 'failed', 'cancelled'].includes(r.status), ms: 90_000, every: 200, what: 'the job to end' });
    expect(done).toMatchObject({ status: 'succeeded', fencing_token: 2, attempts: 2 });
    expect(survivor.out).toMatch(new RegExp(`took back job\\(s\\) whose holder stopped, to resume from their checkpoints: ${job.id}`));
    const events = (await queue.listEvents(job.id, { limit: 5000 })).data.map((e) => e.message);
    expect(events.join('\n')).toMatch(/Resuming from the checkpoint at step [1-9]\d*/);
    expect(await queue.models.list()).toHaveLength(1);
    survivor.child.kill('SIGTERM');
    expect(await survivor.exited).toBe(0);
  });

  it("a worker frozen past its lease loses its job; when it wakes, its late writes are refused and its trainer stopped", { timeout: 120_000 }, async () => {
    const { queue, job } = await jobOn(20);
    const frozen = shortLeaseWorker(t);
    procs.push(frozen);
    await until(async () => (await queue.listCheckpoints(job.id)).data.length > 0, { ms: 60_000, every: 50, what: 'a checkpoint' });
    const pgid = frozen.child.pid!;
    process.kill(-pgid, 'SIGSTOP');
    const trainers = trainersIn(pgid);
    expect(trainers.length).toBeGreaterThan(0);
    const takenAt = Number((await queue.getRow(job.id)).locked_until);

    const live = cliWorker(t);
    procs.push(live);
    const done = await until(() => queue.getRow(job.id), { ok: (r) => ['succeeded', 'failed', 'cancelled'].includes(r.status), ms: 90_000, every: 200, what: 'the job to end' }).catch(async (err: Error) => {
      throw new Error(`${err.message}; job row ${JSON.stringify(await queue.getRow(job.id))} at ${Date.now()}\nlive worker:\n${live.out}\nfrozen worker:\n${frozen.out}`);
    });
    expect(done).toMatchObject({ status: 'succeeded', fencing_token: 2 });
    const model = done.fine_tuned_model;
    const events = (await queue.listEvents(job.id, { limit: 5000 })).data;
    // Taken only once the frozen worker's lease (a few seconds from its last step) had run out.
    const takeover = events.find((e) => e.message.startsWith('The process running this job stopped; re-queued'));
    expect(takeover!.created_at).toBeGreaterThanOrEqual(Math.floor(takenAt / 1000));
    const eventsBefore = events.length;

    process.kill(-pgid, 'SIGCONT');
    await until(() => /lease lost: /.test(frozen.out), { ms: 30_000, what: 'the woken worker to notice its lease is lost' }).catch((err: Error) => {
      throw new Error(`${err.message}; it wrote:\n${frozen.out}`);
    });
    await until(() => trainers.every((pid) => !alive(pid)), { ms: 10_000, what: 'its trainer to be stopped' });
    expect(frozen.out).toContain(`lease lost: ${job.id}`);
    // Nothing it wrote after waking up got in: the job, its events, its model are the live worker's.
    const after = await queue.getRow(job.id);
    expect(after).toMatchObject({ status: 'succeeded', fine_tuned_model: model, fencing_token: 2 });
    expect((await queue.listEvents(job.id, { limit: 5000 })).data.length).toBe(eventsBefore);
    expect((await queue.models.list()).map((m) => m.id)).toEqual([model]);

    frozen.child.kill('SIGTERM');
    expect(await frozen.exited).toBe(0);
    live.child.kill('SIGTERM');
    expect(await live.exited).toBe(0);
  });
});
