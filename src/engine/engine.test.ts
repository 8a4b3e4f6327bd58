import { afterEach, expect, it } from 'vitest';
import { REDACTED } from '../store/index.ts';
import { describeEachDialect, type TestDb } from '../store/testing.ts';
import { NodeExecutionError, RunCancelledError, RunNotFoundError, RunStateError, WorkflowValidationError } from './errors.ts';
import type { EngineEvent } from './events.ts';
import { Engine, type LogEntry } from './engine.ts';
import { chainWorkflow, testRegistry } from './testing.ts';

const trainFlow = (jobId: string, type = 'test_wait') => ({
  name: 'train-and-chat',
  nodes: [
    { id: 'load', type: 'test_constant', config: { value: ['ex1', 'ex2'] } },
    { id: 'tune', type, config: { job_id: jobId } },
    { id: 'chat', type: 'test_pass', config: { append: 'answered' } },
  ],
  edges: [
    { source: 'load', target: 'tune' },
    { source: 'tune', target: 'chat' },
  ],
});

describeEachDialect('engine', (dialect) => {
  let t: TestDb;
  const engines: Engine[] = [];
  const engine = (store = t.store, log?: (e: LogEntry) => void) => {
    const e = new Engine({ store, registry: testRegistry(), log, heartbeatMs: 50 });
    engines.push(e);
    return e;
  };
  afterEach(async () => {
    for (const e of engines.splice(0)) e.close();
    await t?.cleanup();
  });

  it('runs nodes in order, passes data along edges, and stores the run and every node result', async () => {
    t = await dialect.open();
    const e = engine();
    const events: EngineEvent[] = [];
    e.subscribe((ev) => events.push(ev));
    const result = await e.run({
      name: 'count',
      nodes: [
        { id: 'count', type: 'test_count', config: { times: 2 } },
        { id: 'src', type: 'test_constant', config: { value: [1, 2, 3] } },
        { id: 'tail', type: 'test_pass', config: {} },
      ],
      edges: [
        { source: 'src', target: 'count' },
        { source: 'count', target: 'tail', sourceHandle: 'count' },
      ],
    });
    expect(result.status).toBe('succeeded');
    expect(result.outputs).toEqual({ src: { data: [1, 2, 3] }, count: { data: [1, 2, 3], count: 6 }, tail: { data: 6 } });

    const run = await e.getRun(result.runId);
    expect(run).toMatchObject({ status: 'succeeded', workflowName: 'count', error: null, waiting: null });
    expect(run.finishedAt).toBeGreaterThanOrEqual(run.startedAt!);
    expect(run.nodes.map((n) => [n.nodeId, n.status, n.seq])).toEqual([
      ['src', 'succeeded', 0],
      ['count', 'succeeded', 1],
      ['tail', 'succeeded', 2],
    ]);
    expect(run.nodes[2].outputs).toEqual({ data: 6 });
    expect(run.nodes[1].durationMs).toBeGreaterThanOrEqual(0);
    expect(events.map((ev) => `${ev.type}${'nodeId' in ev ? ':' + ev.nodeId : ''}`)).toEqual([
      'run.started',
      'node.started:src',
      'node.succeeded:src',
      'node.started:count',
      'node.succeeded:count',
      'node.started:tail',
      'node.succeeded:tail',
      'run.finished',
    ]);
    expect((await e.listRuns()).map((r) => r.id)).toEqual([result.runId]);
  });

  it('refuses an invalid workflow before storing anything', async () => {
    t = await dialect.open();
    const e = engine();
    await expect(e.run({ name: 'x', nodes: [{ id: 'a', type: 'nope', config: {} }], edges: [] })).rejects.toBeInstanceOf(WorkflowValidationError);
    expect(await e.listRuns()).toEqual([]);
  });

  it('fails the run with the failing node\'s typed error and skips what comes after', async () => {
    t = await dialect.open();
    const e = engine();
    const result = await e.run({
      name: 'fails',
      nodes: [
        { id: 'src', type: 'test_constant', config: { value: 1 } },
        { id: 'bad', type: 'test_fail', config: { message: 'quota exceeded', code: 'rate_limited' } },
        { id: 'after', type: 'test_pass', config: {} },
      ],
      edges: [
        { source: 'src', target: 'bad' },
        { source: 'bad', target: 'after' },
      ],
    });
    expect(result.status).toBe('failed');
    expect(result.error).toBeInstanceOf(NodeExecutionError);
    expect(result.error).toMatchObject({ code: 'rate_limited', nodeId: 'bad', nodeType: 'test_fail' });
    expect(result.error!.message).toBe('Node "bad" (test_fail) failed: quota exceeded');
    const run = await e.getRun(result.runId);
    expect(run.status).toBe('failed');
    expect(run.error).toEqual({ code: 'rate_limited', message: result.error!.message, node_id: 'bad', node_type: 'test_fail' });
    expect(run.nodes.map((n) => n.status)).toEqual(['succeeded', 'failed', 'skipped']);
    expect(run.nodes[1].error?.code).toBe('rate_limited');
  });

  it('fails a node whose outputs cannot be stored, naming it', async () => {
    t = await dialect.open();
    const registry = testRegistry();
    const e = new Engine({ store: t.store, registry });
    engines.push(e);
    registry.register({ ...registry.get('test_constant')!, type: 'test_bigint', run: () => ({ data: 10n }) });
    const result = await e.run({ name: 'b', nodes: [{ id: 'big', type: 'test_bigint', config: { value: 0 } }], edges: [] });
    expect(result.error).toMatchObject({ code: 'node_output_invalid', nodeId: 'big' });
  });

  it('waits durably on a job and resumes from that node after a restart', async () => {
    t = await dialect.open();
    const first = engine();
    const waited = await first.run(trainFlow('ftjob-abc'));
    expect(waited).toMatchObject({ status: 'waiting', waiting: { nodeId: 'tune', kind: 'job', jobId: 'ftjob-abc' } });
    expect(waited.outputs).toEqual({ load: { data: ['ex1', 'ex2'] } });
    const parked = await first.getRun(waited.runId);
    expect(parked.nodes.map((n) => n.status)).toEqual(['succeeded', 'waiting', 'pending']);
    await t.store.close();

    // A new process: a new store over the same database, a new engine.
    const store2 = await t.reopen();
    const second = engine(store2);
    const asked: string[] = [];
    let done = false;
    const lookup = async (w: { jobId: string }) => {
      asked.push(w.jobId);
      return done ? { jobId: w.jobId, status: 'succeeded' as const, outputs: { fine_tuned_model: 'ft:tiny:support:1' } } : null;
    };
    expect(await second.resumeWaitingRuns(lookup)).toEqual([]);
    expect((await second.getRun(waited.runId)).status).toBe('waiting');
    done = true;
    const [resumed] = await second.resumeWaitingRuns(lookup);
    expect(asked).toEqual(['ftjob-abc', 'ftjob-abc']);
    expect(resumed.status).toBe('succeeded');
    expect(resumed.outputs.tune).toEqual({ data: ['ex1', 'ex2'], fine_tuned_model: 'ft:tiny:support:1' });
    expect(resumed.outputs.chat).toEqual({ data: ['ex1', 'ex2', 'answered'] });
    const run = await second.getRun(waited.runId);
    expect(run.status).toBe('succeeded');
    expect(run.nodes.map((n) => n.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(run.waiting).toBeNull();
    // Resuming twice is refused: the run is no longer waiting.
    await expect(second.resumeRun(waited.runId, { jobId: 'ftjob-abc', status: 'succeeded' })).rejects.toMatchObject({ code: 'run_not_waiting' });
  });

  it('keeps a key typed into a node setting out of the stored workflow, yet gives it back to the resumed node', async () => {
    t = await dialect.open();
    const key = 'sk-typed-into-the-node-9xyz';
    const flow = { name: 'keyed', nodes: [{ id: 'tune', type: 'test_wait_key', config: { job_id: 'ftjob-key', api_key: key } }], edges: [] };
    const waited = await engine().run(flow);
    expect(waited.status).toBe('waiting');
    const row = await t.store.db.selectFrom('runs').select('workflow_json').where('id', '=', waited.runId).executeTakeFirstOrThrow();
    expect(row.workflow_json).not.toContain(key);
    expect(JSON.stringify((await engine().getRun(waited.runId)).workflow)).not.toContain(key);
    await t.store.close();

    const store2 = await t.reopen();
    const [resumed] = await engine(store2).resumeWaitingRuns(async (w) => ({ jobId: w.jobId, status: 'succeeded' as const }));
    expect(resumed.outputs.tune).toEqual({ data: `key ${key.length} chars, ends xyz` });
    // The run-scoped copy in the vault goes once the run has ended.
    await expect.poll(async () => (await store2.secrets.list()).map((s) => s.name)).toEqual([]);
  });

  it('resumes by job ID with the job outputs as node outputs, and fails the run when the job failed', async () => {
    t = await dialect.open();
    const e = engine();
    const a = await e.run(trainFlow('ftjob-ok', 'test_wait_default'));
    const b = await e.run(trainFlow('ftjob-bad', 'test_wait_default'));
    await expect(e.resumeRun(a.runId, { jobId: 'ftjob-other', status: 'succeeded' })).rejects.toMatchObject({ code: 'run_waits_on_other_job' });
    const [ok] = await e.resumeRunsForJob({ jobId: 'ftjob-ok', status: 'succeeded', outputs: { data: ['trained'], fine_tuned_model: 'm1' } });
    expect(ok.outputs.chat).toEqual({ data: ['trained', 'answered'] });
    const bad = await e.resumeRun(b.runId, { jobId: 'ftjob-bad', status: 'failed', error: { code: 'training_diverged', message: 'loss became NaN at step 12' } });
    expect(bad.status).toBe('failed');
    expect(bad.error).toMatchObject({ code: 'training_diverged', nodeId: 'tune' });
    expect(bad.error!.message).toContain('loss became NaN at step 12');
    expect((await e.getRun(b.runId)).nodes.map((n) => n.status)).toEqual(['succeeded', 'failed', 'skipped']);
    await expect(e.resumeRun('run-missing', { jobId: 'x', status: 'succeeded' })).rejects.toBeInstanceOf(RunNotFoundError);
  });

  it('cancels a running run through its node\'s signal, and a waiting run in the database', async () => {
    t = await dialect.open();
    const e = engine();
    const progress: EngineEvent[] = [];
    const { runId, done } = await e.startRun({
      name: 'slow',
      nodes: [
        { id: 'src', type: 'test_constant', config: { value: 1 } },
        { id: 'slow', type: 'test_slow', config: {} },
        { id: 'after', type: 'test_pass', config: {} },
      ],
      edges: [
        { source: 'src', target: 'slow' },
        { source: 'slow', target: 'after' },
      ],
    });
    e.subscribe((ev) => progress.push(ev), { runId });
    await new Promise((r) => setTimeout(r, 50));
    const cancelled = await e.cancelRun(runId, 'user pressed stop');
    expect(cancelled.status).toBe('cancelled');
    expect(cancelled.error).toBeInstanceOf(RunCancelledError);
    expect((await done).status).toBe('cancelled');
    const run = await e.getRun(runId);
    expect(run.status).toBe('cancelled');
    expect(run.error?.message).toContain('user pressed stop');
    expect(run.nodes.map((n) => n.status)).toEqual(['succeeded', 'cancelled', 'skipped']);
    expect(progress.at(-1)).toMatchObject({ type: 'run.finished', status: 'cancelled' });
    await expect(e.cancelRun(runId)).rejects.toBeInstanceOf(RunStateError);

    const waiting = await e.run(trainFlow('ftjob-w'));
    const other = engine(await t.reopen());
    expect((await other.cancelRun(waiting.runId)).status).toBe('cancelled');
    expect((await e.getRun(waiting.runId)).nodes.map((n) => n.status)).toEqual(['succeeded', 'cancelled', 'skipped']);
    await expect(e.resumeRun(waiting.runId, { jobId: 'ftjob-w', status: 'succeeded' })).rejects.toMatchObject({ code: 'run_not_waiting' });
  });

  it('notices a cancel made by another process at its next heartbeat', async () => {
    t = await dialect.open();
    const e = engine();
    const { runId, done } = await e.startRun({ name: 's', nodes: [{ id: 'slow', type: 'test_slow', config: {} }], edges: [] });
    await new Promise((r) => setTimeout(r, 20));
    const other = engine(await t.reopen());
    await other.cancelRun(runId, 'stopped from the web UI');
    const result = await done;
    expect(result.status).toBe('cancelled');
    const run = await e.getRun(runId);
    expect(run.status).toBe('cancelled');
    expect(run.error?.message).toContain('stopped from the web UI');
    expect(run.nodes[0].status).toBe('cancelled');
  });

  it('fails runs left running by a dead process, and only those', async () => {
    t = await dialect.open();
    const e = engine();
    const { runId: live, done } = await e.startRun({ name: 'live', nodes: [{ id: 'slow', type: 'test_slow', config: { ms: 300 } }], edges: [] });
    const dead = await e.run(chainWorkflow(2, 'dead'));
    // Make `dead` look like it was running when its process died long ago.
    await t.store.db.updateTable('runs').set({ status: 'running', heartbeat_at: 1 }).where('id', '=', dead.runId).execute();
    await t.store.db.updateTable('node_results').set({ status: 'running' }).where('run_id', '=', dead.runId).where('node_id', '=', 'n1').execute();
    const restarted = engine(await t.reopen());
    expect(await restarted.recoverInterruptedRuns(10_000)).toEqual([dead.runId]);
    const run = await restarted.getRun(dead.runId);
    expect(run.status).toBe('failed');
    expect(run.error?.code).toBe('run_interrupted');
    expect(run.nodes[1].status).toBe('failed');
    expect((await done).status).toBe('succeeded');
    expect((await e.getRun(live)).status).toBe('succeeded');
  });

  it('keeps a secret out of logs, events, errors, run results and the stored workflow', async () => {
    t = await dialect.open();
    const SECRET = 'sk-live-9a8b7c6d5e4f3a2b1c0d';
    await t.store.secrets.set('API_KEY', SECRET);
    const restarted = await t.reopen(); // a process that has not seen the value yet
    const logs: LogEntry[] = [];
    const e = engine(restarted, (l) => logs.push(l));
    const events: EngineEvent[] = [];
    e.subscribe((ev) => events.push(ev));
    const ok = await e.run({ name: 'leaky', nodes: [{ id: 's', type: 'test_secret', config: { secret: 'API_KEY', mode: 'output' } }], edges: [] });
    expect(ok.outputs.s).toEqual({ data: { header: `Bearer ${REDACTED}` } });
    const thrown = await e.run({ name: 'leaky', nodes: [{ id: 's', type: 'test_secret', config: { secret: 'API_KEY', mode: 'throw' } }], edges: [] });
    expect(thrown.status).toBe('failed');
    expect(thrown.error!.message).toContain(REDACTED);
    // The value, pasted into a config by mistake, is masked in the stored workflow too.
    const pasted = await e.run({ name: 'pasted', nodes: [{ id: 'c', type: 'test_constant', config: { value: SECRET } }], edges: [] });

    const everything = JSON.stringify([
      logs,
      events,
      ok,
      thrown.error!.message,
      thrown.error!.stack,
      await e.getRun(ok.runId),
      await e.getRun(thrown.runId),
      await e.getRun(pasted.runId),
      await restarted.db.selectFrom('runs').selectAll().execute(),
      await restarted.db.selectFrom('node_results').selectAll().execute(),
    ]);
    expect(everything).not.toContain(SECRET);
    expect(logs[0].message).toBe(`calling API with key ${REDACTED}`);
    expect(everything).toContain(REDACTED);
  });

  it('runs a 1,000-node chain', async () => {
    t = await dialect.open();
    const e = engine();
    const result = await e.run(chainWorkflow(1000));
    expect(result.status).toBe('succeeded');
    expect(result.outputs.n999).toEqual({ data: ['start'] });
    const counts = await t.store.db.selectFrom('node_results').select((eb) => eb.fn.countAll<number>().as('n')).where('run_id', '=', result.runId).where('status', '=', 'succeeded').executeTakeFirstOrThrow();
    expect(Number(counts.n)).toBe(1000);
  });
});
