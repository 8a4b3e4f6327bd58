// GET /api/v1/models answers up to 10,000 models: the queries it makes must not grow with them
// (the hyperparameters of their jobs come in one query; sizes and summaries are in the rows).
import { rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { JobQueue } from '../../jobs/index.ts';
import { createStore, type Store } from '../../store/index.ts';
import { tempDir } from '../../store/testing.ts';
import { modelRoutes } from './jobs.ts';

let store: Store;
let dataDir: string;
let queries = 0;
const countQueries: KyselyPlugin = {
  transformQuery: (args) => {
    queries++;
    return args.node;
  },
  transformResult: async (args) => args.result,
};

beforeAll(async () => {
  dataDir = tempDir('nodeai-model-list-');
  store = await createStore({ dataDir, databaseUrl: '' });
});
afterAll(async () => {
  await store.close();
  rmSync(dataDir, { recursive: true, force: true });
});

it('lists models with their sizes and hyperparameters in as many queries for 7 models as for 1', async () => {
  const counted = new JobQueue({ ...store, db: store.db.withPlugin(countQueries) });
  const app = modelRoutes(counted);
  const file = await store.files.put(Readable.from([`${JSON.stringify({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] })}\n`]), { filename: 'train.jsonl' });
  const addModel = async (n: number) => {
    const job = await counted.create({ model: 'nodeai-tiny', training_file: file.id, suffix: `m${n}`, hyperparameters: { n_epochs: n, batch_size: 1, learning_rate_multiplier: 'auto' } });
    const path = join(dataDir, `m${n}.gguf`);
    await writeFile(path, Buffer.alloc(100 + n));
    await counted.models.register({ job: { id: job.id, base_model: 'nodeai-tiny', provider: 'local', suffix: `m${n}` }, files: { model: path } });
  };
  const listed = async () => {
    queries = 0;
    const res = await app.request('/');
    expect(res.status).toBe(200);
    return { queries, models: ((await res.json()) as { data: { bytes: number; files: string[]; hyperparameters: { n_epochs: number } }[] }).data };
  };

  await addModel(1);
  const one = await listed();
  expect(one.models).toEqual([expect.objectContaining({ bytes: 101, files: ['model'], hyperparameters: expect.objectContaining({ n_epochs: 1 }) })]);

  for (let n = 2; n <= 7; n++) await addModel(n);
  const seven = await listed();
  // Newest first, each with its own size and its own job's hyperparameters.
  expect(seven.models.map((m) => [m.bytes, m.hyperparameters.n_epochs])).toEqual([7, 6, 5, 4, 3, 2, 1].map((n) => [100 + n, n]));
  expect(seven.queries).toBe(one.queries);
  expect(one.queries).toBeLessThanOrEqual(2);
});
