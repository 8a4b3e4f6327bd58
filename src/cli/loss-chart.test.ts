import { describe, expect, it } from 'vitest';
import { lossChart, toLossPoints } from './loss-chart.ts';

const strip = (s: string) => s.replace(new RegExp(String.fromCharCode(27) + '\\[\\d+m', 'g'), '');

describe('lossChart', () => {
  it('draws falling training loss from the top-left to the bottom-right, with the labels of its range', () => {
    const points = Array.from({ length: 40 }, (_, i) => ({ step: 5 * i + 1, train_loss: 4 - (3 * i) / 39 }));
    const chart = lossChart(points, { width: 40, height: 8 })!;
    const rows = chart.split('\n');
    expect(rows).toHaveLength(9 + 1); // height + 1 rows, then the legend
    expect(rows[0]).toMatch(/^ {3}4\.000/);
    expect(rows[8]).toMatch(/^ {3}1\.000/);
    // the line starts on the top row at the axis and ends on the bottom row in the last column
    expect(rows[0][8]).toBe('┼');
    expect([...rows[8]].length).toBeLessThanOrEqual(8 + 1 + 40);
    expect(rows[8].trimEnd().at(-1)).toMatch(/[─╰╯]/);
    expect(rows[9]).toContain('─ training loss');
    expect(rows[9]).toContain('steps 1–196');
  });

  it('averages the steps that share a column', () => {
    const points = Array.from({ length: 100 }, (_, i) => ({ step: i + 1, train_loss: i % 2 ? 1 : 3 }));
    const rows = lossChart(points, { width: 10, height: 2 })!.split('\n');
    // zig-zag steps averaged per column: a flat line at 2, not a saw
    expect(rows[0]).toMatch(/^ {3}2\.000┼─{9} $/);
    expect(rows).toHaveLength(2);
  });

  it('puts each validation loss as a dot on its row, in the column of its step', () => {
    const points = [
      ...Array.from({ length: 50 }, (_, i) => ({ step: i + 1, train_loss: 3 - i / 49 })),
      { step: 1, valid_loss: 3 },
      { step: 50, valid_loss: 2.5 },
    ];
    const rows = lossChart(points, { width: 50, height: 4 })!.split('\n');
    // rows span 3.0 … 2.0 in steps of 0.25: 3.0 is row 0, 2.5 is row 2
    expect([...rows[0]][8]).toBe('•');
    expect([...rows[2]][8 + 49]).toBe('•');
    expect(rows.slice(0, 5).join('').split('•')).toHaveLength(3);
  });

  it('colours only when asked, and nothing to draw is null', () => {
    const points = [
      { step: 1, train_loss: 2 },
      { step: 2, train_loss: 1, valid_loss: 1.5 },
    ];
    expect(lossChart(points)).not.toContain('\u001b[');
    const coloured = lossChart(points, { color: true })!;
    expect(coloured).toContain('\u001b[36m');
    expect(strip(coloured)).toBe(lossChart(points));
    expect(lossChart([{ step: 1, train_loss: 2 }])).toBeNull();
    expect(lossChart([])).toBeNull();
  });

  it('reads the job queue\'s metrics figures, skipping what is not a step', () => {
    expect(toLossPoints([{ step: 3, train_loss: 1.5, eta_seconds: 4 }, { step: 4, valid_loss: 1.2 }, { train_loss: 9 }])).toEqual([
      { step: 3, train_loss: 1.5 },
      { step: 4, valid_loss: 1.2 },
    ]);
  });
});
