// The canvas: a palette of node types, the workflow drawn with React Flow, the selected node's
// settings, and the run — node by node, the training loss live, then a chat with the new model.
import { addEdge, Background, Controls, ReactFlow, ReactFlowProvider, useEdgesState, useNodesState, useReactFlow, type Connection, type Edge } from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent } from 'react';
import { Api, ApiError, savedToken, saveToken, type ApiModel, type ApiRun, type NodeType, type WorkflowJson } from './api.ts';
import { FlowNode, type FlowNodeData, type WorkflowNode } from './FlowNode.tsx';
import { LossChart, type LossPoint } from './LossChart.tsx';
import { SettingsForm } from './SettingsForm.tsx';

const nodeTypes = { workflow: FlowNode };
const DONE = new Set(['succeeded', 'failed', 'cancelled']);

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
      <p>Paste the API token that <code>nodeai serve</code> printed on its first start (also in the file <code>api-token</code> of the data directory).</p>
      <form onSubmit={(e) => (e.preventDefault(), onToken(value.trim()))}>
        <input aria-label="API token" type="password" value={value} onChange={(e) => setValue(e.target.value)} autoFocus placeholder="API token" />
        <button type="submit" disabled={!value.trim()}>
          Open
        </button>
      </form>
      {waiting && <p>Connecting…</p>}
      {error && <p className="error">{error}</p>}
    </main>
  );
}

interface RunState {
  id: string;
  status: string;
  log: string[];
  loss: LossPoint[];
  result?: ApiRun;
  fineTunedModel?: string;
}

let counter = 0;
const newId = (type: string) => `${type.replace(/_/g, '-')}-${Date.now().toString(36)}${(counter++).toString(36)}`;

function Editor({ api, types, onLogout }: { api: Api; types: NodeType[]; onLogout: () => void }) {
  const [nodes, setNodes, onNodesChange] = useNodesState<WorkflowNode>([]);
  const [edges, setEdges, onEdgesChange] = useEdgesState<Edge>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [models, setModels] = useState<ApiModel[]>([]);
  const [run, setRun] = useState<RunState | null>(null);
  const [issues, setIssues] = useState<string[]>([]);
  const [name, setName] = useState('My workflow');
  const stopEvents = useRef<(() => void) | null>(null);
  const { screenToFlowPosition, fitView } = useReactFlow();
  const byType = useMemo(() => new Map(types.map((t) => [t.type, t])), [types]);

  const refreshModels = useCallback(() => api.models().then(setModels, () => setModels([])), [api]);
  useEffect(() => {
    void refreshModels();
    return () => stopEvents.current?.();
  }, [refreshModels]);

  const addNode = useCallback(
    (type: string, position: { x: number; y: number }, config: Record<string, unknown> = {}) => {
      const t = byType.get(type)!;
      const id = newId(type);
      setNodes((ns) => [...ns, { id, type: 'workflow', position, data: { type, title: t.name, category: t.category, config } }]);
      setSelected(id);
      return id;
    },
    [byType, setNodes],
  );

  const starter = () => {
    setNodes([]);
    setEdges([]);
    const load = addNode('file_loader', { x: 0, y: 80 });
    const ft = addNode('finetune', { x: 260, y: 80 }, { epochs: 3 });
    const chat = addNode('chat', { x: 520, y: 80 }, { prompt: 'How do I reset my password?', max_tokens: 64 });
    setEdges([
      { id: `${load}->${ft}`, source: load, target: ft },
      { id: `${ft}->${chat}`, source: ft, target: chat },
    ]);
    setSelected(load);
    setName('File Loader → Fine-Tune → Chat');
    setTimeout(() => void fitView({ maxZoom: 1.1, padding: 0.3 }), 50);
  };

  const onConnect = useCallback((c: Connection) => setEdges((es) => addEdge({ ...c, id: `${c.source}->${c.target}` }, es)), [setEdges]);
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    const type = e.dataTransfer.getData('application/nodeai-node');
    if (type && byType.has(type)) addNode(type, screenToFlowPosition({ x: e.clientX, y: e.clientY }));
  };

  const workflow = (): WorkflowJson => ({
    name,
    nodes: nodes.map((n) => ({ id: n.id, type: n.data.type, config: n.data.config, position: { x: Math.round(n.position.x), y: Math.round(n.position.y) } })),
    edges: edges.map((e) => ({ source: e.source, target: e.target })),
  });

  const patchNode = (id: string, patch: Partial<FlowNodeData>) => setNodes((ns) => ns.map((n) => (n.id === id ? { ...n, data: { ...n.data, ...patch } } : n)));

  const start = async () => {
    setIssues([]);
    const wf = workflow();
    const check = await api.validate(wf).catch((err: Error) => ({ valid: false, issues: [{ message: err.message, node_id: null }] }));
    if (!check.valid) {
      setIssues(check.issues.map((i) => i.message));
      return;
    }
    setNodes((ns) => ns.map((n) => ({ ...n, data: { ...n.data, status: 'waiting', detail: undefined, progress: undefined } })));
    let started: { id: string };
    try {
      started = await api.startRun(wf);
    } catch (err) {
      setIssues([(err as Error).message]);
      return;
    }
    const state: RunState = { id: started.id, status: 'running', log: [], loss: [] };
    setRun(state);
    stopEvents.current?.();
    const update = (f: (r: RunState) => RunState) => setRun((r) => (r && r.id === state.id ? f(r) : r));
    const say = (line: string) => update((r) => ({ ...r, log: [...r.log.slice(-200), line] }));
    stopEvents.current = api.events(started.id, (event, data) => {
      const node = data.node_id as string | undefined;
      switch (event) {
        case 'node.started':
          patchNode(node!, { status: 'running', detail: undefined });
          break;
        case 'node.succeeded':
          patchNode(node!, { status: 'succeeded', detail: undefined });
          break;
        case 'node.failed':
          patchNode(node!, { status: 'failed', detail: (data.error as { message?: string })?.message?.slice(0, 60) });
          say(`✘ ${node}: ${(data.error as { message?: string })?.message}`);
          break;
        case 'node.waiting':
          patchNode(node!, { status: 'training', progress: 0 });
          say(`${node} is training (job ${(data.wait as { jobId?: string })?.jobId ?? ''})`);
          break;
        case 'node.log':
          if (data.level !== 'debug') say(`${node}: ${data.message}`);
          break;
        case 'job.metrics': {
          const m = (data.data ?? {}) as { step?: number; total_steps?: number; train_loss?: number; valid_loss?: number; epoch?: number; total_epochs?: number };
          if (typeof m.step !== 'number') break;
          update((r) => ({ ...r, loss: [...r.loss, { step: m.step!, train_loss: m.train_loss, valid_loss: m.valid_loss }] }));
          setNodes((ns) =>
            ns.map((n) =>
              n.data.status === 'training'
                ? { ...n, data: { ...n.data, progress: m.total_steps ? m.step! / m.total_steps : undefined, detail: `epoch ${m.epoch}/${m.total_epochs} · loss ${m.train_loss?.toFixed(3) ?? '–'}` } }
                : n,
            ),
          );
          break;
        }
        case 'job.event':
          say(String(data.message));
          break;
        case 'run.finished':
          void api.run(started.id).then((result) => {
            const ft = result.nodes.find((n) => n.node_type === 'finetune' && n.outputs?.fine_tuned_model);
            update((r) => ({ ...r, status: result.status, result, fineTunedModel: ft?.outputs?.fine_tuned_model as string | undefined }));
            for (const n of result.nodes) patchNode(n.node_id, { status: n.status, progress: n.status === 'succeeded' && n.node_type === 'finetune' ? 1 : undefined });
            void refreshModels();
          });
          stopEvents.current?.();
          break;
      }
    });
    // Nodes that finished before the event stream opened are read once from the run itself.
    void api.run(started.id).then((r) => {
      for (const n of r.nodes) if (n.status !== 'running') patchNode(n.node_id, { status: n.status });
    });
  };

  const selectedNode = nodes.find((n) => n.id === selected);
  const running = run !== null && !DONE.has(run.status);

  return (
    <div className="app">
      <header>
        <strong>NodeAI</strong>
        <input className="wf-name" aria-label="Workflow name" value={name} onChange={(e) => setName(e.target.value)} />
        <button onClick={starter}>New: File Loader → Fine-Tune → Chat</button>
        <button className="primary" onClick={() => void start()} disabled={nodes.length === 0 || running}>
          {running ? 'Running…' : 'Run'}
        </button>
        {running && (
          <button onClick={() => run && void api.cancelRun(run.id)} title="Stops the run; a training job keeps its checkpoint">
            Stop
          </button>
        )}
        <span className="spacer" />
        <button className="link" onClick={onLogout}>
          Sign out
        </button>
      </header>
      <aside className="palette" aria-label="Nodes">
        <h2>Nodes</h2>
        {types.map((t) => (
          <div
            key={t.type}
            className={`palette-item ${t.category}`}
            draggable
            role="button"
            tabIndex={0}
            title={t.description}
            onDragStart={(e) => e.dataTransfer.setData('application/nodeai-node', t.type)}
            onClick={() => addNode(t.type, { x: 40 + nodes.length * 40, y: 260 + nodes.length * 30 })}
          >
            {t.name}
          </div>
        ))}
        <p className="hint">Drag a node onto the canvas (or click it), then connect a node's right edge to the next one's left.</p>
      </aside>
      <section className="canvas-col">
      <div className="canvas" onDrop={onDrop} onDragOver={(e) => e.preventDefault()}>
        <ReactFlow
          nodes={nodes}
          edges={edges}
          nodeTypes={nodeTypes}
          onNodesChange={onNodesChange}
          onEdgesChange={onEdgesChange}
          onConnect={onConnect}
          onNodeClick={(_, n) => setSelected(n.id)}
          onPaneClick={() => setSelected(null)}
          fitView
          fitViewOptions={{ maxZoom: 1.1 }}
          deleteKeyCode={['Backspace', 'Delete']}
        >
          <Background />
          <Controls />
        </ReactFlow>
        {nodes.length === 0 && (
          <div className="empty">
            <p>Start from the classic workflow, or drag nodes in from the left.</p>
            <button className="primary" onClick={starter}>
              File Loader → Fine-Tune → Chat
            </button>
          </div>
        )}
      </div>
      {run && <RunPanel api={api} run={run} />}
      </section>
      <aside className="side">
        {issues.length > 0 && (
          <div className="issues" role="alert">
            <h2>Cannot run yet</h2>
            <ul>
              {issues.map((i) => (
                <li key={i}>{i}</li>
              ))}
            </ul>
          </div>
        )}
        {selectedNode ? (
          <section>
            <h2>{selectedNode.data.title} settings</h2>
            <SettingsForm api={api} nodeType={byType.get(selectedNode.data.type)!} config={selectedNode.data.config} models={models} onChange={(config) => patchNode(selectedNode.id, { config })} />
          </section>
        ) : (
          <p className="hint">Select a node to edit its settings.</p>
        )}
      </aside>
    </div>
  );
}

function RunPanel({ api, run }: { api: Api; run: RunState }) {
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
