// The worker: claims queued local jobs one at a time and runs each through the trainer's
// supervised child process, turning its events into job events, metrics and checkpoints. It
// holds the job under a lease that the trainer's progress renews, each write fenced by the
// claim's token: a trainer that stops making progress is killed by its supervisor and the job
// resumed from its checkpoint (or failed once out of attempts), and a worker that finds its
// lease lost stops its trainer at once. A cancel (here or from another process) reaches the
// trainer as an abort, and a shutdown hands the job back to the queue so the next start resumes
// it from its checkpoint. It also takes back the jobs of holders that are gone.
import { mkdir } from 'node:fs/promises';
import { autoEpochs } from '../datasets/index.ts';
import { deviceOf, evaluateExamplesOf, OUTPUT_DIR_METADATA_KEY } from '../providers/fine-tune-request.ts';
import { runLocalTraining, type LocalTrainingRunner } from '../providers/local.ts';
import { parseModelRef } from '../trainer/model-ref.ts';
import { resolveModelFile } from '../trainer/model-source.ts';
import { StepClock, type StallPolicy } from '../trainer/progress-watchdog.ts';
import type { LocalFineTuneEvent, LocalFineTuneResult, LocalFineTuneSpec } from '../trainer/supervised-job-types.ts';
import { describeError, type JobRow } from '../store/index.ts';
import { fineTunedModelName } from './model-registry.ts';
import { JobError, LeaseLostError } from './errors.ts';
import { leaseMs, leasePolicy, startupLeaseMs, type LeasePolicy } from './lease.ts';
import { LeaseReclaimer } from './lease-reclaimer.ts';
import { claimOf, countLines, workerIdentity, type JobQueue, type LeaseWrite, type RecoveryReport } from './queue.ts';
import { parseHyperparameters } from './render.ts';

export interface WorkerOptions {
  /** The trainer entry point; default the supervised child process (`runLocalFineTune`). */
  train?: LocalTrainingRunner;
  workerId?: string;
  /**
   * How long the trainer may go without progress before it counts as stuck: the start-up
   * allowance, then a multiple of its measured step time within a floor and a cap. Default
   * DEFAULT_STALL_POLICY.
   */
  stall?: Partial<StallPolicy>;
  /** The lease lasts the stall allowance plus this, from the last progress. Default 30 s. */
  leaseGraceMs?: number;
  /** How often the holder checks that it still holds its job and whether a cancel or pause was asked. Default 2 s. */
  checkMs?: number;
  /** How often an idle worker looks for work queued by other processes. Default 1 s. */
  pollMs?: number;
  /** How often to take back the jobs of holders that are gone. Default 5 s. */
  reclaimMs?: number;
  /** Told when this worker took back jobs whose holder is gone. */
  onReclaimed?: (report: RecoveryReport) => void;
  /** Told when this worker lost a job to another (its lease ran out while it was frozen or cut off); its trainer was stopped. */
  onLeaseLost?: (jobId: string) => void;
  /** CPU threads for training; default the trainer's choice. */
  threads?: number;
  /** Read for HF_ENDPOINT, HF_TOKEN and OLLAMA_MODELS when a base is an hf:/ollama: reference; default process.env. */
  modelEnv?: NodeJS.ProcessEnv;
  /** Problems the worker itself meets (the database went away…). */
  onError?: (err: unknown) => void;
}

type StopReason = 'cancel' | 'pause' | 'shutdown' | 'lost';

/** Trainer failures worth another attempt from the checkpoint: the process, not the job, went wrong. */
const RETRIED_FAILURES = new Set(['trainer_stalled', 'worker_crashed']);

interface Running {
  controller: AbortController;
  /** Kills the trainer at once, without a checkpoint: the job is someone else's now. */
  kill: AbortController;
  reason?: StopReason;
  done: Promise<void>;
}

type MetricsEvent = Extract<LocalFineTuneEvent, { type: 'metrics' }>;

export class JobWorker {
  readonly id: string;
  private readonly train: LocalTrainingRunner;
  private readonly policy: LeasePolicy;
  private readonly checkMs: number;
  private readonly pollMs: number;
  private readonly reclaimer: LeaseReclaimer;
  private readonly running = new Map<string, Running>();
  private loop?: Promise<void>;
  private stopping = false;
  private wake?: () => void;

  constructor(
    private readonly queue: JobQueue,
    private readonly options: WorkerOptions = {},
  ) {
    this.id = options.workerId ?? workerIdentity();
    this.train = options.train ?? runLocalTraining;
    this.policy = leasePolicy({ ...(options.stall ? { stall: options.stall } : {}), ...(options.leaseGraceMs !== undefined ? { graceMs: options.leaseGraceMs } : {}) });
    this.checkMs = options.checkMs ?? 2_000;
    this.pollMs = options.pollMs ?? 1_000;
    this.reclaimer = new LeaseReclaimer(queue, {
      ...(options.reclaimMs !== undefined ? { everyMs: options.reclaimMs } : {}),
      ...(options.onReclaimed ? { onReclaimed: options.onReclaimed } : {}),
      ...(options.onError ? { onError: options.onError } : {}),
    });
  }

  get busy(): boolean {
    return this.running.size > 0;
  }

  /** Runs jobs until `stop()`. */
  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.reclaimer.start();
    const unwake = this.queue.addWaker(() => this.wake?.());
    this.loop = (async () => {
      try {
        while (!this.stopping) {
          let ran: string | undefined;
          try {
            ran = await this.runNext();
          } catch (err) {
            this.options.onError?.(err);
          }
          if (!ran && !this.stopping) await this.sleep(this.pollMs);
        }
      } finally {
        unwake();
      }
    })();
  }

  /**
   * Stops claiming work. A job still training is handed back to the queue (it resumes from its
   * checkpoint on the next start) unless `requeue` is false, which waits for it to finish.
   */
  async stop(options: { requeue?: boolean } = {}): Promise<void> {
    this.stopping = true;
    await this.reclaimer.stop();
    this.wake?.();
    if (options.requeue !== false) {
      for (const r of this.running.values()) {
        r.reason ??= 'shutdown';
        r.controller.abort(new Error('NodeAI is shutting down'));
      }
    }
    await Promise.all([...this.running.values()].map((r) => r.done));
    await this.loop;
    this.loop = undefined;
  }

  /** Claims and runs one job to its end; the job's ID, or undefined when none was due. */
  async runNext(): Promise<string | undefined> {
    const row = await this.queue.claim(this.id, startupLeaseMs(this.policy));
    if (!row) return undefined;
    const controller = new AbortController();
    const entry: Running = { controller, kill: new AbortController(), done: Promise.resolve() };
    this.running.set(row.id, entry);
    const untrack = this.queue.trackLocal(row.id, controller);
    controller.signal.addEventListener('abort', () => {
      entry.reason ??= (controller.signal.reason as { code?: unknown } | undefined)?.code === 'job_paused' ? 'pause' : 'cancel';
    });
    entry.done = this.runJob(row, entry).finally(() => {
      untrack();
      this.running.delete(row.id);
    });
    await entry.done;
    return row.id;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  private async runJob(row: JobRow, entry: Running): Promise<void> {
    const { queue } = this;
    const jobId = row.id;
    const lease = claimOf(row)!;
    const modelName = fineTunedModelName(row);
    const clock = new StepClock(this.policy.stall);
    const lost = (why: string) => {
      entry.reason = 'lost';
      entry.kill.abort(new Error(why));
      entry.controller.abort(new Error(why));
    };
    let writes: Promise<unknown> = Promise.resolve();
    // Events arrive synchronously from the supervisor; writing them in order keeps seq honest.
    const write = (fn: () => Promise<unknown>) => {
      writes = writes.then(fn).catch((err) => {
        if (err instanceof LeaseLostError) lost(`job ${jobId} was taken over by another worker`);
        else this.options.onError?.(err);
      });
    };
    let last: MetricsEvent | undefined;
    let check: NodeJS.Timeout | undefined;
    let result: LocalFineTuneResult;
    let trainingPath: string;
    try {
      trainingPath = await queue.store.files.path(row.training_file);
      const validationPath = row.validation_file ? await queue.store.files.path(row.validation_file) : null;
      const jobDir = outputDir(row) ?? queue.jobDir(jobId);
      await mkdir(jobDir, { recursive: true });
      const spec = this.spec(row, jobDir, trainingPath, validationPath, modelName, await this.baseFile(row));
      // A pause gives its attempt back, so a job resumed after one is told apart by its checkpoints.
      const resumed = Number(row.attempts) <= 1 && (await queue.listCheckpoints(jobId, { limit: 1 })).data.length > 0;
      await queue.addEvent(jobId, { message: Number(row.attempts) > 1 ? `Fine-tuning job resumed (attempt ${row.attempts})` : resumed ? 'Fine-tuning job continues from its last checkpoint' : 'Fine-tuning job started' }, { lease });

      // Not a heartbeat: progress renews the lease. This notices a lease lost (the holder was
      // frozen, or cut off from the database, past its lease) and requests made elsewhere.
      check = setInterval(() => {
        write(async () => {
          const state = await queue.checkLease(lease);
          if (!state.held) return lost(`job ${jobId} was taken over by another worker`);
          if (entry.reason) {
            // Stopping (cancel, pause, shutdown): the trainer is checkpointing, watched by its supervisor.
            await queue.renew({ lease, renewMs: leaseMs(this.policy, clock) });
          } else if (state.cancelRequested) {
            entry.reason = 'cancel';
            entry.controller.abort(new Error('cancelled by user'));
          } else if (state.pauseRequested) {
            entry.reason = 'pause';
            entry.controller.abort(new JobError('job_paused', 'paused by user'));
          }
        });
      }, this.checkMs);
      check.unref();

      const onEvent = (event: LocalFineTuneEvent) => {
        clock.observe(event);
        if (event.type === 'metrics') last = event;
        const progress: LeaseWrite = {
          lease,
          renewMs: leaseMs(this.policy, clock),
          ...(event.type === 'metrics' && event.trained_tokens !== undefined ? { trainedTokens: event.trained_tokens } : {}),
          ...(event.type === 'metrics' && event.eta_seconds !== undefined ? { estimatedFinish: Date.now() + Math.round(event.eta_seconds * 1000) } : {}),
        };
        write(() => this.record(progress, modelName, event, last));
      };
      result = await this.train(spec, { onEvent, signal: entry.controller.signal, kill: entry.kill.signal, stall: this.policy.stall });
    } catch (err) {
      result = { status: 'failed', trainedTokens: 0, steps: 0, resumed: false, error: { code: errorCode(err), message: queue.store.redactor.redact(describeError(err)) } };
      trainingPath ??= '';
    } finally {
      if (check) clearInterval(check);
    }
    await writes;

    // However the trainer ended, a holder that lost the job (its writes were refused, or it was
    // frozen past its lease) records nothing: the job is its new holder's.
    if (entry.reason === 'lost' || result.error?.code === 'lease_lost' || !(await queue.checkLease(lease).then((s) => s.held, () => true))) {
      this.options.onLeaseLost?.(jobId);
      return;
    }
    if (result.status === 'succeeded') {
      const examples = trainingPath ? await countLines(trainingPath).catch(() => null) : null;
      const hp = parseHyperparameters(row.hyperparameters_json);
      const epochs = last?.total_epochs ?? (typeof hp.n_epochs === 'number' ? hp.n_epochs : examples ? autoEpochs(examples) : null);
      // A pause that came as the last step finished has nothing left to pause: the job is done.
      await queue.finish(
        jobId,
        'succeeded',
        {
          trainedTokens: result.trainedTokens,
          model: {
            files: { ...(result.modelPath ? { model: result.modelPath } : {}), ...(result.adapterPath ? { adapter: result.adapterPath } : {}) },
            trainingExamples: examples,
            epochs,
            metrics: finalMetrics(result, last),
            evaluation: result.evaluation ?? null,
          },
        },
        lease,
        ['running', 'paused'],
      );
      return;
    }
    const pausedAt = result.steps || last?.step || null;
    if (entry.reason === 'shutdown') {
      // A job the user paused while NodeAI stopped stays paused rather than going back to the queue.
      if (!(await queue.release(lease, 'Paused because NodeAI stopped; the job resumes from its last checkpoint on the next start', { giveBackAttempt: true }))) {
        await queue.settlePause(jobId, lease, pausedAt, result.trainedTokens);
      }
      return;
    }
    if (entry.reason === 'pause' && result.status === 'cancelled') {
      await queue.settlePause(jobId, lease, pausedAt, result.trainedTokens);
      return;
    }
    if (entry.reason === 'cancel' || result.status === 'cancelled') {
      await queue.finish(jobId, 'cancelled', { trainedTokens: result.trainedTokens }, lease);
      return;
    }
    const error = result.error ?? { code: 'training_failed', message: 'The trainer stopped without saying why.' };
    const attempts = Number(row.attempts);
    const maxAttempts = Number(row.max_attempts);
    if (RETRIED_FAILURES.has(error.code) && entry.reason === undefined) {
      if (attempts < maxAttempts) {
        await queue.release(lease, `Attempt ${attempts} of ${maxAttempts} ended: ${error.message} The job resumes from its last checkpoint.`, { giveBackAttempt: false });
        return;
      }
      error.message = `${error.message} The job stopped this way on all ${maxAttempts} attempts; start a new job (or look at the machine's memory and load).`;
    }
    await queue.finish(jobId, 'failed', { trainedTokens: result.trainedTokens, error: { code: error.code, message: error.message, param: null } }, lease, ['running', 'paused']);
  }

  /** What the trainer loads: nodeai-tiny, a GGUF path, the file of an hf:/ollama: reference, or of a registered fine-tuned model. */
  private async baseFile(row: JobRow): Promise<string> {
    const ref = parseModelRef(row.base_model);
    // Fetched when the job was created; found again here (and fetched again only if it was removed since).
    if (ref.kind === 'hf' || ref.kind === 'ollama') return (await resolveModelFile(ref, { dataDir: this.queue.store.dataDir, ...(this.options.modelEnv ? { env: this.options.modelEnv } : {}) })).path;
    if (!row.base_model.startsWith('ft:')) return row.base_model;
    const model = await this.queue.models.trainable(row.base_model);
    if (!model) throw new JobError('base_model_not_found', `The base model ${row.base_model} is no longer a registered local model (deleted?); start from another model.`);
    return model.files.model;
  }

  private spec(row: JobRow, jobDir: string, trainingFile: string, validationFile: string | null, modelName: string, baseModel: string): LocalFineTuneSpec {
    const hp = parseHyperparameters(row.hyperparameters_json);
    return {
      jobDir,
      trainingFile,
      validationFile,
      baseModel,
      epochs: hp.n_epochs,
      batchSize: hp.batch_size,
      // The absolute rate, or OpenAI's multiple of the base's automatic one (the trainer knows the base's size).
      learningRate: hp.learning_rate ?? 'auto',
      ...(typeof hp.learning_rate_multiplier === 'number' ? { learningRateMultiplier: hp.learning_rate_multiplier } : {}),
      // Rank 0 or none trains every weight: the trainer's loraOf decides, as for every spec.
      ...(hp.lora_rank !== undefined ? { loraRank: hp.lora_rank } : {}),
      ...(hp.lora_alpha !== undefined ? { loraAlpha: hp.lora_alpha } : {}),
      ...(hp.early_stopping_patience ? { earlyStoppingPatience: hp.early_stopping_patience } : {}),
      ...(row.seed !== null ? { seed: Number(row.seed) } : {}),
      ...(this.options.threads ? { threads: this.options.threads } : {}),
      device: deviceOf(rowMetadata(row)),
      fencingToken: Number(row.fencing_token),
      ...outputName(row, modelName),
      ...evaluateSetting(row, validationFile, modelName),
    };
  }

  private async record(write: LeaseWrite, modelName: string, event: LocalFineTuneEvent, last: MetricsEvent | undefined): Promise<void> {
    const { queue } = this;
    const { jobId } = write.lease;
    switch (event.type) {
      case 'status':
        await queue.addEvent(jobId, { level: event.status === 'failed' ? 'error' : 'info', message: event.message }, write);
        return;
      case 'message':
        await queue.addEvent(jobId, { level: event.level, message: event.message }, write);
        return;
      case 'metrics': {
        const { type: _type, time: _time, ...data } = event;
        const parts = [`Step ${event.step}/${event.total_steps}`];
        if (event.train_loss !== undefined) parts.push(`training loss=${event.train_loss.toFixed(4)}`);
        if (event.valid_loss !== undefined) parts.push(`validation loss=${event.valid_loss.toFixed(4)}`);
        await queue.addEvent(jobId, { type: 'metrics', message: parts.join(': ').replace(/: (validation)/, ', $1'), data }, write);
        return;
      }
      case 'checkpoint': {
        const metrics: Record<string, number> = { step: event.step };
        if (last?.train_loss !== undefined) metrics.train_loss = last.train_loss;
        if (last?.valid_loss !== undefined) metrics.valid_loss = last.valid_loss;
        if (last?.train_mean_token_accuracy !== undefined) metrics.train_mean_token_accuracy = last.train_mean_token_accuracy;
        if (last?.valid_mean_token_accuracy !== undefined) metrics.valid_mean_token_accuracy = last.valid_mean_token_accuracy;
        await queue.recordCheckpoint(write, { step: event.step, name: `${modelName}:ckpt-step-${event.step}`, path: event.path, metrics, createdAt: event.time || Date.now() });
        return;
      }
    }
  }
}

function finalMetrics(result: LocalFineTuneResult, last: MetricsEvent | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  const src = { ...(last ?? {}), ...(result.finalMetrics ?? {}) } as Record<string, unknown>;
  for (const key of ['train_loss', 'valid_loss', 'train_mean_token_accuracy', 'valid_mean_token_accuracy'] as const) {
    if (typeof src[key] === 'number' && Number.isFinite(src[key])) out[key] = src[key] as number;
  }
  out.steps = result.steps;
  return out;
}

/** A job's metadata object, or null when it has none. */
function rowMetadata(row: JobRow): Record<string, unknown> | null {
  return row.metadata_json ? (JSON.parse(row.metadata_json) as Record<string, unknown>) : null;
}

/** The evaluation after training: base vs fine-tuned on the validation file, unless the job turned it off. */
function evaluateSetting(row: JobRow, validationFile: string | null, modelName: string): Pick<LocalFineTuneSpec, 'evaluate'> {
  const maxExamples = evaluateExamplesOf(rowMetadata(row));
  return validationFile && maxExamples > 0 ? { evaluate: { maxExamples, baseName: row.base_model, modelName } } : {};
}

/** The folder a job asked to keep its files in (`nodeai finetune --out DIR`), set only by the fine-tune service. */
function outputDir(row: JobRow): string | undefined {
  const dir = rowMetadata(row)?.[OUTPUT_DIR_METADATA_KEY];
  return typeof dir === 'string' ? dir : undefined;
}

/**
 * The model file's stem: in the data dir, the fine-tuned model's name made a file name; in a
 * folder of the user's, the suffix they chose, or the trainer's ft-<base> as `nodeai finetune` names it.
 */
function outputName(row: JobRow, modelName: string): { outputName?: string } {
  if (outputDir(row) === undefined) return { outputName: modelName.replace(/[^\w.-]+/g, '-').replace(/-+/g, '-').replace(/^-|-$/g, '') };
  return row.suffix ? { outputName: row.suffix } : {};
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : 'training_failed';
}
