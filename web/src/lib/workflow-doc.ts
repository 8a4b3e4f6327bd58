// The workflow as a document: what is saved, exported, imported and kept as a draft, and how
// the canvas tells whether it has unsaved changes.
import type { WorkflowJson } from '../api.ts';
import { SECRET_FIELDS } from './fields.ts';

export const SECRET_REF = '$secret:';

/** A workflow file read from disk, checked for the shape the API takes; errors say what to fix. */
export function parseWorkflowFile(text: string, fileName: string): WorkflowJson {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`${fileName} is not JSON (${(err as Error).message}). Export a workflow from NodeAI to see the format.`);
  }
  const wf = raw as Partial<WorkflowJson> | null;
  if (!wf || typeof wf !== 'object' || !Array.isArray(wf.nodes) || !Array.isArray(wf.edges)) {
    throw new Error(`${fileName} is not a NodeAI workflow: it needs "nodes" and "edges" lists.`);
  }
  wf.nodes.forEach((n, i) => {
    if (!n || typeof n.id !== 'string' || typeof n.type !== 'string') throw new Error(`${fileName}: nodes[${i}] needs a string "id" and "type".`);
  });
  wf.edges.forEach((e, i) => {
    if (!e || typeof e.source !== 'string' || typeof e.target !== 'string') throw new Error(`${fileName}: edges[${i}] needs a string "source" and "target".`);
  });
  const name = typeof wf.name === 'string' && wf.name.trim() ? wf.name.trim() : fileName.replace(/\.json$/i, '');
  return { name, nodes: wf.nodes.map((n) => ({ ...n, config: n.config ?? {} })), edges: wf.edges };
}

/** The workflow with every typed-in key removed: only `$secret:` references may leave the vault. */
export function withoutSecrets(wf: WorkflowJson): WorkflowJson {
  return {
    ...wf,
    nodes: wf.nodes.map((n) => {
      const config = { ...n.config };
      for (const field of SECRET_FIELDS) if (typeof config[field] === 'string' && !(config[field] as string).startsWith(SECRET_REF)) delete config[field];
      return { ...n, config };
    }),
  };
}

/** What decides "unsaved changes": everything but where the nodes sit to the pixel. */
export function fingerprint(wf: WorkflowJson): string {
  return JSON.stringify({ name: wf.name, nodes: wf.nodes.map((n) => [n.id, n.type, sortKeys(n.config), n.position ? [Math.round(n.position.x), Math.round(n.position.y)] : null]), edges: wf.edges.map((e) => [e.source, e.sourceHandle ?? null, e.target, e.targetHandle ?? null]) });
}

function sortKeys(o: Record<string, unknown>): Array<[string, unknown]> {
  return Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => [k, o[k]]);
}

export function copyName(name: string, taken: string[]): string {
  const base = name.replace(/ \(copy(?: \d+)?\)$/, '');
  for (let i = 1; ; i++) {
    const candidate = i === 1 ? `${base} (copy)` : `${base} (copy ${i})`;
    if (!taken.includes(candidate)) return candidate;
  }
}
