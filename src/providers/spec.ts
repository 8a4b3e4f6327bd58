import { NodeAIError, type HttpStatus } from '../nodeai-error.ts';
import type { Checkpoint, FineTuningJob, Hyperparameters, JobEvent } from '../trainer/fine-tuning-job.ts';

// The provider contract. Job objects use OpenAI's fine-tuning shapes, so a remote platform is a
// thin adapter and the local trainer (through the job queue) is a peer behind the same interface.

// The job object's types are the trainer's (the lowest layer that writes one), shared with the canvas.
export type { Auto, Checkpoint, FineTuningJob, Hyperparameters, JobEvent, JobMetrics, JobStatus } from '../trainer/fine-tuning-job.ts';

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
