import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Kysely, Transaction } from 'kysely';
import { VAULT_REF, vaultRefName } from '../providers/key-binding.ts';
import { describeError, idPrefix, newId, type Database, type NodeResultStatus, type RunRow, type RunStatus, type Store } from '../store/index.ts';
import { EngineError, NodeExecutionError, RunCancelledError, RunNotFoundError, RunStateError } from './errors.ts';
import { EngineEvents, type EngineEvent, type EngineListener, type ErrorInfo } from './events.ts';
import {
  isWaitResult,
  type AnyNodeDefinition,
  type EngineServices,
  type JobOutcome,
  type NodeContext,
  type NodeLogger,
  type NodeOutputs,
  type NodeResult,
  type WaitRequest,
} from './node.ts';
import type { NodeRegistry } from './registry.ts';
import { assertValidWorkflow, validateWorkflow, type ExecutionPlan, type PlannedNode, type ValidationResult, type Workflow } from './workflow.ts';

/** Marks a config value that lives in the vault for the duration of a run. */
const SECRET_REF = VAULT_REF;
/** The vault names sealSecrets gives the keys typed into a workflow's or a run's nodes. */
const SEALED_NAME = /^(?:wf|run)\.[^.]+\.n\d+-[0-9a-f]{8}\.[\w-]+$/;
export interface LogEntry {
  runId: string;
  nodeId: string;
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  data?: Record<string, unknown>;
}

export interface EngineOptions {
  store: Store;
  registry: NodeRegistry;
  /** Handed to every node as `ctx.services` (job queue, providers, model registry). */
  services?: EngineServices;
  /** Receives node logs (already redacted) besides the `node.log` events. */
  log?: (entry: LogEntry) => void;
  /** Identifies this process in `runs.owner`; default a random ID. */
  instanceId?: string;
  /** How often a running run's heartbeat is written, and external cancels are noticed. */
  heartbeatMs?: number;
}

export interface StartRunOptions {
  /** Pre-chosen run ID (e.g. returned to an HTTP client before the run starts). */
  runId?: string;
  /** The saved workflow this run came from, if any. */
  workflowId?: string;
}

export interface WaitingOn {
  nodeId: string;
  kind: 'job';
  jobId: string;
}

export interface RunResult {
  runId: string;
  status: RunStatus;
  /** Outputs of every node that succeeded, by node ID. */
  outputs: Record<string, NodeOutputs>;
  /** Why the run failed or was cancelled. */
  error?: EngineError;
  waiting?: WaitingOn;
}

export interface NodeRecord {
  nodeId: string;
  nodeType: string;
  status: NodeResultStatus;
  seq: number;
  outputs: NodeOutputs | null;
  error: ErrorInfo | null;
  startedAt: number | null;
  finishedAt: number | null;
  durationMs: number | null;
}

export interface RunSummary {
  id: string;
  workflowId: string | null;
  workflowName: string;
  status: RunStatus;
  waiting: WaitingOn | null;
  error: ErrorInfo | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  updatedAt: number;
}

export interface RunRecord extends RunSummary {
  workflow: Workflow;
  nodes: NodeRecord[];
}

/** Looks up how an awaited job stands; `null` while it has not ended. */
export type JobStateLookup = (wait: WaitingOn & { runId: string }) => Promise<JobOutcome | null | undefined>;

interface ActiveRun {
  controller: AbortController;
  reason?: string;
  done?: Promise<RunResult>;
}

interface ResumePoint {
  nodeId: string;
  wait: WaitRequest;
  job: JobOutcome;
}

const NODE_ROW_CHUNK = 200;

/**
 * Runs workflows: validates them, executes nodes in topological order, stores every run and
 * node result, parks a run durably when a node waits on a job and resumes it later — in this
 * process or in the next one.
 */
export class Engine {
  readonly store: Store;
  readonly registry: NodeRegistry;
  readonly instanceId: string;
  private readonly db: Kysely<Database>;
  private readonly services: EngineServices;
  private readonly logSink?: (entry: LogEntry) => void;
  private readonly events = new EngineEvents();
  private readonly active = new Map<string, ActiveRun>();
  private readonly heartbeatMs: number;
  private heartbeat?: NodeJS.Timeout;

  constructor(options: EngineOptions) {
    this.store = options.store;
    this.db = options.store.db;
    this.registry = options.registry;
    this.services = options.services ?? {};
    this.logSink = options.log;
    this.instanceId = options.instanceId ?? newId('engine');
    this.heartbeatMs = options.heartbeatMs ?? 5_000;
  }

  subscribe(listener: EngineListener, filter: { runId?: string } = {}): () => void {
    return this.events.subscribe(listener, filter);
  }

  validate(workflow: unknown): ValidationResult {
    return validateWorkflow(workflow, this.registry);
  }

  /** Runs a workflow to its end, or until it waits on a job. Throws only if it is invalid. */
  async run(workflow: unknown, options: StartRunOptions = {}): Promise<RunResult> {
    return (await this.startRun(workflow, options)).done;
  }

  /**
   * Validates (throws WorkflowValidationError), records the run, and starts it; resolves as soon
   * as the run is recorded, with `done` for its result.
   */
  async startRun(workflow: unknown, options: StartRunOptions = {}): Promise<{ runId: string; done: Promise<RunResult> }> {
    // A saved workflow may hold vault references for keys typed into it: resolve them to run it.
    const plan = assertValidWorkflow(await this.unsealSecrets(workflow, options.workflowId ? `wf.${options.workflowId}` : undefined), this.registry);
    const runId = options.runId ?? newId(idPrefix.run);
    const snapshot = await this.sealSecrets(`run.${runId}`, plan.workflow);
    const now = Date.now();
    await this.db.transaction().execute(async (trx) => {
      await trx
        .insertInto('runs')
        .values({
          id: runId,
          workflow_id: options.workflowId ?? null,
          workflow_name: plan.workflow.name,
          workflow_json: JSON.stringify(this.store.redactor.redactValue(snapshot)),
          status: 'running',
          waiting_node_id: null,
          waiting_json: null,
          waiting_job_id: null,
          error_json: null,
          owner: this.instanceId,
          heartbeat_at: now,
          created_at: now,
          started_at: now,
          finished_at: null,
          updated_at: now,
        })
        .execute();
      for (let i = 0; i < plan.order.length; i += NODE_ROW_CHUNK) {
        const chunk = plan.order.slice(i, i + NODE_ROW_CHUNK).map((n, j) => ({
          run_id: runId,
          node_id: n.id,
          node_type: n.type,
          status: 'pending' as const,
          seq: i + j,
          outputs_json: null,
          error_json: null,
          wait_state_json: null,
          started_at: null,
          finished_at: null,
          duration_ms: null,
        }));
        await trx.insertInto('node_results').values(chunk).execute();
      }
    });
    const active = this.track(runId);
    this.emit({ type: 'run.started', runId, at: now, workflowName: plan.workflow.name, nodeCount: plan.order.length });
    active.done = this.execute(runId, plan, new Map(), active);
    return { runId, done: active.done };
  }

  /** Continues a waiting run after its job ended, from the node that waited. */
  async resumeRun(runId: string, job: JobOutcome): Promise<RunResult> {
    const row = await this.getRunRow(runId);
    if (row.status !== 'waiting') {
      throw new RunStateError('run_not_waiting', `Run ${runId} is ${row.status}, not waiting on a job; only a waiting run can be resumed.`);
    }
    const waiting = JSON.parse(row.waiting_json ?? 'null') as Omit<WaitRequest, 'state'> | null;
    if (!waiting || waiting.jobId !== job.jobId) {
      throw new RunStateError('run_waits_on_other_job', `Run ${runId} waits on job ${waiting?.jobId ?? '(none)'}, not on ${job.jobId}; resume it with that job's result.`);
    }
    const now = Date.now();
    // The conditional update is the claim: of two processes resuming the same run, one wins.
    const claimed = await this.db
      .updateTable('runs')
      .set({ status: 'running', owner: this.instanceId, heartbeat_at: now, updated_at: now })
      .where('id', '=', runId)
      .where('status', '=', 'waiting')
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) === 0) {
      throw new RunStateError('run_not_waiting', `Run ${runId} was resumed or cancelled by another process a moment ago.`);
    }
    const active = this.track(runId);
    active.done = this.continueRun(row, job, active);
    return active.done;
  }

  /** Resumes every run waiting on `outcome.jobId` — what the job queue calls when a job ends. */
  async resumeRunsForJob(outcome: JobOutcome): Promise<RunResult[]> {
    const rows = await this.db.selectFrom('runs').select('id').where('status', '=', 'waiting').where('waiting_job_id', '=', outcome.jobId).execute();
    const results: RunResult[] = [];
    for (const { id } of rows) {
      try {
        results.push(await this.resumeRun(id, outcome));
      } catch (err) {
        if (!(err instanceof RunStateError)) throw err;
      }
    }
    return results;
  }

  /**
   * The start-up scan: asks `getJobState` about each waiting run's job and resumes those whose
   * job has ended. Runs whose job is still going stay waiting.
   */
  async resumeWaitingRuns(getJobState: JobStateLookup): Promise<RunResult[]> {
    const rows = await this.db.selectFrom('runs').selectAll().where('status', '=', 'waiting').orderBy('created_at').execute();
    const results: RunResult[] = [];
    for (const row of rows) {
      const waiting = toWaitingOn(row);
      if (!waiting) continue;
      const outcome = await getJobState({ ...waiting, runId: row.id });
      if (!outcome) continue;
      try {
        results.push(await this.resumeRun(row.id, { ...outcome, jobId: waiting.jobId }));
      } catch (err) {
        if (!(err instanceof RunStateError)) throw err;
      }
    }
    return results;
  }

  /**
   * Cancels a run: a run executing here is aborted (its node's signal fires); a waiting run, or
   * one another process executes, is marked cancelled in the database — that process notices at
   * its next heartbeat. Resolves with the run's final state.
   */
  async cancelRun(runId: string, reason = 'cancelled by user'): Promise<RunResult> {
    const local = this.active.get(runId);
    if (local?.done) {
      local.reason = reason;
      local.controller.abort(new RunCancelledError(runId, reason));
      return local.done;
    }
    const row = await this.getRunRow(runId);
    if (row.status === 'succeeded' || row.status === 'failed' || row.status === 'cancelled') {
      throw new RunStateError('run_finished', `Run ${runId} already ${row.status}; there is nothing to cancel.`);
    }
    const error = new RunCancelledError(runId, reason, row.waiting_node_id ?? undefined);
    const changed = await this.db.transaction().execute(async (trx) => {
      const res = await trx
        .updateTable('runs')
        .set({ status: 'cancelled', error_json: JSON.stringify(errorInfo(error)), owner: null, finished_at: Date.now(), updated_at: Date.now() })
        .where('id', '=', runId)
        .where('status', '=', row.status)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return false;
      await trx.updateTable('node_results').set({ status: 'cancelled', finished_at: Date.now() }).where('run_id', '=', runId).where('status', 'in', ['running', 'waiting']).execute();
      await trx.updateTable('node_results').set({ status: 'skipped' }).where('run_id', '=', runId).where('status', '=', 'pending').execute();
      return true;
    });
    if (!changed) return this.cancelRun(runId, reason);
    this.emit({ type: 'run.finished', runId, at: Date.now(), status: 'cancelled', error: errorInfo(error) });
    return { runId, status: 'cancelled', outputs: await this.succeededOutputs(runId), error };
  }

  /**
   * Fails runs left `running` by a process that died: nobody has written their heartbeat for
   * `staleAfterMs`. Their nodes cannot be trusted to run twice, so the run fails and says so.
   */
  async recoverInterruptedRuns(staleAfterMs = Math.max(60_000, this.heartbeatMs * 3)): Promise<string[]> {
    const cutoff = Date.now() - staleAfterMs;
    const rows = await this.db
      .selectFrom('runs')
      .select(['id', 'heartbeat_at'])
      .where('status', '=', 'running')
      .where((eb) => eb.or([eb('heartbeat_at', 'is', null), eb('heartbeat_at', '<', cutoff)]))
      .execute();
    const recovered: string[] = [];
    for (const row of rows) {
      if (this.active.has(row.id)) continue;
      const error = new EngineError('run_interrupted', `Run ${row.id} stopped because the process running it ended; run the workflow again.`);
      const info = errorInfo(error);
      const done = await this.db.transaction().execute(async (trx) => {
        const res = await trx
          .updateTable('runs')
          .set({ status: 'failed', error_json: JSON.stringify(info), owner: null, finished_at: Date.now(), updated_at: Date.now() })
          .where('id', '=', row.id)
          .where('status', '=', 'running')
          .where((eb) => (row.heartbeat_at === null ? eb('heartbeat_at', 'is', null) : eb('heartbeat_at', '=', row.heartbeat_at)))
          .executeTakeFirst();
        if (Number(res.numUpdatedRows) === 0) return false;
        await trx.updateTable('node_results').set({ status: 'failed', error_json: JSON.stringify(info), finished_at: Date.now() }).where('run_id', '=', row.id).where('status', '=', 'running').execute();
        await trx.updateTable('node_results').set({ status: 'skipped' }).where('run_id', '=', row.id).where('status', '=', 'pending').execute();
        return true;
      });
      if (done) {
        recovered.push(row.id);
        this.emit({ type: 'run.finished', runId: row.id, at: Date.now(), status: 'failed', error: info });
      }
    }
    return recovered;
  }

  async getRun(runId: string): Promise<RunRecord> {
    const row = await this.getRunRow(runId);
    const nodes = await this.db.selectFrom('node_results').selectAll().where('run_id', '=', runId).orderBy('seq').execute();
    return {
      ...toSummary(row),
      workflow: JSON.parse(row.workflow_json) as Workflow,
      nodes: nodes.map((n) => ({
        nodeId: n.node_id,
        nodeType: n.node_type,
        status: n.status,
        seq: n.seq,
        outputs: n.outputs_json === null ? null : (JSON.parse(n.outputs_json) as NodeOutputs),
        error: n.error_json === null ? null : (JSON.parse(n.error_json) as ErrorInfo),
        startedAt: n.started_at,
        finishedAt: n.finished_at,
        durationMs: n.duration_ms,
      })),
    };
  }

  /** Newest first. */
  async listRuns(options: { status?: RunStatus; workflowId?: string; limit?: number } = {}): Promise<RunSummary[]> {
    let q = this.db.selectFrom('runs').selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(options.limit ?? 50);
    if (options.status) q = q.where('status', '=', options.status);
    if (options.workflowId) q = q.where('workflow_id', '=', options.workflowId);
    return (await q.execute()).map(toSummary);
  }

  /** Stops the heartbeat timer. Runs still executing here keep going until they end. */
  close(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  // ---- secrets typed into node settings -------------------------------------------------------

  /**
   * Moves each secret config value (see NodeDefinition.secretConfig) into the vault under a name
   * that starts with `prefix.` and returns a copy of the workflow that holds only
   * `$secret:<name>`, so a stored workflow or run snapshot never contains the key while a run
   * (even one resumed after a restart) still gets it.
   */
  async sealSecrets(prefix: string, workflow: Workflow): Promise<Workflow> {
    const nodes = await Promise.all(
      workflow.nodes.map(async (node, index) => {
        const fields = this.registry.get(node.type)?.secretConfig ?? [];
        const config = { ...(node.config as Record<string, unknown>) };
        let changed = false;
        for (const field of fields) {
          const value = config[field];
          if (typeof value !== 'string' || value.trim() === '' || value.startsWith(SECRET_REF)) continue;
          // A random part, not the node's position: reordered nodes must not swap keys.
          const name = `${prefix}.n${index}-${randomBytes(4).toString('hex')}.${field}`;
          await this.store.secrets.set(name, value);
          this.store.redactor.add(value);
          config[field] = SECRET_REF + name;
          changed = true;
        }
        return changed ? { ...node, config } : node;
      }),
    );
    return { ...workflow, nodes };
  }

  /**
   * Resolves the `$secret:` references sealSecrets made under `owner` (this saved workflow's or
   * this run's prefix), in the fields that hold keys. Any other reference stays as it is: one in a
   * key field picks a stored key, which the node's provider sends only where that key may go
   * (providers/key-binding.ts), and one elsewhere is plain text — otherwise a workflow could name
   * a vault key, or a key typed into another workflow, beside a base_url of its own, or in a
   * prompt, and so read it. Anything that is not a workflow passes through.
   */
  async unsealSecrets<W>(workflow: W, owner: string | undefined): Promise<W> {
    const rawNodes = (workflow as { nodes?: unknown } | null)?.nodes;
    if (!Array.isArray(rawNodes)) return workflow;
    const nodes = await Promise.all(
      rawNodes.map(async (node: { type?: unknown; config?: unknown }) => {
        if (typeof node?.config !== 'object' || node.config === null) return node;
        const fields = (typeof node.type === 'string' && this.registry.get(node.type)?.secretConfig) || [];
        const config = { ...(node.config as Record<string, unknown>) };
        for (const field of fields) {
          const name = vaultRefName(typeof config[field] === 'string' ? config[field] : undefined);
          if (name !== undefined && owner !== undefined && name.startsWith(`${owner}.`) && SEALED_NAME.test(name)) config[field] = await this.store.secrets.get(name).catch(() => undefined);
        }
        return { ...node, config };
      }),
    );
    return { ...workflow, nodes };
  }

  /** Deletes the vault entries that sealSecrets made under `prefix`. */
  async dropSecrets(prefix: string): Promise<void> {
    for (const s of await this.store.secrets.list()) if (s.name.startsWith(`${prefix}.`)) await this.store.secrets.delete(s.name);
  }

  // ---- execution ------------------------------------------------------------------------------

  private async continueRun(row: RunRow, job: JobOutcome, active: ActiveRun): Promise<RunResult> {
    const runId = row.id;
    try {
      const validation = validateWorkflow(await this.unsealSecrets(JSON.parse(row.workflow_json) as Workflow, `run.${runId}`), this.registry);
      if (!validation.ok) {
        // E.g. a node type that existed when the run started is gone after an upgrade.
        const error = new EngineError('workflow_invalid', `Run ${runId} cannot resume: ${validation.issues.map((i) => i.message).join(' ')}`);
        await this.finishRun(runId, 'failed', error, this.db);
        this.untrack(runId);
        this.emit({ type: 'run.finished', runId, at: Date.now(), status: 'failed', error: errorInfo(error) });
        return { runId, status: 'failed', outputs: await this.succeededOutputs(runId), error };
      }
      const nodes = await this.db.selectFrom('node_results').selectAll().where('run_id', '=', runId).execute();
      const outputs = new Map<string, NodeOutputs>();
      let waitState: unknown;
      for (const n of nodes) {
        if (n.status === 'succeeded') outputs.set(n.node_id, JSON.parse(n.outputs_json ?? '{}') as NodeOutputs);
        if (n.node_id === row.waiting_node_id) waitState = n.wait_state_json === null ? undefined : JSON.parse(n.wait_state_json);
      }
      const waiting = JSON.parse(row.waiting_json!) as Omit<WaitRequest, 'state'>;
      this.emit({ type: 'run.resumed', runId, at: Date.now(), workflowName: row.workflow_name, nodeId: row.waiting_node_id! });
      return await this.execute(runId, validation.plan, outputs, active, {
        nodeId: row.waiting_node_id!,
        wait: { ...waiting, ...(waitState !== undefined ? { state: waitState } : {}) },
        job,
      });
    } catch (err) {
      this.untrack(runId);
      throw err;
    }
  }

  private async execute(runId: string, plan: ExecutionPlan, outputs: Map<string, NodeOutputs>, active: ActiveRun, resume?: ResumePoint): Promise<RunResult> {
    const { signal } = active.controller;
    let current: PlannedNode | undefined;
    try {
      for (const node of plan.order) {
        if (outputs.has(node.id)) continue;
        current = node;
        if (signal.aborted) return await this.finishCancelled(runId, undefined, active, outputs);
        const def = this.registry.get(node.type)!;
        const resuming = resume?.nodeId === node.id;
        const startedAt = Date.now();
        const t0 = performance.now();
        await this.db
          .updateTable('node_results')
          .set(resuming ? { status: 'running' } : { status: 'running', started_at: startedAt })
          .where('run_id', '=', runId)
          .where('node_id', '=', node.id)
          .execute();
        if (!resuming) this.emit({ type: 'node.started', runId, at: startedAt, nodeId: node.id, nodeType: node.type });

        let result: NodeResult;
        try {
          const ctx = this.context(runId, node, this.gatherInputs(node, def, outputs), signal);
          const call = resuming ? this.callResume(def, ctx, resume!) : def.run(ctx);
          result = await untilAborted(Promise.resolve(call), signal);
        } catch (err) {
          if (signal.aborted) return await this.finishCancelled(runId, node, active, outputs);
          return await this.finishFailed(runId, node, this.nodeError(err, node), performance.now() - t0, outputs);
        }
        if (signal.aborted) return await this.finishCancelled(runId, node, active, outputs);
        if (isWaitResult(result)) return await this.finishWaiting(runId, node, result.wait, outputs);

        let stored: string;
        try {
          stored = this.serializeOutputs(result, node);
        } catch (err) {
          return await this.finishFailed(runId, node, err as NodeExecutionError, performance.now() - t0, outputs);
        }
        const durationMs = performance.now() - t0;
        await this.db
          .updateTable('node_results')
          .set({ status: 'succeeded', outputs_json: stored, finished_at: Date.now(), duration_ms: durationMs })
          .where('run_id', '=', runId)
          .where('node_id', '=', node.id)
          .execute();
        const parsed = JSON.parse(stored) as NodeOutputs;
        outputs.set(node.id, parsed);
        this.emit({ type: 'node.succeeded', runId, at: Date.now(), nodeId: node.id, nodeType: node.type, durationMs, outputs: parsed });
      }
      current = undefined;
      const finished = await this.finishRun(runId, 'succeeded', undefined, this.db);
      // Not updated: cancelled from elsewhere while the last node ran.
      if (!finished) return await this.finishCancelled(runId, undefined, active, outputs);
      return { runId, status: 'succeeded', outputs: Object.fromEntries(outputs) };
    } catch (err) {
      // The engine itself failed (database gone, …): record it if the database still answers.
      const error = new EngineError('engine_error', `Run ${runId} stopped on an internal error${current ? ` at node "${current.id}"` : ''}: ${this.store.redactor.formatError(err)}`);
      await this.finishRun(runId, 'failed', error, this.db).catch(() => {});
      this.emit({ type: 'run.finished', runId, at: Date.now(), status: 'failed', error: errorInfo(error) });
      return { runId, status: 'failed', outputs: Object.fromEntries(outputs), error };
    } finally {
      this.untrack(runId);
    }
  }

  private gatherInputs(node: PlannedNode, def: AnyNodeDefinition, outputs: Map<string, NodeOutputs>): Record<string, unknown> {
    const inputs: Record<string, unknown> = {};
    for (const port of def.inputs) if (port.multiple) inputs[port.name] = [];
    for (const edge of node.incoming) {
      const port = def.inputs.find((p) => p.name === edge.targetHandle)!;
      const value = outputs.get(edge.source)?.[edge.sourceHandle];
      if (value === undefined) {
        if (port.required) {
          throw new NodeExecutionError(
            'missing_input',
            `Node "${node.id}" (${node.type}) needs input "${edge.targetHandle}" from node "${edge.source}", which produced no output "${edge.sourceHandle}". Check that node's outputs or the edge's sourceHandle.`,
            node.id,
            node.type,
          );
        }
        continue;
      }
      if (port.multiple) (inputs[port.name] as unknown[]).push(value);
      else inputs[port.name] = value;
    }
    return inputs;
  }

  private context(runId: string, node: PlannedNode, inputs: Record<string, unknown>, signal: AbortSignal): NodeContext {
    const { redactor } = this.store;
    const log =
      (level: 'debug' | 'info' | 'warn' | 'error') =>
      (message: string, data?: Record<string, unknown>) => {
        const entry: LogEntry = { runId, nodeId: node.id, level, message: redactor.redact(message), ...(data ? { data: redactor.redactValue(data) } : {}) };
        this.logSink?.(entry);
        this.emit({ type: 'node.log', at: Date.now(), nodeType: node.type, ...entry });
      };
    const logger: NodeLogger = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
    return {
      config: node.config,
      inputs,
      node: { id: node.id, type: node.type },
      runId,
      store: this.store,
      services: this.services,
      secrets: { get: (name: string) => this.store.secrets.get(name), lookupKey: this.store.secrets.lookupKey },
      logger,
      signal,
      emit: (progress) => this.emit({ type: 'node.progress', runId, at: Date.now(), nodeId: node.id, nodeType: node.type, progress: redactor.redactValue(progress) }),
    };
  }

  private callResume(def: AnyNodeDefinition, ctx: NodeContext, point: ResumePoint): Promise<NodeResult> | NodeResult {
    if (def.resume) return def.resume({ ...ctx, wait: point.wait, job: point.job });
    if (point.job.status === 'succeeded') return point.job.outputs ?? {};
    throw new NodeExecutionError(
      point.job.error?.code ?? (point.job.status === 'cancelled' ? 'job_cancelled' : 'job_failed'),
      `Job ${point.job.jobId} ${point.job.status}: ${point.job.error?.message ?? 'no reason given'}.`,
      ctx.node.id,
      ctx.node.type,
    );
  }

  private nodeError(err: unknown, node: PlannedNode): NodeExecutionError {
    const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'node_failed';
    const detail = this.store.redactor.redact(err instanceof NodeExecutionError ? err.message : describeMessage(err));
    // No `cause`: the original error may carry a secret in fields this redaction cannot see.
    return new NodeExecutionError(code, `Node "${node.id}" (${node.type}) failed: ${detail}`, node.id, node.type);
  }

  private serializeOutputs(result: NodeResult, node: PlannedNode): string {
    const value = result === undefined || result === null ? {} : result;
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw new NodeExecutionError('node_output_invalid', `Node "${node.id}" (${node.type}) returned ${Array.isArray(value) ? 'an array' : typeof value}; a node must return an object of named outputs, e.g. { data }.`, node.id, node.type);
    }
    try {
      return JSON.stringify(this.store.redactor.redactValue(value));
    } catch (err) {
      throw new NodeExecutionError('node_output_invalid', `Node "${node.id}" (${node.type}) returned outputs that cannot be stored as JSON: ${(err as Error).message}.`, node.id, node.type);
    }
  }

  private async finishFailed(runId: string, node: PlannedNode, error: NodeExecutionError, durationMs: number, outputs: Map<string, NodeOutputs>): Promise<RunResult> {
    const info = errorInfo(error);
    await this.db.transaction().execute(async (trx) => {
      await trx
        .updateTable('node_results')
        .set({ status: 'failed', error_json: JSON.stringify(info), finished_at: Date.now(), duration_ms: durationMs })
        .where('run_id', '=', runId)
        .where('node_id', '=', node.id)
        .execute();
      await this.finishRun(runId, 'failed', error, trx);
    });
    this.emit({ type: 'node.failed', runId, at: Date.now(), nodeId: node.id, nodeType: node.type, durationMs, error: info });
    this.emit({ type: 'run.finished', runId, at: Date.now(), status: 'failed', error: info });
    return { runId, status: 'failed', outputs: Object.fromEntries(outputs), error };
  }

  private async finishWaiting(runId: string, node: PlannedNode, wait: WaitRequest, outputs: Map<string, NodeOutputs>): Promise<RunResult> {
    const { redactor } = this.store;
    const waitingOn = { kind: wait.kind, jobId: wait.jobId };
    const parked = await this.db.transaction().execute(async (trx) => {
      const res = await trx
        .updateTable('runs')
        .set({ status: 'waiting', waiting_node_id: node.id, waiting_json: JSON.stringify(waitingOn), waiting_job_id: wait.jobId, owner: null, heartbeat_at: null, updated_at: Date.now() })
        .where('id', '=', runId)
        .where('status', '=', 'running')
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return false;
      await trx
        .updateTable('node_results')
        .set({ status: 'waiting', wait_state_json: wait.state === undefined ? null : JSON.stringify(redactor.redactValue(wait.state)) })
        .where('run_id', '=', runId)
        .where('node_id', '=', node.id)
        .execute();
      return true;
    });
    if (!parked) return this.finishCancelled(runId, node, this.active.get(runId) ?? { controller: new AbortController() }, outputs);
    this.emit({ type: 'node.waiting', runId, at: Date.now(), nodeId: node.id, nodeType: node.type, wait: waitingOn });
    this.emit({ type: 'run.waiting', runId, at: Date.now(), nodeId: node.id, wait: waitingOn });
    return { runId, status: 'waiting', outputs: Object.fromEntries(outputs), waiting: { nodeId: node.id, ...waitingOn } };
  }

  private async finishCancelled(runId: string, node: PlannedNode | undefined, active: ActiveRun, outputs: Map<string, NodeOutputs>): Promise<RunResult> {
    const row = await this.db.selectFrom('runs').select(['status', 'error_json']).where('id', '=', runId).executeTakeFirst();
    const error = new RunCancelledError(runId, active.reason ?? 'cancelled from another process', node?.id);
    await this.db.transaction().execute(async (trx) => {
      if (node) {
        await trx.updateTable('node_results').set({ status: 'cancelled', finished_at: Date.now() }).where('run_id', '=', runId).where('node_id', '=', node.id).execute();
      }
      await trx.updateTable('node_results').set({ status: 'cancelled', finished_at: Date.now() }).where('run_id', '=', runId).where('status', 'in', ['running', 'waiting']).execute();
      if (row?.status === 'cancelled') {
        await trx.updateTable('node_results').set({ status: 'skipped' }).where('run_id', '=', runId).where('status', '=', 'pending').execute();
      } else {
        await this.finishRun(runId, 'cancelled', error, trx);
      }
    });
    const info = row?.status === 'cancelled' && row.error_json ? (JSON.parse(row.error_json) as ErrorInfo) : errorInfo(error);
    if (node) this.emit({ type: 'node.cancelled', runId, at: Date.now(), nodeId: node.id, nodeType: node.type });
    this.emit({ type: 'run.finished', runId, at: Date.now(), status: 'cancelled', error: info });
    return { runId, status: 'cancelled', outputs: Object.fromEntries(outputs), error };
  }

  /** Moves a running run to its end state; false when it was no longer running (cancelled). */
  private async finishRun(runId: string, status: 'succeeded' | 'failed' | 'cancelled', error: EngineError | undefined, db: Kysely<Database> | Transaction<Database>): Promise<boolean> {
    const now = Date.now();
    const res = await db
      .updateTable('runs')
      .set({ status, error_json: error ? JSON.stringify(errorInfo(error)) : null, owner: null, finished_at: now, updated_at: now })
      .where('id', '=', runId)
      .where('status', '=', 'running')
      .executeTakeFirst();
    if (status !== 'succeeded') {
      await db.updateTable('node_results').set({ status: 'skipped' }).where('run_id', '=', runId).where('status', '=', 'pending').execute();
    }
    const updated = Number(res.numUpdatedRows) > 0;
    // Not awaited: `db` may be a transaction that holds SQLite's only connection.
    if (updated) void this.dropSecrets(`run.${runId}`).catch(() => undefined);
    if (updated && status === 'succeeded') this.emit({ type: 'run.finished', runId, at: now, status });
    return updated;
  }

  // ---- bookkeeping ----------------------------------------------------------------------------

  private track(runId: string): ActiveRun {
    const active: ActiveRun = { controller: new AbortController() };
    this.active.set(runId, active);
    if (!this.heartbeat) {
      this.heartbeat = setInterval(() => void this.beat().catch(() => {}), this.heartbeatMs);
      this.heartbeat.unref();
    }
    return active;
  }

  private untrack(runId: string): void {
    this.active.delete(runId);
    if (this.active.size === 0) this.close();
  }

  /** Tells other processes these runs are alive, and notices runs cancelled elsewhere. */
  private async beat(): Promise<void> {
    const ids = [...this.active.keys()];
    if (ids.length === 0) return;
    await this.db.updateTable('runs').set({ heartbeat_at: Date.now() }).where('id', 'in', ids).where('status', '=', 'running').execute();
    const cancelled = await this.db.selectFrom('runs').select('id').where('id', 'in', ids).where('status', '=', 'cancelled').execute();
    for (const { id } of cancelled) this.active.get(id)?.controller.abort();
  }

  private async getRunRow(runId: string): Promise<RunRow> {
    const row = typeof runId === 'string' ? await this.db.selectFrom('runs').selectAll().where('id', '=', runId).executeTakeFirst() : undefined;
    if (!row) throw new RunNotFoundError(String(runId));
    return row;
  }

  private async succeededOutputs(runId: string): Promise<Record<string, NodeOutputs>> {
    const rows = await this.db.selectFrom('node_results').select(['node_id', 'outputs_json']).where('run_id', '=', runId).where('status', '=', 'succeeded').execute();
    return Object.fromEntries(rows.map((r) => [r.node_id, JSON.parse(r.outputs_json ?? '{}') as NodeOutputs]));
  }

  private emit(event: EngineEvent): void {
    this.events.emit(event);
  }
}

function errorInfo(error: EngineError): ErrorInfo {
  return {
    code: error.code,
    message: error.message,
    ...(error instanceof NodeExecutionError ? { node_id: error.nodeId, node_type: error.nodeType } : {}),
    ...(error instanceof RunCancelledError && error.nodeId ? { node_id: error.nodeId } : {}),
  };
}

function describeMessage(err: unknown): string {
  // The node's own code is kept in NodeExecutionError.code; repeat only the message chain here.
  if (err instanceof Error) {
    const base = err.message;
    return err.cause === undefined ? base : `${base} (caused by: ${describeError(err.cause)})`;
  }
  return String(err);
}

function toWaitingOn(row: RunRow): WaitingOn | null {
  if (row.status !== 'waiting' || !row.waiting_json || !row.waiting_node_id) return null;
  const w = JSON.parse(row.waiting_json) as { kind: 'job'; jobId: string };
  return { nodeId: row.waiting_node_id, kind: w.kind, jobId: w.jobId };
}

function toSummary(row: RunRow): RunSummary {
  return {
    id: row.id,
    workflowId: row.workflow_id,
    workflowName: row.workflow_name,
    status: row.status,
    waiting: toWaitingOn(row),
    error: row.error_json === null ? null : (JSON.parse(row.error_json) as ErrorInfo),
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    updatedAt: row.updated_at,
  };
}

/** Settles with the node's promise, or rejects as soon as the run is cancelled. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
