import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Kysely } from 'kysely';
import { openDatabase, type DialectName } from './database.ts';
import { InvalidInputError } from './errors.ts';
import { FileStore, type FileStoreOptions } from './file-store.ts';
import { makeDataDirPrivate, privateDirNotice } from './private-data-dir.ts';
import { Redactor } from './redact.ts';
import type { Database } from './schema.ts';
import { loadSecretKey, SecretsVault, type SecretKey } from './secrets-vault.ts';

export interface StoreOptions {
  /** Default: `NODEAI_DATA_DIR`, else `~/.nodeai`. Holds the SQLite file, uploads and the key file. */
  dataDir?: string;
  /**
   * Default: `DATABASE_URL`. When set, Postgres holds the tables (uploads stay in dataDir);
   * `''` forces SQLite whatever the environment says.
   */
  databaseUrl?: string;
  /** Postgres schema to use (created if absent); default: the connection's search_path. */
  pgSchema?: string;
  /** Vault key(s); default: `NODEAI_SECRET_KEY`, else the key file in dataDir. First one encrypts. */
  secretKeys?: SecretKey[];
  /** Upload limit in bytes; default `NODEAI_MAX_FILE_BYTES`, else 512 MiB. */
  maxFileBytes?: number;
  /** Fault-injection seam for the file store. */
  openWriteStream?: FileStoreOptions['openWriteStream'];
  /** Where a one-line notice goes (the data directory made private); default stderr. */
  onNotice?: (line: string) => void;
}

export interface Store {
  db: Kysely<Database>;
  dialect: DialectName;
  dataDir: string;
  /** SQLite path or Postgres URL (password masked), for messages. */
  location: string;
  files: FileStore;
  secrets: SecretsVault;
  /** Masks every secret this process has seen; shared by the vault and all its users. */
  redactor: Redactor;
  close(): Promise<void>;
}

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.NODEAI_DATA_DIR && env.NODEAI_DATA_DIR.trim() !== '' ? env.NODEAI_DATA_DIR : join(homedir(), '.nodeai'));
}

/** Opens the database, brings its schema to the latest migration, and wires files and secrets. */
export async function createStore(options: StoreOptions = {}): Promise<Store> {
  const dataDir = options.dataDir ? resolve(options.dataDir) : defaultDataDir();
  const databaseUrl = (options.databaseUrl !== undefined ? options.databaseUrl : process.env.DATABASE_URL) || undefined;
  const maxFileBytes = options.maxFileBytes ?? parseLimit(process.env.NODEAI_MAX_FILE_BYTES);
  const tightened = makeDataDirPrivate(dataDir);
  if (tightened.length) (options.onNotice ?? ((line) => process.stderr.write(`nodeai: ${line}\n`)))(privateDirNotice(dataDir, tightened));
  // The key is checked before the database is touched so a bad key fails fast and cleanly.
  const keys = options.secretKeys ?? [loadSecretKey(dataDir)];
  const opened = await openDatabase({ dataDir, databaseUrl, pgSchema: options.pgSchema });
  const redactor = new Redactor();
  redactor.hidePath(dataDir);
  const files = new FileStore(opened.db, { dir: join(dataDir, 'files'), maxBytes: maxFileBytes, openWriteStream: options.openWriteStream });
  await files.sweepPartials();
  let closed = false;
  return {
    db: opened.db,
    dialect: opened.dialect,
    dataDir,
    location: opened.location,
    files,
    secrets: new SecretsVault(opened.db, keys, redactor),
    redactor,
    async close() {
      if (closed) return;
      closed = true;
      await opened.db.destroy();
    },
  };
}

function parseLimit(text: string | undefined): number | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) {
    throw new InvalidInputError('NODEAI_MAX_FILE_BYTES', `NODEAI_MAX_FILE_BYTES must be a positive whole number of bytes, got ${JSON.stringify(text)}.`);
  }
  return n;
}
