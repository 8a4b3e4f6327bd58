import { z } from 'zod';
import { WorkflowValidationError, type WorkflowIssue } from './errors.ts';
import type { NodeRegistry } from './registry.ts';

export const DEFAULT_HANDLE = 'data';

// Loose objects: the canvas keeps its own keys (labels, sizes, edge ids, styles) in the same JSON,
// and they must survive a save/load through the API untouched.
export const WorkflowNodeSchema = z.looseObject({
  id: z.string().min(1, 'a node needs a non-empty "id"'),
  type: z.string().min(1, 'a node needs a non-empty "type"'),
  config: z.record(z.string(), z.unknown()).default({}),
  position: z.object({ x: z.number(), y: z.number() }).optional(),
});

export const WorkflowEdgeSchema = z.looseObject({
  id: z.string().optional(),
  source: z.string().min(1),
  target: z.string().min(1),
  // React Flow writes null for "the node's only handle".
  sourceHandle: z.string().nullish(),
  targetHandle: z.string().nullish(),
});

export const WorkflowSchema = z.looseObject({
  name: z.string().min(1, 'a workflow needs a "name"'),
  description: z.string().optional(),
  nodes: z.array(WorkflowNodeSchema),
  edges: z.array(WorkflowEdgeSchema).default([]),
});

export type WorkflowNode = z.infer<typeof WorkflowNodeSchema>;
export type WorkflowEdge = z.infer<typeof WorkflowEdgeSchema>;
export type Workflow = z.infer<typeof WorkflowSchema>;

export interface PlannedEdge {
  source: string;
  sourceHandle: string;
  targetHandle: string;
}

export interface PlannedNode {
  id: string;
  type: string;
  /** Parsed and defaulted by the node's schema. */
  config: unknown;
  incoming: PlannedEdge[];
}

/** A validated workflow, ready to execute: nodes in topological order with their inputs. */
export interface ExecutionPlan {
  workflow: Workflow;
  order: PlannedNode[];
}

export type ValidationResult = { ok: true; plan: ExecutionPlan; issues: [] } | { ok: false; issues: WorkflowIssue[] };

const formatPath = (parts: readonly PropertyKey[]) =>
  parts.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`)).join('');

/**
 * Checks everything that can be known before a run and reports every problem at once, each
 * naming the node at fault and the JSON path.
 */
export function validateWorkflow(input: unknown, registry: NodeRegistry): ValidationResult {
  const parsed = WorkflowSchema.safeParse(input);
  if (!parsed.success) {
    return {
      ok: false,
      issues: parsed.error.issues.map((i) => {
        const path = formatPath(i.path);
        const nodeIndex = i.path[0] === 'nodes' && typeof i.path[1] === 'number' ? i.path[1] : undefined;
        const nodeId = nodeIndex !== undefined ? (input as { nodes?: { id?: unknown }[] })?.nodes?.[nodeIndex]?.id : undefined;
        return {
          code: 'invalid_workflow',
          message: `${path || 'workflow'}${typeof nodeId === 'string' ? ` (node "${nodeId}")` : ''}: ${i.message}`,
          path: path || undefined,
          ...(typeof nodeId === 'string' ? { nodeId } : {}),
        };
      }),
    };
  }
  const workflow = parsed.data;
  const issues: WorkflowIssue[] = [];
  const byId = new Map<string, { node: WorkflowNode; index: number }>();

  workflow.nodes.forEach((node, index) => {
    if (byId.has(node.id)) {
      issues.push({ code: 'duplicate_node_id', nodeId: node.id, path: `nodes[${index}].id`, message: `nodes[${index}]: node id "${node.id}" is used by more than one node; give each node its own id.` });
      return;
    }
    byId.set(node.id, { node, index });
  });

  const configs = new Map<string, unknown>();
  for (const [id, { node, index }] of byId) {
    const def = registry.get(node.type);
    if (!def) {
      const known = registry.types();
      issues.push({
        code: 'unknown_node_type',
        nodeId: id,
        path: `nodes[${index}].type`,
        message: `Node "${id}": unknown type "${node.type}". Known types: ${known.length ? known.join(', ') : '(none registered)'}.`,
      });
      continue;
    }
    const result = def.config.safeParse(node.config);
    if (result.success) {
      configs.set(id, result.data);
    } else {
      for (const i of result.error.issues) {
        const field = formatPath(i.path);
        issues.push({
          code: 'invalid_config',
          nodeId: id,
          path: `nodes[${index}].config${field ? (field.startsWith('[') ? field : `.${field}`) : ''}`,
          message: `Node "${id}" (${node.type}): config${field ? `.${field}` : ''}: ${i.message}.`,
        });
      }
    }
  }

  const incoming = new Map<string, PlannedEdge[]>([...byId.keys()].map((id) => [id, []]));
  const outgoing = new Map<string, string[]>([...byId.keys()].map((id) => [id, []]));
  workflow.edges.forEach((edge, index) => {
    const where = `edges[${index}]`;
    const source = byId.get(edge.source);
    const target = byId.get(edge.target);
    if (!source || !target) {
      const missing = [!source ? `source "${edge.source}"` : '', !target ? `target "${edge.target}"` : ''].filter(Boolean).join(' and ');
      issues.push({ code: 'dangling_edge', path: where, ...(source ? { nodeId: edge.source } : target ? { nodeId: edge.target } : {}), message: `${where}: edge ${edge.source} → ${edge.target} points at no node (${missing}); remove the edge or add the node.` });
      return;
    }
    const sourceHandle = edge.sourceHandle ?? DEFAULT_HANDLE;
    const targetHandle = edge.targetHandle ?? DEFAULT_HANDLE;
    const sourceDef = registry.get(source.node.type);
    const targetDef = registry.get(target.node.type);
    if (sourceDef && !sourceDef.outputs.some((p) => p.name === sourceHandle)) {
      issues.push({ code: 'unknown_handle', nodeId: edge.source, path: `${where}.sourceHandle`, message: `${where}: node "${edge.source}" (${source.node.type}) has no output "${sourceHandle}"; outputs: ${sourceDef.outputs.map((p) => p.name).join(', ') || '(none)'}.` });
      return;
    }
    if (targetDef && !targetDef.inputs.some((p) => p.name === targetHandle)) {
      issues.push({ code: 'unknown_handle', nodeId: edge.target, path: `${where}.targetHandle`, message: `${where}: node "${edge.target}" (${target.node.type}) has no input "${targetHandle}"; inputs: ${targetDef.inputs.map((p) => p.name).join(', ') || '(none)'}.` });
      return;
    }
    incoming.get(edge.target)!.push({ source: edge.source, sourceHandle, targetHandle });
    outgoing.get(edge.source)!.push(edge.target);
  });

  for (const [id, { node, index }] of byId) {
    const def = registry.get(node.type);
    if (!def) continue;
    const edges = incoming.get(id)!;
    for (const port of def.inputs) {
      const feeding = edges.filter((e) => e.targetHandle === port.name);
      if (port.required && feeding.length === 0) {
        issues.push({ code: 'missing_input', nodeId: id, path: `nodes[${index}]`, message: `Node "${id}" (${node.type}) needs its input "${port.name}" connected${port.description ? ` (${port.description})` : ''}; add an edge into it.` });
      }
      if (!port.multiple && feeding.length > 1) {
        issues.push({ code: 'too_many_inputs', nodeId: id, path: `nodes[${index}]`, message: `Node "${id}" (${node.type}) input "${port.name}" takes one edge but has ${feeding.length} (from ${feeding.map((e) => `"${e.source}"`).join(', ')}); keep one.` });
      }
    }
  }

  const order = topologicalOrder([...byId.keys()], outgoing, incoming);
  if (order.cycle) {
    const cycle = order.cycle;
    issues.push({ code: 'cycle', nodeIds: cycle, nodeId: cycle[0], message: `The workflow has a cycle: ${[...cycle, cycle[0]].map((n) => `"${n}"`).join(' → ')}. Remove one of these edges; a workflow must flow one way.` });
  }

  if (issues.length > 0) return { ok: false, issues };
  return {
    ok: true,
    issues: [],
    plan: {
      workflow,
      order: order.ids.map((id) => ({ id, type: byId.get(id)!.node.type, config: configs.get(id), incoming: incoming.get(id)! })),
    },
  };
}

export function assertValidWorkflow(input: unknown, registry: NodeRegistry): ExecutionPlan {
  const result = validateWorkflow(input, registry);
  if (!result.ok) throw new WorkflowValidationError(result.issues);
  return result.plan;
}

/**
 * Kahn's algorithm, taking ready nodes in the order the workflow lists them so runs are
 * deterministic. If nodes remain, one actual cycle among them is traced for the message.
 */
function topologicalOrder(ids: string[], outgoing: Map<string, string[]>, incoming: Map<string, PlannedEdge[]>): { ids: string[]; cycle?: string[] } {
  const position = new Map(ids.map((id, i) => [id, i]));
  const indegree = new Map(ids.map((id) => [id, incoming.get(id)!.length]));
  const ready = ids.filter((id) => indegree.get(id) === 0);
  const out: string[] = [];
  while (ready.length > 0) {
    const id = ready.shift()!;
    out.push(id);
    const newlyReady: string[] = [];
    for (const next of outgoing.get(id)!) {
      const d = indegree.get(next)! - 1;
      indegree.set(next, d);
      if (d === 0) newlyReady.push(next);
    }
    if (newlyReady.length > 0) {
      ready.push(...newlyReady);
      ready.sort((a, b) => position.get(a)! - position.get(b)!);
    }
  }
  if (out.length === ids.length) return { ids: out };

  const remaining = new Set(ids.filter((id) => indegree.get(id)! > 0));
  // Every remaining node has a remaining predecessor, so walking predecessors must revisit one.
  let current = ids.find((id) => remaining.has(id))!;
  const seenAt = new Map<string, number>();
  const path: string[] = [];
  while (!seenAt.has(current)) {
    seenAt.set(current, path.length);
    path.push(current);
    current = incoming.get(current)!.find((e) => remaining.has(e.source))!.source;
  }
  const cycle = path.slice(seenAt.get(current)!).reverse();
  // Start from the node listed first, so the message is the same however the walk began.
  const first = cycle.reduce((best, id, i) => (position.get(id)! < position.get(cycle[best])! ? i : best), 0);
  return { ids: out, cycle: [...cycle.slice(first), ...cycle.slice(0, first)] };
}
