// The OpenAI provider against a real server speaking OpenAI's contract (NodeAI's own /v1, with
// the real trainer), and against a scripted HTTP server for the faults OpenAI can throw.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobQueue, JobWorker } from '../jobs/index.ts';
import { createNodeServices } from '../nodes/index.ts';
import { startTestServer, TEST_TOKEN, type TestServer } from '../server/testing.ts';
import { OpenAIChatProvider, OpenAIFineTuneProvider, resolveEndpoint, type OpenAIProviderOptions } from './openai.ts';
import { openAIError, remoteJob, startFakeServer, type FakeServer, type Reply } from './testing.ts';

const example = (i: number) => ({ messages: [{ role: 'user', content: `What is ${i}+1?` }, { role: 'assistant', content: `${i + 1}.` }] });
const JSONL = Array.from({ length: 10 }, (_, i) => JSON.stringify(example(i))).join('\n') + '\n';

describe('OpenAIFineTuneProvider and OpenAIChatProvider against NodeAI /v1 (real server, real trainer)', () => {
  let t: TestServer;
  let worker: JobWorker;
  let ft: OpenAIFineTuneProvider;
  let chat: OpenAIChatProvider;

  beforeAll(async () => {
    t = await startTestServer({
      wire: (store) => {
        const jobs = new JobQueue(store);
        return { jobs, chat: createNodeServices(store, { jobs }).localChat };
      },
    });
    worker = new JobWorker(t.server.jobs!, { pollMs: 20, threads: 1 });
    worker.start();
    ft = new OpenAIFineTuneProvider({ apiKey: TEST_TOKEN, baseURL: `${t.url}/v1` });
    chat = new OpenAIChatProvider({ apiKey: TEST_TOKEN, baseURL: `${t.url}/v1` });
  });
  afterAll(async () => {
    await worker?.stop();
    await t?.close();
  });

  it('uploads, creates a supervised job with hyperparameters/suffix/seed/metadata, polls it to succeeded, lists events and checkpoints, chats with the ft: model plain and streamed', async () => {
    const path = join(t.dataDir, 'math.jsonl');
    writeFileSync(path, JSONL);
    const file = await ft.uploadFile({ path, filename: 'math.jsonl' });
    expect(file).toMatchObject({ object: 'file', filename: 'math.jsonl', purpose: 'fine-tune', bytes: Buffer.byteLength(JSONL) });

    const created = await ft.createJob({ model: 'nodeai-tiny', training_file: file.id, hyperparameters: { n_epochs: 1, batch_size: 4, learning_rate_multiplier: 'auto' }, suffix: 'prov', seed: 3, metadata: { team: 'qa' } });
    expect(created).toMatchObject({
      object: 'fine_tuning.job',
      model: 'nodeai-tiny',
      training_file: file.id,
      seed: 3,
      suffix: 'prov',
      metadata: { team: 'qa' },
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 1, batch_size: 4, learning_rate_multiplier: 'auto' } } },
    });

    let job = created;
    for (let i = 0; i < 600 && !['succeeded', 'failed', 'cancelled'].includes(job.status); i++) {
      await new Promise((r) => setTimeout(r, 50));
      job = await ft.getJob(created.id);
    }
    expect(job.error).toBeNull();
    expect(job.status).toBe('succeeded');
    expect(job.fine_tuned_model).toMatch(/^ft:nodeai-tiny:prov:/);

    const events = await ft.listEvents(job.id, { limit: 100 });
    expect(events.data.some((e) => e.type === 'metrics' && typeof (e.data as { train_loss?: unknown }).train_loss === 'number')).toBe(true);
    expect(events.data.some((e) => e.message.includes('successfully completed'))).toBe(true);
    const older = await ft.listEvents(job.id, { limit: 1, after: events.data[0].id });
    expect(older.data[0].id).toBe(events.data[1].id);
    const checkpoints = await ft.listCheckpoints(job.id);
    expect(Array.isArray(checkpoints.data)).toBe(true);
    for (const c of checkpoints.data) expect(c).toMatchObject({ object: 'fine_tuning.job.checkpoint', fine_tuning_job_id: job.id, step_number: expect.any(Number) });

    const reply = await chat.chat({ model: job.fine_tuned_model!, messages: [{ role: 'system', content: 'Answer briefly.' }, { role: 'user', content: 'What is 2+1?' }], max_tokens: 8, temperature: 0 });
    expect(reply.model).toBe(job.fine_tuned_model);
    expect(reply.usage.completion_tokens).toBeGreaterThan(0);
    let streamed = '';
    for await (const piece of chat.stream({ model: job.fine_tuned_model!, messages: [{ role: 'system', content: 'Answer briefly.' }, { role: 'user', content: 'What is 2+1?' }], max_tokens: 8, temperature: 0 })) streamed += piece;
    expect(streamed).toBe(reply.text);

    // Cancel of a finished job: NodeAI answers 400 in OpenAI's shape, mapped to invalid_request.
    await expect(ft.cancelJob(job.id)).rejects.toMatchObject({ code: 'invalid_request', status: 400 });
    await expect(ft.getJob('ftjob-doesnotexist000000000000')).rejects.toMatchObject({ code: 'not_found', status: 404 });
    await expect(chat.chat({ model: 'ft:nodeai-tiny:none:xxxx', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ code: 'not_found' });
    const wrong = new OpenAIFineTuneProvider({ apiKey: 'sk-wrong-key-0000', baseURL: `${t.url}/v1` });
    const denied = await wrong.getJob(job.id).catch((e: Error) => e);
    expect(denied).toMatchObject({ code: 'auth', status: 401 });
    expect((denied as Error).message).toMatch(/refused the API key.*"api_key" setting.*nodeai secrets set OPENAI_API_KEY/);
    expect((denied as Error).message).not.toContain('sk-wrong-key-0000');
  }, 60_000);
});

describe('OpenAI provider faults (scripted HTTP server on 127.0.0.1)', () => {
  let fake: FakeServer;
  let script: (n: number, path: string) => Reply;
  const waits: number[] = [];
  const options = (extra: Partial<OpenAIProviderOptions> = {}): OpenAIProviderOptions => ({
    apiKey: 'sk-test-secret-123456',
    baseURL: `${fake.url}/v1`,
    retry: { maxRetries: 3, initialDelayMs: 100, maxDelayMs: 1_000, maxElapsedMs: 10_000 },
    // Record each backoff instead of sleeping through it; the retry still happens for real.
    sleep: async (ms) => void waits.push(ms),
    random: () => 0.5,
    ...extra,
  });

  beforeAll(async () => {
    fake = await startFakeServer((req, n) => script(n, req.path));
  });
  afterAll(() => fake?.close());
  const reset = (fn: (n: number, path: string) => Reply) => {
    fake.requests.length = 0;
    waits.length = 0;
    script = fn;
  };

  it('429 with Retry-After, then 200: retried after exactly the wait the server asked for', async () => {
    reset((n) => (n === 1 ? openAIError(429, 'Rate limit reached for requests', { code: 'rate_limit_exceeded', headers: { 'retry-after': '2' } }) : { json: remoteJob('ftjob-1', 'running') }));
    const job = await new OpenAIFineTuneProvider(options()).getJob('ftjob-1');
    expect(job.status).toBe('running');
    expect(fake.requests).toHaveLength(2);
    expect(waits).toEqual([2000]);
  });

  it('500 every time: bounded retries with growing jittered backoff, then server_error', async () => {
    reset(() => openAIError(500, 'The server had an error while processing your request.'));
    const err = await new OpenAIFineTuneProvider(options()).getJob('ftjob-1').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'server_error', status: 502, upstreamStatus: 500, retryable: true });
    expect((err as Error).message).toMatch(/failed while reading the fine-tuning job \(500: The server had an error/);
    expect(fake.requests).toHaveLength(4);
    // initial 100 ms doubling, each half fixed + half jitter (random 0.5 → 75 %).
    expect(waits).toEqual([75, 150, 300]);
  });

  it('a Retry-After beyond the total time allowed fails at once instead of hanging', async () => {
    reset(() => openAIError(429, 'Rate limit reached', { headers: { 'retry-after': '3600' } }));
    const err = await new OpenAIFineTuneProvider(options()).getJob('ftjob-1').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'rate_limited', status: 429 });
    expect((err as Error).message).toMatch(/asked to wait 3600 s, beyond the 10 s NodeAI allows/);
    expect(fake.requests).toHaveLength(1);
  });

  it('insufficient_quota is not retried', async () => {
    reset(() => openAIError(429, 'You exceeded your current quota, please check your plan and billing details.', { code: 'insufficient_quota' }));
    await expect(new OpenAIFineTuneProvider(options()).getJob('ftjob-1')).rejects.toMatchObject({ code: 'quota_exceeded' });
    expect(fake.requests).toHaveLength(1);
  });

  it('a dropped connection is retried; one that keeps dropping ends in connection_error', async () => {
    reset((n) => (n === 1 ? { drop: true } : { json: remoteJob('ftjob-1', 'queued') }));
    expect((await new OpenAIFineTuneProvider(options()).getJob('ftjob-1')).status).toBe('queued');
    expect(fake.requests).toHaveLength(2);
    reset(() => ({ drop: true }));
    const err = await new OpenAIFineTuneProvider(options()).getJob('ftjob-1').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'connection_error' });
    expect((err as Error).message).toMatch(/Lost the connection reading the fine-tuning job at 127\.0\.0\.1:\d+/);
    expect(fake.requests).toHaveLength(4);
  });

  it('a server that never answers times out (no hang), and is retried within bounds', async () => {
    reset(() => ({ hang: true }));
    const started = Date.now();
    const err = await new OpenAIFineTuneProvider(options({ timeoutMs: 150, retry: { maxRetries: 1, initialDelayMs: 10 } })).getJob('ftjob-1').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'connection_error' });
    expect((err as Error).message).toMatch(/Timed out/);
    expect(fake.requests).toHaveLength(2);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("OpenAI's refusal of new fine-tuning jobs (from 2027-01-06) becomes fine_tuning_ended with what to do", async () => {
    reset(() => openAIError(400, 'Fine-tuning is no longer available. New fine-tuning jobs cannot be created.', { code: 'invalid_request_error', param: null }));
    const err = await new OpenAIFineTuneProvider(options()).createJob({ model: 'gpt-4o-mini', training_file: 'file-abc' }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'fine_tuning_ended', retryable: false });
    expect((err as Error).message).toMatch(/OpenAI no longer accepts new fine-tuning jobs.*2027-01-06.*provider "local"/);
    expect(fake.requests).toHaveLength(1);
    // A plain bad request is not mistaken for it.
    reset(() => openAIError(400, "Invalid value for 'suffix': too long.", { param: 'suffix' }));
    await expect(new OpenAIFineTuneProvider(options()).createJob({ model: 'gpt-4o-mini', training_file: 'file-abc', suffix: 'x'.repeat(80) })).rejects.toMatchObject({ code: 'invalid_request', param: 'suffix' });
  });

  it('sends the create-job body in OpenAI\'s method shape, numbers and "auto" as given', async () => {
    reset(() => ({ json: remoteJob('ftjob-2', 'validating_files') }));
    await new OpenAIFineTuneProvider(options()).createJob({ model: 'gpt-4.1-mini', training_file: 'file-a', validation_file: 'file-b', hyperparameters: { n_epochs: 3, batch_size: 'auto' }, suffix: 'x', seed: 7, metadata: { k: 'v' } });
    expect(fake.requests[0]).toMatchObject({ method: 'POST', path: '/v1/fine_tuning/jobs' });
    expect(fake.requests[0].headers.authorization).toBe('Bearer sk-test-secret-123456');
    expect(JSON.parse(fake.requests[0].body)).toEqual({
      model: 'gpt-4.1-mini',
      training_file: 'file-a',
      validation_file: 'file-b',
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 3, batch_size: 'auto' } } },
      suffix: 'x',
      seed: 7,
      metadata: { k: 'v' },
    });
  });

  it('an Azure endpoint goes through AzureOpenAI: /openai/… paths, api-version, api-key header', async () => {
    expect(resolveEndpoint('https://myres.openai.azure.com')).toMatchObject({ kind: 'azure', azure: { endpoint: 'https://myres.openai.azure.com', apiVersion: '2024-10-21' } });
    expect(resolveEndpoint('https://myres.openai.azure.com/openai/v1')).toMatchObject({ kind: 'compatible' });
    expect(resolveEndpoint(null)).toMatchObject({ kind: 'openai', baseURL: 'https://api.openai.com/v1' });
    expect(() => resolveEndpoint('ftp://x')).toThrow(/http:\/\/ or https:\/\//);
    reset((_, path) => (path.endsWith('/chat/completions') ? { json: { id: 'c', object: 'chat.completion', created: 0, model: 'dep', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } } } : { json: remoteJob('ftjob-3', 'running') }));
    const base = `${fake.url}?api-version=2025-01-01-preview`;
    await new OpenAIFineTuneProvider(options({ baseURL: base })).getJob('ftjob-3');
    const reply = await new OpenAIChatProvider(options({ baseURL: base })).chat({ model: 'my-deployment', messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 });
    expect(reply.text).toBe('hi');
    expect(fake.requests.map((r) => r.path)).toEqual(['/openai/fine_tuning/jobs/ftjob-3', '/openai/deployments/my-deployment/chat/completions']);
    for (const r of fake.requests) {
      expect(r.query.get('api-version')).toBe('2025-01-01-preview');
      expect(r.headers['api-key']).toBe('sk-test-secret-123456');
    }
    // Compatible servers get max_tokens; only api.openai.com gets max_completion_tokens.
    expect(JSON.parse(fake.requests[1].body)).toMatchObject({ max_tokens: 5 });
  });

  it('a stream that stalls ends with a clear error instead of hanging', async () => {
    reset(() => ({ hang: true }));
    const started = Date.now();
    const chat = new OpenAIChatProvider(options({ timeoutMs: 200, retry: { maxRetries: 0 } }));
    const consume = async () => {
      for await (const _ of chat.stream({ model: 'm', messages: [{ role: 'user', content: 'hi' }] })) void _;
    };
    await expect(consume()).rejects.toMatchObject({ code: 'connection_error' });
    expect(Date.now() - started).toBeLessThan(2_000);
  });
});
