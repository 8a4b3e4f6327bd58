import type { DatasetReport } from './check.ts';
import { severityOf, type DatasetIssue, type IssueCode } from './issues.ts';
import type { Distribution, Histogram } from './stats.ts';

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const num = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 1 });

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GB`;
}

function usd(n: number): string {
  if (n === 0) return '$0.00';
  if (n < 0.01) return `$${n.toFixed(4)}`;
  return `$${n.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

function table(rows: Array<[string, Distribution | null]>): string[] {
  const head = ['', 'min', 'p10', 'median', 'mean', 'p90', 'max'];
  const body = rows.filter((r): r is [string, Distribution] => r[1] !== null).map(([name, d]) => [name, num(d.min), num(d.p10), num(d.median), num(d.mean), num(d.p90), num(d.max)]);
  const all = [head, ...body];
  const widths = head.map((_, c) => Math.max(...all.map((r) => r[c].length)));
  return all.map((r) => '  ' + r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('   ').trimEnd());
}

function issueLines(list: DatasetIssue[], shown: number): string[] {
  const items = list.slice(0, shown);
  const where = items.map((i) => (i.line === null ? 'file' : `line ${i.line}`));
  const wWhere = Math.max(0, ...where.map((s) => s.length));
  const wCode = Math.max(0, ...items.map((i) => i.code.length));
  const out: string[] = [];
  items.forEach((i, k) => {
    out.push(`  ${where[k].padEnd(wWhere)}  ${i.code.padEnd(wCode)}  ${i.path ? `${i.path}: ` : ''}${i.message}`);
    out.push(`  ${' '.repeat(wWhere)}  → ${i.hint}`);
  });
  return out;
}

function section(title: string, severity: 'error' | 'warning', list: DatasetIssue[], total: number, counts: DatasetReport['issue_counts'], shown: number): string[] {
  if (total === 0) return [];
  const out = ['', `${title} (${int(total)})`, ...issueLines(list, shown)];
  const hidden = total - Math.min(shown, list.length);
  if (hidden > 0) {
    const listed = new Map<string, number>();
    for (const i of list.slice(0, shown)) listed.set(i.code, (listed.get(i.code) ?? 0) + 1);
    const rest = Object.entries(counts)
      .filter(([code]) => (severityOf(code as IssueCode) === severity))
      .map(([code, n]) => [code, (n ?? 0) - (listed.get(code) ?? 0)] as const)
      .filter(([, n]) => n > 0)
      .map(([code, n]) => `${code} ${int(n)}`);
    out.push(`  … and ${int(hidden)} more (${rest.join(', ')}); --json lists the first ones with their lines`);
  }
  return out;
}

export interface FormatOptions {
  /** Issues of each kind printed in full. Default 20. */
  shown?: number;
}

const BLOCKS = '▁▂▃▄▅▆▇█';

/** Tokens per example in one line: a bar per histogram bin, tallest for the fullest, blank for none. */
export function sparkline(h: Histogram): string {
  const top = Math.max(...h.counts);
  const bars = h.counts.map((c) => (c === 0 ? ' ' : BLOCKS[Math.min(BLOCKS.length - 1, Math.floor((c / top) * BLOCKS.length - 1e-9))])).join('');
  return `${int(h.edges[0])} ${bars} ${int(h.edges[h.edges.length - 1])} tokens (${h.counts.length} bins of ${int(h.edges[1] - h.edges[0])})`;
}

/** The report as a person reads it in a terminal: aligned columns and one verdict line at the end. */
export function formatReport(r: DatasetReport, options: FormatOptions = {}): string {
  const shown = options.shown ?? 20;
  const out: string[] = [];
  out.push(r.file ?? '(data)');
  const fmt = r.format ? `${r.format} · ${r.file_type.toUpperCase()}` : r.file_type.toUpperCase();
  const rows: Array<[string, string]> = [
    ['Format', `${fmt} · ${size(r.bytes)}`],
    ['Examples', `${int(r.examples)} read · ${int(r.valid_examples)} valid`],
  ];
  if (r.messages_per_example) {
    const m = r.messages_per_example;
    rows.push(['Messages', `${num(m.min)}–${num(m.max)} per example (mean ${num(m.mean)})`]);
  }
  rows.push(['Split', `${int(r.split.train)} train · ${int(r.split.validation)} validation (${Math.round(r.split.validation_split * 100)}%, seed ${r.split.seed})`]);
  if (r.cost && r.tokens) {
    const c = r.cost;
    const perEpoch = c.epochs ? c.billed_tokens / c.epochs : 0;
    rows.push(['Cost', `${c.model} · ${c.epochs} epoch${c.epochs === 1 ? '' : 's'} × ${int(perEpoch)} tokens = ${int(c.billed_tokens)} billed tokens · ${usd(c.usd)}${c.usd === 0 ? ' (trains locally)' : ''}`]);
  }
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) out.push(`  ${k.padEnd(w)}   ${v}`);

  if (r.tokens) {
    const t = r.tokens;
    out.push('', `Tokens (${t.model} · ${t.tokenizer} tokenizer · limit ${int(t.limit)} per example)`);
    out.push(...table([['per example', t.per_example], ['assistant', t.assistant_per_example]]));
    if (t.per_example_histogram && t.per_example_histogram.counts.length > 1) out.push(`  histogram     ${sparkline(t.per_example_histogram)}`);
    out.push(`  total ${int(t.total)} tokens · ${int(t.over_limit)} example${t.over_limit === 1 ? '' : 's'} over the limit`);
  }
  out.push(...section('Errors', 'error', r.errors, r.error_count, r.issue_counts, shown));
  out.push(...section('Warnings', 'warning', r.warnings, r.warning_count, r.issue_counts, shown));
  out.push('');
  const warn = `${int(r.warning_count)} warning${r.warning_count === 1 ? '' : 's'}`;
  if (r.trainable) out.push(`✓ Ready to train: ${int(r.valid_examples)} examples, no errors, ${warn}.`);
  else out.push(`✗ Not trainable: ${int(r.error_count)} error${r.error_count === 1 ? '' : 's'}, ${warn}. Fix the errors and run the check again.`);
  return out.join('\n');
}
