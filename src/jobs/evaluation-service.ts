// The one way into evaluation for `nodeai eval`, the Evaluate node and POST /api/v1/evaluations:
// parse the request (EvaluationRequest), resolve each model name to something that answers
// (a registered fine-tuned model, a GGUF path, nodeai-tiny, an hf:/ollama: reference, a remote
// OpenAI model), read the examples, and run the evaluation core (trainer/evaluate.ts).
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { DatasetError, InvalidExampleError, isPreferenceExample, openAITokenizer, readExamples, type DatasetSource } from '../datasets/index.ts';
import { OpenAIChatProvider } from '../providers/openai.ts';
import { findOpenAIKey } from '../providers/openai-key.ts';
import type { ChatProvider } from '../providers/spec.ts';
import type { VaultKeyLookup } from '../providers/key-binding.ts';
import type { FileStore, Store } from '../store/index.ts';
import type { ChatMessage } from '../trainer/chat-format.ts';
import { evaluateModels, EvaluationError, localEvalModel, type EvalExample, type EvalJudge, type EvalModel } from '../trainer/evaluate.ts';
import type { EvaluationProgress, EvaluationReport } from '../trainer/evaluation-report.ts';
import { parseModelRef, type RemoteModelRef } from '../trainer/model-ref.ts';
import type { ModelFile } from '../trainer/model-source.ts';
import { ensureTinyBaseModel } from '../trainer/tiny-model-file.ts';
import type { ModelRecord, ModelRegistry } from './model-registry.ts';

/** A remote OpenAI(-compatible) model is named `openai:MODEL` (e.g. openai:gpt-4o-mini). */
export const OPENAI_MODEL_PREFIX = 'openai:';

const ModelChoice = z.object({
  model: z.string().trim().min(1),
  /** A LoRA adapter GGUF applied to this model (a local model only). */
  lora: z.string().trim().min(1).optional(),
});

export const EvaluationData = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('examples'), examples: z.array(z.unknown()).min(1) }),
  z.object({ kind: z.literal('file'), file_id: z.string().min(1) }),
  z.object({ kind: z.literal('path'), path: z.string().min(1) }),
]);

export const EvaluationRequest = z.object({
  /** Side by side in this order: put the base first and the fine-tuned model after it. */
  models: z.array(ModelChoice).min(1).max(4),
  data: EvaluationData,
  /** Evaluate on the first N examples only. */
  max_examples: z.number().int().min(1).max(10_000).optional(),
  /** A chat-capable model (any of the names above) that scores each answer 1–5 by the stated rubric; off by default. */
  judge: z.string().trim().min(1).optional(),
});
export type EvaluationRequest = z.output<typeof EvaluationRequest>;

export interface EvaluationDeps {
  models: Pick<ModelRegistry, 'find'>;
  dataDir: string;
  /** This store's files: for data given by file ID. */
  files?: Pick<FileStore, 'find' | 'path'>;
  /** Where relative .gguf and data paths are resolved (the CLI: its working directory). Unset on a server: paths are refused. */
  workflowDir?: string;
  /** The local file of an hf:/ollama: model (downloaded where the caller allows it). */
  modelFile?: (ref: RemoteModelRef) => Promise<ModelFile>;
  /** A chat provider for a remote model: `openai:MODEL`, or a fine-tuned model a remote provider trained. */
  remoteChat?: (model: string, record: ModelRecord | undefined) => Promise<ChatProvider>;
  threads?: number;
  onProgress?: (p: EvaluationProgress) => void;
  signal?: AbortSignal;
}

/** Name of a model choice in the report: the model, and its adapter's file when one is applied. */
export function choiceName(choice: z.output<typeof ModelChoice>): string {
  return choice.lora ? `${choice.model}+${basename(choice.lora)}` : choice.model;
}

export async function evaluate(request: EvaluationRequest, deps: EvaluationDeps): Promise<EvaluationReport> {
  const examples = await readEvaluationData(request.data, deps, request.max_examples);
  const models: EvalModel[] = [];
  let judge: EvalModel | undefined;
  try {
    for (const choice of request.models) models.push(await openModel(choice, deps));
    if (request.judge) judge = await openModel({ model: request.judge }, deps);
    const judging: EvalJudge | undefined = judge && { name: judge.name, ask: (messages) => judge!.answer(messages, undefined, 8) };
    return await evaluateModels(models, examples, { ...(judging ? { judge: judging } : {}), ...(deps.onProgress ? { onProgress: deps.onProgress } : {}), ...(deps.signal ? { signal: deps.signal } : {}) });
  } finally {
    for (const m of [...models, ...(judge ? [judge] : [])]) await m.dispose();
  }
}

/** Where a model choice answers from: a local GGUF (and adapter), or a remote chat model. */
type LocatedModel = { kind: 'local'; name: string; path: string; lora?: string } | { kind: 'remote'; name: string; model: string; record: ModelRecord | undefined };

/** Finds a model choice without loading it: refuses unknown names, missing files and paths where they are not allowed. */
export async function locateModel(choice: z.output<typeof ModelChoice>, deps: EvaluationDeps): Promise<LocatedModel> {
  const name = choiceName(choice);
  const text = choice.model;
  const local = (path: string): LocatedModel => ({ kind: 'local', name, path, ...(choice.lora ? { lora: localPath(choice.lora, deps, 'LoRA adapter') } : {}) });
  const remote = (model: string, record: ModelRecord | undefined): LocatedModel => {
    if (choice.lora) throw new EvaluationError('invalid_request', `A LoRA adapter applies to a local model only, not to the remote model ${model}.`);
    if (!deps.remoteChat) throw new EvaluationError('model_not_available', `The remote model ${model} cannot be reached from here.`);
    return { kind: 'remote', name, model, record };
  };
  if (text.toLowerCase().startsWith(OPENAI_MODEL_PREFIX)) return remote(text.slice(OPENAI_MODEL_PREFIX.length), undefined);
  const ref = parseModelRef(text);
  switch (ref.kind) {
    case 'builtin':
      return local(await ensureTinyBaseModel(deps.dataDir));
    case 'hf':
    case 'ollama':
      if (!deps.modelFile) throw new EvaluationError('model_not_available', `${ref.text} cannot be fetched here; pull it first ("nodeai models pull ${ref.text}" or POST /api/v1/models/pull).`);
      return local((await deps.modelFile(ref)).path);
    case 'path':
      return local(await existingFile(localPath(ref.path, deps, 'model'), 'model'));
    case 'name': {
      const record = await deps.models.find(text);
      if (!record) {
        throw new EvaluationError(
          'model_not_found',
          `Model ${JSON.stringify(text.slice(0, 80))} is not a registered fine-tuned model ("nodeai models list"), nodeai-tiny, a .gguf path, an hf:OWNER/REPO:QUANT or ollama:NAME reference, or openai:MODEL for a remote model.`,
        );
      }
      if (record.provider !== 'local') return remote(record.id, record);
      // The trainer's model file has a LoRA adapter merged in already.
      if (record.files.model) return local(record.files.model);
      throw new EvaluationError('model_not_available', `${record.id} has no model file on this machine (deleted?); it cannot be evaluated.`);
    }
  }
}

/** Every model of the request located (see locateModel): what a caller checks before queuing the work. */
export async function locateModels(request: EvaluationRequest, deps: EvaluationDeps): Promise<LocatedModel[]> {
  const out: LocatedModel[] = [];
  for (const choice of [...request.models, ...(request.judge ? [{ model: request.judge }] : [])]) out.push(await locateModel(choice, deps));
  return out;
}

async function openModel(choice: z.output<typeof ModelChoice>, deps: EvaluationDeps): Promise<EvalModel> {
  const located = await locateModel(choice, deps);
  if (located.kind === 'local') return localEvalModel({ name: located.name, path: located.path, ...(located.lora ? { lora: located.lora } : {}), ...(deps.threads ? { threads: deps.threads } : {}) });
  return remoteModel(located.name, located.model, located.record, deps);
}

async function remoteModel(name: string, model: string, record: ModelRecord | undefined, deps: EvaluationDeps): Promise<EvalModel> {
  const chat = await deps.remoteChat!(model, record);
  // The answer budget is counted in OpenAI's tokens; the exact tokenizer of a remote model is unknown.
  const tokens = await openAITokenizer('o200k_base');
  return {
    name,
    countTokens: (text) => tokens.countTokens(text),
    async answer(prompt, _tools, maxTokens) {
      const r = await chat.chat({ model, messages: prompt as never, temperature: 0, max_tokens: maxTokens, ...(deps.signal ? { signal: deps.signal } : {}) });
      return r.text;
    },
    dispose: async () => {},
  };
}

function localPath(path: string, deps: Pick<EvaluationDeps, 'workflowDir'>, what: string): string {
  if (isAbsolute(path)) {
    if (deps.workflowDir) return path;
  } else if (deps.workflowDir) {
    return resolve(deps.workflowDir, path);
  }
  throw new EvaluationError('path_not_allowed', `A file path as the ${what} (${JSON.stringify(basename(path))}) works from the CLI only; on a server, name a registered model, nodeai-tiny or an hf:/ollama: model.`);
}

async function existingFile(path: string, what: string): Promise<string> {
  const found = await stat(path).catch(() => null);
  if (!found?.isFile()) throw new EvaluationError(`${what}_not_found`, `${path}: no such file. Give the path of a .gguf ${what} (a relative path starts from the current folder).`);
  return path;
}

/** The examples, parsed once here: chat examples whose last message is the expected assistant answer. */
export async function readEvaluationData(data: z.output<typeof EvaluationData>, deps: Pick<EvaluationDeps, 'files' | 'workflowDir'>, maxExamples?: number): Promise<EvalExample[]> {
  let source: DatasetSource;
  let where: string;
  switch (data.kind) {
    case 'examples': {
      const lines = data.examples.map((e) => JSON.stringify(e)).join('\n') + '\n';
      source = { name: 'input.jsonl', async *open() { yield Buffer.from(lines); } };
      where = 'The examples (line N = example N)';
      break;
    }
    case 'file': {
      const record = await deps.files?.find(data.file_id).catch(() => undefined);
      if (!record || !deps.files) throw new EvaluationError('file_not_found', `File ${data.file_id.slice(0, 80)} is not in this store. Run "nodeai files list", or upload the examples first.`);
      const path = await deps.files.path(data.file_id);
      source = { name: record.filename, open: () => createReadStream(path) };
      where = `File "${record.filename}" (${data.file_id})`;
      break;
    }
    case 'path': {
      const path = await existingFile(localPath(data.path, deps, 'data file'), 'data file');
      source = path;
      where = path;
      break;
    }
  }
  const out: EvalExample[] = [];
  try {
    for await (const { line, example } of readExamples(source, { onInvalid: 'throw' })) {
      if (isPreferenceExample(example)) throw new EvaluationError('invalid_example', `${where} line ${line}: a DPO preference example; evaluation takes chat examples ({"messages": [...]}) that end with the expected assistant answer.`);
      const last = example.messages.at(-1);
      if (last?.role !== 'assistant' || typeof last.content !== 'string') {
        throw new EvaluationError('invalid_example', `${where} line ${line}: the last message must be the expected assistant answer, as text; it is ${last ? `a ${last.role} message` : 'missing'}.`);
      }
      out.push({ messages: example.messages as ChatMessage[], ...(example.tools ? { tools: example.tools } : {}) });
      if (maxExamples && out.length >= maxExamples) break;
    }
  } catch (e) {
    if (e instanceof InvalidExampleError || (DatasetError.isInstance(e) && !(e instanceof EvaluationError))) throw new EvaluationError((e as DatasetError).code, `${where}: ${(e as Error).message}`);
    throw e;
  }
  if (out.length === 0) throw new EvaluationError('no_examples', `${where} holds no examples to evaluate on.`);
  return out;
}

/**
 * Remote models through OpenAI's API (or a compatible server at `baseURL`), with the key from the
 * vault (OPENAI_API_KEY) or the environment; a model a remote job trained is asked where it was trained.
 */
export function openAIRemoteChat(
  keys: { getSecret: VaultKeyLookup; redactor: Pick<Store['redactor'], 'add'> },
  options: { baseURL?: string; jobBaseURL?: (jobId: string) => Promise<string | undefined> } = {},
): NonNullable<EvaluationDeps['remoteChat']> {
  return async (_model, record) => {
    const baseURL = options.baseURL ?? (record?.job_id && options.jobBaseURL ? await options.jobBaseURL(record.job_id) : undefined);
    const apiKey = await findOpenAIKey({ getSecret: keys.getSecret, baseURL });
    keys.redactor.add(apiKey);
    return new OpenAIChatProvider({ apiKey, ...(baseURL ? { baseURL } : {}) });
  };
}
