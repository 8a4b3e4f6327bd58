// The fine-tuning job object: one type for every place that holds one — the trainer's job.json,
// the queue's rows as /v1 and /api/v1 send them, the providers, and the canvas (web/ imports this
// file). It is OpenAI's `fine_tuning.job` as the official SDK types it, with what NodeAI adds:
// the `paused` status, the local trainer's own hyperparameters and the job's suffix.
// It lives in the trainer, the lowest layer that writes a job object, and holds types only (no
// runtime imports), so the canvas's bundle and its DOM-only type check can import it.
import type { FineTuningJobCheckpoint } from 'openai/resources/fine-tuning/jobs/checkpoints';
import type { FineTuningJob as OpenAIFineTuningJob, FineTuningJobEvent } from 'openai/resources/fine-tuning/jobs/jobs';

/** OpenAI's statuses, and `paused`: OpenAI's pause endpoint answers with it, though the SDK's type lacks it. */
export type JobStatus = OpenAIFineTuningJob['status'] | 'paused';
export type Auto<T> = T | 'auto';

/** OpenAI's three, always present (absent ones read 'auto'), and NodeAI's own for the local trainer. */
export interface Hyperparameters extends OpenAIFineTuningJob.Hyperparameters {
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

export interface FineTuningJob extends Omit<OpenAIFineTuningJob, 'status'> {
  status: JobStatus;
  hyperparameters: Hyperparameters;
  /** NodeAI trains supervised and DPO (no reinforcement); the method's hyperparameters are the job's. */
  method: { type: 'supervised' | 'dpo'; supervised?: { hyperparameters: Hyperparameters } };
  /** The suffix the job was created with (OpenAI's create parameter; its job object names it only in the model). */
  suffix?: string | null;
}

/** What a `metrics` event's `data` holds. */
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

export interface JobEvent extends FineTuningJobEvent {
  type: 'message' | 'metrics';
  data?: JobMetrics | Record<string, unknown>;
}

export type Checkpoint = FineTuningJobCheckpoint;
