// What fine-tuning changed: two models (the base and the fine-tuned one, or two fine-tuned
// ones) answer the same prompt side by side, and the evaluation made when training ended puts
// base and fine-tuned side by side over the validation examples.
import { useState } from 'react';
import type { Api, ApiModel } from './api.ts';
import { EvaluationView } from './EvaluationView.tsx';
import { Modal } from './Modal.tsx';

interface Answer {
  text: string;
  error?: boolean;
}

export function CompareScreen({ api, models, first, second, onClose }: { api: Api; models: ApiModel[]; first: string; second: string; onClose: () => void }) {
  const [left, setLeft] = useState(first);
  const [right, setRight] = useState(second);
  const [system, setSystem] = useState('');
  const [prompt, setPrompt] = useState('');
  const [answers, setAnswers] = useState<[Answer, Answer] | null>(null);
  const [busy, setBusy] = useState(false);
  // The evaluation of the fine-tuned model on the right (else the left), when either is one.
  const evaluated = [right, left].find((id) => models.some((m) => m.id === id));
  // Base models the fine-tuned ones came from, then the fine-tuned ones.
  const choices = [...new Set([...models.map((m) => m.base_model), first, second])].filter((id) => !models.some((m) => m.id === id));
  const ask = async () => {
    setBusy(true);
    const messages = [...(system.trim() ? [{ role: 'system', content: system }] : []), { role: 'user', content: prompt }];
    const one = (model: string): Promise<Answer> =>
      api.chat(model, messages).then(
        (text) => ({ text: text || '(an empty reply)' }),
        (err: Error) => ({ text: err.message, error: true }),
      );
    setAnswers(await Promise.all([one(left), one(right)]));
    setBusy(false);
  };
  const picker = (label: string, value: string, set: (v: string) => void) => (
    <label className="compare-pick">
      {label}
      <select value={value} onChange={(e) => set(e.target.value)}>
        {choices.map((id) => (
          <option key={id} value={id}>
            {id} (base)
          </option>
        ))}
        {models.map((m) => (
          <option key={m.id} value={m.id}>
            {m.name ? `${m.name} (${m.id})` : m.id}
          </option>
        ))}
      </select>
    </label>
  );
  return (
    <Modal title="Compare models" onClose={onClose} wide>
      <form className="compare-form" onSubmit={(e) => (e.preventDefault(), prompt.trim() && void ask())}>
        <div className="compare-grid">
          {picker('Left model', left, setLeft)}
          {picker('Right model', right, setRight)}
        </div>
        <label>
          System prompt (optional)
          <input value={system} onChange={(e) => setSystem(e.target.value)} />
        </label>
        <label>
          Prompt
          <textarea rows={2} value={prompt} onChange={(e) => setPrompt(e.target.value)} />
        </label>
        <div className="actions">
          <button className="primary" type="submit" disabled={busy || !prompt.trim()}>
            {busy ? 'Asking…' : 'Ask both'}
          </button>
        </div>
      </form>
      {answers && (
        <div className="compare-grid" aria-live="polite">
          {answers.map((a, i) => (
            <figure key={i} className="compare-answer">
              <figcaption>{i === 0 ? left : right}</figcaption>
              <blockquote className={a.error ? 'error' : ''} data-testid={`answer-${i === 0 ? 'left' : 'right'}`} tabIndex={0}>
                {a.text}
              </blockquote>
            </figure>
          ))}
        </div>
      )}
      {evaluated && <EvaluationView key={evaluated} api={api} model={evaluated} />}
    </Modal>
  );
}
