import { describe, expect, it } from 'vitest';
import { placeIssue, plainWords } from './issues.ts';

const labels: Record<string, string> = { 'finetune-mx2py5pb1': 'Fine-Tune', 'file-loader-ab12': 'File Loader' };
const labelOf = (id: string) => labels[id] ?? id;

describe('placeIssue', () => {
  it('puts a config problem on its field, in plain words, with the node label', () => {
    const placed = placeIssue(
      { code: 'invalid_config', node_id: 'finetune-mx2py5pb1', path: 'nodes[1].config.epochs', message: 'Node "finetune-mx2py5pb1" (finetune): config.epochs: Too small: expected number to be >=1.' },
      labelOf,
    );
    expect(placed).toEqual({ nodeId: 'finetune-mx2py5pb1', field: 'epochs', short: 'must be at least 1', text: 'Fine-Tune: Epochs must be at least 1.' });
  });

  it('names nodes by label in wiring problems', () => {
    const placed = placeIssue({ code: 'cycle', node_id: 'finetune-mx2py5pb1', message: 'The workflow has a cycle: "finetune-mx2py5pb1" → "file-loader-ab12" → "finetune-mx2py5pb1". Remove one of these edges.' }, labelOf);
    expect(placed.text).toBe('Fine-Tune: The workflow has a cycle: Fine-Tune → File Loader → Fine-Tune. Remove one of these edges.');
    const missing = placeIssue({ code: 'missing_input', node_id: 'finetune-mx2py5pb1', path: 'nodes[1]', message: 'Node "finetune-mx2py5pb1" (finetune) needs its input "data" connected; add an edge into it.' }, labelOf);
    expect(missing.text).toBe('Fine-Tune needs its input "data" connected; add an edge into it.');
  });

  it('keeps a refine message of the node as a sentence on the node', () => {
    const placed = placeIssue({ code: 'invalid_config', node_id: 'file-loader-ab12', path: 'nodes[0].config', message: 'Node "file-loader-ab12" (file_loader): config: set exactly one of "file_id" (an uploaded file) or "path".' }, labelOf);
    expect(placed.field).toBeNull();
    expect(placed.text).toBe('File Loader: Set exactly one of "file_id" (an uploaded file) or "path".');
  });
});

describe('plainWords', () => {
  it('rewrites zod wording', () => {
    expect(plainWords('Too big: expected number to be <=50')).toBe('must be at most 50');
    expect(plainWords('Invalid input: expected number, received string')).toBe('must be a number');
    expect(plainWords('use letters, digits, spaces, "_" or "-"')).toBe('use letters, digits, spaces, "_" or "-"');
  });
});
