// The keys this server keeps in its vault: names and dates only — a value goes in and is never
// shown back. Nodes pick a key by name.
import { useState } from 'react';
import type { Api, ApiSecret } from './api.ts';
import { Modal } from './Modal.tsx';
import { DeleteButton, Table } from './Table.tsx';

const NAME = /^[A-Za-z0-9_.-]{1,128}$/;

export function SecretsScreen({ api, secrets, onChanged, onClose }: { api: Api; secrets: ApiSecret[]; onChanged: () => void; onClose: () => void }) {
  const [name, setName] = useState('OPENAI_API_KEY');
  const [value, setValue] = useState('');
  const [hosts, setHosts] = useState('');
  const [message, setMessage] = useState<string | null>(null);
  const [replacing, setReplacing] = useState<string | null>(null);
  const save = async (target: string, v: string) => {
    if (!NAME.test(target)) return setMessage('A name uses letters, digits, "_", "-" or "." (at most 128).');
    try {
      await api.setSecret(target, v, hosts.split(/[\s,]+/).filter(Boolean));
      setMessage(`Stored ${target}.`);
      setValue('');
      setHosts('');
      setReplacing(null);
      onChanged();
    } catch (err) {
      setMessage(`Not stored: ${(err as Error).message}`);
    }
  };
  return (
    <Modal title="Secrets" onClose={onClose}>
      <p className="hint">Keys for providers, kept encrypted by this server. Their values are never shown again; a node names the key it uses. A key needs at least 8 characters.</p>
      <Table columns={['Name', 'May also go to', 'Updated']} actions empty="No keys stored yet." rows={secrets.length}>
        {secrets.map((s) => (
            <tr key={s.name}>
              <td>
                <code>{s.name}</code>
              </td>
              <td>{s.allowed_hosts?.length ? s.allowed_hosts.join(', ') : <span className="hint">its provider only</span>}</td>
              <td>{new Date(s.updated_at).toLocaleString()}</td>
              <td className="row-actions">
                <button onClick={() => (setReplacing(s.name), setValue(''), setHosts(s.allowed_hosts?.join(', ') ?? ''))}>Replace</button>
                <DeleteButton
                  what={s.name}
                  onDelete={async () => {
                    await api.deleteSecret(s.name).catch((err: Error) => setMessage(err.message));
                    onChanged();
                  }}
                />
              </td>
            </tr>
          ))}
      </Table>
      <form className="secret-form" onSubmit={(e) => (e.preventDefault(), void save(replacing ?? name.trim(), value))}>
        <h3>{replacing ? `Replace ${replacing}` : 'Add a key'}</h3>
        {!replacing && (
          <label>
            Name
            <input value={name} onChange={(e) => setName(e.target.value)} />
          </label>
        )}
        <label>
          Value
          <input type="password" autoComplete="off" value={value} onChange={(e) => setValue(e.target.value)} />
        </label>
        <label>
          Other hosts it may be sent to (optional)
          <input value={hosts} placeholder="e.g. gpu-box.internal:8787, my-resource.openai.azure.com" onChange={(e) => setHosts(e.target.value)} />
          <small className="hint">A key goes only to its provider's own API unless a host is listed here (a NodeAI on a GPU box, Azure OpenAI, a proxy).</small>
        </label>
        <div className="actions">
          <button className="primary" type="submit" disabled={!value}>
            {replacing ? 'Replace' : 'Add'}
          </button>
          {replacing && (
            <button type="button" onClick={() => setReplacing(null)}>
              Cancel
            </button>
          )}
        </div>
      </form>
      {message && <p role="status">{message}</p>}
    </Modal>
  );
}
