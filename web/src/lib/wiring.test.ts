import { describe, expect, it } from 'vitest';
import type { NodeType } from '../api.ts';
import { connectionProblem, type WireNode } from './wiring.ts';

const type = (name: string, inputs: NodeType['inputs']): NodeType => ({ type: name, name, category: 'x', description: '', inputs, outputs: [{ name: 'data' }], configSchema: {} });
const types = new Map([
  ['file_loader', type('file_loader', [])],
  ['finetune', type('finetune', [{ name: 'data' }])],
  ['chat', type('chat', [{ name: 'data' }, { name: 'prompt' }])],
  ['merge', type('merge', [{ name: 'data', multiple: true }])],
]);
const nodes: WireNode[] = [
  { id: 'load', type: 'file_loader', label: 'File Loader' },
  { id: 'load2', type: 'file_loader', label: 'File Loader 2' },
  { id: 'ft', type: 'finetune', label: 'Fine-Tune' },
  { id: 'chat', type: 'chat', label: 'Chat' },
  { id: 'merge', type: 'merge', label: 'Merge' },
];

describe('connectionProblem', () => {
  it('accepts a fresh edge into a free input', () => {
    expect(connectionProblem({ source: 'load', target: 'ft' }, nodes, [], types)).toBeNull();
    expect(connectionProblem({ source: 'ft', target: 'chat', targetHandle: 'prompt' }, nodes, [{ source: 'load', target: 'chat' }], types)).toBeNull();
  });

  it('refuses an edge into a node that has no inputs', () => {
    expect(connectionProblem({ source: 'ft', target: 'load' }, nodes, [], types)).toMatch(/File Loader takes no input/);
  });

  it('refuses a second edge into a single input, but not into one that takes many', () => {
    const edges = [{ source: 'load', target: 'ft' }];
    expect(connectionProblem({ source: 'load2', target: 'ft' }, nodes, edges, types)).toMatch(/takes one edge and already has one from File Loader/);
    expect(connectionProblem({ source: 'load2', target: 'merge' }, nodes, [{ source: 'load', target: 'merge' }], types)).toBeNull();
  });

  it('refuses loops, direct and through other nodes, and self-edges', () => {
    expect(connectionProblem({ source: 'chat', target: 'ft' }, nodes, [{ source: 'ft', target: 'chat' }], types)).toMatch(/loop/);
    expect(connectionProblem({ source: 'chat', target: 'merge' }, nodes, [{ source: 'merge', target: 'ft' }, { source: 'ft', target: 'chat' }], types)).toMatch(/loop/);
    expect(connectionProblem({ source: 'ft', target: 'ft' }, nodes, [], types)).toMatch(/cannot feed itself/);
  });

  it('refuses an input the node does not have', () => {
    expect(connectionProblem({ source: 'load', target: 'ft', targetHandle: 'nope' }, nodes, [], types)).toMatch(/no input "nope"/);
  });
});
