// The data check of a File Loader's file (POST /api/v1/files/:id/check), shown before anything
// trains: how many examples, the format, every issue with its line, code and hint (filterable),
// tokens per example (a histogram), the train/validation split and what training would cost.
import { useMemo, useState } from 'react';
import type { DataIssue, DataReport } from './api.ts';

export function DataPanel({ report, error, note, checking }: { report: DataReport | null; error: string | null; note?: string; checking: boolean }) {
  const [filter, setFilter] = useState('');
  const [severity, setSeverity] = useState<'all' | 'error' | 'warning'>('all');
  const issues = useMemo(() => {
    const all: DataIssue[] = report ? [...report.errors, ...report.warnings] : [];
    const needle = filter.trim().toLowerCase();
    return all.filter((i) => (severity === 'all' || i.severity === severity) && (!needle || `${i.line !== null ? `line ${i.line}` : 'file'} ${i.code} ${i.message} ${i.hint}`.toLowerCase().includes(needle)));
  }, [report, filter, severity]);

  if (checking) return <section className="data-panel" aria-label="Data check"><h2>Data check</h2><p className="hint">Checking the file…</p></section>;
  if (error) return <section className="data-panel" aria-label="Data check"><h2>Data check</h2><p className="error">{error}</p></section>;
  if (!report) return null;
  const total = report.error_count + report.warning_count;
  return (
    <section className="data-panel" aria-label="Data check" data-testid="data-panel">
      <h2>
        Data check <span className={`badge ${report.trainable ? 'succeeded' : 'failed'}`}>{report.trainable ? 'ready to train' : 'cannot train yet'}</span>
      </h2>
      <dl className="facts">
        <dt>Examples</dt>
        <dd data-testid="data-examples">
          {report.valid_examples.toLocaleString()} valid of {report.examples.toLocaleString()}
        </dd>
        <dt>Format</dt>
        <dd>{report.format ?? 'unknown'}</dd>
        <dt>Split</dt>
        <dd>
          {report.split.train.toLocaleString()} training · {report.split.validation.toLocaleString()} validation ({Math.round(report.split.validation_split * 100)}%)
        </dd>
        {report.tokens && (
          <>
            <dt>Tokens</dt>
            <dd>
              {report.tokens.total.toLocaleString()} in all ({report.tokens.model}); {report.tokens.over_limit > 0 ? `${report.tokens.over_limit} over the ${report.tokens.limit.toLocaleString()} limit` : `none over the ${report.tokens.limit.toLocaleString()} limit`}
            </dd>
          </>
        )}
        {(report.cost || note) && (
          <>
            <dt>Cost</dt>
            <dd data-testid="data-cost">
              {note ?? (report.cost && `${report.cost.usd === 0 ? 'free (trains on this machine)' : `about $${report.cost.usd.toFixed(2)}`} · ${report.cost.billed_tokens.toLocaleString()} tokens over ${report.cost.epochs} epochs (${report.cost.model})`)}
            </dd>
          </>
        )}
      </dl>
      {report.tokens && <TokenHistogram tokens={report.tokens} />}
      <h3>
        Issues ({report.error_count} errors, {report.warning_count} warnings)
      </h3>
      {total > 0 && (
        <div className="filters">
          <input aria-label="Filter issues" placeholder="Filter by text, code or line" value={filter} onChange={(e) => setFilter(e.target.value)} />
          <select aria-label="Issue severity" value={severity} onChange={(e) => setSeverity(e.target.value as typeof severity)}>
            <option value="all">All</option>
            <option value="error">Errors</option>
            <option value="warning">Warnings</option>
          </select>
        </div>
      )}
      <ul className="data-issues" tabIndex={0} aria-label="Data issues">
        {issues.map((i, n) => (
          <li key={n} className={i.severity}>
            <span className="where">{i.line !== null ? `line ${i.line}` : 'file'}</span> <code>{i.code}</code> {i.message}
            {i.path ? <> ({i.path})</> : null}
            <br />
            <span className="hint">{i.hint}</span>
          </li>
        ))}
      </ul>
      {total > report.errors.length + report.warnings.length && <p className="hint">The first {report.errors.length + report.warnings.length} issues are listed; fix them and check again for the rest.</p>}
    </section>
  );
}

/**
 * Tokens per example as a bar chart of the check's histogram: where the lengths lie, and how far
 * the longest stray from the rest. Each bar names its range and count for hover and screen readers.
 */
function TokenHistogram({ tokens }: { tokens: NonNullable<DataReport['tokens']> }) {
  const h = tokens.per_example_histogram;
  const d = tokens.per_example;
  if (!h || !d) return null;
  const top = Math.max(1, ...h.counts);
  const range = (i: number) => (h.edges[i + 1] - h.edges[i] === 1 ? `${h.edges[i]}` : `${h.edges[i].toLocaleString()}–${(h.edges[i + 1] - 1).toLocaleString()}`);
  return (
    <figure className="histogram" data-testid="token-histogram">
      <figcaption>
        Tokens per example: median {Math.round(d.median).toLocaleString()}, 90% up to {Math.round(d.p90).toLocaleString()}, longest {d.max.toLocaleString()}
        {d.max > tokens.limit ? ` (limit ${tokens.limit.toLocaleString()})` : ''}
      </figcaption>
      <ol className="bars" aria-label="Examples by tokens">
        {h.counts.map((count, i) => {
          const label = `${range(i)} tokens: ${count.toLocaleString()} example${count === 1 ? '' : 's'}`;
          return (
            <li key={i} title={label} className={h.edges[i] >= tokens.limit ? 'over' : ''}>
              <span aria-hidden="true" style={{ height: `${count === 0 ? 0 : Math.max(4, (count / top) * 100)}%` }} />
              <span className="sr-only">{label}</span>
            </li>
          );
        })}
      </ol>
      <div className="axis" aria-hidden="true">
        <span>{h.edges[0].toLocaleString()}</span>
        <span>{h.edges[h.edges.length - 1].toLocaleString()} tokens</span>
      </div>
    </figure>
  );
}
