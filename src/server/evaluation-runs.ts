// Evaluations started through the API (POST /api/v1/evaluations): each is an object a client
// polls (GET /api/v1/evaluations/:id) and whose progress is published on the /api/v1/events
// stream as `evaluation` events. They run one at a time (each keeps the CPU busy) and live in this
// server process: a restart forgets them (start one again). A fine-tuned model's automatic
// evaluation is kept in the model registry instead (GET /api/v1/models/:id/evaluation).
import { randomBytes } from 'node:crypto';
import { evaluate, type EvaluationDeps, type EvaluationRequest } from '../jobs/evaluation-service.ts';
import type { EvaluationReport } from '../trainer/evaluation-report.ts';

export interface EvaluationRun {
  id: string;
  object: 'evaluation.run';
  status: 'queued' | 'running' | 'succeeded' | 'failed';
  models: string[];
  /** Answers generated so far, over all models × examples (then the judge's scores, when one is used). */
  progress: { done: number; total: number; phase: string | null };
  /** The report, once succeeded. */
  report: EvaluationReport | null;
  error: { code: string; message: string } | null;
  /** Epoch milliseconds. */
  created_at: number;
  finished_at: number | null;
}

export interface EvaluationRunsOptions {
  deps: Omit<EvaluationDeps, 'onProgress' | 'signal'>;
  /** Called with each change of a run (progress, success, failure). */
  publish?: (run: EvaluationRun) => void;
  /** Finished runs kept for polling. */
  keep?: number;
}

const PUBLISH_MS = 500;

export class EvaluationRuns {
  private readonly runs = new Map<string, EvaluationRun>();
  private chain: Promise<void> = Promise.resolve();
  private readonly controller = new AbortController();

  constructor(private readonly options: EvaluationRunsOptions) {}

  /** Queues an evaluation (its models and data already checked by the caller). */
  start(request: EvaluationRequest, models: string[]): EvaluationRun {
    const run: EvaluationRun = {
      id: `eval-${randomBytes(12).toString('hex')}`,
      object: 'evaluation.run',
      status: 'queued',
      models,
      progress: { done: 0, total: 0, phase: null },
      report: null,
      error: null,
      created_at: Date.now(),
      finished_at: null,
    };
    this.runs.set(run.id, run);
    this.prune();
    const changed = () => this.options.publish?.(summary(run));
    let lastPublished = 0;
    this.chain = this.chain.then(async () => {
      if (this.controller.signal.aborted) return;
      run.status = 'running';
      changed();
      try {
        run.report = await evaluate(request, {
          ...this.options.deps,
          signal: this.controller.signal,
          onProgress: (p) => {
            run.progress = { done: p.done, total: p.total, phase: p.phase };
            const now = Date.now();
            if (p.done === p.total || now - lastPublished >= PUBLISH_MS) {
              lastPublished = now;
              changed();
            }
          },
        });
        run.status = 'succeeded';
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        run.status = 'failed';
        run.error = { code: typeof code === 'string' ? code : 'evaluation_failed', message: (e as Error).message };
      }
      run.finished_at = Date.now();
      changed();
    });
    return { ...run };
  }

  get(id: string): EvaluationRun | undefined {
    const run = this.runs.get(id);
    return run ? { ...run } : undefined;
  }

  /** Stops the running evaluation and forgets the queued ones. */
  close(): void {
    this.controller.abort(new Error('the server is stopping'));
  }

  private prune(): void {
    const keep = this.options.keep ?? 50;
    const finished = [...this.runs.values()].filter((r) => r.finished_at !== null).sort((a, b) => a.created_at - b.created_at);
    for (const r of finished.slice(0, Math.max(0, this.runs.size - keep))) this.runs.delete(r.id);
  }
}

/** What an event carries: the run without its report (fetch it with GET /api/v1/evaluations/:id). */
function summary(run: EvaluationRun): Omit<EvaluationRun, 'report'> & { report: null } {
  return { ...run, report: null };
}
