import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainWorkflow } from '../../engine/testing.ts';
import { JobQueue } from '../../jobs/index.ts';
import { openSse, startTestServer, type SseMessage, type TestServer } from '../testing.ts';

const ids = (ms: SseMessage[]) => ms.filter((m) => m.id !== undefined).map((m) => Number(m.id));
const data = (m: SseMessage) => JSON.parse(m.data);

describe('GET /api/v1/events (SSE)', () => {
  let t: TestServer;
  let queue: JobQueue;
  let jobId: string;
  beforeAll(async () => {
    t = await startTestServer();
    queue = new JobQueue(t.store);
    const file = await t.store.files.put(Readable(), { filename: 'train.jsonl' });
    jobId = (await queue.create({ model: 'nodeai-tiny', training_file: file.id })).id;
  });
  afterAll(() => t.close());

  function Readable() {
    return (async function* () {
      yield Buffer.from('{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n');
    })();
  }

  it('needs the token', async () => {
    const res = await fetch(t.url + '/api/v1/events');
    expect(res.status).toBe(401);
  });

  it('streams run and node events; a client that drops and reconnects with Last-Event-ID gets exactly what it missed', async () => {
    const first = await openSse(t.url + '/api/v1/events');
    await first.waitFor((m) => m.event === 'ready');
    const run1 = await t.engine.run(chainWorkflow(3, 'one'));
    await first.waitFor((m) => m.event === 'run.finished' && data(m).run_id === run1.runId);
    const seen = first.messages.filter((m) => m.event.startsWith('run.') || m.event.startsWith('node.'));
    expect(seen.map((m) => m.event)).toEqual(['run.started', 'node.started', 'node.succeeded', 'node.started', 'node.succeeded', 'node.started', 'node.succeeded', 'run.finished']);
    expect(data(seen[2])).toMatchObject({ run_id: run1.runId, node_id: 'n0', node_type: 'test_constant', outputs: { data: ['start'] } });
    const lastSeen = first.lastEventId!;
    first.drop();

    // Missed while disconnected: a whole run.
    const run2 = await t.engine.run(chainWorkflow(2, 'two'));
    const again = await openSse(t.url + '/api/v1/events', { lastEventId: lastSeen });
    await again.waitFor((m) => m.event === 'ready');
    const replayed = again.messages.filter((m) => m.event !== 'ready');
    expect(replayed.map((m) => m.event)).toEqual(['run.started', 'node.started', 'node.succeeded', 'node.started', 'node.succeeded', 'run.finished']);
    expect(replayed.every((m) => data(m).run_id === run2.runId)).toBe(true);
    const all = ids(replayed);
    expect(all[0]).toBeGreaterThan(Number(lastSeen));
    expect([...all].sort((a, b) => a - b)).toEqual(all);
    expect(new Set(all).size).toBe(all.length);

    // And it goes on live after the replay.
    const run3 = await t.engine.run(chainWorkflow(1, 'three'));
    await again.waitFor((m) => m.event === 'run.finished' && data(m).run_id === run3.runId);
    again.drop();
  });

  it('filters by run_id', async () => {
    const { runId, done } = await t.engine.startRun({ name: 'slowish', nodes: [{ id: 's', type: 'test_slow', config: { ms: 300 } }] });
    const client = await openSse(`${t.url}/api/v1/events?run_id=${runId}`);
    const other = await t.engine.run(chainWorkflow(2));
    await done;
    await client.waitFor((m) => m.event === 'run.finished');
    expect(client.messages.some((m) => m.data.includes(other.runId))).toBe(false);
    // Without Last-Event-ID the client first gets the run as it stands.
    expect(client.messages[0].event).toBe('run.snapshot');
    expect(data(client.messages[0])).toMatchObject({ run_id: runId, nodes: [{ node_id: 's' }] });
    client.drop();
  });

  it('streams job events and status from the store, and replays missed job events after a reconnect', async () => {
    const client = await openSse(`${t.url}/api/v1/events?job_id=${jobId}`);
    await client.waitFor((m) => m.event === 'ready');
    expect(client.messages.find((m) => m.event === 'job.snapshot')).toBeDefined();
    await queue.addEvent(jobId, { type: 'metrics', message: 'Step 1/4: training loss=2.50', data: { step: 1, train_loss: 2.5 } });
    const m1 = await client.waitFor((m) => m.event === 'job.metrics' && data(m).data?.step === 1);
    expect(data(m1)).toMatchObject({ job_id: jobId, object: 'fine_tuning.job.event', type: 'metrics' });
    const last = client.lastEventId!;
    client.drop();

    await queue.addEvent(jobId, { type: 'metrics', message: 'Step 2/4', data: { step: 2, train_loss: 2.1 } });
    await queue.addEvent(jobId, { type: 'metrics', message: 'Step 3/4', data: { step: 3, train_loss: 1.9 } });
    await t.store.db.updateTable('jobs').set({ status: 'running', updated_at: Date.now() }).where('id', '=', jobId).execute();
    // Let the hub read them while nobody is connected.
    await t.server.hub.pollJobs();
    const back = await openSse(`${t.url}/api/v1/events?job_id=${jobId}`, { lastEventId: last });
    await back.waitFor((m) => m.event === 'ready');
    const got = back.messages.filter((m) => m.event !== 'ready');
    expect(got.map((m) => [m.event, data(m).data?.step ?? data(m).status])).toEqual([
      ['job.metrics', 2],
      ['job.metrics', 3],
      ['job.status', 'running'],
    ]);
    back.drop();
  });

  it('falls back to a snapshot from the store when the ID is older than the ring (e.g. after a restart)', async () => {
    const client = await openSse(`${t.url}/api/v1/events?job_id=${jobId}`, { lastEventId: '12345' });
    await client.waitFor((m) => m.event === 'ready');
    const steps = client.messages.filter((m) => m.event === 'job.metrics').map((m) => data(m).data.step);
    expect(steps).toEqual([1, 2, 3]);
    expect(client.messages.filter((m) => m.event === 'job.event').length).toBeGreaterThanOrEqual(3);
    expect(data(client.messages.find((m) => m.event === 'job.snapshot')!)).toMatchObject({ job_id: jobId, status: 'running' });
    client.drop();
  });

  it("sends a waiting run's subscribers the progress of the job it waits on", async () => {
    const started = await t.engine.run({ name: 'waits', nodes: [{ id: 'w', type: 'test_wait', config: { job_id: jobId } }] });
    expect(started.status).toBe('waiting');
    const client = await openSse(`${t.url}/api/v1/events?run_id=${started.runId}`);
    await client.waitFor((m) => m.event === 'ready');
    await queue.addEvent(jobId, { type: 'metrics', message: 'Step 4/4', data: { step: 4, train_loss: 1.2 } });
    const got = await client.waitFor((m) => m.event === 'job.metrics');
    expect(JSON.parse(got.data)).toMatchObject({ job_id: jobId, data: { step: 4 } });
    client.drop();
  });

  it('rejects malformed filters', async () => {
    const res = await t.api('/api/v1/events?run_id=' + encodeURIComponent('../x'));
    expect(res.status).toBe(400);
    expect((await res.json()).error.param).toBe('run_id');
  });
});
