// The child process of a local fine-tuning job (started by supervisor.ts). Training runs here,
// not in the parent, because a failed GGML_ASSERT aborts the whole process: the parent survives
// and reports the crash. The worker owns the job directory while it runs: it appends every event
// to metrics.jsonl, writes checkpoints and job.json, and sends events and the final result to the
// parent over IPC.
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { basename } from 'node:path';
import { DatasetError, InvalidExampleError, isPreferenceExample, readExamples } from '../datasets/index.ts';
import { ChatFormatError, ContextOverflowError, encodeChatForTraining, type ChatMessage } from './chat-format.ts';
import { GgufError, gguf } from './gguf.ts';
import { readGgufModel, TRAINED_SYSTEM_PROMPT_KEY, writeGgufAdapter, writeGgufModelWeights } from './gguf-model.ts';
import type { LlamaModel, TrainingSequence } from './llama-model.ts';
import type { LocalFineTuneEvent, LocalFineTuneResult, LocalFineTuneSpec } from './supervised-job-types.ts';
import {
  appendEvent,
  checkpointPaths,
  DEFAULT_CHECKPOINT_EVERY_SECONDS,
  defaultOutputName,
  jobPaths,
  listCheckpoints,
  LocalFineTuneError,
  loraOf,
  newJob,
  pruneCheckpoints,
  holderToken,
  readJson,
  truncateMetrics,
  writeJsonAtomic,
  type JobObject,
  type ParentMessage,
  type WorkerMessage,
} from './supervisor-protocol.ts';
import { TINY_BASE_SEED } from './tiny-model-file.ts';
import { createTinyModel, NODEAI_TINY } from './tiny-model.ts';
import { createTokenizer, type Tokenizer } from './tokenizer.ts';
import { TrainerError } from './train-errors.ts';
import { autoLearningRate } from '../datasets/auto-hyperparameters.ts';
import { activationsEvent, createTrainer, frozenBaseEvent, parameterCount, resumeTrainer, type Trainer } from './train.ts';
import { matmulEvent } from './ggml/blas.ts';
import { evaluateAfterTraining } from './evaluate-after-training.ts';
import type { EvaluationReport } from './evaluation-report.ts';


interface Sidecar {
  step: number;
  trainedTokens: number;
  /** Early stopping's memory, so a resumed run keeps its best epoch (and that epoch's checkpoint). */
  earlyStopping?: { best?: { step: number; epoch: number; loss: number }; stale: number };
}

class Cancelled extends Error {}

let cancelRequested = false;
let started = false;
const PARENT_PID = process.ppid;

/**
 * The supervisor died (its process was killed): the job is its next holder's, who resumes it
 * from the last checkpoint in this same directory — possibly already training there. So an
 * orphan writes nothing more (no checkpoint, no metrics line) and exits. A step that is all
 * microtasks keeps the 'disconnect' event from being seen, so each step also asks the kernel.
 */
function exitIfOrphaned(): void {
  if (process.ppid === PARENT_PID && process.connected) return;
  process.stderr.write('training-process: the supervisor is gone; exiting without writing, the job resumes from its last checkpoint\n');
  process.exit(3);
}

/** Set by run(): the claim this trainer works for, and where the job directory names its holder. */
let fence: { holderPath: string; token: number } | undefined;

/**
 * Called before every write to the job directory: an orphan, or a trainer whose job was taken
 * over (the directory names a newer claim: its holder was frozen past its lease), writes nothing
 * more; the orphan exits, the other ends its run with a lease_lost result for its supervisor.
 */
function exitUnlessHolder(): void {
  exitIfOrphaned();
  if (fence && holderToken(fence.holderPath) !== fence.token) {
    throw new Superseded(new LocalFineTuneError('lease_lost', `The job directory now belongs to a newer claim than this trainer's (${fence.token}); it stopped without writing.`));
  }
}

class Superseded extends Error {
  constructor(readonly error: LocalFineTuneError) {
    super(error.message);
  }
}

function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || !process.send) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

/**
 * Threads for a new run. ggml's workers spin at their barriers, so a thread that loses its core
 * to another process stalls every step: on 2 busy cores 2 threads trained 12× slower than 1
 * (90 s vs 7 s). Leave out the cores other processes are using.
 */
export function autoThreads(): number {
  const cores = availableParallelism();
  return Math.max(1, Math.min(cores, cores - Math.round(loadavg()[0])));
}

async function loadBase(spec: LocalFineTuneSpec): Promise<{ model: LlamaModel; ggufPath?: string }> {
  if (spec.baseModel === NODEAI_TINY) return { model: createTinyModel({ seed: TINY_BASE_SEED }) };
  const path = spec.baseModel;
  if (!existsSync(path)) {
    throw new LocalFineTuneError('base_model_not_found', `Base model ${path} does not exist; pass '${NODEAI_TINY}' or the path of a GGUF file.`, { file: path });
  }
  if (statSync(path).isDirectory()) {
    throw new LocalFineTuneError('base_model_not_found', `Base model ${path} is a directory; pass the path of a .gguf file inside it.`, { file: path });
  }
  let model: LlamaModel;
  try {
    // A LoRA run leaves the frozen base as the file stores it (quantized allowed); full
    // fine-tuning trains every weight, so it reads them as float32 and refuses a quantized file.
    model = await readGgufModel(path, { weights: loraOf(spec) ? 'stored' : 'float32' });
  } catch (e) {
    if (e instanceof GgufError) throw new LocalFineTuneError('invalid_base_model', `Cannot train on ${path}: ${e.message}`, { file: path });
    throw e;
  }
  if (!model.tokenizer.chatTemplate) {
    throw new LocalFineTuneError(
      'invalid_base_model',
      `${path} has no chat template (tokenizer.chat_template), so chat examples cannot be formatted for it; use a chat/instruct model.`,
      { file: path },
    );
  }
  return { model, ggufPath: path };
}

/** The system prompt of an example: its first message's text when that is a system message. */
function systemPromptOf(messages: ChatMessage[]): string | null {
  const first = messages[0];
  return first?.role === 'system' && typeof first.content === 'string' ? first.content : null;
}

async function encodeFile(
  path: string,
  split: string,
  model: LlamaModel,
  tokenizer: Tokenizer,
  systemPrompts?: Set<string | null>,
): Promise<TrainingSequence[]> {
  const out: TrainingSequence[] = [];
  try {
    for await (const rec of readExamples(path, { onInvalid: 'throw' })) {
      if (cancelRequested) throw new Cancelled();
      const where = { file: path, line: rec.line };
      if (isPreferenceExample(rec.example)) {
        throw new LocalFineTuneError(
          'invalid_training_file',
          `${path} line ${rec.line}: a DPO preference example; the local trainer trains on chat examples ({"messages": [...]}) only.`,
          where,
        );
      }
      systemPrompts?.add(systemPromptOf(rec.example.messages as ChatMessage[]));
      try {
        out.push(encodeChatForTraining(model, tokenizer, rec.example.messages as ChatMessage[], { tools: rec.example.tools }));
      } catch (e) {
        if (e instanceof ContextOverflowError) {
          throw new LocalFineTuneError('example_too_long', `${split} file ${path} line ${rec.line}: ${e.message}.`, where);
        }
        if (e instanceof ChatFormatError && (e.code === 'NO_CHAT_TEMPLATE' || e.code === 'TEMPLATE_ERROR')) {
          throw new LocalFineTuneError('invalid_base_model', `${e.message} (while formatting ${path} line ${rec.line})`, where);
        }
        throw new LocalFineTuneError('invalid_training_file', `${path} line ${rec.line}: ${(e as Error).message}`, where);
      }
    }
  } catch (e) {
    if (e instanceof InvalidExampleError) {
      throw new LocalFineTuneError('invalid_training_file', `${split} file ${path}: ${e.message}`, { file: path, ...(e.line !== null ? { line: e.line } : {}) });
    }
    if (DatasetError.isInstance(e)) throw new LocalFineTuneError('invalid_training_file', `${split} file: ${e.message}`, { file: path });
    throw e;
  }
  return out;
}

/** Throttle of the evaluation's progress messages. */
const EVALUATION_PROGRESS_MS = 1000;

/**
 * The base and the fine-tuned model side by side on the validation examples. A failure (or a
 * cancel) here costs the report, not the trained model: it is said in the job's events.
 */
async function evaluateTrained(
  setting: NonNullable<LocalFineTuneSpec['evaluate']>,
  validationFile: string,
  base: { model: LlamaModel; path?: string },
  paths: ReturnType<typeof jobPaths>,
  emit: (e: LocalFineTuneEvent) => void,
): Promise<EvaluationReport | undefined> {
  const message = (level: 'info' | 'warn', text: string) => emit({ type: 'message', level, message: text, time: Date.now() });
  let lastMessage = 0;
  try {
    const report = await evaluateAfterTraining({
      validationFile,
      maxExamples: setting.maxExamples,
      base: { name: setting.baseName, ...base },
      tuned: { name: setting.modelName, path: paths.model },
      scratchDir: paths.dir,
      threads: autoThreads(),
      onProgress: (p) => {
        if (cancelRequested) throw new Cancelled();
        const now = Date.now();
        if (p.done < p.total && now - lastMessage < EVALUATION_PROGRESS_MS) return;
        lastMessage = now;
        message('info', `Evaluating ${p.model}: ${p.done}/${p.total} answers`);
      },
    });
    if (!report) return undefined;
    exitUnlessHolder();
    writeJsonAtomic(paths.evaluation, report);
    const line = report.models.map((m) => `${m}: loss ${report.summary[m].loss?.toFixed(4) ?? 'n/a'}, exact ${(100 * report.summary[m].exact_match).toFixed(0)}%`).join('; ');
    message('info', `Evaluated on ${report.examples.length} validation examples. ${line}`);
    return report;
  } catch (e) {
    message('warn', e instanceof Cancelled ? 'Evaluation stopped by the cancel; the trained model is kept.' : `The evaluation after training failed (${(e as Error).message}); the trained model is kept.`);
    return undefined;
  }
}

function asJobError(e: unknown): LocalFineTuneError {
  if (e instanceof LocalFineTuneError) return e;
  if (e instanceof TrainerError) {
    const code =
      e.code === 'EMPTY_DATASET'
        ? 'empty_dataset'
        : e.code === 'SEQUENCE_TOO_LONG'
          ? 'example_too_long'
          : e.code === 'BAD_OPTION'
            ? 'invalid_spec'
            : e.code === 'CHECKPOINT_MISMATCH'
              ? 'job_dir_in_use'
              : e.code === 'DEVICE_UNAVAILABLE'
                ? 'device_unavailable'
                : 'training_failed';
    return new LocalFineTuneError(code, e.message);
  }
  if (e instanceof GgufError) return new LocalFineTuneError('training_failed', `Writing the model failed: ${e.message}`);
  return new LocalFineTuneError('training_failed', e instanceof Error ? e.message : String(e));
}

/** A validation loss must fall by more than this to count as better (noise on a small set is not). */
const EARLY_STOPPING_MIN_DELTA = 1e-4;

const finite = (x: number | undefined) => (x !== undefined && Number.isFinite(x) ? x : undefined);

async function run(spec: LocalFineTuneSpec): Promise<LocalFineTuneResult> {
  const outputName = spec.outputName ?? defaultOutputName(spec.baseModel);
  const paths = jobPaths(spec.jobDir, outputName);
  mkdirSync(paths.checkpoints, { recursive: true });
  if (spec.fencingToken !== undefined) fence = { holderPath: paths.holder, token: spec.fencingToken };
  const job: JobObject = newJob(spec, readJson<JobObject>(paths.job));
  const emit = (e: LocalFineTuneEvent) => {
    exitUnlessHolder();
    appendEvent(paths.metrics, e);
    void send({ type: 'event', event: e });
  };
  const status = (s: JobObject['status'], message: string) => {
    job.status = s;
    if (s === 'succeeded' || s === 'failed' || s === 'cancelled') job.finished_at = Math.floor(Date.now() / 1000);
    exitUnlessHolder();
    writeJsonAtomic(paths.job, job);
    emit({ type: 'status', status: s, message, time: Date.now() });
  };

  let trainer: Trainer | undefined;
  let resumedEarlyStopping: Sidecar['earlyStopping'];
  let tokenizer: Tokenizer | undefined;
  let trainedTokens = 0;
  const result: LocalFineTuneResult = { status: 'failed', trainedTokens: 0, steps: 0, resumed: false };
  try {
    status('validating_files', `Reading ${basename(spec.trainingFile)}${spec.validationFile ? ` and ${basename(spec.validationFile)}` : ''}`);
    const { model, ggufPath } = await loadBase(spec);
    tokenizer = await createTokenizer(model, ggufPath ? { ggufPath } : {});
    const systemPrompts = new Set<string | null>();
    const train = await encodeFile(spec.trainingFile, 'training', model, tokenizer, systemPrompts);
    if (train.length === 0) {
      throw new LocalFineTuneError('empty_dataset', `The training file ${spec.trainingFile} has no examples.`, { file: spec.trainingFile });
    }
    const valid = spec.validationFile ? await encodeFile(spec.validationFile, 'validation', model, tokenizer) : [];
    if (cancelRequested) throw new Cancelled();

    for (const c of listCheckpoints(paths.checkpoints)) {
      try {
        trainer = resumeTrainer(c.path, { model, train, valid, device: spec.device ?? 'auto' });
      } catch (e) {
        if (e instanceof TrainerError && e.code === 'CHECKPOINT_CORRUPT') {
          emit({ type: 'message', level: 'warn', message: `${e.message} Trying an older one.`, time: Date.now() });
          continue;
        }
        throw e;
      }
      const sidecar = readJson<Sidecar>(c.sidecar);
      trainedTokens = sidecar?.trainedTokens ?? 0;
      resumedEarlyStopping = sidecar?.earlyStopping;
      truncateMetrics(paths.metrics, c.step);
      result.resumed = true;
      break;
    }
    if (!trainer) {
      const lora = loraOf(spec);
      trainer = createTrainer({
        model,
        train,
        valid,
        epochs: spec.epochs,
        batchSize: spec.batchSize,
        learningRate: spec.learningRateMultiplier ? spec.learningRateMultiplier * autoLearningRate(parameterCount(model.config), lora !== undefined) : spec.learningRate,
        ...(lora ? { lora } : {}),
        seed: spec.seed ?? 42,
        threads: spec.threads ?? autoThreads(),
        device: spec.device ?? 'auto',
      });
    }
    emit({ type: 'message', level: 'info', message: `Training on ${trainer.device.name}: ${trainer.device.reason}.`, time: Date.now() });
    emit({ type: 'message', level: 'info', message: matmulEvent(trainer.matmul), time: Date.now() });
    const frozenBase = frozenBaseEvent(trainer.settings, trainer.matmul);
    if (frozenBase) emit({ type: 'message', level: 'info', message: frozenBase, time: Date.now() });
    emit({ type: 'message', level: 'info', message: activationsEvent(trainer.settings, model.config, trainer.checkpointLayers), time: Date.now() });
    const s = trainer.settings;
    const hp = {
      n_epochs: s.epochs,
      batch_size: s.batchSize,
      learning_rate_multiplier: s.learningRate / autoLearningRate(parameterCount(model.config), !!s.lora),
      learning_rate: s.learningRate,
      ...(s.lora ? { lora_rank: s.lora.rank, lora_alpha: s.lora.alpha } : {}),
    };
    job.hyperparameters = hp;
    job.method = { type: 'supervised', supervised: { hyperparameters: hp } };
    Object.assign(job.nodeai, { total_steps: s.totalSteps, threads: s.threads, device: trainer.device.kind, resumed: result.resumed, steps: trainer.stepsDone });
    job.trained_tokens = trainedTokens;
    const what = `${s.totalSteps} step${s.totalSteps === 1 ? '' : 's'} (${s.epochs} epoch${s.epochs === 1 ? '' : 's'} × ${s.stepsPerEpoch}, batch ${s.batchSize}, lr ${s.learningRate}${s.lora ? `, LoRA r=${s.lora.rank}` : ''}, ${s.threads} thread${s.threads === 1 ? '' : 's'})`;
    if (result.resumed) {
      emit({
        type: 'message',
        level: 'info',
        message: `Resuming from the checkpoint at step ${trainer.stepsDone} of ${s.totalSteps} (epoch ${trainer.epoch + 1} of ${s.epochs}).`,
        time: Date.now(),
      });
    }
    status('running', `Training ${model.name} on ${train.length} examples${valid.length ? ` (${valid.length} for validation)` : ''}: ${what}`);

    const evalEvery = spec.evalEvery ?? Math.max(1, Math.ceil(s.totalSteps / 20));
    const checkpointEveryMs = (spec.checkpointEverySeconds ?? DEFAULT_CHECKPOINT_EVERY_SECONDS) * 1000;
    let lastCheckpointAt = Date.now();
    let lastCheckpointStep = result.resumed ? trainer.stepsDone : -1;
    const checkpoint = (epoch: number) => {
      exitUnlessHolder();
      const tr = trainer!;
      const c = checkpointPaths(paths.checkpoints, tr.stepsDone);
      // The sidecar goes first: a checkpoint without one would lose the token count on resume.
      writeJsonAtomic(c.sidecar, { step: tr.stepsDone, trainedTokens, ...(patience !== undefined ? { earlyStopping: { best, stale } } : {}) } satisfies Sidecar);
      let info: ReturnType<typeof tr.saveCheckpoint>;
      try {
        info = tr.saveCheckpoint(c.path);
      } catch (e) {
        // A checkpoint that could not be written (a full disk) leaves no sidecar without it.
        rmSync(c.sidecar, { force: true });
        throw e;
      }
      pruneCheckpoints(paths.checkpoints, undefined, best?.step);
      lastCheckpointAt = Date.now();
      lastCheckpointStep = tr.stepsDone;
      emit({ type: 'checkpoint', time: Date.now(), step: info.step, epoch, path: c.path, bytes: info.bytes });
    };

    // Early stopping looks at the validation loss at each epoch's end; its state rides in the
    // checkpoint sidecars, so a resumed run goes on counting from where it was.
    const patience = valid.length > 0 ? spec.earlyStoppingPatience : undefined;
    let best = resumedEarlyStopping?.best;
    let stale = resumedEarlyStopping?.stale ?? 0;
    let stoppedEarly = false;

    const startStep = trainer.stepsDone;
    const t0 = performance.now();
    const recent: Array<{ tokens: number; ms: number }> = [];
    let last: LocalFineTuneResult['finalMetrics'] = {};
    for await (const ev of trainer.steps()) {
      exitUnlessHolder();
      trainedTokens += ev.tokens;
      recent.push({ tokens: ev.tokens, ms: ev.tokensPerSecond > 0 ? (ev.tokens / ev.tokensPerSecond) * 1000 : 0 });
      if (recent.length > 20) recent.shift();
      const epochEnded = trainer.epoch >= ev.epoch;
      const metrics: Extract<LocalFineTuneEvent, { type: 'metrics' }> = {
        type: 'metrics',
        time: Date.now(),
        step: ev.step,
        total_steps: ev.totalSteps,
        epoch: ev.epoch,
        total_epochs: s.epochs,
        train_loss: finite(ev.trainLoss),
        train_mean_token_accuracy: finite(ev.trainMeanTokenAccuracy),
        grad_norm: finite(ev.gradNorm),
        learning_rate: ev.lr,
        trained_tokens: trainedTokens,
      };
      last = { ...last, train_loss: metrics.train_loss, train_mean_token_accuracy: metrics.train_mean_token_accuracy };
      if (valid.length > 0 && (ev.step % evalEvery === 0 || epochEnded || trainer.done)) {
        const r = trainer.evaluate();
        metrics.valid_loss = finite(r.validLoss);
        metrics.valid_mean_token_accuracy = finite(r.validMeanTokenAccuracy);
        last = { ...last, valid_loss: metrics.valid_loss, valid_mean_token_accuracy: metrics.valid_mean_token_accuracy };
      }
      const windowMs = recent.reduce((a, r) => a + r.ms, 0);
      metrics.tokens_per_second = windowMs > 0 ? (recent.reduce((a, r) => a + r.tokens, 0) / windowMs) * 1000 : undefined;
      const perStep = (performance.now() - t0) / 1000 / (ev.step - startStep);
      metrics.eta_seconds = perStep * (ev.totalSteps - ev.step);
      emit(metrics);
      const improved = patience !== undefined && epochEnded && metrics.valid_loss !== undefined && (best === undefined || metrics.valid_loss < best.loss - EARLY_STOPPING_MIN_DELTA);
      if (improved) {
        best = { step: ev.step, epoch: ev.epoch, loss: metrics.valid_loss! };
        stale = 0;
      }
      if (epochEnded || Date.now() - lastCheckpointAt >= checkpointEveryMs) checkpoint(ev.epoch);
      if (cancelRequested && !trainer.done) {
        if (lastCheckpointStep !== trainer.stepsDone) checkpoint(ev.epoch);
        throw new Cancelled();
      }
      if (patience !== undefined && epochEnded && !improved && metrics.valid_loss !== undefined && ++stale >= patience && !trainer.done) {
        stoppedEarly = true;
        emit({
          type: 'message',
          level: 'info',
          message: `Stopping early after epoch ${ev.epoch} of ${s.epochs}: the validation loss has not improved for ${stale} epoch${stale === 1 ? '' : 's'}${best ? `; keeping the model of epoch ${best.epoch} (validation loss ${best.loss.toFixed(4)})` : ''}.`,
          time: Date.now(),
        });
        break;
      }
    }

    // Stopped early: the model to keep is the best epoch's, read back from its checkpoint. The
    // trainer that stopped goes first, so the two are never in memory together.
    let keep = trainer;
    if (stoppedEarly && best && best.step !== trainer.stepsDone) {
      const stoppedStep = trainer.stepsDone;
      trainer.dispose();
      try {
        keep = resumeTrainer(checkpointPaths(paths.checkpoints, best.step).path, { model, train, valid });
      } catch (e) {
        emit({ type: 'message', level: 'warn', message: `The checkpoint of epoch ${best.epoch} could not be read (${(e as Error).message}); keeping the model of the last epoch instead.`, time: Date.now() });
        keep = resumeTrainer(checkpointPaths(paths.checkpoints, stoppedStep).path, { model, train, valid });
        best = undefined;
      }
    }
    if (stoppedEarly && best) {
      last = { ...last, valid_loss: best.loss };
      job.nodeai.early_stopping = { stopped_at_epoch: trainer.epoch, best_epoch: best.epoch, best_step: best.step, best_valid_loss: best.loss };
    }
    // The merged model is written tensor by tensor in the base's types (a LoRA target of a
    // quantized base as F16), never as a whole-model float32 copy.
    const exported = keep.exportMerged();
    const extraMetadata = new Map(exported.extraMetadata);
    const [systemPrompt] = systemPrompts;
    if (systemPrompts.size === 1 && systemPrompt) extraMetadata.set(TRAINED_SYSTEM_PROMPT_KEY, gguf.str(systemPrompt));
    else extraMetadata.delete(TRAINED_SYSTEM_PROMPT_KEY);
    exitUnlessHolder();
    await writeGgufModelWeights(paths.model, { ...exported, name: outputName, extraMetadata });
    result.modelPath = paths.model;
    job.result_files = [basename(paths.model)];
    if (s.lora) {
      await writeGgufAdapter(paths.adapter, keep.exportAdapter(), model);
      result.adapterPath = paths.adapter;
      job.result_files.push(basename(paths.adapter));
    }
    job.result_files.push(basename(paths.metrics));
    if (keep !== trainer) keep.dispose();
    trainer.dispose();
    if (spec.evaluate && spec.validationFile && valid.length > 0) {
      result.evaluation = await evaluateTrained(spec.evaluate, spec.validationFile, { model, ...(ggufPath ? { path: ggufPath } : {}) }, paths, emit);
      if (result.evaluation) job.result_files.push(basename(paths.evaluation));
    }
    result.status = 'succeeded';
    result.steps = trainer.stepsDone;
    result.trainedTokens = trainedTokens;
    result.finalMetrics = last;
    job.fine_tuned_model = outputName;
    job.trained_tokens = trainedTokens;
    Object.assign(job.nodeai, { model_path: result.modelPath ?? null, adapter_path: result.adapterPath ?? null, steps: result.steps, final_metrics: last });
    status('succeeded', `Wrote ${paths.model}${result.adapterPath ? ` and ${result.adapterPath}` : ''}`);
  } catch (e) {
    if (e instanceof Superseded) return { status: 'failed', trainedTokens: 0, steps: 0, resumed: false, error: e.error.toJSON() };
    result.steps = trainer?.stepsDone ?? 0;
    result.trainedTokens = trainedTokens;
    job.trained_tokens = trainedTokens;
    job.nodeai.steps = result.steps;
    if (e instanceof Cancelled) {
      result.status = 'cancelled';
      status('cancelled', trainer && result.steps > 0 ? `Cancelled at step ${result.steps}; the checkpoint is kept, a new run on ${paths.dir} resumes from it.` : 'Cancelled before training started.');
    } else {
      const err = asJobError(e);
      result.status = 'failed';
      result.error = err.toJSON();
      job.error = err.toJSON();
      status('failed', err.message);
    }
  } finally {
    trainer?.dispose();
    await tokenizer?.dispose();
  }
  return result;
}

process.on('SIGINT', () => {
  // A Ctrl-C reaches the whole process group; the parent decides whether to cancel.
});
process.on('SIGTERM', () => {
  cancelRequested = true;
});
process.on('disconnect', exitIfOrphaned);
process.on('message', (m: ParentMessage) => {
  if (m.type === 'cancel') cancelRequested = true;
  else if (m.type === 'start' && !started) {
    started = true;
    run(m.spec)
      .then((result) => send({ type: 'result', result }))
      .then(() => process.exit(0))
      .catch((e: unknown) => {
        process.stderr.write(`training-process: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
        process.exit(1);
      });
  }
});
if (!process.send) {
  process.stderr.write('training-process.ts is started by the supervisor (src/trainer/supervisor.ts), not by hand.\n');
  process.exit(2);
}
