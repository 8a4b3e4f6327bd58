// One node on the canvas: its name, what it is doing in the current run, and for a Fine-Tune
// node a progress bar of its training job.
import { Handle, Position, type Node, type NodeProps } from '@xyflow/react';

export interface FlowNodeData extends Record<string, unknown> {
  type: string;
  title: string;
  category: string;
  config: Record<string, unknown>;
  status?: string;
  detail?: string;
  progress?: number;
}

export type WorkflowNode = Node<FlowNodeData, 'workflow'>;

export function FlowNode({ data, selected }: NodeProps<WorkflowNode>) {
  return (
    <div className={`flow-node ${data.category} ${data.status ?? 'idle'} ${selected ? 'selected' : ''}`} data-testid={`node-${data.type}`}>
      <Handle type="target" position={Position.Left} />
      <div className="title">{data.title}</div>
      <div className="status" data-testid="node-status">
        {data.status ?? 'ready'}
        {data.detail ? ` · ${data.detail}` : ''}
      </div>
      {data.progress !== undefined && (
        <div className="progress" aria-label="training progress">
          <div style={{ width: `${Math.round(data.progress * 100)}%` }} />
        </div>
      )}
      <Handle type="source" position={Position.Right} />
    </div>
  );
}
