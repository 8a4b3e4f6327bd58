// One way into fine-tuning: the same settings given to each of the four entry points (the
// Fine-Tune node, OpenAI's /v1, /api/v1 and `nodeai finetune`) reach fineTune() as the same
// FineTuneRequest, with the local queue as the provider. fineTune is the real service, observed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import OpenAI from 'openai';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { FineTuneDeps } from '../jobs/fine-tune-service.ts';
import type { FineTuneRequest } from '../providers/fine-tune-request.ts';

vi.mock('../jobs/fine-tune-service.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../jobs/fine-tune-service.ts')>();
  return { ...real, fineTune: vi.fn(real.fineTune) };
});

const root = mkdtempSync(join(tmpdir(), 'nodeai-entry-points-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const QA = ['Sky?', 'Grass?', 'Snow?', 'Sun?', 'Sea?', 'Night?', 'Blood?', 'Coal?', 'Milk?', 'Lemon?', 'Leaf?', 'Rose?'];
const EXAMPLES = QA.map((q, i) => ({ messages: [{ role: 'user', content: q }, { role: 'assistant', content: `Colour ${i}.` }] }));
const JSONL = EXAMPLES.map((e) => JSON.stringify(e)).join('\n') + '\n';

describe('the four entry points call the one fine-tune service', () => {
  it('node, /v1, /api/v1 and the CLI give fineTune the same request for the same settings', async () => {
    const service = await import('../jobs/fine-tune-service.ts');
    const { LocalFineTuneProvider } = await import('../jobs/queue-providers.ts');
    const { JobQueue } = await import('../jobs/index.ts');
    const { Engine } = await import('../engine/index.ts');
    const { createNodeRegistry, createNodeServices } = await import('../nodes/index.ts');
    const { startTestServer, TEST_TOKEN } = await import('../server/testing.ts');
    const { main } = await import('./main.ts');
    const fineTune = vi.mocked(service.fineTune);

    const t = await startTestServer({ wire: (store) => ({ jobs: new JobQueue(store) }) });
    const engine = new Engine({ store: t.store, registry: createNodeRegistry(), services: { nodeai: createNodeServices(t.store, { jobs: t.server.jobs! }) } });
    try {
      // 1. The Fine-Tune node, fed by a Data Loader.
      const run = await engine.run({
        name: 'entry',
        nodes: [
          { id: 'd', type: 'data_loader', config: { text: JSONL } },
          { id: 'ft', type: 'finetune', config: { epochs: 2, batch_size: 4, seed: 7, model_name: 'same', wait_for_completion: false } },
        ],
        edges: [{ source: 'd', target: 'ft' }],
      });
      expect(run.error).toBeUndefined();

      // 2. OpenAI's /v1, through the official SDK, and 3. /api/v1, on an uploaded prepared file.
      const file = await t.store.files.put(Readable.from([JSONL]), { filename: 'train.jsonl', purpose: 'fine-tune' });
      const client = new OpenAI({ apiKey: TEST_TOKEN, baseURL: `${t.url}/v1`, maxRetries: 0 });
      await client.fineTuning.jobs.create({ model: 'nodeai-tiny', training_file: file.id, hyperparameters: { n_epochs: 2, batch_size: 4 }, seed: 7, suffix: 'same' });
      const api = await t.api('/api/v1/jobs', { method: 'POST', json: { model: 'nodeai-tiny', training_file: file.id, hyperparameters: { n_epochs: 2, batch_size: 4 }, seed: 7, suffix: 'same' } });
      expect(api.status).toBe(201);

      // 4. `nodeai finetune`, which also trains the job it queued (one epoch of nodeai-tiny).
      const data = join(root, 'qa.jsonl');
      writeFileSync(data, JSONL);
      vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
      vi.spyOn(console, 'log').mockImplementation(() => undefined);
      const code = await main(['finetune', data, '--out', join(root, 'out'), '--epochs', '2', '--batch-size', '4', '--seed', '7', '--name', 'same', '--threads', '1', '--data-dir', join(root, 'data')]);
      vi.restoreAllMocks();
      expect(code).toBe(0);

      expect(fineTune).toHaveBeenCalledTimes(4);
      const calls = fineTune.mock.calls as Array<[FineTuneRequest, FineTuneDeps]>;
      expect(calls.map(([request]) => request.data.kind)).toEqual(['examples', 'prepared', 'prepared', 'path']);
      for (const [request, deps] of calls) {
        expect(request).toMatchObject({
          provider: 'local',
          base_model: 'nodeai-tiny',
          hyperparameters: { n_epochs: 2, batch_size: 4, learning_rate: 'auto', learning_rate_multiplier: 'auto' },
          method: { type: 'supervised' },
          seed: 7,
          suffix: 'same',
        });
        expect(deps.provider).toBeInstanceOf(LocalFineTuneProvider);
      }
      // Same settings, same job: every entry point's job carries the same hyperparameters.
      const results = await Promise.all(fineTune.mock.results.map((r) => r.value as ReturnType<typeof service.fineTune>));
      for (const { job } of results) expect(job.hyperparameters).toEqual({ n_epochs: 2, batch_size: 4, learning_rate_multiplier: 'auto' });
    } finally {
      engine.close();
      await t.close();
    }
  }, 120_000);
});
