import { describe, expect, it } from 'vitest';
import { estimateCost, resolveEpochs } from './cost.ts';
import { getModel } from './models.ts';

describe('estimateCost', () => {
  it('bills each example up to the limit, times epochs, at the model price', () => {
    const m = getModel('gpt-4o-mini-2024-07-18');
    const c = estimateCost(m, [100, 200, 70_000], 2);
    expect(c).toEqual({ model: 'gpt-4o-mini-2024-07-18', epochs: 2, billed_tokens: (100 + 200 + 65_536) * 2, usd: 0.395 });
  });

  it("resolves 'auto' from the number of training examples", () => {
    const c = estimateCost(getModel('gpt-4.1-nano'), new Array(10).fill(1000), 'auto');
    expect(c).toEqual({ model: 'gpt-4.1-nano-2025-04-14', epochs: 10, billed_tokens: 100_000, usd: 0.15 });
  });

  it('costs nothing on the local model', () => {
    expect(estimateCost(getModel('nodeai-tiny'), [300, 100], 3)).toEqual({ model: 'nodeai-tiny', epochs: 3, billed_tokens: (256 + 100) * 3, usd: 0 });
  });

  it('rejects epochs outside 1..50', () => {
    expect(() => resolveEpochs(0, 10)).toThrow("epochs must be a whole number from 1 to 50 or 'auto', got 0");
    expect(() => resolveEpochs(2.5, 10)).toThrow(/got 2.5/);
  });
});
