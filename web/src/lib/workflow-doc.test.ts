import { describe, expect, it } from 'vitest';
import { clipOf, pasteClip } from './clipboard.ts';
import { History } from './history.ts';
import { copyName, fingerprint, parseWorkflowFile, withoutSecrets } from './workflow-doc.ts';

const wf = {
  name: 'Bot',
  nodes: [
    { id: 'a', type: 'file_loader', config: { file_id: 'file-1' }, position: { x: 0, y: 0 } },
    { id: 'b', type: 'finetune', config: { api_key: 'sk-live-123', epochs: 2 }, position: { x: 300, y: 0 } },
    { id: 'c', type: 'chat', config: { api_key: '$secret:OPENAI_API_KEY' }, position: { x: 600, y: 0 } },
  ],
  edges: [
    { source: 'a', target: 'b' },
    { source: 'b', target: 'c' },
  ],
};

describe('workflow documents', () => {
  it('reads a workflow file and says what is wrong with a bad one', () => {
    expect(parseWorkflowFile(JSON.stringify(wf), 'bot.json')).toMatchObject({ name: 'Bot', nodes: wf.nodes, edges: wf.edges });
    expect(parseWorkflowFile(JSON.stringify({ nodes: [], edges: [] }), 'empty.json').name).toBe('empty');
    expect(() => parseWorkflowFile('{nope', 'x.json')).toThrow(/x.json is not JSON/);
    expect(() => parseWorkflowFile('{"nodes": []}', 'x.json')).toThrow(/needs "nodes" and "edges"/);
    expect(() => parseWorkflowFile('{"nodes": [{"id": 1}], "edges": []}', 'x.json')).toThrow(/nodes\[0\] needs a string "id" and "type"/);
  });

  it('drops typed-in keys but keeps vault references', () => {
    const clean = withoutSecrets(wf);
    expect(clean.nodes[1].config).toEqual({ epochs: 2 });
    expect(clean.nodes[2].config).toEqual({ api_key: '$secret:OPENAI_API_KEY' });
    expect(JSON.stringify(clean)).not.toContain('sk-live');
  });

  it('changes its fingerprint on edits, not on key order or sub-pixel moves', () => {
    const same = { ...wf, nodes: wf.nodes.map((n) => ({ ...n, config: Object.fromEntries(Object.entries(n.config).reverse()), position: { x: n.position.x + 0.2, y: n.position.y } })) };
    expect(fingerprint(same)).toBe(fingerprint(wf));
    expect(fingerprint({ ...wf, name: 'Other' })).not.toBe(fingerprint(wf));
    expect(fingerprint({ ...wf, edges: wf.edges.slice(1) })).not.toBe(fingerprint(wf));
  });

  it('names copies without clashing', () => {
    expect(copyName('Bot', [])).toBe('Bot (copy)');
    expect(copyName('Bot (copy)', ['Bot (copy)'])).toBe('Bot (copy 2)');
  });
});

describe('clipboard', () => {
  it('pastes the selected nodes and the edges among them under new ids', () => {
    let n = 0;
    const clip = clipOf(wf, new Set(['a', 'b']));
    expect(clip.edges).toEqual([{ source: 'a', target: 'b' }]);
    const pasted = pasteClip(clip, (type) => `${type}-${n++}`);
    expect(pasted.nodes.map((x) => x.id)).toEqual(['file_loader-0', 'finetune-1']);
    expect(pasted.edges).toEqual([{ source: 'file_loader-0', target: 'finetune-1' }]);
    expect(pasted.nodes[1].position).toEqual({ x: 340, y: 40 });
    pasted.nodes[0].config.file_id = 'changed';
    expect(wf.nodes[0].config.file_id).toBe('file-1');
  });
});

describe('History', () => {
  it('undoes and redoes, and a new change clears the redo list', () => {
    const h = new History<number>();
    h.record(1);
    h.record(2);
    expect(h.undo(3)).toBe(2);
    expect(h.undo(2)).toBe(1);
    expect(h.undo(1)).toBeUndefined();
    expect(h.redo(1)).toBe(2);
    h.record(2);
    expect(h.canRedo).toBe(false);
  });
});
