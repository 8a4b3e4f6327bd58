// A SQLite-only store for node tests that have no reason to run twice (pure error paths).
import { rmSync } from 'node:fs';
import { createStore } from '../store/index.ts';
import { tempDir, type TestDb } from '../store/testing.ts';

export async function makeSqlite(): Promise<TestDb> {
  const dataDir = tempDir();
  const store = await createStore({ dataDir, databaseUrl: '' });
  return {
    store,
    dataDir,
    reopen: () => createStore({ dataDir, databaseUrl: '' }),
    async cleanup() {
      await store.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
