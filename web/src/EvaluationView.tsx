// The evaluation of a fine-tuned model against its base on the validation examples: the summary
// (loss, perplexity, exact and contains match for each) and a table of every example — prompt,
// expected answer, each model's answer with its marks — filterable to what fine-tuning changed.
import { useEffect, useMemo, useState } from 'react';
import type { Api } from './api.ts';
import { exampleRows, summaryRows, type EvaluationReport, type ExampleFilter } from './lib/evaluation.ts';
import { Table } from './Table.tsx';

export function EvaluationView({ api, model }: { api: Api; model: string }) {
  const [report, setReport] = useState<EvaluationReport | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [filter, setFilter] = useState<ExampleFilter>('all');
  const [text, setText] = useState('');
  useEffect(() => {
    api.evaluation(model).then(setReport, (err: Error) => setError(err.message));
  }, [api, model]);
  const rows = useMemo(() => (report ? exampleRows(report, filter, text) : []), [report, filter, text]);

  if (error) {
    return (
      <section className="evaluation" aria-label="Evaluation">
        <h3>Evaluation</h3>
        <p className="hint">{error}</p>
      </section>
    );
  }
  if (!report) return <p className="hint">Loading the evaluation…</p>;
  const label = (m: string, i: number) => (i === 0 && report.models.length > 1 ? `Base: ${m}` : m === model ? `Fine-tuned: ${m}` : m);
  return (
    <section className="evaluation" aria-label="Evaluation" data-testid="evaluation">
      <h3>Evaluation on {report.examples.length} validation example{report.examples.length === 1 ? '' : 's'}</h3>
      <Table columns={['Model', 'Loss', 'Perplexity', 'Exact match', 'Contains match']} empty="No models in this report." rows={report.models.length}>
        {summaryRows(report).map((s, i) => (
          <tr key={s.model}>
            <td className="model-name">{label(s.model, i)}</td>
            <td>{s.loss}</td>
            <td>{s.perplexity}</td>
            <td>{s.exact}</td>
            <td>{s.contains}</td>
          </tr>
        ))}
      </Table>
      <div className="filters">
        <select aria-label="Which examples" value={filter} onChange={(e) => setFilter(e.target.value as ExampleFilter)}>
          <option value="all">All examples</option>
          <option value="changed">Where exact match changed</option>
          <option value="missed">Where the fine-tuned answer is not exact</option>
        </select>
        <input aria-label="Filter examples" placeholder="Filter by text" value={text} onChange={(e) => setText(e.target.value)} />
      </div>
      <div className="evaluation-examples" tabIndex={0} role="region" aria-label="Validation examples">
        <Table columns={['Prompt', 'Expected', ...report.models.map(label)]} empty="No example matches." rows={rows.length}>
          {rows.map((r) => (
            <tr key={r.index} data-testid="evaluation-row">
              <td>
                {r.prompt}
                {r.context > 0 && <small className="hint"> (after {r.context} earlier message{r.context === 1 ? '' : 's'})</small>}
              </td>
              <td>{r.expected}</td>
              {r.answers.map((a) => (
                <td key={a.model} className={a.exact ? 'match' : 'miss'}>
                  <span className="mark" aria-label={a.exact ? 'exact match' : a.contains ? 'contains the expected answer' : 'no match'} role="img">
                    {a.exact ? '✓' : a.contains ? '≈' : '✗'}
                  </span>{' '}
                  {a.text || <em className="hint">(an empty answer)</em>}
                </td>
              ))}
            </tr>
          ))}
        </Table>
      </div>
    </section>
  );
}
