// `nodeai models list|show|rename|rm`: the fine-tuned models in the registry;
// `nodeai models pull|catalog`: base models from the Hugging Face hub or Ollama, and the catalogue.
import { ModelRegistry, type ModelRecord } from '../jobs/index.ts';
import { listCatalog, parsePullRef } from '../trainer/base-catalog.ts';
import { ModelSourceError } from '../trainer/model-source-errors.ts';
import { resolveModelFile } from '../trainer/model-source.ts';
import { commonOptions, DATA_DIR_HELP, dataDirOf, dispatch, needArg, openStore, parse, printJson, table, when } from './app.ts';
import { progressPrinter } from './download-progress.ts';
import { UsageError } from './usage-error.ts';

const USAGE = `Usage:
  nodeai models list [--json]
  nodeai models show MODEL [--json]
  nodeai models rename MODEL NEW_NAME [--json]
  nodeai models rm MODEL [--json]        (deletes the model's files in the data dir too)
  nodeai models pull URI [--json]        download a base model (once; resumes; verified)
  nodeai models catalog [--json]         recommended small bases, and which are downloaded

MODEL is a model ID (ft:nodeai-tiny:…) or its name.
URI is hf:OWNER/REPO:QUANT (e.g. hf:Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q8_0), hf:OWNER/REPO/FILE.gguf,
ollama:NAME[:TAG] (checked in place in Ollama's store), or a catalogue ID (qwen2.5-0.5b-instruct).
HF_TOKEN authorizes gated repositories; HF_ENDPOINT points at a mirror.

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
    `  files:        ${Object.values(m.files).filter(Boolean).join(', ') || '-'}`,
    `  used:         ${m.usage_count} times${m.last_used_at ? `, last ${when(m.last_used_at)}` : ''}`,
    `  created:      ${when(m.created_at)}`,
  ].join('\n');
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
    async catalog(rest) {
      const { values } = parse(rest, options, USAGE);
      const models = await listCatalog(dataDirOf(values));
      if (values.json) printJson({ object: 'list', data: models });
      else {
        const gb = (b: number | null) => (b === null ? '?' : `${(b / 1e9).toFixed(2)} GB`);
        const measured = (x: number | null, unit: string) => (x === null ? '?' : `${x.toLocaleString('en-US')}${unit}`);
        console.log(
          table(
            ['ID', 'PARAMS', 'ARCH', 'LICENSE', 'CONTEXT', 'DEFAULT', 'SIZE', 'TRAIN TOK/S', 'TRAIN PEAK', 'DOWNLOADED', 'URI'],
            models.map((m) => [m.id, `${(m.parameters / 1e9).toFixed(2)}B`, m.architecture, m.license, m.context_length, m.default_quant, gb(m.files.find((f) => f.quant === m.default_quant)?.bytes ?? null), measured(m.est_train_tok_s, ''), measured(m.est_peak_rss_mb, ' MB'), m.downloaded ? 'yes' : 'no', m.uri]),
          ),
        );
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
