// The one way into fine-tuning: check the data → fit it to the base model's context → convert and
// split it → submit it to a FineTuneProvider. The Fine-Tune node, `nodeai finetune`, /api/v1 and
// OpenAI's /v1 are thin adapters that parse their input into a FineTuneRequest and call fineTune().
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import {
  autoLoraRank,
  checkDataset,
  convertDataset,
  DatasetError,
  findModel,
  FULL_FINE_TUNING,
  isPreferenceExample,
  listModels,
  loraRankOf,
  MIN_EXAMPLES,
  NO_TRAINING_DATA,
  readExamples,
  type DatasetIssue,
  type DatasetReport,
  type DatasetSource,
  type ModelInfo,
  type Tokenizer as DatasetTokenizer,
} from '../datasets/index.ts';
import type { FineTuneRequest } from '../providers/fine-tune-request.ts';
import { DEVICE_METADATA_KEY, EVALUATE_METADATA_KEY, evaluateMetadata, OUTPUT_DIR_METADATA_KEY } from '../providers/fine-tune-request.ts';
import type { CreateJobRequest, FineTuneProvider, FineTuningJob, Hyperparameters } from '../providers/spec.ts';
import type { FileStore } from '../store/index.ts';
import { encodeRendered, renderChat, type ChatMessage as TrainerMessage } from '../trainer/chat-format.ts';
import { GgufError, ggufStem, isGgufPath } from '../trainer/gguf.ts';
import { inspectGgufBase } from '../trainer/gguf-model.ts';
import { parseModelRef, type RemoteModelRef } from '../trainer/model-ref.ts';
import { resolveModelFile, type ModelFile } from '../trainer/model-source.ts';
import { parameterCount, type TokenizerSpec } from '../trainer/llama-model.ts';
import { NODEAI_TINY, TINY_CONFIG, tinyTokenizerSpec } from '../trainer/tiny-model.ts';
import { ByteLevelTokenizer, ggufTokenizer, type Tokenizer as TrainerTokenizer } from '../trainer/tokenizer.ts';
import { FineTuneDataError, FineTuneError } from './errors.ts';
import type { ModelRegistry } from './model-registry.ts';

export interface FineTuneDeps {
  /** Who trains: the local queue (LocalFineTuneProvider), OpenAI, or a tracked remote job. */
  provider: FineTuneProvider;
  /** This store's files: for data given by file ID. */
  files?: Pick<FileStore, 'find' | 'path'>;
  /** This store's fine-tuned models: for continued fine-tuning on the local trainer. */
  models?: Pick<ModelRegistry, 'trainable' | 'find'>;
  /** Where converted files are written: kept there when given (the CLI's DIR), else a temporary folder under `scratchDir`. */
  outDir?: string;
  scratchDir: string;
  /** Where a relative GGUF path is resolved; unset on a server, which may not read its own disk for a request. */
  workflowDir?: string;
  /**
   * The local file of an hf: or ollama: base (downloaded on first use where the caller allows it,
   * with its own progress display); unset where such bases cannot be fetched.
   */
  modelFile?: (ref: RemoteModelRef) => Promise<ModelFile>;
  /** How raw data is named in messages, e.g. 'The "data" input (line N = example N)'. */
  dataName?: string;
  /** Says what to do when nothing is connected or uploaded (the node's inputs, the CLI's FILE…). */
  noDataFix?: string;
  signal?: AbortSignal;
  warn?: (message: string) => void;
}

/**
 * The `modelFile` of an API request, which must not hang for minutes on a download: an hf:/ollama:
 * base that is already here (pulled with `nodeai models pull` or POST /api/v1/models/pull), else
 * `not_downloaded` saying how to pull it.
 */
export function downloadedModelFile(dataDir: string): NonNullable<FineTuneDeps['modelFile']> {
  return (ref) => resolveModelFile(ref, { dataDir, download: false });
}

/** What a fine-tune started: the provider's job and what the service learned on the way. */
export interface FineTuneOutcome {
  job: FineTuningJob;
  base_model: string;
  lora_rank?: number;
  training_file_id: string;
  validation_file_id: string | null;
  training_examples: number | null;
  validation_examples: number | null;
  epochs: number | null;
  estimated_tokens: number | null;
  estimated_cost: number | null;
  /** The data check of raw data (absent for prepared files). */
  report?: DatasetReport;
  /** Where the converted files are, when `outDir` kept them. */
  converted?: { train: string; validation: string | null };
}

export async function fineTune(request: FineTuneRequest, deps: FineTuneDeps): Promise<FineTuneOutcome> {
  if (request.provider === 'local' && request.method.type !== 'supervised') {
    throw new FineTuneError('unsupported_method', `method.type "${request.method.type}" is not supported by the local trainer; use "supervised".`, { param: 'method.type' });
  }
  const base = await resolveBaseModel(request.base_model, request.provider, deps);
  if (request.provider === 'openai' && base.model.newJobsEnd && Date.now() >= Date.parse(base.model.newJobsEnd)) {
    deps.warn?.(`OpenAI stopped accepting new fine-tuning jobs on ${base.model.newJobsEnd}; expect a refusal. Provider "local" trains on this machine.`);
  }
  const loraRank = request.provider === 'local' ? loraRankOf(request.method.lora_rank ?? (base.gguf ? autoLoraRank(base.gguf.parameters) : FULL_FINE_TUNING)) : undefined;
  if (request.data.kind === 'prepared') {
    const training = await preparedFile(deps.files, 'training_file', request.data.training_file);
    const validation = request.data.validation_file ? await preparedFile(deps.files, 'validation_file', request.data.validation_file) : null;
    const job = await deps.provider.createJob(jobRequest(request, base.jobModel, loraRank, training, validation));
    return { job, base_model: base.jobModel, ...(loraRank ? { lora_rank: loraRank } : {}), training_file_id: training, validation_file_id: validation, training_examples: null, validation_examples: null, epochs: null, estimated_tokens: null, estimated_cost: null };
  }

  const data = await dataSource(request.data, deps);
  const work = deps.outDir ?? (await mkdtemp(join(deps.scratchDir, 'tmp-finetune-')));
  const fit = request.provider === 'openai' ? null : base.gguf ? await ggufFit(base.gguf) : base.model.id === NODEAI_TINY ? tinyFit() : null;
  try {
    let source = data.source;
    const split = { validationSplit: request.validation_split, ...(request.seed !== undefined ? { seed: request.seed } : {}) };
    const check = () => checkDataset(source, { model: base.model, epochs: request.hyperparameters.n_epochs, ...split, ...(fit?.counter ? { tokenizer: fit.counter } : {}), signal: deps.signal });
    let report = await check();
    if (report.error_count > 0) throw dataError(report, data.where, deps.noDataFix);
    if (fit) {
      const fitted = await fitToContext(source, fit);
      if (fitted.skipped.length > 0) {
        const lines = fitted.skipped.slice(0, 5).map((x) => `line ${x.line} (${x.tokens} tokens)`).join(', ');
        deps.warn?.(
          `Left out ${fitted.skipped.length} example${fitted.skipped.length === 1 ? '' : 's'} longer than ${fit.name}'s context of ${fit.contextLength} tokens: ${lines}${fitted.skipped.length > 5 ? ', …' : ''}. Shorten them to train on them.`,
        );
        if (fitted.kept < MIN_EXAMPLES) {
          throw new FineTuneDataError('too_few_examples', `${data.where}: only ${fitted.kept} examples fit ${fit.name}'s context of ${fit.contextLength} tokens; fine-tuning needs at least ${MIN_EXAMPLES}. Shorten the long examples (${lines}).`, report);
        }
        source = fitted.source;
        report = await check();
      }
    }
    const converted = await convertDataset(source, { outDir: work, model: base.model, ...split, countTokens: false, signal: deps.signal });
    for (const w of report.warnings.slice(0, 5)) deps.warn?.(`${w.line !== null ? `line ${w.line}: ` : ''}${w.message}`);
    if (request.early_stopping_patience && !converted.validation) deps.warn?.('early_stopping_patience needs validation examples (validation_split > 0); training runs every epoch.');
    const training = await deps.provider.uploadFile({ path: converted.train.path, filename: 'train.jsonl' });
    const validation = converted.validation ? await deps.provider.uploadFile({ path: converted.validation.path, filename: 'validation.jsonl' }) : null;
    const job = await deps.provider.createJob(jobRequest(request, base.jobModel, loraRank, training.id, validation?.id ?? null));
    return {
      job,
      base_model: base.jobModel,
      ...(loraRank ? { lora_rank: loraRank } : {}),
      training_file_id: training.id,
      validation_file_id: validation?.id ?? null,
      training_examples: converted.train.examples,
      validation_examples: converted.validation?.examples ?? 0,
      epochs: report.cost?.epochs ?? (typeof request.hyperparameters.n_epochs === 'number' ? request.hyperparameters.n_epochs : null),
      estimated_tokens: report.cost?.billed_tokens ?? null,
      estimated_cost: report.cost?.usd ?? null,
      report,
      ...(deps.outDir ? { converted: { train: converted.train.path, validation: converted.validation?.path ?? null } } : {}),
    };
  } catch (err) {
    if (DatasetError.isInstance(err) && !(err instanceof FineTuneError)) throw new FineTuneDataError(err.code, `${data.where}: ${err.message}`, (err as { report?: DatasetReport }).report);
    throw err;
  } finally {
    if (!deps.outDir) await rm(work, { recursive: true, force: true });
    await fit?.tokenizer.dispose();
  }
}

/** The request as the provider's create-job call: OpenAI's three hyperparameters plus NodeAI's own for the local trainer. */
function jobRequest(request: FineTuneRequest, model: string, loraRank: number | undefined, training: string, validation: string | null): CreateJobRequest {
  const hp = request.hyperparameters;
  const local = request.provider === 'local';
  const hyperparameters: Partial<Hyperparameters> = {
    n_epochs: hp.n_epochs,
    batch_size: hp.batch_size,
    learning_rate_multiplier: hp.learning_rate_multiplier,
    ...(local && hp.learning_rate !== 'auto' ? { learning_rate: hp.learning_rate } : {}),
    ...(local && loraRank ? { lora_rank: loraRank, ...(request.method.lora_alpha ? { lora_alpha: request.method.lora_alpha } : {}) } : {}),
    ...(local && request.early_stopping_patience ? { early_stopping_patience: request.early_stopping_patience } : {}),
  };
  const evaluate = local ? evaluateMetadata(request.evaluate) : undefined;
  const metadata = {
    ...request.metadata,
    ...(request.output_dir ? { [OUTPUT_DIR_METADATA_KEY]: resolve(request.output_dir) } : {}),
    ...(evaluate ? { [EVALUATE_METADATA_KEY]: evaluate } : {}),
    ...(local && request.device.type !== 'auto' ? { [DEVICE_METADATA_KEY]: request.device.type } : {}),
  };
  return {
    model,
    training_file: training,
    validation_file: validation,
    hyperparameters,
    suffix: request.suffix || null,
    seed: request.seed ?? null,
    metadata: Object.keys(metadata).length ? metadata : null,
  };
}

/** The model a request trains, as the data check sees it, and what the job records as its base. */
export interface BaseModel {
  model: ModelInfo;
  /** The catalogue ID, the registered model's ID or the GGUF path (never a store path). */
  jobModel: string;
  /** Set for a base the trainer reads from a GGUF file. */
  gguf?: GgufBase;
}

/**
 * The one place a base-model name is resolved: nodeai-tiny and the catalogue, a fine-tuned model
 * of this store (continued fine-tuning), or the path of a GGUF file (the CLI and CLI-run
 * workflows). Other references (hf:, ollama:) plug in here.
 */
export async function resolveBaseModel(name: string, provider: FineTuneRequest['provider'], deps: Pick<FineTuneDeps, 'models' | 'workflowDir' | 'modelFile'>): Promise<BaseModel> {
  if (provider === 'openai') {
    // A remote server may train models the catalogue does not know; they are checked as OpenAI's are.
    const model = findModel(name) ?? { ...findModel('gpt-4o-mini')!, id: name, aliases: [], trainingPricePer1M: 0 };
    return { model, jobModel: model.id };
  }
  const ref = parseModelRef(name);
  if (ref.kind === 'hf' || ref.kind === 'ollama') {
    if (!deps.modelFile) throw new FineTuneError('model_not_available', `${ref.text} cannot be fetched here; give the path of its GGUF file instead.`, { param: 'base_model' });
    // The job records the reference, not the file: the worker finds the same file again from it.
    const gguf = await inspectBase((await deps.modelFile(ref)).path, ref.text, ref.text);
    return { model: gguf.model, jobModel: gguf.jobModel, gguf };
  }
  if (isGgufPath(name)) {
    const gguf = await localGgufBase(name, deps.workflowDir);
    return { model: gguf.model, jobModel: gguf.jobModel, gguf };
  }
  // Looked up before the catalogue, which reads "ft:nodeai-tiny:…" as nodeai-tiny.
  const registered = await deps.models?.find(name);
  if (registered) {
    const record = await deps.models!.trainable(registered.id);
    if (!record) throw new FineTuneError('model_not_available', `${registered.id} has no local model file to train further (a remote or adapter-only model); start from "nodeai-tiny".`, { param: 'base_model' });
    const gguf = await inspectBase(record.files.model, record.id, record.id);
    return { model: gguf.model, jobModel: gguf.jobModel, gguf };
  }
  const info = name.startsWith('ft:') ? undefined : findModel(name);
  if (!info || info.provider !== 'local') {
    const local = listModels().filter((m) => m.provider === 'local').map((m) => m.id);
    const hint = info ? ` ${info.id} is trained by ${info.provider}; the local trainer trains local models.` : '';
    throw new FineTuneError(
      'model_not_available',
      `Model ${JSON.stringify(name.slice(0, 80))} cannot be fine-tuned by the local provider.${hint} Use one of: ${local.join(', ')}, a local fine-tuned model ("nodeai models list"), an hf:OWNER/REPO:QUANT or ollama:NAME reference ("nodeai models catalog" lists good ones), or the path of a .gguf file.`,
      { param: 'base_model' },
    );
  }
  return { model: info, jobModel: info.id };
}

/**
 * A GGUF base named by its path, checked from its header before anything is queued (the weights
 * are read by the trainer). Only where relative paths mean something: the CLI and CLI-run workflows.
 */
async function localGgufBase(path: string, workflowDir: string | undefined): Promise<GgufBase> {
  if (!workflowDir) {
    throw new FineTuneError('path_not_allowed', 'A GGUF path as base_model works only when the workflow runs from the CLI (nodeai run WORKFLOW.json); on a server, use nodeai-tiny.', { param: 'base_model' });
  }
  const full = isAbsolute(path) ? path : resolve(workflowDir, path);
  const found = await stat(full).catch(() => null);
  if (!found?.isFile()) {
    throw new FineTuneError('base_model_not_found', `base_model ${full}: no such GGUF file. Give the path of a .gguf model (a relative path starts from the workflow's folder), or use nodeai-tiny.`, { param: 'base_model' });
  }
  return inspectBase(full, full, ggufStem(full));
}

async function inspectBase(path: string, jobModel: string, name: string): Promise<GgufBase> {
  let info: Awaited<ReturnType<typeof inspectGgufBase>>;
  try {
    // Checked as a LoRA base (quantized allowed); a full fine-tuning job (lora_rank 0) of a
    // quantized file is refused, saying to use LoRA or an F16/BF16 file, when its weights are read.
    info = await inspectGgufBase(path, { weights: 'stored' });
  } catch (err) {
    if (err instanceof GgufError) throw new FineTuneError('invalid_base_model', `Cannot fine-tune ${jobModel}: ${err.message}.`, { param: 'base_model' });
    throw err;
  }
  if (!info.tokenizer.chatTemplate) {
    throw new FineTuneError('invalid_base_model', `Cannot fine-tune ${jobModel}: it has no chat template (tokenizer.chat_template), so chat examples cannot be formatted for it. Use a chat/instruct model.`, { param: 'base_model' });
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

const DEFAULT_NO_DATA_FIX = 'Give a training file with at least one example.';

async function dataSource(data: Exclude<FineTuneRequest['data'], { kind: 'prepared' }>, deps: FineTuneDeps): Promise<{ source: DatasetSource; where: string }> {
  const fix = deps.noDataFix ?? DEFAULT_NO_DATA_FIX;
  switch (data.kind) {
    case 'examples': {
      const examples = data.examples;
      if (examples.length === 0) throw new FineTuneDataError('no_training_data', `${NO_TRAINING_DATA}: ${deps.dataName ?? 'the examples'} is an empty list. ${fix}`);
      const source: DatasetSource = {
        name: 'input.jsonl',
        async *open() {
          for (const example of examples) yield Buffer.from(JSON.stringify(example) + '\n');
        },
      };
      // Each example is one line of this JSONL, so "line N" is the N-th example of the input.
      return { source, where: deps.dataName ?? 'The examples (line N = example N)' };
    }
    case 'file': {
      if (!deps.files) throw new FineTuneError('file_not_found', `Training file ${data.file_id}: no store to read it from; give the file itself.`, { param: 'data.file_id' });
      const record = await deps.files.find(data.file_id);
      if (!record) throw new FineTuneError('file_not_found', `Training file ${data.file_id} is not in this store (deleted, or from another NodeAI data directory). Run "nodeai files list", or upload the file again.`, { param: 'data.file_id' });
      const path = await deps.files.path(data.file_id);
      return { source: { name: record.filename, open: () => createReadStream(path, { highWaterMark: 1 << 20 }) }, where: `Training file "${record.filename}" (${data.file_id})` };
    }
    case 'path':
      return { source: data.path, where: data.path };
  }
}

/** An uploaded file used as the job's data as it is: it must exist and be meant for fine-tuning. */
async function preparedFile(files: FineTuneDeps['files'], field: 'training_file' | 'validation_file', id: string): Promise<string> {
  const file = await files?.find(id).catch(() => undefined);
  const param = `data.${field}`;
  if (!file) throw new FineTuneError('invalid_file', `${field} ${JSON.stringify(id.slice(0, 80))} does not exist. Upload it with purpose "fine-tune" first.`, { param });
  if (file.purpose !== 'fine-tune') throw new FineTuneError('invalid_file', `${field} ${id} was uploaded with purpose "${file.purpose}"; fine-tuning needs purpose "fine-tune".`, { param });
  return id;
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

function dataError(report: DatasetReport, where: string, fix = DEFAULT_NO_DATA_FIX): FineTuneDataError {
  const code = report.errors[0]?.code === 'no_training_data' ? 'no_training_data' : 'invalid_training_data';
  if (code === 'no_training_data') return new FineTuneDataError(code, `${NO_TRAINING_DATA}: ${where} holds no examples. ${fix}`, report);
  const shown = report.errors.slice(0, 5).map(describeIssue);
  const more = report.error_count > shown.length ? ` …and ${report.error_count - shown.length} more ("nodeai data check" lists them all).` : '';
  return new FineTuneDataError(code, `${where} has ${report.error_count} error${report.error_count === 1 ? '' : 's'}; nothing was trained:\n- ${shown.join('\n- ')}${more}`, report);
}

function describeIssue(i: DatasetIssue): string {
  return `${i.line !== null ? `line ${i.line}` : 'file'}${i.path ? ` (${i.path})` : ''}: ${i.message}. ${i.hint}.`.replace(/\.\./g, '.');
}
