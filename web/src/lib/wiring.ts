// Whether an edge may be drawn, checked while the user drags it (the server checks again at
// Run): no loop, one edge into an input that takes one, and no edge into a node without inputs.
import type { NodeType } from '../api.ts';

export const DEFAULT_PORT = 'data';

export interface WireEdge {
  source: string;
  target: string;
  sourceHandle?: string | null;
  targetHandle?: string | null;
}

export interface WireNode {
  id: string;
  type: string;
  label: string;
}

/** Why the edge cannot be drawn, in words for the user, or null when it can. */
export function connectionProblem(wire: WireEdge, nodes: WireNode[], edges: WireEdge[], types: Map<string, NodeType>): string | null {
  const source = nodes.find((n) => n.id === wire.source);
  const target = nodes.find((n) => n.id === wire.target);
  if (!source || !target) return 'Connect two nodes of this workflow.';
  const targetType = types.get(target.type);
  if (targetType && targetType.inputs.length === 0) return `${target.label} takes no input: it starts a workflow. Connect its output to the next node instead.`;
  if (wire.source === wire.target) return `${source.label} cannot feed itself.`;
  const port = wire.targetHandle ?? DEFAULT_PORT;
  const spec = targetType?.inputs.find((p) => p.name === port);
  if (targetType && !spec) return `${target.label} has no input "${port}".`;
  const feeding = edges.filter((e) => e.target === wire.target && (e.targetHandle ?? DEFAULT_PORT) === port);
  if (feeding.some((e) => e.source === wire.source && (e.sourceHandle ?? DEFAULT_PORT) === (wire.sourceHandle ?? DEFAULT_PORT))) return 'These two ports are already connected.';
  if (!spec?.multiple && feeding.length > 0) {
    const from = nodes.find((n) => n.id === feeding[0].source)?.label ?? feeding[0].source;
    return `${target.label}'s input "${port}" takes one edge and already has one from ${from}. Delete that edge first.`;
  }
  if (reaches(wire.target, wire.source, edges)) return `That edge would make a loop (${target.label} already leads to ${source.label}); a workflow must flow one way.`;
  return null;
}

/** Whether `to` can be reached from `from` along the edges. */
function reaches(from: string, to: string, edges: WireEdge[]): boolean {
  const seen = new Set<string>();
  const stack = [from];
  while (stack.length) {
    const id = stack.pop()!;
    if (id === to) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const e of edges) if (e.source === id) stack.push(e.target);
  }
  return false;
}
