// `nodeai finetune FILE --out DIR`: check the data, split it, train on this machine with a live
// progress line, and leave the model, metrics.jsonl and job.json in DIR. Ctrl-C cancels with a
// checkpoint; the same command again resumes from it.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  convertDataset,
  createSplitter,
  DatasetError,
  DEFAULT_SEED,
  DEFAULT_VALIDATION_SPLIT,
  formatReport,
  readExamples,
  type DatasetReport,
} from '../datasets/index.ts';
import type { LocalFineTuneEvent, LocalFineTuneResult, LocalFineTuneSpec } from '../trainer/supervised-job-types.ts';
import { describeRemoteError, runRemoteFineTune, type RemoteFineTuneOptions } from './finetune-remote.ts';
import { UsageError } from './usage-error.ts';

const OPENAI_DEFAULT_BASE = 'gpt-4o-mini-2024-07-18';

const USAGE = `Usage:
  nodeai finetune FILE --out DIR [--provider local] [--base nodeai-tiny|PATH.gguf] [--epochs N|auto]
                  [--batch-size N|auto] [--learning-rate X|auto] [--lora-rank R] [--lora-alpha A]
                  [--early-stopping N]
                  [--validation-split X] [--seed S] [--threads N] [--name NAME] [--json]
  nodeai finetune FILE --out DIR --provider openai [--base MODEL] [--base-url URL] [--name SUFFIX] ...

Fine-tunes a model on FILE (chat JSONL, JSON array, CSV/TSV) on this machine. The file is checked
first (errors are printed with their line numbers); DIR receives train.jsonl and validation.jsonl,
the model (NAME.gguf, and NAME.lora.gguf with --lora-rank), metrics.jsonl and job.json.
Ctrl-C stops with a checkpoint in DIR; running the same command again resumes from it.

Options:
  --provider P          local (default), openai (OpenAI, Azure OpenAI or any OpenAI-compatible
                        server such as another NodeAI; key from the vault's OPENAI_API_KEY or
                        the environment), anthropic (explains that it has no fine-tuning API)
  --base B              nodeai-tiny (default, built in) or a Llama-family GGUF (F32/F16/BF16);
                        with openai a model id (default ${OPENAI_DEFAULT_BASE})
  --base-url URL        openai only: the server's /v1 URL (default OpenAI's)
  --epochs N|auto       passes over the data (default auto: 3, more for small sets)
  --batch-size N|auto   examples per step (default auto)
  --learning-rate X     peak learning rate (default auto: 3e-3 for small models); with openai
                        the learning-rate multiplier
  --lora-rank R         train a rank-R LoRA adapter instead of every weight (default 0: full)
  --lora-alpha A        LoRA scale numerator (default R)
  --early-stopping N    stop when the validation loss has not improved for N epochs, and keep
                        the best epoch's model
  --validation-split X  share held out for validation, 0..1 (default ${DEFAULT_VALIDATION_SPLIT})
  --seed S              seed of the split, the initialization and the data order (default ${DEFAULT_SEED})
  --threads N           CPU threads (default: the idle cores)
  --name NAME           file name of the model (default ft-<base>); with openai the suffix
  --json                print the final job (job.json) as JSON on stdout
  --out DIR             output folder (created when missing)

Exit status: 0 trained, 1 the data or the training failed, 2 usage error, 130 cancelled.`;

const ANTHROPIC = `Anthropic offers no fine-tuning API: its only route, Claude 3 Haiku on Amazon Bedrock, is retired.
Fine-tune locally instead (--provider local, the default), then chat with the result with 'nodeai chat';
Anthropic models remain available for chat in workflows.`;


async function runRemote(o: Omit<RemoteFineTuneOptions, 'log' | 'signal'> & { json: boolean }): Promise<number> {
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.on('SIGINT', onSigint);
  try {
    const job = await runRemoteFineTune({ ...o, signal: controller.signal, log: (line) => process.stderr.write(line + '\n') });
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

function num(name: string, raw: string | undefined, ok: (n: number) => boolean, expect: string): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new UsageError(`--${name} must be ${expect}, got '${raw}'`);
  return n;
}

function numOrAuto(name: string, raw: string | undefined, ok: (n: number) => boolean, expect: string): number | 'auto' | undefined {
  return raw === 'auto' ? 'auto' : num(name, raw, ok, `${expect} or 'auto'`);
}

const int = (min: number) => (n: number) => Number.isInteger(n) && n >= min;

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

/**
 * Line of the user's FILE for line `k` of DIR/train.jsonl (or validation.jsonl): the split is
 * replayed from the seed over the valid examples in file order, exactly as convertDataset made it.
 */
async function originalLine(file: string, side: 'train' | 'validation', k: number, valid: number, split: { validationSplit: number; seed: number }): Promise<number | undefined> {
  const splitter = createSplitter(valid, split);
  let n = 0;
  for await (const rec of readExamples(file, { onInvalid: 'skip' })) {
    if (splitter.next() === side && ++n === k) return rec.line;
  }
  return undefined;
}

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
        'lora-rank': { type: 'string' },
        'lora-alpha': { type: 'string' },
        'early-stopping': { type: 'string' },
        'validation-split': { type: 'string' },
        seed: { type: 'string' },
        threads: { type: 'string' },
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
  if (provider === 'anthropic') {
    console.error(ANTHROPIC);
    return 1;
  }
  if (provider !== 'local' && provider !== 'openai') throw new UsageError(`unknown provider '${provider}': use local (or openai, anthropic)`);
  if (v['base-url'] !== undefined && provider !== 'openai') throw new UsageError('--base-url is for --provider openai');
  const remote = provider === 'openai';
  if (positionals.length !== 1) throw new UsageError(`${positionals.length ? 'takes one FILE' : 'needs a FILE'}\n\n${USAGE}`);
  if (!v.out) throw new UsageError(`needs --out DIR\n\n${USAGE}`);
  const file = positionals[0];
  const out = resolve(v.out);
  const base = v.base ?? (remote ? OPENAI_DEFAULT_BASE : 'nodeai-tiny');
  const basePath = base === 'nodeai-tiny' || remote ? base : resolve(base);
  if (!remote && basePath !== 'nodeai-tiny' && (!existsSync(basePath) || statSync(basePath).isDirectory())) {
    throw new UsageError(`--base ${base}: no such GGUF file; use nodeai-tiny or the path of a .gguf model`);
  }
  const validationSplit = num('validation-split', v['validation-split'], (n) => n >= 0 && n < 1, 'a number from 0 to below 1') ?? DEFAULT_VALIDATION_SPLIT;
  const seed = num('seed', v.seed, int(0), 'a whole number ≥ 0') ?? DEFAULT_SEED;
  const loraRank = num('lora-rank', v['lora-rank'], int(0), 'a whole number ≥ 0');
  const spec: LocalFineTuneSpec = {
    jobDir: out,
    trainingFile: join(out, 'train.jsonl'),
    validationFile: null,
    baseModel: basePath,
    epochs: numOrAuto('epochs', v.epochs, int(1), 'a whole number ≥ 1'),
    batchSize: numOrAuto('batch-size', v['batch-size'], int(1), 'a whole number ≥ 1'),
    learningRate: numOrAuto('learning-rate', v['learning-rate'], (n) => n > 0, 'a positive number'),
    loraRank,
    loraAlpha: num('lora-alpha', v['lora-alpha'], (n) => n > 0, 'a positive number'),
    seed,
    threads: num('threads', v.threads, int(1), 'a whole number ≥ 1'),
    earlyStoppingPatience: num('early-stopping', v['early-stopping'], int(1), 'a whole number ≥ 1'),
    outputName: v.name,
  };
  for (const k of Object.keys(spec) as Array<keyof LocalFineTuneSpec>) if (spec[k] === undefined) delete spec[k];
  if (v.name !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(v.name)) {
    throw new UsageError(`--name must be a file name of letters, digits, '.', '_' and '-', got '${v.name}'`);
  }

  const err = process.stderr;
  let report: DatasetReport;
  try {
    report = (
      await convertDataset(file, {
        outDir: out,
        validationSplit,
        seed,
        // The trainer measures GGUF bases' tokens exactly; the byte count fits nodeai-tiny only.
        countTokens: base === 'nodeai-tiny' || remote,
        ...(remote ? { model: base } : {}),
      })
    ).report;
  } catch (e) {
    if (DatasetError.isInstance(e) && e.code === 'invalid_dataset') {
      console.log(formatReport((e as DatasetError & { report: DatasetReport }).report));
      console.error(`\nNothing was trained: ${file} has errors. Fix the lines above and run the command again.`);
      return 1;
    }
    if (DatasetError.isInstance(e) && e.code !== 'invalid_example') throw new UsageError(e.message);
    throw e;
  }
  spec.validationFile = report.split.validation > 0 ? join(out, 'validation.jsonl') : null;
  // One line per kind of warning: twenty 'no system message' lines would hide the progress.
  const byCode = new Map<string, { message: string; lines: number[] }>();
  for (const w of report.warnings) {
    if (w.code === 'over_token_limit') continue; // the trainer checks lengths exactly and fails on them, naming the line
    const g = byCode.get(w.code) ?? { message: w.message, lines: [] };
    if (w.line !== null) g.lines.push(w.line);
    byCode.set(w.code, g);
  }
  for (const [code, g] of byCode) {
    const n = report.issue_counts[code as keyof typeof report.issue_counts] ?? g.lines.length;
    const where = g.lines.length ? ` (${n} example${n === 1 ? '' : 's'}: line${g.lines.length === 1 ? '' : 's'} ${g.lines.slice(0, 5).join(', ')}${n > 5 ? ', …' : ''})` : '';
    err.write(`warning: ${g.message}${where}\n`);
  }
  err.write(
    `Fine-tuning ${base} on ${report.split.train} example${report.split.train === 1 ? '' : 's'}` +
      `${report.split.validation ? ` (+${report.split.validation} for validation)` : ''} from ${file}; output in ${relative(process.cwd(), out) || '.'}\n`,
  );

  if (remote) {
    return runRemote({
      out,
      trainingFile: spec.trainingFile,
      validationFile: spec.validationFile ?? null,
      model: base,
      ...(v['base-url'] ? { baseURL: v['base-url'] } : {}),
      hyperparameters: {
        ...(spec.epochs !== undefined ? { n_epochs: spec.epochs } : {}),
        ...(spec.batchSize !== undefined ? { batch_size: spec.batchSize } : {}),
        ...(spec.learningRate !== undefined ? { learning_rate_multiplier: spec.learningRate } : {}),
      },
      ...(v.seed !== undefined ? { seed } : {}),
      ...(v.name ? { suffix: v.name } : {}),
      ...(typeof v['data-dir'] === 'string' ? { dataDir: v['data-dir'] } : {}),
      json: v.json === true,
    });
  }

  const progress = new Progress(err);
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      progress.line('Cancelling: saving a checkpoint… (Ctrl-C again to stop at once)');
      controller.abort();
    } else {
      process.exit(130);
    }
  };
  process.on('SIGINT', onSigint);
  let result: LocalFineTuneResult;
  try {
    const { runLocalFineTune } = await import('../trainer/supervisor.ts');
    result = await runLocalFineTune(spec, {
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'metrics') progress.update(e);
        else if (e.type === 'message') progress.line(e.level === 'info' ? e.message : `${e.level}: ${e.message}`);
        else if (e.type === 'status' && e.status === 'running') progress.line(e.message);
      },
    });
  } finally {
    process.off('SIGINT', onSigint);
    progress.end();
  }

  const job = existsSync(join(out, 'job.json')) ? readFileSync(join(out, 'job.json'), 'utf8') : null;
  if (v.json && job) process.stdout.write(JSON.stringify(JSON.parse(job)) + '\n');
  const show = v.json ? (s: string) => err.write(s + '\n') : (s: string) => console.log(s);
  if (result.status === 'succeeded') {
    const m = result.finalMetrics ?? {};
    show(
      `Done: ${result.modelPath}${result.adapterPath ? ` and the adapter ${result.adapterPath}` : ''}\n` +
        `  ${result.steps} steps · ${fmtInt(result.trainedTokens)} tokens · train loss ${fmtLoss(m.train_loss)}` +
        `${m.valid_loss !== undefined ? ` · valid loss ${fmtLoss(m.valid_loss)}` : ''}\n` +
        `  Chat with it: nodeai chat --model ${result.modelPath}`,
    );
    return 0;
  }
  if (result.status === 'cancelled') {
    show(`Cancelled at step ${result.steps}. The checkpoint is kept in ${join(out, 'checkpoints')}; run the same command again to resume.`);
    return 130;
  }
  const e = result.error ?? { code: 'training_failed', message: 'unknown error' };
  let message = e.message;
  if (e.line !== undefined && e.file !== undefined) {
    const side = resolve(e.file) === join(out, 'train.jsonl') ? 'train' : resolve(e.file) === join(out, 'validation.jsonl') ? 'validation' : null;
    const line = side ? await originalLine(file, side, e.line, report.valid_examples, { validationSplit, seed }) : undefined;
    if (line !== undefined) message = `${file} line ${line}: ${message.replace(/^.*? line \d+: /, '')}`;
  }
  console.error(`Training failed (${e.code}): ${message}`);
  return 1;
}
