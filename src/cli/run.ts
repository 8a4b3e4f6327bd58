// `nodeai run WORKFLOW.json`: runs a workflow in this process — the engine with the four nodes
// and a job worker — with live progress, and prints each node's output. When a Fine-Tune node
// waits on its job, the worker trains here and the run resumes when the job ends.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { EngineEvent, ErrorInfo, RunResult } from '../engine/index.ts';
import { WorkflowValidationError } from '../engine/index.ts';
import { JobWorker } from '../jobs/index.ts';
import type { JobEvent } from '../providers/spec.ts';
import { commonOptions, DATA_DIR_HELP, openApp, parse, printJson, type App } from './app.ts';
import { lossChart, toLossPoints, useColor } from './loss-chart.ts';
import { UsageError } from './usage-error.ts';

const USAGE = `Usage: nodeai run WORKFLOW.json [--json] [--data-dir DIR]

Runs the workflow here: nodes in order, training through the local trainer with live loss and
ETA, then prints each node's output. A File Loader's "path" is read relative to the folder of
WORKFLOW.json. If a run was interrupted while training, running the same workflow again picks
it up from the last checkpoint.

Options:
${DATA_DIR_HELP}
                   (--json: one object {run_id, status, outputs, error?}; no progress)

Exit status: 0 the run succeeded, 1 it failed or was cancelled, 2 usage error.`;

interface Progress {
  line(text: string): void;
  status(text: string): void;
  end(): void;
}

/** One updating line on a terminal; plain lines, at most one per few seconds, otherwise. */
function progressPrinter(quiet: boolean): Progress {
  const tty = process.stderr.isTTY === true;
  let shown = false;
  let lastPlain = 0;
  let pending: string | undefined;
  const clear = () => {
    if (shown) process.stderr.write('\r\x1b[2K');
    shown = false;
  };
  return {
    line(text) {
      if (quiet) return;
      clear();
      if (pending) {
        console.log(pending);
        pending = undefined;
      }
      console.log(text);
    },
    status(text) {
      if (quiet) return;
      if (tty) {
        const width = (process.stderr.columns ?? 100) - 1;
        process.stderr.write('\r\x1b[2K' + text.slice(0, width));
        shown = true;
      } else if (Date.now() - lastPlain >= 3000) {
        lastPlain = Date.now();
        pending = undefined;
        console.log(text);
      } else pending = text;
    },
    end() {
      clear();
      if (pending && !quiet) console.log(pending);
      pending = undefined;
    },
  };
}

function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '';
  const s = Math.max(0, Math.round(seconds));
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function metricsLine(jobId: string, e: JobEvent): string {
  const d = (e.data ?? {}) as Record<string, number | undefined>;
  const parts = [`  training ${jobId.slice(0, 14)}…  step ${d.step}/${d.total_steps ?? '?'}`];
  if (d.epoch !== undefined) parts.push(`epoch ${d.epoch}/${d.total_epochs ?? '?'}`);
  if (d.train_loss !== undefined) parts.push(`loss ${d.train_loss.toFixed(3)}`);
  if (d.valid_loss !== undefined) parts.push(`val ${d.valid_loss.toFixed(3)}`);
  if (d.eta_seconds !== undefined) parts.push(`ETA ${formatEta(d.eta_seconds)}`);
  return parts.join('  ');
}

/** A node output, short: lists and long text are summarized. */
function show(value: unknown): string {
  if (Array.isArray(value)) return `[${value.length} item${value.length === 1 ? '' : 's'}]`;
  if (typeof value === 'string') return JSON.stringify(value.length > 500 ? value.slice(0, 500) + '…' : value);
  if (value && typeof value === 'object') {
    const s = JSON.stringify(value);
    return s.length > 200 ? s.slice(0, 200) + '…' : s;
  }
  return String(value);
}

function printOutputs(progress: Progress, outputs: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(outputs)) {
    // `data` repeats the other outputs of these nodes; keep it when it is the only view of them.
    if (key === 'data' && Object.keys(outputs).length > 1 && !Array.isArray(value) && typeof value === 'object') continue;
    if (key === 'metrics') continue;
    progress.line(`    ${key}: ${show(value)}`);
  }
}

async function readWorkflow(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read workflow ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`workflow ${path} is not valid JSON: ${(err as Error).message}`);
  }
}

/** A waiting run of this very workflow (interrupted earlier), to continue instead of starting over. */
async function findInterruptedRun(app: App, workflow: unknown): Promise<string | undefined> {
  const validation = app.engine.validate(workflow);
  if (!validation.ok) return undefined;
  const json = JSON.stringify(app.store.redactor.redactValue(validation.plan.workflow));
  const rows = await app.store.db.selectFrom('runs').select(['id', 'workflow_json', 'waiting_job_id']).where('status', '=', 'waiting').where('workflow_name', '=', validation.plan.workflow.name).orderBy('created_at', 'desc').execute();
  for (const row of rows) {
    if (row.workflow_json !== json || !row.waiting_job_id) continue;
    const job = await app.jobs.getRow(row.waiting_job_id).catch(() => undefined);
    if (job && (job.status === 'queued' || job.status === 'running' || job.status === 'validating_files')) return row.id;
  }
  return undefined;
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, commonOptions, USAGE);
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? `missing WORKFLOW.json\n\n${USAGE}` : `'run' takes one workflow file, got ${positionals.length}`);
  const path = resolve(positionals[0]);
  const workflow = await readWorkflow(path);
  const json = values.json === true;
  const progress = progressPrinter(json);

  const app = await openApp(values, { workflowDir: dirname(path) });
  const worker = new JobWorker(app.jobs, { onError: (err) => progress.line(`  worker: ${(err as Error).message}`) });
  const resumes = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    resumes.add(p);
    void p.catch(() => {}).finally(() => resumes.delete(p));
  };
  let runId: string | undefined;
  // The loss curve of a job that ended, read before its run resumes, so it can follow the
  // Fine-Tune node's outputs as soon as they are printed.
  const charts = new Map<string, string>();
  const offFinished = app.jobs.onFinished((outcome) =>
    track(
      (async () => {
        if (!json && outcome.status === 'succeeded') {
          const chart = lossChart(toLossPoints(await app.jobs.metricsHistory(outcome.jobId).catch(() => [])), { color: useColor() });
          if (chart) charts.set(outcome.jobId, chart);
        }
        await app.engine.resumeRunsForJob(outcome);
      })(),
    ),
  );
  const offEvents = app.jobs.onEvent((jobId, e) => {
    if (e.type === 'metrics') progress.status(metricsLine(jobId, e));
    else if (e.level !== 'info' || /started|resumed|completed/i.test(e.message)) progress.line(`  job: ${e.message}`);
  });

  let finish!: (status: string, error?: ErrorInfo) => void;
  const finished = new Promise<{ status: string; error?: ErrorInfo }>((r) => (finish = (status, error) => r({ status, error })));
  const unsubscribe = app.engine.subscribe((e: EngineEvent) => {
    if (runId !== undefined && e.runId !== runId) return;
    switch (e.type) {
      case 'node.started':
        progress.line(`▶ ${e.nodeId} (${e.nodeType})`);
        break;
      case 'node.succeeded':
        progress.line(`✔ ${e.nodeId} (${e.nodeType}) ${(e.durationMs / 1000).toFixed(1)}s`);
        printOutputs(progress, e.outputs);
        if (typeof e.outputs.job_id === 'string' && charts.has(e.outputs.job_id)) {
          progress.line('');
          for (const row of charts.get(e.outputs.job_id)!.split('\n')) progress.line(row);
          progress.line('');
        }
        break;
      case 'node.failed':
        progress.line(`✘ ${e.nodeId} (${e.nodeType}): ${e.error.message}`);
        break;
      case 'node.waiting':
        progress.line(`… ${e.nodeId} waits for job ${e.wait.jobId}; training here (Ctrl-C pauses it; run again to continue)`);
        break;
      case 'node.log':
        if (e.level !== 'debug') progress.line(`  ${e.level === 'info' ? '' : e.level + ': '}${e.message}`);
        break;
      case 'run.resumed':
        progress.line(`↻ run ${e.runId} resumed at ${e.nodeId}`);
        break;
      case 'run.finished':
        finish(e.status, e.error);
        break;
    }
  });

  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    progress.end();
    console.error('\nStopping: the training job is saved at its last checkpoint; run the same command again to continue.');
    finish('interrupted');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    const recovered = await app.jobs.recoverInterrupted();
    if (recovered.requeued.length) progress.line(`Resuming ${recovered.requeued.length} interrupted training job(s): ${recovered.requeued.join(', ')}`);
    for (const id of recovered.failed) progress.line(`Job ${id} could not be resumed and was marked failed ("nodeai jobs show ${id}").`);
    await app.engine.recoverInterruptedRuns();
    worker.start();
    // Remote (OpenAI-compatible) jobs of earlier runs are followed again from where they were.
    await app.services.remoteJobs.start();
    // Runs whose job already ended while nobody was watching continue now.
    for (const r of await app.engine.resumeWaitingRuns((w) => app.jobs.outcome(w.jobId))) progress.line(`Finished earlier run ${r.runId}: ${r.status}`);

    let result: RunResult | undefined;
    const adopt = await findInterruptedRun(app, workflow);
    if (adopt) {
      runId = adopt;
      progress.line(`Continuing interrupted run ${adopt} of this workflow (its training resumes from the last checkpoint).`);
    } else {
      try {
        const started = await app.engine.startRun(workflow);
        runId = started.runId;
        result = await started.done;
      } catch (err) {
        if (err instanceof WorkflowValidationError) {
          if (json) printJson({ run_id: null, status: 'invalid', outputs: {}, error: { code: err.code, message: err.message, issues: err.issues } });
          else console.error(err.message);
          return 1;
        }
        throw err;
      }
    }
    const outcome = result && result.status !== 'waiting' ? { status: result.status } : await finished;
    progress.end();
    if (outcome.status === 'interrupted') {
      await worker.stop();
      if (json) printJson({ run_id: runId, status: 'waiting', outputs: (await app.engine.getRun(runId!)).nodes.reduce((o, n) => (n.outputs ? { ...o, [n.nodeId]: n.outputs } : o), {}) });
      return 130;
    }
    await Promise.allSettled([...resumes]);
    const record = await app.engine.getRun(runId!);
    const outputs = Object.fromEntries(record.nodes.filter((n) => n.outputs).map((n) => [n.nodeId, n.outputs]));
    if (json) printJson({ run_id: record.id, status: record.status, outputs, ...(record.error ? { error: record.error } : {}) });
    else if (record.status === 'succeeded') console.log(`\nRun ${record.id} succeeded.`);
    else console.error(`\nRun ${record.id} ${record.status}: ${record.error?.message ?? ''}`);
    return record.status === 'succeeded' ? 0 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    unsubscribe();
    offEvents();
    offFinished();
    await worker.stop();
    await app.services.remoteJobs.stop();
    await app.close();
  }
}
