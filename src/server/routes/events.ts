import type { Context } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { Kysely } from 'kysely';
import type { Engine } from '../../engine/index.ts';
import type { Database } from '../../store/index.ts';
import { badRequest } from '../errors.ts';
import { jobEventData, type EventFilter, type EventHub, type HubEvent } from '../event-hub.ts';

export interface SseDeps {
  hub: EventHub;
  engine: Engine;
  db: Kysely<Database>;
  /** Keep-alive comment interval. */
  pingMs?: number;
  /** A client this far behind is dropped; it reconnects with Last-Event-ID and loses nothing. */
  maxQueue?: number;
}

const MAX_SNAPSHOT_EVENTS = 10_000;
const ID = /^[A-Za-z0-9_-]{1,100}$/;

function listParam(c: Context, name: string): string[] {
  const values = c.req.queries(name) ?? [];
  const ids = values.flatMap((v) => v.split(',')).filter((v) => v !== '');
  for (const id of ids) if (!ID.test(id)) throw badRequest('invalid_request', `Invalid ${name} ${JSON.stringify(id.slice(0, 80))}.`, name);
  return ids;
}

/** What a client that has nothing (or is too far behind) needs to draw the present state. */
async function snapshot(deps: SseDeps, filter: EventFilter): Promise<Omit<HubEvent, 'id'>[]> {
  const out: Omit<HubEvent, 'id'>[] = [];
  for (const runId of filter.runIds ?? []) {
    const run = await deps.engine.getRun(runId).catch(() => undefined);
    if (!run) continue;
    out.push({
      event: 'run.snapshot',
      runId,
      data: {
        run_id: run.id,
        status: run.status,
        workflow_name: run.workflowName,
        error: run.error,
        waiting: run.waiting,
        nodes: run.nodes.map((n) => ({ node_id: n.nodeId, node_type: n.nodeType, status: n.status, error: n.error, duration_ms: n.durationMs })),
      },
    });
  }
  for (const jobId of filter.jobIds ?? []) {
    const job = await deps.db.selectFrom('jobs').select(['id', 'status', 'fine_tuned_model', 'error_json']).where('id', '=', jobId).executeTakeFirst();
    if (!job) continue;
    const events = await deps.db.selectFrom('job_events').selectAll().where('job_id', '=', jobId).orderBy('seq', 'desc').limit(MAX_SNAPSHOT_EVENTS).execute();
    for (const e of events.reverse()) out.push({ event: e.type === 'metrics' ? 'job.metrics' : 'job.event', jobId, data: jobEventData(e) });
    out.push({ event: 'job.snapshot', jobId, data: { job_id: job.id, status: job.status, fine_tuned_model: job.fine_tuned_model, error: job.error_json ? JSON.parse(job.error_json) : null } });
  }
  return out;
}

/**
 * `GET /api/v1/events?run_id=&job_id=` (each repeatable or comma-separated; none = everything).
 * Reconnecting with `Last-Event-ID` replays what was missed from the hub's ring; when the ring no
 * longer reaches back (or the server restarted), a snapshot from the store stands in for it.
 */
export function eventsHandler(deps: SseDeps) {
  return (c: Context) => {
    const filter: EventFilter = { runIds: listParam(c, 'run_id'), jobIds: listParam(c, 'job_id') };
    const lastHeader = c.req.header('last-event-id') ?? c.req.query('last_event_id');
    const lastId = lastHeader !== undefined && /^\d{1,16}$/.test(lastHeader.trim()) ? Number(lastHeader.trim()) : undefined;
    const maxQueue = deps.maxQueue ?? 50_000;
    c.header('X-Accel-Buffering', 'no');
    return streamSSE(c, async (stream) => {
      const queue: HubEvent[] = [];
      let wake: (() => void) | undefined;
      let closed = false;
      const close = () => {
        closed = true;
        wake?.();
      };
      // Subscribe before reading the replay so nothing published meanwhile can fall between them.
      const unsubscribe = deps.hub.subscribe(filter, (ev) => {
        if (queue.length >= maxQueue) return close();
        queue.push(ev);
        wake?.();
      });
      stream.onAbort(close);
      const offClose = deps.hub.onClose(close);
      const ping = setInterval(() => {
        queue.push({ id: -1, event: '', data: {} });
        wake?.();
      }, deps.pingMs ?? 15_000);
      try {
        const atSubscribe = deps.hub.latestId;
        let sent = lastId ?? 0;
        const replay = lastId !== undefined ? deps.hub.since(lastId, filter) : null;
        if (replay) {
          for (const ev of replay) {
            if (ev.id > atSubscribe) break;
            await stream.writeSSE({ id: String(ev.id), event: ev.event, data: JSON.stringify(ev.data) });
            sent = ev.id;
          }
        } else {
          // Snapshot events carry the ID of the moment they describe, so a reconnect after them
          // resumes from there.
          for (const ev of await snapshot(deps, filter)) await stream.writeSSE({ id: String(atSubscribe), event: ev.event, data: JSON.stringify(ev.data) });
          sent = atSubscribe;
        }
        // Without an id, so it does not move the client's Last-Event-ID.
        await stream.writeSSE({ event: 'ready', data: JSON.stringify({ last_event_id: sent }) });
        while (!closed) {
          if (queue.length === 0) {
            await new Promise<void>((resolve) => (wake = resolve));
            wake = undefined;
            continue;
          }
          const ev = queue.shift()!;
          if (ev.id === -1) {
            await stream.write(': ping\n\n');
            continue;
          }
          if (ev.id <= sent) continue;
          await stream.writeSSE({ id: String(ev.id), event: ev.event, data: JSON.stringify(ev.data) });
          sent = ev.id;
        }
      } finally {
        clearInterval(ping);
        unsubscribe();
        offClose();
      }
    });
  };
}
