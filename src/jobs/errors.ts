/** Base of every job-layer failure; `code` is stable across releases. */
export class JobError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
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

/** A fine-tuning request the service refuses; `param` names the FineTuneRequest field at fault. */
export class FineTuneError extends JobError {
  readonly param: string | null;
  readonly status: number;
  constructor(code: string, message: string, options: { param?: string | null; status?: number; cause?: unknown } = {}) {
    super(code, message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'FineTuneError';
    this.param = options.param ?? null;
    this.status = options.status ?? 400;
  }
}

/** The training data failed its check: `report` holds every issue (the CLI prints it whole). */
export class FineTuneDataError extends FineTuneError {
  constructor(
    code: string,
    message: string,
    readonly report?: import('../datasets/index.ts').DatasetReport,
  ) {
    super(code, message, { param: 'data' });
    this.name = 'FineTuneDataError';
  }
}
