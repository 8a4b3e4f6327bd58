import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type MigrationResultSet } from 'kysely';
import pg from 'pg';
import { MigrationError, StoreError } from './errors.ts';
import { migrations } from './migrations/index.ts';
import type { Database } from './schema.ts';

export type DialectName = 'sqlite' | 'postgres';

export interface DatabaseOptions {
  /** Directory of `nodeai.db` when no URL is given. */
  dataDir: string;
  /** `postgres://…`: use Postgres instead of the SQLite file. */
  databaseUrl?: string;
  /**
   * Postgres schema to create (if absent) and use for every table, including Kysely's migration
   * tables. Lets several NodeAI instances or test suites share one database without clashing.
   */
  pgSchema?: string;
}

export interface OpenedDatabase {
  db: Kysely<Database>;
  dialect: DialectName;
  /** Where the data lives, for messages: the SQLite path, or the Postgres URL without password. */
  location: string;
}

export const SQLITE_FILENAME = 'nodeai.db';
const PG_INT8_OID = 20;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export async function openDatabase(options: DatabaseOptions): Promise<OpenedDatabase> {
  const opened = options.databaseUrl ? await openPostgres(options.databaseUrl, options.pgSchema) : openSqlite(options.dataDir);
  try {
    await migrateToLatest(opened.db, opened.dialect === 'postgres' ? options.pgSchema : undefined);
  } catch (err) {
    await opened.db.destroy();
    throw err;
  }
  return opened;
}

function openSqlite(dataDir: string): OpenedDatabase {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, SQLITE_FILENAME);
  let sqlite: BetterSqlite3.Database;
  try {
    sqlite = new BetterSqlite3(path);
  } catch (err) {
    throw new StoreError('database_open_failed', `Cannot open the SQLite database ${path}: ${(err as Error).message}. Check NODEAI_DATA_DIR and its permissions.`, { cause: err });
  }
  // WAL lets readers (CLI, server) run while a worker writes; NORMAL sync is durable across
  // process crashes in WAL mode, which is the failure this store must survive.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('foreign_keys = ON');
  // Another process (a second CLI, a worker) may hold the write lock briefly.
  sqlite.pragma('busy_timeout = 5000');
  return { db: new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) }), dialect: 'sqlite', location: path };
}

async function openPostgres(url: string, schema: string | undefined): Promise<OpenedDatabase> {
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    throw new StoreError('invalid_pg_schema', `Postgres schema name ${JSON.stringify(schema)} is invalid: use lower-case letters, digits and "_" (at most 63), starting with a letter or "_".`);
  }
  const location = redactUrl(url);
  if (schema) {
    const client = new pg.Client({ connectionString: url });
    try {
      await client.connect();
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    } catch (err) {
      throw new StoreError('database_open_failed', `Cannot connect to Postgres at ${location}: ${(err as Error).message}. Check DATABASE_URL and that the server is running.`, { cause: err });
    } finally {
      await client.end().catch(() => {});
    }
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: 10,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
    // bigint columns hold epoch-ms times and byte counts, all far below 2^53: read them as
    // numbers, as SQLite does, instead of pg's default strings.
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === PG_INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
  });
  // An idle client's network error must not crash the process; the next query reports it.
  pool.on('error', () => {});
  try {
    const client = await pool.connect();
    client.release();
  } catch (err) {
    await pool.end().catch(() => {});
    throw new StoreError('database_open_failed', `Cannot connect to Postgres at ${location}: ${(err as Error).message}. Check DATABASE_URL and that the server is running.`, { cause: err });
  }
  return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), dialect: 'postgres', location };
}

/**
 * With a Postgres schema, Kysely's own bookkeeping tables must be pinned to it too: its
 * "does the table exist" check looks across all schemas and would find another instance's.
 */
export async function migrateToLatest(db: Kysely<any>, pgSchema?: string): Promise<MigrationResultSet> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations }, ...(pgSchema ? { migrationTableSchema: pgSchema } : {}) });
  const result = await migrator.migrateToLatest();
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error')?.migrationName;
    throw new MigrationError(failed, result.error);
  }
  return result;
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable DATABASE_URL)';
  }
}
