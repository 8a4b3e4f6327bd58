import { NodeAIError, type HttpStatus } from '../nodeai-error.ts';

// The provider contract. Job objects use OpenAI's fine-tuning shapes, so a remote platform is a
// thin adapter and the embedded local trainer is a peer behind the same interface.

export type JobStatus = 'validating_files' | 'queued' | 'running' | 'paused' | 'succeeded' | 'failed' | 'cancelled';
export type Auto<T> = T | 'auto';

export interface Hyperparameters {
  n_epochs: Auto<number>;
  batch_size: Auto<number>;
  learning_rate_multiplier: Auto<number>;
  /** NodeAI's own, for the local trainer (never sent to OpenAI): the absolute peak learning rate, instead of a multiplier. */
  learning_rate?: number;
  /** NodeAI's own, for the local trainer (never sent to OpenAI): rank of a LoRA adapter; absent trains every weight. */
  lora_rank?: number;
  /** NodeAI's own, for the local trainer: the LoRA scale's numerator; absent = lora_rank. */
  lora_alpha?: number;
  /** NodeAI's own, for the local trainer: stop after this many epochs without a better validation loss, keeping the best epoch's model. */
  early_stopping_patience?: number;
}

export interface FineTuningJob {
  id: string;
  object: 'fine_tuning.job';
  created_at: number;
  finished_at: number | null;
  model: string;
  fine_tuned_model: string | null;
  organization_id: string;
  status: JobStatus;
  training_file: string;
  validation_file: string | null;
  trained_tokens: number | null;
  hyperparameters: Hyperparameters;
  method: { type: 'supervised' | 'dpo'; supervised?: { hyperparameters: Hyperparameters } };
  result_files: string[];
  error: { code: string; message: string; param: string | null } | null;
  seed: number;
  suffix?: string | null;
  metadata?: Record<string, string> | null;
  estimated_finish?: number | null;
}

export interface JobEvent {
  id: string;
  object: 'fine_tuning.job.event';
  created_at: number;
  level: 'info' | 'warn' | 'error';
  message: string;
  type: 'message' | 'metrics';
  data?: JobMetrics | Record<string, unknown>;
}

export interface JobMetrics {
  step: number;
  total_steps?: number;
  epoch?: number;
  train_loss?: number;
  valid_loss?: number;
  train_mean_token_accuracy?: number;
  valid_mean_token_accuracy?: number;
  tokens_per_second?: number;
  eta_seconds?: number;
  learning_rate?: number;
}

export interface Checkpoint {
  id: string;
  object: 'fine_tuning.job.checkpoint';
  created_at: number;
  fine_tuned_model_checkpoint: string;
  fine_tuning_job_id: string;
  step_number: number;
  metrics: Partial<Record<'step' | 'train_loss' | 'valid_loss' | 'train_mean_token_accuracy' | 'valid_mean_token_accuracy', number>>;
}

export interface UploadedFile {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
}

export interface CreateJobRequest {
  model: string;
  training_file: string;
  validation_file?: string | null;
  hyperparameters?: Partial<Hyperparameters>;
  suffix?: string | null;
  seed?: number | null;
  metadata?: Record<string, string> | null;
}

export interface Page<T> {
  data: T[];
  has_more: boolean;
}

export interface FineTuneProvider {
  readonly id: string;
  uploadFile(file: { path: string; filename: string }): Promise<UploadedFile>;
  createJob(req: CreateJobRequest): Promise<FineTuningJob>;
  getJob(id: string): Promise<FineTuningJob>;
  listEvents(id: string, opts?: { after?: string; limit?: number }): Promise<Page<JobEvent>>;
  listCheckpoints(id: string, opts?: { after?: string; limit?: number }): Promise<Page<Checkpoint>>;
  cancelJob(id: string): Promise<FineTuningJob>;
}

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';
export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  seed?: number;
  signal?: AbortSignal;
}

export interface ChatResult {
  text: string;
  model: string;
  finish_reason: 'stop' | 'length';
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

export interface ChatProvider {
  readonly id: string;
  chat(req: ChatRequest): Promise<ChatResult>;
  stream(req: ChatRequest): AsyncIterable<string>;
}

// A provider's answer NodeAI passes on with its own status; anything else (its 5xx, no answer) is a bad gateway.
const PASSED_ON: readonly HttpStatus[] = [400, 401, 403, 404, 409, 429, 501, 502, 503];

/** A provider failure a user can act on; `code` is stable across releases. */
export class ProviderError extends NodeAIError {
  /** The provider's own HTTP status, when it answered. */
  readonly upstreamStatus: number | undefined;

  constructor(
    code: string,
    message: string,
    readonly provider: string,
    upstreamStatus?: number,
    options: { param?: string | null; cause?: unknown } = {},
  ) {
    super(code, message, { status: PASSED_ON.find((s) => s === upstreamStatus) ?? 502, param: options.param ?? null, cause: options.cause });
    this.name = 'ProviderError';
    this.upstreamStatus = upstreamStatus;
  }
}
