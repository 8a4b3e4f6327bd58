// What a model listing reads: the evaluation's summary and the model file's size are kept in the
// registry row when the model is registered, so listing thousands of models opens no file and
// parses no report; rows from before migration 0005 get both once.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Migrator } from 'kysely';
import { afterEach, expect, it } from 'vitest';
import { migrations } from '../store/migrations/index.ts';
import { describeEachDialect, type TestDb } from '../store/testing.ts';
import type { Store } from '../store/index.ts';
import type { EvaluationReport } from '../trainer/evaluation-report.ts';
import { ModelRegistry } from './model-registry.ts';

const scores = { loss: 0.5, perplexity: Math.exp(0.5), exact_match: 1, contains_match: 1, loss_tokens: 4 };
const report: EvaluationReport = {
  object: 'evaluation',
  models: ['nodeai-tiny', 'tuned'],
  summary: { 'nodeai-tiny': { ...scores, loss: 3, perplexity: Math.exp(3), exact_match: 0 }, tuned: scores },
  examples: [1, 2].map((i) => ({ messages: [{ role: 'user', content: `q${i}` }], expected: 'a', answers: { 'nodeai-tiny': 'zz', tuned: 'a' }, exact: { 'nodeai-tiny': false, tuned: true }, contains: { 'nodeai-tiny': false, tuned: true }, loss: { 'nodeai-tiny': 3, tuned: 0.5 } })),
  method: { decoding: 'greedy', max_new_tokens_cap: 256, normalisation: 'whitespace runs collapsed' },
  created_at: 1,
};
const overview = { models: report.models, summary: report.summary, examples: 2 };

async function insertJob(store: Store, id: string): Promise<void> {
  const now = Date.now();
  await store.db.insertInto('jobs').values({ id, provider: 'local', method: 'supervised', base_model: 'nodeai-tiny', status: 'succeeded', training_file: 'file-x', hyperparameters_json: '{}', run_after: now, created_at: now, updated_at: now }).execute();
}

describeEachDialect('model registry listing', (dialect) => {
  let t: TestDb;
  afterEach(async () => t?.cleanup());

  it('keeps the evaluation summary and the file size at registration: a listing reads neither the report nor the file', async () => {
    t = await dialect.open();
    const registry = new ModelRegistry(t.store);
    await insertJob(t.store, 'ftjob-listed000000000000000');
    const file = join(t.dataDir, 'model.gguf');
    await writeFile(file, Buffer.alloc(1234, 7));
    const model = await registry.register({ job: { id: 'ftjob-listed000000000000000', base_model: 'nodeai-tiny', provider: 'local', suffix: 'bot' }, files: { model: file }, evaluation: report });
    expect(model).toMatchObject({ bytes: 1234, evaluation: overview });

    // Neither is there to read any more: the listing still answers, from the row alone.
    await rm(file);
    await t.store.db.updateTable('models').set({ evaluation_json: '{"not": "a report"' }).where('id', '=', model.id).execute();
    const [listed] = await registry.list();
    expect(listed).toMatchObject({ id: model.id, bytes: 1234, evaluation: overview });
    expect(await registry.get(model.name)).toMatchObject({ bytes: 1234, evaluation: overview });
    await expect(registry.evaluation(model.id)).rejects.toThrow(SyntaxError);
  });

  it('has no size for a model without a full model file, and no evaluation when none ran', async () => {
    t = await dialect.open();
    const registry = new ModelRegistry(t.store);
    await insertJob(t.store, 'ftjob-adapter0000000000000000');
    const model = await registry.register({ job: { id: 'ftjob-adapter0000000000000000', base_model: 'nodeai-tiny', provider: 'local', suffix: null }, files: { adapter: join(t.dataDir, 'a.lora.gguf') } });
    expect(model).toMatchObject({ bytes: null, evaluation: null });
    expect(await registry.list()).toEqual([model]);
  });

  it('keeps a model whose file is missing without a size, rather than failing the listing', async () => {
    t = await dialect.open();
    const registry = new ModelRegistry(t.store);
    await insertJob(t.store, 'ftjob-gone0000000000000000000');
    const model = await registry.register({ job: { id: 'ftjob-gone0000000000000000000', base_model: 'nodeai-tiny', provider: 'local', suffix: null }, files: { model: join(t.dataDir, 'never-written.gguf') } });
    expect(model.bytes).toBeNull();
    expect((await registry.list())[0].bytes).toBeNull();
  });

  it('gives a model registered before migration 0005 its summary (from the report) and its size (from the file, once)', async () => {
    t = await dialect.open();
    const migrator = new Migrator({ db: t.store.db, provider: { getMigrations: async () => migrations } });
    const down = await migrator.migrateTo('0004-model-evaluation');
    expect(down.error).toBeUndefined();
    expect(down.results?.map((r) => [r.migrationName, r.direction, r.status])).toEqual([['0005-model-list-columns', 'Down', 'Success']]);

    await insertJob(t.store, 'ftjob-old00000000000000000000');
    await writeFile(join(t.dataDir, 'old.gguf'), Buffer.alloc(321, 1));
    const now = Date.now();
    await t.store.db
      .insertInto('models')
      // A path relative to the data directory, as registeredFilePath() allows: only the registry can resolve it.
      .values({ id: 'ft:nodeai-tiny:old:00000000', name: 'old', base_model: 'nodeai-tiny', provider: 'local', job_id: 'ftjob-old00000000000000000000', training_examples: 2, epochs: 1, metrics_json: null, files_json: JSON.stringify({ model: 'old.gguf' }), evaluation_json: JSON.stringify(report), path: 'old.gguf', last_used_at: null, created_at: now, updated_at: now } as never)
      .execute();
    const up = await migrator.migrateToLatest();
    expect(up.error).toBeUndefined();

    const registry = new ModelRegistry(t.store);
    expect(await registry.list()).toEqual([expect.objectContaining({ id: 'ft:nodeai-tiny:old:00000000', bytes: 321, evaluation: overview })]);
    // The size is stored now: the file is not needed for it again.
    await rm(join(t.dataDir, 'old.gguf'));
    expect((await registry.list())[0].bytes).toBe(321);
    expect(await registry.evaluation('old')).toEqual(report);
  });
});
