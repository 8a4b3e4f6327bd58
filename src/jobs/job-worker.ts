// The worker: claims queued local jobs one at a time and runs each through the trainer's
// supervised child process, turning its events into job events, metrics and checkpoints. It
// holds the job under a lease it renews on every heartbeat; a cancel (here or from another
// process) reaches the trainer as an abort, and a shutdown hands the job back to the queue so
// the next start resumes it from its checkpoint.
import { mkdir } from 'node:fs/promises';
import { autoEpochs } from '../datasets/index.ts';
import { OUTPUT_DIR_METADATA_KEY } from '../providers/fine-tune-request.ts';
import { runLocalTraining, type LocalTrainingRunner } from '../providers/local.ts';
import type { LocalFineTuneEvent, LocalFineTuneResult, LocalFineTuneSpec } from '../trainer/supervised-job-types.ts';
import { describeError, type JobRow } from '../store/index.ts';
import { fineTunedModelName } from './model-registry.ts';
import { JobError } from './errors.ts';
import { countLines, workerIdentity, type JobQueue } from './queue.ts';
import { parseHyperparameters } from './render.ts';

export interface WorkerOptions {
  /** The trainer entry point; default the supervised child process (`runLocalFineTune`). */
  train?: LocalTrainingRunner;
  workerId?: string;
  /** How long a claim lasts without a heartbeat. Default 30 s. */
  leaseMs?: number;
  heartbeatMs?: number;
  /** How often an idle worker looks for work queued by other processes. Default 1 s. */
  pollMs?: number;
  /** CPU threads for training; default the trainer's choice. */
  threads?: number;
  /** Problems the worker itself meets (the database went away…). */
  onError?: (err: unknown) => void;
}

type StopReason = 'cancel' | 'pause' | 'shutdown' | 'lost';

interface Running {
  controller: AbortController;
  reason?: StopReason;
  done: Promise<void>;
}

type MetricsEvent = Extract<LocalFineTuneEvent, { type: 'metrics' }>;

export class JobWorker {
  readonly id: string;
  private readonly train: LocalTrainingRunner;
  private readonly leaseMs: number;
  private readonly heartbeatMs: number;
  private readonly pollMs: number;
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
    this.leaseMs = options.leaseMs ?? 30_000;
    this.heartbeatMs = options.heartbeatMs ?? Math.min(5_000, Math.floor(this.leaseMs / 3));
    this.pollMs = options.pollMs ?? 1_000;
  }

  get busy(): boolean {
    return this.running.size > 0;
  }

  /** Runs jobs until `stop()`. */
  start(): void {
    if (this.loop) return;
    this.stopping = false;
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
    const row = await this.queue.claim(this.id, this.leaseMs);
    if (!row) return undefined;
    const controller = new AbortController();
    const entry: Running = { controller, done: Promise.resolve() };
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
    const modelName = fineTunedModelName(row);
    let writes: Promise<unknown> = Promise.resolve();
    // Events arrive synchronously from the supervisor; writing them in order keeps seq honest.
    const write = (fn: () => Promise<unknown>) => {
      writes = writes.then(fn).catch((err) => this.options.onError?.(err));
    };
    let last: MetricsEvent | undefined;
    let heartbeat: NodeJS.Timeout | undefined;
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
      await queue.addEvent(jobId, { message: Number(row.attempts) > 1 ? `Fine-tuning job resumed (attempt ${row.attempts})` : resumed ? 'Fine-tuning job continues from its last checkpoint' : 'Fine-tuning job started' });

      heartbeat = setInterval(() => {
        write(async () => {
          const beat = await queue.heartbeat(jobId, this.id, this.leaseMs, {
            ...(last?.trained_tokens !== undefined ? { trained_tokens: last.trained_tokens } : {}),
            ...(last?.eta_seconds !== undefined ? { estimated_finish: Date.now() + Math.round(last.eta_seconds * 1000) } : {}),
          });
          if (!beat.held) {
            entry.reason = 'lost';
            entry.controller.abort(new Error(`job ${jobId} was taken over by another worker`));
          } else if (beat.cancelRequested) {
            entry.reason ??= 'cancel';
            entry.controller.abort(new Error('cancelled by user'));
          } else if (beat.pauseRequested) {
            entry.reason ??= 'pause';
            entry.controller.abort(new JobError('job_paused', 'paused by user'));
          }
        });
      }, this.heartbeatMs);
      heartbeat.unref();

      const onEvent = (event: LocalFineTuneEvent) => {
        if (event.type === 'metrics') last = event;
        write(() => this.record(jobId, modelName, event, last));
      };
      result = await this.train(spec, { onEvent, signal: entry.controller.signal });
    } catch (err) {
      result = { status: 'failed', trainedTokens: 0, steps: 0, resumed: false, error: { code: errorCode(err), message: queue.store.redactor.redact(describeError(err)) } };
      trainingPath ??= '';
    } finally {
      if (heartbeat) clearInterval(heartbeat);
    }
    await writes;

    if (entry.reason === 'lost') return;
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
          },
        },
        this.id,
        ['running', 'paused'],
      );
      return;
    }
    const pausedAt = result.steps || last?.step || null;
    if (entry.reason === 'shutdown') {
      // A job the user paused while NodeAI stopped stays paused rather than going back to the queue.
      if (!(await queue.release(jobId, this.id, 'Paused because NodeAI stopped; the job resumes from its last checkpoint on the next start'))) {
        await queue.settlePause(jobId, this.id, pausedAt, result.trainedTokens);
      }
      return;
    }
    if (entry.reason === 'pause' && result.status === 'cancelled') {
      await queue.settlePause(jobId, this.id, pausedAt, result.trainedTokens);
      return;
    }
    if (entry.reason === 'cancel' || result.status === 'cancelled') {
      await queue.finish(jobId, 'cancelled', { trainedTokens: result.trainedTokens }, this.id);
      return;
    }
    const error = result.error ?? { code: 'training_failed', message: 'The trainer stopped without saying why.' };
    await queue.finish(jobId, 'failed', { trainedTokens: result.trainedTokens, error: { code: error.code, message: error.message, param: null } }, this.id, ['running', 'paused']);
  }

  /** What the trainer loads: nodeai-tiny, a GGUF path, or the file of a registered fine-tuned model. */
  private async baseFile(row: JobRow): Promise<string> {
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
      ...(hp.lora_rank ? { loraRank: hp.lora_rank, ...(hp.lora_alpha ? { loraAlpha: hp.lora_alpha } : {}) } : {}),
      ...(hp.early_stopping_patience ? { earlyStoppingPatience: hp.early_stopping_patience } : {}),
      ...(row.seed !== null ? { seed: Number(row.seed) } : {}),
      ...(this.options.threads ? { threads: this.options.threads } : {}),
      ...outputName(row, modelName),
    };
  }

  private async record(jobId: string, modelName: string, event: LocalFineTuneEvent, last: MetricsEvent | undefined): Promise<void> {
    const { queue } = this;
    switch (event.type) {
      case 'status':
        await queue.addEvent(jobId, { level: event.status === 'failed' ? 'error' : 'info', message: event.message });
        return;
      case 'message':
        await queue.addEvent(jobId, { level: event.level, message: event.message });
        return;
      case 'metrics': {
        const { type: _type, time: _time, ...data } = event;
        const parts = [`Step ${event.step}/${event.total_steps}`];
        if (event.train_loss !== undefined) parts.push(`training loss=${event.train_loss.toFixed(4)}`);
        if (event.valid_loss !== undefined) parts.push(`validation loss=${event.valid_loss.toFixed(4)}`);
        await queue.addEvent(jobId, { type: 'metrics', message: parts.join(': ').replace(/: (validation)/, ', $1'), data });
        return;
      }
      case 'checkpoint': {
        const metrics: Record<string, number> = { step: event.step };
        if (last?.train_loss !== undefined) metrics.train_loss = last.train_loss;
        if (last?.valid_loss !== undefined) metrics.valid_loss = last.valid_loss;
        if (last?.train_mean_token_accuracy !== undefined) metrics.train_mean_token_accuracy = last.train_mean_token_accuracy;
        if (last?.valid_mean_token_accuracy !== undefined) metrics.valid_mean_token_accuracy = last.valid_mean_token_accuracy;
        await queue.store.db
          .insertInto('job_checkpoints')
          .values({
            id: `ftckpt-${jobId.slice(6)}-${event.step}`.slice(0, 64),
            job_id: jobId,
            step_number: event.step,
            fine_tuned_model_checkpoint: `${modelName}:ckpt-step-${event.step}`,
            metrics_json: JSON.stringify(metrics),
            path: event.path,
            created_at: event.time || Date.now(),
          })
          // A resumed run can write the checkpoint of a step it already wrote before the crash.
          .onConflict((oc) => oc.columns(['job_id', 'step_number']).doNothing())
          .execute();
        await queue.addEvent(jobId, { message: `Checkpoint saved at step ${event.step}` });
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

/** The folder a job asked to keep its files in (`nodeai finetune --out DIR`), set only by the fine-tune service. */
function outputDir(row: JobRow): string | undefined {
  const dir = row.metadata_json ? (JSON.parse(row.metadata_json) as Record<string, unknown>)[OUTPUT_DIR_METADATA_KEY] : undefined;
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
