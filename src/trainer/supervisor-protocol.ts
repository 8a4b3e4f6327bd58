// What the supervisor (parent) and the training worker (child) share: the IPC messages, the typed
// error with its stable codes, the layout of a job directory, and the job.json object. Both sides
// read and write the same files, so a job directory written by a killed run is understood by the
// next one.
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FULL_FINE_TUNING, loraRankOf } from '../datasets/auto-hyperparameters.ts';
import { ggufStem } from './gguf.ts';
import type { FineTuningJob, Hyperparameters, JobStatus } from './fine-tuning-job.ts';
import type { LocalFineTuneEvent, LocalFineTuneResult, LocalFineTuneSpec } from './supervised-job-types.ts';
import { NodeAIError } from '../nodeai-error.ts';

export type LocalFineTuneErrorCode =
  /** A spec field is missing or out of range. */
  | 'invalid_spec'
  /** The base GGUF path does not exist. */
  | 'base_model_not_found'
  /** The base GGUF is corrupt, quantized, of an unsupported architecture, or lacks a chat template. */
  | 'invalid_base_model'
  /** The training or validation file is missing or has an invalid line. */
  | 'invalid_training_file'
  /** No example to learn from. */
  | 'empty_dataset'
  /** One example does not fit in the model's context; `line` names it. */
  | 'example_too_long'
  /** jobDir holds a run with other settings or other data; it cannot be resumed with these. */
  | 'job_dir_in_use'
  /** The device the job asked for (CUDA) cannot be used on this machine; the message names what is missing. */
  | 'device_unavailable'
  /** The trainer refused or failed (ggml error, bad option it found). */
  | 'training_failed'
  /** The child process could not be started. */
  | 'worker_start_failed'
  /** The child process died (a native crash, out of memory, killed). */
  | 'worker_crashed'
  /** The child process made no progress for longer than its steps allow (stuck in native code, stopped) and was killed. */
  | 'trainer_stalled'
  /** The job was taken over by another process (this one's lease ran out); the child was killed without a checkpoint. */
  | 'lease_lost';

/** A failure of a local fine-tuning job; `code` is stable, `file`/`line` point at the data at fault. */
export class LocalFineTuneError extends NodeAIError {
  override readonly name = 'LocalFineTuneError';
  constructor(
    override readonly code: LocalFineTuneErrorCode,
    message: string,
    readonly where: { file?: string; line?: number } = {},
  ) {
    super(code, message);
  }

  toJSON(): JobError {
    return { code: this.code, message: this.message, ...this.where };
  }
}

export interface JobError {
  code: string;
  message: string;
  file?: string;
  line?: number;
}

// ---------------------------------------------------------------------------------------------
// IPC

export type ParentMessage = { type: 'start'; spec: LocalFineTuneSpec } | { type: 'cancel' };
export type WorkerMessage = { type: 'event'; event: LocalFineTuneEvent } | { type: 'result'; result: LocalFineTuneResult };

// ---------------------------------------------------------------------------------------------
// Job directory layout

export const DEFAULT_CHECKPOINT_EVERY_SECONDS = 600;
export const CHECKPOINTS_KEPT = 2;

export function jobPaths(jobDir: string, outputName: string) {
  const dir = resolve(jobDir);
  return {
    dir,
    metrics: join(dir, 'metrics.jsonl'),
    job: join(dir, 'job.json'),
    checkpoints: join(dir, 'checkpoints'),
    model: join(dir, `${outputName}.gguf`),
    adapter: join(dir, `${outputName}.lora.gguf`),
    /** The automatic evaluation's report (LocalFineTuneSpec.evaluate). */
    evaluation: join(dir, 'evaluation.json'),
    /** `{token}`: the claim of the job queue that may write here now (see LocalFineTuneSpec.fencingToken). */
    holder: join(dir, 'holder.json'),
  };
}

/** The fencing token the job directory names, or 0 when none does. */
export function holderToken(holderPath: string): number {
  const token = readJson<{ token?: unknown }>(holderPath)?.token;
  return typeof token === 'number' && Number.isSafeInteger(token) ? token : 0;
}

export function defaultOutputName(baseModel: string): string {
  const stem = ggufStem(baseModel);
  return `ft-${stem.replace(/[^A-Za-z0-9._-]+/g, '-')}`;
}

export function jobId(jobDir: string): string {
  return `ftjob-${createHash('sha256').update(resolve(jobDir)).digest('hex').slice(0, 24)}`;
}

export interface CheckpointEntry {
  step: number;
  path: string;
  /** Supervisor state saved next to the checkpoint (what the trainer's checkpoint does not hold). */
  sidecar: string;
}

const CKPT_RE = /^step-(\d{9})\.ckpt$/;

export function checkpointPaths(dir: string, step: number): CheckpointEntry {
  const stem = `step-${String(step).padStart(9, '0')}`;
  return { step, path: join(dir, `${stem}.ckpt`), sidecar: join(dir, `${stem}.json`) };
}

/** Checkpoints in a job's checkpoint folder, newest first. */
export function listCheckpoints(dir: string): CheckpointEntry[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((f) => CKPT_RE.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => checkpointPaths(dir, Number(m[1])))
    .sort((a, b) => b.step - a.step);
}

/** Deletes all but the newest `keep` checkpoints (and their sidecars). */
/** Deletes all but the newest `keep` checkpoints, and never the one of step `alsoKeep` (the best so far). */
export function pruneCheckpoints(dir: string, keep = CHECKPOINTS_KEPT, alsoKeep?: number): void {
  for (const c of listCheckpoints(dir).slice(keep)) {
    if (c.step === alsoKeep) continue;
    rmSync(c.path, { force: true });
    rmSync(c.sidecar, { force: true });
  }
}

/** Written through a temporary file and a rename, so a reader never sees half a file; a failed write (a full disk) leaves nothing. */
export function writeJsonAtomic(path: string, value: unknown): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export function readJson<T>(path: string): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export function appendEvent(metricsPath: string, event: LocalFineTuneEvent): void {
  appendFileSync(metricsPath, JSON.stringify(event) + '\n');
}

/** Keeps only the events a resumed run does not repeat: metrics and checkpoints up to `step`. */
export function truncateMetrics(metricsPath: string, step: number): void {
  if (!existsSync(metricsPath)) return;
  const kept = readFileSync(metricsPath, 'utf8')
    .split('\n')
    .filter((line) => {
      if (!line.trim()) return false;
      try {
        const e = JSON.parse(line) as LocalFineTuneEvent;
        return !((e.type === 'metrics' || e.type === 'checkpoint') && e.step > step);
      } catch {
        return false; // a line torn by a kill mid-append
      }
    });
  const tmp = `${metricsPath}.${process.pid}.tmp`;
  writeFileSync(tmp, kept.map((l) => l + '\n').join(''));
  renameSync(tmp, metricsPath);
}

// ---------------------------------------------------------------------------------------------
// Settings that must match for a job directory to be resumed

/** SHA-256 of a file's bytes, read in chunks (training files can be large); null when unreadable. */
function fileDigest(path: string | null | undefined): string | null {
  if (!path) return null;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const h = createHash('sha256');
    const buf = Buffer.allocUnsafe(1 << 20);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
    return h.digest('hex');
  } finally {
    closeSync(fd);
  }
}

/** The adapter a spec asks for, its alpha defaulted to the rank; undefined for full fine-tuning (no rank, or 0). */
export function loraOf(spec: Pick<LocalFineTuneSpec, 'loraRank' | 'loraAlpha'>): { rank: number; alpha: number } | undefined {
  const rank = loraRankOf(spec.loraRank);
  return rank === undefined ? undefined : { rank, alpha: spec.loraAlpha ?? rank };
}

/** The spec fields and data that decide what is trained; a resumed run must agree on all of them. */
export function trainingIdentity(spec: LocalFineTuneSpec): Record<string, unknown> {
  return {
    data: `${fileDigest(spec.trainingFile)}/${fileDigest(spec.validationFile)}`,
    baseModel: spec.baseModel,
    epochs: spec.epochs ?? 'auto',
    batchSize: spec.batchSize ?? 'auto',
    learningRate: spec.learningRateMultiplier ? `×${spec.learningRateMultiplier}` : (spec.learningRate ?? 'auto'),
    loraRank: loraOf(spec)?.rank ?? FULL_FINE_TUNING,
    loraAlpha: loraOf(spec)?.alpha ?? null,
    seed: spec.seed ?? 42,
    outputName: spec.outputName ?? defaultOutputName(spec.baseModel),
  };
}

export function identityDiff(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  return Object.keys(a)
    .filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]))
    .map((k) => (k === 'data' ? 'other training or validation data' : `${k} ${JSON.stringify(b[k])} (this run: ${JSON.stringify(a[k])})`));
}

// ---------------------------------------------------------------------------------------------
// job.json: OpenAI's fine_tuning.job, plus a `nodeai` section with what only a local job has

/** A trainer run's own job.json: the shared job object, as one run of the supervisor sees it. */
export interface JobObject extends Omit<FineTuningJob, 'status' | 'error' | 'method'> {
  /** A run is never queued or paused (the job queue is); it validates, runs and ends. */
  status: Exclude<JobStatus, 'queued' | 'paused'>;
  /** The failure names the data's file and line where there is one, not a request field. */
  error: JobError | null;
  method: { type: 'supervised'; supervised: { hyperparameters: Hyperparameters } };
  estimated_finish: number | null;
  integrations: [];
  metadata: null;
  nodeai: {
    job_dir: string;
    identity: Record<string, unknown>;
    model_path: string | null;
    adapter_path: string | null;
    steps: number;
    total_steps: number | null;
    resumed: boolean;
    final_metrics: LocalFineTuneResult['finalMetrics'] | null;
    threads: number | null;
    /** The device the last run trained on (absent before training starts, and in job.json files written before it existed). */
    device?: 'cpu' | 'cuda';
    /** Present when early stopping ended the run; the model written is the best epoch's. */
    early_stopping?: { stopped_at_epoch: number; best_epoch: number; best_step: number; best_valid_loss: number };
  };
}

export function newJob(spec: LocalFineTuneSpec, previous: JobObject | undefined): JobObject {
  const lora = loraOf(spec);
  const hp: Hyperparameters = {
    n_epochs: spec.epochs ?? 'auto',
    batch_size: spec.batchSize ?? 'auto',
    learning_rate_multiplier: spec.learningRate === undefined || spec.learningRate === 'auto' ? 'auto' : 1,
    ...(lora ? { lora_rank: lora.rank, lora_alpha: lora.alpha } : {}),
  };
  return {
    object: 'fine_tuning.job',
    id: jobId(spec.jobDir),
    model: spec.baseModel,
    created_at: previous?.created_at ?? Math.floor(Date.now() / 1000),
    finished_at: null,
    fine_tuned_model: null,
    organization_id: 'local',
    result_files: [],
    status: 'validating_files',
    validation_file: spec.validationFile ?? null,
    training_file: spec.trainingFile,
    hyperparameters: hp,
    method: { type: 'supervised', supervised: { hyperparameters: hp } },
    trained_tokens: null,
    error: null,
    seed: spec.seed ?? 42,
    estimated_finish: null,
    integrations: [],
    metadata: null,
    nodeai: {
      job_dir: resolve(spec.jobDir),
      identity: trainingIdentity(spec),
      model_path: null,
      adapter_path: null,
      steps: 0,
      total_steps: null,
      resumed: false,
      final_metrics: null,
      threads: null,
    },
  };
}
