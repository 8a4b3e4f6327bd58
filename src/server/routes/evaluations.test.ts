import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobQueue } from '../../jobs/index.ts';
import { qa, trainTinyPair, type TrainedPair } from '../../trainer/evaluation-fixture.ts';
import { disposeInference } from '../../trainer/inference.ts';
import { startTestServer, type TestServer } from '../testing.ts';

const SET = [qa('1+1?', 'two'), qa('2+2?', 'four'), qa('color of sky?', 'blue')];

describe('/api/v1/evaluations', () => {
  let t: TestServer;
  let dir: string;
  let pair: TrainedPair;
  let model: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nodeai-eval-api-'));
    pair = await trainTinyPair(dir, SET);
    t = await startTestServer({ wire: (store) => ({ jobs: new JobQueue(store) }) });
    const jobs = t.server.jobs!;
    const fd = new FormData();
    fd.set('file', new Blob([SET.map((e) => JSON.stringify(e)).join('\n') + '\n']), 'set.jsonl');
    const fileId = (await (await t.api('/api/v1/files', { method: 'POST', body: fd })).json()).id;
    const job = await jobs.create({ model: 'nodeai-tiny', training_file: fileId, suffix: 'qa' });
    model = (await jobs.models.register({ job: { id: job.id, base_model: 'nodeai-tiny', provider: 'local', suffix: 'qa' }, files: { model: pair.tunedPath } })).id;
  }, 120_000);
  afterAll(async () => {
    await t.close();
    await disposeInference();
    await rm(dir, { recursive: true, force: true });
  });

  async function finished(id: string) {
    for (;;) {
      const run = await (await t.api(`/api/v1/evaluations/${id}`)).json();
      if (run.status === 'succeeded' || run.status === 'failed') return run;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('runs base and fine-tuned side by side in the background; the run is polled to its report', { timeout: 120_000 }, async () => {
    const res = await t.api('/api/v1/evaluations', { method: 'POST', json: { models: ['nodeai-tiny', model], examples: SET } });
    expect(res.status).toBe(202);
    const started = await res.json();
    expect(started).toMatchObject({ object: 'evaluation.run', id: expect.stringMatching(/^eval-/), models: ['nodeai-tiny', model], report: null });
    expect(['queued', 'running']).toContain(started.status);
    const run = await finished(started.id);
    expect(run.status).toBe('succeeded');
    expect(run.progress).toMatchObject({ done: 6, total: 6 });
    expect(run.report.models).toEqual(['nodeai-tiny', model]);
    expect(run.report.summary[model]).toMatchObject({ exact_match: 1, contains_match: 1 });
    expect(run.report.summary[model].loss).toBeCloseTo(pair.trainerLoss, 4);
    expect(run.report.summary['nodeai-tiny'].exact_match).toBe(0);
    expect(run.report.examples[0]).toMatchObject({ expected: 'two', answers: { [model]: 'two' } });
  });

  it('refuses at once what cannot run: an unknown model, a server path, a bad example, no data', async () => {
    const post = async (json: unknown) => {
      const res = await t.api('/api/v1/evaluations', { method: 'POST', json });
      return { status: res.status, error: (await res.json()).error };
    };
    expect(await post({ models: ['ft:nope:x:y'], examples: SET })).toMatchObject({ status: 400, error: { code: 'model_not_found', message: expect.stringMatching(/not a registered fine-tuned model/) } });
    expect(await post({ models: ['/etc/model.gguf'], examples: SET })).toMatchObject({ status: 400, error: { code: 'path_not_allowed' } });
    expect(await post({ models: [model], examples: [SET[0], { messages: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }, { role: 'user', content: 'c' }] }] })).toMatchObject({
      status: 400,
      error: { code: 'invalid_example', message: expect.stringMatching(/line 2: the last message must be the expected assistant answer/) },
    });
    expect(await post({ models: [model] })).toMatchObject({ status: 400, error: { message: expect.stringMatching(/give file_id or examples/) } });
    expect(await post({ models: [model], file_id: 'file-ZZZZZZZZZZZZZZZZZZZZZZZZ' })).toMatchObject({ status: 400, error: { code: 'file_not_found' } });
    const gone = await t.api('/api/v1/evaluations/eval-nope');
    expect(gone.status).toBe(404);
  });
});
