// A process that trains nothing (`nodeai serve --no-worker`) still takes back the jobs of holders
// that are gone, so that the worker processes sharing its database can resume them.
import { rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_RECLAIM_EVERY_MS } from '../jobs/index.ts';
import { tempDir, until } from '../store/testing.ts';
import { createRuntime, type Runtime } from './runtime.ts';

const TRAIN = JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }] }) + '\n';

describe('a runtime without a worker', () => {
  const dataDir = tempDir('nodeai-runtime-');
  let runtime: Runtime | undefined;
  afterAll(async () => {
    await runtime?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('takes back a job whose holder stopped renewing its lease, without training it', async () => {
    const reclaimed: string[] = [];
    runtime = await createRuntime({ dataDir, databaseUrl: '', worker: false, resumePollMs: 0, onReclaimed: (r) => reclaimed.push(...r.requeued) });
    expect(runtime.worker).toBeUndefined();
    const file = await runtime.store.files.put(Readable.from([TRAIN]), { filename: 'train.jsonl' });
    const job = await runtime.jobs.create({ model: 'nodeai-tiny', training_file: file.id });
    // Another worker (alive: the test runner's parent) claimed it, then went quiet for longer than its lease.
    await runtime.jobs.claim(`${hostname()}:${process.ppid}:quiet`, 50);
    await until(() => reclaimed.length > 0, { ms: DEFAULT_RECLAIM_EVERY_MS * 2, every: 100, what: 'the takeover' });
    expect(reclaimed).toEqual([job.id]);
    expect(await runtime.jobs.getRow(job.id)).toMatchObject({ status: 'queued', locked_by: null });
  });
});
