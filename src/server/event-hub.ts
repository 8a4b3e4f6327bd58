// One stream of live events for every SSE client: engine events (runs and nodes) pushed by the
// engine, and job status and job events read from the store (so a job trained by another process
// shows up too). Each event gets an ID from one counter; the last `capacity` events stay in a ring
// so a client that reconnects with Last-Event-ID is sent exactly what it missed.
import type { Kysely } from 'kysely';
import type { Engine, EngineEvent } from '../engine/index.ts';
import { toJobEvent, type JobQueue } from '../jobs/index.ts';
import type { Database, JobEventRow, StoredJobStatus } from '../store/index.ts';

export interface HubEvent {
  id: number;
  event: string;
  runId?: string;
  jobId?: string;
  data: Record<string, unknown>;
}

export interface EventFilter {
  runIds?: string[];
  jobIds?: string[];
}

export interface EventHubOptions {
  db: Kysely<Database>;
  engine?: Engine;
  /** Jobs recorded in this process are read at once instead of at the next poll. */
  jobs?: JobQueue;
  /** Events kept for replay. */
  capacity?: number;
  /** How often the store is read for job changes; 0 turns polling off (tests drive `pollJobs`). */
  pollMs?: number;
}

const ACTIVE: StoredJobStatus[] = ['validating_files', 'queued', 'running', 'paused'];
const MAX_OUTPUT_JSON = 2048;

export function matches(filter: EventFilter, ev: { runId?: string; jobId?: string }): boolean {
  const runs = filter.runIds ?? [];
  const jobs = filter.jobIds ?? [];
  if (runs.length === 0 && jobs.length === 0) return true;
  return (ev.runId !== undefined && runs.includes(ev.runId)) || (ev.jobId !== undefined && jobs.includes(ev.jobId));
}

/** Node outputs can be whole data sets; the stream carries small values and points at the rest. */
function summarizeOutputs(outputs: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(outputs)) {
    const json = JSON.stringify(v) ?? '';
    out[k] = json.length > MAX_OUTPUT_JSON ? { truncated: true, json_bytes: json.length } : v;
  }
  return out;
}

export function engineEventData(ev: EngineEvent): Record<string, unknown> {
  const { runId, at, type: _type, ...rest } = ev as EngineEvent & Record<string, unknown>;
  const data: Record<string, unknown> = { run_id: runId, at, ...rest };
  if ('nodeId' in data) {
    data.node_id = data.nodeId;
    delete data.nodeId;
  }
  if ('nodeType' in data) {
    data.node_type = data.nodeType;
    delete data.nodeType;
  }
  if ('workflowName' in data) {
    data.workflow_name = data.workflowName;
    delete data.workflowName;
  }
  if (ev.type === 'node.succeeded') data.outputs = summarizeOutputs(ev.outputs);
  return data;
}

export function jobEventData(row: JobEventRow): Record<string, unknown> {
  return { job_id: row.job_id, seq: Number(row.seq), ...toJobEvent(row) };
}

interface Watched {
  status: StoredJobStatus;
  updatedAt: number;
  seq: number;
}

export class EventHub {
  private readonly db: Kysely<Database>;
  private readonly capacity: number;
  private readonly ring: HubEvent[] = [];
  private ringStart = 0;
  private readonly listeners = new Set<{ filter: EventFilter; fn: (ev: HubEvent) => void }>();
  /** Seeded by the clock so IDs keep growing across restarts of the server. */
  private lastId: number;
  private readonly watched = new Map<string, Watched>();
  /** Job → the run that waits on it, so a run's subscribers also see its training progress. */
  private readonly jobRuns = new Map<string, string>();
  private timer?: NodeJS.Timeout;
  private polling?: Promise<void>;
  private unsubscribeEngine?: () => void;
  private unsubscribeJobs: (() => void)[] = [];
  private pollAgain = false;
  private primed = false;
  private readonly closers = new Set<() => void>();
  private readonly startedAt = Date.now();

  constructor(options: EventHubOptions) {
    this.db = options.db;
    this.capacity = options.capacity ?? 10_000;
    this.lastId = Date.now() * 1000;
    if (options.engine) {
      this.unsubscribeEngine = options.engine.subscribe((ev) => {
        if (ev.type === 'run.waiting' || ev.type === 'node.waiting') this.jobRuns.set(ev.wait.jobId, ev.runId);
        this.publish(ev.type, engineEventData(ev), { runId: ev.runId });
      });
    }
    if (options.jobs) {
      this.unsubscribeJobs.push(options.jobs.onEvent(() => void this.pollJobs()));
      this.unsubscribeJobs.push(options.jobs.onFinished(() => void this.pollJobs()));
    }
    const pollMs = options.pollMs ?? 250;
    if (pollMs > 0) {
      this.timer = setInterval(() => void this.pollJobs(), pollMs);
      this.timer.unref();
    }
  }

  get subscriberCount(): number {
    return this.listeners.size;
  }

  get latestId(): number {
    return this.lastId;
  }

  publish(event: string, data: Record<string, unknown>, keys: { runId?: string; jobId?: string }): HubEvent {
    const ev: HubEvent = { id: ++this.lastId, event, data, ...keys };
    this.ring.push(ev);
    if (this.ring.length - this.ringStart > this.capacity) {
      this.ringStart++;
      // Compact now and then instead of shifting an array of thousands on every event.
      if (this.ringStart > this.capacity) {
        this.ring.splice(0, this.ringStart);
        this.ringStart = 0;
      }
    }
    for (const l of this.listeners) {
      if (!matches(l.filter, ev)) continue;
      try {
        l.fn(ev);
      } catch {
        // One client's failure is its own.
      }
    }
    return ev;
  }

  subscribe(filter: EventFilter, fn: (ev: HubEvent) => void): () => void {
    const entry = { filter, fn };
    this.listeners.add(entry);
    return () => void this.listeners.delete(entry);
  }

  /**
   * Events after `lastId` that match, or null when the ring no longer reaches back that far (or
   * the ID is from another server process): then the caller sends a snapshot from the store.
   */
  since(lastId: number, filter: EventFilter): HubEvent[] | null {
    if (!Number.isSafeInteger(lastId) || lastId > this.lastId) return null;
    const oldest = this.ring[this.ringStart];
    const firstKept = oldest ? oldest.id : this.lastId + 1;
    if (lastId < firstKept - 1) return null;
    const out: HubEvent[] = [];
    for (let i = this.ringStart; i < this.ring.length; i++) {
      const ev = this.ring[i];
      if (ev.id > lastId && matches(filter, ev)) out.push(ev);
    }
    return out;
  }

  /**
   * Reads what changed in the jobs tables since the last poll and publishes it: new job events in
   * seq order, then status changes. Jobs are watched while active, and once more after they end.
   */
  pollJobs(): Promise<void> {
    if (this.polling) {
      // A change may have landed after the running poll read its rows: read once more after it.
      this.pollAgain = true;
      return this.polling;
    }
    this.polling = (async () => {
      do {
        this.pollAgain = false;
        await this.doPoll();
      } while (this.pollAgain);
    })().finally(() => (this.polling = undefined));
    return this.polling;
  }

  private async doPoll(): Promise<void> {
    try {
      const ids = [...this.watched.keys()];
      let q = this.db.selectFrom('jobs').select(['id', 'status', 'updated_at', 'created_at', 'fine_tuned_model', 'error_json']);
      q = ids.length > 0 ? q.where((eb) => eb.or([eb('status', 'in', ACTIVE), eb('id', 'in', ids)])) : q.where('status', 'in', ACTIVE);
      const rows = await q.execute();
      const firstPoll = !this.primed;
      this.primed = true;
      const seen = new Set(rows.map((r) => r.id));
      for (const id of ids) if (!seen.has(id)) this.watched.delete(id);
      for (const row of rows) {
        let w = this.watched.get(row.id);
        if (!w) {
          // Jobs that existed before this hub started: their past events are history (served
          // by replay), not news. A job created since is followed from its first event.
          const isNew = !firstPoll && Number(row.created_at) >= this.startedAt;
          const max = isNew ? undefined : await this.db.selectFrom('job_events').select((eb) => eb.fn.max('seq').as('seq')).where('job_id', '=', row.id).executeTakeFirst();
          w = { status: row.status, updatedAt: Number(row.updated_at), seq: Number(max?.seq ?? 0) };
          this.watched.set(row.id, w);
          if (!this.jobRuns.has(row.id)) {
            const waiting = await this.db.selectFrom('runs').select('id').where('waiting_job_id', '=', row.id).executeTakeFirst();
            if (waiting) this.jobRuns.set(row.id, waiting.id);
          }
          if (isNew) this.publishStatus(row);
          else continue;
        }
        const events = await this.db.selectFrom('job_events').selectAll().where('job_id', '=', row.id).where('seq', '>', w.seq).orderBy('seq').execute();
        for (const e of events) {
          w.seq = Number(e.seq);
          this.publish(e.type === 'metrics' ? 'job.metrics' : 'job.event', jobEventData(e), this.jobKeys(row.id));
        }
        if (row.status !== w.status) {
          w.status = row.status;
          this.publishStatus(row);
        }
        if (!ACTIVE.includes(row.status)) {
          this.watched.delete(row.id);
          this.jobRuns.delete(row.id);
        }
      }
    } catch {
      // A failed poll (database busy, closing) is retried on the next tick.
    }
  }

  private publishStatus(row: { id: string; status: StoredJobStatus; fine_tuned_model: string | null; error_json: string | null }): void {
    this.publish('job.status', { job_id: row.id, status: row.status, fine_tuned_model: row.fine_tuned_model, error: row.error_json ? JSON.parse(row.error_json) : null }, this.jobKeys(row.id));
  }

  private jobKeys(jobId: string): { jobId: string; runId?: string } {
    const runId = this.jobRuns.get(jobId);
    return runId ? { jobId, runId } : { jobId };
  }

  /** Called when the hub closes, so open streams can end and the server can stop. */
  onClose(fn: () => void): () => void {
    this.closers.add(fn);
    return () => void this.closers.delete(fn);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    for (const fn of this.closers) fn();
    this.unsubscribeEngine?.();
    for (const off of this.unsubscribeJobs) off();
    await this.polling;
    this.listeners.clear();
  }
}
