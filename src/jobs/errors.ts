import type { DatasetReport } from '../datasets/index.ts';
import { NodeAIError, statusOf, type HttpStatus } from '../nodeai-error.ts';

// A finished job that cannot be cancelled is 400, as OpenAI answers, not 409: OpenAI's SDKs retry 409s.
const STATUS: Record<string, HttpStatus> = {
  job_not_found: 404,
  model_not_found: 404,
  base_model_not_found: 404,
  job_state: 400,
  job_cancelled: 400,
  invalid_request: 400,
  invalid_file_id: 400,
  invalid_model_name: 400,
  model_name_taken: 409,
};

/** Base of every job-layer failure; `code` is stable across releases. */
export class JobError extends NodeAIError {
  constructor(code: string, message: string, options?: { cause?: unknown; status?: HttpStatus; param?: string | null }) {
    super(code, message, { status: options?.status ?? statusOf(code, STATUS), param: options?.param ?? null, cause: options?.cause });
    this.name = 'JobError';
  }
}

export class JobNotFoundError extends JobError {
  constructor(readonly jobId: string) {
    super('job_not_found', `No fine-tuning job with ID ${JSON.stringify(String(jobId).slice(0, 80))}. Run "nodeai jobs list" to see the jobs.`);
    this.name = 'JobNotFoundError';
  }
}

export class JobStateError extends JobError {
  constructor(message: string) {
    super('job_state', message);
    this.name = 'JobStateError';
  }
}

export class ModelNotFoundError extends JobError {
  constructor(readonly model: string) {
    super('model_not_found', `No fine-tuned model named ${JSON.stringify(String(model).slice(0, 120))}. Run "nodeai models list" to see the models.`);
    this.name = 'ModelNotFoundError';
  }
}

/** A fine-tuning request the service refuses (400 unless said); `param` names the FineTuneRequest field at fault. */
export class FineTuneError extends JobError {
  constructor(code: string, message: string, options: { param?: string | null; status?: HttpStatus; cause?: unknown } = {}) {
    super(code, message, { ...options, status: options.status ?? 400 });
    this.name = 'FineTuneError';
  }
}

/** The training data failed its check: `report` holds every issue (the CLI prints it whole). */
export class FineTuneDataError extends FineTuneError {
  constructor(
    code: string,
    message: string,
    readonly report?: DatasetReport,
  ) {
    super(code, message, { param: 'data' });
    this.name = 'FineTuneDataError';
  }
}

/** A write by a holder whose claim on the job is no longer the newest: it lost the job. */
export class LeaseLostError extends JobError {
  constructor(
    readonly jobId: string,
    readonly token: number,
  ) {
    super('lease_lost', `Job ${jobId} was taken over by another process (this holder's claim ${token} is no longer the newest); its writes are refused and its trainer stopped.`);
    this.name = 'LeaseLostError';
  }
}
