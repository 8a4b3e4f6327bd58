// The app: sign in with the API token, then the editor.
import { ReactFlowProvider } from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import { useEffect, useMemo, useState } from 'react';
import { Api, ApiError, savedToken, saveToken, type NodeType } from './api.ts';
import { Editor } from './Editor.tsx';

export function App() {
  const [token, setToken] = useState(savedToken);
  const [types, setTypes] = useState<NodeType[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const api = useMemo(() => new Api(token), [token]);

  useEffect(() => {
    if (!token) return;
    api.nodeTypes().then(setTypes, (err) => {
      if (err instanceof ApiError && err.status === 401) {
        saveToken('');
        setToken('');
        setError('That token was not accepted. Paste the one "nodeai serve" printed (or the api-token file in the data directory).');
      } else setError((err as Error).message);
    });
  }, [api, token]);

  if (!token || !types) return <Login error={error} waiting={Boolean(token) && !error} onToken={(t) => (saveToken(t), setError(null), setToken(t))} />;
  return (
    <ReactFlowProvider>
      <Editor api={api} types={types} onLogout={() => (saveToken(''), setToken(''), setTypes(null))} />
    </ReactFlowProvider>
  );
}

function Login({ error, waiting, onToken }: { error: string | null; waiting: boolean; onToken: (token: string) => void }) {
  const [value, setValue] = useState('');
  return (
    <main className="login">
      <h1>NodeAI</h1>
      <p>
        Paste the API token that <code>nodeai serve</code> printed on its first start (also in the file <code>api-token</code> of the data directory).
      </p>
      <form onSubmit={(e) => (e.preventDefault(), onToken(value.trim()))}>
        <input aria-label="API token" type="password" value={value} onChange={(e) => setValue(e.target.value)} autoFocus placeholder="API token" />
        <button type="submit" className="primary" disabled={!value.trim()}>
          Open
        </button>
      </form>
      {waiting && <p>Connecting…</p>}
      {error && <p className="error">{error}</p>}
    </main>
  );
}
