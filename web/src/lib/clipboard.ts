// Copy and paste of nodes: the selected nodes with the edges among them, pasted with new IDs
// a little down and to the right so the copy is visible.
import type { WorkflowJson } from '../api.ts';

export type Clip = Pick<WorkflowJson, 'nodes' | 'edges'>;

export function clipOf(wf: WorkflowJson, selected: Set<string>): Clip {
  return {
    nodes: wf.nodes.filter((n) => selected.has(n.id)),
    edges: wf.edges.filter((e) => selected.has(e.source) && selected.has(e.target)),
  };
}

export function pasteClip(clip: Clip, newId: (type: string) => string, offset = 40): Clip {
  const ids = new Map(clip.nodes.map((n) => [n.id, newId(n.type)]));
  return {
    nodes: clip.nodes.map((n) => ({ ...n, id: ids.get(n.id)!, config: structuredClone(n.config), position: { x: (n.position?.x ?? 0) + offset, y: (n.position?.y ?? 0) + offset } })),
    edges: clip.edges.map((e) => ({ ...e, source: ids.get(e.source)!, target: ids.get(e.target)! })),
  };
}
