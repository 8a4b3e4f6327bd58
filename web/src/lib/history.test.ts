import { describe, expect, it } from 'vitest';
import { UndoRecorder } from './history.ts';

const recorder = () => new UndoRecorder<string>((a, b) => a === b);

describe('UndoRecorder', () => {
  it('makes a burst of edits one step, and undoes and redoes it', () => {
    const r = recorder();
    r.changed('empty');
    r.edit();
    expect(r.changed('a')).toBe(true);
    expect(r.changed('ab')).toBe(true); // the same burst: typing on
    r.settle('ab');
    expect(r.undo('ab')).toBe('empty');
    expect(r.undo('empty')).toBeUndefined();
    expect(r.redo('empty')).toBe('ab');
  });

  it('takes changes that are not edits into the baseline, however late they come', () => {
    const r = recorder();
    r.changed('empty');
    // A draft restored after a reload, then a late server response changing the drawing.
    expect(r.changed('restored')).toBe(false);
    expect(r.changed('restored+late')).toBe(false);
    expect(r.undo('restored+late')).toBeUndefined();
    // An edit right after them, before anything settled, still has its step.
    r.edit();
    r.changed('restored+late+node');
    expect(r.undo('restored+late+node')).toBe('restored+late');
  });

  it('does not make the undone drawing, drawn again, a step of its own', () => {
    const r = recorder();
    r.changed('one');
    r.edit();
    r.changed('two');
    r.settle('two');
    r.edit();
    r.changed('three');
    const back = r.undo('three')!;
    expect(back).toBe('two');
    expect(r.changed(back)).toBe(false); // the canvas redraws it: no new step, redo still there
    expect(r.undo('two')).toBe('one');
    expect(r.redo('one')).toBe('two');
    expect(r.redo('two')).toBe('three');
  });

  it('starts a new document without steps', () => {
    const r = recorder();
    r.changed('one');
    r.edit();
    r.changed('two');
    r.reset('other');
    expect(r.undo('other')).toBeUndefined();
  });
});
