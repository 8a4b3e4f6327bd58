// The current run: started from the canvas or found again after a page reload (its ID and log
// are kept in localStorage), followed live over the events stream — node states, the training
// job's metrics, the log — with what happened before the page opened read back from the API.
// The run's state is also polled while it lasts, so a run that ends before the stream is open
// (one that fails in milliseconds) still shows how it ended.
import { useCallback, useEffect, useRef, useState } from 'react';
import { ApiError, type Api, type ApiRun } from './api.ts';
import type { LossPoint } from './LossChart.tsx';

export interface TrainingStats {
  step?: number;
  total_steps?: number;
  epoch?: number;
  total_epochs?: number;
  tokens_per_second?: number;
  eta_seconds?: number;
  learning_rate?: number;
  train_mean_token_accuracy?: number;
  valid_mean_token_accuracy?: number;
}

export interface RunState {
  id: string;
  status: string;
  log: string[];
  loss: LossPoint[];
  stats?: TrainingStats;
  jobId?: string;
  result?: ApiRun;
  fineTunedModel?: string;
}

export interface NodeUpdate extends Record<string, unknown> {
  status?: string;
  detail?: string;
  progress?: number;
}

const RUN_KEY = 'nodeai.run';
const LOG_KEY = 'nodeai.runlog';
const POLL_MS = 2000;
export const DONE = new Set(['succeeded', 'failed', 'cancelled']);

type Metrics = TrainingStats & { train_loss?: number; valid_loss?: number };

const toPoint = (m: Metrics): LossPoint => ({ step: m.step!, train_loss: m.train_loss, valid_loss: m.valid_loss });
const progressOf = (m: Metrics): NodeUpdate => ({
  status: 'training',
  progress: m.total_steps ? m.step! / m.total_steps : undefined,
  detail: `epoch ${m.epoch}/${m.total_epochs} · loss ${m.train_loss?.toFixed(3) ?? '–'}`,
});

function savedLog(runId: string): string[] {
  try {
    const saved = JSON.parse(localStorage.getItem(LOG_KEY) ?? 'null') as { runId: string; lines: string[] } | null;
    return saved?.runId === runId ? saved.lines : [];
  } catch {
    return [];
  }
}

export function useRun(api: Api, updateNode: (id: string, update: NodeUpdate) => void, onFinished: () => void) {
  const [run, setRun] = useState<RunState | null>(null);
  const stop = useRef<(() => void) | null>(null);
  // Callbacks change identity with the nodes they close over; the stream keeps the latest.
  const latest = useRef({ updateNode, onFinished });
  latest.current = { updateNode, onFinished };

  useEffect(() => {
    if (run) localStorage.setItem(LOG_KEY, JSON.stringify({ runId: run.id, lines: run.log }));
  }, [run]);

  const generation = useRef(0);
  const follow = useCallback(
    async (runId: string) => {
      stop.current?.();
      // A newer follow() (another Run, or the reload's) takes over: this one then touches nothing.
      const mine = ++generation.current;
      const isCurrent = () => generation.current === mine;
      localStorage.setItem(RUN_KEY, runId);
      const update = (f: (r: RunState) => RunState) => setRun((r) => (r && r.id === runId && isCurrent() ? f(r) : r));
      const say = (line: string) => update((r) => ({ ...r, log: [...r.log.slice(-300), line] }));
      let trainingNode: string | undefined;
      let finished = false;
      const finish = (result: ApiRun) => {
        if (finished || !isCurrent()) return;
        finished = true;
        stop.current?.();
        const ft = result.nodes.find((n) => n.node_type === 'finetune' && n.outputs?.fine_tuned_model);
        update((r) => ({
          ...r,
          status: result.status,
          result,
          fineTunedModel: ft?.outputs?.fine_tuned_model as string | undefined,
          log: r.log.at(-1)?.startsWith('Run ') ? r.log : [...r.log, `Run ${result.status}${result.error ? `: ${result.error.message}` : ''}`],
        }));
        for (const n of result.nodes) latest.current.updateNode(n.node_id, { status: n.status, detail: n.error?.message, progress: n.node_type === 'finetune' && n.status === 'succeeded' ? 1 : undefined });
        latest.current.onFinished();
      };
      const check = () =>
        api.run(runId).then((r) => {
          if (DONE.has(r.status)) finish(r);
          else if (r.waiting?.job_id) update((s) => (s.jobId ? s : { ...s, jobId: r.waiting!.job_id }));
          return r;
        });
      setRun({ id: runId, status: 'running', log: savedLog(runId), loss: [] });

      const close = api.events(runId, (event, data) => {
        if (!isCurrent()) return;
        const node = data.node_id as string | undefined;
        switch (event) {
          case 'node.started':
            latest.current.updateNode(node!, { status: 'running', detail: undefined });
            break;
          case 'node.succeeded':
            latest.current.updateNode(node!, { status: 'succeeded', detail: undefined });
            break;
          case 'node.failed': {
            const message = (data.error as { message?: string } | undefined)?.message ?? '';
            latest.current.updateNode(node!, { status: 'failed', detail: message });
            say(`✘ ${node}: ${message}`);
            break;
          }
          case 'node.waiting': {
            trainingNode = node;
            const jobId = (data.wait as { jobId?: string } | undefined)?.jobId;
            latest.current.updateNode(node!, { status: 'training', progress: 0 });
            if (jobId) update((r) => ({ ...r, jobId }));
            say(`${node} is training (job ${jobId ?? ''})`);
            break;
          }
          case 'node.log':
            if (data.level !== 'debug') say(`${node}: ${data.message}`);
            break;
          case 'job.metrics': {
            const m = (data.data ?? {}) as Metrics;
            if (typeof m.step !== 'number') break;
            update((r) => (r.loss.some((p) => p.step === m.step) ? { ...r, stats: m } : { ...r, stats: m, loss: [...r.loss, toPoint(m)] }));
            if (trainingNode) latest.current.updateNode(trainingNode, progressOf(m));
            break;
          }
          case 'job.event':
            say(String(data.message));
            break;
          case 'run.snapshot':
            if (DONE.has(String(data.status))) void check().catch(() => undefined);
            break;
          case 'run.finished':
            void check().catch(() => undefined);
            break;
        }
      });
      const poll = setInterval(() => {
        if (finished || !isCurrent()) return clearInterval(poll);
        void check().catch(() => undefined);
      }, POLL_MS);
      stop.current = () => {
        close();
        clearInterval(poll);
      };

      // What happened before the stream opened: node states, and the job's loss so far.
      let current: ApiRun;
      try {
        current = await check();
      } catch (err) {
        stop.current();
        if (!isCurrent()) return;
        // Gone (another data directory, deleted): forget it. Unreachable for now: keep it for later.
        if (err instanceof ApiError && err.status === 404) localStorage.removeItem(RUN_KEY);
        setRun(null);
        return;
      }
      if (!isCurrent()) return;
      if (!DONE.has(current.status)) {
        for (const n of current.nodes) if (n.status !== 'running') latest.current.updateNode(n.node_id, { status: n.status });
        if (current.waiting) {
          trainingNode = current.waiting.node_id;
          latest.current.updateNode(trainingNode, { status: 'training' });
        }
      }
      const jobId = current.waiting?.job_id ?? (current.nodes.find((n) => n.node_type === 'finetune')?.outputs?.job_id as string | undefined);
      if (jobId) {
        update((r) => ({ ...r, jobId }));
        const history = (await api.jobMetrics(jobId).catch(() => [])) as Metrics[];
        const points = history.filter((m) => typeof m.step === 'number');
        update((r) => {
          const seen = new Set(r.loss.map((p) => p.step));
          return { ...r, stats: r.stats ?? points.at(-1), loss: [...points.filter((m) => !seen.has(m.step!)).map(toPoint), ...r.loss].sort((a, b) => a.step - b.step) };
        });
        const lastPoint = points.at(-1);
        if (lastPoint && trainingNode && !DONE.has(current.status) && isCurrent()) latest.current.updateNode(trainingNode, progressOf(lastPoint));
      }
    },
    [api],
  );

  // A run left open in this browser is followed again after a reload.
  useEffect(() => {
    const id = localStorage.getItem(RUN_KEY);
    if (id) void follow(id);
    return () => stop.current?.();
  }, [follow]);

  return { run, follow };
}
