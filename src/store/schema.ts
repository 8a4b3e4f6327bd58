import type { Generated, Insertable, Selectable, Updateable } from 'kysely';
import type { JobStatus } from '../providers/spec.ts';

// Conventions shared by every table, on SQLite and Postgres alike:
// - times are epoch milliseconds in `bigint` columns (no time-zone or driver date surprises);
//   the OpenAI-shaped API divides by 1000 where it shows `created_at` in seconds;
// - JSON values live in `text` columns (`*_json`), written with JSON.stringify by the layer that
//   owns the table, so both dialects store and return exactly the same bytes;
// - IDs are text with a kind prefix (see ids.ts).

/** OpenAI's job statuses, plus `paused` for a job the user paused and can resume. */
export type StoredJobStatus = JobStatus | 'paused';
export const JOB_STATUSES: readonly StoredJobStatus[] = [
  'validating_files',
  'queued',
  'running',
  'paused',
  'succeeded',
  'failed',
  'cancelled',
];

export type RunStatus = 'queued' | 'running' | 'waiting' | 'succeeded' | 'failed' | 'cancelled';
export type NodeResultStatus = 'pending' | 'running' | 'waiting' | 'succeeded' | 'failed' | 'cancelled' | 'skipped';

export interface FilesTable {
  id: string;
  filename: string;
  purpose: string;
  bytes: number;
  sha256: string;
  created_at: number;
}

export interface SecretsTable {
  name: string;
  /** base64 of the AES-256-GCM ciphertext */
  ciphertext: string;
  /** base64 of the 12-byte random IV */
  iv: string;
  /** base64 of the 16-byte GCM authentication tag */
  auth_tag: string;
  key_version: number;
  created_at: number;
  updated_at: number;
  /** JSON array of hosts besides its provider's own that the key may be sent to; null: none. */
  allowed_hosts_json: string | null;
}

export interface WorkflowsTable {
  id: string;
  name: string;
  definition_json: string;
  created_at: number;
  updated_at: number;
}

export interface RunsTable {
  id: string;
  workflow_id: string | null;
  workflow_name: string;
  /** The workflow as it was when the run started, so a resumed run executes the same graph. */
  workflow_json: string;
  status: RunStatus;
  /** Node whose wait holds the run (status `waiting`). */
  waiting_node_id: string | null;
  /** What the run waits on, e.g. `{"kind":"job","jobId":"ftjob-…"}`. */
  waiting_json: string | null;
  /** Indexed copy of the awaited job's ID, so "which runs wait on job X" is one lookup. */
  waiting_job_id: string | null;
  /** `{code, message, node_id?}` when failed or cancelled. */
  error_json: string | null;
  /** Engine instance that executes the run now, and when it last said it is alive. */
  owner: string | null;
  heartbeat_at: number | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
}

export interface NodeResultsTable {
  run_id: string;
  node_id: string;
  node_type: string;
  status: NodeResultStatus;
  /** Position in the run's topological order. */
  seq: number;
  outputs_json: string | null;
  error_json: string | null;
  /** Whatever the node asked to keep while it waits, handed back on resume. */
  wait_state_json: string | null;
  started_at: number | null;
  finished_at: number | null;
  duration_ms: number | null;
}

export interface JobsTable {
  id: string;
  provider: string;
  /** The job's ID at a remote provider, when the provider is not local. */
  provider_job_id: string | null;
  /** Method type: `supervised` or `dpo`. */
  method: Generated<string>;
  base_model: string;
  fine_tuned_model: string | null;
  status: StoredJobStatus;
  training_file: string;
  validation_file: string | null;
  /** `{n_epochs, batch_size, learning_rate_multiplier}` as requested (numbers or "auto"). */
  hyperparameters_json: string;
  suffix: string | null;
  seed: number | null;
  metadata_json: string | null;
  result_files_json: string | null;
  trained_tokens: number | null;
  /** OpenAI-shaped `{code, message, param}` when failed. */
  error_json: string | null;
  /** Queue: lower runs first; then oldest `run_after`. */
  priority: Generated<number>;
  run_after: number;
  attempts: Generated<number>;
  max_attempts: Generated<number>;
  /** Queue lease: the worker that holds the job, until when, and its last heartbeat. */
  locked_by: string | null;
  locked_until: number | null;
  heartbeat_at: number | null;
  /** Raised by every claim; a write carrying an older token comes from a holder that lost the job. */
  fencing_token: Generated<number>;
  cancel_requested_at: number | null;
  estimated_finish: number | null;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
}

export interface JobEventsTable {
  id: string;
  job_id: string;
  /** Per-job order (events can share a millisecond); unique with job_id. */
  seq: number;
  created_at: number;
  level: 'info' | 'warn' | 'error';
  type: 'message' | 'metrics';
  message: string;
  data_json: string | null;
}

export interface JobCheckpointsTable {
  id: string;
  job_id: string;
  step_number: number;
  fine_tuned_model_checkpoint: string;
  metrics_json: string | null;
  /** Local path of the checkpoint's files, when the trainer is local. */
  path: string | null;
  created_at: number;
}

export interface ModelsTable {
  /** The model name chat requests use, e.g. `ft:tiny-llama:support:…`. */
  id: string;
  /** Display name, user-renamable, unique. */
  name: string;
  base_model: string;
  provider: string;
  /** Unique: a job registers its model exactly once. Null after the job row is deleted. */
  job_id: string | null;
  training_examples: number | null;
  epochs: number | null;
  metrics_json: string | null;
  files_json: string | null;
  /** The automatic evaluation's report (EvaluationReport JSON), when the job ran one. */
  evaluation_json: string | null;
  /** `{models, summary, examples: count}` of that report, for listings (which never read the report). */
  evaluation_summary_json: string | null;
  /** The full model file's size when registered; null without one (an adapter-only or remote model), or for a row from before 0005 until its first listing. */
  model_bytes: number | null;
  path: string | null;
  usage_count: Generated<number>;
  last_used_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface Database {
  files: FilesTable;
  secrets: SecretsTable;
  workflows: WorkflowsTable;
  runs: RunsTable;
  node_results: NodeResultsTable;
  jobs: JobsTable;
  job_events: JobEventsTable;
  job_checkpoints: JobCheckpointsTable;
  models: ModelsTable;
}

export type FileRow = Selectable<FilesTable>;
export type SecretRow = Selectable<SecretsTable>;
export type WorkflowRow = Selectable<WorkflowsTable>;
export type RunRow = Selectable<RunsTable>;
export type NewRun = Insertable<RunsTable>;
export type RunUpdate = Updateable<RunsTable>;
export type NodeResultRow = Selectable<NodeResultsTable>;
export type JobRow = Selectable<JobsTable>;
export type NewJob = Insertable<JobsTable>;
export type JobUpdate = Updateable<JobsTable>;
export type JobEventRow = Selectable<JobEventsTable>;
export type JobCheckpointRow = Selectable<JobCheckpointsTable>;
export type ModelRow = Selectable<ModelsTable>;
export type NewModel = Insertable<ModelsTable>;
