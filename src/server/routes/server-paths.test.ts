// Error messages and job events name IDs and files, not where the server keeps its data.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobQueue, JobWorker } from '../../jobs/index.ts';
import { until } from '../../store/testing.ts';
import { startTestServer, type TestServer } from '../testing.ts';

const example = (i: number) => ({ messages: [{ role: 'user', content: `What is ${i}+1?` }, { role: 'assistant', content: `${i + 1}.` }] });
const JSONL = Array.from({ length: 12 }, (_, i) => JSON.stringify(example(i))).join('\n') + '\n';

describe('server paths', () => {
  let t: TestServer;
  let worker: JobWorker;
  beforeAll(async () => {
    t = await startTestServer({ wire: (store) => ({ jobs: new JobQueue(store) }) });
    worker = new JobWorker(t.server.jobs!, { pollMs: 20, threads: 1 });
  });
  afterAll(async () => {
    await worker?.stop();
    await t?.close();
  });

  async function upload(): Promise<string> {
    const fd = new FormData();
    fd.set('file', new Blob([JSONL]), 'math.jsonl');
    return (await (await t.api('/api/v1/files', { method: 'POST', body: fd })).json()).id;
  }

  it('a file whose data is gone: the error names its ID, not its path', async () => {
    const id = await upload();
    rmSync(join(t.dataDir, 'files', id));
    const res = await t.api(`/api/v1/files/${id}/content`);
    const text = await res.text();
    expect(JSON.parse(text).error.code).toBe('file_body_missing');
    expect(text).toContain(id);
    expect(text).not.toContain(t.dataDir);
  });

  it("a job that fails on a missing file: its error and events show no absolute path", async () => {
    const id = await upload();
    const job = await (await t.api('/v1/fine_tuning/jobs', { method: 'POST', json: { model: 'nodeai-tiny', training_file: id, hyperparameters: { n_epochs: 1 } } })).json();
    // The data is lost after the job was accepted, before it trains.
    rmSync(join(t.dataDir, 'files', id));
    worker.start();
    const failed = await until(async () => {
      const j = await (await t.api(`/v1/fine_tuning/jobs/${job.id}`)).json();
      return j.status === 'failed' ? j : undefined;
    }, { ms: 60_000 });
    const events = await (await t.api(`/v1/fine_tuning/jobs/${job.id}/events?limit=100`)).text();
    expect(failed.error.message.length).toBeGreaterThan(0);
    expect(JSON.stringify(failed)).not.toContain(t.dataDir);
    expect(events).not.toContain(t.dataDir);
  });
});
