// Below the canvas while a run is open: its state and log, the loss curve, the reply and a chat
// with the model it trained.
import { useState } from 'react';
import type { Api } from './api.ts';
import { LossChart } from './LossChart.tsx';
import type { RunState } from './useRun.ts';

export function RunPanel({ api, run }: { api: Api; run: RunState }) {
  const chatNode = run.result?.nodes.find((n) => n.node_type === 'chat' && n.outputs);
  return (
    <section className="run" aria-label="Run">
      <div className="run-col">
        <h2>
          Run <span className={`badge ${run.status}`} data-testid="run-status">{run.status}</span>
        </h2>
        {run.result?.error && <p className="error">{run.result.error.message}</p>}
        {run.fineTunedModel && (
          <p>
            Fine-tuned model: <code data-testid="ft-model">{run.fineTunedModel}</code>
          </p>
        )}
        <pre className="log" aria-label="Log">{run.log.join('\n') || 'Starting…'}</pre>
      </div>
      <div className="run-col">
        <h2>Loss</h2>
        {run.loss.length > 0 ? <LossChart points={run.loss} /> : <p className="hint">The curve appears when training starts.</p>}
      </div>
      <div className="run-col">
        <h2>Chat</h2>
        {chatNode && <blockquote className="reply" data-testid="chat-reply">{String(chatNode.outputs?.reply ?? '')}</blockquote>}
        {run.fineTunedModel ? <ChatBox api={api} model={run.fineTunedModel} /> : <p className="hint">Chat with the new model here once it is trained.</p>}
      </div>
    </section>
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
