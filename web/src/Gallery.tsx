// Where a workflow starts: the templates (the example workflows this server ships) and the
// workflows saved before, with open and delete.
import { useEffect, useState } from 'react';
import type { Api, ApiTemplate } from './api.ts';
import { Modal } from './Modal.tsx';
import { DeleteButton, Table } from './Table.tsx';

export function TemplateGallery({ api, onBlank, onUse, onClose }: { api: Api; onBlank: () => void; onUse: (t: ApiTemplate) => void; onClose: () => void }) {
  const [templates, setTemplates] = useState<ApiTemplate[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.templates().then(setTemplates, (err: Error) => setError(err.message));
  }, [api]);
  return (
    <Modal title="Templates" onClose={onClose} wide>
      <ul className="cards">
        <li className="card">
          <h3>File Loader → Fine-Tune → Chat</h3>
          <p>The classic: upload your examples, train the built-in model on them, then ask it something.</p>
          <button className="primary" onClick={onBlank}>
            Start
          </button>
        </li>
        {templates?.map((t) => (
          <li className="card" key={t.id}>
            <h3>{t.name}</h3>
            <p>{t.description.replace(/ File paths are relative.*$/, '')}</p>
            <p className="hint">{t.workflow.nodes.map((n) => n.type.replace(/_/g, ' ')).join(' → ')}</p>
            <button className="primary" onClick={() => onUse(t)} aria-label={`Use ${t.name}`}>
              Use
            </button>
          </li>
        ))}
      </ul>
      {!templates && !error && <p className="hint">Loading…</p>}
      {error && <p className="error">{error}</p>}
    </Modal>
  );
}

export function OpenDialog({ saved, current, onOpen, onDelete, onClose }: { saved: Array<{ id: string; name: string; updated_at: number }>; current: string | null; onOpen: (id: string) => void; onDelete: (id: string, name: string) => void; onClose: () => void }) {
  return (
    <Modal title="Open a workflow" onClose={onClose}>
      <Table columns={['Name', 'Saved']} actions empty="No saved workflows yet. Save one with Ctrl+S." rows={saved.length}>
            {saved.map((w) => (
              <tr key={w.id} aria-current={w.id === current ? 'true' : undefined}>
                <td>{w.name}</td>
                <td>{new Date(w.updated_at).toLocaleString()}</td>
                <td className="row-actions">
                  <button onClick={() => onOpen(w.id)} aria-label={`Open ${w.name}`}>
                    Open
                  </button>
                  <DeleteButton what={w.name} onDelete={() => onDelete(w.id, w.name)} />
                </td>
              </tr>
            ))}
      </Table>
    </Modal>
  );
}
