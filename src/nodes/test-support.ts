// A SQLite-only store for node tests that have no reason to run twice (pure error paths).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../engine/index.ts';
import { createStore } from '../store/index.ts';
import { tempDir, type TestDb } from '../store/testing.ts';
import { createNodeRegistry, createNodeServices, type NodeServices } from './index.ts';

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

/**
 * An engine with the built-in nodes over `t`, File Loader paths read from `<dataDir>/wf` (where
 * `files` are written), runs resumed when their job finishes.
 */
export function workflowTestEngine(t: TestDb, files: Record<string, string>): { services: NodeServices; engine: Engine; workflowDir: string } {
  const workflowDir = join(t.dataDir, 'wf');
  mkdirSync(workflowDir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(workflowDir, name), text);
  const services = createNodeServices(t.store, { workflowDir });
  const engine = new Engine({ store: t.store, registry: createNodeRegistry(), services: { nodeai: services } });
  services.jobs.onFinished((o) => void engine.resumeRunsForJob(o));
  return { services, engine, workflowDir };
}
