// Export of one fine-tuned model for Ollama, llama.cpp or LM Studio: choose the target and the
// quantization, wait while the server writes it (the call returns when it is done, so the dialog
// counts the seconds), then copy the command lines and download the GGUF through a link ticket.
import { useEffect, useState } from 'react';
import type { Api, ApiExport, ApiModel, ExportQuant, ExportTarget } from './api.ts';
import { Modal } from './Modal.tsx';

const TARGETS: Array<{ value: ExportTarget; label: string }> = [
  { value: 'ollama', label: 'Ollama folder (Modelfile)' },
  { value: 'gguf', label: 'GGUF for llama.cpp' },
  { value: 'lmstudio', label: 'LM Studio folder' },
];

const QUANTS: Array<{ value: ExportQuant; label: string }> = [
  { value: 'q8_0', label: 'Q8_0 (near lossless, half of F16)' },
  { value: 'f16', label: 'F16 (unquantized)' },
  { value: 'q4_k_m', label: 'Q4_K_M (smallest, some quality lost)' },
];

type State = { step: 'form' } | { step: 'working'; since: number } | { step: 'done'; result: ApiExport } | { step: 'failed'; message: string };

export function ExportDialog({ api, model, onClose }: { api: Api; model: ApiModel; onClose: () => void }) {
  const name = model.name ?? model.id;
  const [to, setTo] = useState<ExportTarget>('ollama');
  const [quant, setQuant] = useState<ExportQuant>('q8_0');
  const [adapter, setAdapter] = useState(false);
  const [state, setState] = useState<State>({ step: 'form' });
  const [downloadError, setDownloadError] = useState<string | null>(null);
  // LM Studio loads no LoRA adapters; a fully fine-tuned model has none.
  const adapterApplies = (model.files ?? []).includes('adapter') && to !== 'lmstudio';
  const start = async () => {
    setState({ step: 'working', since: Date.now() });
    try {
      const result = await api.exportModel(model.id, { to, quant, adapter: adapterApplies && adapter });
      setState({ step: 'done', result });
    } catch (err) {
      setState({ step: 'failed', message: (err as Error).message });
    }
  };
  return (
    <Modal title={`Export ${name}`} onClose={onClose}>
      {state.step === 'done' ? (
        <ExportResult api={api} result={state.result} downloadError={downloadError} setDownloadError={setDownloadError} />
      ) : (
        <form className="export-form" onSubmit={(e) => (e.preventDefault(), void start())}>
          <Choice label="Target" options={TARGETS} value={to} onChange={setTo} disabled={state.step === 'working'} />
          <Choice label="Quantization" options={QUANTS} value={quant} onChange={setQuant} disabled={state.step === 'working' || (adapterApplies && adapter)} />
          {adapterApplies && (
            <label className="check">
              <input type="checkbox" checked={adapter} onChange={(e) => setAdapter(e.target.checked)} disabled={state.step === 'working'} />
              LoRA adapter only (the base model is used as it is)
            </label>
          )}
          {state.step === 'failed' && (
            <p className="error" role="alert" data-testid="export-error">
              Export failed: {state.message}
            </p>
          )}
          <div className="actions">
            <button className="primary" type="submit" disabled={state.step === 'working'}>
              {state.step === 'working' ? 'Exporting…' : 'Export'}
            </button>
            {state.step === 'working' && <Elapsed since={state.since} />}
          </div>
        </form>
      )}
    </Modal>
  );
}

function Choice<T extends string>({ label, options, value, onChange, disabled }: { label: string; options: Array<{ value: T; label: string }>; value: T; onChange: (v: T) => void; disabled: boolean }) {
  return (
    <label>
      {label}
      <select value={value} onChange={(e) => onChange(e.target.value as T)} disabled={disabled}>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </label>
  );
}

/** "Writing the files… 12 s": the export call gives no progress, so the time it has taken. */
function Elapsed({ since }: { since: number }) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  return (
    <span role="status" className="hint" data-testid="export-working">
      Writing the files… {Math.floor((now - since) / 1000)} s
    </span>
  );
}

function ExportResult({ api, result, downloadError, setDownloadError }: { api: Api; result: ApiExport; downloadError: string | null; setDownloadError: (m: string | null) => void }) {
  const what = result.to === 'ollama' ? (result.ollama_created ? 'Created in Ollama. To create it again:' : 'Create it in Ollama:') : 'Serve it with llama.cpp:';
  return (
    <div className="export-result" data-testid="export-result">
      <h3>Files written</h3>
      <ul className="export-files">
        {result.files.map((f) => (
          <li key={f}>
            <code>{f}</code>
          </li>
        ))}
      </ul>
      <h3>{what}</h3>
      <CopyBlock label="Command" text={result.command_line} />
      {result.modelfile_text !== null && (
        <>
          <h3>Modelfile</h3>
          <CopyBlock label="Modelfile" text={result.modelfile_text} />
        </>
      )}
      {result.notes.length > 0 && (
        <ul className="export-notes" aria-label="Notes">
          {result.notes.map((n) => (
            <li key={n}>{n}</li>
          ))}
        </ul>
      )}
      <div className="actions">
        <button className="primary" onClick={() => api.download(result.download).then(() => setDownloadError(null), (err: Error) => setDownloadError(err.message))}>
          Download the GGUF ↓
        </button>
      </div>
      {downloadError && (
        <p className="error" role="alert">
          {downloadError}
        </p>
      )}
    </div>
  );
}

function CopyBlock({ label, text }: { label: string; text: string }) {
  const [copied, setCopied] = useState<'yes' | 'no' | null>(null);
  const copy = () =>
    navigator.clipboard.writeText(text).then(
      () => setCopied('yes'),
      () => setCopied('no'),
    );
  return (
    <div className="copy-block">
      <pre role="region" aria-label={label} tabIndex={0}>
        {text}
      </pre>
      <button className="small" onClick={() => void copy()} aria-label={`Copy the ${label.toLowerCase()}`}>
        {copied === 'yes' ? 'Copied' : 'Copy'}
      </button>
      {copied === 'no' && <span className="hint">The browser refused the clipboard; select the text and copy it.</span>}
    </div>
  );
}
