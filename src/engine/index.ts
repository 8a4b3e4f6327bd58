export { Engine, type EngineOptions, type StartRunOptions, type RunResult, type RunRecord, type RunSummary, type NodeRecord, type WaitingOn, type JobStateLookup, type LogEntry } from './engine.ts';
export {
  defineNode,
  isWaitResult,
  type AnyNodeDefinition,
  type EngineServices,
  type JobOutcome,
  type NodeContext,
  type NodeDefinition,
  type NodeLogger,
  type NodeOutputs,
  type NodeProgress,
  type NodeResult,
  type PortSpec,
  type ResumeContext,
  type WaitRequest,
} from './node.ts';
export { NodeRegistry, type NodeDescription } from './registry.ts';
export {
  WorkflowSchema,
  WorkflowNodeSchema,
  WorkflowEdgeSchema,
  DEFAULT_HANDLE,
  validateWorkflow,
  assertValidWorkflow,
  type Workflow,
  type WorkflowNode,
  type WorkflowEdge,
  type ExecutionPlan,
  type PlannedNode,
  type PlannedEdge,
  type ValidationResult,
} from './workflow.ts';
export { EngineEvents, type EngineEvent, type EngineEventType, type EngineListener, type ErrorInfo } from './events.ts';
export * from './errors.ts';
