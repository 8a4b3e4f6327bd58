// `nodeai jobs list|show|events|cancel`: fine-tuning jobs in the data dir.
import { JobQueue } from '../jobs/index.ts';
import type { FineTuningJob } from '../providers/spec.ts';
import { commonOptions, DATA_DIR_HELP, dispatch, needArg, openStore, parse, printJson, table, when } from './app.ts';
import { printable } from './terminal-text.ts';
import { lossChart, toLossPoints, useColor } from './loss-chart.ts';
import { UsageError } from './usage-error.ts';

const USAGE = `Usage:
  nodeai jobs list [--limit N] [--json]
  nodeai jobs show JOB_ID [--json]
  nodeai jobs events JOB_ID [--limit N] [--json]
  nodeai jobs cancel JOB_ID [--json]

Options:
  --limit N        how many to show (default 20; events: 50)
${DATA_DIR_HELP}`;

const options = { ...commonOptions, limit: { type: 'string' } } as const;

function limitOf(raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--limit must be a whole number ≥ 1, got '${raw}'`);
  return n;
}

async function withQueue<T>(values: { 'data-dir'?: string | boolean }, fn: (q: JobQueue) => Promise<T>): Promise<T> {
  const store = await openStore(values);
  try {
    return await fn(new JobQueue(store));
  } finally {
    await store.close();
  }
}

export function describeJob(job: FineTuningJob): string {
  const lines = [
    `${job.id}  ${job.status}`,
    `  base model:        ${job.model}`,
    `  fine-tuned model:  ${job.fine_tuned_model ?? '-'}`,
    `  training file:     ${job.training_file}`,
    `  validation file:   ${job.validation_file ?? '-'}`,
    `  epochs:            ${job.hyperparameters.n_epochs}   batch size: ${job.hyperparameters.batch_size}   learning-rate multiplier: ${job.hyperparameters.learning_rate_multiplier}`,
    `  trained tokens:    ${job.trained_tokens ?? '-'}`,
    `  created:           ${when(job.created_at * 1000)}   finished: ${job.finished_at ? when(job.finished_at * 1000) : '-'}`,
  ];
  if (job.error) lines.push(`  error:             ${job.error.code}: ${job.error.message}`);
  // Every field is stored data a client (or an older version) wrote: no control characters.
  return lines.map(printable).join('\n');
}

export async function run(args: string[]): Promise<number> {
  return dispatch(args, 'jobs', USAGE, {
    async list(rest) {
      const { values } = parse(rest, options, USAGE);
      const page = await withQueue(values, (q) => q.list({ limit: limitOf(values.limit, 20) }));
      if (values.json) printJson({ object: 'list', ...page });
      else if (page.data.length === 0) console.log('No fine-tuning jobs yet. A Fine-Tune node in "nodeai run WORKFLOW.json" creates one.');
      else console.log(table(['ID', 'STATUS', 'BASE', 'FINE-TUNED MODEL', 'CREATED'], page.data.map((j) => [j.id, j.status, j.model, j.fine_tuned_model, when(j.created_at * 1000)])));
      return 0;
    },
    async show(rest) {
      const { values, positionals } = parse(rest, options, USAGE);
      const id = needArg(positionals, 0, 'JOB_ID', USAGE);
      const { job, checkpoints, model, history } = await withQueue(values, async (q) => ({
        job: await q.get(id),
        checkpoints: (await q.listCheckpoints(id, { limit: 100 })).data,
        history: await q.metricsHistory(id),
        model: await q.models.findByJob(id),
      }));
      if (values.json) printJson({ ...job, checkpoints, registered_model: model ?? null });
      else {
        console.log(describeJob(job));
        if (checkpoints.length) console.log(`  checkpoints:       ${describeCheckpoints(checkpoints.map((c) => c.step_number))}`);
        const chart = lossChart(toLossPoints(history), { color: useColor() });
        if (chart) console.log(`\n${chart}`);
      }
      return 0;
    },
    async events(rest) {
      const { values, positionals } = parse(rest, options, USAGE);
      const id = needArg(positionals, 0, 'JOB_ID', USAGE);
      const page = await withQueue(values, (q) => q.listEvents(id, { limit: limitOf(values.limit, 50) }));
      if (values.json) printJson({ object: 'list', ...page });
      else for (const e of [...page.data].reverse()) console.log(`${when(e.created_at * 1000)}  ${e.level.padEnd(5)}  ${printable(e.message)}`);
      return 0;
    },
    async cancel(rest) {
      const { values, positionals } = parse(rest, options, USAGE);
      const id = needArg(positionals, 0, 'JOB_ID', USAGE);
      const job = await withQueue(values, (q) => q.cancel(id));
      if (values.json) printJson(job);
      else console.log(job.status === 'cancelled' ? `Cancelled ${job.id}.` : `Asked ${job.id} to stop; the worker running it saves a checkpoint and marks it cancelled.`);
      return 0;
    },
  });
}

/** Newest first, as listed; a long list keeps its ends. */
function describeCheckpoints(steps: number[]): string {
  const named = steps.map((s) => `step ${s}`);
  return named.length <= 6 ? named.join(', ') : `${named.slice(0, 3).join(', ')}, … ${named.slice(-2).join(', ')} (${named.length} in all)`;
}
