// The canvas: a palette of node types, the workflow drawn with React Flow, the selected node's
// settings (and a File Loader's data check), and the run — node by node, the training live,
// then a chat with the new model. The workflow is a document: saved, renamed, duplicated,
// exported; New never drops unsaved changes without asking.
import { Background, Controls, MarkerType, ReactFlow, useEdgesState, useNodesState, useReactFlow, type Connection, type Edge, type EdgeChange, type FinalConnectionState, type NodeChange } from '@xyflow/react';
import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent } from 'react';
import { type Api, type ApiModel, type ApiSecret, type CatalogModel, type DataReport, type NodeType, type WorkflowJson } from './api.ts';
import { CompareScreen } from './CompareScreen.tsx';
import { DataPanel } from './DataPanel.tsx';
import { FlowNode, type FlowNodeData, type WorkflowNode } from './FlowNode.tsx';
import { OpenDialog, TemplateGallery } from './Gallery.tsx';
import { JobsScreen } from './JobsScreen.tsx';
import { clipOf, pasteClip, type Clip } from './lib/clipboard.ts';
import { fieldLabel } from './lib/fields.ts';
import { UndoRecorder } from './lib/history.ts';
import { placeIssue, type PlacedIssue } from './lib/issues.ts';
import { connectionProblem, DEFAULT_PORT } from './lib/wiring.ts';
import { copyName, fingerprint, parseWorkflowFile, withoutSecrets } from './lib/workflow-doc.ts';
import { useConfirm } from './Modal.tsx';
import { ModelsScreen } from './ModelsScreen.tsx';
import { RunPanel } from './RunPanel.tsx';
import { SecretsScreen } from './SecretsScreen.tsx';
import { SettingsForm } from './SettingsForm.tsx';
import { FIT_OPTIONS, useAutoFit } from './useAutoFit.ts';
import { DONE, useRun } from './useRun.ts';

const nodeTypes = { workflow: FlowNode };
const DRAFT_KEY = 'nodeai.draft';
const UNTITLED = 'Untitled workflow';
const EMPTY_FP = fingerprint({ name: UNTITLED, nodes: [], edges: [] });
const CATEGORY_NAMES: Record<string, string> = { data: 'Data', ai: 'AI' };
const edgeOptions = { markerEnd: { type: MarkerType.ArrowClosed, width: 18, height: 18 } };
// React Flow's changes that alter the drawing (selecting or measuring a node does not).
const DRAWING_CHANGES = new Set(['position', 'add', 'remove', 'replace']);

let counter = 0;
const newId = (type: string) => `${type.replace(/_/g, '-')}-${Date.now().toString(36)}${(counter++).toString(36)}`;
const edgeId = (e: { source: string; target: string; sourceHandle?: string | null; targetHandle?: string | null }) => `${e.source}:${e.sourceHandle ?? DEFAULT_PORT}->${e.target}:${e.targetHandle ?? DEFAULT_PORT}`;
const isMac = typeof navigator !== 'undefined' && /Mac|iPhone|iPad/.test(navigator.platform);

type Screen = { kind: 'templates' } | { kind: 'open' } | { kind: 'secrets' } | { kind: 'jobs'; job?: string } | { kind: 'models' } | { kind: 'compare'; model: string } | null;
interface DataCheck {
  key: string;
  checking: boolean;
  report: DataReport | null;
  error: string | null;
  /** Why the cost is not for the Fine-Tune's model (one the check does not know). */
  note?: string;
}

export function Editor({ api, types, onLogout }: { api: Api; types: NodeType[]; onLogout: () => void }) {
  const [nodes, setNodes, onNodesChange] = useNodesState<WorkflowNode>([]);
  const [edges, setEdges, onEdgesChange] = useEdgesState<Edge>([]);
  const [selected, setSelected] = useState<string | null>(null);
  const [models, setModels] = useState<ApiModel[]>([]);
  const [secrets, setSecrets] = useState<ApiSecret[]>([]);
  const [catalog, setCatalog] = useState<CatalogModel[] | null>(null);
  const [placed, setPlaced] = useState<PlacedIssue[]>([]);
  // After a refused Run, the problems stay listed (as they are now) until they are fixed.
  const [showIssues, setShowIssues] = useState(false);
  const [runError, setRunError] = useState<string | null>(null);
  const [name, setName] = useState(UNTITLED);
  const [workflowId, setWorkflowId] = useState<string | null>(null);
  const [savedFp, setSavedFp] = useState(EMPTY_FP);
  const [saved, setSaved] = useState<Array<{ id: string; name: string; updated_at: number }>>([]);
  const [notice, setNotice] = useState<string | null>(null);
  const [screen, setScreen] = useState<Screen>(null);
  const [menuOpen, setMenuOpen] = useState(false);
  const [paletteFilter, setPaletteFilter] = useState('');
  const [checks, setChecks] = useState<Record<string, DataCheck>>({});
  const [ask, confirmDialog] = useConfirm();
  const { screenToFlowPosition } = useReactFlow();
  const autoFit = useAutoFit();
  const byType = useMemo(() => new Map(types.map((t) => [t.type, t])), [types]);
  const importInput = useRef<HTMLInputElement>(null);

  const refreshModels = useCallback(() => api.models().then(setModels, () => setModels([])), [api]);
  const refreshSecrets = useCallback(() => api.secrets().then(setSecrets, () => setSecrets([])), [api]);
  const refreshSaved = useCallback(() => api.workflows().then(setSaved, () => setSaved([])), [api]);
  useEffect(() => {
    void refreshModels();
    void refreshSecrets();
    void refreshSaved();
    api.catalog().then(setCatalog, () => setCatalog(null));
  }, [api, refreshModels, refreshSecrets, refreshSaved]);

  const patchNode = useCallback((id: string, patch: Partial<FlowNodeData>) => setNodes((ns) => ns.map((n) => (n.id === id ? { ...n, data: { ...n.data, ...patch } } : n))), [setNodes]);
  const { run, follow } = useRun(api, patchNode, refreshModels);

  const dataOf = useCallback(
    (type: string, config: Record<string, unknown>): FlowNodeData => {
      const t = byType.get(type)!;
      return { type, title: t.name, category: t.category, config, inputs: t.inputs.map((p) => p.name), outputs: t.outputs.map((p) => p.name) };
    },
    [byType],
  );

  const workflow = useCallback(
    (): WorkflowJson => ({
      name,
      nodes: nodes.map((n) => ({ id: n.id, type: n.data.type, config: n.data.config, position: { x: Math.round(n.position.x), y: Math.round(n.position.y) } })),
      edges: edges.map((e) => ({
        source: e.source,
        target: e.target,
        ...(e.sourceHandle && e.sourceHandle !== DEFAULT_PORT ? { sourceHandle: e.sourceHandle } : {}),
        ...(e.targetHandle && e.targetHandle !== DEFAULT_PORT ? { targetHandle: e.targetHandle } : {}),
      })),
    }),
    [name, nodes, edges],
  );
  const current = useMemo(() => workflow(), [workflow]);
  const currentFp = useMemo(() => fingerprint(current), [current]);
  const dirty = currentFp !== savedFp;

  /** Draws a workflow; unknown node types are left out, and said so. */
  const draw = useCallback(
    (wf: WorkflowJson, fit = true) => {
      const unknown = wf.nodes.filter((n) => !byType.has(n.type));
      const known = new Set(wf.nodes.filter((n) => byType.has(n.type)).map((n) => n.id));
      setNodes(wf.nodes.filter((n) => known.has(n.id)).map((n, i) => ({ id: n.id, type: 'workflow', position: n.position ?? { x: i * 280, y: 80 }, data: dataOf(n.type, n.config ?? {}) })));
      setEdges(
        wf.edges
          .filter((e) => known.has(e.source) && known.has(e.target))
          .map((e) => ({ id: edgeId(e), source: e.source, target: e.target, sourceHandle: e.sourceHandle ?? DEFAULT_PORT, targetHandle: e.targetHandle ?? DEFAULT_PORT })),
      );
      if (unknown.length) setNotice(`Left out ${unknown.length} node(s) of a type this server does not have: ${[...new Set(unknown.map((n) => n.type))].join(', ')}.`);
      if (fit) setTimeout(autoFit.fit, 50);
    },
    [autoFit.fit, byType, dataOf, setEdges, setNodes],
  );

  // ---- undo / redo: a person's edits, each burst one step once the drawing has settled ---------
  // Every edit a person makes goes through `edited()` first; any other change of the drawing (the
  // draft restored after a reload, a late response, an undo applied) is no step of its own.
  const undo = useRef(new UndoRecorder<WorkflowJson>((a, b) => fingerprint(a) === fingerprint(b)));
  const edited = useCallback(() => undo.current.edit(), []);
  const latest = useRef(current);
  latest.current = current;
  // Keyed on the fingerprint: a run's node states change the nodes often, the drawing not at all.
  useEffect(() => {
    if (!undo.current.changed(latest.current)) return;
    const timer = setTimeout(() => undo.current.settle(latest.current), 300);
    return () => clearTimeout(timer);
  }, [currentFp]);
  const travel = (direction: 'undo' | 'redo') => {
    const target = direction === 'undo' ? undo.current.undo(current) : undo.current.redo(current);
    if (!target) return;
    setName(target.name);
    draw(target, false);
  };
  const onNodesEdit = useCallback(
    (changes: NodeChange<WorkflowNode>[]) => {
      if (changes.some((c) => DRAWING_CHANGES.has(c.type))) edited();
      onNodesChange(changes);
    },
    [edited, onNodesChange],
  );
  const onEdgesEdit = useCallback(
    (changes: EdgeChange<Edge>[]) => {
      if (changes.some((c) => DRAWING_CHANGES.has(c.type))) edited();
      onEdgesChange(changes);
    },
    [edited, onEdgesChange],
  );

  // ---- the draft: the drawing survives a reload (keys never: only `$secret:` references) -------
  const restored = useRef(false);
  useEffect(() => {
    if (restored.current) return;
    restored.current = true;
    const draft = localStorage.getItem(DRAFT_KEY);
    if (!draft) return;
    try {
      const d = JSON.parse(draft) as { workflow: WorkflowJson; workflowId?: string; savedFp?: string };
      setName(d.workflow.name);
      setWorkflowId(d.workflowId ?? null);
      setSavedFp(d.savedFp ?? EMPTY_FP);
      draw(d.workflow);
    } catch {
      localStorage.removeItem(DRAFT_KEY);
    }
  }, [draw]);
  useEffect(() => {
    if (restored.current) localStorage.setItem(DRAFT_KEY, JSON.stringify({ workflow: withoutSecrets(current), workflowId, savedFp }));
  }, [current, workflowId, savedFp]);

  // ---- problems, checked as the drawing changes ------------------------------------------------
  const labelOf = useCallback((id: string) => nodes.find((n) => n.id === id)?.data.title ?? id, [nodes]);
  useEffect(() => {
    if (current.nodes.length === 0) return setPlaced([]);
    const timer = setTimeout(() => {
      api.validate(current).then(
        (r) => setPlaced(r.issues.map((i) => placeIssue(i, labelOf))),
        () => undefined,
      );
    }, 400);
    return () => clearTimeout(timer);
    // Keyed on the fingerprint: node statuses changing during a run are no reason to re-check.
  }, [api, currentFp]);

  // The data check of each File Loader's file, with the split and epochs of the Fine-Tune it feeds
  // and, for a remote provider, its model (so the cost is that provider's price).
  useEffect(() => {
    for (const n of nodes) {
      if (n.data.type !== 'file_loader') continue;
      const fileId = n.data.config.file_id;
      if (typeof fileId !== 'string' || !/^file-[A-Za-z0-9]+$/.test(fileId)) continue;
      const downstream = nodes.find((t) => t.data.type === 'finetune' && edges.some((e) => e.source === n.id && e.target === t.id));
      const cfg = downstream?.data.config ?? {};
      const model = (cfg.provider ?? 'local') !== 'local' && typeof cfg.base_model === 'string' && cfg.base_model.trim() ? cfg.base_model.trim() : undefined;
      const options = {
        ...(typeof cfg.validation_split === 'number' && cfg.validation_split >= 0 && cfg.validation_split <= 0.5 ? { validation_split: cfg.validation_split } : {}),
        ...((Number.isInteger(cfg.epochs) && (cfg.epochs as number) >= 1 && (cfg.epochs as number) <= 50) || cfg.epochs === 'auto' ? { epochs: cfg.epochs as number | 'auto' } : {}),
      };
      const key = `${fileId}|${model ?? ''}|${JSON.stringify(options)}`;
      if (checks[n.id]?.key === key) continue;
      setChecks((c) => ({ ...c, [n.id]: { key, checking: true, report: null, error: null } }));
      const settle = (done: Omit<DataCheck, 'key' | 'checking'>) => setChecks((c) => (c[n.id]?.key === key ? { ...c, [n.id]: { key, checking: false, ...done } } : c));
      const check = async (): Promise<Omit<DataCheck, 'key' | 'checking'>> => {
        if (!model) return { report: await api.checkFile(fileId, options), error: null };
        try {
          return { report: await api.checkFile(fileId, { ...options, model }), error: null };
        } catch (err) {
          // A model the check does not know (one being typed, say) is the Fine-Tune's problem, not
          // the data's: the file is checked all the same, without that model's cost.
          return { report: await api.checkFile(fileId, options), error: null, note: `No cost for ${model}: ${(err as Error).message}` };
        }
      };
      check().then(settle, (err: Error) => settle({ report: null, error: err.message }));
    }
  }, [api, nodes, edges, checks]);

  // Each node shows its first problem: a failed data check, else what the server's check found.
  useEffect(() => {
    setNodes((ns) => {
      let changed = false;
      const next = ns.map((n) => {
        const check = checks[n.id];
        const issue = placed.find((p) => p.nodeId === n.id);
        const firstError = check?.report?.errors[0];
        const problem =
          check?.report && !check.report.trainable
            ? `Data check: ${check.report.error_count} error(s)${firstError ? ` — ${firstError.line !== null ? `line ${firstError.line}: ` : ''}${firstError.message}` : ''}`
            : check?.error
              ? `Data check failed: ${check.error}`
              : issue
                ? issue.field
                  ? `${fieldLabel(issue.field)} ${issue.short}.`
                  : issue.text.replace(`${n.data.title}: `, '')
                : undefined;
        if (problem === n.data.problem) return n;
        changed = true;
        return { ...n, data: { ...n.data, problem } };
      });
      return changed ? next : ns;
    });
  }, [placed, checks, setNodes]);

  // ---- editing ----------------------------------------------------------------------------------
  const addNode = useCallback(
    (type: string, position?: { x: number; y: number }, config: Record<string, unknown> = {}) => {
      const id = newId(type);
      edited();
      setNodes((ns) => [...ns.map((n) => ({ ...n, selected: false })), { id, type: 'workflow', position: position ?? { x: 40 + ns.length * 40, y: 220 + ns.length * 30 }, selected: true, data: dataOf(type, config) }]);
      setSelected(id);
      return id;
    },
    [dataOf, edited, setNodes],
  );

  const starter = () => {
    edited();
    const load = newId('file_loader');
    const ft = newId('finetune');
    const chat = newId('chat');
    draw({
      name: 'File Loader → Fine-Tune → Chat',
      nodes: [
        { id: load, type: 'file_loader', config: {}, position: { x: 0, y: 80 } },
        { id: ft, type: 'finetune', config: { epochs: 3 }, position: { x: 300, y: 80 } },
        { id: chat, type: 'chat', config: { prompt: 'How do I reset my password?', max_tokens: 64 }, position: { x: 600, y: 80 } },
      ],
      edges: [
        { source: load, target: ft },
        { source: ft, target: chat },
      ],
    });
    setName('File Loader → Fine-Tune → Chat');
    setSelected(load);
  };

  /** Asks before unsaved changes would be lost; true when it is fine to go on. */
  const mayDiscard = async (action: string): Promise<boolean> => {
    if (!dirty || nodes.length === 0) return true;
    const choice = await ask({
      title: 'Unsaved changes',
      message: `"${name}" has changes that are not saved. ${action} would lose them.`,
      choices: [
        { label: 'Save first', value: 'save' },
        { label: 'Discard changes', value: 'discard', danger: true },
      ],
    });
    if (choice === 'save') return save();
    return choice === 'discard';
  };

  /** Starts a fresh document: a new ID on the next save, never the old one's. */
  const startDocument = (wf: WorkflowJson, savedAs: string | null, fp: string) => {
    undo.current.reset(wf);
    setWorkflowId(savedAs);
    setName(wf.name);
    setSavedFp(fp);
    setSelected(null);
    setShowIssues(false);
    setRunError(null);
    setChecks({});
    draw(wf);
  };

  const newWorkflow = async () => {
    if (!(await mayDiscard('Starting a new workflow'))) return;
    startDocument({ name: UNTITLED, nodes: [], edges: [] }, null, EMPTY_FP);
    setNotice('New workflow.');
  };

  const onConnect = useCallback(
    (c: Connection) => {
      const wire = { source: c.source, target: c.target, sourceHandle: c.sourceHandle ?? DEFAULT_PORT, targetHandle: c.targetHandle ?? DEFAULT_PORT };
      const problem = connectionProblem(wire, nodes.map((n) => ({ id: n.id, type: n.data.type, label: n.data.title })), edges, byType);
      if (problem) return setNotice(problem);
      edited();
      setEdges((es) => [...es, { ...wire, id: edgeId(wire) }]);
    },
    [nodes, edges, byType, edited, setEdges],
  );
  const wireNodes = useMemo(() => nodes.map((n) => ({ id: n.id, type: n.data.type, label: n.data.title })), [nodes]);
  const isValidConnection = useCallback(
    (c: Connection | Edge) => connectionProblem({ source: c.source, target: c.target, sourceHandle: c.sourceHandle ?? DEFAULT_PORT, targetHandle: c.targetHandle ?? DEFAULT_PORT }, wireNodes, edges, byType) === null,
    [wireNodes, edges, byType],
  );
  // A refused drop says why (React Flow only greys the handle while dragging).
  const onConnectEnd = useCallback(
    (_: MouseEvent | TouchEvent, state: FinalConnectionState) => {
      if (state.isValid !== false || !state.fromNode || !state.toNode || !state.toHandle) return;
      const fromSource = state.fromHandle?.type === 'source';
      const wire = fromSource
        ? { source: state.fromNode.id, sourceHandle: state.fromHandle?.id ?? DEFAULT_PORT, target: state.toNode.id, targetHandle: state.toHandle.id ?? DEFAULT_PORT }
        : { source: state.toNode.id, sourceHandle: state.toHandle.id ?? DEFAULT_PORT, target: state.fromNode.id, targetHandle: state.fromHandle?.id ?? DEFAULT_PORT };
      const problem = connectionProblem(wire, wireNodes, edges, byType);
      if (problem) setNotice(problem);
    },
    [wireNodes, edges, byType],
  );

  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    const type = e.dataTransfer.getData('application/nodeai-node');
    if (type && byType.has(type)) addNode(type, screenToFlowPosition({ x: e.clientX, y: e.clientY }));
  };

  // ---- clipboard --------------------------------------------------------------------------------
  const clipboard = useRef<Clip | null>(null);
  const selectedIds = () => new Set(nodes.filter((n) => n.selected).map((n) => n.id));
  const paste = (clip: Clip) => {
    const pasted = pasteClip(clip, newId);
    edited();
    setNodes((ns) => [...ns.map((n) => ({ ...n, selected: false })), ...pasted.nodes.map((n) => ({ id: n.id, type: 'workflow' as const, position: n.position!, selected: true, data: dataOf(n.type, n.config) }))]);
    setEdges((es) => [...es, ...pasted.edges.map((e) => ({ ...e, id: edgeId(e), sourceHandle: e.sourceHandle ?? DEFAULT_PORT, targetHandle: e.targetHandle ?? DEFAULT_PORT }))]);
    if (pasted.nodes.length === 1) setSelected(pasted.nodes[0].id);
    clipboard.current = { nodes: pasted.nodes, edges: pasted.edges };
  };

  // ---- the document on the server ---------------------------------------------------------------
  const save = async (): Promise<boolean> => {
    try {
      const wf = workflow();
      const stored = await api.saveWorkflow(wf, workflowId ?? undefined);
      setWorkflowId(stored.id);
      setSavedFp(fingerprint(wf));
      setNotice(`Saved "${stored.name}".`);
      void refreshSaved();
      return true;
    } catch (err) {
      setNotice(`Not saved: ${(err as Error).message}`);
      return false;
    }
  };

  const open = async (id: string) => {
    setScreen(null);
    if (id === workflowId && !dirty) return;
    if (!(await mayDiscard('Opening another workflow'))) return;
    try {
      const wf = await api.workflow(id);
      startDocument({ ...wf.definition, name: wf.definition.name }, wf.id, fingerprint(wf.definition));
      setNotice(`Opened "${wf.definition.name}".`);
    } catch (err) {
      setNotice(`Could not open it: ${(err as Error).message}`);
    }
  };

  const duplicate = async () => {
    const copy = { ...workflow(), name: copyName(name, saved.map((w) => w.name)) };
    try {
      const stored = await api.saveWorkflow(copy);
      startDocument(copy, stored.id, fingerprint(copy));
      setNotice(`Duplicated as "${copy.name}"; you are editing the copy.`);
      void refreshSaved();
    } catch (err) {
      setNotice(`Not duplicated: ${(err as Error).message}`);
    }
  };

  const remove = async (id: string, label: string) => {
    const choice = await ask({ title: 'Delete workflow', message: `Delete "${label}" from the server? This cannot be undone.`, choices: [{ label: 'Delete', value: 'delete', danger: true }] });
    if (choice !== 'delete') return;
    try {
      await api.deleteWorkflow(id);
      if (id === workflowId) startDocument({ name: UNTITLED, nodes: [], edges: [] }, null, EMPTY_FP);
      setNotice(`Deleted "${label}".`);
      void refreshSaved();
    } catch (err) {
      setNotice(`Not deleted: ${(err as Error).message}`);
    }
  };

  const exportJson = () => {
    const blob = new Blob([JSON.stringify(withoutSecrets(workflow()), null, 2) + '\n'], { type: 'application/json' });
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = `${name.replace(/[^\w -]+/g, '').trim() || 'workflow'}.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  };

  const importJson = async (file: File) => {
    let wf: WorkflowJson;
    try {
      wf = parseWorkflowFile(await file.text(), file.name);
    } catch (err) {
      return setNotice((err as Error).message);
    }
    if (!(await mayDiscard('Importing a workflow'))) return;
    // An import is a new document until it is saved: it never overwrites the one open before.
    startDocument(wf, null, EMPTY_FP);
    setNotice(`Imported "${wf.name}" (not saved yet).`);
  };

  const useTemplate = async (id: string) => {
    setScreen(null);
    if (!(await mayDiscard('Opening a template'))) return;
    try {
      const wf = await api.useTemplate(id);
      startDocument(wf, null, EMPTY_FP);
      setNotice(`Opened the template "${wf.name}"; its data is uploaded. Save to keep your changes.`);
    } catch (err) {
      setNotice(`Template not opened: ${(err as Error).message}`);
    }
  };

  // ---- running ----------------------------------------------------------------------------------
  const start = async () => {
    setRunError(null);
    const wf = workflow();
    const check = await api.validate(wf).catch((err: Error) => ({ valid: false, issues: [{ message: err.message, node_id: null }] }));
    if (!check.valid) {
      const issues = check.issues.map((i) => placeIssue(i, labelOf));
      setPlaced(issues);
      setShowIssues(true);
      const first = issues.find((i) => i.nodeId);
      if (first?.nodeId) setSelected(first.nodeId);
      return;
    }
    setShowIssues(false);
    setNodes((ns) => ns.map((n) => ({ ...n, data: { ...n.data, status: 'waiting', detail: undefined, progress: undefined } })));
    try {
      await follow((await api.startRun(wf)).id);
    } catch (err) {
      setRunError((err as Error).message);
    }
  };

  const stopRun = async () => {
    if (!run) return;
    let cancelJob = false;
    if (run.jobId) {
      const choice = await ask({
        title: 'Stop the run',
        message: `The run waits on training job ${run.jobId}. Stopping the run alone lets the job finish and register its model.`,
        choices: [
          { label: 'Stop the run and cancel training', value: 'both', danger: true },
          { label: 'Stop the run only', value: 'run' },
        ],
      });
      if (choice === 'cancel') return;
      cancelJob = choice === 'both';
    }
    try {
      if (cancelJob && run.jobId) await api.jobAction(run.jobId, 'cancel');
      await api.cancelRun(run.id);
    } catch (err) {
      setNotice(`Could not stop: ${(err as Error).message}`);
    }
  };

  // ---- keyboard ---------------------------------------------------------------------------------
  const keys = useRef<(e: KeyboardEvent) => void>(() => undefined);
  keys.current = (e: KeyboardEvent) => {
    const mod = isMac ? e.metaKey : e.ctrlKey;
    if (!mod) return;
    const key = e.key.toLowerCase();
    if (key === 's') {
      e.preventDefault();
      if (nodes.length > 0) void save();
      return;
    }
    const target = e.target as HTMLElement | null;
    if (screen || target?.closest('input, textarea, select, [contenteditable="true"], dialog')) return;
    if (key === 'z' && !e.shiftKey) travel('undo');
    else if ((key === 'z' && e.shiftKey) || key === 'y') travel('redo');
    else if (key === 'c') {
      const ids = selectedIds();
      if (ids.size) clipboard.current = clipOf(workflow(), ids);
      return;
    } else if (key === 'v') {
      if (clipboard.current) paste(clipboard.current);
    } else if (key === 'd') {
      const ids = selectedIds();
      if (ids.size) paste(clipOf(workflow(), ids));
    } else if (key === 'a') setNodes((ns) => ns.map((n) => ({ ...n, selected: true })));
    else return;
    e.preventDefault();
  };
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => keys.current(e);
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  const selectedNode = nodes.find((n) => n.id === selected);
  const runIssues = [...(showIssues ? placed.map((p) => p.text) : []), ...(runError ? [runError] : [])];
  const running = run !== null && !DONE.has(run.status);
  const fieldErrors = Object.fromEntries(placed.filter((p) => p.nodeId === selected && p.field).map((p) => [p.field!, p.short]));
  const mod = isMac ? '⌘' : 'Ctrl+';
  const groups = useMemo(() => {
    const needle = paletteFilter.trim().toLowerCase();
    const shown = types.filter((t) => !needle || `${t.name} ${t.type} ${CATEGORY_NAMES[t.category] ?? t.category}`.toLowerCase().includes(needle)).sort((a, b) => a.name.localeCompare(b.name));
    const byCategory = new Map<string, NodeType[]>();
    for (const t of shown) byCategory.set(t.category, [...(byCategory.get(t.category) ?? []), t]);
    return [...byCategory.entries()].sort(([a], [b]) => a.localeCompare(b));
  }, [types, paletteFilter]);

  const menuItem = (label: string, action: () => void, shortcut?: string, disabled = false) => (
    <li role="none">
      <button
        role="menuitem"
        disabled={disabled}
        onClick={() => {
          setMenuOpen(false);
          action();
        }}
      >
        {label}
        {shortcut && <kbd>{shortcut}</kbd>}
      </button>
    </li>
  );

  return (
    <div className="app">
      <header>
        <strong className="brand">NodeAI</strong>
        <input className="wf-name" aria-label="Workflow name" value={name} onChange={(e) => (edited(), setName(e.target.value))} />
        <span className={`save-state ${dirty ? 'dirty' : ''}`} data-testid="save-state" role="status">
          {dirty ? '● Unsaved' : workflowId ? 'Saved' : ''}
        </span>
        <div className="menu-wrap" onBlur={(e) => !e.currentTarget.contains(e.relatedTarget as Node) && setMenuOpen(false)}>
          <button aria-haspopup="menu" aria-expanded={menuOpen} onClick={() => setMenuOpen((o) => !o)} onKeyDown={(e) => e.key === 'Escape' && setMenuOpen(false)}>
            Workflow ▾
          </button>
          {menuOpen && (
            <ul className="menu" role="menu" aria-label="Workflow" onKeyDown={(e) => e.key === 'Escape' && setMenuOpen(false)}>
              {menuItem('New', () => void newWorkflow())}
              {menuItem('Open…', () => (void refreshSaved(), setScreen({ kind: 'open' })))}
              {menuItem('Templates…', () => setScreen({ kind: 'templates' }))}
              {menuItem('Save', () => void save(), `${mod}S`, nodes.length === 0)}
              {menuItem('Duplicate', () => void duplicate(), undefined, nodes.length === 0)}
              {menuItem('Export JSON', exportJson, undefined, nodes.length === 0)}
              {menuItem('Import JSON…', () => importInput.current?.click())}
              {menuItem('Delete', () => workflowId && void remove(workflowId, name), undefined, !workflowId)}
            </ul>
          )}
          <input ref={importInput} type="file" accept=".json,application/json" hidden data-testid="import" onChange={(e) => (e.target.files?.[0] && void importJson(e.target.files[0]), (e.target.value = ''))} />
        </div>
        <button onClick={() => void save()} disabled={nodes.length === 0} title={`Save (${mod}S)`}>
          Save
        </button>
        <button className="primary" onClick={() => void start()} disabled={nodes.length === 0 || running}>
          {running ? 'Running…' : 'Run'}
        </button>
        {running && <button onClick={() => void stopRun()}>Stop</button>}
        <span className="spacer" />
        <nav className="screens" aria-label="Screens">
          <button onClick={() => setScreen({ kind: 'jobs' })}>Jobs</button>
          <button onClick={() => (void refreshModels(), setScreen({ kind: 'models' }))}>Models</button>
          <button onClick={() => setScreen({ kind: 'secrets' })}>Secrets</button>
          <button className="link" onClick={onLogout}>
            Sign out
          </button>
        </nav>
      </header>
      {notice && (
        <div className="notice" role="status" data-testid="notice">
          {notice}
          <button className="link" aria-label="Dismiss" onClick={() => setNotice(null)}>
            ✕
          </button>
        </div>
      )}
      <aside className="palette" aria-label="Nodes">
        <h2>Nodes</h2>
        <input type="search" aria-label="Search nodes" placeholder="Search…" value={paletteFilter} onChange={(e) => setPaletteFilter(e.target.value)} />
        {groups.map(([category, list]) => (
          <div key={category} role="group" aria-label={CATEGORY_NAMES[category] ?? category}>
            <h3>{CATEGORY_NAMES[category] ?? category}</h3>
            {list.map((t) => (
              <div
                key={t.type}
                className={`palette-item ${t.category}`}
                draggable
                role="button"
                tabIndex={0}
                title={t.description}
                onDragStart={(e) => e.dataTransfer.setData('application/nodeai-node', t.type)}
                onClick={() => addNode(t.type)}
                onKeyDown={(e) => {
                  if (e.key === 'Enter' || e.key === ' ') {
                    e.preventDefault();
                    addNode(t.type);
                  }
                }}
              >
                {t.name}
              </div>
            ))}
          </div>
        ))}
        {groups.length === 0 && <p className="hint">No node matches.</p>}
        <p className="hint">
          Drag a node onto the canvas (or press Enter on it), then connect an output on its right to an input on the next one's left. {mod}Z undoes, {mod}C/{mod}V copy and paste.
        </p>
      </aside>
      <section className="canvas-col" aria-label="Canvas">
        <div
          className="canvas"
          onDrop={onDrop}
          onDragOver={(e) => e.preventDefault()}
          onKeyDown={(e) => {
            // Enter on a focused node opens its settings even when that node is already selected
            // (React Flow then changes no selection, so onSelectionChange alone would not fire).
            const id = e.key === 'Enter' && e.target instanceof HTMLElement && e.target.classList.contains('react-flow__node') ? e.target.dataset.id : undefined;
            if (id) setSelected(id);
          }}
        >
          <ReactFlow
            nodes={nodes}
            edges={edges}
            nodeTypes={nodeTypes}
            onNodesChange={onNodesEdit}
            onEdgesChange={onEdgesEdit}
            onConnect={onConnect}
            onConnectEnd={onConnectEnd}
            isValidConnection={isValidConnection}
            defaultEdgeOptions={edgeOptions}
            onNodeClick={(_, n) => setSelected(n.id)}
            // A node chosen with the keyboard (Tab to it, Enter) opens its settings as a click does.
            onSelectionChange={({ nodes: chosen }) => chosen.length === 1 && setSelected(chosen[0].id)}
            onPaneClick={() => setSelected(null)}
            colorMode="system"
            fitView
            fitViewOptions={FIT_OPTIONS}
            onMoveStart={autoFit.onMoveStart}
            deleteKeyCode={['Backspace', 'Delete']}
          >
            <Background />
            <Controls fitViewOptions={FIT_OPTIONS} onFitView={autoFit.fitted} onZoomIn={autoFit.movedByHand} onZoomOut={autoFit.movedByHand} />
          </ReactFlow>
          {nodes.length === 0 && (
            <div className="empty">
              <p>Start from the classic workflow or a template, or drag nodes in from the left.</p>
              <div className="actions">
                <button className="primary" onClick={starter}>
                  File Loader → Fine-Tune → Chat
                </button>
                <button onClick={() => setScreen({ kind: 'templates' })}>Templates…</button>
              </div>
            </div>
          )}
        </div>
      </section>
      {run && <RunPanel api={api} run={run} onShowJob={(job) => setScreen({ kind: 'jobs', job })} onCompare={(model) => (void refreshModels(), setScreen({ kind: 'compare', model }))} />}
      <aside className="side" aria-label="Settings">
        {runIssues.length > 0 && (
          <div className="issues" role="alert">
            <h2>Cannot run yet</h2>
            <ul>
              {runIssues.map((i) => (
                <li key={i}>{i}</li>
              ))}
            </ul>
          </div>
        )}
        {selectedNode ? (
          <section>
            <h2>{selectedNode.data.title} settings</h2>
            {placed
              .filter((p) => p.nodeId === selectedNode.id && !p.field)
              .map((p) => (
                <p className="error node-issue" key={p.text}>
                  {p.short}
                </p>
              ))}
            <SettingsForm
              key={selectedNode.id}
              api={api}
              nodeType={byType.get(selectedNode.data.type)!}
              config={selectedNode.data.config}
              models={models}
              secrets={secrets}
              catalog={catalog}
              errors={fieldErrors}
              onManageSecrets={() => setScreen({ kind: 'secrets' })}
              onChange={(update) => (edited(), setNodes((ns) => ns.map((n) => (n.id === selectedNode.id ? { ...n, data: { ...n.data, config: update(n.data.config) } } : n))))}
            />
            {selectedNode.data.type === 'file_loader' && checks[selectedNode.id] && <DataPanel report={checks[selectedNode.id].report} error={checks[selectedNode.id].error} note={checks[selectedNode.id].note} checking={checks[selectedNode.id].checking} />}
          </section>
        ) : (
          <p className="hint">Select a node to edit its settings.</p>
        )}
      </aside>
      {screen?.kind === 'templates' && <TemplateGallery api={api} onClose={() => setScreen(null)} onBlank={() => (setScreen(null), void mayDiscard('Starting from the classic workflow').then((ok) => ok && (startDocument({ name: UNTITLED, nodes: [], edges: [] }, null, EMPTY_FP), starter())))} onUse={(t) => void useTemplate(t.id)} />}
      {screen?.kind === 'open' && <OpenDialog saved={saved} current={workflowId} onOpen={(id) => void open(id)} onDelete={(id, label) => void remove(id, label)} onClose={() => setScreen(null)} />}
      {screen?.kind === 'secrets' && <SecretsScreen api={api} secrets={secrets} onChanged={() => void refreshSecrets()} onClose={() => setScreen(null)} />}
      {screen?.kind === 'jobs' && <JobsScreen api={api} initialJob={screen.job} onClose={() => setScreen(null)} />}
      {screen?.kind === 'models' && (
        <ModelsScreen
          api={api}
          models={models}
          onChanged={() => void refreshModels()}
          onClose={() => setScreen(null)}
          onCompare={(m) => setScreen({ kind: 'compare', model: m.id })}
          onUse={(m) => {
            setScreen(null);
            addNode('chat', undefined, { use_finetuned_model: true, finetuned_model: m.id, prompt: 'Hello!' });
          }}
        />
      )}
      {screen?.kind === 'compare' && <CompareScreen api={api} models={models} first={models.find((m) => m.id === screen.model)?.base_model ?? 'nodeai-tiny'} second={screen.model} onClose={() => setScreen(null)} />}
      {confirmDialog}
    </div>
  );
}

