import { describe, expect, it } from 'vitest';
import { autoBatchSize, autoEpochs, autoLearningRate, autoLoraRank, FULL_FINE_TUNING, loraRankOf } from './auto-hyperparameters.ts';
import { estimateCost } from './cost.ts';
import { getModel } from './models.ts';

describe('autoEpochs (the cookbook rule)', () => {
  it.each([
    [1, 25],
    [4, 25],
    [5, 20],
    [10, 10],
    [33, 4],
    [34, 3],
    [100, 3],
    [8333, 3],
    [8334, 2],
    [12_500, 2],
    [25_001, 1],
    [1_000_000, 1],
  ])('%i examples → %i epochs', (n, epochs) => expect(autoEpochs(n)).toBe(epochs));
});

describe('autoLearningRate', () => {
  it.each([
    [1e6, false, 3e-3],
    [1e6, true, 3e-3],
    [50e6, false, 3e-4],
    [50e6, true, 1e-3],
    [500e6, false, 5e-5],
    [7e9, false, 2e-5],
    [7e9, true, 2e-4],
  ])('%d parameters, LoRA %s → %d', (parameters, lora, rate) => expect(autoLearningRate(parameters, lora)).toBe(rate));
});

describe('autoBatchSize', () => {
  const small = { vocabSize: 256, embeddingLength: 64, blockCount: 2 };
  it('grows with the data up to 8 rows, in powers of two', () => {
    expect(autoBatchSize(5, small, 64)).toBe(1);
    expect(autoBatchSize(24, small, 64)).toBe(4);
    expect(autoBatchSize(10_000, small, 64)).toBe(8);
  });
  it('shrinks when the logits of a large vocabulary would not fit', () => {
    expect(autoBatchSize(10_000, { vocabSize: 150_000, embeddingLength: 2048, blockCount: 28 }, 2048)).toBe(1);
  });
});

describe('LoRA rank', () => {
  it('trains every weight of a small base and an adapter of rank 8 on a real one', () => {
    expect(autoLoraRank(1e6)).toBe(FULL_FINE_TUNING);
    expect(autoLoraRank(500e6)).toBe(8);
  });
  it('reads rank 0 as full fine-tuning', () => {
    expect(loraRankOf(0)).toBeUndefined();
    expect(loraRankOf(undefined)).toBeUndefined();
    expect(loraRankOf(16)).toBe(16);
  });
});

describe('the cost estimate and the trainer share the epochs rule', () => {
  it("bills the epochs autoEpochs gives for 'auto'", () => {
    expect(estimateCost(getModel('gpt-4.1-nano'), new Array(10).fill(1000), 'auto').epochs).toBe(autoEpochs(10));
  });
});
