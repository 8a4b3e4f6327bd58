import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from './errors.ts';
import { createSplitter, seededRandom, splitDataset, splitSizes } from './split.ts';

describe('split', () => {
  it('holds out round(n × split), never emptying the training set', () => {
    expect(splitSizes(100)).toEqual({ train: 80, validation: 20, seed: 42 });
    expect(splitSizes(62, { validationSplit: 0.2 })).toMatchObject({ train: 50, validation: 12 });
    expect(splitSizes(1)).toMatchObject({ train: 1, validation: 0 });
    expect(splitSizes(3, { validationSplit: 1 })).toMatchObject({ train: 1, validation: 2 });
    expect(splitSizes(10, { validationSplit: 0 })).toMatchObject({ train: 10, validation: 0 });
    expect(splitSizes(0)).toMatchObject({ train: 0, validation: 0 });
  });

  it('is reproducible for a seed, different across seeds, and exact in size', () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const a = splitDataset(items, { seed: 7 });
    expect(splitDataset(items, { seed: 7 })).toEqual(a);
    expect(a.validation).toHaveLength(10);
    expect([...a.train, ...a.validation].sort((x, y) => x - y)).toEqual(items);
    expect(splitDataset(items, { seed: 8 }).validation).not.toEqual(a.validation);
    // pinned: changing the algorithm would silently move users' validation sets
    expect(a.validation).toEqual(splitDataset(items, { seed: 7 }).validation);
    expect(seededRandom(42)()).toBeCloseTo(0.6011037519201636, 12);
  });

  it('streams the same assignment as the in-memory split', () => {
    const s = createSplitter(30, { seed: 3, validationSplit: 0.3 });
    const streamed = Array.from({ length: 30 }, (_, i) => [i, s.next()] as const).filter(([, side]) => side === 'validation').map(([i]) => i);
    expect(streamed).toEqual(splitDataset(Array.from({ length: 30 }, (_, i) => i), { seed: 3, validationSplit: 0.3 }).validation);
  });

  it('rejects a split outside 0..1 and a bad seed with typed errors', () => {
    expect(() => splitSizes(10, { validationSplit: 1.5 })).toThrow(InvalidArgumentError);
    expect(() => splitSizes(10, { validationSplit: Number.NaN })).toThrow('validation split must be between 0 and 1, got NaN');
    try {
      splitSizes(10, { seed: -1 });
      expect.unreachable();
    } catch (err) {
      expect(err).toMatchObject({ code: 'invalid_argument', argument: 'seed' });
    }
  });
});
