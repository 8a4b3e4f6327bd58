import { InvalidArgumentError } from './errors.ts';
import type { ModelInfo } from './models.ts';

// OpenAI's 'auto' epochs, as its cookbook computes them: aim for 3 passes, but at least ~100
// example-passes for small sets and at most ~25,000 for large ones, within 1..25 epochs.
const TARGET_EPOCHS = 3;
const MIN_TARGET_EXAMPLES = 100;
const MAX_TARGET_EXAMPLES = 25_000;
const MIN_DEFAULT_EPOCHS = 1;
const MAX_DEFAULT_EPOCHS = 25;

export function autoEpochs(examples: number): number {
  if (examples <= 0) return TARGET_EPOCHS;
  if (examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES) return Math.min(MAX_DEFAULT_EPOCHS, Math.ceil(MIN_TARGET_EXAMPLES / examples));
  if (examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES) return Math.max(MIN_DEFAULT_EPOCHS, Math.floor(MAX_TARGET_EXAMPLES / examples));
  return TARGET_EPOCHS;
}

export type Epochs = number | 'auto';

export function resolveEpochs(epochs: Epochs | undefined, examples: number): number {
  if (epochs === undefined || epochs === 'auto') return autoEpochs(examples);
  if (!Number.isInteger(epochs) || epochs < 1 || epochs > 50) throw new InvalidArgumentError('epochs', `epochs must be a whole number from 1 to 50 or 'auto', got ${epochs}`);
  return epochs;
}

export interface CostEstimate {
  model: string;
  epochs: number;
  /** Σ min(limit, tokens) over the training examples, times epochs. */
  billed_tokens: number;
  usd: number;
}

/**
 * What training will cost: each example bills up to the model's token limit (longer ones are
 * truncated), once per epoch. `tokensPerExample` holds the training examples' totals.
 */
export function estimateCost(model: ModelInfo, tokensPerExample: ArrayLike<number>, epochs?: Epochs): CostEstimate {
  const n = tokensPerExample.length;
  const e = resolveEpochs(epochs, n);
  let perEpoch = 0;
  for (let i = 0; i < n; i++) perEpoch += Math.min(model.tokenLimit, tokensPerExample[i]);
  const billed = perEpoch * e;
  return { model: model.id, epochs: e, billed_tokens: billed, usd: Math.round((billed / 1_000_000) * model.trainingPricePer1M * 10_000) / 10_000 };
}
