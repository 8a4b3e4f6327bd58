export { JobQueue, FINISHED_STATUSES, workerIdentity, countLines, claimOf, type JobFinished, type CreateJobInput, type ListJobsOptions, type NewEvent, type RecoveryReport, type LeaseWrite, type NewCheckpoint } from './queue.ts';
export { leasePolicy, DEFAULT_LEASE_GRACE_MS, type JobLease, type LeasePolicy } from './lease.ts';
export { LeaseReclaimer, DEFAULT_RECLAIM_EVERY_MS, type LeaseReclaimerOptions } from './lease-reclaimer.ts';
export { JobWorker, type WorkerOptions } from './job-worker.ts';
export { ModelRegistry, fineTunedModelName, isInside, registeredFilePath, type EvaluationOverview, type ModelRecord, type ModelFiles, type RegisterModelInput } from './model-registry.ts';
export { toFineTuningJob, toJobEvent, toCheckpoint, parseHyperparameters, DEFAULT_JOB_SEED } from './render.ts';
export * from './errors.ts';
