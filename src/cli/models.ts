// `nodeai models list|show|rename|rm`: the fine-tuned models in the registry.
import { ModelRegistry, type ModelRecord } from '../jobs/index.ts';
import { commonOptions, DATA_DIR_HELP, dispatch, needArg, openStore, parse, printJson, table, when } from './app.ts';

const USAGE = `Usage:
  nodeai models list [--json]
  nodeai models show MODEL [--json]
  nodeai models rename MODEL NEW_NAME [--json]
  nodeai models rm MODEL [--json]        (deletes the model's files in the data dir too)

MODEL is a model ID (ft:nodeai-tiny:…) or its name.

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
  });
}
