import type { RunStatus } from '../store/index.ts';
import type { NodeOutputs, NodeProgress, WaitRequest } from './node.ts';

export interface ErrorInfo {
  code: string;
  message: string;
  node_id?: string;
  node_type?: string;
}

interface Base {
  runId: string;
  /** Epoch milliseconds. */
  at: number;
}

interface NodeBase extends Base {
  nodeId: string;
  nodeType: string;
}

/** Every change a CLI progress view or an SSE stream needs; messages are already redacted. */
export type EngineEvent =
  | (Base & { type: 'run.started'; workflowName: string; nodeCount: number })
  | (Base & { type: 'run.resumed'; workflowName: string; nodeId: string })
  | (Base & { type: 'run.waiting'; nodeId: string; wait: Omit<WaitRequest, 'state'> })
  | (Base & { type: 'run.finished'; status: Extract<RunStatus, 'succeeded' | 'failed' | 'cancelled'>; error?: ErrorInfo })
  | (NodeBase & { type: 'node.started' })
  | (NodeBase & { type: 'node.succeeded'; durationMs: number; outputs: NodeOutputs })
  | (NodeBase & { type: 'node.failed'; durationMs: number; error: ErrorInfo })
  | (NodeBase & { type: 'node.waiting'; wait: Omit<WaitRequest, 'state'> })
  | (NodeBase & { type: 'node.cancelled' })
  | (NodeBase & { type: 'node.progress'; progress: NodeProgress })
  | (NodeBase & { type: 'node.log'; level: 'debug' | 'info' | 'warn' | 'error'; message: string; data?: Record<string, unknown> });

export type EngineEventType = EngineEvent['type'];
export type EngineListener = (event: EngineEvent) => void;

/** A tiny typed emitter: a failing listener is isolated so it can never break a run. */
export class EngineEvents {
  private readonly listeners = new Set<{ fn: EngineListener; runId?: string }>();

  subscribe(fn: EngineListener, filter: { runId?: string } = {}): () => void {
    const entry = { fn, runId: filter.runId };
    this.listeners.add(entry);
    return () => {
      this.listeners.delete(entry);
    };
  }

  get size(): number {
    return this.listeners.size;
  }

  emit(event: EngineEvent): void {
    for (const { fn, runId } of this.listeners) {
      if (runId !== undefined && runId !== event.runId) continue;
      try {
        fn(event);
      } catch {
        // A listener's bug is its own; the run goes on.
      }
    }
  }
}
