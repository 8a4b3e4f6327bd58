// The OpenAI-compatible API, driven by the official `openai` SDK against a real server.
import OpenAI, { toFile } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobQueue, JobWorker } from '../../jobs/index.ts';
import { createNodeServices } from '../../nodes/index.ts';
import { until } from '../../store/testing.ts';
import { openSse, startTestServer, TEST_TOKEN, type TestServer } from '../testing.ts';

const example = (i: number) => ({ messages: [{ role: 'user', content: `What is ${i}+1?` }, { role: 'assistant', content: `${i + 1}.` }] });
const JSONL = Array.from({ length: 12 }, (_, i) => JSON.stringify(example(i))).join('\n') + '\n';

describe('/v1 with the official openai SDK', () => {
  let t: TestServer;
  let worker: JobWorker;
  let client: OpenAI;
  let fileId: string;
  let jobId: string;
  let fineTuned: string;

  beforeAll(async () => {
    t = await startTestServer({
      maxUploadBytes: 1 << 20,
      wire: (store) => {
        const jobs = new JobQueue(store);
        return { jobs, chat: createNodeServices(store, { jobs }).localChat };
      },
    });
    // The real trainer (supervised child process) on nodeai-tiny; a few steps take seconds.
    worker = new JobWorker(t.server.jobs!, { pollMs: 20, threads: 1 });
    worker.start();
    client = new OpenAI({ apiKey: TEST_TOKEN, baseURL: t.url + '/v1', maxRetries: 0 });
  });
  afterAll(async () => {
    await worker?.stop();
    await t?.close();
  });

  it('uploads a training file (purpose fine-tune), lists and retrieves it', async () => {
    const file = await client.files.create({ file: await toFile(Buffer.from(JSONL), 'math.jsonl'), purpose: 'fine-tune' });
    expect(file).toMatchObject({ object: 'file', filename: 'math.jsonl', purpose: 'fine-tune', bytes: Buffer.byteLength(JSONL) });
    fileId = file.id;
    expect((await client.files.retrieve(fileId)).id).toBe(fileId);
    const listed = await client.files.list();
    expect(listed.data.map((f) => f.id)).toContain(fileId);
    await expect(client.files.create({ file: await toFile(Buffer.from('x'), 'x.txt'), purpose: 'assistants' })).rejects.toMatchObject({ status: 400, param: 'purpose' });
  });

  it('creates a job on nodeai-tiny, which runs to succeeded with events and a fine-tuned model name', async () => {
    const job = await client.fineTuning.jobs.create({
      model: 'nodeai-tiny',
      training_file: fileId,
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 2, batch_size: 4 } } },
      suffix: 'math',
      seed: 7,
      metadata: { team: 'support' },
    });
    expect(job).toMatchObject({ object: 'fine_tuning.job', model: 'nodeai-tiny', training_file: fileId, seed: 7, suffix: 'math', metadata: { team: 'support' }, hyperparameters: { n_epochs: 2, batch_size: 4 } });
    expect(['validating_files', 'queued', 'running']).toContain(job.status);
    jobId = job.id;
    const live = await openSse(`${t.url}/api/v1/events?job_id=${jobId}`);
    let current = job;
    for (let i = 0; i < 1200 && !['succeeded', 'failed', 'cancelled'].includes(current.status); i++) {
      await new Promise((r) => setTimeout(r, 50));
      current = await client.fineTuning.jobs.retrieve(jobId);
    }
    expect(current.status).toBe('succeeded');
    expect(current.fine_tuned_model).toMatch(/^ft:nodeai-tiny:math:/);
    fineTuned = current.fine_tuned_model!;

    const events = await client.fineTuning.jobs.listEvents(jobId, { limit: 100 });
    const metrics = events.data.filter((e) => e.type === 'metrics');
    const steps = metrics.map((e) => (e.data as { step: number }).step).reverse();
    expect(steps.length).toBeGreaterThan(1);
    expect(steps).toEqual([...steps].sort((a, b) => a - b));
    expect(metrics[0].data).toMatchObject({ train_loss: expect.any(Number) });

    // The same progress went out live over SSE, ending with the status change.
    await live.waitFor((m) => m.event === 'job.status' && JSON.parse(m.data).status === 'succeeded', 10_000);
    const liveSteps = live.messages.filter((m) => m.event === 'job.metrics').map((m) => JSON.parse(m.data).data.step);
    expect(liveSteps).toEqual(steps);
    live.drop();
    expect(events.data.some((e) => e.message.includes('Created fine-tuning job'))).toBe(true);
    const page = await client.fineTuning.jobs.listEvents(jobId, { limit: 2 });
    expect(page.data).toHaveLength(2);
    expect(page.has_more).toBe(true);
    const checkpoints = await client.fineTuning.jobs.checkpoints.list(jobId);
    for (const c of checkpoints.data) expect(c).toMatchObject({ object: 'fine_tuning.job.checkpoint', fine_tuning_job_id: jobId });
  });

  it('lists jobs newest first with after and limit, and pages with async iteration', async () => {
    const second = await client.fineTuning.jobs.create({ model: 'nodeai-tiny', training_file: fileId });
    const first = await client.fineTuning.jobs.list({ limit: 1 });
    expect(first.data.map((j) => j.id)).toEqual([second.id]);
    expect(first.has_more).toBe(true);
    const next = await client.fineTuning.jobs.list({ limit: 1, after: second.id });
    expect(next.data.map((j) => j.id)).toEqual([jobId]);
    const all: string[] = [];
    for await (const j of client.fineTuning.jobs.list({ limit: 1 })) all.push(j.id);
    expect(all).toEqual([second.id, jobId]);
  });

  it('lists and retrieves models, including the fine-tuned one', async () => {
    const models = await client.models.list();
    const ids = models.data.map((m) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['nodeai-tiny', fineTuned]));
    expect((await client.models.retrieve(fineTuned)).id).toBe(fineTuned);
  });

  it('trains a fine-tuned model further (continued fine-tuning); an unknown one is refused', async () => {
    const job = await client.fineTuning.jobs.create({ model: fineTuned, training_file: fileId, hyperparameters: { n_epochs: 1, lora_rank: 4 } as never, suffix: 'more' });
    expect(job.model).toBe(fineTuned);
    // NodeAI's own hyperparameter went through the official SDK and is kept on the job.
    expect(job.hyperparameters).toMatchObject({ lora_rank: 4 });
    const done = await until(() => client.fineTuning.jobs.retrieve(job.id), { ok: (j) => ['succeeded', 'failed', 'cancelled'].includes(j.status), ms: 90_000, every: 100, what: 'the continued job' });
    expect(done).toMatchObject({ status: 'succeeded', model: fineTuned, fine_tuned_model: expect.stringMatching(/^ft:nodeai-tiny:more:/) });
    await expect(client.fineTuning.jobs.create({ model: 'ft:nodeai-tiny:nope:xxxx', training_file: fileId })).rejects.toMatchObject({ status: 400, param: 'model' });
  });

  it('chats with the fine-tuned model, plain and streamed', async () => {
    const reply = await client.chat.completions.create({ model: fineTuned, messages: [{ role: 'user', content: 'What is 2+1?' }], max_tokens: 8, temperature: 0 });
    expect(reply.object).toBe('chat.completion');
    expect(reply.model).toBe(fineTuned);
    expect(typeof reply.choices[0].message.content).toBe('string');
    expect(reply.usage!.completion_tokens).toBeGreaterThan(0);

    const stream = await client.chat.completions.create({ model: fineTuned, messages: [{ role: 'user', content: 'What is 2+1?' }], max_tokens: 8, temperature: 0, stream: true });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      text += chunk.choices[0].delta.content ?? '';
      finish = chunk.choices[0].finish_reason ?? finish;
    }
    expect(text).toBe(reply.choices[0].message.content);
    expect(finish).toBe('stop');
    const usage = await (await t.api(`/api/v1/models/${encodeURIComponent(fineTuned)}/usage`)).json();
    expect(usage.usage_count).toBe(2);
  });

  it('answers in OpenAI error shapes', async () => {
    await expect(client.fineTuning.jobs.retrieve('ftjob-doesnotexist000000000000')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.fineTuning.jobs.create({ model: 'gpt-4o-mini', training_file: fileId })).rejects.toMatchObject({ status: 400, code: 'model_not_available', param: 'model' });
    await expect(client.fineTuning.jobs.create({ model: 'nodeai-tiny', training_file: 'file-nope' })).rejects.toMatchObject({ status: 400, param: 'training_file' });
    await expect(client.fineTuning.jobs.create({ model: 'nodeai-tiny', training_file: fileId, hyperparameters: { n_epochs: 0 } })).rejects.toMatchObject({ status: 400, param: 'hyperparameters.n_epochs' });
    await expect(client.fineTuning.jobs.pause(jobId)).rejects.toMatchObject({ status: 400, code: 'job_state' });
    await expect(client.fineTuning.jobs.cancel(jobId)).rejects.toMatchObject({ status: 400, code: 'job_state' });
    await expect(client.chat.completions.create({ model: 'ft:nodeai-tiny:none:xxxx', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 404 });
    const wrong = new OpenAI({ apiKey: 'wrong-token', baseURL: t.url + '/v1', maxRetries: 0 });
    await expect(wrong.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
  });

  it('pauses a running job, which makes no progress until resumed, then continues from its checkpoint to succeeded', async () => {
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const wait = { ms: 30_000, every: 50 };
    // Enough steps that it is still training when the pause arrives.
    const job = await client.fineTuning.jobs.create({ model: 'nodeai-tiny', training_file: fileId, hyperparameters: { n_epochs: 10, batch_size: 2 }, suffix: 'paused' });
    const events = async () => (await client.fineTuning.jobs.listEvents(job.id, { limit: 1000 })).data.reverse();
    const steps = async () => (await events()).filter((e) => e.type === 'metrics').map((e) => (e.data as { step: number }).step);
    await until(async () => (await steps()).length > 0, { ...wait, what: 'a first step' });
    await expect(client.fineTuning.jobs.resume(job.id)).rejects.toMatchObject({ status: 400, code: 'job_state' });

    expect((await client.fineTuning.jobs.pause(job.id)).status).toBe('paused');
    let pausedAt = 0;
    await until(async () => {
      const m = (await events()).map((e) => /^Fine-tuning job paused at step (\d+)$/.exec(e.message)).find(Boolean);
      pausedAt = m ? Number(m[1]) : 0;
      return pausedAt > 0;
    }, { ...wait, what: 'the pause' });
    const whilePaused = await steps();
    await sleep(1000);
    expect(await steps()).toEqual(whilePaused);
    expect((await client.fineTuning.jobs.retrieve(job.id)).status).toBe('paused');

    expect((await client.fineTuning.jobs.resume(job.id)).status).toBe('queued');
    let final = await client.fineTuning.jobs.retrieve(job.id);
    await until(async () => {
      final = await client.fineTuning.jobs.retrieve(job.id);
      return ['succeeded', 'failed', 'cancelled'].includes(final.status);
    }, { ...wait, what: 'the end of the job' });
    expect(final.status).toBe('succeeded');
    expect(final.fine_tuned_model).toMatch(/^ft:nodeai-tiny:paused:/);

    const messages = (await events()).map((e) => e.message);
    expect(messages).toContain('Fine-tuning job resumed');
    expect(messages.some((m) => m.startsWith(`Resuming from the checkpoint at step ${pausedAt} `))).toBe(true);
    const all = await steps();
    // The steps go on from the checkpoint: strictly increasing, none trained twice, to the end.
    expect(all).toEqual([...new Set(all)].sort((a, b) => a - b));
    expect(all.filter((s) => s > pausedAt)[0]).toBe(pausedAt + 1);
    expect(all.at(-1)).toBe(60);
    const models = (await (await t.api('/api/v1/models')).json()) as { data: { job_id: string }[] };
    expect(models.data.filter((m) => m.job_id === job.id)).toHaveLength(1);
  });

  it('cancels a queued job and deletes a model and a file', async () => {
    await worker.stop();
    const job = await client.fineTuning.jobs.create({ model: 'nodeai-tiny', training_file: fileId });
    const cancelled = await client.fineTuning.jobs.cancel(job.id);
    expect(cancelled.status).toBe('cancelled');
    const deleted = await client.models.delete(fineTuned);
    expect(deleted).toMatchObject({ id: fineTuned, deleted: true });
    await expect(client.models.retrieve(fineTuned)).rejects.toMatchObject({ status: 404 });
    expect(await client.files.delete(fileId)).toMatchObject({ id: fileId, deleted: true });
  });
});
