import { InvalidArgumentError } from './errors.ts';

export const DEFAULT_VALIDATION_SPLIT = 0.2;
/** The largest share a user may hold out: a fine-tune needs examples left to train on. */
export const MAX_VALIDATION_SPLIT = 0.99;
export const DEFAULT_SEED = 42;

export interface SplitOptions {
  /** Share of examples held out for validation, 0..1. */
  validationSplit?: number;
  seed?: number;
}

export interface SplitSizes {
  train: number;
  validation: number;
  seed: number;
}

/** mulberry32: tiny, fast, and the same sequence on every platform for a given seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function checkSplitOptions(o: SplitOptions): { validationSplit: number; seed: number } {
  const validationSplit = o.validationSplit ?? DEFAULT_VALIDATION_SPLIT;
  const seed = o.seed ?? DEFAULT_SEED;
  if (!(validationSplit >= 0 && validationSplit <= 1)) {
    throw new InvalidArgumentError('validationSplit', `validation split must be between 0 and 1, got ${validationSplit}`, 'Use e.g. 0.2 to hold out 20% of the examples');
  }
  if (!Number.isSafeInteger(seed) || seed < 0) throw new InvalidArgumentError('seed', `seed must be a whole number ≥ 0, got ${seed}`);
  return { validationSplit, seed };
}

/** How many examples go to each side; the training set is never left empty. */
export function splitSizes(count: number, options: SplitOptions = {}): SplitSizes {
  const { validationSplit, seed } = checkSplitOptions(options);
  let validation = Math.round(count * validationSplit);
  if (validation >= count) validation = Math.max(0, count - 1);
  return { train: count - validation, validation, seed };
}

/**
 * A reproducible split of `count` examples that streams: call `next()` once per example, in file
 * order, and it says where that example goes. Selection sampling (Knuth's Algorithm S) picks
 * exactly `validation` of them, each subset equally likely, from the seed alone — so `data check`
 * and `data convert` agree without keeping the examples.
 */
export function createSplitter(count: number, options: SplitOptions = {}): SplitSizes & { next(): 'train' | 'validation' } {
  const sizes = splitSizes(count, options);
  const random = seededRandom(sizes.seed);
  let seen = 0;
  let picked = 0;
  return {
    ...sizes,
    next() {
      const left = count - seen++;
      if (left <= 0) return 'train';
      if (random() * left < sizes.validation - picked) {
        picked++;
        return 'validation';
      }
      return 'train';
    },
  };
}

/** Splits items that fit in memory (tests, small uploads) the same way the streaming splitter does. */
export function splitDataset<T>(items: readonly T[], options: SplitOptions = {}): { train: T[]; validation: T[]; seed: number } {
  const s = createSplitter(items.length, options);
  const train: T[] = [];
  const validation: T[] = [];
  for (const item of items) (s.next() === 'train' ? train : validation).push(item);
  return { train, validation, seed: s.seed };
}
