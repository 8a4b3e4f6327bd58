export interface Distribution {
  min: number;
  max: number;
  mean: number;
  median: number;
  p10: number;
  p90: number;
}

/**
 * Counts of integer values in bins of one "round" width (1, 2 or 5 × a power of ten), so the
 * edges read well on an axis: bin i holds the values v with edges[i] <= v < edges[i + 1].
 */
export interface Histogram {
  edges: number[];
  counts: number[];
}

/** A histogram of `values` in at most `maxBins` round-width bins; null when there are none. */
export function histogram(values: Int32Array, maxBins = 20): Histogram | null {
  if (values.length === 0) return null;
  let min = values[0];
  let max = values[0];
  for (let i = 1; i < values.length; i++) {
    if (values[i] < min) min = values[i];
    else if (values[i] > max) max = values[i];
  }
  // The narrowest round width whose bins, aligned to it, cover min..max in at most maxBins.
  let width = 1;
  for (let scale = 1; ; scale *= 10) {
    const fits = [1, 2, 5].map((m) => m * scale).find((w) => Math.ceil((max + 1 - Math.floor(min / w) * w) / w) <= maxBins);
    if (fits !== undefined) {
      width = fits;
      break;
    }
  }
  const start = Math.floor(min / width) * width;
  const bins = Math.ceil((max + 1 - start) / width);
  const counts = new Array<number>(bins).fill(0);
  for (let i = 0; i < values.length; i++) counts[Math.floor((values[i] - start) / width)]++;
  return { edges: Array.from({ length: bins + 1 }, (_, i) => start + i * width), counts };
}

/** A growable Int32Array: a million counts take 4 MB instead of a boxed-number array's ~16+. */
export class IntList {
  private data = new Int32Array(1024);
  length = 0;
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Int32Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  get(i: number): number {
    return this.data[i];
  }
  view(): Int32Array {
    return this.data.subarray(0, this.length);
  }
}

/** Quantile with linear interpolation between closest ranks (numpy's default, as the cookbook uses). */
function quantile(sorted: Int32Array | Float64Array, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function distribution(values: Int32Array): Distribution | null {
  if (values.length === 0) return null;
  const sorted = Int32Array.from(values).sort();
  let sum = 0;
  for (let i = 0; i < sorted.length; i++) sum += sorted[i];
  return {
    min: sorted[0],
    max: sorted[sorted.length - 1],
    mean: sum / sorted.length,
    median: quantile(sorted, 0.5),
    p10: quantile(sorted, 0.1),
    p90: quantile(sorted, 0.9),
  };
}
