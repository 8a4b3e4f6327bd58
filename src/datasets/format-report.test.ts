import { describe, expect, it } from 'vitest';
import { sparkline } from './format-report.ts';

describe('sparkline', () => {
  it('draws a bar per bin, the fullest tallest and empty bins blank, between the edges', () => {
    expect(sparkline({ edges: [100, 110, 120, 130, 140], counts: [1, 8, 0, 4] })).toBe('100 ▁█ ▄ 140 tokens (4 bins of 10)');
  });
});
