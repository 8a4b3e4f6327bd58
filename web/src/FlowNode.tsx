// One node on the canvas: its name, its labelled input and output ports, what it is doing in the
// current run (a Fine-Tune node with a progress bar), and what is wrong with it, wrapped inside
// the node's fixed width.
import { Handle, Position, type Node, type NodeProps } from '@xyflow/react';

export interface FlowNodeData extends Record<string, unknown> {
  type: string;
  title: string;
  category: string;
  config: Record<string, unknown>;
  inputs: string[];
  outputs: string[];
  status?: string;
  detail?: string;
  progress?: number;
  /** A problem to fix before running (validation, a failed data check). */
  problem?: string;
}

export type WorkflowNode = Node<FlowNodeData, 'workflow'>;

export function FlowNode({ data, selected }: NodeProps<WorkflowNode>) {
  const rows = Math.max(data.inputs.length, data.outputs.length);
  const failed = data.status === 'failed';
  return (
    <div className={`flow-node ${data.category} ${data.status ?? 'idle'} ${selected ? 'selected' : ''} ${data.problem ? 'has-problem' : ''}`} data-testid={`node-${data.type}`}>
      <div className="head">
        <div className="title">{data.title}</div>
        <div className="status" data-testid="node-status" title={data.detail}>
          {data.status ?? 'ready'}
          {data.detail && !failed ? ` · ${data.detail}` : ''}
        </div>
        {data.progress !== undefined && (
          <div className="progress" role="progressbar" aria-label="training progress" aria-valuenow={Math.round(data.progress * 100)} aria-valuemin={0} aria-valuemax={100}>
            <div style={{ width: `${Math.round(data.progress * 100)}%` }} />
          </div>
        )}
      </div>
      {rows > 0 && (
        <div className="ports">
          {Array.from({ length: rows }, (_, i) => (
            <div className="port-row" key={i}>
              <span className="port in">
                {data.inputs[i] && (
                  <>
                    <Handle type="target" position={Position.Left} id={data.inputs[i]} />
                    {data.inputs[i]}
                  </>
                )}
              </span>
              <span className="port out">
                {data.outputs[i] && (
                  <>
                    {data.outputs[i]}
                    <Handle type="source" position={Position.Right} id={data.outputs[i]} />
                  </>
                )}
              </span>
            </div>
          ))}
        </div>
      )}
      {(failed && data.detail) || data.problem ? (
        <p className="node-message" data-testid="node-message" title={failed ? data.detail : data.problem}>
          {failed ? data.detail : data.problem}
        </p>
      ) : null}
    </div>
  );
}
