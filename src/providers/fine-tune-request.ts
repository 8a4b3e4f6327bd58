// One fine-tuning request, whoever asks: the Fine-Tune node, `nodeai finetune`, `/api/v1/fine_tuning/jobs`
// and OpenAI's `/v1/fine_tuning/jobs` each turn their input into a `FineTuneRequest` at their edge
// (parseFineTuneRequest, or fromOpenAIJobBody for OpenAI's body), and everything behind them — the
// fine-tune service, the providers, the job queue — receives this parsed type and checks nothing again.
//
// Two learning-rate names, one meaning each: `learning_rate` is the local trainer's absolute peak
// rate; `learning_rate_multiplier` is OpenAI's multiple of a base model's default rate (which the
// local trainer also honours, as the OpenAI-shaped /v1 promises).
import { z } from 'zod';
import { FULL_FINE_TUNING, loraRankOf } from '../datasets/auto-hyperparameters.ts';
import { MAX_EPOCHS } from '../datasets/cost.ts';
import { DEFAULT_VALIDATION_SPLIT, MAX_VALIDATION_SPLIT } from '../datasets/split.ts';
import { TRAINING_DEVICES, type TrainingDevice } from '../trainer/training-device.ts';

export const FINE_TUNE_PROVIDERS = ['local', 'openai'] as const;
export type FineTuneProviderId = (typeof FINE_TUNE_PROVIDERS)[number];

const auto = <T extends z.ZodType>(schema: T) => z.union([z.literal('auto'), schema]);

export const EPOCHS = z.number().int().min(1).max(MAX_EPOCHS);
export const BATCH_SIZE = z.number().int().min(1).max(256);
export const LEARNING_RATE = z.number().positive().max(1);
export const LEARNING_RATE_MULTIPLIER = z.number().positive().max(100);
/** 0 = full fine-tuning (FULL_FINE_TUNING); absent = the base model's automatic choice. */
export const LORA_RANK = z.number().int().min(FULL_FINE_TUNING).max(256);
export const LORA_ALPHA = z.number().positive().max(4096);
export const EARLY_STOPPING_PATIENCE = z.number().int().min(1).max(MAX_EPOCHS); // never more epochs to wait than a job can have
export const SEED = z.number().int().min(0).max(2 ** 31 - 1);
export const THREADS = z.number().int().min(1).max(1024);
/** Share of raw data held out for validation loss; the training set keeps at least 1 %. */
export const VALIDATION_SPLIT = z.number().min(0).max(MAX_VALIDATION_SPLIT);

const FileId = z.string().trim().min(1);

/** Where the examples come from. Raw data is checked, fitted to the base's context and split; `prepared` files are used as they are (OpenAI's API). */
export const FineTuneData = z.discriminatedUnion('kind', [
  /** Examples in memory (a File Loader's or Data Loader's output). */
  z.object({ kind: z.literal('examples'), examples: z.array(z.unknown()) }),
  /** An uploaded file of this store, in any format `nodeai data check` reads. */
  z.object({ kind: z.literal('file'), file_id: FileId }),
  /** A file on this machine (the CLI). */
  z.object({ kind: z.literal('path'), path: z.string().min(1) }),
  /** Uploaded, already converted chat JSONL: trained as given, no split. */
  z.object({ kind: z.literal('prepared'), training_file: FileId, validation_file: FileId.nullish() }),
]);
export type FineTuneData = z.output<typeof FineTuneData>;

export const FineTuneRequest = z
  .object({
    provider: z.enum(FINE_TUNE_PROVIDERS).default('local'),
    base_model: z.string().trim().min(1),
    data: FineTuneData,
    validation_split: VALIDATION_SPLIT.default(DEFAULT_VALIDATION_SPLIT),
    hyperparameters: z
      .object({
        n_epochs: auto(EPOCHS).default('auto'),
        batch_size: auto(BATCH_SIZE).default('auto'),
        learning_rate: auto(LEARNING_RATE).default('auto'),
        learning_rate_multiplier: auto(LEARNING_RATE_MULTIPLIER).default('auto'),
      })
      .prefault({}),
    method: z
      .object({
        type: z.enum(['supervised', 'dpo', 'reinforcement']).default('supervised'),
        lora_rank: LORA_RANK.optional(),
        lora_alpha: LORA_ALPHA.optional(),
      })
      .prefault({}),
    seed: SEED.optional(),
    suffix: z.string().trim().max(64).optional(),
    early_stopping_patience: EARLY_STOPPING_PATIENCE.optional(),
    /** Local trainer: where it computes ('auto': a usable CUDA GPU, else the CPU) and with how many CPU threads. */
    device: z.object({ type: z.enum(TRAINING_DEVICES).default('auto'), threads: THREADS.optional() }).prefault({}),
    metadata: z.record(z.string().max(64), z.string().max(512)).optional(),
    /**
     * Local trainer: evaluate the base and the fine-tuned model on the validation examples when
     * training ends (true: at most EVALUATE_MAX_EXAMPLES of them; a number: at most that many; false: off).
     * Default on when there are validation examples.
     */
    evaluate: z.union([z.boolean(), z.number().int().min(1).max(200)]).optional(),
    /** The CLI's `--out DIR`: the local job keeps its checkpoints, metrics and model there instead of the data dir. */
    output_dir: z.string().min(1).optional(),
  })
  .superRefine((r, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    const localOnly = (path: (string | number)[], set: boolean, what: string) => {
      if (set && r.provider !== 'local') issue(path, `${what} is for the local trainer; remove it, or use provider "local"`);
    };
    localOnly(['hyperparameters', 'learning_rate'], r.hyperparameters.learning_rate !== 'auto', 'learning_rate (an absolute rate)');
    localOnly(['method', 'lora_rank'], loraRankOf(r.method.lora_rank) !== undefined, 'lora_rank');
    localOnly(['method', 'lora_alpha'], r.method.lora_alpha !== undefined, 'lora_alpha');
    localOnly(['early_stopping_patience'], r.early_stopping_patience !== undefined, 'early_stopping_patience');
    localOnly(['output_dir'], r.output_dir !== undefined, 'output_dir');
    localOnly(['device', 'type'], r.device.type !== 'auto', 'device');
    if (r.evaluate !== undefined && r.evaluate !== false && r.provider !== 'local') {
      issue(['evaluate'], 'the evaluation after training runs for the local trainer only; for a remote model put an Evaluate node after the Fine-Tune node, or run "nodeai eval MODEL FILE"');
    }
    if (r.hyperparameters.learning_rate !== 'auto' && r.hyperparameters.learning_rate_multiplier !== 'auto') {
      issue(['hyperparameters', 'learning_rate'], 'give learning_rate (an absolute rate) or learning_rate_multiplier, not both');
    }
    if (r.method.lora_alpha !== undefined && loraRankOf(r.method.lora_rank) === undefined) issue(['method', 'lora_alpha'], 'lora_alpha needs a lora_rank above 0');
    for (const key of Object.keys(r.metadata ?? {})) {
      if (RESERVED_METADATA.has(key)) issue(['metadata', key], `"${key}" is a key NodeAI sets itself; use another name`);
    }
  });

/** What the edges give (defaults may be left out). */
export type FineTuneRequestInput = z.input<typeof FineTuneRequest>;
/** What everything behind the edges receives. */
export type FineTuneRequest = z.output<typeof FineTuneRequest>;

/** Job metadata keys NodeAI writes itself: a request may not set them (one of them names a folder the trainer writes to). */
export const OUTPUT_DIR_METADATA_KEY = 'nodeai_output_dir';
/** Where a remote job lives (never sent to the provider). */
export const BASE_URL_METADATA_KEY = 'provider_base_url';
/** The local job's evaluation after training: "off", or the most validation examples to evaluate on. */
export const EVALUATE_METADATA_KEY = 'nodeai_evaluate';
/** The most validation examples the evaluation after training uses (and its default). */
export const EVALUATE_MAX_EXAMPLES = 200;
/** The local job's device when the request forced one ("cpu" or "cuda"; absent: "auto"). */
export const DEVICE_METADATA_KEY = 'nodeai_device';
const RESERVED_METADATA = new Set([OUTPUT_DIR_METADATA_KEY, BASE_URL_METADATA_KEY, EVALUATE_METADATA_KEY, DEVICE_METADATA_KEY]);

/** The device a local job asked for, from its metadata ("auto" when it names none it knows). */
export function deviceOf(metadata: Record<string, unknown> | null | undefined): TrainingDevice {
  const value = metadata?.[DEVICE_METADATA_KEY];
  return TRAINING_DEVICES.find((d) => d === value) ?? 'auto';
}

/** The job metadata value for a request's `evaluate` setting (absent: the default, on). */
export function evaluateMetadata(evaluate: boolean | number | undefined): string | undefined {
  if (evaluate === undefined) return undefined;
  if (evaluate === false) return 'off';
  return String(evaluate === true ? EVALUATE_MAX_EXAMPLES : evaluate);
}

/** How many validation examples a local job evaluates on after training (0: none), from its metadata. */
export function evaluateExamplesOf(metadata: Record<string, unknown> | null | undefined): number {
  const value = metadata?.[EVALUATE_METADATA_KEY];
  if (value === undefined) return EVALUATE_MAX_EXAMPLES;
  const n = Number(value);
  return value === 'off' || !Number.isInteger(n) || n < 1 ? 0 : Math.min(n, EVALUATE_MAX_EXAMPLES);
}

/** Parses a request at an edge; a ZodError names the field at fault. */
export function parseFineTuneRequest(input: FineTuneRequestInput): FineTuneRequest {
  return FineTuneRequest.parse(input);
}

// Strict: a misspelt or unsupported hyperparameter is refused by name, not silently dropped.
const OpenAIHyperparameters = z.strictObject({
  n_epochs: auto(EPOCHS).optional(),
  batch_size: auto(BATCH_SIZE).optional(),
  learning_rate_multiplier: auto(LEARNING_RATE_MULTIPLIER).optional(),
  // NodeAI's own, for the local trainer (OpenAI's SDK passes unknown keys through).
  lora_rank: LORA_RANK.optional(),
  early_stopping_patience: EARLY_STOPPING_PATIENCE.optional(),
});

/** OpenAI's create-job body, as /v1 and /api/v1 accept it. */
export const OpenAIJobBody = z.object({
  model: z.string().min(1),
  training_file: z.string().min(1),
  validation_file: z.string().min(1).nullish(),
  hyperparameters: OpenAIHyperparameters.optional(),
  method: z
    .object({
      type: z.enum(['supervised', 'dpo', 'reinforcement']),
      supervised: z.object({ hyperparameters: OpenAIHyperparameters.optional() }).optional(),
      dpo: z.object({ hyperparameters: z.record(z.string(), z.unknown()).optional() }).optional(),
    })
    .optional(),
  // OpenAI's rule: up to 64 letters, digits, "-" and "_"; anything else is refused, not rewritten.
  suffix: z
    .string()
    .max(64)
    .regex(/^[A-Za-z0-9_-]*$/, 'use only letters, digits, "-" and "_" (OpenAI\'s suffix rule)')
    .nullish(),
  seed: SEED.nullish(),
  metadata: z.record(z.string().max(64), z.string().max(512)).nullish(),
});
export type OpenAIJobBody = z.output<typeof OpenAIJobBody>;

/**
 * The one mapping of OpenAI's create-job body onto a FineTuneRequest for this server's local
 * trainer. A method the local trainer lacks passes through, for the service to refuse by name.
 */
export function fromOpenAIJobBody(body: OpenAIJobBody): FineTuneRequestInput {
  const hp = body.method?.supervised?.hyperparameters ?? body.hyperparameters ?? {};
  return {
    provider: 'local',
    base_model: body.model,
    data: { kind: 'prepared', training_file: body.training_file, validation_file: body.validation_file ?? null },
    hyperparameters: {
      ...(hp.n_epochs !== undefined ? { n_epochs: hp.n_epochs } : {}),
      ...(hp.batch_size !== undefined ? { batch_size: hp.batch_size } : {}),
      ...(hp.learning_rate_multiplier !== undefined ? { learning_rate_multiplier: hp.learning_rate_multiplier } : {}),
    },
    method: { type: body.method?.type ?? 'supervised', ...(hp.lora_rank !== undefined ? { lora_rank: hp.lora_rank } : {}) },
    ...(body.seed != null ? { seed: body.seed } : {}),
    ...(body.suffix ? { suffix: body.suffix } : {}),
    ...(hp.early_stopping_patience !== undefined ? { early_stopping_patience: hp.early_stopping_patience } : {}),
    ...(body.metadata ? { metadata: body.metadata } : {}),
  };
}

const OPENAI_PARAMS: Record<string, string> = { base_model: 'model', 'data.training_file': 'training_file', 'data.validation_file': 'validation_file' };

/** A FineTuneRequest field's name in OpenAI's body, for errors answered to /v1 and /api/v1. */
export function toOpenAIParam(param: string | null): string | null {
  return param === null ? null : (OPENAI_PARAMS[param] ?? param);
}
