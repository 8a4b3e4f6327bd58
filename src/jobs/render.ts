// Rows → OpenAI's wire shapes. Stored times are milliseconds; OpenAI shows seconds.
import { loraRankOf } from '../datasets/auto-hyperparameters.ts';
import type { JobCheckpointRow, JobEventRow, JobRow } from '../store/index.ts';
import type { Checkpoint, FineTuningJob, Hyperparameters, JobEvent, JobStatus } from '../providers/spec.ts';

export const DEFAULT_JOB_SEED = 42;
export const LOCAL_ORGANIZATION = 'org-local';

const seconds = (ms: number | null) => (ms === null ? null : Math.floor(Number(ms) / 1000));

export function parseHyperparameters(json: string): Hyperparameters {
  const h = JSON.parse(json) as Partial<Hyperparameters>;
  return {
    n_epochs: h.n_epochs ?? 'auto',
    batch_size: h.batch_size ?? 'auto',
    learning_rate_multiplier: h.learning_rate_multiplier ?? 'auto',
    ...(typeof h.learning_rate === 'number' ? { learning_rate: h.learning_rate } : {}),
    ...(typeof h.lora_rank === 'number' && loraRankOf(h.lora_rank) !== undefined ? { lora_rank: h.lora_rank, ...(typeof h.lora_alpha === 'number' ? { lora_alpha: h.lora_alpha } : {}) } : {}),
    ...(typeof h.early_stopping_patience === 'number' ? { early_stopping_patience: h.early_stopping_patience } : {}),
  };
}

export function toFineTuningJob(row: JobRow): FineTuningJob {
  const hyperparameters = parseHyperparameters(row.hyperparameters_json);
  // OpenAI's API reports a paused job as `paused` (its pause endpoint returns it so).
  const status: JobStatus = row.status;
  const error = row.error_json ? (JSON.parse(row.error_json) as { code: string; message: string; param?: string | null }) : null;
  return {
    id: row.id,
    object: 'fine_tuning.job',
    created_at: seconds(row.created_at)!,
    finished_at: seconds(row.finished_at),
    model: row.base_model,
    fine_tuned_model: row.fine_tuned_model,
    organization_id: LOCAL_ORGANIZATION,
    status,
    training_file: row.training_file,
    validation_file: row.validation_file,
    trained_tokens: row.trained_tokens === null ? null : Number(row.trained_tokens),
    hyperparameters,
    method: { type: row.method === 'dpo' ? 'dpo' : 'supervised', supervised: { hyperparameters } },
    result_files: row.result_files_json ? (JSON.parse(row.result_files_json) as string[]) : [],
    error: error ? { code: error.code, message: error.message, param: error.param ?? null } : null,
    seed: row.seed === null ? DEFAULT_JOB_SEED : Number(row.seed),
    suffix: row.suffix,
    metadata: row.metadata_json ? (JSON.parse(row.metadata_json) as Record<string, string>) : null,
    estimated_finish: seconds(row.estimated_finish),
  };
}

export function toJobEvent(row: JobEventRow): JobEvent {
  return {
    id: row.id,
    object: 'fine_tuning.job.event',
    created_at: seconds(row.created_at)!,
    level: row.level,
    message: row.message,
    type: row.type,
    ...(row.data_json ? { data: JSON.parse(row.data_json) as Record<string, unknown> } : {}),
  };
}

export function toCheckpoint(row: JobCheckpointRow): Checkpoint {
  return {
    id: row.id,
    object: 'fine_tuning.job.checkpoint',
    created_at: seconds(row.created_at)!,
    fine_tuned_model_checkpoint: row.fine_tuned_model_checkpoint,
    fine_tuning_job_id: row.job_id,
    step_number: Number(row.step_number),
    metrics: row.metrics_json ? (JSON.parse(row.metrics_json) as Checkpoint['metrics']) : {},
  };
}
