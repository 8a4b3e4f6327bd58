// Test support shared by the store's and the engine's tests: real SQLite files in temp dirs,
// and real Postgres when NODEAI_TEST_DATABASE_URL is set — one throw-away database per test,
// not a schema: Kysely's introspection reads every schema of a database and fails when another
// test drops its schema at that moment.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe } from 'vitest';
import { createStore, type Store, type StoreOptions } from './store.ts';

export const TEST_PG_URL = process.env.NODEAI_TEST_DATABASE_URL || undefined;

export interface TestDb {
  store: Store;
  dataDir: string;
  /** The Postgres URL of this test's own database. */
  databaseUrl?: string;
  /** A second, independent store over the same data: what a restarted process would open. */
  reopen(extra?: Partial<StoreOptions>): Promise<Store>;
  cleanup(): Promise<void>;
}

export interface TestDialect {
  name: 'sqlite' | 'postgres';
  open(extra?: Partial<StoreOptions>): Promise<TestDb>;
}

export function tempDir(prefix = 'nodeai-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface UntilOptions<T> {
  /** Whether the value read is the one awaited; default: it is truthy. */
  ok?: (value: T) => boolean;
  /** Give up after this many milliseconds (default 5000) with an error naming `what`. */
  ms?: number;
  every?: number;
  what?: string;
}

/**
 * Reads `read` until `ok` accepts its value, and returns that value: for tests of effects that
 * land asynchronously (another process, a queue, a background cleanup) rather than a fixed wait.
 */
export async function until<T>(read: () => T | Promise<T>, options: UntilOptions<T> = {}): Promise<T> {
  const { ok = Boolean, ms = 5_000, every = 25, what = 'the condition' } = options;
  const end = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

async function admin(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

/** One database kind for tests that need that one (multi-process tests on Postgres); most use describeEachDialect. */
export function testDialect(name: 'sqlite' | 'postgres'): TestDialect {
  return {
    name,
    async open(extra = {}) {
      const dataDir = tempDir();
      const pgDatabase = name === 'postgres' ? `nodeai_t_${randomBytes(6).toString('hex')}` : undefined;
      let databaseUrl: string | undefined;
      if (pgDatabase) {
        await admin(`CREATE DATABASE "${pgDatabase}"`);
        const url = new URL(TEST_PG_URL!);
        url.pathname = `/${pgDatabase}`;
        databaseUrl = url.toString();
      }
      // databaseUrl '' keeps a developer's DATABASE_URL from turning SQLite tests into Postgres ones.
      const base: StoreOptions = { dataDir, databaseUrl: databaseUrl ?? '' };
      const opened: Store[] = [];
      const open = async (more: Partial<StoreOptions> = {}) => {
        const s = await createStore({ ...base, ...extra, ...more });
        opened.push(s);
        return s;
      };
      const store = await open();
      return {
        store,
        dataDir,
        databaseUrl,
        reopen: open,
        async cleanup() {
          for (const s of opened) await s.close();
          if (pgDatabase) await admin(`DROP DATABASE IF EXISTS "${pgDatabase}" WITH (FORCE)`);
          rmSync(dataDir, { recursive: true, force: true });
        },
      };
    },
  };
}

/**
 * Declares `body` once per database: SQLite always, Postgres when NODEAI_TEST_DATABASE_URL is
 * set (CI sets it). Locally without it, the Postgres block shows up as skipped with the reason.
 */
export function describeEachDialect(title: string, body: (dialect: TestDialect) => void): void {
  describe(`${title} [sqlite]`, () => body(testDialect('sqlite')));
  const pgTitle = TEST_PG_URL ? `${title} [postgres]` : `${title} [postgres] — skipped: NODEAI_TEST_DATABASE_URL is not set (.ci/postgres.sh sets it)`;
  describe.skipIf(!TEST_PG_URL)(pgTitle, () => body(testDialect('postgres')));
}
