// Everything `nodeai serve` runs besides HTTP: the store, the engine with the built-in nodes, the
// job queue and its worker, wired so finished jobs resume the runs that wait on them.
import { Engine, RunStateError } from '../engine/index.ts';
import { JobQueue, JobWorker, LeaseReclaimer, type RecoveryReport, type WorkerOptions } from '../jobs/index.ts';
import { createNodeRegistry, createNodeServices, type NodeServices } from '../nodes/index.ts';
import { createStore, type Store, type StoreOptions } from '../store/index.ts';

export interface Runtime {
  store: Store;
  engine: Engine;
  jobs: JobQueue;
  services: NodeServices;
  worker?: JobWorker;
  /** What start-up recovery did, for the log. */
  recovered: { requeuedJobs: string[]; failedJobs: string[]; failedRuns: string[] };
  /** Stops the worker (a training job is handed back to the queue to resume from its checkpoint), then the engine, then the store. */
  close(): Promise<void>;
}

export interface RuntimeOptions extends StoreOptions {
  /** false: no worker in this process (jobs are run by another one). Default true. */
  worker?: boolean | WorkerOptions;
  /**
   * How often to look for waiting runs whose job another process (`nodeai worker`) finished;
   * jobs finished here resume their runs at once. Default 2000 ms; 0 turns it off.
   */
  resumePollMs?: number;
  /** Told when this process took back jobs whose holder is gone (after start-up; `recovered` has those). */
  onReclaimed?: (report: RecoveryReport) => void;
  onError?: (err: unknown) => void;
}

export async function createRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  const store = await createStore(options);
  try {
    const jobs = new JobQueue(store);
    const services = createNodeServices(store, { jobs });
    const engine = new Engine({ store, registry: createNodeRegistry(), services: { nodeai: services } });
    const onError = options.onError ?? (() => undefined);
    jobs.onFinished((outcome) => engine.resumeRunsForJob(outcome).then(() => undefined, onError));
    await store.secrets.primeRedactor();
    const report = await jobs.recoverInterrupted();
    const failedRuns = await engine.recoverInterruptedRuns();
    // Runs whose job ended while no process was there to resume them.
    await engine.resumeWaitingRuns((w) => jobs.outcome(w.jobId));
    let worker: JobWorker | undefined;
    // Jobs whose holder died are taken back by every live process, training here or not.
    let reclaimer: LeaseReclaimer | undefined;
    const onReclaimed = options.onReclaimed;
    if (options.worker !== false) {
      worker = new JobWorker(jobs, { onError, ...(onReclaimed ? { onReclaimed } : {}), ...(typeof options.worker === 'object' ? options.worker : {}) });
      worker.start();
    } else {
      reclaimer = new LeaseReclaimer(jobs, { onError, ...(onReclaimed ? { onReclaimed } : {}) });
      reclaimer.start();
    }
    // Remote (OpenAI-compatible) jobs are followed by polling; adopt those left unfinished.
    await services.remoteJobs.start();
    const pollMs = options.resumePollMs ?? 2000;
    // Runs are resumed without waiting for them to end, so one slow run holds up neither the
    // next nor a shutdown; the engine's claim keeps two processes from resuming the same run.
    const scan = async () => {
      for (const run of await engine.listRuns({ status: 'waiting', limit: 1000 })) {
        if (!run.waiting?.jobId) continue;
        const outcome = await jobs.outcome(run.waiting.jobId);
        if (outcome) void engine.resumeRun(run.id, outcome).catch((err) => (err instanceof RunStateError ? undefined : onError(err)));
      }
    };
    let polling: Promise<unknown> | undefined;
    const poller =
      pollMs > 0
        ? setInterval(() => {
            polling ??= scan()
              .catch(onError)
              .finally(() => (polling = undefined));
          }, pollMs)
        : undefined;
    poller?.unref();
    return {
      store,
      engine,
      jobs,
      services,
      worker,
      recovered: { requeuedJobs: report.requeued, failedJobs: report.failed, failedRuns },
      async close() {
        if (poller) clearInterval(poller);
        await polling;
        await worker?.stop();
        await reclaimer?.stop();
        await services.remoteJobs.stop();
        engine.close();
        await store.close();
      },
    };
  } catch (err) {
    await store.close();
    throw err;
  }
}
