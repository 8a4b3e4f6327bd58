// `nodeai worker`: trains the local jobs of a data directory (or a Postgres database) and nothing
// else, beside `nodeai serve --no-worker` or alongside other workers: each job is claimed by one
// worker under a lease, and a worker that dies hands its job to the next one at its checkpoint.
import { JobQueue, JobWorker } from '../jobs/index.ts';
import type { JobEvent } from '../providers/spec.ts';
import { commonOptions, DATA_DIR_HELP, logReclaimed, openStore, parse, runUntilSignal } from './app.ts';
import { UsageError } from './usage-error.ts';

const USAGE = `Usage: nodeai worker [--data-dir DIR] [--threads N]

Trains the queued local fine-tuning jobs of the data directory (or of the Postgres database
in DATABASE_URL), one at a time, until stopped. Run it beside "nodeai serve --no-worker", or
start several on machines that share a Postgres database: each job is trained by one worker.
Ctrl-C (or SIGTERM) stops after checkpointing the job in training; it goes back to the queue
and the next worker resumes it. A job whose worker died (or whose trainer stopped making
progress) is taken back within about one lease period and resumed from its checkpoint.

Options:
${DATA_DIR_HELP}
  --threads N      CPU threads for training (default: the idle cores)`;

const options = { ...commonOptions, threads: { type: 'string' } } as const;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, options, USAGE);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length) throw new UsageError(`'worker' takes no arguments, got ${JSON.stringify(positionals[0])}\n\n${USAGE}`);
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) throw new UsageError(`--threads must be a whole number ≥ 1, got ${JSON.stringify(values.threads)}`);

  const store = await openStore(values);
  const log = (line: string) => console.log(`${new Date().toISOString().slice(11, 19)}  ${line}`);
  const queue = new JobQueue(store);
  const worker = new JobWorker(queue, {
    ...(threads ? { threads } : {}),
    onError: (err) => log(`error: ${store.redactor.formatError(err)}`),
    onReclaimed: (report) => logReclaimed(log, report),
    onLeaseLost: (jobId) => log(`${jobId}  lost to another worker (this one's lease ran out); its trainer was stopped and its late writes refused`),
  });
  const lastMetrics = new Map<string, number>();
  const offEvents = queue.onEvent((jobId, e: JobEvent) => {
    if (e.type !== 'metrics') return log(`${jobId}  ${e.message}`);
    // A line every 10 seconds of a job's training is enough for a log; the job's start and end
    // ("… completed. New model: …", "failed: …") come as message events.
    const now = Date.now();
    if (now - (lastMetrics.get(jobId) ?? 0) < 10_000) return;
    lastMetrics.set(jobId, now);
    log(`${jobId}  ${e.message}`);
  });
  try {
    const recovered = await queue.recoverInterrupted();
    if (recovered.requeued.length) log(`interrupted job(s) back in the queue, to resume from their checkpoints: ${recovered.requeued.join(', ')}`);
    for (const id of recovered.failed) log(`${id}  could not be resumed and was marked failed ("nodeai jobs show ${id}")`);
  } catch (err) {
    offEvents();
    await store.close();
    throw err;
  }
  worker.start();
  log(`worker ${worker.id} waiting for jobs (database: ${store.location}); Ctrl-C stops`);

  return runUntilSignal(
    log,
    {
      stopping: () => `stopping${worker.busy ? ' (checkpointing the job in training; it goes back to the queue)' : ''}…`,
      again: 'exiting now; the job in training resumes from its last checkpoint.',
    },
    async () => {
      await worker.stop();
      offEvents();
      await store.close();
    },
  );
}
