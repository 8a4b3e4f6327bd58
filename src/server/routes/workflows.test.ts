import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chainWorkflow } from '../../engine/testing.ts';
import { until } from '../../store/testing.ts';
import { startTestServer, type TestServer } from '../testing.ts';

describe('/api/v1 workflows and runs', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.close());

  it('creates, reads, lists, updates and deletes a workflow, keeping canvas keys', async () => {
    const wf = { ...chainWorkflow(3, 'first'), viewport: { x: 1, y: 2, zoom: 1 } };
    const created = await (await t.api('/api/v1/workflows', { method: 'POST', json: wf })).json();
    expect(created).toMatchObject({ object: 'workflow', name: 'first', definition: { viewport: { zoom: 1 } } });
    expect(created.id).toMatch(/^wf-/);
    expect(await (await t.api(`/api/v1/workflows/${created.id}`)).json()).toEqual(created);
    const updated = await (await t.api(`/api/v1/workflows/${created.id}`, { method: 'PUT', json: chainWorkflow(2, 'renamed') })).json();
    expect(updated).toMatchObject({ id: created.id, name: 'renamed' });
    const listed = await (await t.api('/api/v1/workflows')).json();
    expect(listed.data.map((w: { id: string }) => w.id)).toContain(created.id);
    expect((await t.api(`/api/v1/workflows/${created.id}`, { method: 'DELETE' })).status).toBe(200);
    const gone = await t.api(`/api/v1/workflows/${created.id}`);
    expect(gone.status).toBe(404);
    expect((await gone.json()).error.code).toBe('workflow_not_found');
  });

  it('keeps a key typed into a node setting out of the saved workflow, yet runs with it', async () => {
    const key = 'sk-typed-into-a-saved-workflow-abc';
    const flow = { name: 'keyed', nodes: [{ id: 'tune', type: 'test_wait_key', config: { job_id: 'ftjob-saved', api_key: key } }], edges: [] };
    const res = await t.api('/api/v1/workflows', { method: 'POST', json: flow });
    const text = await res.text();
    expect(res.status).toBe(201);
    expect(text).not.toContain(key);
    const created = JSON.parse(text);
    expect(created.definition.nodes[0].config.api_key).toMatch(/^\$secret:wf\./);
    const row = await t.store.db.selectFrom('workflows').select('definition_json').where('id', '=', created.id).executeTakeFirstOrThrow();
    expect(row.definition_json).not.toContain(key);
    // Saving it back unchanged (as a canvas would) keeps the reference working.
    await t.api(`/api/v1/workflows/${created.id}`, { method: 'PUT', json: created.definition });

    const run = await (await t.api(`/api/v1/workflows/${created.id}/run`, { method: 'POST' })).json();
    await until(() => t.engine.getRun(run.id), { ok: (r) => r.status === 'waiting' });
    const resumed = await t.engine.resumeRun(run.id, { jobId: 'ftjob-saved', status: 'succeeded' });
    expect(resumed.outputs.tune).toEqual({ data: `key ${key.length} chars, ends abc` });
    expect(JSON.stringify(await t.engine.getRun(run.id))).not.toContain(key);

    expect((await t.api(`/api/v1/workflows/${created.id}`, { method: 'DELETE' })).status).toBe(200);
    await until(() => t.store.secrets.list(), { ok: (l) => !l.some((s) => s.name.startsWith(`wf.${created.id}.`) || s.name.startsWith(`run.${run.id}.`)) });
    expect((await t.store.secrets.list()).map((s) => s.name).filter((n) => n.includes(created.id) || n.includes(run.id))).toEqual([]);
  });

  it('rejects a workflow without a name, naming the field', async () => {
    const res = await t.api('/api/v1/workflows', { method: 'POST', json: { nodes: [] } });
    expect(res.status).toBe(400);
    expect((await res.json()).error.param).toBe('name');
  });

  it('validates a workflow and names the node at fault', async () => {
    const bad = { name: 'bad', nodes: [{ id: 'a', type: 'no_such_type', config: {} }], edges: [] };
    const created = await (await t.api('/api/v1/workflows', { method: 'POST', json: bad })).json();
    const result = await (await t.api(`/api/v1/workflows/${created.id}/validate`, { method: 'POST' })).json();
    expect(result.valid).toBe(false);
    expect(result.issues[0]).toMatchObject({ code: 'unknown_node_type', node_id: 'a' });
    const run = await t.api(`/api/v1/workflows/${created.id}/run`, { method: 'POST' });
    expect(run.status).toBe(400);
    expect((await run.json()).error).toMatchObject({ code: 'workflow_invalid' });
    const cfg = await (await t.api('/api/v1/workflows/validate', { method: 'POST', json: { workflow: { name: 'x', nodes: [{ id: 'c', type: 'test_count', config: { times: 99 } }] } } })).json();
    expect(cfg.issues.map((i: { code: string }) => i.code)).toContain('invalid_config');
  });

  it('runs a saved workflow and shows the run and its node results', async () => {
    const created = await (await t.api('/api/v1/workflows', { method: 'POST', json: chainWorkflow(3) })).json();
    const started = await t.api(`/api/v1/workflows/${created.id}/run`, { method: 'POST' });
    expect(started.status).toBe(202);
    const { id } = await started.json();
    const run = await until(
      async () => (await t.api(`/api/v1/runs/${id}`)).json(),
      { ok: (r) => r.status === 'succeeded' },
    );
    expect(run).toMatchObject({ id, status: 'succeeded', workflow_id: created.id });
    const nodes = await (await t.api(`/api/v1/runs/${id}/nodes`)).json();
    expect(nodes.data.map((n: { node_id: string; status: string }) => [n.node_id, n.status])).toEqual([
      ['n0', 'succeeded'],
      ['n1', 'succeeded'],
      ['n2', 'succeeded'],
    ]);
    expect(nodes.data[2].outputs).toEqual({ data: ['start'] });
    const runs = await (await t.api(`/api/v1/runs?workflow_id=${created.id}`)).json();
    expect(runs.data.map((r: { id: string }) => r.id)).toEqual([id]);
  });

  it('cancels a running run, and refuses to cancel it twice', async () => {
    const res = await t.api('/api/v1/runs', { method: 'POST', json: { workflow: { name: 'slow', nodes: [{ id: 's', type: 'test_slow', config: { ms: 30_000 } }] } } });
    const { id } = await res.json();
    await until(async () => (await t.api(`/api/v1/runs/${id}`)).json(), { ok: (r) => r.nodes[0].status === 'running' });
    const cancelled = await (await t.api(`/api/v1/runs/${id}/cancel`, { method: 'POST' })).json();
    expect(cancelled.status).toBe('cancelled');
    const again = await t.api(`/api/v1/runs/${id}/cancel`, { method: 'POST' });
    expect(again.status).toBe(409);
    expect((await t.api('/api/v1/runs/run-nope')).status).toBe(404);
    expect((await t.api('/api/v1/runs?status=bogus')).status).toBe(400);
  });
});

describe('/api/v1/secrets', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t.close());

  it('sets, lists names only, and deletes; the value never comes back', async () => {
    const value = 'sk-very-secret-value-123456';
    const set = await t.api('/api/v1/secrets', { method: 'POST', json: { name: 'OPENAI_API_KEY', value } });
    expect(set.status).toBe(201);
    const setText = await set.text();
    expect(setText).not.toContain(value);
    const put = await t.api('/api/v1/secrets/OPENAI_API_KEY', { method: 'PUT', json: { value: value + 'x' } });
    expect(await put.text()).not.toContain(value);
    const listText = await (await t.api('/api/v1/secrets')).text();
    expect(listText).not.toContain(value);
    expect(JSON.parse(listText).data).toEqual([expect.objectContaining({ name: 'OPENAI_API_KEY', object: 'secret' })]);
    expect(await t.store.secrets.get('OPENAI_API_KEY')).toBe(value + 'x');
    expect((await t.api('/api/v1/secrets/OPENAI_API_KEY', { method: 'DELETE' })).status).toBe(200);
    expect((await t.api('/api/v1/secrets/OPENAI_API_KEY', { method: 'DELETE' })).status).toBe(404);
    const badName = await t.api('/api/v1/secrets', { method: 'POST', json: { name: '1 bad', value } });
    expect(badName.status).toBe(400);
    const badBody = await badName.json();
    expect(badBody.error.param).toBe('name');
    expect(JSON.stringify(badBody)).not.toContain(value);
  });

  it('keeps a secret out of run results', async () => {
    await t.store.secrets.set('TOKEN', 'tok-abcdef-987654');
    const { id } = await (await t.api('/api/v1/runs', { method: 'POST', json: { workflow: { name: 's', nodes: [{ id: 'x', type: 'test_secret', config: { secret: 'TOKEN', mode: 'output' } }] } } })).json();
    const text = await until(
      async () => (await t.api(`/api/v1/runs/${id}`)).text(),
      { ok: (s) => s.includes('"succeeded"') },
    );
    expect(text).not.toContain('tok-abcdef-987654');
  });
});
