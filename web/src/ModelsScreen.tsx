// The model registry: every fine-tuned model with its base, data, hyperparameters, size, final
// losses and how it did against its base; rename, delete, export, download its files, or put it
// to use in a Chat node.
import { useState } from 'react';
import type { Api, ApiModel } from './api.ts';
import { ExportDialog } from './ExportDialog.tsx';
import { changeLine } from './lib/evaluation.ts';
import { fileSize, hyperparameterLine } from './lib/model-facts.ts';
import { Modal } from './Modal.tsx';
import { DeleteButton, Table } from './Table.tsx';

export function ModelsScreen({ api, models, onChanged, onUse, onCompare, onClose }: { api: Api; models: ApiModel[]; onChanged: () => void; onUse: (model: ApiModel) => void; onCompare: (model: ApiModel) => void; onClose: () => void }) {
  const [editing, setEditing] = useState<{ id: string; name: string } | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const [exporting, setExporting] = useState<ApiModel | null>(null);
  const guard = async (what: Promise<unknown>) => {
    try {
      await what;
      setMessage(null);
      onChanged();
    } catch (err) {
      setMessage((err as Error).message);
    }
  };
  return (
    <Modal title="Models" onClose={onClose} wide>
      {message && <p className="error">{message}</p>}
      <Table columns={['Name', 'Base', 'Data', 'Training', 'Size', 'Final loss', 'Evaluation', 'Created']} actions empty="No fine-tuned models yet." rows={models.length}>
        {models.map((m) => (
            <tr key={m.id}>
              <td>
                {editing?.id === m.id ? (
                  <form onSubmit={(e) => (e.preventDefault(), void guard(api.renameModel(m.id, editing.name.trim())).then(() => setEditing(null)))}>
                    <input aria-label="New name" value={editing.name} autoFocus onChange={(e) => setEditing({ id: m.id, name: e.target.value })} />
                  </form>
                ) : (
                  <>
                    <strong>{m.name ?? m.id}</strong>
                    <br />
                    <code className="small">{m.id}</code>
                  </>
                )}
              </td>
              <td>{m.base_model}</td>
              <td>
                {m.training_examples ?? '–'} examples · {m.epochs ?? '–'} epochs
              </td>
              <td data-testid="model-hyperparameters">{hyperparameterLine(m.hyperparameters) ?? '–'}</td>
              <td data-testid="model-size">{m.bytes != null ? fileSize(m.bytes) : '–'}</td>
              <td>
                {m.metrics?.train_loss !== undefined ? `train ${m.metrics.train_loss.toFixed(3)}` : '–'}
                {m.metrics?.valid_loss !== undefined ? ` · valid ${m.metrics.valid_loss.toFixed(3)}` : ''}
              </td>
              <td data-testid="model-evaluation">{m.evaluation ? `${changeLine(m.evaluation) ?? '–'} (${m.evaluation.examples} examples)` : '–'}</td>
              <td>{m.created_at ? new Date(m.created_at).toLocaleString() : '–'}</td>
              <td className="row-actions">
                <button onClick={() => onUse(m)}>Chat</button>
                <button onClick={() => onCompare(m)}>Compare</button>
                {m.files?.includes('model') && (
                  <button onClick={() => setExporting(m)} aria-label={`Export ${m.name ?? m.id}`}>
                    Export
                  </button>
                )}
                {(m.files ?? []).map((kind) => (
                  <button key={kind} onClick={() => void guard(api.downloadModelFile(m.id, kind))} aria-label={`Download the ${kind === 'model' ? 'GGUF' : kind} of ${m.name ?? m.id}`}>
                    {kind === 'model' ? 'GGUF' : kind === 'adapter' ? 'Adapter' : kind} ↓
                  </button>
                ))}
                <button onClick={() => setEditing({ id: m.id, name: m.name ?? '' })}>Rename</button>
                <DeleteButton what={m.name ?? m.id} onDelete={() => void guard(api.deleteModel(m.id))} />
              </td>
            </tr>
          ))}
      </Table>
      {exporting && <ExportDialog api={api} model={exporting} onClose={() => setExporting(null)} />}
    </Modal>
  );
}
