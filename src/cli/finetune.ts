// `nodeai finetune FILE --out DIR`: check the data, split it, train on this machine with a live
// progress line, and leave the model, metrics.jsonl and job.json in DIR. Ctrl-C cancels with a
// checkpoint; the same command again resumes from it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ZodError } from 'zod';
import { DEFAULT_SEED, DEFAULT_VALIDATION_SPLIT, formatReport, type DatasetReport } from '../datasets/index.ts';
import { FineTuneDataError, FineTuneError } from '../jobs/errors.ts';
import { fineTune, type FineTuneDeps, type FineTuneOutcome } from '../jobs/fine-tune-service.ts';
import { JobQueue, JobWorker } from '../jobs/index.ts';
import { LocalFineTuneProvider } from '../jobs/queue-providers.ts';
import { OUTPUT_DIR_METADATA_KEY, parseFineTuneRequest, type FineTuneRequest, type FineTuneRequestInput } from '../providers/fine-tune-request.ts';
import type { FineTuneProvider, FineTuningJob, JobEvent } from '../providers/spec.ts';
import type { RemoteModelRef } from '../trainer/model-ref.ts';
import { resolveModelFile, type ModelFile } from '../trainer/model-source.ts';
import type { TrainingDevice } from '../trainer/training-device.ts';
import type { LocalFineTuneEvent } from '../trainer/supervised-job-types.ts';
import type { JobObject } from '../trainer/supervisor-protocol.ts';
import { DATA_DIR_HELP, openStore } from './app.ts';
import { progressPrinter } from './download-progress.ts';
import { describeRemoteError, followRemoteJob, openRemoteProvider } from './finetune-remote.ts';
import { UsageError } from './usage-error.ts';

const OPENAI_DEFAULT_BASE = 'gpt-4o-mini-2024-07-18';

const USAGE = `Usage:
  nodeai finetune FILE --out DIR [--provider local] [--base nodeai-tiny|PATH.gguf] [--epochs N|auto]
                  [--batch-size N|auto] [--learning-rate X|auto] [--lora-rank R] [--lora-alpha A]
                  [--early-stopping N] [--no-evaluate]
                  [--validation-split X] [--seed S] [--threads N] [--name NAME] [--json]
  nodeai finetune FILE --out DIR --provider openai [--base MODEL] [--base-url URL] [--name SUFFIX] ...

Fine-tunes a model on FILE (chat JSONL, JSON array, CSV/TSV) on this machine. The file is checked
first (errors are printed with their line numbers; examples longer than the model's context are
left out, by line); DIR receives train.jsonl and validation.jsonl, the model (NAME.gguf, and
NAME.lora.gguf with --lora-rank), metrics.jsonl and job.json. The job goes through the data dir's
queue, so it shows in 'nodeai jobs list'. Ctrl-C pauses it with a checkpoint in DIR; running the
same command again resumes from it.

Options:
  --provider P          local (default), openai (OpenAI, Azure OpenAI or any OpenAI-compatible
                        server such as another NodeAI; key from the vault's OPENAI_API_KEY or
                        the environment), anthropic (explains that it has no fine-tuning API)
  --base B              nodeai-tiny (default, built in), hf:OWNER/REPO:QUANT, ollama:NAME[:TAG],
                        a GGUF path or a fine-tuned model's name (see nodeai models catalog);
                        with openai a model id (default ${OPENAI_DEFAULT_BASE})
  --base-url URL        openai only: the server's /v1 URL (default OpenAI's)
  --epochs N|auto       passes over the data (default auto: 3, more for small sets)
  --batch-size N|auto   examples per step (default auto)
  --learning-rate X     local: the peak learning rate (default auto: 3e-3 for small models)
  --learning-rate-multiplier X
                        openai: a multiple of the base model's default rate (default auto)
  --lora-rank R         train a rank-R LoRA adapter instead of every weight (default 0: full)
  --lora-alpha A        LoRA scale numerator (default R)
  --early-stopping N    stop when the validation loss has not improved for N epochs, and keep
                        the best epoch's model
  --no-evaluate         local: skip the evaluation of base vs fine-tuned on the validation split
                        when training ends (on by default; DIR/evaluation.json, "nodeai models show")
  --validation-split X  share held out for validation, 0..1 (default ${DEFAULT_VALIDATION_SPLIT})
  --seed S              seed of the split, the initialization and the data order (default ${DEFAULT_SEED})
  --device D            local: auto (default: a usable CUDA GPU, else the CPU), cpu, or cuda
                        (refused, naming what is missing, when CUDA cannot be used here)
  --threads N           CPU threads (default: the idle cores)
  --name NAME           file name of the model (default ft-<base>); with openai the suffix
  --json                print the final job (job.json) as JSON on stdout
  --out DIR             output folder (created when missing)
${DATA_DIR_HELP}

Exit status: 0 trained, 1 the data or the training failed, 2 usage error, 130 cancelled.`;

const ANTHROPIC = `Anthropic offers no fine-tuning API: its only route, Claude 3 Haiku on Amazon Bedrock, is retired.
Fine-tune locally instead (--provider local, the default), then chat with the result with 'nodeai chat';
Anthropic models remain available for chat in workflows.`;


/** A number option as typed; its range is the FineTuneRequest's, checked when the request is parsed. */
function num(name: string, raw: string | undefined, expect = 'a number'): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n)) throw new UsageError(`--${name} must be ${expect}, got '${raw}'`);
  return n;
}

function numOrAuto(name: string, raw: string | undefined): number | 'auto' | undefined {
  return raw === 'auto' ? 'auto' : num(name, raw, "a number or 'auto'");
}

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
const fmtLoss = (x: number | undefined) => (x === undefined ? '–' : x < 0.01 ? x.toExponential(1) : x.toFixed(3));

function fmtDuration(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '–';
  const t = Math.max(0, Math.round(s));
  const h = Math.floor(t / 3600);
  const m = Math.floor((t % 3600) / 60);
  const sec = String(t % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

type Metrics = Extract<LocalFineTuneEvent, { type: 'metrics' }>;

/** One live line on a terminal; plain lines every few seconds otherwise (logs, CI, pipes). */
export class Progress {
  private readonly tty: boolean;
  private lastValid: number | undefined;
  private lastPrinted = 0;
  private shown = false;
  private current: Metrics | undefined;

  constructor(private readonly out: Pick<NodeJS.WriteStream, 'write' | 'isTTY' | 'columns'>) {
    this.tty = !!out.isTTY;
  }

  private text(m: Metrics, bar: boolean): string {
    const pct = m.total_steps ? m.step / m.total_steps : 0;
    const width = (this.out.columns ?? 0) >= 110 ? 20 : 10;
    const filled = Math.round(pct * width);
    const b = bar ? ` ▕${'█'.repeat(filled)}${'░'.repeat(width - filled)}▏` : '';
    return (
      `epoch ${m.epoch}/${m.total_epochs}${b} step ${m.step}/${m.total_steps} (${Math.floor(pct * 100)}%)` +
      ` · loss ${fmtLoss(m.train_loss)} · valid ${fmtLoss(this.lastValid)} · ETA ${fmtDuration(m.eta_seconds)}` +
      ` · ${m.tokens_per_second ? fmtInt(m.tokens_per_second) : '–'} tok/s`
    );
  }

  update(m: Metrics): void {
    if (m.valid_loss !== undefined) this.lastValid = m.valid_loss;
    this.current = m;
    if (this.tty) {
      const cols = this.out.columns || 100;
      this.out.write(`\r\x1b[K${this.text(m, true).slice(0, cols - 1)}`);
      this.shown = true;
      return;
    }
    const now = Date.now();
    if (now - this.lastPrinted >= 5000 || m.step === m.total_steps || m.step === 1) {
      this.lastPrinted = now;
      this.out.write(this.text(m, false) + '\n');
    }
  }

  /** A message between progress updates; on a terminal it goes above the live line. */
  line(text: string): void {
    if (this.tty && this.shown) this.out.write('\r\x1b[K');
    this.out.write(text + '\n');
    if (this.tty && this.current) this.update(this.current);
  }

  end(): void {
    if (this.tty && this.shown) this.out.write('\n');
    this.shown = false;
    this.current = undefined;
  }
}

const ANTHROPIC_PROVIDER = 'anthropic';

export async function run(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        provider: { type: 'string' },
        base: { type: 'string' },
        epochs: { type: 'string' },
        'batch-size': { type: 'string' },
        'learning-rate': { type: 'string' },
        'learning-rate-multiplier': { type: 'string' },
        'lora-rank': { type: 'string' },
        'lora-alpha': { type: 'string' },
        'early-stopping': { type: 'string' },
        'no-evaluate': { type: 'boolean' },
        'validation-split': { type: 'string' },
        seed: { type: 'string' },
        threads: { type: 'string' },
        device: { type: 'string' },
        name: { type: 'string' },
        'base-url': { type: 'string' },
        'data-dir': { type: 'string' },
        out: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    throw new UsageError(`${(e as Error).message}\n\n${USAGE}`);
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  const provider = v.provider ?? 'local';
  if (provider === ANTHROPIC_PROVIDER) {
    console.error(ANTHROPIC);
    return 1;
  }
  if (provider !== 'local' && provider !== 'openai') throw new UsageError(`unknown provider '${provider}': use local (or openai, anthropic)`);
  if (v['base-url'] !== undefined && provider !== 'openai') throw new UsageError('--base-url is for --provider openai');
  const remote = provider === 'openai';
  if (positionals.length !== 1) throw new UsageError(`${positionals.length ? 'takes one FILE' : 'needs a FILE'}\n\n${USAGE}`);
  if (!v.out) throw new UsageError(`needs --out DIR\n\n${USAGE}`);
  const file = positionals[0];
  if (!existsSync(file) || statSync(file).isDirectory()) throw new UsageError(`${file}: no such file`);
  const out = resolve(v.out);
  const base = v.base ?? (remote ? OPENAI_DEFAULT_BASE : 'nodeai-tiny');
  const basePath = base === 'nodeai-tiny' || remote ? base : resolve(base);
  if (!remote && basePath !== 'nodeai-tiny' && (!existsSync(basePath) || statSync(basePath).isDirectory())) {
    throw new UsageError(`--base ${base}: no such GGUF file; use nodeai-tiny or the path of a .gguf model`);
  }
  if (v.name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(v.name)) {
    throw new UsageError(`--name must be a file name of letters, digits, '.', '_' and '-' (at most 64), got '${v.name}'`);
  }
  const validationSplit = num('validation-split', v['validation-split']) ?? DEFAULT_VALIDATION_SPLIT;
  const seed = num('seed', v.seed) ?? DEFAULT_SEED;
  const loraRank = num('lora-rank', v['lora-rank']);
  const loraAlpha = num('lora-alpha', v['lora-alpha']);
  const threads = num('threads', v.threads);
  const patience = num('early-stopping', v['early-stopping']);
  const input: FineTuneRequestInput = {
    provider,
    base_model: basePath,
    data: { kind: 'path', path: file },
    validation_split: validationSplit,
    hyperparameters: {
      n_epochs: numOrAuto('epochs', v.epochs) ?? 'auto',
      batch_size: numOrAuto('batch-size', v['batch-size']) ?? 'auto',
      learning_rate: numOrAuto('learning-rate', v['learning-rate']) ?? 'auto',
      learning_rate_multiplier: numOrAuto('learning-rate-multiplier', v['learning-rate-multiplier']) ?? 'auto',
    },
    method: { type: 'supervised', ...(loraRank !== undefined ? { lora_rank: loraRank } : {}), ...(loraAlpha !== undefined ? { lora_alpha: loraAlpha } : {}) },
    // The split and the local trainer take the seed, so the same command makes the same model.
    ...(v.seed !== undefined || !remote ? { seed } : {}),
    ...(v.name ? { suffix: v.name } : {}),
    ...(patience !== undefined ? { early_stopping_patience: patience } : {}),
    ...(v['no-evaluate'] ? { evaluate: false } : {}),
    // The request's schema checks the device name; its refusal names --device.
    device: { ...(v.device !== undefined ? { type: v.device as TrainingDevice } : {}), ...(threads !== undefined ? { threads } : {}) },
    ...(remote ? {} : { output_dir: out }),
  };
  let request: FineTuneRequest;
  try {
    request = parseFineTuneRequest(input);
  } catch (e) {
    if (e instanceof ZodError) throw new UsageError(e.issues.map((i) => `--${cliOption(i.path)}: ${i.message}`).join('\n'));
    throw e;
  }
  const dataDir = typeof v['data-dir'] === 'string' ? v['data-dir'] : undefined;
  return remote ? runRemote(request, { out, file, dataDir, baseURL: v['base-url'], json: v.json === true }) : runLocal(request, { out, file, dataDir, json: v.json === true });
}

/** The CLI option a FineTuneRequest field comes from, for usage errors. */
function cliOption(path: readonly PropertyKey[]): string {
  if (path.join('.') === 'device.type') return 'device';
  const field = String(path.at(-1));
  const options: Record<string, string> = { n_epochs: 'epochs', lora_rank: 'lora-rank', lora_alpha: 'lora-alpha', early_stopping_patience: 'early-stopping', learning_rate: 'learning-rate', learning_rate_multiplier: 'learning-rate-multiplier', suffix: 'name' };
  return options[field] ?? field.replace(/_/g, '-');
}

interface RunOptions {
  out: string;
  file: string;
  dataDir?: string;
  json: boolean;
}

/** The service's checks as the CLI shows them: a data report whole, anything else as one line. */
async function submit(request: FineTuneRequest, provider: FineTuneProvider, o: RunOptions, deps: Partial<FineTuneDeps> = {}): Promise<FineTuneOutcome | number> {
  const err = process.stderr;
  try {
    const outcome = await fineTune(request, {
      provider,
      outDir: o.out,
      scratchDir: o.out,
      workflowDir: process.cwd(),
      noDataFix: 'Add examples to the file, one JSON object per line.',
      warn: (message) => err.write(`warning: ${message}\n`),
      ...deps,
    });
    if (outcome.report) printWarnings(outcome.report);
    err.write(
      `Fine-tuning ${request.base_model} on ${outcome.training_examples} example${outcome.training_examples === 1 ? '' : 's'}` +
        `${outcome.validation_examples ? ` (+${outcome.validation_examples} for validation)` : ''} from ${o.file}; output in ${relative(process.cwd(), o.out) || '.'}\n`,
    );
    return outcome;
  } catch (e) {
    if (e instanceof FineTuneDataError && e.report && e.report.error_count > 0) {
      console.log(formatReport(e.report));
      console.error(`\nNothing was trained: ${o.file} has errors. Fix the lines above and run the command again.`);
      return 1;
    }
    if (e instanceof FineTuneError) {
      console.error(`Nothing was trained (${e.code}): ${e.message}`);
      return 1;
    }
    throw e;
  }
}

/** One line per kind of warning: twenty 'no system message' lines would hide the progress. */
function printWarnings(report: DatasetReport): void {
  const byCode = new Map<string, { message: string; lines: number[] }>();
  for (const w of report.warnings) {
    if (w.code === 'over_token_limit') continue; // examples longer than the context are left out by name
    const g = byCode.get(w.code) ?? { message: w.message, lines: [] };
    if (w.line !== null) g.lines.push(w.line);
    byCode.set(w.code, g);
  }
  for (const [code, g] of byCode) {
    const n = report.issue_counts[code as keyof typeof report.issue_counts] ?? g.lines.length;
    const where = g.lines.length ? ` (${n} example${n === 1 ? '' : 's'}: line${g.lines.length === 1 ? '' : 's'} ${g.lines.slice(0, 5).join(', ')}${n > 5 ? ', …' : ''})` : '';
    process.stderr.write(`warning: ${g.message}${where}\n`);
  }
}

async function runRemote(request: FineTuneRequest, o: RunOptions & { baseURL?: string }): Promise<number> {
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.on('SIGINT', onSigint);
  try {
    const provider = await openRemoteProvider({ ...(o.dataDir ? { dataDir: o.dataDir } : {}), ...(o.baseURL ? { baseURL: o.baseURL } : {}) });
    process.stderr.write(`Uploading the checked data to ${o.baseURL ?? 'OpenAI'}…\n`);
    const submitted = await submit(request, provider, o, { signal: controller.signal });
    if (typeof submitted === 'number') return submitted;
    const job = await followRemoteJob(provider, submitted.job, { out: o.out, signal: controller.signal, log: (line) => process.stderr.write(line + '\n') });
    if (o.json) process.stdout.write(JSON.stringify(job) + '\n');
    if (job.status === 'succeeded') {
      (o.json ? (s: string) => process.stderr.write(s + '\n') : console.log)(`Done: ${job.fine_tuned_model} (${job.trained_tokens ?? 0} trained tokens); job.json is in ${o.out}`);
      return 0;
    }
    if (job.status === 'cancelled') {
      console.error(`Cancelled ${job.id}.`);
      return 130;
    }
    console.error(`Training failed (${job.error?.code ?? 'failed'}): ${job.error?.message ?? 'the provider gave no reason'}`);
    return 1;
  } catch (e) {
    const message = describeRemoteError(e);
    if (message === null) throw e;
    console.error(`Training failed: ${message}`);
    return 1;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

/**
 * A local run is a job of the data dir's queue, trained by a worker in this process (or by any
 * `nodeai worker` of the same data dir that claims it first), with its files in DIR.
 */
async function runLocal(request: FineTuneRequest, o: RunOptions): Promise<number> {
  const store = await openStore({ 'data-dir': o.dataDir });
  try {
    const queue = new JobQueue(store);
    await supersedePaused(queue, o.out);
    // A job someone waits for at a terminal goes before background jobs queued in the same data dir.
    const submitted = await submit(request, new LocalFineTuneProvider(queue, { priority: -1 }), o, {
      files: store.files,
      models: queue.models,
      modelFile: (ref) => downloadWithProgress(ref, store.dataDir),
    });
    if (typeof submitted === 'number') return submitted;
    return await trainHere(queue, submitted.job, request, o);
  } finally {
    await store.close();
  }
}

/** The file of an hf:/ollama: base, downloaded on first use with a progress bar on stderr. */
async function downloadWithProgress(ref: RemoteModelRef, dataDir: string): Promise<ModelFile> {
  const progress = progressPrinter();
  try {
    return await resolveModelFile(ref, { dataDir, onProgress: progress.onProgress });
  } finally {
    progress.done();
  }
}

/** A job this DIR paused earlier gives way to the new one, which resumes from the same checkpoint. */
async function supersedePaused(queue: JobQueue, out: string): Promise<void> {
  const paused = await queue.list({ status: 'paused', limit: 1000 });
  for (const job of paused.data) if (job.metadata?.[OUTPUT_DIR_METADATA_KEY] === out) await queue.cancel(job.id).catch(() => undefined);
}

const FINISHED = new Set(['succeeded', 'failed', 'cancelled', 'paused']);

async function trainHere(queue: JobQueue, created: FineTuningJob, request: FineTuneRequest, o: RunOptions): Promise<number> {
  const err = process.stderr;
  const progress = new Progress(err);
  let lastStep = 0;
  const unsubscribe = queue.onEvent((jobId, event: JobEvent) => {
    if (jobId !== created.id) return;
    if (event.type === 'metrics') {
      const m = { type: 'metrics', time: event.created_at, ...event.data } as Metrics;
      lastStep = m.step;
      progress.update(m);
    } else progress.line(event.level === 'info' ? event.message : `${event.level}: ${event.message}`);
  });
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      progress.line('Pausing: saving a checkpoint… (Ctrl-C again to stop at once)');
      void queue.pause(created.id).catch(() => undefined);
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  const worker = new JobWorker(queue, { ...(request.device.threads ? { threads: request.device.threads } : {}), onError: (e) => progress.line(`error: ${queue.store.redactor.formatError(e)}`) });
  let job = created;
  try {
    while (!FINISHED.has(job.status)) {
      // Another process's worker may claim it first; this one then only watches.
      if (!(await worker.runNext())) await new Promise((r) => setTimeout(r, 500));
      job = await queue.get(created.id);
    }
  } finally {
    process.off('SIGINT', onSigint);
    unsubscribe();
    progress.end();
  }

  const jobFile = join(o.out, 'job.json');
  const trained = existsSync(jobFile) ? (JSON.parse(readFileSync(jobFile, 'utf8')) as JobObject) : null;
  if (o.json && trained) process.stdout.write(JSON.stringify(trained) + '\n');
  const show = o.json ? (s: string) => err.write(s + '\n') : (s: string) => console.log(s);
  if (job.status === 'succeeded') {
    const m = trained?.nodeai.final_metrics ?? {};
    const model = trained?.nodeai.model_path;
    const adapter = trained?.nodeai.adapter_path;
    show(
      `Done: ${model}${adapter ? ` and the adapter ${adapter}` : ''} (job ${job.id}, model ${job.fine_tuned_model})\n` +
        `  ${trained?.nodeai.steps ?? lastStep} steps · ${fmtInt(job.trained_tokens ?? 0)} tokens · train loss ${fmtLoss(m.train_loss)}` +
        `${m.valid_loss !== undefined ? ` · valid loss ${fmtLoss(m.valid_loss)}` : ''}\n` +
        `  Chat with it: nodeai chat --model ${model}`,
    );
    return 0;
  }
  if (job.status === 'paused' || job.status === 'cancelled') {
    show(
      `${job.status === 'paused' ? 'Paused' : 'Cancelled'} at step ${lastStep}. The checkpoint is kept in ${join(o.out, 'checkpoints')}; run the same command again to resume` +
        `${job.status === 'paused' ? ` (or "nodeai jobs resume ${job.id}" with a worker running)` : ''}.`,
    );
    return 130;
  }
  console.error(`Training failed (${job.error?.code ?? 'training_failed'}): ${job.error?.message ?? 'unknown error'}`);
  return 1;
}
