// `nodeai models list|show|rename|rm`: the fine-tuned models in the registry;
// `nodeai models pull|catalog`: base models from the Hugging Face hub or Ollama, and the catalogue;
// `nodeai models export`: a fine-tuned model for Ollama, llama.cpp or LM Studio.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ModelRegistry, type ModelRecord } from '../jobs/index.ts';
import { exportRegisteredModel } from '../jobs/model-export.ts';
import { DEFAULT_EXPORT_QUANT, EXPORT_QUANTS, EXPORT_TARGETS, exportStem, shellQuote, type ExportProgress, type ExportTarget } from '../trainer/model-export.ts';
import { listCatalog, parsePullRef, type CatalogFile } from '../trainer/base-catalog.ts';
import { onlyLlamaErrors } from '../trainer/ggml/llama-quantize.ts';
import { ModelSourceError } from '../trainer/model-source-errors.ts';
import { resolveModelFile } from '../trainer/model-source.ts';
import { commonOptions, DATA_DIR_HELP, dataDirOf, dispatch, needArg, openStore, parse, printJson, table, when } from './app.ts';
import { progressPrinter } from './download-progress.ts';
import { printable } from './terminal-text.ts';
import { UsageError } from './usage-error.ts';

const USAGE = `Usage:
  nodeai models list [--json]
  nodeai models show MODEL [--json]
  nodeai models rename MODEL NEW_NAME [--json]
  nodeai models rm MODEL [--json]        (deletes the model's files in the data dir too)
  nodeai models pull URI [--json]        download a base model (once; resumes; verified)
  nodeai models catalog [--json]         recommended small bases, and which are downloaded
  nodeai models export MODEL --to ollama|gguf|lmstudio [--quant f16|q8_0|q4_k_m] [--out PATH] [--adapter] [--json]
                                         the model for Ollama (a folder with a Modelfile; runs
                                         \`ollama create\` when ollama is installed), llama.cpp (a
                                         .gguf) or LM Studio (OUT/nodeai/NAME/NAME-QUANT.gguf)

MODEL is a model ID (ft:nodeai-tiny:…) or its name.
URI is hf:OWNER/REPO:QUANT (e.g. hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q8_0), hf:OWNER/REPO/FILE.gguf,
ollama:NAME[:TAG] (checked in place in Ollama's store), or a catalogue ID (qwen2.5-0.5b-instruct).
HF_TOKEN authorizes gated repositories; HF_ENDPOINT points at a mirror.

Export options:
  --to TARGET      ollama, gguf or lmstudio (required)
  --quant TYPE     f16, q8_0 (default) or q4_k_m: the merged model, converted by llama.cpp
  --out PATH       gguf: a .gguf file or a folder (default .); ollama: the folder to write
                   (default ./NAME-ollama); lmstudio: LM Studio's models folder (default
                   ~/.lmstudio/models)
  --adapter        base + LoRA adapter instead of the merged model (ollama, gguf)

Options:
${DATA_DIR_HELP}`;

async function withRegistry<T>(values: { 'data-dir'?: string | boolean }, fn: (r: ModelRegistry) => Promise<T>): Promise<T> {
  const store = await openStore(values);
  try {
    return await fn(new ModelRegistry(store));
  } finally {
    await store.close();
  }
}

function describe(m: ModelRecord): string {
  const metrics = m.metrics ? Object.entries(m.metrics).map(([k, v]) => `${k}=${Number.isInteger(v) ? v : v.toFixed(4)}`).join(' ') : '-';
  return [
    `${m.id}${m.name !== m.id ? `  (name: ${m.name})` : ''}`,
    `  base model:   ${m.base_model}   provider: ${m.provider}`,
    `  job:          ${m.job_id ?? '-'}`,
    `  trained on:   ${m.training_examples ?? '-'} examples, ${m.epochs ?? '-'} epochs`,
    `  metrics:      ${metrics}`,
    ...(m.evaluation ? [`  evaluation:   ${evaluationLine(m.evaluation)}`] : []),
    `  files:        ${Object.values(m.files).filter(Boolean).join(', ') || '-'}`,
    `  used:         ${m.usage_count} times${m.last_used_at ? `, last ${when(m.last_used_at)}` : ''}`,
    `  created:      ${when(m.created_at)}`,
  ]
    // Names, paths and the base are stored data a client (or an older version) wrote: no control characters.
    .map(printable)
    .join('\n');
}

/** "on 40 validation examples: base loss 5.6 exact 0% · this model loss 0.31 exact 85%". */
function evaluationLine(e: NonNullable<ModelRecord['evaluation']>): string {
  const parts = e.models.map((name) => {
    const s = e.summary[name];
    return `${name} loss ${s.loss === null ? '-' : s.loss.toFixed(4)} exact ${(100 * s.exact_match).toFixed(0)}% contains ${(100 * s.contains_match).toFixed(0)}%`;
  });
  return `on ${e.examples} validation examples: ${parts.join(' · ')}`;
}

export async function run(args: string[]): Promise<number> {
  const options = commonOptions;
  const rm = async (rest: string[]) => {
    const { values, positionals } = parse(rest, options, USAGE);
    const id = needArg(positionals, 0, 'MODEL', USAGE);
    const result = await withRegistry(values, (r) => r.delete(id));
    if (values.json) printJson({ id: result.model.id, object: 'model', deleted: true, removed_files: result.removedFiles, kept_files: result.keptFiles });
    else {
      console.log(`Deleted ${result.model.id}${result.removedFiles.length ? ` and ${result.removedFiles.length} file(s)` : ''}.`);
      if (result.keptFiles.length) console.log(`Kept files outside the data dir: ${result.keptFiles.join(', ')}`);
    }
    return 0;
  };
  return dispatch(args, 'models', USAGE, {
    async list(rest) {
      const { values } = parse(rest, options, USAGE);
      const models = await withRegistry(values, (r) => r.list());
      if (values.json) printJson({ object: 'list', data: models });
      else if (models.length === 0) console.log('No fine-tuned models yet. Run a workflow with a Fine-Tune node: nodeai run examples/workflows/customer-support-bot.json');
      else console.log(table(['MODEL', 'NAME', 'BASE', 'EXAMPLES', 'EPOCHS', 'USED', 'CREATED'], models.map((m) => [m.id, m.name === m.id ? '' : m.name, m.base_model, m.training_examples, m.epochs, m.usage_count, when(m.created_at)])));
      return 0;
    },
    async show(rest) {
      const { values, positionals } = parse(rest, options, USAGE);
      const m = await withRegistry(values, (r) => r.get(needArg(positionals, 0, 'MODEL', USAGE)));
      if (values.json) printJson(m);
      else console.log(describe(m));
      return 0;
    },
    async rename(rest) {
      const { values, positionals } = parse(rest, options, USAGE);
      const m = await withRegistry(values, (r) => r.rename(needArg(positionals, 0, 'MODEL', USAGE), needArg(positionals, 1, 'NEW_NAME', USAGE)));
      if (values.json) printJson(m);
      else console.log(`Renamed ${m.id} to ${m.name}.`);
      return 0;
    },
    rm,
    delete: rm,
    pull: (rest) => pull(rest),
    export: (rest) => exportCommand(rest),
    async catalog(rest) {
      const { values } = parse(rest, options, USAGE);
      const models = await listCatalog(dataDirOf(values));
      if (values.json) printJson({ object: 'list', data: models });
      else {
        // "≈" marks a size computed by llama.cpp's quantizer from the model's shapes, not the hub's.
        const size = (f: CatalogFile | undefined) => (f === undefined ? '?' : `${f.bytes_source === 'computed' ? '≈' : ''}${(f.bytes / 1e9).toFixed(2)} GB`);
        const measured = (x: number | null, unit: string) => (x === null ? '?' : `${x.toLocaleString('en-US')}${unit}`);
        console.log(
          table(
            ['ID', 'PARAMS', 'ARCH', 'LICENSE', 'CONTEXT', 'DEFAULT', 'SIZE', 'TRAIN TOK/S', 'TRAIN PEAK', 'DOWNLOADED', 'URI'],
            models.map((m) => [m.id, `${(m.parameters / 1e9).toFixed(2)}B`, m.architecture, m.license, m.context_length, m.default_quant, size(m.files.find((f) => f.quant === m.default_quant)), measured(m.est_train_tok_s, ''), measured(m.est_peak_rss_mb, ' MB'), m.downloaded ? 'yes' : 'no', m.uri]),
          ),
        );
        if (models.some((m) => m.files.some((f) => f.quant === m.default_quant && f.bytes_source === 'computed'))) {
          console.log("\n≈ SIZE: computed by llama.cpp's quantizer (dry run) on the model's tensor shapes, where the hub gave no figure; the others are the hub's.");
        }
        const benched = models.filter((m) => m.benchmark);
        if (benched.length) console.log('\nTraining figures: the trainer benchmark (npm run bench:trainer), measured here:');
        for (const m of benched) console.log(`  ${m.id}: ${m.benchmark!.setup}; ${m.benchmark!.machine}; ${m.benchmark!.date.slice(0, 16).replace('T', ' ')} UTC, 1-minute load ${m.benchmark!.loads_before.join(', ')}.`);
        console.log('\nPull one with "nodeai models pull ID" (or its URI). Training speed and memory per model: BENCHMARKS.md.');
      }
      return 0;
    },
  });
}

async function pull(rest: string[]): Promise<number> {
  const { values, positionals } = parse(rest, commonOptions, USAGE);
  let ref;
  try {
    ref = parsePullRef(needArg(positionals, 0, 'URI', USAGE));
  } catch (e) {
    if (e instanceof ModelSourceError) throw new UsageError(`${e.message}\n\n${USAGE}`);
    throw e;
  }
  const progress = values.json ? undefined : progressPrinter();
  const controller = new AbortController();
  // Ctrl-C stops the download; the partial file stays, so the next pull resumes it.
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  try {
    const file = await resolveModelFile(ref, { dataDir: dataDirOf(values), signal: controller.signal, ...(progress ? { onProgress: progress.onProgress } : {}) });
    progress?.done();
    if (values.json) printJson({ object: 'model.pull', model: file.model, source: file.source, status: 'succeeded', path: file.path, bytes: file.bytes, downloaded: file.downloaded });
    else if (file.source === 'ollama') console.log(`${file.model} is in Ollama's store and llama.cpp can load it: ${file.path}`);
    else console.log(`${file.downloaded ? 'Downloaded' : 'Already downloaded:'} ${file.model} (${(file.bytes / 1e6).toFixed(1)} MB, verified) → ${file.path}`);
    return 0;
  } finally {
    progress?.done();
    process.off('SIGINT', onSignal);
  }
}

const EXPORT_OPTIONS = {
  ...commonOptions,
  to: { type: 'string' },
  quant: { type: 'string' },
  out: { type: 'string' },
  adapter: { type: 'boolean' },
} as const;

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T {
  if (value === undefined || !(allowed as readonly string[]).includes(value.toLowerCase())) {
    throw new UsageError(`${flag} must be one of ${allowed.join(', ')}${value === undefined ? '' : ` (got ${JSON.stringify(value)})`}.\n\n${USAGE}`);
  }
  return value.toLowerCase() as T;
}

/** The --out default of each target. */
function defaultOut(to: ExportTarget, name: string): string {
  if (to === 'ollama') return `${exportStem(name)}-ollama`;
  if (to === 'lmstudio') return join(homedir(), '.lmstudio', 'models');
  return '.';
}

async function exportCommand(rest: string[]): Promise<number> {
  const { values, positionals } = parse(rest, EXPORT_OPTIONS, USAGE);
  const id = needArg(positionals, 0, 'MODEL', USAGE);
  const to = oneOf(values.to, EXPORT_TARGETS, '--to');
  const quant = values.quant === undefined ? DEFAULT_EXPORT_QUANT : oneOf(values.quant, EXPORT_QUANTS, '--quant');
  const progress = values.json ? undefined : progressPrinter();
  onlyLlamaErrors();
  const started = Date.now();
  const result = await withRegistry(values, async (r) => {
    const model = await r.get(id);
    return exportRegisteredModel(model, {
      to,
      quant,
      out: values.out ?? defaultOut(to, model.name),
      adapter: values.adapter ?? false,
      dataDir: dataDirOf(values),
      ...(progress
        ? {
            onProgress: (p: ExportProgress) => {
              const seconds = (Date.now() - started) / 1000;
              const rate = seconds > 0 ? p.bytes / seconds : 0;
              progress.onProgress({ model: model.id, file: p.phase === 'quantize' ? `converting to ${quant.toUpperCase()}` : 'copying', bytes: p.bytes, total: p.totalBytes, bytesPerSecond: rate, etaSeconds: rate > 0 ? (p.totalBytes - p.bytes) / rate : null });
            },
          }
        : {}),
    });
  }).finally(() => progress?.done());
  if (values.json) {
    printJson({ object: 'model.export', ...result });
    return 0;
  }
  const command = result.command.map(shellQuote).join(' ');
  console.log(`Exported ${result.model}${result.quant ? ` (${result.quant.toUpperCase()})` : ' (LoRA adapter)'}:`);
  for (const f of result.files) console.log(`  ${f}`);
  for (const n of result.notes) console.log(`Note: ${n}`);
  if (result.to === 'ollama') {
    if (result.ollama_created) console.log(`Created the Ollama model; chat with it: ollama run ${result.command[2]}`);
    else console.log(`Ollama is not installed here; once it is, create the model with:\n  ${command}\nand chat with it: ollama run ${result.command[2]}`);
  } else {
    console.log(`Serve it with llama.cpp (an OpenAI-compatible server on http://127.0.0.1:8080):\n  ${command}`);
    if (result.to === 'lmstudio') console.log('LM Studio lists it under "nodeai" in My Models once the folder is its models folder (Settings → My Models).');
  }
  return 0;
}
