// Engine and store benchmark (issue 4): engine overhead per node on a 1,000-node chain of
// pass-through nodes (SQLite), and 10,000 job status transitions on SQLite and on Postgres.
//
//   npm run bench:engine                       # SQLite only
//   NODEAI_TEST_DATABASE_URL=postgres://… npm run bench:engine   # plus Postgres
//
// Prints a Markdown section for BENCHMARKS.md.
import { execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Engine } from '../src/engine/index.ts';
import { chainWorkflow, testRegistry } from '../src/engine/testing.ts';
import { createStore, type Store } from '../src/store/index.ts';

const CHAIN = 1000;
const CHAIN_REPEATS = 5;
const JOBS = 2500;
// Each job: created as validating_files, then queued, running, succeeded = 4 transitions.
const TRANSITIONS = JOBS * 4;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function engineOverhead(): Promise<{ perNodeMs: number; runsMs: number[] }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'nodeai-bench-'));
  const store = await createStore({ dataDir, databaseUrl: '' });
  try {
    const engine = new Engine({ store, registry: testRegistry() });
    await engine.run(chainWorkflow(100, 'warm-up'));
    const runsMs: number[] = [];
    for (let i = 0; i < CHAIN_REPEATS; i++) {
      const t0 = performance.now();
      const r = await engine.run(chainWorkflow(CHAIN));
      runsMs.push(performance.now() - t0);
      if (r.status !== 'succeeded') throw new Error(`chain run ended ${r.status}`);
    }
    engine.close();
    return { perNodeMs: median(runsMs) / CHAIN, runsMs };
  } finally {
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** One statement per transition, each its own commit, guarded by the previous status as a queue would. */
async function jobTransitions(store: Store): Promise<{ seconds: number; perSecond: number }> {
  const { db } = store;
  const t0 = performance.now();
  for (let i = 0; i < JOBS; i++) {
    const id = `ftjob-bench${i}`;
    const now = Date.now();
    await db
      .insertInto('jobs')
      .values({ id, provider: 'local', base_model: 'tiny', status: 'validating_files', training_file: 'file-x', hyperparameters_json: '{"n_epochs":"auto"}', run_after: now, created_at: now, updated_at: now })
      .execute();
    for (const [from, to] of [['validating_files', 'queued'], ['queued', 'running'], ['running', 'succeeded']] as const) {
      const res = await db.updateTable('jobs').set({ status: to, updated_at: Date.now() }).where('id', '=', id).where('status', '=', from).executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) throw new Error(`transition ${from} → ${to} of ${id} did not apply`);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, perSecond: TRANSITIONS / seconds };
}

async function pgSettings(url: string): Promise<Record<string, string>> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string; setting: string }>(`select name, setting from pg_settings where name in ('fsync', 'synchronous_commit')`);
    return Object.fromEntries(rows.map((r) => [r.name, r.setting]));
  } finally {
    await client.end();
  }
}

async function main() {
  const cpu = (() => {
    try {
      return execSync('lscpu', { encoding: 'utf8' }).match(/^Model name:\s*(.+)$/m)?.[1]?.trim();
    } catch {
      return undefined;
    }
  })() ?? cpus()[0]?.model ?? 'unknown CPU';
  const lines: string[] = [];
  const out = (s = '') => {
    lines.push(s);
  };

  const overhead = await engineOverhead();

  const dataDir = mkdtempSync(join(tmpdir(), 'nodeai-bench-'));
  const sqlite = await createStore({ dataDir, databaseUrl: '' });
  const sqliteJobs = await jobTransitions(sqlite);
  await sqlite.close();
  rmSync(dataDir, { recursive: true, force: true });

  const pgUrl = process.env.NODEAI_TEST_DATABASE_URL || process.env.DATABASE_URL;
  let pgJobs: { seconds: number; perSecond: number } | undefined;
  let pgVersion = '';
  if (pgUrl) {
    const schema = `nodeai_bench_${randomBytes(4).toString('hex')}`;
    const pgDir = mkdtempSync(join(tmpdir(), 'nodeai-bench-'));
    const pg = await createStore({ dataDir: pgDir, databaseUrl: pgUrl, pgSchema: schema });
    try {
      const { sql } = await import('kysely');
      pgVersion = (await sql<{ v: string }>`select current_setting('server_version') as v`.execute(pg.db)).rows[0].v;
      pgJobs = await jobTransitions(pg);
    } finally {
      await pg.db.schema.dropSchema(schema).ifExists().cascade().execute();
      await pg.close();
      rmSync(pgDir, { recursive: true, force: true });
    }
  }

  out(`Machine: ${cpu}, ${cpus().length} cores; Node ${process.version}; ${new Date().toISOString().slice(0, 10)}.`);
  out();
  out('| measure | SQLite (WAL, synchronous=NORMAL) | Postgres |');
  out('| --- | --- | --- |');
  out(`| engine overhead per node, ${CHAIN}-node pass-through chain (median of ${CHAIN_REPEATS} runs) | ${overhead.perNodeMs.toFixed(3)} ms (${(median(overhead.runsMs) / 1000).toFixed(2)} s per run) | — |`);
  const pgCell = pgJobs ? `${Math.round(pgJobs.perSecond).toLocaleString('en-US')}/s (${pgJobs.seconds.toFixed(2)} s)` : 'not run (no NODEAI_TEST_DATABASE_URL)';
  out(`| ${TRANSITIONS.toLocaleString('en-US')} job status transitions (${JOBS} inserts + ${JOBS * 3} guarded updates, one commit each) | ${Math.round(sqliteJobs.perSecond).toLocaleString('en-US')}/s (${sqliteJobs.seconds.toFixed(2)} s) | ${pgCell} |`);
  if (pgJobs) {
    const settings = await pgSettings(pgUrl!);
    out(`\nPostgres ${pgVersion} on the same machine over TCP (127.0.0.1), fsync=${settings.fsync}, synchronous_commit=${settings.synchronous_commit}.`);
  }
  console.log(lines.join('\n'));
}

await main();
