// The training loop on top of LlamaGraph: data order, padding and masks, AdamW with a learning-rate
// schedule, gradient accumulation, evaluation, export, and checkpoints that resume bit-identically.
//
// Sequence convention: for a TrainingSequence of n tokens the model reads tokens[0..n-2] and is
// scored on predicting tokens[t] from tokens[0..t-1] for every t in 1..n-1 with lossMask[t] === 1
// (lossMask[0] is never used: nothing predicts the first token). So n - 1 must fit in the context.
//
// Loss: the token-weighted mean of -log p(target) over every counted token of an optimizer step,
// across all micro-batches of the accumulation, exactly (padding and prompt tokens neither count
// nor produce gradients).
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { autoBatchSize, autoEpochs, autoLearningRate } from '../datasets/auto-hyperparameters.ts';
import { readCheckpointFile, writeCheckpointFile, type CheckpointTensor, type CheckpointTensorToWrite } from './checkpoint.js';
import { CHECKPOINT_ABOVE_BYTES, checkpointsByDefault, layerActivationBytes, LlamaGraph, loraTargetTensors, validateLlamaConfig, type LoraTargetModule, type TrainableTensor } from './graph.js';
import {
  expectedTensors,
  loraTensorNames,
  parameterCount,
  type LlamaConfig,
  type LlamaModel,
  type LoraAdapter,
  type NamedTensor,
  type TrainingSequence,
} from './llama-model.js';
import { GGML_TYPE_BF16, GGML_TYPE_F32, type GgmlTensor } from './ggml/lib.js';
import { chooseComputeDevice, type ComputeDevice, type TrainingDevice } from './ggml/device.js';
import { chooseMatmul, type BlasLimits, type MatmulBackend } from './ggml/blas.js';
import { FROZEN_BASE_CHOICES, type TrainingMatmul } from './training-device.js';
import type { AnyTensorToWrite, GgmlFloatType } from './gguf.ts';
import type { ModelToWrite } from './gguf-model.ts';
import { TrainerError } from './train-errors.js';
import { Rng, type RngState } from './train-rng.js';

export type LrSchedule = 'cosine' | 'linear' | 'constant';

export interface LoraOptions {
  rank: number;
  /** Default: rank (scale 1). */
  alpha?: number;
  /** Default: every attention and MLP projection. */
  targets?: LoraTargetModule[];
}

export interface TrainerOptions {
  model: LlamaModel;
  lora?: LoraOptions;
  train: TrainingSequence[];
  valid?: TrainingSequence[];
  /** 'auto' (default): OpenAI's rule — 3, raised to ⌈100/n⌉ (≤ 25) for small sets, lowered to ⌊25000/n⌋ for large ones. */
  epochs?: number | 'auto';
  /** Sequences per micro-batch (one graph compute). Default 'auto'. */
  batchSize?: number | 'auto';
  /** Peak learning rate. Default 'auto' (by model size and LoRA, see datasets/auto-hyperparameters.ts). */
  learningRate?: number | 'auto';
  /** Default 'cosine' (to 0). */
  schedule?: LrSchedule;
  /** Warm-up: a fraction of all steps when < 1, else a number of steps. Default: autoWarmupSteps. */
  warmup?: number;
  /** Micro-batches per optimizer step. Default 1. */
  gradAccum?: number;
  /** AdamW decoupled weight decay, applied to matrices only (not norms). Default 0.01. */
  weightDecay?: number;
  adamBeta1?: number;
  adamBeta2?: number;
  adamEps?: number;
  /**
   * Gradients whose global L2 norm is over this are scaled down to it before the AdamW step (as
   * PyTorch's clip_grad_norm_ and Hugging Face's max_grad_norm do); 0 turns clipping off.
   * Default 1.
   */
  maxGradNorm?: number;
  /** Default 42. */
  seed?: number;
  /** Default os.availableParallelism(). Bit-reproducibility needs the same count. */
  threads?: number;
  /** Positions per row of the graph. Default: the longest example (so short data trains fast). */
  seqLen?: number;
  /**
   * Where to compute (trainer/ggml/device.ts): 'auto' (default) takes a usable CUDA device, else the
   * CPU; or a device already chosen (tests pass the stand-in accelerator of ggml/test-device.ts).
   */
  device?: TrainingDevice | ComputeDevice;
  /** Who computes the large matmuls on the CPU (trainer/ggml/blas.ts): 'auto' (default), 'ggml' or 'blas' (oneDNN or OpenBLAS). */
  matmul?: TrainingMatmul;
  /** With BLAS-backend matmuls, which ones stay on ggml-cpu (LlamaGraphOptions.blasLimits; tests lower them). */
  blasLimits?: Partial<BlasLimits>;
  /**
   * How a LoRA run holds the frozen base matrices that the model gives as float32 arrays: 'f32' as
   * they are, or 'bf16' rounded to bfloat16 — half their memory, and much faster matmuls where the
   * matmul backend multiplies BF16 in BF16 (oneDNN on AVX-512 BF16 or AMX: BENCHMARKS.md "Trainer"),
   * at a loss difference the golden-trajectory test bounds. 'auto' (default): 'bf16' exactly there
   * (see {@link resolveFrozenBase}). Weights read as stored keep their type; the exported (merged)
   * model starts from the float32 base either way.
   */
  frozenBase?: FrozenBase | 'auto';
  /**
   * Pad the LoRA rank inside the graph to ggml's fast-matmul width (graph.ts's padLoraRank;
   * default true). The adapter, its optimizer state and checkpoints hold the true rank either
   * way; false is there for tests that compare against the unpadded graph.
   */
  padLoraRank?: boolean;
  /**
   * Recompute each layer's activations in the backward pass instead of keeping them (graph.ts's
   * checkpointLayers). Default: when they would take more than CHECKPOINT_ABOVE_BYTES.
   */
  checkpointLayers?: boolean;
}

export type FrozenBase = Exclude<(typeof FROZEN_BASE_CHOICES)[number], 'auto'>;

/** Every setting after 'auto' and defaults are resolved; stored in checkpoints. */
export interface TrainerSettings {
  epochs: number;
  batchSize: number;
  learningRate: number;
  schedule: LrSchedule;
  warmupSteps: number;
  gradAccum: number;
  weightDecay: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEps: number;
  maxGradNorm: number;
  seed: number;
  threads: number;
  seqLen: number;
  /** Absent in checkpoints written before it existed: they ran with 'f32'. */
  frozenBase?: FrozenBase;
  lora: { rank: number; alpha: number; targets: LoraTargetModule[] } | null;
  stepsPerEpoch: number;
  totalSteps: number;
}

export interface TrainStepEvent {
  /** Optimizer steps completed, 1-based. */
  step: number;
  /** Epoch this step belongs to, 1-based. */
  epoch: number;
  totalSteps: number;
  trainLoss: number;
  trainMeanTokenAccuracy: number;
  /** Global L2 norm of the step's gradients, before clipping. */
  gradNorm: number;
  /** Real (non-padding) input tokens processed in this step. */
  tokens: number;
  /** Tokens whose loss counted in this step. */
  trainedTokens: number;
  tokensPerSecond: number;
  lr: number;
}

export interface EvalResult {
  validLoss: number;
  validMeanTokenAccuracy: number;
  /** Tokens whose loss counted. */
  tokens: number;
}

export interface CheckpointInfo {
  path: string;
  bytes: number;
  step: number;
  epoch: number;
}

export interface Trainer {
  readonly settings: Readonly<TrainerSettings>;
  /** The device the trainer computes on, and why it was chosen. */
  readonly device: ComputeDevice;
  /** Who computes the large matmuls, and why. */
  readonly matmul: MatmulBackend;
  /** Whether each layer's activations are recomputed in the backward pass (TrainerOptions.checkpointLayers). */
  readonly checkpointLayers: boolean;
  /** Optimizer steps completed so far. */
  readonly stepsDone: number;
  /** Current 0-based epoch (equals settings.epochs once done). */
  readonly epoch: number;
  readonly done: boolean;
  /** Runs one optimizer step (gradAccum micro-batches). Throws TRAINING_FINISHED when done. */
  step(): TrainStepEvent;
  /** Steps until the current epoch ends. */
  runEpoch(): TrainStepEvent[];
  /** Remaining steps, yielding to the event loop between steps (so signals and timers run). */
  steps(): AsyncGenerator<TrainStepEvent>;
  /** Mean loss and accuracy over counted tokens; defaults to the `valid` set given at creation. */
  evaluate(sequences?: TrainingSequence[]): EvalResult;
  /** The model with trained weights as float32 (LoRA: adapters merged into copies of the base weights). */
  exportModel(): LlamaModel;
  /**
   * The same model for writing to GGUF (writeGgufModelWeights) one tensor at a time, while this
   * trainer is alive: LoRA targets merged, in the base's float type (F16 for a quantized base),
   * every other weight as stored (a quantized base's stay quantized). No whole-model copy is made.
   */
  exportMerged(): ModelToWrite;
  exportAdapter(): LoraAdapter;
  saveCheckpoint(path: string): CheckpointInfo;
  dispose(): void;
}

/** ggml type ids of the float types (ggml.h). */
const FLOAT_TYPE_NAMES: Record<number, GgmlFloatType> = { 0: 'F32', 1: 'F16', 30: 'BF16' };
/** enum llama_ftype (llama.h). */
const LLAMA_FTYPE_ALL_F32 = 0;
const LLAMA_FTYPE_MOSTLY_F16 = 1;
const LLAMA_FTYPE_MOSTLY_BF16 = 32;

export const DEFAULT_LORA_TARGETS: LoraTargetModule[] = [
  'attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_gate', 'ffn_up', 'ffn_down',
];

export { parameterCount };

export function learningRateAt(s: TrainerSettings, step: number): number {
  const peak = s.learningRate;
  const W = s.warmupSteps;
  if (step < W) return (peak * (step + 1)) / W;
  if (s.schedule === 'constant') return peak;
  const p = (step - W) / Math.max(1, s.totalSteps - W);
  return s.schedule === 'linear' ? peak * (1 - p) : peak * 0.5 * (1 + Math.cos(Math.PI * p));
}

function checkSequences(seqs: TrainingSequence[], split: string, config: LlamaConfig): void {
  seqs.forEach((s, i) => {
    const where = `${split} example ${i + 1}`;
    if (!(s.tokens instanceof Int32Array) || !(s.lossMask instanceof Uint8Array)) {
      throw new TrainerError('BAD_SEQUENCE', `${where}: tokens must be an Int32Array and lossMask a Uint8Array.`, { split, index: i });
    }
    if (s.tokens.length !== s.lossMask.length) {
      throw new TrainerError(
        'BAD_SEQUENCE',
        `${where}: ${s.tokens.length} tokens but ${s.lossMask.length} loss-mask entries.`,
        { split, index: i },
      );
    }
    if (s.tokens.length < 2) {
      throw new TrainerError('BAD_SEQUENCE', `${where} has ${s.tokens.length} token(s); at least 2 are needed to learn anything.`, {
        split,
        index: i,
      });
    }
    if (s.tokens.length - 1 > config.contextLength) {
      throw new TrainerError(
        'SEQUENCE_TOO_LONG',
        `${where} has ${s.tokens.length} tokens, more than the model's context of ${config.contextLength} (+1 target). ` +
          'Shorten or drop it, or use a base model with a longer context.',
        { split, index: i, tokens: s.tokens.length, contextLength: config.contextLength },
      );
    }
    for (let t = 0; t < s.tokens.length; t++) {
      const id = s.tokens[t];
      if (id < 0 || id >= config.vocabSize) {
        throw new TrainerError('BAD_SEQUENCE', `${where}: token ${id} at position ${t} is outside the vocabulary (0..${config.vocabSize - 1}).`, {
          split,
          index: i,
        });
      }
    }
  });
}

function countedTokens(s: TrainingSequence): number {
  let c = 0;
  for (let t = 1; t < s.lossMask.length; t++) if (s.lossMask[t] === 1) c++;
  return c;
}

function fingerprint(seqs: TrainingSequence[]): string {
  const h = createHash('sha256');
  for (const s of seqs) {
    h.update(Buffer.from(s.tokens.buffer, s.tokens.byteOffset, s.tokens.byteLength));
    h.update(Buffer.from(s.lossMask.buffer, s.lossMask.byteOffset, s.lossMask.byteLength));
    h.update('|');
  }
  return h.digest('hex');
}

function posInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new TrainerError('BAD_OPTION', `${name} must be a positive integer (got ${String(v)}).`);
  }
  return v;
}

function resolveSettings(o: TrainerOptions, matmul: MatmulBackend): TrainerSettings {
  const c = o.model.config;
  const n = o.train.length;
  const longest = Math.max(...o.train.map((s) => s.tokens.length - 1), ...(o.valid ?? []).map((s) => s.tokens.length - 1));
  const seqLen = o.seqLen === undefined ? longest : posInt(o.seqLen, 'seqLen');
  if (seqLen < longest) throw new TrainerError('BAD_OPTION', `seqLen ${seqLen} is shorter than the longest example (${longest} positions).`);
  if (seqLen > c.contextLength) throw new TrainerError('BAD_OPTION', `seqLen ${seqLen} exceeds the context length ${c.contextLength}.`);
  const epochs = o.epochs === undefined || o.epochs === 'auto' ? autoEpochs(n) : posInt(o.epochs, 'epochs');
  const batchSize = o.batchSize === undefined || o.batchSize === 'auto' ? autoBatchSize(n, c, seqLen) : posInt(o.batchSize, 'batchSize');
  const gradAccum = o.gradAccum === undefined ? 1 : posInt(o.gradAccum, 'gradAccum');
  const learningRate =
    o.learningRate === undefined || o.learningRate === 'auto' ? autoLearningRate(parameterCount(c), !!o.lora) : o.learningRate;
  if (!(learningRate > 0) || !Number.isFinite(learningRate)) {
    throw new TrainerError('BAD_OPTION', `learningRate must be a positive number or 'auto' (got ${String(o.learningRate)}).`);
  }
  const schedule = o.schedule ?? 'cosine';
  if (!['cosine', 'linear', 'constant'].includes(schedule)) {
    throw new TrainerError('BAD_OPTION', `schedule must be cosine, linear or constant (got ${String(schedule)}).`);
  }
  const stepsPerEpoch = Math.ceil(n / (batchSize * gradAccum));
  const totalSteps = stepsPerEpoch * epochs;
  const warmup = o.warmup;
  if (warmup !== undefined && (!(warmup >= 0) || !Number.isFinite(warmup))) throw new TrainerError('BAD_OPTION', `warmup must be ≥ 0 (got ${warmup}).`);
  const warmupSteps = Math.min(totalSteps, warmup === undefined ? autoWarmupSteps(totalSteps) : warmup < 1 ? Math.round(warmup * totalSteps) : Math.floor(warmup));
  const weightDecay = o.weightDecay ?? 0.01;
  if (!(weightDecay >= 0)) throw new TrainerError('BAD_OPTION', `weightDecay must be ≥ 0 (got ${weightDecay}).`);
  let lora: TrainerSettings['lora'] = null;
  if (o.lora) {
    const rank = posInt(o.lora.rank, 'lora.rank');
    const alpha = o.lora.alpha ?? rank;
    if (!(alpha > 0)) throw new TrainerError('BAD_OPTION', `lora.alpha must be > 0 (got ${alpha}).`);
    lora = { rank, alpha, targets: [...(o.lora.targets ?? DEFAULT_LORA_TARGETS)] };
  }
  const frozenBase = o.frozenBase ?? 'auto';
  if (!FROZEN_BASE_CHOICES.includes(frozenBase)) {
    throw new TrainerError('BAD_OPTION', `frozenBase must be 'auto', 'f32' or 'bf16' (got ${String(frozenBase)}).`);
  }
  if (frozenBase === 'bf16' && !lora) {
    throw new TrainerError('BAD_OPTION', "frozenBase 'bf16' applies to a LoRA run's frozen base; full fine-tuning trains every weight in F32.");
  }
  return {
    epochs,
    batchSize,
    learningRate,
    schedule,
    warmupSteps,
    gradAccum,
    weightDecay,
    adamBeta1: o.adamBeta1 ?? 0.9,
    adamBeta2: o.adamBeta2 ?? 0.999,
    adamEps: o.adamEps ?? 1e-8,
    maxGradNorm: maxGradNormOf(o.maxGradNorm),
    seed: o.seed ?? 42,
    threads: o.threads === undefined ? availableParallelism() : posInt(o.threads, 'threads'),
    seqLen,
    frozenBase: frozenBase === 'auto' ? resolveFrozenBase(lora !== null, matmul) : frozenBase,
    lora,
    stepsPerEpoch,
    totalSteps,
  };
}

/**
 * 5% of the steps, but at least 10 (at most a fifth of a short run): a model trained from random
 * weights at nodeai-tiny's rate of 3e-3 spiked (loss 3.4 → 8.8 for a step) with the 2-step
 * warmup of a 42-step run, and not with 8 or more.
 */
export function autoWarmupSteps(totalSteps: number): number {
  return Math.min(Math.round(0.2 * totalSteps), Math.max(Math.round(0.05 * totalSteps), 10));
}

/**
 * frozenBase 'auto': 'bf16' for a LoRA run whose matmul backend multiplies BF16 in BF16 (oneDNN on
 * a CPU with AVX-512 BF16 or AMX), where it is several times faster than F32 (one thread,
 * 1024×576·576×1536: 450–1160 GFLOP/s against 123–155; smol_lora's step 5.2–5.7 s against 10.4–11.8,
 * 2026-11-30) at the bounded loss difference of the golden-trajectory test; else 'f32'.
 */
export function resolveFrozenBase(lora: boolean, matmul: MatmulBackend): FrozenBase {
  return lora && matmul.kind === 'blas' && matmul.bf16 ? 'bf16' : 'f32';
}

/** The job event that says how a LoRA run holds its frozen float32 base matrices, and why; null for full fine-tuning. */
export function frozenBaseEvent(settings: TrainerSettings, matmul: MatmulBackend): string | null {
  if (!settings.lora) return null;
  if (settings.frozenBase === 'bf16') {
    return matmul.kind === 'blas' && matmul.bf16
      ? `Frozen base matrices given in float32 are held in BF16 (half the memory): ${matmul.name} multiplies them in BF16, several times faster than in F32.`
      : 'Frozen base matrices given in float32 are held in BF16 (half the memory), as asked.';
  }
  return matmul.kind === 'blas' && matmul.bf16
    ? 'Frozen base matrices given in float32 are held in F32, as asked.'
    : 'Frozen base matrices given in float32 are held in F32: no BF16 matmuls here (they need oneDNN, Debian libdnnl-dev, and a CPU with AVX-512 BF16 or AMX).';
}

/** The job event that says whether the layers' activations are kept or recomputed, and why. */
export function activationsEvent(settings: TrainerSettings, config: LlamaConfig, checkpointLayers: boolean): string {
  const mib = Math.round(layerActivationBytes(config, settings.batchSize, settings.seqLen) / 2 ** 20);
  const why = checkpointLayers === checkpointsByDefault(config, settings.batchSize, settings.seqLen) ? `checkpointing starts above ${CHECKPOINT_ABOVE_BYTES / 2 ** 20} MiB` : 'as asked';
  return checkpointLayers
    ? `Layer activations are recomputed in the backward pass, layer by layer (checkpointing; ${why}): kept, they would take about ${mib} MiB.`
    : `Layer activations are kept through the backward pass (about ${mib} MiB; ${why}).`;
}

/** The ggml type each base weight is held in when it is not F32: a stored weight's own, a float32 matrix's under frozenBase 'bf16'. */
function frozenWeightTypes(model: LlamaModel, frozenBase: FrozenBase): Map<string, number> {
  const types = new Map([...(model.stored ?? [])].map(([name, t]) => [name, t.type]));
  if (frozenBase === 'bf16') for (const [name, t] of model.tensors) if (t.shape.length >= 2) types.set(name, GGML_TYPE_BF16);
  return types;
}

function maxGradNormOf(v: number | undefined): number {
  if (v === undefined) return 1;
  if (!(v >= 0) || !Number.isFinite(v)) throw new TrainerError('BAD_OPTION', `maxGradNorm must be ≥ 0 (0 = no clipping), got ${v}.`);
  return v;
}

interface LoopState {
  step: number;
  epoch: number;
  cursor: number;
  permEpoch: number;
  perm: number[];
  rng: RngState;
}

interface CheckpointHeader {
  format: 'nodeai-trainer-checkpoint';
  version: 1;
  modelName: string;
  config: LlamaConfig;
  settings: TrainerSettings;
  state: LoopState;
  trainFingerprint: string;
}

export function createTrainer(options: TrainerOptions): Trainer {
  return new LocalTrainer(options, null);
}

export interface ResumeOptions {
  /** The same base model the run started from (for LoRA, its frozen weights come from here). */
  model: LlamaModel;
  /** The same training sequences, in the same order. */
  train: TrainingSequence[];
  valid?: TrainingSequence[];
  /** Default: the thread count the run started with (needed for bit-identical results). */
  threads?: number;
  /** Default 'auto', as for a new run; not stored in checkpoints (a run may resume on another machine). */
  device?: TrainingDevice | ComputeDevice;
  /** As TrainerOptions.padLoraRank; not stored in checkpoints, which hold the true rank either way. */
  padLoraRank?: boolean;
  /** Default 'auto', as for a new run; not stored in checkpoints either. */
  matmul?: TrainingMatmul;
}

/** Continues a run from a checkpoint written by saveCheckpoint(). */
export function resumeTrainer(path: string, options: ResumeOptions): Trainer {
  const file = readCheckpointFile<CheckpointHeader>(path);
  const h = file.header;
  if (h.format !== 'nodeai-trainer-checkpoint' || h.version !== 1) {
    throw new TrainerError('CHECKPOINT_CORRUPT', `${path} is not a trainer checkpoint this version can read.`);
  }
  if (JSON.stringify(h.config) !== JSON.stringify(options.model.config)) {
    throw new TrainerError('CHECKPOINT_MISMATCH', `Checkpoint ${path} was written for a model with a different config.`, {
      checkpoint: h.config,
      model: options.model.config,
    });
  }
  if (fingerprint(options.train) !== h.trainFingerprint) {
    throw new TrainerError(
      'CHECKPOINT_MISMATCH',
      `The training data differs from the data checkpoint ${path} was trained on; resume with the same file, or start a new run.`,
    );
  }
  const s = h.settings;
  return new LocalTrainer(
    {
      model: options.model,
      train: options.train,
      valid: options.valid,
      lora: s.lora ? { rank: s.lora.rank, alpha: s.lora.alpha, targets: s.lora.targets } : undefined,
      epochs: s.epochs,
      batchSize: s.batchSize,
      learningRate: s.learningRate,
      schedule: s.schedule,
      warmup: s.warmupSteps,
      gradAccum: s.gradAccum,
      weightDecay: s.weightDecay,
      adamBeta1: s.adamBeta1,
      adamBeta2: s.adamBeta2,
      adamEps: s.adamEps,
      // Checkpoints written before clipping existed carry no setting: they trained without it.
      maxGradNorm: s.maxGradNorm ?? 0,
      seed: s.seed,
      threads: options.threads ?? s.threads,
      seqLen: s.seqLen,
      frozenBase: s.frozenBase ?? 'f32',
      ...(options.device ? { device: options.device } : {}),
      ...(options.padLoraRank !== undefined ? { padLoraRank: options.padLoraRank } : {}),
      ...(options.matmul ? { matmul: options.matmul } : {}),
    },
    { state: h.state, tensors: file.tensors },
  );
}

class LocalTrainer implements Trainer {
  readonly settings: TrainerSettings;
  readonly device: ComputeDevice;
  readonly matmul: MatmulBackend;
  private readonly graph: LlamaGraph;
  get checkpointLayers(): boolean {
    return this.graph.checkpointLayers;
  }
  private readonly model: LlamaModel;
  private readonly train: TrainingSequence[];
  private readonly valid: TrainingSequence[];
  private readonly counted: number[];
  private readonly trainFingerprint: string;
  private rng: Rng;
  private state: Omit<LoopState, 'rng'>;
  /** Flat label index set in the previous fill per position (-1: none), so refilling is O(positions). */

  constructor(o: TrainerOptions, resume: { state: LoopState; tensors: CheckpointTensor[] } | null) {
    if (!o || !o.model) throw new TrainerError('BAD_OPTION', 'createTrainer needs a model.');
    validateLlamaConfig(o.model.config);
    const c = o.model.config;
    if (!Array.isArray(o.train) || o.train.length === 0) {
      throw new TrainerError('EMPTY_DATASET', 'The training set is empty: give at least one example.');
    }
    checkSequences(o.train, 'training', c);
    if (o.valid) checkSequences(o.valid, 'validation', c);
    this.counted = o.train.map(countedTokens);
    if (this.counted.every((n) => n === 0)) {
      throw new TrainerError(
        'EMPTY_DATASET',
        'No training example has a token to learn from (every loss mask is 0): check that examples have assistant messages with weight 1.',
      );
    }
    for (const { name, shape } of expectedTensors(c)) {
      const t = o.model.tensors.get(name) ?? o.model.stored?.get(name);
      if (!t) throw new TrainerError('MISSING_TENSOR', `Model ${o.model.name} lacks tensor ${name}.`);
      const size = shape.reduce((a, b) => a * b, 1);
      const values = 'data' in t ? t.data.length : size;
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]) || values !== size) {
        throw new TrainerError('BAD_TENSOR_SHAPE', `Tensor ${name} has shape [${t.shape}] (${values} values); expected [${shape}].`);
      }
    }
    this.device = typeof o.device === 'object' ? o.device : chooseComputeDevice(o.device ?? 'auto');
    this.matmul = chooseMatmul(o.matmul ?? 'auto', this.device);
    this.settings = resolveSettings(o, this.matmul);
    this.model = o.model;
    this.train = o.train;
    this.valid = o.valid ?? [];
    this.trainFingerprint = fingerprint(o.train);
    const s = this.settings;
    const loraTargets = s.lora ? loraTargetTensors(c, s.lora.targets) : [];
    this.graph = new LlamaGraph({
      config: c,
      batch: s.batchSize,
      seqLen: s.seqLen,
      threads: s.threads,
      device: this.device,
      matmul: this.matmul,
      ...(o.blasLimits ? { blasLimits: o.blasLimits } : {}),
      lora: s.lora ? { rank: s.lora.rank, alpha: s.lora.alpha, targets: loraTargets } : undefined,
      weightTypes: frozenWeightTypes(o.model, s.frozenBase ?? 'f32'),
      padLoraRank: o.padLoraRank,
      ...(o.checkpointLayers !== undefined ? { checkpointLayers: o.checkpointLayers } : {}),
    });
    try {
      this.graph.loadWeights(o.model);
      this.rng = new Rng(s.seed);
      if (s.lora) {
        // PEFT's default: A ~ U(-1/sqrt(n_in), 1/sqrt(n_in)), B = 0, so training starts at the base model.
        for (const target of loraTargets) {
          const names = loraTensorNames(target);
          const aTensor = this.graph.loraTensors.get(names.a)!;
          const a = new Float32Array(this.graph.g.nelements(aTensor));
          const bound = 1 / Math.sqrt(this.graph.g.shape(aTensor)[0]);
          for (let i = 0; i < a.length; i++) a[i] = (this.rng.next() * 2 - 1) * bound;
          this.graph.writeF32(aTensor, a);
          this.graph.zero(this.graph.loraTensors.get(names.b)!);
        }
      }
      this.state = { step: 0, epoch: 0, cursor: 0, permEpoch: -1, perm: [] };
      if (resume) this.restore(resume.state, resume.tensors);
    } catch (e) {
      this.graph.dispose();
      throw e;
    }
  }

  get stepsDone(): number {
    return this.state.step;
  }

  get epoch(): number {
    return this.state.epoch;
  }

  get done(): boolean {
    return this.state.step >= this.settings.totalSteps;
  }

  step(): TrainStepEvent {
    if (this.graph.disposed) throw new TrainerError('TRAINER_DISPOSED', 'The trainer was disposed; create a new one.');
    if (this.done) throw new TrainerError('TRAINING_FINISHED', `Training already finished (${this.settings.totalSteps} steps).`);
    const s = this.settings;
    const st = this.state;
    const t0 = performance.now();
    if (st.permEpoch !== st.epoch) {
      st.perm = this.rng.shuffle(Array.from({ length: this.train.length }, (_, i) => i));
      st.permEpoch = st.epoch;
      st.cursor = 0;
    }
    const chunk = st.perm.slice(st.cursor, st.cursor + s.batchSize * s.gradAccum);
    const stepCounted = chunk.reduce((a, i) => a + this.counted[i], 0);
    const lr = learningRateAt(s, st.step);
    this.setOptimizerParams(lr, st.step + 1);
    const g = this.graph;
    g.zeroGradients();
    const N = s.batchSize * s.seqLen;
    let lossSum = 0;
    let correct = 0;
    let tokens = 0;
    for (let m = 0; m * s.batchSize < chunk.length; m++) {
      const rows = chunk.slice(m * s.batchSize, (m + 1) * s.batchSize).map((i) => this.train[i]);
      const fill = this.fillBatch(rows);
      tokens += fill.tokens;
      if (fill.counted === 0) continue;
      // d(loss)/d(ggml loss) = N / counted-in-step turns ggml's mean over all N rows into the mean
      // over the counted tokens of the whole optimizer step.
      g.setLossGradScale(N / stepCounted);
      g.runTrain();
      lossSum += g.readF32(g.loss, 1)[0];
      correct += this.countCorrect(rows);
    }
    let gradNorm = Number.NaN;
    if (stepCounted > 0) {
      gradNorm = g.gradientNorm();
      if (s.maxGradNorm > 0 && gradNorm > s.maxGradNorm) g.scaleGradients(s.maxGradNorm / (gradNorm + 1e-6));
      // A NaN or infinite gradient would poison every weight it touches: that step is skipped
      // (its loss, reported as it is, says why).
      if (Number.isFinite(gradNorm)) g.runOptimizer();
    }
    st.cursor += chunk.length;
    st.step++;
    const epochOfStep = st.epoch + 1;
    if (st.cursor >= this.train.length) {
      st.epoch++;
      st.cursor = 0;
    }
    const seconds = (performance.now() - t0) / 1000;
    return {
      step: st.step,
      epoch: epochOfStep,
      totalSteps: s.totalSteps,
      trainLoss: stepCounted > 0 ? lossSum / stepCounted : Number.NaN,
      trainMeanTokenAccuracy: stepCounted > 0 ? correct / stepCounted : Number.NaN,
      gradNorm,
      tokens,
      trainedTokens: stepCounted,
      tokensPerSecond: seconds > 0 ? tokens / seconds : 0,
      lr,
    };
  }

  runEpoch(): TrainStepEvent[] {
    const out: TrainStepEvent[] = [];
    const epoch = this.state.epoch;
    while (!this.done && this.state.epoch === epoch) out.push(this.step());
    return out;
  }

  async *steps(): AsyncGenerator<TrainStepEvent> {
    while (!this.done) {
      yield this.step();
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  evaluate(sequences?: TrainingSequence[]): EvalResult {
    const seqs = sequences ?? this.valid;
    if (sequences) {
      checkSequences(sequences, 'evaluation', this.model.config);
      const longest = Math.max(0, ...sequences.map((q) => q.tokens.length - 1));
      if (longest > this.settings.seqLen) {
        throw new TrainerError(
          'SEQUENCE_TOO_LONG',
          `An evaluation example needs ${longest} positions but this trainer was built for ${this.settings.seqLen}; ` +
            'pass the validation set to createTrainer so the graph is sized for it.',
        );
      }
    }
    if (seqs.length === 0) throw new TrainerError('EMPTY_DATASET', 'There is no validation set to evaluate.');
    const g = this.graph;
    const B = this.settings.batchSize;
    let lossSum = 0;
    let counted = 0;
    let correct = 0;
    for (let i = 0; i < seqs.length; i += B) {
      const rows = seqs.slice(i, i + B);
      const fill = this.fillBatch(rows);
      if (fill.counted === 0) continue;
      g.runEval();
      lossSum += g.readF32(g.loss, 1)[0];
      counted += fill.counted;
      correct += this.countCorrect(rows);
    }
    return {
      validLoss: counted > 0 ? lossSum / counted : Number.NaN,
      validMeanTokenAccuracy: counted > 0 ? correct / counted : Number.NaN,
      tokens: counted,
    };
  }

  /** Writes inputs, label ids and the mask for up to batchSize rows; the rest is padding. */
  private fillBatch(rows: TrainingSequence[]): { tokens: number; counted: number } {
    const g = this.graph;
    const T = this.settings.seqLen;
    // Built here and copied in through ggml-backend, so the inputs may live in any device's memory.
    const tok = new Int32Array(this.settings.batchSize * T);
    const lab = new Int32Array(tok.length);
    const mask = new Float32Array(tok.length);
    let tokens = 0;
    let counted = 0;
    for (let r = 0; r < this.settings.batchSize; r++) {
      const seq = rows[r];
      const n = seq ? seq.tokens.length - 1 : 0;
      const base = r * T;
      for (let t = 0; t < T; t++) {
        const i = base + t;
        if (t < n) {
          tok[i] = seq.tokens[t];
          lab[i] = seq.tokens[t + 1];
          if (seq.lossMask[t + 1] === 1) {
            mask[i] = 1;
            counted++;
          } else mask[i] = 0;
        } else {
          tok[i] = 0;
          lab[i] = 0;
          mask[i] = 0;
        }
      }
      tokens += n;
    }
    g.writeI32(g.tokens, tok);
    g.writeI32(g.labelIds, lab);
    g.writeF32(g.mask, mask);
    return { tokens, counted };
  }

  private countCorrect(rows: TrainingSequence[]): number {
    const g = this.graph;
    const T = this.settings.seqLen;
    const am = g.readI32(g.argmax);
    let correct = 0;
    rows.forEach((seq, r) => {
      for (let t = 0; t + 1 < seq.tokens.length; t++) {
        if (seq.lossMask[t + 1] === 1 && am[r * T + t] === seq.tokens[t + 1]) correct++;
      }
    });
    return correct;
  }

  private setOptimizerParams(lr: number, iter: number): void {
    const s = this.settings;
    const b1h = 1 / (1 - Math.pow(s.adamBeta1, iter));
    const b2h = 1 / (1 - Math.pow(s.adamBeta2, iter));
    // ggml_opt_step_adamw params: alpha, beta1, beta2, eps, wd, beta1h, beta2h (ggml-cpu/ops.cpp).
    this.graph.writeF32(this.graph.optParamsDecay, [lr, s.adamBeta1, s.adamBeta2, s.adamEps, s.weightDecay, b1h, b2h]);
    this.graph.writeF32(this.graph.optParamsNoDecay, [lr, s.adamBeta1, s.adamBeta2, s.adamEps, 0, b1h, b2h]);
  }

  exportModel(): LlamaModel {
    const targets = new Set(this.loraTargets());
    const tensors = new Map<string, NamedTensor>();
    for (const { name, shape } of expectedTensors(this.model.config)) {
      const data = this.baseWeightF32(name);
      if (targets.has(name)) this.addLoraDelta(name, data);
      tensors.set(name, { name, shape: [...shape], data });
    }
    return { ...this.modelInfo(), tensors };
  }

  exportMerged(): ModelToWrite {
    const g = this.graph;
    const targets = new Set(this.loraTargets());
    const targetTypes = new Set<GgmlFloatType>();
    const weights: AnyTensorToWrite[] = expectedTensors(this.model.config).map(({ name, shape }) => {
      const callerF32 = this.callerBaseF32(name);
      const type = callerF32 ? GGML_TYPE_F32 : g.g.type(g.weights.get(name)!);
      if (targets.has(name)) {
        // A merged weight keeps the base's float type; a quantized one becomes F16 (requantizing
        // it here would lose the update; `nodeai models export --quant` quantizes the whole file).
        const floatType = FLOAT_TYPE_NAMES[type] ?? 'F16';
        targetTypes.add(floatType);
        return {
          name,
          shape: [...shape],
          type: floatType,
          data: () => {
            const w = this.baseWeightF32(name);
            this.addLoraDelta(name, w);
            return w;
          },
        };
      }
      if (callerF32) return { name, shape: [...shape], type: 'F32', data: callerF32 };
      // Untouched (frozen or fully trained) weights go out as the graph holds them, byte for byte.
      return { name, shape: [...shape], ggmlType: type, bytes: () => g.weightBytes(name) };
    });
    const fileType = targetTypes.has('F16') ? LLAMA_FTYPE_MOSTLY_F16 : targetTypes.has('BF16') ? LLAMA_FTYPE_MOSTLY_BF16 : LLAMA_FTYPE_ALL_F32;
    return { ...this.modelInfo(), weights, fileType };
  }

  private modelInfo(): Omit<LlamaModel, 'tensors'> {
    return {
      name: this.model.name,
      config: { ...this.model.config },
      tokenizer: this.model.tokenizer,
      ...(this.model.extraMetadata ? { extraMetadata: this.model.extraMetadata } : {}),
    };
  }

  /**
   * A LoRA run never changes its base: the caller's float32 values are exact where the graph may
   * hold them rounded (frozenBase 'bf16'). Undefined for a trained weight or one read as stored.
   */
  private callerBaseF32(name: string): Float32Array | undefined {
    return this.settings.lora ? this.model.tensors.get(name)?.data : undefined;
  }

  /** A base weight's float32 values to export (a copy). */
  private baseWeightF32(name: string): Float32Array {
    return this.callerBaseF32(name)?.slice() ?? this.graph.weightF32(name);
  }

  private loraTargets(): string[] {
    const lora = this.settings.lora;
    return lora ? loraTargetTensors(this.model.config, lora.targets) : [];
  }

  /** w += (alpha / r)·B·A for a LoRA target, in place (w is the target's values, [nOut][nIn] row-major). */
  private addLoraDelta(target: string, w: Float32Array): void {
    const g = this.graph;
    const lora = this.settings.lora!;
    const scale = lora.alpha / lora.rank;
    const r = lora.rank;
    const [nIn, nOut] = g.g.shape(g.weights.get(target)!);
    const names = loraTensorNames(target);
    const A = g.readF32(g.loraTensors.get(names.a)!);
    const Bm = g.readF32(g.loraTensors.get(names.b)!);
    const row = new Float64Array(nIn);
    for (let o = 0; o < nOut; o++) {
      row.fill(0);
      for (let k = 0; k < r; k++) {
        const bk = Bm[o * r + k];
        if (bk === 0) continue;
        for (let i = 0; i < nIn; i++) row[i] += bk * A[k * nIn + i];
      }
      for (let i = 0; i < nIn; i++) w[o * nIn + i] += scale * row[i];
    }
  }

  exportAdapter(): LoraAdapter {
    const lora = this.settings.lora;
    if (!lora) throw new TrainerError('BAD_OPTION', 'This is a full fine-tuning run; it has no LoRA adapter to export (use exportModel).');
    const g = this.graph;
    const targets = loraTargetTensors(this.model.config, lora.targets);
    const tensors = new Map<string, NamedTensor>();
    for (const target of targets) {
      for (const name of Object.values(loraTensorNames(target))) {
        const t = g.loraTensors.get(name)!;
        tensors.set(name, { name, shape: g.g.shape(t).slice(0, 2), data: g.readF32(t) });
      }
    }
    return { rank: lora.rank, alpha: lora.alpha, targets, tensors };
  }

  saveCheckpoint(path: string): CheckpointInfo {
    const g = this.graph;
    // Copied out of ggml chunk by chunk as they are written.
    const tensors: CheckpointTensorToWrite[] = checkpointedTensors(g.trainables).map(({ name, shape, tensor }) => ({
      name,
      shape,
      data: (into, from) => g.readF32Into(tensor, into, from),
    }));
    const header: CheckpointHeader = {
      format: 'nodeai-trainer-checkpoint',
      version: 1,
      modelName: this.model.name,
      config: this.model.config,
      settings: this.settings,
      state: { ...this.state, perm: [...this.state.perm], rng: this.rng.state() },
      trainFingerprint: this.trainFingerprint,
    };
    const bytes = writeCheckpointFile(path, { header, tensors });
    return { path, bytes, step: this.state.step, epoch: this.state.epoch };
  }

  private restore(state: LoopState, tensors: CheckpointTensor[]): void {
    const g = this.graph;
    const byName = new Map(tensors.map((t) => [t.name, t]));
    for (const { name, tensor } of checkpointedTensors(g.trainables)) {
      const src = byName.get(name);
      if (!src || src.data.length !== g.g.nelements(tensor)) {
        throw new TrainerError('CHECKPOINT_MISMATCH', `Checkpoint lacks tensor ${name} or its size differs.`);
      }
      g.writeF32(tensor, src.data);
    }
    this.rng = new Rng(state.rng);
    this.state = { step: state.step, epoch: state.epoch, cursor: state.cursor, permEpoch: state.permEpoch, perm: [...state.perm] };
  }

  dispose(): void {
    this.graph.dispose();
  }
}

/** What a checkpoint holds of each trainable tensor, by name: its values and both AdamW moments. */
function checkpointedTensors(trainables: readonly TrainableTensor[]): Array<{ name: string; shape: number[]; tensor: GgmlTensor }> {
  return trainables.flatMap((t) => [
    { name: t.name, shape: t.shape, tensor: t.tensor },
    { name: `${t.name}#adam_m`, shape: t.shape, tensor: t.m },
    { name: `${t.name}#adam_v`, shape: t.shape, tensor: t.v },
  ]);
}
