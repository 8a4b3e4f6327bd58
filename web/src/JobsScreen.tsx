// Training jobs: their status and progress; for one job its events, loss curve and checkpoints,
// with cancel, pause and resume.
import { useCallback, useEffect, useState } from 'react';
import type { Api, Checkpoint, FineTuningJob, JobEvent } from './api.ts';
import { LossChart, type LossPoint } from './LossChart.tsx';
import { Modal } from './Modal.tsx';
import { Table } from './Table.tsx';

const ACTIVE = new Set(['validating_files', 'queued', 'running', 'paused']);
const when = (seconds: number | null) => (seconds ? new Date(seconds * 1000).toLocaleString() : '–');

export function JobsScreen({ api, onClose, initialJob }: { api: Api; onClose: () => void; initialJob?: string }) {
  const [jobs, setJobs] = useState<FineTuningJob[]>([]);
  const [selected, setSelected] = useState<string | null>(initialJob ?? null);
  const [error, setError] = useState<string | null>(null);
  const refresh = useCallback(() => api.jobs().then(setJobs, (err: Error) => setError(err.message)), [api]);
  useEffect(() => {
    void refresh();
    const timer = setInterval(() => void refresh(), 3000);
    return () => clearInterval(timer);
  }, [refresh]);
  return (
    <Modal title="Training jobs" onClose={onClose} wide>
      {error && <p className="error">{error}</p>}
      <div className="split-view">
        <Table columns={['Job', 'Status', 'Base', 'Started']} empty="No training jobs yet. Run a workflow with a Fine-Tune node." rows={jobs.length}>
          {jobs.map((j) => (
              <tr key={j.id} aria-selected={j.id === selected}>
                <td>
                  <button className="link" onClick={() => setSelected(j.id)}>
                    {j.suffix ?? j.id}
                  </button>
                </td>
                <td>
                  <span className={`badge ${j.status}`}>{j.status}</span>
                </td>
                <td>{j.model}</td>
                <td>{when(j.created_at)}</td>
              </tr>
            ))}
        </Table>
        {selected && <JobDetail key={selected} api={api} id={selected} onChanged={refresh} />}
      </div>
    </Modal>
  );
}

function JobDetail({ api, id, onChanged }: { api: Api; id: string; onChanged: () => void }) {
  const [job, setJob] = useState<FineTuningJob | null>(null);
  const [events, setEvents] = useState<JobEvent[]>([]);
  const [checkpoints, setCheckpoints] = useState<Checkpoint[]>([]);
  const [points, setPoints] = useState<LossPoint[]>([]);
  const [message, setMessage] = useState<string | null>(null);
  const load = useCallback(async () => {
    const [j, e, c, m] = await Promise.all([api.job(id), api.jobEvents(id), api.jobCheckpoints(id).catch(() => []), api.jobMetrics(id).catch(() => [])]);
    setJob(j);
    setEvents(e);
    setCheckpoints(c);
    setPoints(m.filter((x) => typeof x.step === 'number').map((x) => ({ step: x.step as number, train_loss: x.train_loss as number | undefined, valid_loss: x.valid_loss as number | undefined })));
  }, [api, id]);
  useEffect(() => {
    void load().catch((err: Error) => setMessage(err.message));
    const timer = setInterval(() => void load().catch(() => undefined), 3000);
    return () => clearInterval(timer);
  }, [load]);
  if (!job) return <p className="hint">Loading {id}…</p>;
  const act = async (action: 'cancel' | 'pause' | 'resume') => {
    try {
      setJob(await api.jobAction(id, action));
      setMessage(null);
      onChanged();
    } catch (err) {
      setMessage((err as Error).message);
    }
  };
  // Events come newest first, as OpenAI lists them.
  const last = events.find((e) => e.type === 'metrics')?.data as { step?: number; total_steps?: number } | undefined;
  return (
    <section className="job-detail" aria-label={`Job ${id}`}>
      <h3>
        <code>{job.id}</code> <span className={`badge ${job.status}`} data-testid="job-status">{job.status}</span>
      </h3>
      <p>
        {job.model} → {job.fine_tuned_model ?? '(not yet)'}
        {last?.step !== undefined && last.total_steps ? ` · step ${last.step}/${last.total_steps}` : ''}
      </p>
      {job.error && <p className="error">{job.error.message}</p>}
      <div className="actions">
        {ACTIVE.has(job.status) && (
          <button className="danger" onClick={() => void act('cancel')}>
            Cancel job
          </button>
        )}
        {job.status === 'running' && <button onClick={() => void act('pause')}>Pause</button>}
        {job.status === 'paused' && <button onClick={() => void act('resume')}>Resume</button>}
      </div>
      {message && <p className="error">{message}</p>}
      {points.length > 0 && <LossChart points={points} height={200} />}
      <h4>Checkpoints</h4>
      {checkpoints.length === 0 ? (
        <p className="hint">None yet.</p>
      ) : (
        <ul>
          {checkpoints.map((c) => (
            <li key={c.id}>
              step {c.step_number}: <code>{c.fine_tuned_model_checkpoint}</code>
              {c.metrics.train_loss !== undefined ? ` · loss ${c.metrics.train_loss.toFixed(3)}` : ''}
            </li>
          ))}
        </ul>
      )}
      <h4>Events</h4>
      <pre className="log" tabIndex={0} aria-label="Job events">{events.map((e) => `${new Date(e.created_at * 1000).toLocaleTimeString()} ${e.message}`).join('\n')}</pre>
    </section>
  );
}
