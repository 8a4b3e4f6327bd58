import { mkdtemp, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import {
  autoLoraRank,
  checkDataset,
  convertDataset,
  DatasetError,
  findModel,
  FULL_FINE_TUNING,
  listModels,
  loraRankOf,
  NO_TRAINING_DATA,
  type DatasetIssue,
  type DatasetReport,
  type DatasetSource,
  type ModelInfo,
  type Tokenizer as DatasetTokenizer,
} from '../datasets/index.ts';
import { defineNode } from '../engine/index.ts';
import { AnthropicFineTuningUnsupportedError } from '../providers/anthropic.ts';
import type { ModelRegistry } from '../jobs/index.ts';
import { BASE_URL_METADATA_KEY, jobKeySecretName } from '../jobs/remote-tracker.ts';
import { findOpenAIKey, OPENAI_KEY_SECRET } from '../providers/openai-key.ts';
import { OpenAIFineTuneProvider, resolveEndpoint } from '../providers/openai.ts';
import { isValidFileId } from '../store/index.ts';
import { renderChat, encodeRendered, type ChatMessage as TrainerMessage } from '../trainer/chat-format.ts';
import { GgufError, ggufStem, isGgufPath } from '../trainer/gguf.ts';
import { inspectGgufBase } from '../trainer/gguf-model.ts';
import { parameterCount } from '../trainer/llama-model.ts';
import type { TokenizerSpec } from '../trainer/llama-model.ts';
import { ByteLevelTokenizer, ggufTokenizer, type Tokenizer as TrainerTokenizer } from '../trainer/tokenizer.ts';
import { NODEAI_TINY, TINY_CONFIG, tinyTokenizerSpec } from '../trainer/tiny-model.ts';
import { readExamples, MIN_EXAMPLES, isPreferenceExample } from '../datasets/index.ts';
import { pathSource } from './examples.ts';
import { nodeError, servicesOf } from './services.ts';

// A blank form field arrives as '' (or null from JSON); both mean "auto", as does the word.
const autoNumber = (schema: z.ZodNumber) => z.preprocess((v) => (v === '' || v === null || v === 'auto' ? undefined : v), schema.optional());

const config = z.object({
  provider: z.enum(['local', 'openai', 'anthropic']).default('local').describe('Who trains: local (this machine, the default), openai, or anthropic (which offers no fine-tuning API).'),
  base_model: z
    .string()
    .trim()
    .min(1)
    .default('nodeai-tiny')
    .describe("The model to fine-tune: nodeai-tiny (built in), the path of a Llama-family GGUF file (F32/F16/BF16; local provider, relative to the workflow's folder), or the provider's model ID."),
  training_file_id: z.string().trim().optional().describe('An uploaded training file ("nodeai files upload FILE"), used when nothing is connected to the data input.'),
  validation_split: z.number().min(0).max(1).default(0.2).describe('Share of the examples held out to measure validation loss, 0..1.'),
  epochs: z.union([z.number().int().min(1).max(50), z.literal('auto')]).default(3).describe('Passes over the training data, 1..50, or auto.'),
  batch_size: autoNumber(z.number().int().min(1).max(256)).describe('Examples per step; empty = auto.'),
  learning_rate: autoNumber(z.number().positive().max(100)).describe("Learning-rate multiplier of the base model's default rate (OpenAI's learning_rate_multiplier); empty = auto."),
  early_stopping_patience: autoNumber(z.number().int().min(1).max(50)).describe(
    "Local provider: stop when the validation loss has not improved for this many epochs, and keep the best epoch's model (needs validation_split > 0); empty = train every epoch.",
  ),
  lora_rank: autoNumber(z.number().int().min(0).max(256)).describe('Local provider: rank of a LoRA adapter trained instead of every weight; 0 = full fine-tuning; empty = auto (8 for a GGUF base, full for nodeai-tiny).'),
  model_name: z
    .string()
    .trim()
    .max(40)
    .regex(/^[A-Za-z0-9_ -]*$/, 'use letters, digits, spaces, "_" or "-"')
    .optional()
    .describe('A suffix for the new model\'s name: ft:<base>:<model_name>:<id>.'),
  seed: z.number().int().min(0).optional().describe('Makes the split and the training reproducible.'),
  wait_for_completion: z.boolean().default(true).describe('Wait for training to finish and pass fine_tuned_model on; off: output the job_id at once.'),
  api_key: z.string().optional().describe('OpenAI only. Better: "nodeai secrets set OPENAI_API_KEY", so the key never sits in the workflow.'),
  base_url: z.string().trim().optional().describe('OpenAI only: another OpenAI-compatible server, e.g. a NodeAI on a GPU box ("http://gpu-box:8787/v1", its API token as the key) or Azure OpenAI ("https://<resource>.openai.azure.com"). Empty = api.openai.com.'),
});

type FineTuneConfig = z.output<typeof config>;

const NO_DATA_FIX =
  'Connect a File Loader or Data Loader to the Fine-Tune node\'s "data" input, or set "training_file_id" to the ID that "nodeai files upload FILE" prints.';

export const fineTuneNode = defineNode({
  type: 'finetune',
  name: 'Fine-Tune',
  category: 'ai',
  description: 'Checks and converts the training data, then trains a model (locally by default) and outputs its name.',
  inputs: [{ name: 'data', description: 'training examples (from a File Loader or Data Loader)' }],
  outputs: [
    { name: 'data', description: 'everything below, as one object' },
    { name: 'fine_tuned_model' },
    { name: 'job_id' },
    { name: 'status' },
    { name: 'metrics' },
  ],
  config,
  secretConfig: ['api_key'],
  async run(ctx) {
    const { config, store } = ctx;
    if (config.provider === 'anthropic') throw new AnthropicFineTuningUnsupportedError();
    const remote = config.provider === 'openai';
    let apiKey: string | undefined;
    if (remote) {
      apiKey = await findOpenAIKey({ configKey: config.api_key, getSecret: (name) => ctx.secrets.get(name).catch(() => undefined) });
      store.redactor.add(apiKey);
      resolveEndpoint(config.base_url);
    }
    const services = servicesOf(ctx);
    // findModel reads "ft:nodeai-tiny:…" as nodeai-tiny, so a registered fine-tuned model is looked up first.
    const ggufBase = remote ? null : isGgufPath(config.base_model) ? await localGgufBase(config.base_model, services.workflowDir) : await registeredBase(config.base_model, services.models);
    // A remote server may train models the catalogue does not know; they are checked as OpenAI's are.
    const model = ggufBase?.model ?? findModel(config.base_model) ?? (remote ? { ...findModel('gpt-4o-mini')!, id: config.base_model, aliases: [], trainingPricePer1M: 0 } : undefined);
    if (remote && model?.newJobsEnd && !config.base_url && Date.now() >= Date.parse(model.newJobsEnd)) {
      ctx.logger.warn(`OpenAI stopped accepting new fine-tuning jobs on ${model.newJobsEnd}; expect a refusal. Provider "local" trains on this machine.`);
    }
    if (!model || (!remote && model.provider !== 'local')) {
      const local = listModels().filter((m) => m.provider === 'local').map((m) => m.id);
      throw nodeError('unknown_model', `base_model ${JSON.stringify(config.base_model)} cannot be trained by the local provider. Use one of: ${local.join(', ')}, a local fine-tuned model ("nodeai models list"), or the path of a Llama-family .gguf file.`);
    }

    const training = await trainingSource(ctx.inputs.data, config, store.files);
    let source = training.source;
    const where = training.where;
    const work = await mkdtemp(join(store.dataDir, 'tmp-finetune-'));
    let local: LocalFit | null = null;
    try {
      local = remote ? null : ggufBase ? await ggufFit(ggufBase) : model.id === NODEAI_TINY ? tinyFit() : null;
      const split = { validationSplit: config.validation_split, ...(config.seed !== undefined ? { seed: config.seed } : {}) };
      let report: DatasetReport;
      try {
        const check = () => checkDataset(source, { model, epochs: config.epochs, ...split, ...(local?.counter ? { tokenizer: local.counter } : {}), signal: ctx.signal });
        report = await check();
        if (report.error_count > 0) throw nodeError(firstCode(report), describeReport(report, where));
        if (local) {
          const fitted = await fitToContext(source, local);
          if (fitted.skipped.length > 0) {
            const lines = fitted.skipped.slice(0, 5).map((x) => `line ${x.line} (${x.tokens} tokens)`).join(', ');
            ctx.logger.warn(
              `Left out ${fitted.skipped.length} example${fitted.skipped.length === 1 ? '' : 's'} longer than ${local.name}'s context of ${local.contextLength} tokens: ${lines}${fitted.skipped.length > 5 ? ', …' : ''}. Shorten them to train on them.`,
            );
            if (fitted.kept < MIN_EXAMPLES) {
              throw nodeError('too_few_examples', `${where}: only ${fitted.kept} examples fit ${local.name}'s context of ${local.contextLength} tokens; fine-tuning needs at least ${MIN_EXAMPLES}. Shorten the long examples (${lines}).`);
            }
            source = fitted.source;
            report = await check();
          }
        }
        const converted = await convertDataset(source, { outDir: work, model, ...split, countTokens: false, signal: ctx.signal });
        const train = await store.files.put(converted.train.path, { filename: 'train.jsonl', purpose: 'fine-tune' });
        const validation = converted.validation ? await store.files.put(converted.validation.path, { filename: 'validation.jsonl', purpose: 'fine-tune' }) : null;
        const epochs = report.cost?.epochs ?? (typeof config.epochs === 'number' ? config.epochs : 3);
        for (const w of report.warnings.slice(0, 5)) ctx.logger.warn(`${w.line !== null ? `line ${w.line}: ` : ''}${w.message}`);
        if (config.early_stopping_patience && remote) ctx.logger.warn('early_stopping_patience applies to the local trainer only; OpenAI trains every epoch.');
        else if (config.early_stopping_patience && !converted.validation) ctx.logger.warn('early_stopping_patience needs validation examples (validation_split > 0); training runs every epoch.');
        const loraRank = remote ? undefined : loraRankOf(config.lora_rank ?? (ggufBase ? autoLoraRank(ggufBase.parameters) : FULL_FINE_TUNING));
        const job = await services.jobs.create({
          provider: config.provider,
          model: ggufBase?.jobModel ?? model.id,
          training_file: train.id,
          validation_file: validation?.id ?? null,
          hyperparameters: {
            n_epochs: config.epochs,
            batch_size: config.batch_size ?? 'auto',
            learning_rate_multiplier: config.learning_rate ?? 'auto',
            ...(loraRank ? { lora_rank: loraRank } : {}),
            ...(config.early_stopping_patience && !remote ? { early_stopping_patience: config.early_stopping_patience } : {}),
          },
          suffix: config.model_name || null,
          seed: config.seed ?? null,
          metadata: { run_id: ctx.runId, node_id: ctx.node.id, ...(remote && config.base_url ? { [BASE_URL_METADATA_KEY]: config.base_url } : {}) },
        });
        let status = job.status;
        if (remote && job.status !== 'failed') {
          // A key typed into the node is kept (encrypted) for the tracker while the job runs.
          if (config.api_key?.trim()) await store.secrets.set(jobKeySecretName(job.id), apiKey!);
          const client = new OpenAIFineTuneProvider({ ...services.openai, apiKey: apiKey!, baseURL: config.base_url });
          await services.remoteJobs.start();
          try {
            const submitted = await services.remoteJobs.submit(
              job.id,
              client,
              {
                training: { path: await store.files.path(train.id), filename: `${ctx.node.id}-train.jsonl` },
                validation: validation ? { path: await store.files.path(validation.id), filename: `${ctx.node.id}-validation.jsonl` } : null,
              },
              { signal: ctx.signal },
            );
            status = submitted.status;
          } catch (err) {
            const code = (err as { code?: string }).code ?? 'provider_error';
            const fix = code === 'auth' ? ` The key came from ${config.api_key?.trim() ? 'the node\'s "api_key" setting' : `the vault or environment (${OPENAI_KEY_SECRET})`}.` : '';
            throw nodeError(code, `Job ${job.id} could not start at OpenAI${config.base_url ? ` (${config.base_url})` : ''}: ${(err as Error).message}${fix}`);
          }
        }
        const outputs = {
          job_id: job.id,
          status,
          provider: config.provider,
          ...(remote && config.base_url ? { base_url: config.base_url } : {}),
          base_model: ggufBase?.jobModel ?? model.id,
          ...(loraRank ? { lora_rank: loraRank } : {}),
          training_file_id: train.id,
          validation_file_id: validation?.id ?? null,
          training_examples: converted.train.examples,
          validation_examples: converted.validation?.examples ?? 0,
          epochs,
          estimated_tokens: report.cost?.billed_tokens ?? null,
          estimated_cost: report.cost?.usd ?? null,
        };
        if (job.status === 'failed') throw nodeError(job.error?.code ?? 'job_failed', `Job ${job.id} could not start: ${job.error?.message ?? 'no reason given'}`);
        ctx.logger.info(
          `Created job ${job.id}: ${outputs.training_examples} training / ${outputs.validation_examples} validation examples, ${epochs} epochs, ~${outputs.estimated_tokens} tokens, $${outputs.estimated_cost}`,
        );
        ctx.emit({ message: `job ${job.id} ${status}`, progress: 0, data: { job_id: job.id } });
        if (!config.wait_for_completion) return { ...outputs, data: outputs };
        return { wait: { kind: 'job' as const, jobId: job.id, state: outputs } };
      } catch (err) {
        if (DatasetError.isInstance(err)) throw nodeError(err.code, `${where}: ${err.message}`);
        throw err;
      }
    } finally {
      await rm(work, { recursive: true, force: true });
      await local?.tokenizer.dispose();
    }
  },
  async resume(ctx) {
    const state = (ctx.wait.state ?? {}) as Record<string, unknown>;
    const { job } = ctx;
    if (job.status !== 'succeeded') {
      const reason = job.error?.message ?? 'no reason given';
      throw nodeError(job.error?.code ?? (job.status === 'cancelled' ? 'job_cancelled' : 'job_failed'), `Fine-tuning job ${job.jobId} ${job.status}: ${reason} (see "nodeai jobs events ${job.jobId}").`);
    }
    const out = (job.outputs ?? {}) as Record<string, unknown>;
    const metrics: Record<string, number> = {};
    for (const key of ['train_loss', 'valid_loss', 'train_mean_token_accuracy', 'valid_mean_token_accuracy', 'trained_tokens', 'steps']) {
      if (typeof out[key] === 'number') metrics[key] = out[key] as number;
    }
    const outputs = { ...state, status: 'succeeded', fine_tuned_model: out.fine_tuned_model, ...metrics, metrics };
    return { ...outputs, data: outputs };
  },
});


/**
 * A GGUF base named by its path, checked from its header before anything is queued (the weights
 * are read by the trainer). Only where relative paths mean something, as for the File Loader's
 * "path": a workflow run from the CLI.
 */
async function localGgufBase(path: string, workflowDir: string | undefined): Promise<GgufBase> {
  if (!workflowDir) {
    throw nodeError('path_not_allowed', 'A GGUF path as base_model works only when the workflow runs from the CLI (nodeai run WORKFLOW.json); on a server, use nodeai-tiny.');
  }
  const full = isAbsolute(path) ? path : resolve(workflowDir, path);
  const found = await stat(full).catch(() => null);
  if (!found?.isFile()) {
    throw nodeError('base_model_not_found', `base_model ${full}: no such GGUF file. Give the path of a Llama-family .gguf model (a relative path starts from the workflow's folder), or use nodeai-tiny.`);
  }
  return inspectBase(full, full, ggufStem(full));
}

/** A fine-tuned model of this store, trained further from its own model file (continued fine-tuning). */
async function registeredBase(name: string, models: ModelRegistry): Promise<GgufBase | null> {
  const record = await models.trainable(name);
  return record ? inspectBase(record.files.model, record.id, record.id) : null;
}

async function inspectBase(path: string, jobModel: string, name: string): Promise<GgufBase> {
  let info: Awaited<ReturnType<typeof inspectGgufBase>>;
  try {
    info = await inspectGgufBase(path);
  } catch (err) {
    if (err instanceof GgufError) throw nodeError('invalid_base_model', `Cannot fine-tune ${jobModel}: ${err.message}.`);
    throw err;
  }
  if (!info.tokenizer.chatTemplate) {
    throw nodeError('invalid_base_model', `Cannot fine-tune ${jobModel}: it has no chat template (tokenizer.chat_template), so chat examples cannot be formatted for it. Use a chat/instruct model.`);
  }
  return {
    path,
    jobModel,
    spec: info.tokenizer,
    contextLength: info.config.contextLength,
    parameters: parameterCount(info.config),
    model: { id: name, provider: 'local', aliases: [], tokenLimit: info.config.contextLength, trainingPricePer1M: 0, tokenizer: 'bytes', methods: ['supervised'], source: jobModel },
  };
}

/** A base the trainer reads from a GGUF file: one given by its path, or a registered fine-tuned model. */
interface GgufBase {
  /** The file. */
  path: string;
  /** What the job records as its base: the path, or the registered model's ID (never a store path). */
  jobModel: string;
  spec: TokenizerSpec;
  contextLength: number;
  parameters: number;
  model: ModelInfo;
}

/**
 * A local model's tokenizer, chat template and context: to leave out (and name) the examples
 * the trainer would refuse, and to count tokens as the model will see them.
 */
interface LocalFit {
  name: string;
  spec: TokenizerSpec;
  tokenizer: TrainerTokenizer;
  contextLength: number;
  /** For the data check; absent where the catalogue's own count is already exact (nodeai-tiny's bytes). */
  counter?: DatasetTokenizer;
}

function tinyFit(): LocalFit {
  const spec = tinyTokenizerSpec();
  return { name: NODEAI_TINY, spec, tokenizer: new ByteLevelTokenizer(spec), contextLength: TINY_CONFIG.contextLength };
}

async function ggufFit(base: GgufBase): Promise<LocalFit> {
  const tokenizer = await ggufTokenizer(base.path, base.spec);
  const counter: DatasetTokenizer = {
    name: base.model.id,
    countTokens: (text) => tokenizer.encode(text, { special: false }).length,
    countChat: (example) => renderedTokens({ spec: base.spec, tokenizer }, example),
  };
  return { name: base.model.id, spec: base.spec, tokenizer, contextLength: base.contextLength, counter };
}

/** Tokens of a chat example as the trainer renders it (the model's chat template, then its tokenizer). */
function renderedTokens(fit: Pick<LocalFit, 'spec' | 'tokenizer'>, example: { messages: unknown[]; tools?: unknown }): number {
  const text = renderChat(fit.spec, example.messages as TrainerMessage[], { tools: example.tools as never, addGenerationPrompt: false });
  return encodeRendered(fit.spec, fit.tokenizer, text).length;
}

async function trainingSource(data: unknown, config: FineTuneConfig, files: { find(id: string): Promise<{ id: string; filename: string } | undefined>; path(id: string): Promise<string> }): Promise<{ source: DatasetSource; where: string }> {
  if (data !== undefined && data !== null) {
    if (!Array.isArray(data)) {
      throw nodeError('invalid_input', `The "data" input must be a list of training examples, got ${typeof data}. Connect a File Loader or Data Loader to it.`);
    }
    if (data.length === 0) throw nodeError('no_training_data', `${NO_TRAINING_DATA}: the "data" input is an empty list. ${NO_DATA_FIX}`);
    const source: DatasetSource = {
      name: 'input.jsonl',
      async *open() {
        for (const example of data) yield Buffer.from(JSON.stringify(example) + '\n');
      },
    };
    // Each example is one line of this JSONL, so "line N" is the N-th example of the input.
    return { source, where: 'The "data" input (line N = example N)' };
  }
  if (config.training_file_id) {
    const id = config.training_file_id;
    if (!isValidFileId(id)) {
      throw nodeError('invalid_file_id', `"training_file_id" ${JSON.stringify(String(id).slice(0, 80))} is not a file ID: IDs look like "file-" followed by 24 letters or digits. Run "nodeai files list".`);
    }
    const record = await files.find(id);
    if (!record) throw nodeError('file_not_found', `"training_file_id" ${id} is not in this store (deleted, or from another NodeAI data directory). Run "nodeai files list", or upload the file again.`);
    return { source: pathSource(await files.path(id), record.filename), where: `Training file "${record.filename}" (${id})` };
  }
  throw nodeError('no_training_data', `${NO_TRAINING_DATA}. ${NO_DATA_FIX}`);
}

/**
 * The local trainer refuses an example longer than the model's context (it does not truncate),
 * so such examples are left out here, named, before a job is created — not found by the trainer
 * minutes later in a converted file the user never saw.
 */
async function fitToContext(source: DatasetSource, fit: LocalFit): Promise<{ source: DatasetSource; kept: number; skipped: { line: number; tokens: number }[] }> {
  const kept: string[] = [];
  const skipped: { line: number; tokens: number }[] = [];
  for await (const { line, example } of readExamples(source)) {
    if (isPreferenceExample(example)) {
      kept.push(JSON.stringify(example));
      continue;
    }
    const tokens = renderedTokens(fit, example);
    if (tokens > fit.contextLength) skipped.push({ line, tokens });
    else kept.push(JSON.stringify(example));
  }
  const body = kept.join('\n') + '\n';
  return {
    kept: kept.length,
    skipped,
    source: {
      name: 'fitted.jsonl',
      async *open() {
        yield Buffer.from(body, 'utf8');
      },
    },
  };
}

function firstCode(report: DatasetReport): string {
  const code = report.errors[0]?.code;
  return code === 'no_training_data' ? 'no_training_data' : 'invalid_training_data';
}

function describeIssue(i: DatasetIssue): string {
  return `${i.line !== null ? `line ${i.line}` : 'file'}${i.path ? ` (${i.path})` : ''}: ${i.message}. ${i.hint}.`.replace(/\.\./g, '.');
}

function describeReport(report: DatasetReport, where: string): string {
  if (report.errors[0]?.code === 'no_training_data') return `${NO_TRAINING_DATA}: ${where} holds no examples. ${NO_DATA_FIX}`;
  const shown = report.errors.slice(0, 5).map(describeIssue);
  const more = report.error_count > shown.length ? ` …and ${report.error_count - shown.length} more ("nodeai data check" lists them all).` : '';
  return `${where} has ${report.error_count} error${report.error_count === 1 ? '' : 's'}; nothing was trained:\n- ${shown.join('\n- ')}${more}`;
}
