// Below the canvas while a run is open: its state, training figures (step, ETA, tokens/s,
// accuracy, learning rate) and log, the loss curve, the reply and a chat with the model it trained.
import { useState } from 'react';
import type { Api } from './api.ts';
import { changeLine, type EvaluationTotals } from './lib/evaluation.ts';
import { LossChart } from './LossChart.tsx';
import type { RunState, TrainingStats } from './useRun.ts';

export function RunPanel({ api, run, onShowJob, onCompare }: { api: Api; run: RunState; onShowJob: (jobId: string) => void; onCompare: (model: string) => void }) {
  const chatNode = run.result?.nodes.find((n) => n.node_type === 'chat' && n.outputs);
  // The Fine-Tune node's evaluation of base vs fine-tuned on the validation split, when it ran.
  const evaluation = run.result?.nodes.find((n) => n.node_type === 'finetune' && n.outputs?.evaluation)?.outputs?.evaluation as EvaluationTotals | undefined;
  return (
    <section className="run" aria-label="Run">
      <div className="run-col">
        <h2>
          Run <span className={`badge ${run.status}`} data-testid="run-status">{run.status}</span>
          {run.jobId && (
            <button className="link small" onClick={() => onShowJob(run.jobId!)}>
              job details
            </button>
          )}
        </h2>
        {run.result?.error && <p className="error run-error">{run.result.error.message}</p>}
        {run.fineTunedModel && (
          <p>
            Fine-tuned model: <code data-testid="ft-model">{run.fineTunedModel}</code>
          </p>
        )}
        {run.stats && <Stats stats={run.stats} />}
        {evaluation && run.fineTunedModel && <EvaluationLine report={evaluation} onOpen={() => onCompare(run.fineTunedModel!)} />}
        <pre className="log" aria-label="Log" tabIndex={0}>
          {run.log.join('\n') || 'Starting…'}
        </pre>
      </div>
      <div className="run-col chart-col">
        <h2>Loss</h2>
        {run.loss.length > 0 ? <LossChart points={run.loss} height={200} /> : <p className="hint">The curve appears when training starts.</p>}
      </div>
      <div className="run-col">
        <h2>
          Chat
          {run.fineTunedModel && (
            <button className="link small" onClick={() => onCompare(run.fineTunedModel!)}>
              compare with the base
            </button>
          )}
        </h2>
        {chatNode && <blockquote className="reply" data-testid="chat-reply">{String(chatNode.outputs?.reply ?? '')}</blockquote>}
        {run.fineTunedModel ? <ChatBox api={api} model={run.fineTunedModel} /> : <p className="hint">Chat with the new model here once it is trained.</p>}
      </div>
    </section>
  );
}

/** Base → fine-tuned in one line, on the validation examples. */
function EvaluationLine({ report, onOpen }: { report: EvaluationTotals; onOpen: () => void }) {
  const change = changeLine(report);
  if (!change) return null;
  return (
    <p className="evaluation-line" data-testid="run-evaluation">
      On {report.examples} validation examples: {change}.{' '}
      <button className="link small" onClick={onOpen}>
        see the answers
      </button>
    </p>
  );
}

function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

function Stats({ stats }: { stats: TrainingStats }) {
  const accuracy = stats.valid_mean_token_accuracy ?? stats.train_mean_token_accuracy;
  return (
    <dl className="stats" data-testid="run-stats">
      {stats.step !== undefined && (
        <>
          <dt>Step</dt>
          <dd>
            {stats.step}
            {stats.total_steps ? ` / ${stats.total_steps}` : ''}
            {stats.epoch !== undefined ? ` (epoch ${stats.epoch}/${stats.total_epochs ?? '?'})` : ''}
          </dd>
        </>
      )}
      {stats.eta_seconds !== undefined && (
        <>
          <dt>Time left</dt>
          <dd>{duration(stats.eta_seconds)}</dd>
        </>
      )}
      {stats.tokens_per_second !== undefined && (
        <>
          <dt>Speed</dt>
          <dd>{Math.round(stats.tokens_per_second).toLocaleString()} tokens/s</dd>
        </>
      )}
      {accuracy !== undefined && (
        <>
          <dt>Token accuracy</dt>
          <dd>
            {(accuracy * 100).toFixed(1)}% ({stats.valid_mean_token_accuracy !== undefined ? 'validation' : 'training'})
          </dd>
        </>
      )}
      {stats.learning_rate !== undefined && (
        <>
          <dt>Learning rate</dt>
          <dd>{stats.learning_rate.toExponential(2)}</dd>
        </>
      )}
    </dl>
  );
}

function ChatBox({ api, model }: { api: Api; model: string }) {
  const [messages, setMessages] = useState<Array<{ role: string; content: string }>>([]);
  const [text, setText] = useState('');
  const [busy, setBusy] = useState(false);
  const send = async () => {
    const next = [...messages, { role: 'user', content: text }];
    setMessages(next);
    setText('');
    setBusy(true);
    try {
      setMessages([...next, { role: 'assistant', content: await api.chat(model, next) }]);
    } catch (err) {
      setMessages([...next, { role: 'error', content: (err as Error).message }]);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="chatbox">
      {messages.map((m, i) => (
        <p key={i} className={`msg ${m.role}`}>
          {m.content}
        </p>
      ))}
      <form onSubmit={(e) => (e.preventDefault(), text.trim() && void send())}>
        <input aria-label="Message" value={text} onChange={(e) => setText(e.target.value)} placeholder="Ask the fine-tuned model…" disabled={busy} />
        <button type="submit" disabled={busy || !text.trim()}>
          Send
        </button>
      </form>
    </div>
  );
}
