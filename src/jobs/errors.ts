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
