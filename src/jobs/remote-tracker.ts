// Remote fine-tuning jobs (OpenAI, Azure, another NodeAI): the job lives in the local `jobs` table
// with its provider and provider_job_id, and this tracker submits it, then polls the provider
// with backoff and mirrors status, events and checkpoints into the local rows — so the engine,
// the SSE stream and the CLI see a remote job exactly like a local one. It holds each job under
// the same lease columns the local worker uses, and on start adopts every unfinished remote job
// in the database, so a restart picks up where the last process stopped.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { findOpenAIKey, OPENAI_KEY_SECRET, OPENAI_PROVIDER_ID } from '../providers/openai-key.ts';
import { OpenAIFineTuneProvider, type OpenAIProviderOptions } from '../providers/openai.ts';
import { BASE_URL_METADATA_KEY } from '../providers/fine-tune-request.ts';
import { ProviderError, type FineTuneProvider, type FineTuningJob, type JobEvent } from '../providers/spec.ts';
import { describeError, idPrefix, type JobRow, type StoredJobStatus } from '../store/index.ts';
import { JobError } from './errors.ts';
import { countLines, FINISHED_STATUSES, holderIsDeadHere, workerIdentity, type JobQueue } from './queue.ts';
import { parseHyperparameters } from './render.ts';

// BASE_URL_METADATA_KEY: the local metadata key that remembers where a remote job lives (never sent to the provider).
export { BASE_URL_METADATA_KEY };
const OPEN_STATUSES: StoredJobStatus[] = ['validating_files', 'queued', 'running', 'paused'];
const RETRYABLE = new Set(['rate_limited', 'server_error', 'connection_error']);

/** The vault name of a key given in a node's settings, kept for as long as its job runs. */
export function jobKeySecretName(jobId: string): string {
  return `${OPENAI_KEY_SECRET}.${jobId}`;
}

/** Builds the provider client for a job found in the database (after a restart). */
export type RemoteConnector = (row: JobRow) => Promise<FineTuneProvider>;

/**
 * The default connector for `openai` jobs: base_url from the job's local metadata; the key from
 * the job's own vault secret (a key typed into the node), else OPENAI_API_KEY in the vault or
 * the environment.
 */
export function openAIConnector(queue: JobQueue, options: { env?: NodeJS.ProcessEnv; provider?: Partial<OpenAIProviderOptions> } = {}): RemoteConnector {
  const secrets = queue.store.secrets;
  return async (row) => {
    const jobKey = await secrets.get(jobKeySecretName(row.id)).catch(() => undefined);
    const baseURL = remoteBaseUrl(row);
    const apiKey = await findOpenAIKey({ configKey: jobKey, getSecret: secrets.lookupKey, baseURL, ...(options.env ? { env: options.env } : {}) });
    return new OpenAIFineTuneProvider({ ...options.provider, apiKey, baseURL });
  };
}

/** Where a remote job lives, as recorded when it was created; null for the provider's default. */
export function remoteBaseUrl(row: Pick<JobRow, 'metadata_json'>): string | null {
  if (!row.metadata_json) return null;
  const meta = JSON.parse(row.metadata_json) as Record<string, unknown>;
  return typeof meta[BASE_URL_METADATA_KEY] === 'string' ? (meta[BASE_URL_METADATA_KEY] as string) : null;
}

export interface RemoteTrackerOptions {
  /** Which rows this tracker serves; default `openai`. */
  provider?: string;
  /** Default: `openAIConnector(queue)`. */
  connect?: RemoteConnector;
  workerId?: string;
  /** First wait before a job's first poll, and the poll interval while things change. Default 2 s. */
  pollMs?: number;
  /** The interval grows ×1.5 while nothing changes, up to this. Default 60 s. */
  maxPollMs?: number;
  /** How long a job stays claimed without a poll; renewed on every poll. Default 3 × maxPollMs. */
  leaseMs?: number;
  /** How often the database is scanned for remote jobs nobody tracks. Default 30 s. */
  scanMs?: number;
  /** Polls in a row that may fail on a transient error (after the provider's own retries) before the job is failed. Default 10. */
  maxPollFailures?: number;
  onError?: (err: unknown) => void;
}

export interface RemoteFile {
  path: string;
  filename: string;
}

interface Tracked {
  /** Stops this tracker's polling (shutdown); not a cancel. */
  stop: AbortController;
  /** What the queue aborts on a cancel from this process. */
  cancel: AbortController;
  /** Ends the current wait early. */
  wake: () => void;
  done: Promise<void>;
}

/** Submits remote jobs and keeps their local rows in step with the provider. */
export class RemoteJobTracker {
  readonly id: string;
  readonly provider: string;
  private readonly connect: RemoteConnector;
  private readonly pollMs: number;
  private readonly maxPollMs: number;
  private readonly leaseMs: number;
  private readonly scanMs: number;
  private readonly maxPollFailures: number;
  private readonly tracked = new Map<string, Tracked>();
  /** Clients handed over at submission, so a key typed into a node is used without a vault round trip. */
  private readonly clients = new Map<string, FineTuneProvider>();
  private readonly submitting = new Set<string>();
  private scanTimer?: NodeJS.Timeout;
  private unwake?: () => void;
  private started = false;
  private stopping = false;

  constructor(
    readonly queue: JobQueue,
    private readonly options: RemoteTrackerOptions = {},
  ) {
    this.id = options.workerId ?? workerIdentity();
    this.provider = options.provider ?? OPENAI_PROVIDER_ID;
    this.connect = options.connect ?? openAIConnector(queue);
    this.pollMs = options.pollMs ?? 2_000;
    this.maxPollMs = Math.max(this.pollMs, options.maxPollMs ?? 60_000);
    this.leaseMs = options.leaseMs ?? 3 * this.maxPollMs;
    this.scanMs = options.scanMs ?? 30_000;
    this.maxPollFailures = options.maxPollFailures ?? 10;
  }

  /** Job IDs this tracker polls now. */
  get jobs(): string[] {
    return [...this.tracked.keys()];
  }

  /** Adopts unfinished remote jobs from the database and keeps looking for more. Idempotent. */
  async start(): Promise<string[]> {
    if (this.started) return this.jobs;
    this.started = true;
    this.stopping = false;
    this.unwake = this.queue.addWaker(() => void this.scan().catch((err) => this.options.onError?.(err)));
    const adopted = await this.scan();
    const loop = () => {
      this.scanTimer = setTimeout(() => {
        void this.scan()
          .catch((err) => this.options.onError?.(err))
          .finally(() => {
            if (!this.stopping) loop();
          });
      }, this.scanMs);
      this.scanTimer.unref();
    };
    loop();
    return adopted;
  }

  /** Stops polling and hands every job back (lease released) for the next start to adopt. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.started = false;
    if (this.scanTimer) clearTimeout(this.scanTimer);
    this.unwake?.();
    for (const t of this.tracked.values()) t.stop.abort(new Error('NodeAI is shutting down'));
    await Promise.all([...this.tracked.values()].map((t) => t.done));
  }

  /**
   * Uploads the files and creates the job at the provider for a local row created with this
   * tracker's provider, then polls it. A failure fails the local job with the provider's clear
   * message and is thrown as a JobError with the provider's stable code.
   */
  async submit(jobId: string, client: FineTuneProvider, files: { training: RemoteFile; validation?: RemoteFile | null }, options: { signal?: AbortSignal } = {}): Promise<FineTuningJob> {
    const { queue } = this;
    const row = await queue.getRow(jobId);
    if (row.provider !== this.provider) throw new JobError('invalid_request', `Job ${jobId} belongs to provider "${row.provider}", not "${this.provider}".`);
    if (row.provider_job_id) throw new JobError('job_state', `Job ${jobId} was already submitted as ${row.provider_job_id}.`);
    if (!(await this.lease(jobId))) throw new JobError('job_state', `Job ${jobId} is held by another NodeAI process.`);
    const where = describeEndpoint(client, row);
    this.submitting.add(jobId);
    // A big upload can outlast the lease; other processes must not take the job for abandoned.
    const heartbeat = setInterval(() => void this.lease(jobId).catch(() => undefined), Math.max(1_000, Math.floor(this.leaseMs / 3)));
    heartbeat.unref();
    try {
      await queue.addEvent(jobId, { message: `Uploading the training data to ${where}` });
      const training = await uploadWith(client, files.training, options.signal);
      const validation = files.validation ? await uploadWith(client, files.validation, options.signal) : null;
      await queue.addEvent(jobId, { message: `Uploaded ${files.training.filename} as ${training.id}${validation ? ` and ${files.validation!.filename} as ${validation.id}` : ''}` });
      const hp = parseHyperparameters(row.hyperparameters_json);
      const metadata: Record<string, string> = { ...localMetadata(row), nodeai_job_id: jobId };
      const remote = await client.createJob({
        model: row.base_model,
        training_file: training.id,
        validation_file: validation?.id ?? null,
        // OpenAI's three only: NodeAI's own (lora_rank) would be refused there.
        hyperparameters: { n_epochs: hp.n_epochs, batch_size: hp.batch_size, learning_rate_multiplier: hp.learning_rate_multiplier },
        suffix: row.suffix,
        seed: row.seed === null ? null : Number(row.seed),
        metadata,
      });
      const now = Date.now();
      await queue.store.db
        .updateTable('jobs')
        .set({ provider_job_id: remote.id, status: openStatus(remote.status) ?? 'queued', started_at: now, locked_until: now + this.leaseMs, updated_at: now })
        .where('id', '=', jobId)
        .execute();
      await queue.addEvent(jobId, { message: `Created fine-tuning job ${remote.id} at ${where}; NodeAI follows it here` });
      this.clients.set(jobId, client);
      this.follow(jobId);
      return queue.get(jobId);
    } catch (err) {
      const { code, message } = errorOf(err, queue);
      await queue.finish(jobId, 'failed', { error: { code, message, param: null } }, this.id, OPEN_STATUSES);
      await this.forgetKey(jobId);
      throw new JobError(code, message, { cause: err });
    } finally {
      clearInterval(heartbeat);
      this.submitting.delete(jobId);
    }
  }

  /** Finds remote jobs nobody polls (new, or left by a stopped process) and follows them. */
  async scan(): Promise<string[]> {
    if (this.stopping) return [];
    const rows = await this.queue.store.db.selectFrom('jobs').selectAll().where('provider', '=', this.provider).where('status', 'in', OPEN_STATUSES).execute();
    const adopted: string[] = [];
    const now = Date.now();
    for (const row of rows) {
      if (this.tracked.has(row.id) || this.submitting.has(row.id)) continue;
      const free = row.locked_by === null || row.locked_by === this.id || (row.locked_until !== null && Number(row.locked_until) < now) || holderIsDeadHere(row.locked_by);
      if (!free) continue;
      if (!row.provider_job_id) {
        // Created but never handed to the provider: its submitter stopped half-way. A row that
        // nobody has leased yet may be a node about to submit it.
        if (row.locked_by === null && now - Number(row.created_at) < this.leaseMs) continue;
        if (await this.lease(row.id, row.locked_by)) {
          await this.queue.finish(
            row.id,
            'failed',
            { error: { code: 'job_interrupted', message: `NodeAI stopped before job ${row.id} reached ${this.provider}; nothing was trained. Run the workflow again.`, param: null } },
            this.id,
            OPEN_STATUSES,
          );
          await this.forgetKey(row.id);
        }
        continue;
      }
      if (!(await this.lease(row.id, row.locked_by))) continue;
      await this.queue.addEvent(row.id, { message: `Following remote job ${row.provider_job_id} again after a restart` });
      this.follow(row.id, 0);
      adopted.push(row.id);
    }
    return adopted;
  }

  /** Claims (or renews) a job's lease; false when another live tracker holds it. */
  private async lease(jobId: string, previous?: string | null): Promise<boolean> {
    const now = Date.now();
    const res = await this.queue.store.db
      .updateTable('jobs')
      .set({ locked_by: this.id, locked_until: now + this.leaseMs, heartbeat_at: now })
      .where('id', '=', jobId)
      .where('status', 'in', OPEN_STATUSES)
      .where((eb) =>
        eb.or([
          eb('locked_by', 'is', null),
          eb('locked_by', '=', this.id),
          eb('locked_until', '<', now),
          ...(previous ? [eb('locked_by', '=', previous)] : []),
        ]),
      )
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  private follow(jobId: string, firstDelayMs = this.pollMs): void {
    const entry: Tracked = { stop: new AbortController(), cancel: new AbortController(), wake: () => undefined, done: Promise.resolve() };
    const untrack = this.queue.trackLocal(jobId, entry.cancel);
    entry.cancel.signal.addEventListener('abort', () => entry.wake(), { once: true });
    this.tracked.set(jobId, entry);
    entry.done = this.pollLoop(jobId, entry, firstDelayMs)
      .catch((err) => this.options.onError?.(err))
      .finally(() => {
        untrack();
        this.tracked.delete(jobId);
        this.clients.delete(jobId);
      });
  }

  private async pollLoop(jobId: string, entry: Tracked, firstDelayMs: number): Promise<void> {
    const { queue } = this;
    const db = queue.store.db;
    let interval = this.pollMs;
    let failures = 0;
    let cancelSent = false;
    let client: FineTuneProvider | undefined = this.clients.get(jobId);
    const seenEvents = new Set<string>();
    let lastMetrics: Record<string, unknown> | undefined;
    // The engine parks a run only after its node returns; a job that ends within that moment
    // would resume nobody, so the first look waits a little.
    let delay = firstDelayMs;
    for (;;) {
      if (delay > 0) await this.wait(entry, delay);
      if (entry.stop.signal.aborted) return this.release(jobId);
      const row = await queue.getRow(jobId).catch(() => undefined);
      if (!row) return;
      if (row.locked_by !== this.id && row.locked_by !== null && FINISHED_STATUSES.includes(row.status) === false) return; // taken over
      try {
        client ??= await this.connect(row);
        const remoteId = row.provider_job_id!;
        if (FINISHED_STATUSES.includes(row.status)) {
          // Ended here (a cancel before it ran, from any process): make the provider stop too.
          if (row.status === 'cancelled') await client.cancelJob(remoteId).catch(() => undefined);
          await this.forgetKey(jobId);
          return;
        }
        if (!(await this.lease(jobId))) return;
        const wantsCancel = row.cancel_requested_at !== null || entry.cancel.signal.aborted;
        if (wantsCancel && !cancelSent) {
          cancelSent = true;
          await client.cancelJob(remoteId).catch((err) => queue.addEvent(jobId, { level: 'warn', message: `Asking ${this.provider} to cancel failed: ${errorOf(err, queue).message}` }));
        }
        const remote = await client.getJob(remoteId);
        let changed = await this.mirrorEvents(jobId, client, remoteId, seenEvents, (m) => (lastMetrics = m));
        changed = (await this.mirrorCheckpoints(jobId, client, remoteId)) || changed;
        const open = openStatus(remote.status);
        if (open) {
          const update = {
            ...(open !== row.status ? { status: open } : {}),
            ...(remote.trained_tokens !== null && remote.trained_tokens !== Number(row.trained_tokens) ? { trained_tokens: remote.trained_tokens } : {}),
            ...(remote.estimated_finish ? { estimated_finish: remote.estimated_finish * 1000 } : {}),
          };
          if (Object.keys(update).length > 0) {
            changed = true;
            await db.updateTable('jobs').set({ ...update, updated_at: Date.now() }).where('id', '=', jobId).where('status', 'in', OPEN_STATUSES).execute();
          }
        } else {
          await this.finishFromRemote(row, remote, lastMetrics);
          await this.forgetKey(jobId);
          return;
        }
        failures = 0;
        interval = changed ? this.pollMs : Math.min(this.maxPollMs, Math.round(interval * 1.5));
        delay = wantsCancel ? Math.min(interval, this.pollMs) : interval;
      } catch (err) {
        if (entry.stop.signal.aborted) return this.release(jobId);
        const { code, message } = errorOf(err, queue);
        failures++;
        if (!RETRYABLE.has(code) || failures > this.maxPollFailures) {
          const why = RETRYABLE.has(code) ? `NodeAI could not reach ${this.provider} in ${failures} polls in a row and stopped following the job (it may still run there): ${message}` : message;
          await queue.finish(jobId, 'failed', { error: { code, message: why, param: null } }, this.id, OPEN_STATUSES);
          await this.forgetKey(jobId);
          return;
        }
        await queue.addEvent(jobId, { level: 'warn', message: `Could not read the job from ${this.provider} (try ${failures} of ${this.maxPollFailures + 1}); retrying: ${message}` });
        interval = Math.min(this.maxPollMs, Math.round(interval * 2));
        delay = interval;
      }
    }
  }

  private async finishFromRemote(row: JobRow, remote: FineTuningJob, lastMetrics: Record<string, unknown> | undefined): Promise<void> {
    const { queue } = this;
    const trainedTokens = remote.trained_tokens;
    if (remote.status === 'succeeded') {
      if (!remote.fine_tuned_model) {
        await queue.finish(row.id, 'failed', { trainedTokens, error: { code: 'provider_error', message: `${this.provider} reports job ${remote.id} succeeded but names no fine-tuned model.`, param: null } }, this.id, OPEN_STATUSES);
        return;
      }
      const path = await queue.store.files.path(row.training_file).catch(() => null);
      const examples = path && existsSync(path) ? await countLines(path).catch(() => null) : null;
      const epochs = typeof remote.hyperparameters.n_epochs === 'number' ? remote.hyperparameters.n_epochs : null;
      const metrics: Record<string, number> = {};
      for (const key of ['train_loss', 'valid_loss', 'train_mean_token_accuracy', 'valid_mean_token_accuracy', 'full_valid_loss', 'full_valid_mean_token_accuracy'] as const) {
        const v = lastMetrics?.[key];
        if (typeof v === 'number' && Number.isFinite(v)) metrics[key] = v;
      }
      if (typeof lastMetrics?.step === 'number') metrics.steps = lastMetrics.step;
      await queue.finish(row.id, 'succeeded', { trainedTokens, model: { files: {}, name: remote.fine_tuned_model, trainingExamples: examples, epochs, metrics } }, this.id, OPEN_STATUSES);
      return;
    }
    if (remote.status === 'cancelled') {
      await queue.finish(row.id, 'cancelled', { trainedTokens }, this.id, OPEN_STATUSES);
      return;
    }
    const e = remote.error;
    const message = `${this.provider} job ${remote.id} failed: ${e?.message || 'no reason given'}${e?.param ? ` (field "${e.param}")` : ''}`;
    await queue.finish(row.id, 'failed', { trainedTokens, error: { code: e?.code || 'job_failed', message, param: e?.param ?? null } }, this.id, OPEN_STATUSES);
  }

  /**
   * Copies the provider's new events, oldest first. Each gets an ID derived from the remote one,
   * so an event already mirrored — before a restart too — is recognised and skipped.
   */
  private async mirrorEvents(jobId: string, client: FineTuneProvider, remoteId: string, seen: Set<string>, onMetrics: (m: Record<string, unknown>) => void): Promise<boolean> {
    const fresh: JobEvent[] = [];
    let after: string | undefined;
    for (let page = 0; page < 50; page++) {
      const res = await client.listEvents(remoteId, { limit: 100, ...(after ? { after } : {}) });
      let reachedKnown = false;
      const ids = res.data.map((e) => mirroredId(idPrefix.jobEvent, jobId, e.id)).filter((id) => !seen.has(id));
      const stored = ids.length
        ? new Set((await this.queue.store.db.selectFrom('job_events').select('id').where('job_id', '=', jobId).where('id', 'in', ids).execute()).map((r) => r.id))
        : new Set<string>();
      for (const e of res.data) {
        const id = mirroredId(idPrefix.jobEvent, jobId, e.id);
        if (seen.has(id) || stored.has(id)) {
          seen.add(id);
          reachedKnown = true;
          break;
        }
        fresh.push(e);
      }
      if (reachedKnown || !res.has_more || res.data.length === 0) break;
      after = res.data.at(-1)!.id;
    }
    for (const e of fresh.reverse()) {
      const id = mirroredId(idPrefix.jobEvent, jobId, e.id);
      await this.queue.addEvent(jobId, {
        id,
        createdAt: e.created_at * 1000,
        level: e.level,
        type: e.type,
        message: e.message,
        ...(e.data && typeof e.data === 'object' ? { data: e.data as Record<string, unknown> } : {}),
      });
      seen.add(id);
      if (e.type === 'metrics' && e.data) onMetrics(e.data as Record<string, unknown>);
    }
    return fresh.length > 0;
  }

  private async mirrorCheckpoints(jobId: string, client: FineTuneProvider, remoteId: string): Promise<boolean> {
    const page = await client.listCheckpoints(remoteId, { limit: 100 });
    let added = false;
    for (const c of page.data) {
      const res = await this.queue.store.db
        .insertInto('job_checkpoints')
        .values({
          id: mirroredId(idPrefix.checkpoint, jobId, c.id),
          job_id: jobId,
          step_number: c.step_number,
          fine_tuned_model_checkpoint: c.fine_tuned_model_checkpoint,
          metrics_json: JSON.stringify(c.metrics ?? {}),
          path: null,
          created_at: c.created_at * 1000,
        })
        .onConflict((oc) => oc.doNothing())
        .executeTakeFirst();
      if (Number(res.numInsertedOrUpdatedRows ?? 0) > 0) added = true;
    }
    return added;
  }

  private wait(entry: Tracked, ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (entry.stop.signal.aborted) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        entry.stop.signal.removeEventListener('abort', done);
        entry.wake = () => undefined;
        resolve();
      }
      entry.stop.signal.addEventListener('abort', done, { once: true });
      entry.wake = done;
    });
  }

  private async release(jobId: string): Promise<void> {
    await this.queue.store.db.updateTable('jobs').set({ locked_by: null, locked_until: null }).where('id', '=', jobId).where('locked_by', '=', this.id).execute().catch(() => undefined);
  }

  private async forgetKey(jobId: string): Promise<void> {
    await this.queue.store.secrets.delete(jobKeySecretName(jobId)).catch(() => undefined);
  }
}

function mirroredId(prefix: string, jobId: string, remoteId: string): string {
  const digest = createHash('sha256').update(`${jobId}\0${remoteId}`).digest('base64url').replace(/[-_]/g, '').slice(0, 24);
  return `${prefix}-${digest}`;
}

function openStatus(status: string): StoredJobStatus | undefined {
  return status === 'validating_files' || status === 'queued' || status === 'running' ? status : undefined;
}

function localMetadata(row: JobRow): Record<string, string> {
  if (!row.metadata_json) return {};
  const meta = JSON.parse(row.metadata_json) as Record<string, unknown>;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta)) if (k !== BASE_URL_METADATA_KEY && typeof v === 'string') out[k] = v;
  return out;
}

function describeEndpoint(client: FineTuneProvider, row: JobRow): string {
  const url = remoteBaseUrl(row);
  if (!url) return client.id;
  try {
    return `${client.id} at ${new URL(url).host}`;
  } catch {
    return client.id;
  }
}

async function uploadWith(client: FineTuneProvider, file: RemoteFile, signal?: AbortSignal) {
  const upload = client.uploadFile as (f: RemoteFile, o?: { signal?: AbortSignal }) => ReturnType<FineTuneProvider['uploadFile']>;
  return upload.call(client, file, signal ? { signal } : undefined);
}

function errorOf(err: unknown, queue: JobQueue): { code: string; message: string } {
  if (err instanceof ProviderError || err instanceof JobError) return { code: err.code, message: queue.store.redactor.redact(err.message) };
  const code = (err as { code?: unknown })?.code;
  return { code: typeof code === 'string' ? code : 'provider_error', message: queue.store.redactor.redact(describeError(err)) };
}
