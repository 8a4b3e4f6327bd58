// The loss curve of a training job as a terminal chart: training loss as a line (asciichart),
// validation loss as dots on the same axes, so "is it still learning, is it overfitting" is a
// glance rather than a column of numbers.
import { plot } from 'asciichart';

export interface LossPoint {
  step: number;
  train_loss?: number;
  valid_loss?: number;
}

export interface LossChartOptions {
  /** Columns of the plot area (the labels come on top). Default 60. */
  width?: number;
  /** Rows of the plot area. Default 10. */
  height?: number;
  /** ANSI colours (a terminal that shows them). */
  color?: boolean;
}

const LABEL = 8; // "  12.345" — asciichart's label column, then its axis character
const DOT = '•';
const CYAN = '\u001b[36m';
const YELLOW = '\u001b[33m';
const RESET = '\u001b[0m';

/**
 * The chart as lines of text, or null when there is nothing to draw (fewer than two training
 * losses). Steps are grouped into `width` columns; a column shows the mean training loss of its
 * steps and the last validation loss measured in it.
 */
export function lossChart(points: readonly LossPoint[], options: LossChartOptions = {}): string | null {
  const train = points.filter((p) => Number.isFinite(p.train_loss));
  if (train.length < 2) return null;
  const width = Math.max(2, Math.min(options.width ?? 60, train.length));
  const height = Math.max(2, options.height ?? 10);
  const first = train[0].step;
  const last = train[train.length - 1].step;
  // Equal stretches of steps per column.
  const column = (step: number) => Math.min(width - 1, Math.max(0, Math.floor(((step - first) / (last - first + 1)) * width)));

  const sums = new Array<number>(width).fill(0);
  const counts = new Array<number>(width).fill(0);
  for (const p of train) {
    const c = column(p.step);
    sums[c] += p.train_loss!;
    counts[c]++;
  }
  // A column no step fell in (more columns than steps in that stretch) carries the one before it.
  const line: number[] = [];
  for (let c = 0; c < width; c++) line.push(counts[c] ? sums[c] / counts[c] : line[c - 1]);
  const valid = new Map<number, number>();
  for (const p of points) if (Number.isFinite(p.valid_loss)) valid.set(column(p.step), p.valid_loss!);

  const values = [...line, ...valid.values()];
  const min = Math.min(...values);
  const max = Math.max(...values);
  const text = plot(line, {
    offset: 2,
    min,
    max,
    height,
    format: (x: number) => x.toFixed(3).padStart(LABEL),
    ...(options.color ? { colors: [CYAN] } : {}),
  });
  const rows = text.split('\n');
  if (max > min) {
    // asciichart's own mapping of a value to a row, so the dots sit on its axis; with offset 2,
    // point c of the line is drawn c columns right of the axis, which follows the label.
    const ratio = height / (max - min);
    const min2 = Math.round(min * ratio);
    const top = Math.round(max * ratio) - min2;
    for (const [c, v] of valid) {
      const r = top - (Math.round(v * ratio) - min2);
      rows[r] = putAt(rows[r], LABEL + c, options.color ? `${YELLOW}${DOT}${RESET}` : DOT);
    }
  }
  const legend = `${' '.repeat(LABEL)}${options.color ? CYAN : ''}─${options.color ? RESET : ''} training loss   ${options.color ? YELLOW : ''}${DOT}${options.color ? RESET : ''} validation loss   steps ${first}–${last}`;
  return [...rows, legend].join('\n');
}

/** Metrics events' figures (as the job queue stores them) as chart points. */
export function toLossPoints(history: ReadonlyArray<Record<string, unknown>>): LossPoint[] {
  const out: LossPoint[] = [];
  for (const h of history) {
    if (typeof h.step !== 'number') continue;
    out.push({
      step: h.step,
      ...(typeof h.train_loss === 'number' ? { train_loss: h.train_loss } : {}),
      ...(typeof h.valid_loss === 'number' ? { valid_loss: h.valid_loss } : {}),
    });
  }
  return out;
}

/** Colours on a terminal, unless NO_COLOR asks otherwise (no-color.org). */
export function useColor(stream: { isTTY?: boolean } = process.stdout): boolean {
  return Boolean(stream.isTTY) && !process.env.NO_COLOR;
}

/** Replaces the visible character at `col`, skipping ANSI sequences when counting columns. */
function putAt(row: string, col: number, char: string): string {
  let visible = 0;
  for (let i = 0; i < row.length; ) {
    if (row[i] === '\u001b') {
      const end = row.indexOf('m', i);
      i = end < 0 ? row.length : end + 1;
      continue;
    }
    const cp = row.codePointAt(i)!;
    const len = cp > 0xffff ? 2 : 1;
    if (visible === col) return row.slice(0, i) + char + row.slice(i + len);
    visible++;
    i += len;
  }
  return row + ' '.repeat(Math.max(0, col - visible)) + char;
}
