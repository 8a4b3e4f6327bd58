import { Hono } from 'hono';
import { z } from 'zod';
import { WorkflowSchema, type Engine, type NodeRecord, type RunRecord, type RunSummary } from '../../engine/index.ts';
import { idPrefix, newId, type RunStatus } from '../../store/index.ts';
import { badRequest, notFound } from '../errors.ts';
import { list, queryInt, readJson } from '../http.ts';
import { WorkflowRepo } from '../workflow-repo.ts';

// The engine speaks camelCase inside TypeScript; the API speaks snake_case like OpenAI's.
export const toApiRunSummary = (r: RunSummary) => ({
  id: r.id,
  object: 'run' as const,
  workflow_id: r.workflowId,
  workflow_name: r.workflowName,
  status: r.status,
  waiting: r.waiting ? { node_id: r.waiting.nodeId, kind: r.waiting.kind, job_id: r.waiting.jobId } : null,
  error: r.error,
  created_at: r.createdAt,
  started_at: r.startedAt,
  finished_at: r.finishedAt,
  updated_at: r.updatedAt,
});

export const toApiNode = (n: NodeRecord) => ({
  node_id: n.nodeId,
  node_type: n.nodeType,
  status: n.status,
  seq: n.seq,
  outputs: n.outputs,
  error: n.error,
  started_at: n.startedAt,
  finished_at: n.finishedAt,
  duration_ms: n.durationMs,
});

export const toApiRun = (r: RunRecord) => ({ ...toApiRunSummary(r), workflow: r.workflow, nodes: r.nodes.map(toApiNode) });

const RUN_STATUSES = ['queued', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'] as const;
const RunBody = z.union([z.object({ workflow_id: z.string().min(1) }).strict(), z.object({ workflow: z.unknown() }).strict()]);
const ValidateBody = z.object({ workflow: z.unknown() });

function issuesBody(result: ReturnType<Engine['validate']>) {
  return { valid: result.ok, issues: result.issues.map((i) => ({ code: i.code, message: i.message, node_id: i.nodeId ?? null, node_ids: i.nodeIds ?? null, path: i.path ?? null })) };
}

async function start(engine: Engine, workflow: unknown, workflowId?: string) {
  const runId = newId(idPrefix.run);
  const { done } = await engine.startRun(workflow, { runId, workflowId });
  // The run's outcome is stored and streamed; nobody awaits the promise itself.
  done.catch(() => undefined);
  return { id: runId, object: 'run' as const, status: 'running' as const, workflow_id: workflowId ?? null };
}

export function workflowRoutes(engine: Engine): Hono {
  const repo = new WorkflowRepo(engine.store.db);
  const app = new Hono();
  const get = async (id: string) => {
    const wf = await repo.get(id);
    if (!wf) throw notFound('workflow', id, 'List the workflows to find its ID.');
    return wf;
  };
  app.get('/', async (c) => c.json(list(await repo.list({ limit: queryInt(c, 'limit', 100, 1, 1000) }))));
  // Drafts are stored as long as they have the workflow's shape; node-level checks are what
  // `validate` and `run` do, so a half-drawn canvas can still be saved.
  // Keys typed into node settings go to the vault; the stored workflow keeps only references.
  app.post('/', async (c) => {
    const id = newId(idPrefix.workflow);
    return c.json(await repo.create(await engine.sealSecrets(`wf.${id}`, await readJson(c, WorkflowSchema)), id), 201);
  });
  app.post('/validate', async (c) => c.json(issuesBody(engine.validate((await readJson(c, ValidateBody)).workflow))));
  app.get('/:id', async (c) => c.json(await get(c.req.param('id'))));
  app.put('/:id', async (c) => {
    const body = await readJson(c, WorkflowSchema);
    if (!(await repo.get(c.req.param('id')))) throw notFound('workflow', c.req.param('id'));
    const wf = await repo.update(c.req.param('id'), await engine.sealSecrets(`wf.${c.req.param('id')}`, body));
    if (!wf) throw notFound('workflow', c.req.param('id'));
    return c.json(wf);
  });
  app.delete('/:id', async (c) => {
    if (!(await repo.delete(c.req.param('id')))) throw notFound('workflow', c.req.param('id'));
    await engine.dropSecrets(`wf.${c.req.param('id')}`);
    return c.json({ id: c.req.param('id'), object: 'workflow', deleted: true });
  });
  app.post('/:id/validate', async (c) => c.json(issuesBody(engine.validate((await get(c.req.param('id'))).definition))));
  app.post('/:id/run', async (c) => {
    const wf = await get(c.req.param('id'));
    return c.json(await start(engine, wf.definition, wf.id), 202);
  });
  return app;
}

export function runRoutes(engine: Engine): Hono {
  const app = new Hono();
  app.get('/', async (c) => {
    const status = c.req.query('status');
    if (status !== undefined && !RUN_STATUSES.includes(status as RunStatus)) throw badRequest('invalid_request', `Unknown run status ${JSON.stringify(status.slice(0, 40))}; use one of ${RUN_STATUSES.join(', ')}.`, 'status');
    const runs = await engine.listRuns({ status: status as RunStatus | undefined, workflowId: c.req.query('workflow_id'), limit: queryInt(c, 'limit', 100, 1, 1000) });
    return c.json(list(runs.map(toApiRunSummary)));
  });
  app.post('/', async (c) => {
    const body = await readJson(c, RunBody);
    if ('workflow_id' in body) {
      const wf = await new WorkflowRepo(engine.store.db).get(body.workflow_id);
      if (!wf) throw notFound('workflow', body.workflow_id);
      return c.json(await start(engine, wf.definition, wf.id), 202);
    }
    return c.json(await start(engine, body.workflow), 202);
  });
  app.get('/:id', async (c) => c.json(toApiRun(await engine.getRun(c.req.param('id')))));
  app.get('/:id/nodes', async (c) => c.json(list((await engine.getRun(c.req.param('id'))).nodes.map(toApiNode))));
  app.post('/:id/cancel', async (c) => {
    const id = c.req.param('id');
    await engine.cancelRun(id);
    return c.json(toApiRun(await engine.getRun(id)));
  });
  return app;
}
