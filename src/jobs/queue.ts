// The durable job queue: fine-tuning jobs live in the `jobs` table (SQLite or Postgres), so a
// job outlives the process that created or ran it. Workers claim a queued job with a
// conditional update and hold it under a lease (locked_by / locked_until) that the trainer's
// progress renews. Every claim takes the next fencing token, and a holder's writes (events,
// metrics, checkpoints, the model it registers) carry its token, so once a job is taken over the
// old holder's late writes are refused. A job whose holder died or stopped making progress is
// found by any live process (at start-up and every few seconds) and re-queued to resume from its
// checkpoint, or failed with the reason once it has used up its attempts.
import { createReadStream, existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ExpressionBuilder, Kysely } from 'kysely';
import { idPrefix, isValidFileId, newId, type Database, type JobRow, type StoredJobStatus, type Store } from '../store/index.ts';
import type { Checkpoint, CreateJobRequest, FineTuningJob, Hyperparameters, JobEvent, Page } from '../providers/spec.ts';
import { JobError, JobNotFoundError, JobStateError, LeaseLostError } from './errors.ts';
import type { JobLease } from './lease.ts';
import { ModelRegistry } from './model-registry.ts';
import type { EvaluationReport } from '../trainer/evaluation-report.ts';
import { parseHyperparameters, toCheckpoint, toFineTuningJob, toJobEvent } from './render.ts';

export const FINISHED_STATUSES: readonly StoredJobStatus[] = ['succeeded', 'failed', 'cancelled'];
const JOB_ID = /^ftjob-[A-Za-z0-9]{24}$/;

/** How a job ended: what the engine's `resumeRunsForJob` takes. */
export interface JobFinished {
  jobId: string;
  status: 'succeeded' | 'failed' | 'cancelled';
  outputs?: Record<string, unknown>;
  error?: { code?: string; message: string };
}

export interface NewEvent {
  level?: 'info' | 'warn' | 'error';
  type?: 'message' | 'metrics';
  message: string;
  data?: Record<string, unknown> | null;
  /** A caller-chosen ID (events mirrored from a remote provider, deduplicated by it); default a new one. */
  id?: string;
  /** Epoch ms; default now. */
  createdAt?: number;
}

export interface CreateJobInput extends CreateJobRequest {
  /** Default `local`. */
  provider?: string;
  method?: 'supervised' | 'dpo';
  /** Retries after a crash before the job fails; default 3. */
  maxAttempts?: number;
  /** Lower is claimed first; default 0. A job someone waits for at a terminal (`nodeai finetune`) goes before background ones. */
  priority?: number;
}

export interface ListJobsOptions {
  limit?: number;
  /** Job ID: list those created before it (OpenAI's cursor). */
  after?: string;
  status?: StoredJobStatus;
}

/** A write by the holder of a job: refused once its lease is lost; progress also renews the lease. */
export interface LeaseWrite {
  lease: JobLease;
  /** The trainer made progress: the lease now lasts this long from now. */
  renewMs?: number;
  trainedTokens?: number;
  estimatedFinish?: number | null;
}

/** A checkpoint the trainer wrote, as the queue lists it. */
export interface NewCheckpoint {
  step: number;
  /** `<fine-tuned model>:ckpt-step-<step>`. */
  name: string;
  path: string;
  metrics: Record<string, number>;
  createdAt: number;
}

export interface RecoveryReport {
  requeued: string[];
  failed: string[];
  /** Cancel was asked while the holder died. */
  cancelled: string[];
}

type FinishedListener = (outcome: JobFinished) => void | Promise<void>;
type EventListener = (jobId: string, event: JobEvent) => void;

/** Identifies a worker process: host and pid let a restart on the same host tell a dead holder at once. */
export function workerIdentity(): string {
  return `${hostname()}:${process.pid}:${newId('w').slice(2, 10)}`;
}

export function holderIsDeadHere(lockedBy: string | null): boolean {
  if (!lockedBy) return true;
  const [host, pid] = lockedBy.split(':');
  if (host !== hostname()) return false;
  const n = Number(pid);
  if (!Number.isInteger(n) || n <= 0) return false;
  if (n === process.pid) return false;
  try {
    process.kill(n, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export class JobQueue {
  readonly store: Store;
  readonly models: ModelRegistry;
  private readonly db: Kysely<Database>;
  private readonly finishedListeners = new Set<FinishedListener>();
  private readonly eventListeners = new Set<EventListener>();
  /** Jobs running in this process: a cancel reaches them at once, not at the next heartbeat. */
  private readonly local = new Map<string, AbortController>();
  private readonly wakers = new Set<() => void>();

  constructor(store: Store, options: { models?: ModelRegistry } = {}) {
    this.store = store;
    this.db = store.db;
    this.models = options.models ?? new ModelRegistry(store);
  }

  /** Where a local job keeps everything (checkpoints, metrics, outputs). */
  jobDir(jobId: string): string {
    checkJobId(jobId);
    return join(this.store.dataDir, 'jobs', jobId);
  }

  /** Validates the files, records the job as `validating_files`, then queues it. */
  async create(input: CreateJobInput): Promise<FineTuningJob> {
    const provider = input.provider ?? 'local';
    if (!input.model) throw new JobError('invalid_request', 'A fine-tuning job needs a base model ("model"), e.g. "nodeai-tiny".');
    for (const [field, id] of [['training_file', input.training_file], ['validation_file', input.validation_file]] as const) {
      if (id === undefined || id === null) {
        if (field === 'training_file') throw new JobError('invalid_request', 'A fine-tuning job needs a training_file: upload one with "nodeai files upload FILE" and pass its ID.');
        continue;
      }
      if (!isValidFileId(id)) throw new JobError('invalid_file_id', `${field} ${JSON.stringify(String(id).slice(0, 80))} is not a file ID; IDs look like "file-" followed by 24 letters or digits (see "nodeai files list").`);
    }
    // The request was parsed at its edge (FineTuneRequest); the row keeps OpenAI's three and NodeAI's own that are set.
    const hyperparameters: Hyperparameters = {
      ...input.hyperparameters,
      n_epochs: input.hyperparameters?.n_epochs ?? 'auto',
      batch_size: input.hyperparameters?.batch_size ?? 'auto',
      learning_rate_multiplier: input.hyperparameters?.learning_rate_multiplier ?? 'auto',
    };
    const id = newId(idPrefix.job);
    const now = Date.now();
    await this.db
      .insertInto('jobs')
      .values({
        id,
        provider,
        provider_job_id: null,
        method: input.method ?? 'supervised',
        base_model: input.model,
        fine_tuned_model: null,
        status: 'validating_files',
        training_file: input.training_file,
        validation_file: input.validation_file ?? null,
        hyperparameters_json: JSON.stringify(hyperparameters),
        suffix: input.suffix ?? null,
        seed: input.seed ?? null,
        metadata_json: input.metadata ? JSON.stringify(input.metadata) : null,
        result_files_json: null,
        trained_tokens: null,
        error_json: null,
        run_after: now,
        max_attempts: input.maxAttempts ?? 3,
        ...(input.priority !== undefined ? { priority: input.priority } : {}),
        locked_by: null,
        locked_until: null,
        heartbeat_at: null,
        cancel_requested_at: null,
        estimated_finish: null,
        created_at: now,
        started_at: null,
        finished_at: null,
        updated_at: now,
      })
      .execute();
    await this.addEvent(id, { message: `Created fine-tuning job: ${id}` });
    await this.addEvent(id, { message: 'Validating training file: ' + input.training_file + (input.validation_file ? ` and validation file: ${input.validation_file}` : '') });
    for (const [field, fileId] of [['training_file', input.training_file], ['validation_file', input.validation_file]] as const) {
      if (!fileId) continue;
      const file = await this.store.files.find(fileId);
      if (!file) {
        await this.finish(id, 'failed', { error: { code: 'invalid_file', message: `${field} ${fileId} does not exist in this store. Upload it with "nodeai files upload FILE" and use the ID it prints.`, param: field } }, undefined, ['validating_files']);
        return this.get(id);
      }
    }
    await this.transition(id, 'validating_files', 'queued');
    await this.addEvent(id, { message: 'Files validated, moving job to queued state' });
    for (const wake of this.wakers) wake();
    return this.get(id);
  }

  async getRow(jobId: string): Promise<JobRow> {
    const row = typeof jobId === 'string' && JOB_ID.test(jobId) ? await this.db.selectFrom('jobs').selectAll().where('id', '=', jobId).executeTakeFirst() : undefined;
    if (!row) throw new JobNotFoundError(jobId);
    return row;
  }

  async get(jobId: string): Promise<FineTuningJob> {
    return toFineTuningJob(await this.getRow(jobId));
  }

  /** The hyperparameters of each of these jobs that exists, in one query (a model list names up to thousands). */
  async hyperparametersOf(jobIds: readonly string[]): Promise<Map<string, Hyperparameters>> {
    const ids = [...new Set(jobIds)];
    if (ids.length === 0) return new Map();
    const rows = await this.db.selectFrom('jobs').select(['id', 'hyperparameters_json']).where('id', 'in', ids).execute();
    return new Map(rows.map((r) => [r.id, parseHyperparameters(r.hyperparameters_json)]));
  }

  /** Newest first, in OpenAI's page shape. */
  async list(options: ListJobsOptions = {}): Promise<Page<FineTuningJob>> {
    const limit = Math.min(Math.max(options.limit ?? 20, 1), 1000);
    let q = this.db.selectFrom('jobs').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1);
    if (options.status) q = q.where('status', '=', options.status);
    if (options.after) {
      const cursor = await this.getRow(options.after);
      q = q.where((eb) => eb.or([eb('created_at', '<', cursor.created_at), eb.and([eb('created_at', '=', cursor.created_at), eb('id', '<', cursor.id)])]));
    }
    const rows = await q.execute();
    return { data: rows.slice(0, limit).map(toFineTuningJob), has_more: rows.length > limit };
  }

  /** Newest first, as OpenAI lists them; `after` is an event ID. */
  async listEvents(jobId: string, options: { after?: string; limit?: number } = {}): Promise<Page<JobEvent>> {
    await this.getRow(jobId);
    const limit = Math.min(Math.max(options.limit ?? 20, 1), 10_000);
    let q = this.db.selectFrom('job_events').selectAll().where('job_id', '=', jobId).orderBy('seq', 'desc').limit(limit + 1);
    if (options.after) {
      const cursor = await this.db.selectFrom('job_events').select('seq').where('job_id', '=', jobId).where('id', '=', options.after).executeTakeFirst();
      if (cursor) q = q.where('seq', '<', cursor.seq);
    }
    const rows = await q.execute();
    return { data: rows.slice(0, limit).map(toJobEvent), has_more: rows.length > limit };
  }

  /**
   * Every metrics event of a job, oldest first, as its figures (step, train_loss, valid_loss, …)
   * with the event's time in epoch seconds (`created_at`): the loss curve.
   */
  async metricsHistory(jobId: string): Promise<Array<Record<string, number>>> {
    await this.getRow(jobId);
    const rows = await this.db.selectFrom('job_events').select(['created_at', 'data_json']).where('job_id', '=', jobId).where('type', '=', 'metrics').orderBy('seq', 'asc').execute();
    return rows.map((r) => ({ created_at: Math.floor(Number(r.created_at) / 1000), ...(r.data_json ? (JSON.parse(r.data_json) as Record<string, number>) : {}) }));
  }

  async listCheckpoints(jobId: string, options: { after?: string; limit?: number } = {}): Promise<Page<Checkpoint>> {
    await this.getRow(jobId);
    const limit = Math.min(Math.max(options.limit ?? 10, 1), 1000);
    let q = this.db.selectFrom('job_checkpoints').selectAll().where('job_id', '=', jobId).orderBy('step_number', 'desc').limit(limit + 1);
    if (options.after) {
      const cursor = await this.db.selectFrom('job_checkpoints').select('step_number').where('id', '=', options.after).executeTakeFirst();
      if (cursor) q = q.where('step_number', '<', cursor.step_number);
    }
    const rows = await q.execute();
    return { data: rows.slice(0, limit).map(toCheckpoint), has_more: rows.length > limit };
  }

  /**
   * Cancels a job. A job not yet running is marked cancelled here and now; a running one is
   * asked to stop (its trainer gets the abort) and the worker that holds it records the end.
   */
  async cancel(jobId: string): Promise<FineTuningJob> {
    const row = await this.getRow(jobId);
    if (FINISHED_STATUSES.includes(row.status)) {
      throw new JobStateError(`Job ${jobId} already ${row.status}; only a job that is queued or running can be cancelled.`);
    }
    if (row.status === 'running') {
      await this.db.updateTable('jobs').set({ cancel_requested_at: Date.now(), updated_at: Date.now() }).where('id', '=', jobId).where('status', '=', 'running').execute();
      const local = this.local.get(jobId);
      if (local) local.abort(new JobError('job_cancelled', 'cancelled by user'));
      else if (holderIsDeadHere(row.locked_by) || (row.locked_until !== null && Number(row.locked_until) < Date.now())) {
        // Nobody is alive to notice the request: end it here.
        await this.finish(jobId, 'cancelled', {}, row.locked_by);
      }
      const now = await this.getRow(jobId);
      if (now.status !== 'running') return toFineTuningJob(now);
      await this.addEvent(jobId, { message: 'Cancellation requested; the trainer is stopping' });
      return toFineTuningJob(now);
    }
    const done = await this.finish(jobId, 'cancelled', {}, undefined, [row.status]);
    if (!done) return this.cancel(jobId);
    return this.get(jobId);
  }

  /**
   * Pauses a job so that it can be resumed later from its checkpoint. A queued job is paused
   * here and now. A running one is marked `paused` while its worker still holds it: the row is
   * the request (a worker in another process sees it on its next heartbeat), the trainer gets
   * the abort and saves a checkpoint, and the worker then gives up its lease (`settlePause`).
   */
  async pause(jobId: string): Promise<FineTuningJob> {
    const row = await this.getRow(jobId);
    if (row.provider !== 'local') {
      throw new JobStateError(`Job ${jobId} trains at ${row.provider}; only local jobs can be paused here.`);
    }
    if (row.status === 'queued') {
      if (!(await this.transition(jobId, 'queued', 'paused'))) return this.pause(jobId);
      await this.addEvent(jobId, { message: 'Fine-tuning job paused' });
      return this.get(jobId);
    }
    if (row.status !== 'running') {
      throw new JobStateError(`Job ${jobId} is ${row.status}; only a queued or running job can be paused.`);
    }
    if (row.cancel_requested_at !== null) throw new JobStateError(`Job ${jobId} is already being cancelled; it cannot be paused.`);
    const res = await this.db
      .updateTable('jobs')
      .set({ status: 'paused', updated_at: Date.now() })
      .where('id', '=', jobId)
      .where('status', '=', 'running')
      .where('cancel_requested_at', 'is', null)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) return this.pause(jobId);
    const local = this.local.get(jobId);
    if (local) local.abort(new JobError('job_paused', 'paused by user'));
    else if (this.holderGone(row)) {
      // Nobody is alive to stop: the checkpoint on disk is what a resume continues from.
      await this.settlePause(jobId, row.locked_by, null);
      return this.get(jobId);
    }
    await this.addEvent(jobId, { message: 'Pause requested; the trainer is saving a checkpoint' });
    return this.get(jobId);
  }

  /** Puts a paused job back in the queue; the worker that claims it continues from its checkpoint. */
  async resume(jobId: string): Promise<FineTuningJob> {
    const row = await this.getRow(jobId);
    if (row.status !== 'paused') throw new JobStateError(`Job ${jobId} is ${row.status}; only a paused job can be resumed.`);
    if (row.locked_by !== null && (this.local.has(jobId) || !this.holderGone(row))) {
      // Two trainers must never write the same job directory: wait for the first to let go.
      throw new JobStateError(`Job ${jobId} is still saving its checkpoint after the pause; resume it in a moment.`);
    }
    const now = Date.now();
    const res = await this.db
      .updateTable('jobs')
      .set({ status: 'queued', locked_by: null, locked_until: null, estimated_finish: null, run_after: now, updated_at: now })
      .where('id', '=', jobId)
      .where('status', '=', 'paused')
      .where(heldBy(row.locked_by))
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) return this.resume(jobId);
    await this.addEvent(jobId, { message: 'Fine-tuning job resumed' });
    for (const wake of this.wakers) wake();
    return this.get(jobId);
  }

  /**
   * Appends an event; `seq` orders a job's events even within one millisecond. With `write`, only
   * while that lease holds the job (else LeaseLostError), renewing it when the write says so.
   */
  async addEvent(jobId: string, event: NewEvent, write?: LeaseWrite): Promise<JobEvent> {
    const rendered = await this.retryingSeq(() => (write ? this.fenced(write, (trx) => this.insertEvent(trx, jobId, event)) : this.insertEvent(this.db, jobId, event)));
    this.tellEvent(jobId, rendered);
    return rendered;
  }

  /** @internal Records a checkpoint of the job `write.lease` holds, with its event; LeaseLostError once lost. */
  async recordCheckpoint(write: LeaseWrite, checkpoint: NewCheckpoint): Promise<void> {
    const { jobId } = write.lease;
    const rendered = await this.retryingSeq(() =>
      this.fenced(write, async (trx) => {
        await trx
          .insertInto('job_checkpoints')
          .values({
            id: `ftckpt-${jobId.slice(6)}-${checkpoint.step}`.slice(0, 64),
            job_id: jobId,
            step_number: checkpoint.step,
            fine_tuned_model_checkpoint: checkpoint.name,
            metrics_json: JSON.stringify(checkpoint.metrics),
            path: checkpoint.path,
            created_at: checkpoint.createdAt,
          })
          // A resumed run can write the checkpoint of a step it already wrote before the crash.
          .onConflict((oc) => oc.columns(['job_id', 'step_number']).doNothing())
          .execute();
        return this.insertEvent(trx, jobId, { message: `Checkpoint saved at step ${checkpoint.step}` });
      }),
    );
    this.tellEvent(jobId, rendered);
  }

  private async insertEvent(db: Kysely<Database>, jobId: string, event: NewEvent): Promise<JobEvent> {
    const max = await db.selectFrom('job_events').select((eb) => eb.fn.max('seq').as('m')).where('job_id', '=', jobId).executeTakeFirst();
    const row = {
      id: event.id ?? newId(idPrefix.jobEvent),
      job_id: jobId,
      seq: Number(max?.m ?? 0) + 1,
      created_at: event.createdAt ?? Date.now(),
      level: event.level ?? 'info',
      type: event.type ?? 'message',
      message: this.store.redactor.redact(event.message),
      data_json: event.data ? JSON.stringify(this.store.redactor.redactValue(event.data)) : null,
    };
    await db.insertInto('job_events').values(row).execute();
    return toJobEvent(row);
  }

  /** Another writer may take an event's seq a moment before (unique job_id+seq): try the next one. */
  private async retryingSeq<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (err instanceof LeaseLostError || attempt >= 5) throw err;
      }
    }
  }

  private tellEvent(jobId: string, event: JobEvent): void {
    for (const fn of this.eventListeners) {
      try {
        fn(jobId, event);
      } catch {
        // a listener's failure is its own
      }
    }
  }

  /**
   * Runs `fn` in a transaction that first checks (and, for progress, renews) the lease with an
   * update of the job's row. The update takes the row's write lock, so a claim by another worker
   * either commits before it — and this write is refused — or waits until this one committed.
   */
  private fenced<T>(write: LeaseWrite, fn: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(async (trx) => {
      await this.fence(trx, write);
      return fn(trx);
    });
  }

  private async fence(db: Kysely<Database>, write: LeaseWrite): Promise<void> {
    const now = Date.now();
    const res = await db
      .updateTable('jobs')
      .set((eb) => ({
        fencing_token: eb.ref('fencing_token'),
        ...(write.renewMs !== undefined ? { locked_until: now + write.renewMs, heartbeat_at: now } : {}),
        ...(write.trainedTokens !== undefined ? { trained_tokens: write.trainedTokens } : {}),
        ...(write.estimatedFinish !== undefined ? { estimated_finish: write.estimatedFinish } : {}),
      }))
      .where(heldBy(write.lease))
      .where('status', 'in', ['running', 'paused'])
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) throw new LeaseLostError(write.lease.jobId, write.lease.token);
  }

  /** Called with every job that ends (in this process). */
  onFinished(fn: FinishedListener): () => void {
    this.finishedListeners.add(fn);
    return () => this.finishedListeners.delete(fn);
  }

  /** Called with every event this process records (live progress for the CLI and SSE). */
  onEvent(fn: EventListener): () => void {
    this.eventListeners.add(fn);
    return () => this.eventListeners.delete(fn);
  }

  /** How a job ended, or null while it has not: the engine's look-up for waiting runs. */
  async outcome(jobId: string): Promise<JobFinished | null> {
    const row = await this.db.selectFrom('jobs').selectAll().where('id', '=', jobId).executeTakeFirst();
    if (!row) return { jobId, status: 'failed', error: { code: 'job_not_found', message: `Job ${jobId} no longer exists.` } };
    if (!FINISHED_STATUSES.includes(row.status)) return null;
    return this.outcomeOf(row);
  }

  /**
   * Takes back jobs whose holder is gone, at start-up and then every few seconds in every live
   * server and worker: a job left `running` is re-queued to resume from the checkpoint in its job
   * directory, or failed when it cannot be (out of attempts, its training file is gone). A holder
   * is gone when its lease ran out (its process died, or its trainer stopped making progress) or,
   * on this host, its process no longer exists. Only a row nobody touched since it was read is
   * taken, so a holder's last-moment renewal wins.
   */
  async recoverInterrupted(): Promise<RecoveryReport> {
    const report: RecoveryReport = { requeued: [], failed: [], cancelled: [] };
    // Remote jobs train elsewhere: their tracker adopts them, there is no checkpoint here to resume.
    const rows = await this.db.selectFrom('jobs').selectAll().where('status', '=', 'running').where('provider', '=', 'local').execute();
    const now = Date.now();
    for (const row of rows) {
      if (this.local.has(row.id)) continue;
      const expired = row.locked_until === null || Number(row.locked_until) < now;
      if (!expired && !holderIsDeadHere(row.locked_by)) continue;
      if (row.cancel_requested_at !== null) {
        if (await this.finish(row.id, 'cancelled', {}, row.locked_by)) report.cancelled.push(row.id);
        continue;
      }
      const trainingPath = await this.store.files.find(row.training_file).then((f) => (f ? join(this.store.files.dir, f.id) : null)).catch(() => null);
      let reason: string | null = null;
      if (Number(row.attempts) >= Number(row.max_attempts)) reason = `it was interrupted ${row.attempts} times (the limit is ${row.max_attempts}); start a new job`;
      else if (!trainingPath || !existsSync(trainingPath)) reason = `its training file ${row.training_file} is gone; upload it again and start a new job`;
      if (reason) {
        const ok = await this.finish(row.id, 'failed', { error: { code: 'job_interrupted', message: `The process running job ${row.id} stopped and the job cannot be resumed: ${reason}.`, param: null } }, claimOf(row));
        if (ok) report.failed.push(row.id);
        continue;
      }
      const res = await this.db
        .updateTable('jobs')
        .set({ status: 'queued', locked_by: null, locked_until: null, run_after: now, updated_at: now })
        .where('id', '=', row.id)
        .where('status', '=', 'running')
        .where(heldBy(claimOf(row)))
        .where((eb) => (row.locked_until === null ? eb('locked_until', 'is', null) : eb('locked_until', '=', row.locked_until)))
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) > 0) {
        report.requeued.push(row.id);
        await this.addEvent(row.id, { level: 'warn', message: `The process running this job stopped; re-queued to resume from its last checkpoint in ${this.jobDir(row.id)}` });
      }
    }
    if (report.requeued.length) for (const wake of this.wakers) wake();
    return report;
  }

  // ---- used by the worker ------------------------------------------------------------------

  /** @internal Claims the next due queued job for `workerId` (its lease: `leaseOf(row)`), or returns undefined. */
  async claim(workerId: string, leaseMs: number, provider = 'local'): Promise<JobRow | undefined> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const now = Date.now();
      const next = await this.db
        .selectFrom('jobs')
        .select('id')
        .where('status', '=', 'queued')
        .where('provider', '=', provider)
        .where('run_after', '<=', now)
        .orderBy('priority')
        .orderBy('run_after')
        .orderBy('created_at')
        .limit(1)
        .executeTakeFirst();
      if (!next) return undefined;
      // The conditional update is the claim: of two workers, exactly one moves it out of `queued`.
      const res = await this.db
        .updateTable('jobs')
        .set((eb) => ({
          status: 'running',
          locked_by: workerId,
          locked_until: now + leaseMs,
          heartbeat_at: now,
          attempts: eb('attempts', '+', 1),
          fencing_token: eb('fencing_token', '+', 1),
          started_at: eb.fn.coalesce('started_at', eb.val(now)),
          updated_at: now,
        }))
        .where('id', '=', next.id)
        .where('status', '=', 'queued')
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) > 0) return this.getRow(next.id);
    }
    return undefined;
  }

  /** @internal The trainer made progress: renews the lease (LeaseLostError once it is lost). */
  async renew(write: LeaseWrite): Promise<void> {
    await this.fence(this.db, write);
  }

  /**
   * @internal What the holder must act on: whether it still holds the job, and whether another
   * process asked for a cancel or a pause. Reads only: a lease is renewed by progress, not by
   * asking.
   */
  async checkLease(lease: JobLease): Promise<{ held: boolean; cancelRequested: boolean; pauseRequested: boolean }> {
    const row = await this.db.selectFrom('jobs').select(['status', 'cancel_requested_at', 'locked_by', 'fencing_token']).where('id', '=', lease.jobId).executeTakeFirst();
    const held = row !== undefined && (row.status === 'running' || row.status === 'paused') && row.locked_by === lease.holder && Number(row.fencing_token) === lease.token;
    if (!held) return { held: false, cancelRequested: false, pauseRequested: false };
    return { held, cancelRequested: row.cancel_requested_at !== null, pauseRequested: row.status === 'paused' };
  }

  /**
   * @internal A paused job's trainer has stopped (or its holder is gone): lets go of the lease so
   * the job can be resumed. A pause is not a failed attempt, so it does not count towards
   * `max_attempts`. False when `lockedBy` no longer holds a paused job.
   */
  async settlePause(jobId: string, lockedBy: JobLease | string | null, step: number | null, trainedTokens?: number): Promise<boolean> {
    const now = Date.now();
    const res = await this.db
      .updateTable('jobs')
      .set((eb) => ({
        locked_by: null,
        locked_until: null,
        estimated_finish: null,
        updated_at: now,
        attempts: eb('attempts', '-', 1),
        ...(trainedTokens ? { trained_tokens: trainedTokens } : {}),
      }))
      .where('id', '=', jobId)
      .where('status', '=', 'paused')
      .where(heldBy(lockedBy))
      .executeTakeFirst();
    const ok = Number(res.numUpdatedRows) > 0;
    if (ok) await this.addEvent(jobId, { message: step !== null ? `Fine-tuning job paused at step ${step}` : 'Fine-tuning job paused; it resumes from its last checkpoint' });
    return ok;
  }

  /** @internal */
  trackLocal(jobId: string, controller: AbortController): () => void {
    this.local.set(jobId, controller);
    return () => {
      if (this.local.get(jobId) === controller) this.local.delete(jobId);
    };
  }

  /** @internal Lets an idle worker sleep until a job is queued in this process. */
  addWaker(fn: () => void): () => void {
    this.wakers.add(fn);
    return () => this.wakers.delete(fn);
  }

  /**
   * @internal Puts a job this worker holds back in the queue to resume from its checkpoint. A
   * shutdown gives its attempt back (`giveBackAttempt`); a trainer that stalled or crashed used
   * one. False when the lease is lost.
   */
  async release(lease: JobLease, message: string, options: { giveBackAttempt: boolean }): Promise<boolean> {
    const now = Date.now();
    const res = await this.db
      .updateTable('jobs')
      .set((eb) => ({
        status: 'queued',
        locked_by: null,
        locked_until: null,
        estimated_finish: null,
        run_after: now,
        updated_at: now,
        ...(options.giveBackAttempt ? { attempts: eb('attempts', '-', 1) } : {}),
      }))
      .where(heldBy(lease))
      .where('status', '=', 'running')
      .executeTakeFirst();
    const ok = Number(res.numUpdatedRows) > 0;
    if (ok) {
      await this.addEvent(lease.jobId, { level: 'warn', message });
      for (const wake of this.wakers) wake();
    }
    return ok;
  }

  /**
   * @internal Moves a job to its end state — only from `fromStatuses` and, when `lockedBy` is
   * given, only while that worker (with a lease: that very claim) holds it — registers the model
   * of a succeeded local job in the same transaction, then tells the listeners. False when the
   * job was not in that state: a holder that lost its lease registers nothing.
   */
  async finish(
    jobId: string,
    status: 'succeeded' | 'failed' | 'cancelled',
    result: {
      error?: { code: string; message: string; param?: string | null };
      trainedTokens?: number | null;
      model?: { files: Record<string, string | undefined>; name?: string; trainingExamples?: number | null; epochs?: number | null; metrics?: Record<string, number> | null; evaluation?: EvaluationReport | null };
    },
    lockedBy: JobLease | string | null | undefined,
    fromStatuses: StoredJobStatus[] = ['running'],
  ): Promise<boolean> {
    const now = Date.now();
    const changed = await this.db.transaction().execute(async (trx) => {
      let q = trx
        .updateTable('jobs')
        .set({
          status,
          // Secrets masked and server paths shortened, whichever process or trainer wrote the error.
          error_json: result.error ? JSON.stringify({ param: null, ...this.store.redactor.redactValue(result.error) }) : null,
          ...(result.trainedTokens !== undefined && result.trainedTokens !== null ? { trained_tokens: result.trainedTokens } : {}),
          locked_by: null,
          locked_until: null,
          estimated_finish: null,
          finished_at: now,
          updated_at: now,
        })
        .where('id', '=', jobId)
        .where('status', 'in', fromStatuses);
      if (lockedBy !== undefined) q = q.where(heldBy(lockedBy));
      const res = await q.executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return false;
      if (status === 'succeeded' && result.model) {
        const job = await trx.selectFrom('jobs').selectAll().where('id', '=', jobId).executeTakeFirstOrThrow();
        const model = await this.models.register({ job, files: result.model.files, ...(result.model.name ? { name: result.model.name } : {}), trainingExamples: result.model.trainingExamples, epochs: result.model.epochs, metrics: result.model.metrics, evaluation: result.model.evaluation ?? null }, trx);
        await trx.updateTable('jobs').set({ fine_tuned_model: model.id }).where('id', '=', jobId).execute();
      }
      return true;
    });
    if (!changed) return false;
    const row = await this.getRow(jobId);
    if (status === 'succeeded') await this.addEvent(jobId, { message: `The job has successfully completed. New model: ${row.fine_tuned_model ?? '(none)'}` });
    else if (status === 'cancelled') await this.addEvent(jobId, { message: 'The job was cancelled' });
    else await this.addEvent(jobId, { level: 'error', message: `The job failed: ${result.error?.message ?? 'no reason given'}` });
    const outcome = await this.outcomeOf(row);
    for (const fn of this.finishedListeners) {
      try {
        await fn(outcome);
      } catch {
        // A listener (e.g. a run that fails to resume) must not undo the job's end.
      }
    }
    return true;
  }

  private holderGone(row: JobRow): boolean {
    return holderIsDeadHere(row.locked_by) || (row.locked_until !== null && Number(row.locked_until) < Date.now());
  }

  private async transition(jobId: string, from: StoredJobStatus, to: StoredJobStatus): Promise<boolean> {
    const res = await this.db.updateTable('jobs').set({ status: to, updated_at: Date.now() }).where('id', '=', jobId).where('status', '=', from).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  private async outcomeOf(row: JobRow): Promise<JobFinished> {
    const status = row.status as JobFinished['status'];
    const job = toFineTuningJob(row);
    if (status !== 'succeeded') {
      const error = job.error ?? { code: status === 'cancelled' ? 'job_cancelled' : 'job_failed', message: status === 'cancelled' ? `Job ${row.id} was cancelled.` : `Job ${row.id} failed.` };
      return { jobId: row.id, status, error: { code: error.code, message: error.message }, outputs: { job_id: row.id, status } };
    }
    const model = await this.models.findByJob(row.id);
    return {
      jobId: row.id,
      status,
      outputs: {
        job_id: row.id,
        status,
        fine_tuned_model: row.fine_tuned_model,
        trained_tokens: job.trained_tokens,
        ...(model?.metrics ?? {}),
        ...(model ? { epochs: model.epochs, training_examples: model.training_examples } : {}),
      },
    };
  }
}

/** The claim a job row records: its holder and fencing token, or null when nobody holds it. */
export function claimOf(row: JobRow): JobLease | null {
  return row.locked_by === null ? null : { jobId: row.id, holder: row.locked_by, token: Number(row.fencing_token) };
}

/** Rows held by `holder`: nobody (null), a worker by name, or exactly one claim of a job (a lease). */
function heldBy(holder: JobLease | string | null) {
  return (eb: ExpressionBuilder<Database, 'jobs'>) => {
    if (holder === null) return eb('locked_by', 'is', null);
    if (typeof holder === 'string') return eb('locked_by', '=', holder);
    return eb.and([eb('id', '=', holder.jobId), eb('locked_by', '=', holder.holder), eb('fencing_token', '=', holder.token)]);
  };
}

export function checkJobId(jobId: string): void {
  if (typeof jobId !== 'string' || !JOB_ID.test(jobId)) throw new JobNotFoundError(jobId);
}

/** Non-blank lines of a JSONL file: the training examples of a converted training file. */
export async function countLines(path: string): Promise<number> {
  let n = 0;
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of rl) if (line.trim() !== '') n++;
  return n;
}
