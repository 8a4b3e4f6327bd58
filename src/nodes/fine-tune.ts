// The Fine-Tune node: its settings are a form (the zod schema below); run() turns them into a
// FineTuneRequest and hands it to the fine-tune service with the provider the node names.
import { z } from 'zod';
import { DEFAULT_VALIDATION_SPLIT, NO_TRAINING_DATA } from '../datasets/index.ts';
import { fineTune, type FineTuneOutcome } from '../jobs/fine-tune-service.ts';
import { JobError } from '../jobs/errors.ts';
import { LocalFineTuneProvider, TrackedRemoteProvider } from '../jobs/queue-providers.ts';
import { AnthropicFineTuningUnsupportedError } from '../providers/anthropic.ts';
import {
  BATCH_SIZE,
  EARLY_STOPPING_PATIENCE,
  EPOCHS,
  LEARNING_RATE,
  LEARNING_RATE_MULTIPLIER,
  LORA_RANK,
  SEED,
  VALIDATION_SPLIT,
  FineTuneRequest,
  type FineTuneData,
} from '../providers/fine-tune-request.ts';
import { findOpenAIKey, OPENAI_KEY_SECRET } from '../providers/openai-key.ts';
import { OpenAIFineTuneProvider, resolveEndpoint } from '../providers/openai.ts';
import { isValidFileId } from '../store/index.ts';
import { defineNode, type NodeContext } from '../engine/index.ts';
import { TRAINING_DEVICES } from '../trainer/training-device.ts';
import { fetchModelFile, nodeError, servicesOf } from './services.ts';

// A blank form field arrives as '' (or null from JSON); both mean "auto", as does the word.
const autoNumber = (schema: z.ZodNumber) => z.preprocess((v) => (v === '' || v === null || v === 'auto' ? undefined : v), schema.optional());

const config = z.object({
  provider: z.enum(['local', 'openai', 'anthropic']).default('local').describe('Who trains: local (this machine, the default), openai, or anthropic (which offers no fine-tuning API).'),
  base_model: z
    .string()
    .trim()
    .min(1)
    .default('nodeai-tiny')
    .describe("The model to fine-tune: nodeai-tiny (built in); hf:OWNER/REPO:QUANT or ollama:NAME[:TAG] (Llama 3, Qwen2.5, Qwen3, Gemma 3, SmolLM2…; downloaded on first use); a GGUF file's path (local provider, relative to the workflow's folder); a fine-tuned model's name; or the provider's model ID."),
  training_file_id: z.string().trim().optional().describe('An uploaded training file ("nodeai files upload FILE"), used when nothing is connected to the data input.'),
  validation_split: VALIDATION_SPLIT.default(DEFAULT_VALIDATION_SPLIT).describe('Share of the examples held out to measure validation loss, 0..0.99.'),
  epochs: z.union([EPOCHS, z.literal('auto')]).default(3).describe('Passes over the training data, 1..50, or auto.'),
  batch_size: autoNumber(BATCH_SIZE).describe('Examples per step; empty = auto.'),
  learning_rate: autoNumber(LEARNING_RATE).describe('Local provider: the peak learning rate, e.g. 0.0003; empty = auto (by the model\'s size and LoRA).'),
  learning_rate_multiplier: autoNumber(LEARNING_RATE_MULTIPLIER).describe("OpenAI: a multiple of the base model's default learning rate (OpenAI's learning_rate_multiplier); empty = auto."),
  early_stopping_patience: autoNumber(EARLY_STOPPING_PATIENCE).describe(
    "Local provider: stop when the validation loss has not improved for this many epochs, and keep the best epoch's model (needs validation_split > 0); empty = train every epoch.",
  ),
  lora_rank: autoNumber(LORA_RANK).describe('Local provider: rank of a LoRA adapter trained instead of every weight; 0 = full fine-tuning; empty = auto (8 for a GGUF base, full for nodeai-tiny).'),
  model_name: z
    .string()
    .trim()
    .max(40)
    .regex(/^[A-Za-z0-9_ -]*$/, 'use letters, digits, spaces, "_" or "-"')
    .optional()
    .describe('A suffix for the new model\'s name: ft:<base>:<model_name>:<id>.'),
  seed: SEED.optional().describe('Makes the split and the training reproducible.'),
  device: z
    .enum(TRAINING_DEVICES)
    .default('auto')
    .describe('Local provider: where to train. auto = a usable CUDA GPU, else the CPU (the job\'s events say which and why); cpu; cuda = refused, naming what is missing, when no CUDA GPU can be used.'),
  evaluate: z
    .boolean()
    .optional()
    .describe(
      'When training ends, evaluate the base and the fine-tuned model side by side on the validation split (at most 200 examples): loss, perplexity, exact and contains match; the summary joins the outputs and the model registry. Empty = on for the local provider with a validation split, off for remote providers (it costs money there: use an Evaluate node).',
    ),
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
    { name: 'evaluation', description: 'base vs fine-tuned on the validation split: {models, summary, examples} (when "evaluate" ran)' },
  ],
  config,
  secretConfig: ['api_key'],
  async run(ctx) {
    const { config, store } = ctx;
    if (config.provider === 'anthropic') throw new AnthropicFineTuningUnsupportedError();
    const services = servicesOf(ctx);
    const remote = config.provider === 'openai';
    let apiKey: string | undefined;
    if (remote) {
      apiKey = await findOpenAIKey({ configKey: config.api_key, getSecret: ctx.secrets.lookupKey, baseURL: config.base_url });
      store.redactor.add(apiKey);
      resolveEndpoint(config.base_url);
    }
    const request = toRequest(config, trainingData(ctx.inputs.data, config), ctx);
    const provider = remote
      ? new TrackedRemoteProvider(services.jobs, services.remoteJobs, new OpenAIFineTuneProvider({ ...services.openai, apiKey: apiKey!, baseURL: config.base_url }), {
          baseURL: config.base_url || null,
          signal: ctx.signal,
          ...(config.api_key?.trim() ? { keepKey: apiKey! } : {}),
        })
      : new LocalFineTuneProvider(services.jobs);
    if (config.early_stopping_patience && remote) ctx.logger.warn('early_stopping_patience applies to the local trainer only; OpenAI trains every epoch.');
    let outcome: FineTuneOutcome;
    try {
      outcome = await fineTune(request, {
        provider,
        files: store.files,
        models: services.models,
        scratchDir: store.dataDir,
        ...(services.workflowDir ? { workflowDir: services.workflowDir } : {}),
        modelFile: (ref) => fetchModelFile(ctx, services, ref),
        dataName: 'The "data" input (line N = example N)',
        noDataFix: NO_DATA_FIX,
        signal: ctx.signal,
        warn: (message) => ctx.logger.warn(message),
      });
    } catch (err) {
      if (remote && err instanceof JobError && err.code === 'auth') {
        throw nodeError(err.code, `${err.message} The key came from ${config.api_key?.trim() ? 'the node\'s "api_key" setting' : `the vault or environment (${OPENAI_KEY_SECRET})`}.`);
      }
      throw err;
    }
    const { job } = outcome;
    const outputs = {
      job_id: job.id,
      status: job.status,
      provider: config.provider,
      ...(remote && config.base_url ? { base_url: config.base_url } : {}),
      base_model: outcome.base_model,
      ...(outcome.lora_rank ? { lora_rank: outcome.lora_rank } : {}),
      training_file_id: outcome.training_file_id,
      validation_file_id: outcome.validation_file_id,
      training_examples: outcome.training_examples,
      validation_examples: outcome.validation_examples,
      epochs: outcome.epochs ?? 3,
      estimated_tokens: outcome.estimated_tokens,
      estimated_cost: outcome.estimated_cost,
    };
    if (job.status === 'failed') throw nodeError(job.error?.code ?? 'job_failed', `Job ${job.id} could not start: ${job.error?.message ?? 'no reason given'}`);
    ctx.logger.info(
      `Created job ${job.id}: ${outputs.training_examples} training / ${outputs.validation_examples} validation examples, ${outputs.epochs} epochs, ~${outputs.estimated_tokens} tokens, $${outputs.estimated_cost}`,
    );
    ctx.emit({ message: `job ${job.id} ${job.status}`, progress: 0, data: { job_id: job.id } });
    if (!config.wait_for_completion) return { ...outputs, data: outputs };
    return { wait: { kind: 'job' as const, jobId: job.id, state: outputs } };
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
    // The evaluation after training (base vs fine-tuned on the validation split) is in the registry.
    const registered = await servicesOf(ctx).models.findByJob(job.jobId);
    const evaluation = registered?.evaluation ? { evaluation: registered.evaluation } : {};
    const outputs = { ...state, status: 'succeeded', fine_tuned_model: out.fine_tuned_model, ...metrics, metrics, ...evaluation };
    return { ...outputs, data: outputs };
  },
});

/** The node's form as a FineTuneRequest: the one place its field names meet the request's. */
function toRequest(config: FineTuneConfig, data: FineTuneData, ctx: Pick<NodeContext, 'runId' | 'node'>): FineTuneRequest {
  const parsed = FineTuneRequest.safeParse({
    provider: config.provider === 'openai' ? 'openai' : 'local',
    base_model: config.base_model,
    data,
    validation_split: config.validation_split,
    hyperparameters: {
      n_epochs: config.epochs,
      batch_size: config.batch_size ?? 'auto',
      learning_rate: config.learning_rate ?? 'auto',
      learning_rate_multiplier: config.learning_rate_multiplier ?? 'auto',
    },
    method: { type: 'supervised', ...(config.provider === 'local' && config.lora_rank !== undefined ? { lora_rank: config.lora_rank } : {}) },
    ...(config.seed !== undefined ? { seed: config.seed } : {}),
    ...(config.model_name ? { suffix: config.model_name } : {}),
    ...(config.early_stopping_patience && config.provider === 'local' ? { early_stopping_patience: config.early_stopping_patience } : {}),
    ...(config.evaluate !== undefined ? { evaluate: config.evaluate } : {}),
    ...(config.device !== 'auto' && config.provider === 'local' ? { device: { type: config.device } } : {}),
    metadata: { run_id: ctx.runId, node_id: ctx.node.id },
  });
  if (parsed.success) return parsed.data;
  // The form's own ranges are checked before the run; what is left is a setting the provider does not take.
  const issues = parsed.error.issues.map((i) => `"${String(i.path.at(-1))}": ${i.message}`);
  throw nodeError('invalid_config', `The Fine-Tune settings do not fit provider "${config.provider}": ${issues.join('; ')}.`);
}

/** The examples on the "data" input, else the uploaded training_file_id. */
function trainingData(data: unknown, config: FineTuneConfig): FineTuneData {
  if (data !== undefined && data !== null) {
    if (!Array.isArray(data)) {
      throw nodeError('invalid_input', `The "data" input must be a list of training examples, got ${typeof data}. Connect a File Loader or Data Loader to it.`);
    }
    if (data.length === 0) throw nodeError('no_training_data', `${NO_TRAINING_DATA}: the "data" input is an empty list. ${NO_DATA_FIX}`);
    return { kind: 'examples', examples: data };
  }
  if (config.training_file_id) {
    const id = config.training_file_id;
    if (!isValidFileId(id)) {
      throw nodeError('invalid_file_id', `"training_file_id" ${JSON.stringify(String(id).slice(0, 80))} is not a file ID: IDs look like "file-" followed by 24 letters or digits. Run "nodeai files list".`);
    }
    return { kind: 'file', file_id: id };
  }
  throw nodeError('no_training_data', `${NO_TRAINING_DATA}. ${NO_DATA_FIX}`);
}
