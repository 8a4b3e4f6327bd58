import { existsSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, expect, it } from 'vitest';
import { migrateToLatest, SQLITE_FILENAME } from './database.ts';
import { MigrationError } from './errors.ts';
import { createStore, defaultDataDir } from './store.ts';
import { describeEachDialect, tempDir, TEST_PG_URL, type TestDb } from './testing.ts';

describeEachDialect('database', (dialect) => {
  let t: TestDb;
  afterEach(async () => t?.cleanup());

  it('creates every table at start-up and migrating again is a no-op', async () => {
    t = await dialect.open();
    expect(t.store.dialect).toBe(dialect.name);
    const tables = (await t.store.db.introspection.getTables())
      .map((x) => x.name)
      .sort();
    expect(tables).toEqual(['files', 'job_checkpoints', 'job_events', 'jobs', 'models', 'node_results', 'runs', 'secrets', 'workflows']);
    const again = await migrateToLatest(t.store.db);
    expect(again.results).toEqual([]);
    // A second store (another process) over the same database finds the schema current.
    const second = await t.reopen();
    expect(await second.db.selectFrom('jobs').select('id').execute()).toEqual([]);
  });

  it('round-trips bigint times as numbers on both dialects', async () => {
    t = await dialect.open();
    const now = Date.now();
    await t.store.db
      .insertInto('jobs')
      .values({ id: 'ftjob-1', provider: 'local', method: 'supervised', base_model: 'tiny', status: 'queued', training_file: 'file-x', hyperparameters_json: '{}', run_after: now, created_at: now, updated_at: now })
      .execute();
    const row = await t.store.db.selectFrom('jobs').selectAll().where('id', '=', 'ftjob-1').executeTakeFirstOrThrow();
    expect(row.created_at).toBe(now);
    expect(row.attempts).toBe(0);
    expect(row.priority).toBe(0);
  });

  it('rejects a job status outside the vocabulary', async () => {
    t = await dialect.open();
    const now = Date.now();
    await expect(
      t.store.db
        .insertInto('jobs')
        .values({ id: 'ftjob-2', provider: 'local', method: 'supervised', base_model: 'tiny', status: 'done' as never, training_file: 'f', hyperparameters_json: '{}', run_after: now, created_at: now, updated_at: now })
        .execute(),
    ).rejects.toThrow(/check/i);
  });

  it('deletes a job\'s events and checkpoints with it, and lets a model register once per job', async () => {
    t = await dialect.open();
    const { db } = t.store;
    const now = Date.now();
    await db.insertInto('jobs').values({ id: 'ftjob-3', provider: 'local', method: 'supervised', base_model: 'tiny', status: 'succeeded', training_file: 'f', hyperparameters_json: '{}', run_after: now, created_at: now, updated_at: now }).execute();
    await db.insertInto('job_events').values({ id: 'ftevent-1', job_id: 'ftjob-3', seq: 1, created_at: now, level: 'info', type: 'message', message: 'hi', data_json: null }).execute();
    await db.insertInto('job_checkpoints').values({ id: 'ftckpt-1', job_id: 'ftjob-3', step_number: 10, fine_tuned_model_checkpoint: 'ft:tiny:ckpt-10', metrics_json: null, path: null, created_at: now }).execute();
    const model = { name: 'support', base_model: 'tiny', provider: 'local', job_id: 'ftjob-3', training_examples: 10, epochs: 3, metrics_json: null, files_json: null, path: null, last_used_at: null, created_at: now, updated_at: now };
    await db.insertInto('models').values({ id: 'ft:tiny:support:1', ...model }).execute();
    await expect(db.insertInto('models').values({ id: 'ft:tiny:support:2', ...model, name: 'other' }).execute()).rejects.toThrow(/unique/i);
    await db.deleteFrom('jobs').where('id', '=', 'ftjob-3').execute();
    expect(await db.selectFrom('job_events').selectAll().execute()).toEqual([]);
    expect(await db.selectFrom('job_checkpoints').selectAll().execute()).toEqual([]);
    const kept = await db.selectFrom('models').selectAll().executeTakeFirstOrThrow();
    expect(kept.job_id).toBeNull();
    expect(kept.usage_count).toBe(0);
  });
});

it('puts the SQLite file in the data dir, in WAL mode', async () => {
  const dataDir = tempDir();
  const store = await createStore({ dataDir, databaseUrl: '' });
  await store.close();
  const path = join(dataDir, SQLITE_FILENAME);
  expect(existsSync(path)).toBe(true);
  const raw = new BetterSqlite3(path, { readonly: true });
  expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
  raw.close();
});

it('takes the data dir from NODEAI_DATA_DIR, else ~/.nodeai', () => {
  expect(defaultDataDir({ NODEAI_DATA_DIR: '/srv/nodeai' })).toBe('/srv/nodeai');
  expect(defaultDataDir({})).toMatch(/\.nodeai$/);
});

it('reports a failing migration by name and closes nothing it did not open', async () => {
  const raw = new BetterSqlite3(':memory:');
  raw.exec('CREATE TABLE files (id text)'); // a clash the first migration cannot get past
  const { Kysely, SqliteDialect } = await import('kysely');
  const db = new Kysely<any>({ dialect: new SqliteDialect({ database: raw }) });
  const err = await migrateToLatest(db).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(MigrationError);
  expect((err as MigrationError).code).toBe('migration_failed');
  expect((err as Error).message).toContain('0001-initial');
  await db.destroy();
});

it.skipIf(!TEST_PG_URL)('keeps two instances apart in one Postgres database through pgSchema', async () => {
  const dataDir = tempDir();
  const a = await createStore({ dataDir, databaseUrl: TEST_PG_URL, pgSchema: 'nodeai_schema_a' });
  const b = await createStore({ dataDir, databaseUrl: TEST_PG_URL, pgSchema: 'nodeai_schema_b' });
  try {
    await a.secrets.set('ONLY_IN_A', 'value-only-in-a');
    expect((await a.secrets.list()).map((s) => s.name)).toEqual(['ONLY_IN_A']);
    expect(await b.secrets.list()).toEqual([]);
  } finally {
    await a.db.schema.dropSchema('nodeai_schema_a').ifExists().cascade().execute();
    await b.db.schema.dropSchema('nodeai_schema_b').ifExists().cascade().execute();
    await a.close();
    await b.close();
  }
});
