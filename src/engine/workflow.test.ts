import { expect, it, describe } from 'vitest';
import { z } from 'zod';
import { NodeRegistryError, WorkflowValidationError } from './errors.ts';
import { defineNode } from './node.ts';
import { chainWorkflow, testRegistry } from './testing.ts';
import { assertValidWorkflow, validateWorkflow } from './workflow.ts';

const registry = testRegistry();
const issuesOf = (wf: unknown) => {
  const r = validateWorkflow(wf, registry);
  return r.ok ? [] : r.issues;
};

describe('workflow validation', () => {
  it('accepts a valid workflow and orders it topologically, in listing order among ready nodes', () => {
    const plan = assertValidWorkflow(
      {
        name: 'fan-in',
        nodes: [
          { id: 'merge', type: 'test_merge', config: {}, position: { x: 0, y: 0 } },
          { id: 'b', type: 'test_constant', config: { value: 2 } },
          { id: 'a', type: 'test_constant', config: { value: 1 } },
          { id: 'count', type: 'test_count', config: {} },
        ],
        edges: [
          { id: 'e1', source: 'a', target: 'merge', targetHandle: 'items' },
          { source: 'b', target: 'merge', sourceHandle: null, targetHandle: 'items' },
          { source: 'merge', target: 'count' },
        ],
      },
      registry,
    );
    expect(plan.order.map((n) => n.id)).toEqual(['b', 'a', 'merge', 'count']);
    expect(plan.order[3].config).toEqual({ times: 1 }); // defaults applied by the node's schema
    expect(plan.order[2].incoming).toEqual([
      { source: 'a', sourceHandle: 'data', targetHandle: 'items' },
      { source: 'b', sourceHandle: 'data', targetHandle: 'items' },
    ]);
  });

  it('names the nodes of a cycle, in order', () => {
    const issues = issuesOf({
      name: 'loop',
      nodes: [
        { id: 'start', type: 'test_constant', config: { value: 1 } },
        { id: 'x', type: 'test_pass', config: {} },
        { id: 'y', type: 'test_merge', config: {} },
        { id: 'z', type: 'test_pass', config: {} },
      ],
      edges: [
        { source: 'start', target: 'y', targetHandle: 'items' },
        { source: 'x', target: 'y', targetHandle: 'items' },
        { source: 'y', target: 'z' },
        { source: 'z', target: 'x' },
      ],
    });
    expect(issues).toHaveLength(1);
    expect(issues[0].code).toBe('cycle');
    expect(issues[0].nodeIds).toEqual(['x', 'y', 'z']);
    expect(issues[0].message).toContain('"x" → "y" → "z" → "x"');
  });

  it('reports an unknown type, a bad config field with its path, and a missing required input, each with the node', () => {
    const issues = issuesOf({
      name: 'bad',
      nodes: [
        { id: 'src', type: 'test_constant', config: { value: [] } },
        { id: 'mystery', type: 'fine_tune_v9', config: {} },
        { id: 'counter', type: 'test_count', config: { times: 99 } },
        { id: 'lonely', type: 'test_count', config: {} },
      ],
      edges: [{ source: 'src', target: 'counter' }],
    });
    expect(issues.map((i) => [i.code, i.nodeId])).toEqual([
      ['unknown_node_type', 'mystery'],
      ['invalid_config', 'counter'],
      ['missing_input', 'lonely'],
    ]);
    expect(issues[0].message).toContain('Known types: test_constant');
    expect(issues[1].path).toBe('nodes[2].config.times');
    expect(issues[1].message).toMatch(/Node "counter" \(test_count\): config\.times: .*10/);
    expect(issues[2].message).toContain('input "data"');
  });

  it('reports duplicate ids, dangling edges, unknown handles and over-fed inputs', () => {
    const issues = issuesOf({
      name: 'messy',
      nodes: [
        { id: 'a', type: 'test_constant', config: { value: 1 } },
        { id: 'a', type: 'test_constant', config: { value: 2 } },
        { id: 'b', type: 'test_constant', config: { value: 3 } },
        { id: 'p', type: 'test_pass', config: {} },
      ],
      edges: [
        { source: 'a', target: 'ghost' },
        { source: 'a', target: 'p', sourceHandle: 'nope' },
        { source: 'a', target: 'p', targetHandle: 'nope' },
        { source: 'a', target: 'p' },
        { source: 'b', target: 'p' },
      ],
    });
    expect(issues.map((i) => [i.code, i.nodeId, i.path])).toEqual([
      ['duplicate_node_id', 'a', 'nodes[1].id'],
      ['dangling_edge', 'a', 'edges[0]'],
      ['unknown_handle', 'a', 'edges[1].sourceHandle'],
      ['unknown_handle', 'p', 'edges[2].targetHandle'],
      ['too_many_inputs', 'p', 'nodes[3]'],
    ]);
  });

  it('reports a malformed workflow by JSON path and node', () => {
    const err = (() => {
      try {
        assertValidWorkflow({ name: 'x', nodes: [{ id: 'a', type: 'test_pass', config: 'oops' }] }, registry);
      } catch (e) {
        return e as WorkflowValidationError;
      }
    })();
    expect(err).toBeInstanceOf(WorkflowValidationError);
    expect(err!.code).toBe('workflow_invalid');
    expect(err!.issues[0]).toMatchObject({ code: 'invalid_workflow', nodeId: 'a', path: 'nodes[0].config' });
    expect(issuesOf({ nodes: [] })[0].path).toBe('name');
  });

  it('handles a 1,000-node chain', () => {
    const plan = assertValidWorkflow(chainWorkflow(1000), registry);
    expect(plan.order).toHaveLength(1000);
    expect(plan.order[999].id).toBe('n999');
  });
});

describe('node definitions', () => {
  it('rejects a bad type, a duplicate port, a reserved output and a duplicate registration', () => {
    const base = { name: 'x', category: 'test', description: 'x', inputs: [], outputs: [{ name: 'data' }], config: z.object({}), run: () => ({}) };
    expect(() => defineNode({ ...base, type: 'Bad Type' })).toThrow(NodeRegistryError);
    expect(() => defineNode({ ...base, type: 'ok', inputs: [{ name: 'a' }, { name: 'a' }] })).toThrow(/twice/);
    expect(() => defineNode({ ...base, type: 'ok', outputs: [{ name: 'wait' }] })).toThrow(/reserved/);
    const def = defineNode({ ...base, type: 'dup' });
    expect(() => testRegistry().register(def).register(def)).toThrow(/registered twice/);
  });

  it('describes nodes with a JSON Schema of their config', () => {
    const count = testRegistry().describe().find((d) => d.type === 'test_count')!;
    expect(count.configSchema).toMatchObject({ type: 'object', properties: { times: { type: 'integer', maximum: 10, default: 1 } } });
  });
});
