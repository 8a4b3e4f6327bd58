import { describe, expect, it } from 'vitest';
import { distribution, IntList } from './stats.ts';

describe('distribution', () => {
  it('matches numpy (linear interpolation) on a known set', () => {
    // numpy: quantile([1,2,3,4,10], [.1,.5,.9]) = [1.4, 3, 7.6]
    const d = distribution(Int32Array.from([10, 3, 1, 4, 2]));
    expect(d).toMatchObject({ min: 1, max: 10, mean: 4, median: 3 });
    expect(d?.p10).toBeCloseTo(1.4, 10);
    expect(d?.p90).toBeCloseTo(7.6, 10);
    expect(distribution(new Int32Array(0))).toBeNull();
    expect(distribution(Int32Array.from([5]))).toEqual({ min: 5, max: 5, mean: 5, median: 5, p10: 5, p90: 5 });
  });

  it('grows an IntList past its first block', () => {
    const l = new IntList();
    for (let i = 0; i < 5000; i++) l.push(i);
    expect(l.length).toBe(5000);
    expect(l.view()[4999]).toBe(4999);
    expect(distribution(l.view())?.median).toBe(2499.5);
  });
});
