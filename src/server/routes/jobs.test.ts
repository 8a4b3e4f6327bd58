import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobQueue } from '../../jobs/index.ts';
import { startTestServer, type TestServer } from '../testing.ts';

const JSONL = Array.from({ length: 10 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `q${i}` }, { role: 'assistant', content: `a${i}` }] })).join('\n') + '\n';

describe('/api/v1 jobs and models', () => {
  let t: TestServer;
  let jobs: JobQueue;
  let fileId: string;
  beforeAll(async () => {
    // No worker: the test plays the worker's part through the queue, so every state is reachable.
    t = await startTestServer({ wire: (store) => ({ jobs: new JobQueue(store) }) });
    jobs = t.server.jobs!;
    const fd = new FormData();
    fd.set('file', new Blob([JSONL]), 'train.jsonl');
    fileId = (await (await t.api('/api/v1/files', { method: 'POST', body: fd })).json()).id;
  });
  afterAll(() => t.close());

  it('creates, lists, gets and cancels a job; a finished one cannot be cancelled', async () => {
    const created = await t.api('/api/v1/jobs', { method: 'POST', json: { model: 'nodeai-tiny', training_file: fileId, hyperparameters: { n_epochs: 2 } } });
    expect(created.status).toBe(201);
    const job = await created.json();
    expect(job).toMatchObject({ object: 'fine_tuning.job', status: 'queued', hyperparameters: { n_epochs: 2, batch_size: 'auto' } });
    expect(await (await t.api(`/api/v1/jobs/${job.id}`)).json()).toMatchObject({ id: job.id });
    const listed = await (await t.api('/api/v1/jobs?status=queued')).json();
    expect(listed.data.map((j: { id: string }) => j.id)).toContain(job.id);
    const cancelled = await (await t.api(`/api/v1/jobs/${job.id}/cancel`, { method: 'POST' })).json();
    expect(cancelled.status).toBe('cancelled');
    const again = await t.api(`/api/v1/jobs/${job.id}/cancel`, { method: 'POST' });
    expect(again.status).toBe(400);
    expect((await again.json()).error.code).toBe('job_state');
  });

  it('serves events newest first, metrics in step order, and checkpoints', async () => {
    const job = await jobs.create({ model: 'nodeai-tiny', training_file: fileId });
    for (let step = 1; step <= 5; step++) await jobs.addEvent(job.id, { type: 'metrics', message: `Step ${step}/5`, data: { step, train_loss: 3 / step } });
    await t.store.db
      .insertInto('job_checkpoints')
      .values({ id: 'ftckpt-aaaaaaaaaaaaaaaaaaaaaaaa', job_id: job.id, step_number: 5, fine_tuned_model_checkpoint: 'ft:nodeai-tiny::x:ckpt-step-5', metrics_json: JSON.stringify({ step: 5, train_loss: 0.6 }), path: null, created_at: Date.now() })
      .execute();
    const events = await (await t.api(`/api/v1/jobs/${job.id}/events?limit=3`)).json();
    expect(events.data.map((e: { message: string }) => e.message)).toEqual(['Step 5/5', 'Step 4/5', 'Step 3/5']);
    expect(events.has_more).toBe(true);
    const older = await (await t.api(`/api/v1/jobs/${job.id}/events?limit=3&after=${events.data[2].id}`)).json();
    expect(older.data[0].message).toBe('Step 2/5');
    const metrics = await (await t.api(`/api/v1/jobs/${job.id}/metrics`)).json();
    expect(metrics.data.map((m: { step: number }) => m.step)).toEqual([1, 2, 3, 4, 5]);
    expect(metrics.data[1].train_loss).toBe(1.5);
    const ckpts = await (await t.api(`/api/v1/jobs/${job.id}/checkpoints`)).json();
    expect(ckpts.data).toEqual([expect.objectContaining({ step_number: 5, fine_tuning_job_id: job.id, metrics: { step: 5, train_loss: 0.6 } })]);
  });

  it('answers 404 for an unknown job and 400 for a bad body or query', async () => {
    for (const path of ['/api/v1/jobs/ftjob-nope', '/api/v1/jobs/ftjob-nope/events', '/api/v1/jobs/ftjob-nope/metrics']) {
      const res = await t.api(path);
      expect(res.status).toBe(404);
      expect((await res.json()).error.code).toBe('job_not_found');
    }
    const bad = await t.api('/api/v1/jobs', { method: 'POST', json: { model: 'nodeai-tiny', training_file: fileId, hyperparameters: { batch_size: 'lots' } } });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.param).toBe('hyperparameters.batch_size');
    expect((await t.api('/api/v1/jobs?limit=0')).status).toBe(400);
    expect((await t.api('/api/v1/jobs?status=nope')).status).toBe(400);
  });

  it('lists, gets, renames and deletes models, with usage counts and no server paths', async () => {
    const job = await jobs.create({ model: 'nodeai-tiny', training_file: fileId, suffix: 'bot' });
    const model = await jobs.models.register({ job: { id: job.id, base_model: 'nodeai-tiny', provider: 'local', suffix: 'bot' }, files: { model: `${t.dataDir}/jobs/${job.id}/model.gguf` }, epochs: 3 });
    const enc = encodeURIComponent(model.id);
    const listed = await (await t.api('/api/v1/models')).json();
    expect(listed.data.map((m: { id: string }) => m.id)).toContain(model.id);
    const got = await (await t.api(`/api/v1/models/${enc}`)).text();
    expect(got).not.toContain(t.dataDir);
    expect(JSON.parse(got)).toMatchObject({ id: model.id, files: ['model'], epochs: 3, usage_count: 0 });
    await jobs.models.recordUse(model.id);
    expect(await (await t.api(`/api/v1/models/${enc}/usage`)).json()).toMatchObject({ usage_count: 1 });
    const renamed = await (await t.api(`/api/v1/models/${enc}`, { method: 'PATCH', json: { name: 'support-bot' } })).json();
    expect(renamed).toMatchObject({ id: model.id, name: 'support-bot' });
    expect((await (await t.api('/api/v1/models/support-bot')).json()).id).toBe(model.id);
    const bad = await t.api(`/api/v1/models/${enc}`, { method: 'PATCH', json: { name: 'has space' } });
    expect(bad.status).toBe(400);
    // A name must not hide the built-in model, a fine-tuned model ID, a GGUF path or an hf:/ollama: model.
    for (const name of ['nodeai-tiny', 'ft:nodeai-tiny:x:y', 'base.gguf', 'hf:acme/Tiny-GGUF:Q8_0', 'ollama:llama3.2']) {
      const hiding = await t.api(`/api/v1/models/${enc}`, { method: 'PATCH', json: { name } });
      expect(hiding.status).toBe(400);
      expect((await hiding.json()).error.code).toBe('invalid_model_name');
    }
    expect((await t.api('/api/v1/models/support-bot', { method: 'DELETE' })).status).toBe(200);
    const gone = await t.api(`/api/v1/models/${enc}`);
    expect(gone.status).toBe(404);
    expect((await gone.json()).error.code).toBe('model_not_found');
  });

  it('serves a model\'s stored evaluation report, and 404 saying how to get one when it has none', async () => {
    const job = await jobs.create({ model: 'nodeai-tiny', training_file: fileId, suffix: 'evald' });
    const summary = { loss: 0.5, perplexity: Math.exp(0.5), exact_match: 1, contains_match: 1, loss_tokens: 4 };
    const report = {
      object: 'evaluation' as const,
      models: ['nodeai-tiny', 'tuned'],
      summary: { 'nodeai-tiny': { ...summary, loss: 3, perplexity: Math.exp(3), exact_match: 0 }, tuned: summary },
      examples: [{ messages: [{ role: 'user', content: 'q' }], expected: 'a', answers: { 'nodeai-tiny': 'zz', tuned: 'a' }, exact: { 'nodeai-tiny': false, tuned: true }, contains: { 'nodeai-tiny': false, tuned: true }, loss: { 'nodeai-tiny': 3, tuned: 0.5 } }],
      method: { decoding: 'greedy' as const, max_new_tokens_cap: 256, normalisation: 'x' },
      created_at: 1,
    };
    const model = await jobs.models.register({ job: { id: job.id, base_model: 'nodeai-tiny', provider: 'local', suffix: 'evald' }, files: {}, evaluation: report });
    const res = await t.api(`/api/v1/models/${encodeURIComponent(model.id)}/evaluation`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ model: model.id, ...report });
    expect((await (await t.api(`/api/v1/models/${encodeURIComponent(model.id)}`)).json()).evaluation).toEqual({ models: report.models, summary: report.summary, examples: 1 });

    const plainJob = await jobs.create({ model: 'nodeai-tiny', training_file: fileId, suffix: 'plain' });
    const plain = await jobs.models.register({ job: { id: plainJob.id, base_model: 'nodeai-tiny', provider: 'local', suffix: 'plain' }, files: {} });
    const none = await t.api(`/api/v1/models/${encodeURIComponent(plain.id)}/evaluation`);
    expect(none.status).toBe(404);
    expect((await none.json()).error).toMatchObject({ code: 'evaluation_not_found', message: expect.stringContaining('POST /api/v1/evaluations') });
    expect((await t.api('/api/v1/models/ft:nope:x:y/evaluation')).status).toBe(404);
  });
});
