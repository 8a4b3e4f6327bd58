import type { z } from 'zod';
import type { VaultKeyLookup } from '../providers/key-binding.ts';
import type { Store } from '../store/index.ts';
import { NodeRegistryError } from './errors.ts';
import type { PortSpec } from './port-spec.ts';

export type { PortSpec } from './port-spec.ts';

export type NodeOutputs = Record<string, unknown>;

/** What a node asks the run to wait for. `state` is kept with the run and handed back on resume. */
export interface WaitRequest {
  kind: 'job';
  jobId: string;
  state?: unknown;
}

export type NodeResult = NodeOutputs | { wait: WaitRequest };

/** How the awaited job ended, as told to `resumeRun`. */
export interface JobOutcome {
  jobId: string;
  status: 'succeeded' | 'failed' | 'cancelled';
  /** Becomes the node's outputs when the node has no `resume` of its own. */
  outputs?: NodeOutputs;
  error?: { code?: string; message: string };
}

export interface NodeProgress {
  message?: string;
  /** 0..1 */
  progress?: number;
  data?: Record<string, unknown>;
}

export interface NodeLogger {
  debug(message: string, data?: Record<string, unknown>): void;
  info(message: string, data?: Record<string, unknown>): void;
  warn(message: string, data?: Record<string, unknown>): void;
  error(message: string, data?: Record<string, unknown>): void;
}

/**
 * Services the application wires into the engine for its nodes (job queue, providers, model
 * registry). Layers below add typed members by declaration merging:
 * `declare module '../engine/node.ts' { interface EngineServices { jobs: JobQueue } }`.
 */
export interface EngineServices {
  [name: string]: unknown;
}

export interface NodeContext<C = unknown> {
  /** The node's config, already validated and defaulted by its zod schema. */
  config: C;
  /** Values from upstream outputs, keyed by input name (`data` by default). */
  inputs: Record<string, unknown>;
  node: { id: string; type: string };
  runId: string;
  store: Store;
  services: EngineServices;
  /**
   * Reads a secret from the vault; its value is masked from then on in logs, errors and results.
   * `lookupKey` gives an API key with the hosts it may be sent to (undefined when there is none).
   */
  secrets: { get(name: string): Promise<string>; lookupKey: VaultKeyLookup };
  logger: NodeLogger;
  /** Aborted when the run is cancelled. */
  signal: AbortSignal;
  emit(progress: NodeProgress): void;
}

export interface ResumeContext<C = unknown> extends NodeContext<C> {
  wait: WaitRequest;
  job: JobOutcome;
}

export interface NodeDefinition<S extends z.ZodType = z.ZodType> {
  /** Stable id used in workflow JSON, snake_case: `file_loader`, `finetune`. */
  type: string;
  name: string;
  category: string;
  description: string;
  inputs: PortSpec[];
  outputs: PortSpec[];
  /** Single source of the node's settings: validation, defaults, UI form and docs. */
  config: S;
  /**
   * Config fields that hold secrets (API keys typed into the node). The engine keeps their values
   * in the vault for the run and stores only a reference in the run's workflow snapshot.
   */
  secretConfig?: readonly string[];
  run(ctx: NodeContext<z.output<S>>): Promise<NodeResult> | NodeResult;
  /**
   * Continues after the awaited job ended. Without it, a succeeded job's `outputs` become the
   * node's outputs and a failed or cancelled job fails the node.
   */
  resume?(ctx: ResumeContext<z.output<S>>): Promise<NodeResult> | NodeResult;
}

export type AnyNodeDefinition = NodeDefinition<any>;

const NODE_TYPE = /^[a-z][a-z0-9_]{0,63}$/;
const PORT_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Declares a node type; checks the declaration itself so mistakes show at import, not at run. */
export function defineNode<S extends z.ZodType>(def: NodeDefinition<S>): NodeDefinition<S> {
  if (!NODE_TYPE.test(def.type)) {
    throw new NodeRegistryError('node_definition_invalid', `Node type ${JSON.stringify(def.type)} is invalid: use snake_case letters and digits.`);
  }
  for (const [kind, ports] of [['input', def.inputs], ['output', def.outputs]] as const) {
    const seen = new Set<string>();
    for (const port of ports) {
      if (!PORT_NAME.test(port.name) || seen.has(port.name)) {
        throw new NodeRegistryError('node_definition_invalid', `Node type "${def.type}" declares ${kind} ${JSON.stringify(port.name)} twice or with an invalid name.`);
      }
      seen.add(port.name);
    }
  }
  if (def.outputs.some((p) => p.name === 'wait')) {
    // `{wait: …}` is how run() asks to wait, so no output may bear that name.
    throw new NodeRegistryError('node_definition_invalid', `Node type "${def.type}" cannot name an output "wait": that key is reserved for waiting on a job.`);
  }
  return def;
}

export function isWaitResult(result: NodeResult): result is { wait: WaitRequest } {
  if (result === null || typeof result !== 'object') return false;
  const keys = Object.keys(result);
  const wait = (result as { wait?: unknown }).wait;
  return (
    keys.length === 1 &&
    keys[0] === 'wait' &&
    typeof wait === 'object' &&
    wait !== null &&
    (wait as WaitRequest).kind === 'job' &&
    typeof (wait as WaitRequest).jobId === 'string' &&
    (wait as WaitRequest).jobId !== ''
  );
}
