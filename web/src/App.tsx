// The canvas: a palette of node types, the workflow drawn with React Flow, the selected node's
// settings, and the run — node by node, the training loss live, then a chat with the new model.
import { addEdge, Background, Controls, ReactFlow, ReactFlowProvider, useEdgesState, useNodesState, useReactFlow, type Connection, type Edge } from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent } from 'react';
import { Api, ApiError, savedToken, saveToken, type ApiModel, type NodeType, type WorkflowJson } from './api.ts';
import { FlowNode, type FlowNodeData, type WorkflowNode } from './FlowNode.tsx';
import { RunPanel } from './RunPanel.tsx';
import { SettingsForm } from './SettingsForm.tsx';
import { DONE, useRun } from './useRun.ts';

const nodeTypes = { workflow: FlowNode };

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

const DRAFT_KEY = 'nodeai.draft';
let counter = 0;
const newId = (type: string) => `${type.replace(/_/g, '-')}-${Date.now().toString(36)}${(counter++).toString(36)}`;

function Editor({ api, types, onLogout }: { api: Api; types: NodeType[]; onLogout: () => void }) {
  const [nodes, setNodes, onNodesChange] = useNodesState<WorkflowNode>([]);
  const [edges, setEdges, onEdgesChange] = useEdgesState<Edge>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [models, setModels] = useState<ApiModel[]>([]);
  const [issues, setIssues] = useState<string[]>([]);
  const [name, setName] = useState('My workflow');
  const [workflowId, setWorkflowId] = useState<string | null>(null);
  const [saved, setSaved] = useState<Array<{ id: string; name: string }>>([]);
  const [notice, setNotice] = useState<string | null>(null);
  const { screenToFlowPosition, fitView } = useReactFlow();
  const byType = useMemo(() => new Map(types.map((t) => [t.type, t])), [types]);

  const refreshModels = useCallback(() => api.models().then(setModels, () => setModels([])), [api]);
  useEffect(() => {
    void refreshModels();
    void api.workflows().then(setSaved, () => setSaved([]));
  }, [api, refreshModels]);

  const patchNode = useCallback((id: string, patch: Partial<FlowNodeData>) => setNodes((ns) => ns.map((n) => (n.id === id ? { ...n, data: { ...n.data, ...patch } } : n))), [setNodes]);
  const { run, follow } = useRun(api, patchNode, refreshModels);

  const load = useCallback(
    (wf: WorkflowJson) => {
      setNodes(
        wf.nodes
          .filter((n) => byType.has(n.type))
          .map((n, i) => {
            const t = byType.get(n.type)!;
            return { id: n.id, type: 'workflow', position: n.position ?? { x: i * 260, y: 80 }, data: { type: n.type, title: t.name, category: t.category, config: n.config ?? {} } };
          }),
      );
      setEdges(wf.edges.map((e) => ({ id: `${e.source}->${e.target}`, source: e.source, target: e.target })));
      setTimeout(() => void fitView({ maxZoom: 1.1, padding: 0.3 }), 50);
    },
    [byType, fitView, setEdges, setNodes],
  );

  // The drawing survives a reload (and the run it started is followed again, see useRun).
  const restored = useRef(false);
  useEffect(() => {
    if (restored.current) return;
    restored.current = true;
    const draft = localStorage.getItem(DRAFT_KEY);
    if (!draft) return;
    try {
      const d = JSON.parse(draft) as { workflow: WorkflowJson; workflowId?: string };
      setName(d.workflow.name);
      setWorkflowId(d.workflowId ?? null);
      load(d.workflow);
    } catch {
      localStorage.removeItem(DRAFT_KEY);
    }
  }, [load]);

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

  useEffect(() => {
    if (restored.current) localStorage.setItem(DRAFT_KEY, JSON.stringify({ workflow: workflow(), workflowId }));
  });

  const start = async () => {
    setIssues([]);
    const wf = workflow();
    const check = await api.validate(wf).catch((err: Error) => ({ valid: false, issues: [{ message: err.message, node_id: null }] }));
    if (!check.valid) {
      setIssues(check.issues.map((i) => (i.node_id ? `${i.node_id}: ${i.message}` : i.message)));
      return;
    }
    setNodes((ns) => ns.map((n) => ({ ...n, data: { ...n.data, status: 'waiting', detail: undefined, progress: undefined } })));
    try {
      await follow((await api.startRun(wf)).id);
    } catch (err) {
      setIssues([(err as Error).message]);
    }
  };

  const save = async () => {
    try {
      const saved = await api.saveWorkflow(workflow(), workflowId ?? undefined);
      setWorkflowId(saved.id);
      setNotice(`Saved as ${saved.id}`);
      void api.workflows().then(setSaved);
    } catch (err) {
      setNotice(`Not saved: ${(err as Error).message}`);
    }
  };

  const open = async (id: string) => {
    const wf = await api.workflow(id);
    setWorkflowId(wf.id);
    setName(wf.definition.name);
    load(wf.definition);
    setNotice(null);
  };

  const selectedNode = nodes.find((n) => n.id === selected);
  const running = run !== null && !DONE.has(run.status);

  return (
    <div className="app">
      <header>
        <strong>NodeAI</strong>
        <input className="wf-name" aria-label="Workflow name" value={name} onChange={(e) => setName(e.target.value)} />
        <button onClick={starter}>New: File Loader → Fine-Tune → Chat</button>
        <button onClick={() => void save()} disabled={nodes.length === 0}>
          Save
        </button>
        <select aria-label="Open a saved workflow" value="" onChange={(e) => e.target.value && void open(e.target.value)}>
          <option value="">Open…</option>
          {saved.map((w) => (
            <option key={w.id} value={w.id}>
              {w.name}
            </option>
          ))}
        </select>
        <button className="primary" onClick={() => void start()} disabled={nodes.length === 0 || running}>
          {running ? 'Running…' : 'Run'}
        </button>
        {running && (
          <button onClick={() => run && void api.cancelRun(run.id)} title="Stops the run; a training job keeps its checkpoint">
            Stop
          </button>
        )}
        {notice && <span className="notice">{notice}</span>}
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
            <SettingsForm key={selectedNode.id} api={api} nodeType={byType.get(selectedNode.data.type)!} config={selectedNode.data.config} models={models} onChange={(update) => setNodes((ns) => ns.map((n) => (n.id === selectedNode.id ? { ...n, data: { ...n.data, config: update(n.data.config) } } : n)))} />
          </section>
        ) : (
          <p className="hint">Select a node to edit its settings.</p>
        )}
      </aside>
    </div>
  );
}

