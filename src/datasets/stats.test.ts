import { describe, expect, it } from 'vitest';
import { distribution, histogram, IntList } from './stats.ts';

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

describe('histogram', () => {
  it('counts every value once, in round-width bins that start at or below the smallest', () => {
    const values = Int32Array.from([12, 13, 19, 20, 47, 95, 95, 101]);
    const h = histogram(values)!;
    // 12..101 in at most 20 bins: width 5 (width 2 would need 46), aligned to 10.
    expect(h.edges[1] - h.edges[0]).toBe(5);
    expect(h.edges[0]).toBe(10);
    expect(h.edges.at(-1)).toBe(105);
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(values.length);
    expect(h.counts[0]).toBe(2); // 12, 13
    expect(h.counts[1]).toBe(1); // 19
    expect(h.counts[2]).toBe(1); // 20
    expect(h.counts.at(-1)).toBe(1); // 101
    expect(h.counts.at(-2)).toBe(2); // 95, 95
  });

  it('keeps to the bin limit over large and narrow ranges alike', () => {
    const wide = histogram(Int32Array.from([0, 7, 1999, 123_456]), 12)!;
    expect(wide.counts.length).toBeLessThanOrEqual(12);
    expect(wide.edges.length).toBe(wide.counts.length + 1);
    expect(wide.edges[1] - wide.edges[0]).toBe(20_000);
    expect(wide.counts).toEqual([3, 0, 0, 0, 0, 0, 1]);
    expect(histogram(Int32Array.from([7, 7, 7]))).toEqual({ edges: [7, 8], counts: [3] });
    expect(histogram(new Int32Array(0))).toBeNull();
  });
});
