import { InvalidArgumentError } from './errors.ts';
import { autoEpochs } from './auto-hyperparameters.ts';
import type { ModelInfo } from './models.ts';

export type Epochs = number | 'auto';

/** The most epochs a job may ask for (OpenAI's limit); FineTuneRequest's range uses it too. */
export const MAX_EPOCHS = 50;

export function resolveEpochs(epochs: Epochs | undefined, examples: number): number {
  if (epochs === undefined || epochs === 'auto') return autoEpochs(examples);
  if (!Number.isInteger(epochs) || epochs < 1 || epochs > MAX_EPOCHS) throw new InvalidArgumentError('epochs', `epochs must be a whole number from 1 to ${MAX_EPOCHS} or 'auto', got ${epochs}`);
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
