// FineTuneProviders backed by this store's job queue, so the fine-tune service submits to the local
// trainer exactly as it submits to OpenAI: LocalFineTuneProvider queues a job for the local
// workers; TrackedRemoteProvider records a job here and has the remote tracker submit it to an
// OpenAI-compatible provider and follow it (the Fine-Tune node's remote jobs).
import type { Checkpoint, CreateJobRequest, FineTuneProvider, FineTuningJob, JobEvent, Page, UploadedFile } from '../providers/spec.ts';
import { BASE_URL_METADATA_KEY } from '../providers/fine-tune-request.ts';
import type { FileRecord } from '../store/index.ts';
import { JobError } from './errors.ts';
import type { JobQueue } from './queue.ts';
import { jobKeySecretName, type RemoteJobTracker } from './remote-tracker.ts';

function toUploadedFile(f: FileRecord): UploadedFile {
  return { id: f.id, object: 'file', bytes: Number(f.bytes), created_at: Math.floor(Number(f.created_at) / 1000), filename: f.filename, purpose: f.purpose };
}

/** Files go into this store; jobs are rows of its queue. */
abstract class QueueFineTuneProvider implements FineTuneProvider {
  abstract readonly id: string;

  constructor(protected readonly queue: JobQueue) {}

  async uploadFile(file: { path: string; filename: string }): Promise<UploadedFile> {
    return toUploadedFile(await this.queue.store.files.put(file.path, { filename: file.filename, purpose: 'fine-tune' }));
  }

  abstract createJob(req: CreateJobRequest): Promise<FineTuningJob>;

  getJob(id: string): Promise<FineTuningJob> {
    return this.queue.get(id);
  }

  listEvents(id: string, opts?: { after?: string; limit?: number }): Promise<Page<JobEvent>> {
    return this.queue.listEvents(id, opts);
  }

  listCheckpoints(id: string, opts?: { after?: string; limit?: number }): Promise<Page<Checkpoint>> {
    return this.queue.listCheckpoints(id, opts);
  }

  cancelJob(id: string): Promise<FineTuningJob> {
    return this.queue.cancel(id);
  }
}

/** The embedded trainer: a queued job that a JobWorker (this process's, or `nodeai worker`'s) runs. */
export class LocalFineTuneProvider extends QueueFineTuneProvider {
  readonly id = 'local';

  constructor(
    queue: JobQueue,
    private readonly options: { priority?: number } = {},
  ) {
    super(queue);
  }

  createJob(req: CreateJobRequest): Promise<FineTuningJob> {
    return this.queue.create({ ...req, provider: 'local', method: 'supervised', ...(this.options.priority !== undefined ? { priority: this.options.priority } : {}) });
  }
}

/**
 * A job trained by an OpenAI-compatible provider and mirrored here: its row is created first (so
 * a run can wait on it), then the tracker uploads the files, creates the remote job and follows it.
 */
export class TrackedRemoteProvider extends QueueFineTuneProvider {
  readonly id: string;

  constructor(
    queue: JobQueue,
    private readonly tracker: RemoteJobTracker,
    private readonly client: FineTuneProvider,
    private readonly options: { baseURL?: string | null; signal?: AbortSignal; /** A key typed into a workflow, kept (encrypted) for the tracker while the job runs. */ keepKey?: string } = {},
  ) {
    super(queue);
    this.id = client.id;
  }

  async createJob(req: CreateJobRequest): Promise<FineTuningJob> {
    const metadata = { ...req.metadata, ...(this.options.baseURL ? { [BASE_URL_METADATA_KEY]: this.options.baseURL } : {}) };
    const job = await this.queue.create({ ...req, metadata: Object.keys(metadata).length ? metadata : null, provider: this.client.id, method: 'supervised' });
    if (job.status === 'failed') return job;
    if (this.options.keepKey) await this.queue.store.secrets.set(jobKeySecretName(job.id), this.options.keepKey);
    await this.tracker.start();
    const file = async (id: string | null | undefined, filename: string) => (id ? { path: await this.queue.store.files.path(id), filename } : null);
    const training = (await file(req.training_file, 'train.jsonl'))!;
    try {
      return await this.tracker.submit(job.id, this.client, { training, validation: await file(req.validation_file, 'validation.jsonl') }, this.options.signal ? { signal: this.options.signal } : {});
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      const where = `OpenAI${this.options.baseURL ? ` (${this.options.baseURL})` : ''}`;
      throw new JobError(typeof code === 'string' ? code : 'provider_error', `Job ${job.id} could not start at ${where}: ${(err as Error).message}`, { cause: err });
    }
  }
}
