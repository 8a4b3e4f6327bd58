// Runs a local fine-tuning job in a child process (training-process.ts) and supervises it: relays its
// events, forwards cancellation, and turns any death of the child — a failed GGML_ASSERT, a
// segfault, the OOM killer — into a failed result with the signal and the child's last stderr
// lines. The parent never trains, so nothing the native code does can take it down.
//
// A job lives in its directory: running the same spec again on a directory that holds a
// checkpoint resumes from it (bit-identical to an uninterrupted run with the same thread count);
// on a directory whose job already succeeded it returns that result without training again.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { StepClock, stallPolicy, type StallPolicy } from './progress-watchdog.ts';
import type { LocalFineTuneEvent, LocalFineTuneResult, LocalFineTuneSpec } from './supervised-job-types.ts';
import {
  appendEvent,
  holderToken,
  identityDiff,
  jobPaths,
  defaultOutputName,
  listCheckpoints,
  LocalFineTuneError,
  newJob,
  readJson,
  trainingIdentity,
  writeJsonAtomic,
  type JobObject,
  type ParentMessage,
  type WorkerMessage,
} from './supervisor-protocol.ts';

export { LocalFineTuneError, type LocalFineTuneErrorCode, type JobObject, type JobError } from './supervisor-protocol.ts';
export type { LocalFineTuneEvent, LocalFineTuneResult, LocalFineTuneSpec } from './supervised-job-types.ts';

export interface RunLocalFineTuneOptions {
  onEvent?: (event: LocalFineTuneEvent) => void;
  /** Aborting cancels the job: the child saves a checkpoint and exits; the result is `cancelled`. */
  signal?: AbortSignal;
  /**
   * Aborting kills the child at once, without a checkpoint: for a holder that lost the job to
   * another process, whose trainer must not write the job directory any more. The result is
   * `failed` with the abort's reason.
   */
  kill?: AbortSignal;
  /**
   * The watchdog: a child that sends nothing (no step, no event) for longer than this allows is
   * stuck — in native code, or stopped — and is killed; the result is `failed` with code
   * `trainer_stalled`. Defaults: DEFAULT_STALL_POLICY.
   */
  stall?: Partial<StallPolicy>;
  /** Called once the child process runs (its pid), e.g. to record it or, in tests, to kill it. */
  onSpawn?: (pid: number) => void;
  /** How long a cancelled child may take to checkpoint and exit before it is killed. Default 120 s. */
  cancelGraceMs?: number;
  /** Extra environment for the child (merged over process.env). */
  env?: NodeJS.ProcessEnv;
}

const STDERR_TAIL_LINES = 20;
const WORKER = fileURLToPath(new URL('./training-process.ts', import.meta.url));

/**
 * How the child loads TypeScript: tsx's loader, by absolute URL resolved from this file, so it
 * works from a checkout, a global install, and whatever the current directory is.
 */
function workerExecArgv(): string[] {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return ['--import', tsx];
}

function isPositiveInt(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

function checkSpec(spec: LocalFineTuneSpec): void {
  const bad = (msg: string) => new LocalFineTuneError('invalid_spec', msg);
  if (!spec || typeof spec !== 'object') throw bad('The job spec is missing.');
  if (typeof spec.jobDir !== 'string' || !spec.jobDir) throw bad('jobDir must be a directory path.');
  if (typeof spec.trainingFile !== 'string' || !spec.trainingFile) throw bad('trainingFile must be a file path.');
  if (typeof spec.baseModel !== 'string' || !spec.baseModel) throw bad("baseModel must be 'nodeai-tiny' or a GGUF path.");
  // The hyperparameters (epochs, batch size, learning rate, LoRA, threads) are the trainer's to
  // check (train.ts; its refusal comes back as invalid_spec); their ranges for users were checked
  // where the request came in (FineTuneRequest). Checked here: what the supervisor and the
  // training process use themselves.
  if (spec.seed !== undefined && !(Number.isSafeInteger(spec.seed) && spec.seed >= 0)) throw bad(`seed must be a whole number ≥ 0, got ${String(spec.seed)}.`);
  if (spec.evalEvery !== undefined && !isPositiveInt(spec.evalEvery)) throw bad(`evalEvery must be a whole number ≥ 1, got ${String(spec.evalEvery)}.`);
  if (spec.earlyStoppingPatience !== undefined && !isPositiveInt(spec.earlyStoppingPatience)) {
    throw bad(`earlyStoppingPatience must be a whole number ≥ 1, got ${String(spec.earlyStoppingPatience)}.`);
  }
  if (spec.checkpointEverySeconds !== undefined && !(typeof spec.checkpointEverySeconds === 'number' && spec.checkpointEverySeconds > 0)) {
    throw bad(`checkpointEverySeconds must be a positive number, got ${String(spec.checkpointEverySeconds)}.`);
  }
  if (spec.fencingToken !== undefined && !isPositiveInt(spec.fencingToken)) throw bad(`fencingToken must be a whole number ≥ 1, got ${String(spec.fencingToken)}.`);
  if (spec.outputName !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(spec.outputName)) {
    throw bad(`outputName must be a file stem of letters, digits, '.', '_' and '-', got ${JSON.stringify(spec.outputName)}.`);
  }
}

function failed(error: LocalFineTuneError, resumed = false): LocalFineTuneResult {
  return { status: 'failed', trainedTokens: 0, steps: 0, resumed, error: error.toJSON() };
}

function resultFromJob(job: JobObject): LocalFineTuneResult {
  return {
    status: 'succeeded',
    modelPath: job.nodeai.model_path ?? undefined,
    adapterPath: job.nodeai.adapter_path ?? undefined,
    trainedTokens: job.trained_tokens ?? 0,
    steps: job.nodeai.steps,
    finalMetrics: job.nodeai.final_metrics ?? undefined,
    resumed: false,
  };
}

/**
 * Fine-tunes `spec.baseModel` on `spec.trainingFile` in a supervised child process. Resolves with
 * the outcome — never rejects for a problem with the job (bad spec, bad data, a crash): those
 * come back as `status: 'failed'` with `error.code`.
 */
export async function runLocalFineTune(spec: LocalFineTuneSpec, opts: RunLocalFineTuneOptions = {}): Promise<LocalFineTuneResult> {
  const onEvent = opts.onEvent ?? (() => {});
  let policy: StallPolicy;
  try {
    checkSpec(spec);
    policy = stallPolicy(opts.stall);
  } catch (e) {
    return failed(e instanceof LocalFineTuneError ? e : new LocalFineTuneError('invalid_spec', (e as Error).message));
  }
  const outputName = spec.outputName ?? defaultOutputName(spec.baseModel);
  const paths = jobPaths(spec.jobDir, outputName);
  const previous = readJson<JobObject>(paths.job);
  const hasCheckpoint = listCheckpoints(paths.checkpoints).length > 0;
  if (previous?.nodeai?.identity && (hasCheckpoint || previous.status === 'succeeded')) {
    const diff = identityDiff(trainingIdentity(spec), previous.nodeai.identity);
    if (diff.length > 0) {
      return failed(
        new LocalFineTuneError(
          'job_dir_in_use',
          `${paths.dir} holds a run with other settings (${diff.join('; ')}); use another directory, or delete this one to start over.`,
        ),
      );
    }
    if (previous.status === 'succeeded' && previous.nodeai.model_path && existsSync(previous.nodeai.model_path)) {
      onEvent({ type: 'message', level: 'info', message: `This job already succeeded; its model is ${previous.nodeai.model_path}.`, time: Date.now() });
      return resultFromJob(previous);
    }
  }
  if (opts.signal?.aborted) return { status: 'cancelled', trainedTokens: 0, steps: 0, resumed: false };
  if (opts.kill?.aborted) return failed(killedError(opts.kill));
  try {
    mkdirSync(paths.dir, { recursive: true });
  } catch (e) {
    return failed(new LocalFineTuneError('invalid_spec', `Cannot create the job directory ${paths.dir}: ${(e as Error).message}`));
  }
  if (spec.fencingToken !== undefined) {
    // Tokens only grow: a holder that wakes up after its job was taken over must not claim the directory back.
    const recorded = holderToken(paths.holder);
    if (recorded > spec.fencingToken) return failed(supersededError(spec.fencingToken, recorded));
    writeJsonAtomic(paths.holder, { token: spec.fencingToken });
  }

  let child: ChildProcess;
  try {
    child = fork(WORKER, [], {
      execArgv: workerExecArgv(),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      env: { ...process.env, ...opts.env },
      serialization: 'json',
    });
  } catch (e) {
    return failed(new LocalFineTuneError('worker_start_failed', `Cannot start the training process: ${(e as Error).message}`));
  }

  const tail: string[] = [];
  let partial = '';
  const keep = (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) if (l.trim()) tail.push(l);
    if (tail.length > STDERR_TAIL_LINES) tail.splice(0, tail.length - STDERR_TAIL_LINES);
  };
  child.stderr?.on('data', keep);
  // llama.cpp and ggml log to stdout too; the last lines explain a crash just as well.
  child.stdout?.on('data', keep);

  let result: LocalFineTuneResult | undefined;
  let lastStep = 0;
  let cancelSent = false;
  let killTimer: NodeJS.Timeout | undefined;
  // Why the parent killed the child itself (a stall, a lost lease): the result says that, not "crashed".
  let killedFor: LocalFineTuneError | undefined;
  const clock = new StepClock(policy);
  let watchdog: NodeJS.Timeout | undefined;
  let armedFor = Infinity;
  const watch = () => {
    // Progress moves the deadline later and the timer re-checks it when it fires; only a deadline
    // brought earlier (the first measured steps end the start-up allowance) re-arms it at once.
    if (watchdog) clearTimeout(watchdog);
    armedFor = clock.deadline();
    watchdog = setTimeout(() => {
      if (Date.now() < clock.deadline()) return watch();
      killedFor ??= new LocalFineTuneError('trainer_stalled', `The training process ${clock.describeStall()}, so it was stopped.`);
      child.kill('SIGKILL');
    }, Math.max(10, armedFor - Date.now()));
  };
  const onKill = () => {
    killedFor ??= killedError(opts.kill!);
    child.kill('SIGKILL');
  };
  const sendToChild = (m: ParentMessage) => {
    if (child.connected) child.send(m, (err) => void err);
  };
  const onAbort = () => {
    if (cancelSent) return;
    cancelSent = true;
    sendToChild({ type: 'cancel' });
    killTimer = setTimeout(() => child.kill('SIGKILL'), opts.cancelGraceMs ?? 120_000);
  };
  child.on('message', (m: WorkerMessage) => {
    clock.observe(m.type === 'event' ? m.event : null);
    if (watchdog && clock.deadline() < armedFor) watch();
    if (m.type === 'event') {
      if (m.event.type === 'metrics') lastStep = m.event.step;
      try {
        onEvent(m.event);
      } catch {
        // A throwing listener must not stop supervision.
      }
    } else if (m.type === 'result') result = m.result;
  });

  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('spawn', () => {
      if (child.pid !== undefined) opts.onSpawn?.(child.pid);
      sendToChild({ type: 'start', spec });
      watch();
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.kill?.aborted) onKill();
      else opts.kill?.addEventListener('abort', onKill, { once: true });
    });
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  opts.signal?.removeEventListener('abort', onAbort);
  opts.kill?.removeEventListener('abort', onKill);
  if (killTimer) clearTimeout(killTimer);
  if (watchdog) clearTimeout(watchdog);
  if (partial.trim()) tail.push(partial);

  if (result) return result;
  if (killedFor?.code === 'lease_lost') {
    // The job directory belongs to the job's new holder now: write nothing there.
    return { status: 'failed', trainedTokens: 0, steps: lastStep, resumed: false, error: killedFor.toJSON() };
  }
  if (spec.fencingToken !== undefined && holderToken(paths.holder) !== spec.fencingToken) {
    return { status: 'failed', trainedTokens: 0, steps: lastStep, resumed: false, error: supersededError(spec.fencingToken, holderToken(paths.holder)).toJSON() };
  }
  // The child died without a result: record the failure (or the cancellation) where the child would have.
  if (cancelSent && exit.signal === 'SIGKILL') {
    return { status: 'cancelled', trainedTokens: 0, steps: lastStep, resumed: false };
  }
  const how = exit.error
    ? `could not start: ${exit.error.message}`
    : exit.signal
      ? `was killed by ${exit.signal}${exit.signal === 'SIGABRT' ? ' (a native abort, e.g. a failed GGML_ASSERT)' : exit.signal === 'SIGKILL' ? ' (out of memory, or killed)' : exit.signal === 'SIGSEGV' ? ' (a crash in native code)' : ''}`
      : `exited with code ${exit.code} without a result`;
  const lastLines = tail.slice(-10).join('\n');
  const kept = hasCheckpointNow(paths.checkpoints) ? ' Its last checkpoint is kept: run the job again to resume.' : '';
  const error = killedFor
    ? new LocalFineTuneError(killedFor.code, `${killedFor.message}${kept}${lastLines ? `\nIts last output:\n${lastLines}` : ''}`)
    : new LocalFineTuneError(exit.error ? 'worker_start_failed' : 'worker_crashed', `The training process ${how} after step ${lastStep}.${kept}${lastLines ? `\nIts last output:\n${lastLines}` : ''}`);
  const job = readJson<JobObject>(paths.job) ?? newJob(spec, previous);
  job.status = 'failed';
  job.error = error.toJSON();
  job.finished_at = Math.floor(Date.now() / 1000);
  const event: LocalFineTuneEvent = { type: 'status', status: 'failed', message: error.message, time: Date.now() };
  try {
    writeJsonAtomic(paths.job, job);
    appendEvent(paths.metrics, event);
  } catch {
    // The directory may be gone (a deleted job); the result still says what happened.
  }
  onEvent(event);
  return { status: 'failed', trainedTokens: job.trained_tokens ?? 0, steps: lastStep, resumed: false, error: error.toJSON() };
}

function supersededError(token: number, recorded: number): LocalFineTuneError {
  return new LocalFineTuneError('lease_lost', `The job was taken over by a newer claim (${recorded}, this one is ${token}); this trainer writes nothing to its directory.`);
}

function killedError(kill: AbortSignal): LocalFineTuneError {
  const reason = kill.reason as { message?: unknown } | undefined;
  return new LocalFineTuneError('lease_lost', `The training process was stopped at once: ${typeof reason?.message === 'string' ? reason.message : 'its job was taken over by another process'}.`);
}

function hasCheckpointNow(dir: string): boolean {
  return listCheckpoints(dir).length > 0;
}
