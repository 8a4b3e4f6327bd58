import { UnknownModelError } from './errors.ts';
import type { EncodingName } from './tokenizer.ts';

export type ProviderId = 'local' | 'openai';
export type TrainingMethod = 'supervised' | 'dpo';

export interface ModelInfo {
  id: string;
  provider: ProviderId;
  /** Other names that resolve to this entry (OpenAI's undated aliases). */
  aliases: string[];
  /** Longest training example in tokens; longer ones are truncated. */
  tokenLimit: number;
  /** USD per 1M training tokens (billed tokens × epochs). */
  trainingPricePer1M: number;
  /** How to count its tokens: an OpenAI encoding, or 'bytes' for the byte-level local model. */
  tokenizer: EncodingName | 'bytes';
  methods: TrainingMethod[];
  /** ISO dates. From `newJobsEnd` the provider refuses new fine-tuning jobs on this model. */
  newJobsEnd?: string;
  /** From `shutdown` the model and every fine-tune built on it stop serving. */
  shutdown?: string;
  /** Where the figures come from. */
  source: string;
}

// OpenAI figures: training prices from https://openai.com/api/pricing/ (fine-tuning table; the
// same figures are quoted in tokonomics.ca/blog/llm-fine-tuning-costs-guide and
// getapipulse.com/blog-fine-tuning-costs-2026 for gpt-4o $25, gpt-4o-mini $3, gpt-3.5-turbo $8);
// per-example token limits from https://platform.openai.com/docs/guides/fine-tuning#token-limits
// (gpt-4o / gpt-4o-mini 65,536 — also Azure's fine-tune-models table, MicrosoftDocs/azure-ai-docs
// PR #544; gpt-4.1 / gpt-4.1-mini 65,536 as in tensorzero PR #2029; gpt-3.5-turbo-0125 16,385 as
// in the OpenAI cookbook's data-prep notebook). Shutdown dates: OpenAI deprecations page
// (https://platform.openai.com/docs/deprecations) — new fine-tuning jobs refused for everyone from 2027-01-06; gpt-4o,
// gpt-4o-mini, gpt-4.1 and gpt-4.1-mini snapshots shut down 2027-01-14.
const OPENAI_NEW_JOBS_END = '2027-01-06';
const OPENAI_SNAPSHOT_SHUTDOWN = '2027-01-14';
const PRICING = 'https://openai.com/api/pricing/ ; https://platform.openai.com/docs/guides/fine-tuning#token-limits ; https://platform.openai.com/docs/deprecations';

const builtIn: ModelInfo[] = [
  {
    id: 'nodeai-tiny',
    provider: 'local',
    aliases: ['tiny'],
    // The built-in byte-level Llama-family model: its context is 256 tokens, so that is the
    // longest example it can train on. Training runs on this machine: no price.
    tokenLimit: 256,
    trainingPricePer1M: 0,
    tokenizer: 'bytes',
    methods: ['supervised'],
    source: 'NodeAI built-in model (src/trainer)',
  },
  { id: 'gpt-4o-mini-2024-07-18', provider: 'openai', aliases: ['gpt-4o-mini'], tokenLimit: 65_536, trainingPricePer1M: 3, tokenizer: 'o200k_base', methods: ['supervised', 'dpo'], newJobsEnd: OPENAI_NEW_JOBS_END, shutdown: OPENAI_SNAPSHOT_SHUTDOWN, source: PRICING },
  { id: 'gpt-4o-2024-08-06', provider: 'openai', aliases: ['gpt-4o'], tokenLimit: 65_536, trainingPricePer1M: 25, tokenizer: 'o200k_base', methods: ['supervised', 'dpo'], newJobsEnd: OPENAI_NEW_JOBS_END, shutdown: OPENAI_SNAPSHOT_SHUTDOWN, source: PRICING },
  { id: 'gpt-4.1-2025-04-14', provider: 'openai', aliases: ['gpt-4.1'], tokenLimit: 65_536, trainingPricePer1M: 25, tokenizer: 'o200k_base', methods: ['supervised', 'dpo'], newJobsEnd: OPENAI_NEW_JOBS_END, shutdown: OPENAI_SNAPSHOT_SHUTDOWN, source: PRICING },
  { id: 'gpt-4.1-mini-2025-04-14', provider: 'openai', aliases: ['gpt-4.1-mini'], tokenLimit: 65_536, trainingPricePer1M: 5, tokenizer: 'o200k_base', methods: ['supervised', 'dpo'], newJobsEnd: OPENAI_NEW_JOBS_END, shutdown: OPENAI_SNAPSHOT_SHUTDOWN, source: PRICING },
  { id: 'gpt-4.1-nano-2025-04-14', provider: 'openai', aliases: ['gpt-4.1-nano'], tokenLimit: 65_536, trainingPricePer1M: 1.5, tokenizer: 'o200k_base', methods: ['supervised', 'dpo'], newJobsEnd: OPENAI_NEW_JOBS_END, source: PRICING },
  { id: 'gpt-3.5-turbo-0125', provider: 'openai', aliases: ['gpt-3.5-turbo'], tokenLimit: 16_385, trainingPricePer1M: 8, tokenizer: 'cl100k_base', methods: ['supervised'], newJobsEnd: OPENAI_NEW_JOBS_END, source: PRICING },
];

/** The model `data check` assumes when none is named: the embedded local default. */
export const DEFAULT_MODEL = 'nodeai-tiny';

const registry = new Map<string, ModelInfo>();
const byAlias = new Map<string, ModelInfo>();

/** Adds or replaces a catalogue entry (the trainer registers local models it can build). */
export function registerModel(info: ModelInfo): void {
  registry.set(info.id, info);
  for (const a of info.aliases) byAlias.set(a, info);
}
for (const m of builtIn) registerModel(m);

export function listModels(): ModelInfo[] {
  return [...registry.values()];
}

/**
 * Finds a model by id, alias, or OpenAI fine-tune name (`ft:gpt-4o-mini-2024-07-18:org::id`,
 * which trains on as its base model does).
 */
export function findModel(id: string): ModelInfo | undefined {
  const direct = registry.get(id) ?? byAlias.get(id);
  if (direct) return direct;
  if (id.startsWith('ft:')) return findModel(id.split(':')[1] ?? '');
  return undefined;
}

export function getModel(id: string): ModelInfo {
  const m = findModel(id);
  if (!m) throw new UnknownModelError(id, listModels().map((x) => x.id));
  return m;
}

export interface ModelStatus {
  /** New jobs are refused. */
  closed: boolean;
  /** The model no longer serves. */
  shutDown: boolean;
}

export function modelStatus(m: ModelInfo, now: Date = new Date()): ModelStatus {
  const day = now.toISOString().slice(0, 10);
  return { closed: !!m.newJobsEnd && day >= m.newJobsEnd, shutDown: !!m.shutdown && day >= m.shutdown };
}
