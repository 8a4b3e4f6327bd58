// A fine-tuning request is refused, not quietly changed: an unknown hyperparameter by name, a
// suffix outside OpenAI's rule (e.g. "../../evil") instead of being rewritten.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobQueue } from '../../jobs/index.ts';
import { startTestServer, type TestServer } from '../testing.ts';

describe('fine-tuning job requests', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ wire: (store) => ({ jobs: new JobQueue(store) }) });
  });
  afterAll(() => t?.close());

  const base = { model: 'nodeai-tiny', training_file: 'file-AAAAAAAAAAAAAAAAAAAAAAAA' };

  it('refuses an unknown hyperparameter, naming it, on /v1 and /api/v1', async () => {
    for (const path of ['/v1/fine_tuning/jobs', '/api/v1/jobs']) {
      for (const body of [{ ...base, hyperparameters: { n_epochs: 1, learning_rate: 0.1 } }, { ...base, method: { type: 'supervised', supervised: { hyperparameters: { lora_rnk: 8 } } } }]) {
        const res = await t.api(path, { method: 'POST', json: body });
        expect(res.status, path).toBe(400);
        const { error } = await res.json();
        expect(error.code).toBe('invalid_request');
        expect(error.message).toMatch(/"(learning_rate|lora_rnk)"/);
        expect(error.param).toMatch(/hyperparameters$/);
      }
    }
  });

  it("refuses a suffix outside OpenAI's rule instead of rewriting it", async () => {
    for (const suffix of ['../../evil', 'a b', 'x'.repeat(65), 'ümlaut', 'semi;colon']) {
      const res = await t.api('/v1/fine_tuning/jobs', { method: 'POST', json: { ...base, suffix } });
      expect(res.status, suffix).toBe(400);
      expect((await res.json()).error).toMatchObject({ code: 'invalid_request', param: 'suffix' });
    }
    // A good suffix passes the schema (and is then refused for the missing file, not the suffix).
    const ok = await t.api('/v1/fine_tuning/jobs', { method: 'POST', json: { ...base, suffix: 'my_model-2' } });
    expect((await ok.json()).error.param).toBe('training_file');
  });
});
