import { NodeAIError, type NodeAIErrorOptions } from '../nodeai-error.ts';

/** Base of every engine failure; `code` is stable across releases. A failed run or node is 500 unless said otherwise. */
export class EngineError extends NodeAIError {
  constructor(code: string, message: string, options?: NodeAIErrorOptions) {
    super(code, message, options);
    this.name = 'EngineError';
  }
}

export interface WorkflowIssue {
  code:
    | 'invalid_workflow'
    | 'duplicate_node_id'
    | 'unknown_node_type'
    | 'invalid_config'
    | 'missing_input'
    | 'too_many_inputs'
    | 'dangling_edge'
    | 'unknown_handle'
    | 'cycle';
  message: string;
  /** The node at fault, when one is. */
  nodeId?: string;
  /** Every node in a cycle, in order. */
  nodeIds?: string[];
  /** Where in the workflow JSON, e.g. `nodes[1].config.epochs`. */
  path?: string;
}

export class WorkflowValidationError extends EngineError {
  constructor(readonly issues: WorkflowIssue[]) {
    const lines = issues.map((i) => `- ${i.message}`).join('\n');
    const first = issues[0];
    super('workflow_invalid', `The workflow is not valid (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n${lines}`, { status: 400, param: first?.path ?? first?.nodeId ?? null, details: issues });
    this.name = 'WorkflowValidationError';
  }
}

/** A node failed; the run failed with it. `code` is the node's own error code when it had one. */
export class NodeExecutionError extends EngineError {
  constructor(
    code: string,
    message: string,
    readonly nodeId: string,
    readonly nodeType: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = 'NodeExecutionError';
  }
}

export class RunCancelledError extends EngineError {
  constructor(
    readonly runId: string,
    readonly reason: string,
    readonly nodeId?: string,
  ) {
    super('run_cancelled', `Run ${runId} was cancelled${nodeId ? ` at node "${nodeId}"` : ''}: ${reason}.`);
    this.name = 'RunCancelledError';
  }
}

export class RunNotFoundError extends EngineError {
  constructor(readonly runId: string) {
    super('run_not_found', `No run with ID ${JSON.stringify(runId.slice(0, 80))}. List runs to find its ID.`, { status: 404 });
    this.name = 'RunNotFoundError';
  }
}

/** The run is not in a state that allows what was asked (resume a run that is not waiting, …). */
export class RunStateError extends EngineError {
  constructor(code: string, message: string) {
    super(code, message, { status: 409 });
    this.name = 'RunStateError';
  }
}

export class NodeRegistryError extends EngineError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'NodeRegistryError';
  }
}
