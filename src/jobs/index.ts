export { JobQueue, FINISHED_STATUSES, workerIdentity, countLines, type JobFinished, type CreateJobInput, type ListJobsOptions, type NewEvent, type RecoveryReport } from './queue.ts';
export { JobWorker, type WorkerOptions } from './job-worker.ts';
export { ModelRegistry, fineTunedModelName, isInside, toModelRecord, type ModelRecord, type ModelFiles, type RegisterModelInput } from './model-registry.ts';
export { toFineTuningJob, toJobEvent, toCheckpoint, parseHyperparameters, DEFAULT_JOB_SEED } from './render.ts';
export * from './errors.ts';
