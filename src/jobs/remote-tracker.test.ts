// The remote job tracker against a scripted OpenAI-shaped server on 127.0.0.1: submission,
// mirroring, the end of a job, restarts, cancels and the faults that must end in a clear status.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { OpenAIFineTuneProvider, type OpenAIProviderOptions } from '../providers/openai.ts';
import { openAIError, remoteJob, startFakeServer, type FakeServer, type Reply, type SeenRequest } from '../providers/testing.ts';
import { describeEachDialect, until, type TestDb } from '../store/testing.ts';
import type { JobFinished } from './queue.ts';
import { JobQueue } from './queue.ts';
import { BASE_URL_METADATA_KEY, jobKeySecretName, openAIConnector, RemoteJobTracker } from './remote-tracker.ts';

const JSONL = Array.from({ length: 10 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `q${i}` }, { role: 'assistant', content: `a${i}` }] })).join('\n') + '\n';
const FAST: Partial<OpenAIProviderOptions> = { retry: { maxRetries: 2, initialDelayMs: 5, maxDelayMs: 20, maxElapsedMs: 5_000 }, timeoutMs: 2_000 };

/** A remote OpenAI: one job whose state the test moves along; every route can be overridden. */
class Remote {
  status = 'validating_files';
  events: Record<string, unknown>[] = [];
  checkpoints: Record<string, unknown>[] = [];
  fineTunedModel: string | null = null;
  error: Record<string, unknown> | null = null;
  override?: (req: SeenRequest) => Reply | undefined;
  private seq = 0;

  event(message: string, data?: Record<string, unknown>) {
    this.events.unshift({ id: `ftevent-remote${++this.seq}`, object: 'fine_tuning.job.event', created_at: 1_790_000_000 + this.seq, level: 'info', message, type: data ? 'metrics' : 'message', ...(data ? { data } : {}) });
  }

  handle(req: SeenRequest): Reply {
    const o = this.override?.(req);
    if (o) return o;
    const job = () => ({ json: remoteJob('ftjob-remote1', this.status, { fine_tuned_model: this.fineTunedModel, error: this.error, trained_tokens: this.status === 'succeeded' ? 1234 : null }) });
    if (req.method === 'POST' && req.path === '/v1/files') return { json: { id: `file-remote${++this.seq}`, object: 'file', bytes: 10, created_at: 1, filename: 'x.jsonl', purpose: 'fine-tune' } };
    if (req.method === 'POST' && req.path === '/v1/fine_tuning/jobs') return job();
    if (req.path === '/v1/fine_tuning/jobs/ftjob-remote1') return job();
    if (req.path.endsWith('/events')) {
      const after = req.query.get('after');
      const start = after ? this.events.findIndex((e) => e.id === after) + 1 : 0;
      const limit = Number(req.query.get('limit') ?? 20);
      return { json: { object: 'list', data: this.events.slice(start, start + limit), has_more: start + limit < this.events.length } };
    }
    if (req.path.endsWith('/checkpoints')) return { json: { object: 'list', data: this.checkpoints, has_more: false } };
    if (req.path.endsWith('/cancel')) {
      this.status = 'cancelled';
      return job();
    }
    return openAIError(404, `no route ${req.path}`);
  }
}

describeEachDialect('RemoteJobTracker', (dialect) => {
  let t: TestDb;
  let fake: FakeServer;
  let remote: Remote;
  let queue: JobQueue;
  let trackers: RemoteJobTracker[];
  let trainingPath: string;

  const tracker = (q = queue, extra: ConstructorParameters<typeof RemoteJobTracker>[1] = {}) => {
    const tr = new RemoteJobTracker(q, { pollMs: 20, maxPollMs: 80, scanMs: 60_000, connect: openAIConnector(q, { env: {}, provider: FAST }), ...extra });
    trackers.push(tr);
    return tr;
  };
  const client = () => new OpenAIFineTuneProvider({ ...FAST, apiKey: 'sk-remote-secret-1', baseURL: `${fake.url}/v1` });
  const newJob = async (q = queue) => {
    const file = await q.store.files.put(trainingPath, { filename: 'train.jsonl', purpose: 'fine-tune' });
    return q.create({ provider: 'openai', model: 'gpt-4o-mini-2024-07-18', training_file: file.id, hyperparameters: { n_epochs: 2 }, suffix: 'support', metadata: { run_id: 'run-1', [BASE_URL_METADATA_KEY]: `${fake.url}/v1` } });
  };
  const ended = (q = queue) => new Promise<JobFinished>((resolve) => q.onFinished(resolve));

  beforeEach(async () => {
    t = await dialect.open();
    remote = new Remote();
    fake = await startFakeServer((req) => remote.handle(req));
    queue = new JobQueue(t.store);
    trackers = [];
    trainingPath = join(t.dataDir, 'train.jsonl');
    writeFileSync(trainingPath, JSONL);
  });
  afterEach(async () => {
    for (const tr of trackers) await tr.stop();
    await fake.close();
    await t.cleanup();
  });

  it('submits (upload + create with the local metadata), mirrors status, events and checkpoints, and registers the ft: model when the remote job succeeds', async () => {
    const job = await newJob();
    await t.store.secrets.set(jobKeySecretName(job.id), 'sk-remote-secret-1');
    const tr = tracker();
    const finished = ended();
    const submitted = await tr.submit(job.id, client(), { training: { path: trainingPath, filename: 'train.jsonl' } });
    expect(submitted.status).toBe('validating_files');
    const row = await queue.getRow(job.id);
    expect(row).toMatchObject({ provider: 'openai', provider_job_id: 'ftjob-remote1' });
    const create = fake.requests.find((r) => r.method === 'POST' && r.path === '/v1/fine_tuning/jobs')!;
    expect(JSON.parse(create.body)).toMatchObject({
      model: 'gpt-4o-mini-2024-07-18',
      training_file: expect.stringMatching(/^file-remote/),
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 2, batch_size: 'auto', learning_rate_multiplier: 'auto' } } },
      suffix: 'support',
      metadata: { run_id: 'run-1', nodeai_job_id: job.id },
    });
    // The base URL is local bookkeeping, not the provider's business.
    expect(JSON.parse(create.body).metadata[BASE_URL_METADATA_KEY]).toBeUndefined();

    remote.status = 'running';
    remote.event('Fine-tuning job started');
    remote.event('Step 1/4: training loss=2.10', { step: 1, train_loss: 2.1 });
    await until(async () => (await queue.get(job.id)).status === 'running');
    await until(async () => (await queue.listEvents(job.id, { limit: 100 })).data.some((e) => e.message.startsWith('Step 1/4')));

    remote.event('Step 4/4: training loss=0.50', { step: 4, train_loss: 0.5, valid_loss: 0.7 });
    remote.checkpoints = [{ id: 'ftckpt-r1', object: 'fine_tuning.job.checkpoint', created_at: 1_790_000_100, fine_tuned_model_checkpoint: 'ft:gpt-4o-mini-2024-07-18:org:support:abc:ckpt-step-4', fine_tuning_job_id: 'ftjob-remote1', step_number: 4, metrics: { step: 4, train_loss: 0.5 } }];
    remote.event('The job has successfully completed');
    remote.fineTunedModel = 'ft:gpt-4o-mini-2024-07-18:org:support:abc123';
    remote.status = 'succeeded';

    const outcome = await finished;
    expect(outcome).toMatchObject({ jobId: job.id, status: 'succeeded', outputs: { fine_tuned_model: 'ft:gpt-4o-mini-2024-07-18:org:support:abc123', trained_tokens: 1234, train_loss: 0.5, valid_loss: 0.7, epochs: 2, training_examples: 10 } });
    const model = await queue.models.get('ft:gpt-4o-mini-2024-07-18:org:support:abc123');
    expect(model).toMatchObject({ provider: 'openai', job_id: job.id, base_model: 'gpt-4o-mini-2024-07-18' });
    const events = (await queue.listEvents(job.id, { limit: 100 })).data.map((e) => e.message);
    for (const m of ['Fine-tuning job started', 'Step 1/4: training loss=2.10', 'Step 4/4: training loss=0.50', 'The job has successfully completed']) expect(events.filter((e) => e === m)).toHaveLength(1);
    expect((await queue.listCheckpoints(job.id)).data).toMatchObject([{ step_number: 4, fine_tuned_model_checkpoint: 'ft:gpt-4o-mini-2024-07-18:org:support:abc:ckpt-step-4', metrics: { train_loss: 0.5 } }]);
    // The job's copy of a node-typed key is gone once the job ended (deleted right after the
    // finish is recorded, so the listener above may run first).
    await expect.poll(() => t.store.secrets.has(jobKeySecretName(job.id))).toBe(false);
    await until(() => tr.jobs.length === 0);
  });

  it('survives a restart: a new store over the same database adopts the job, mirrors each event once, and finishes it', async () => {
    await t.store.secrets.set('OPENAI_API_KEY', 'sk-vault-key-99', { allowedHosts: [new URL(fake.url).host] });
    const job = await newJob();
    const first = tracker();
    await first.submit(job.id, client(), { training: { path: trainingPath, filename: 'train.jsonl' } });
    remote.status = 'running';
    remote.event('Fine-tuning job started');
    await until(async () => (await queue.listEvents(job.id, { limit: 100 })).data.some((e) => e.message === 'Fine-tuning job started'));
    await first.stop();
    expect((await queue.getRow(job.id)).locked_by).toBeNull();

    // While nobody watches, the remote job moves on and ends.
    remote.event('Step 2/2: training loss=0.40', { step: 2, train_loss: 0.4 });
    remote.fineTunedModel = 'ft:gpt-4o-mini-2024-07-18:org:support:zzz';
    remote.status = 'succeeded';

    const store2 = await t.reopen();
    const queue2 = new JobQueue(store2);
    const finished = ended(queue2);
    const second = tracker(queue2);
    expect(await second.start()).toEqual([job.id]);
    expect(await finished).toMatchObject({ status: 'succeeded', outputs: { fine_tuned_model: 'ft:gpt-4o-mini-2024-07-18:org:support:zzz' } });
    const messages = (await queue2.listEvents(job.id, { limit: 100 })).data.map((e) => e.message);
    expect(messages.filter((m) => m === 'Fine-tuning job started')).toHaveLength(1);
    expect(messages.filter((m) => m.startsWith('Step 2/2'))).toHaveLength(1);
    expect(messages).toContain('Following remote job ftjob-remote1 again after a restart');
    // The vault key was used after the restart; the request carried it.
    expect(fake.requests.at(-1)!.headers.authorization).toBe('Bearer sk-vault-key-99');
  });

  it('a job whose holder stopped without handing it back (lease expired) is adopted too', async () => {
    await t.store.secrets.set('OPENAI_API_KEY', 'sk-vault-key-99', { allowedHosts: [new URL(fake.url).host] });
    const job = await newJob();
    remote.status = 'running';
    await t.store.db.updateTable('jobs').set({ provider_job_id: 'ftjob-remote1', status: 'running', locked_by: 'elsewhere:1:gone', locked_until: Date.now() - 1 }).where('id', '=', job.id).execute();
    const tr = tracker();
    expect(await tr.start()).toEqual([job.id]);
    await until(async () => (await queue.getRow(job.id)).locked_by === tr.id);
  });

  it('500 on every upload: bounded retries, then the job fails with server_error and a clear message', async () => {
    remote.override = (req) => (req.path === '/v1/files' ? openAIError(500, 'The server had an error while processing your request.') : undefined);
    const job = await newJob();
    const err = await tracker().submit(job.id, client(), { training: { path: trainingPath, filename: 'train.jsonl' } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'server_error' });
    expect(fake.requests.filter((r) => r.path === '/v1/files')).toHaveLength(3);
    const failed = await queue.get(job.id);
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatchObject({ code: 'server_error', message: expect.stringMatching(/failed while uploading the training file \(500: The server had an error/) });
  });

  it("OpenAI's refusal of new jobs fails the job with fine_tuning_ended and says to use provider local", async () => {
    remote.override = (req) => (req.method === 'POST' && req.path === '/v1/fine_tuning/jobs' ? openAIError(400, 'Fine-tuning is no longer available: OpenAI no longer accepts new fine-tuning jobs.', { code: null }) : undefined);
    const job = await newJob();
    await expect(tracker().submit(job.id, client(), { training: { path: trainingPath, filename: 'train.jsonl' } })).rejects.toMatchObject({ code: 'fine_tuning_ended' });
    const failed = await queue.get(job.id);
    expect(failed).toMatchObject({ status: 'failed', error: { code: 'fine_tuning_ended' } });
    expect(failed.error!.message).toMatch(/no longer accepts new fine-tuning jobs.*2027-01-06.*Use provider "local"/);
    const events = (await queue.listEvents(job.id, { limit: 50 })).data.map((e) => e.message);
    expect(events.some((m) => /The job failed: .*provider "local"/.test(m))).toBe(true);
  });

  it('a remote that keeps failing while polled: the job fails after the bounded number of polls, not never', async () => {
    await t.store.secrets.set('OPENAI_API_KEY', 'sk-vault-key-99', { allowedHosts: [new URL(fake.url).host] });
    const job = await newJob();
    await t.store.db.updateTable('jobs').set({ provider_job_id: 'ftjob-remote1', status: 'running' }).where('id', '=', job.id).execute();
    remote.override = (req) => (req.method === 'GET' ? openAIError(503, 'Service unavailable') : undefined);
    const finished = ended();
    await tracker(queue, { maxPollFailures: 2 }).start();
    const outcome = await finished;
    expect(outcome).toMatchObject({ status: 'failed', error: { code: 'server_error' } });
    expect(outcome.error!.message).toMatch(/could not reach openai in 3 polls in a row.*503/);
    // 3 polls × (1 try + 2 retries).
    expect(fake.requests.filter((r) => r.path === '/v1/fine_tuning/jobs/ftjob-remote1')).toHaveLength(9);
  });

  it('no key anywhere after a restart: the job fails with "OpenAI API key not found" and where to add it', async () => {
    const job = await newJob();
    await t.store.db.updateTable('jobs').set({ provider_job_id: 'ftjob-remote1', status: 'running' }).where('id', '=', job.id).execute();
    const finished = ended();
    await tracker().start();
    const outcome = await finished;
    expect(outcome).toMatchObject({ status: 'failed', error: { code: 'api_key_missing' } });
    expect(outcome.error!.message).toMatch(/OpenAI API key not found\. Add it in the node's "api_key" setting, or store it once with "nodeai secrets set OPENAI_API_KEY"/);
  });

  it('cancelling a running remote job cancels it at the provider and ends it cancelled here', async () => {
    const job = await newJob();
    const tr = tracker();
    await tr.submit(job.id, client(), { training: { path: trainingPath, filename: 'train.jsonl' } });
    remote.status = 'running';
    await until(async () => (await queue.get(job.id)).status === 'running');
    const finished = ended();
    await queue.cancel(job.id);
    expect(await finished).toMatchObject({ status: 'cancelled' });
    expect(fake.requests.some((r) => r.method === 'POST' && r.path === '/v1/fine_tuning/jobs/ftjob-remote1/cancel')).toBe(true);
  });

  it('never writes the key into events, errors or rows', async () => {
    remote.override = (req) => (req.path === '/v1/files' ? openAIError(401, 'Incorrect API key provided: sk-remote-secret-1.', { code: 'invalid_api_key' }) : undefined);
    const job = await newJob();
    t.store.redactor.add('sk-remote-secret-1');
    await expect(tracker().submit(job.id, client(), { training: { path: trainingPath, filename: 'train.jsonl' } })).rejects.toMatchObject({ code: 'auth' });
    const dump = JSON.stringify([await queue.getRow(job.id), await queue.listEvents(job.id, { limit: 100 })]);
    expect(dump).toContain('refused the API key');
    expect(dump).not.toContain('sk-remote-secret-1');
  });
});
