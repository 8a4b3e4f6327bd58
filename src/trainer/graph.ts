// The decoder as one ggml graph with a fixed [seqLen, batch] shape, built once per
// trainer and reused every step: forward (loss + argmax), backward into persistent gradient
// accumulators, and a separate AdamW graph, so gradient accumulation is "compute the train graph
// k times, then the optimizer graph once".
//
// Everything matches what llama.cpp computes for the architecture (so a model trained here behaves
// the same in node-llama-cpp): the shared decoder is Llama's — RMSNorm with the config's eps, RoPE
// with the config's freq base, causal attention, a gated FFN, output norm, and `token_embd.weight`
// as the head when the embeddings are tied — and architectures/*.ts say what differs (Q/K/V biases,
// Q/K norms, RoPE mode, post-norms, GEGLU, embedding and attention scales, sliding windows).
// Grouped-query attention relies on ggml_mul_mat broadcasting, which maps query head h to kv head
// h / (H/Hkv) — llama.cpp's own mapping.
import { architectureSpec, isArchitectureName } from './architectures/index.js';
import { encodeFloatValues, ggmlTypeName, isFloatTensorType, readStoredBytes, type GgmlFloatType } from './gguf.js';
import {
  GGML_TYPE_BF16,
  GGML_TYPE_F32,
  GGML_TYPE_I32,
  loadGgml,
  type GgmlApi,
  type GgmlBackend,
  type GgmlBuffer,
  type GgmlContext,
  type GgmlGallocr,
  type GgmlGraph,
  type GgmlSched,
  type GgmlTensor,
} from './ggml/lib.js';
import { chooseComputeDevice, type ComputeDevice } from './ggml/device.js';
import type { BlasLimits, MatmulBackend } from './ggml/blas.js';
import { expectedTensors, headDimOf, loraTensorNames, tensorNames, type LlamaConfig, type LlamaModel } from './llama-model.js';
import { TrainerError } from './train-errors.js';

/** Module kinds LoRA can target; each names a family of weights (`blk.N.<kind>.weight`, or `output.weight`). */
export const LORA_TARGET_MODULES = [
  'attn_q',
  'attn_k',
  'attn_v',
  'attn_output',
  'ffn_gate',
  'ffn_up',
  'ffn_down',
  'output',
] as const;
export type LoraTargetModule = (typeof LORA_TARGET_MODULES)[number];

export interface GraphLoraSpec {
  rank: number;
  alpha: number;
  /** Full base tensor names, e.g. `blk.0.attn_q.weight`. */
  targets: string[];
}

export interface LlamaGraphOptions {
  config: LlamaConfig;
  batch: number;
  seqLen: number;
  /** With LoRA only the adapters are trainable; without, every model tensor is. */
  lora?: GraphLoraSpec;
  threads: number;
  /** Where the graphs compute (trainer/ggml/device.ts's choice); absent: the CPU. */
  device?: ComputeDevice;
  /**
   * Who computes the large matmuls on the CPU (trainer/ggml/blas.ts's choice); absent: ggml-cpu.
   * With the BLAS backend the graphs run through ggml_backend_sched over [BLAS, CPU]: the products
   * its library takes (scripts/ggml-blas/matmul-limits.cpp says which) and, on oneDNN, the
   * element-wise ops of row-ops.cpp go to it, every other op to ggml-cpu.
   */
  matmul?: MatmulBackend;
  /**
   * With BLAS-backend matmuls: which matmuls stay on ggml-cpu (default {@link BLAS_MAX_CONVERTED_BYTES}
   * and {@link BLAS_MIN_MULTIPLY_ADDS}); tests lower them to put a small model's matmuls on BLAS.
   */
  blasLimits?: Partial<BlasLimits>;
  /**
   * ggml type of each base weight as its file stores it (ggml_type ids; missing: F32). Only a
   * frozen weight (a LoRA run) may be other than F32: it stays in that type in ggml memory.
   */
  weightTypes?: ReadonlyMap<string, number>;
  /**
   * Keep ggml's own backward (out_prod) instead of rewriting it into mul_mat; slower, and only
   * there so tests can check the rewritten gradients against ggml's.
   */
  plainAutodiff?: boolean;
  /**
   * Pad the LoRA rank to {@link loraPaddedRank} inside the graph (default true): the same sums
   * plus zero rows, so ggml's tinyBLAS GEMM takes the B·u matmuls (which sum over the rank)
   * instead of a dot product per output. It saves a few per cent of a step: SmolLM2-135M's shapes,
   * 6 layers, rank 8, one thread, padded and plain steps interleaved (2026-11-30), medians 7.43 →
   * 7.06 s and 7.83 → 7.66 s CPU per step. The LoRA tensors, their gradients and the AdamW moments
   * keep the true rank, so adapters and checkpoints do too, and a run written either way resumes
   * either way. It moves a run only by float rounding (another summation order); false is for
   * tests that compare the padded graph with the plain one.
   */
  padLoraRank?: boolean;
  /**
   * Compute the loss over the dense logits with ggml's cross-entropy even where it could be chunked;
   * bigger and slower, only there so tests can check the chunked loss and gradients against ggml's.
   */
  denseHead?: boolean;
  /**
   * Keep only each layer's input through the forward and recompute the layer just before its
   * backward: one layer's activations alive instead of all of them, for one more forward pass.
   * Default: on when the layers' activations would take more than CHECKPOINT_ABOVE_BYTES
   * ({@link checkpointsByDefault}).
   */
  checkpointLayers?: boolean;
  /** Tokens per chunk of the chunked cross-entropy (default: as many as fit HEAD_CHUNK_BYTES of logits). */
  headChunkTokens?: number;
}

/** Where one matmul of a graph ran (LlamaGraph.matmulPlacement). */
export interface MatmulPlacement {
  /** ggml_op_name: MUL_MAT or OUT_PROD. */
  op: string;
  /** ggml_type and element count of src0 (the weight, for a projection). */
  weightType: number;
  weightElements: number;
  /** The backend's name: BLAS or CPU. */
  backend: string;
}

/** Trainable tensor plus its optimizer state. */
export interface TrainableTensor {
  name: string;
  shape: number[];
  tensor: GgmlTensor;
  gradAcc: GgmlTensor;
  m: GgmlTensor;
  v: GgmlTensor;
  decay: boolean;
}

/** The weight the output head multiplies by: the token embeddings when they are tied. */
function headWeightName(c: LlamaConfig): string {
  return c.tiedEmbeddings ? tensorNames.tokenEmbd : tensorNames.output;
}

/** Throws UNSUPPORTED_CONFIG for configurations the graph cannot express. */
export function validateLlamaConfig(c: LlamaConfig): void {
  const bad = (msg: string) => {
    throw new TrainerError('UNSUPPORTED_CONFIG', `Unsupported model config: ${msg}`, { config: c });
  };
  const posInt = (v: number, name: string) => {
    if (!Number.isInteger(v) || v <= 0) bad(`${name} must be a positive integer (got ${v})`);
  };
  posInt(c.vocabSize, 'vocabSize');
  posInt(c.contextLength, 'contextLength');
  posInt(c.embeddingLength, 'embeddingLength');
  posInt(c.blockCount, 'blockCount');
  posInt(c.headCount, 'headCount');
  posInt(c.headCountKv, 'headCountKv');
  posInt(c.feedForwardLength, 'feedForwardLength');
  if (c.architecture !== undefined && !isArchitectureName(c.architecture)) bad(`architecture '${String(c.architecture)}' is not one the trainer builds`);
  if (c.headDim !== undefined) posInt(c.headDim, 'headDim');
  else if (c.embeddingLength % c.headCount !== 0) {
    bad(`embeddingLength ${c.embeddingLength} is not a multiple of headCount ${c.headCount}`);
  }
  if (c.headCount % c.headCountKv !== 0) bad(`headCount ${c.headCount} is not a multiple of headCountKv ${c.headCountKv}`);
  if (headDimOf(c) % 2 !== 0) bad(`head dimension ${headDimOf(c)} must be even for RoPE`);
  if (c.slidingWindow !== undefined) posInt(c.slidingWindow, 'slidingWindow');
  if (c.ropeScaleLinear !== undefined && !(c.ropeScaleLinear > 0)) bad(`ropeScaleLinear must be > 0 (got ${c.ropeScaleLinear})`);
  if (!(c.rmsNormEps > 0)) bad(`rmsNormEps must be > 0 (got ${c.rmsNormEps})`);
  if (!(c.ropeFreqBase > 0)) bad(`ropeFreqBase must be > 0 (got ${c.ropeFreqBase})`);
}

/** Base tensor names a LoRA over these modules adapts, in model order. */
export function loraTargetTensors(c: LlamaConfig, modules: readonly string[]): string[] {
  for (const m of modules) {
    if (!(LORA_TARGET_MODULES as readonly string[]).includes(m)) {
      throw new TrainerError(
        'BAD_OPTION',
        `Unknown LoRA target module "${m}"; use some of ${LORA_TARGET_MODULES.join(', ')}.`,
      );
    }
  }
  if (modules.length === 0) throw new TrainerError('BAD_OPTION', 'LoRA needs at least one target module.');
  const out: string[] = [];
  for (const { name } of expectedTensors(c)) {
    const m = /^blk\.\d+\.([a-z_]+)\.weight$/.exec(name);
    const kind = m ? m[1] : name === tensorNames.output ? 'output' : undefined;
    if (kind && modules.includes(kind)) out.push(name);
  }
  if (modules.includes('output') && c.tiedEmbeddings) {
    throw new TrainerError('BAD_OPTION', 'LoRA target "output" needs an untied output head (this model ties it to token_embd).');
  }
  return out;
}

/**
 * The type a frozen weight's transpose is kept in for the backward mul_mat (dx = Wᵀ·dy): its own
 * type when it is a float (a lossless copy), else BF16. bench/frozen-backward.ts, dx for W
 * [1024, 4096] and 128 tokens on one Sapphire Rapids core (ggml-cpu-sapphirerapids, busy machine):
 * mul_mat with a Wᵀ copy in BF16 26 ms, Q8_0 30 ms, F16 50 ms, F32 62 ms; ggml's own
 * out_prod(W, dyᵀ) on the weight as stored: Q4_K 436 ms, Q8_0 339 ms, F16 2730 ms, F32 310 ms.
 * On AVX2 only (ggml-cpu-haswell, same machine) the copies run alike (BF16 185 ms, F16 165 ms,
 * Q8_0 116 ms) and out_prod stays 4-25× slower. BF16 is the fastest where the CPU has BF16 dot
 * products, a tie elsewhere; it keeps dy at 8 mantissa bits where a Q8_0 copy would quantize dy
 * per 32-block, and costs 2 bytes per weight once, against 4 (F32) three times before.
 */
export function transposedCopyType(type: number): number {
  return isFloatTensorType(type) ? type : GGML_TYPE_BF16;
}

/**
 * Bytes of logits one chunk of the cross-entropy holds ([vocab, tokens per chunk] F32): the loss
 * and its gradients are computed a few tokens at a time, so the full [vocab, tokens] logits never
 * exist (0.6 GB per 1,000 tokens of a 150k vocabulary), nor a one-hot copy of the labels.
 */
const HEAD_CHUNK_BYTES = 32 << 20;
/** Leaves added to a scratch graph scheduled on a device (computeInScratch says why). */
const SCRATCH_SPARE_LEAVES = 8;
/** Bytes a stored weight is copied from its file to ggml memory in (loadWeights). */
const STORED_COPY_CHUNK_BYTES = 32 << 20;
/** The values writeDenseLabels writes into one-hot targets. */
const ONE_HOT_ON = Float32Array.of(1);
const ONE_HOT_OFF = Float32Array.of(0);

/**
 * The rank LoRA's B·(A·x) is computed at: the rank rounded up to a multiple of 16, the K step
 * ggml's tinyBLAS F32 kernel needs (ggml-cpu llamafile sgemm), with zeros in the added rows.
 */
export function loraPaddedRank(rank: number): number {
  return Math.ceil(rank / 16) * 16;
}

/**
 * The BLAS backend converts a non-F32 weight to F32 on every matmul, into a work buffer it keeps
 * as large as the largest weight so converted: a tied head of 49152 × 576 (SmolLM2) would hold
 * 113 MB, Qwen2.5-0.5B's 151936 × 896 in Q8_0 545 MB, and convert that much per head chunk. Weights
 * whose F32 copy is larger than this keep their matmuls on ggml-cpu's kernels for their own type
 * (the BLAS backend declines them: scripts/ggml-blas/matmul-limits.cpp).
 */
export const BLAS_MAX_CONVERTED_BYTES = 32 << 20;

/**
 * Matmuls of fewer multiply-adds than this stay on ggml-cpu: every switch between the BLAS and CPU
 * backends starts and joins ggml's worker threads, which costs more than a small product (a
 * d_model-64 model at 2 threads on a loaded machine: 4.5× the wall time with all of them on BLAS).
 * 2^23 is ~0.3 ms of sgemm at 30 GFLOP/s; SmolLM2's projections at 1024 tokens are 40–100× that.
 */
export const BLAS_MIN_MULTIPLY_ADDS = 1 << 23;

/**
 * Layer checkpointing is on by default when the layers' activations would take more than this.
 * It trades one more forward pass for the memory: measured 2026-11-30 (2 cores, oneDNN matmuls),
 * smol_lora's compute buffer 1,349 → 98 MiB for +14 % pass time, but on the reference config's tiny
 * model (4 × 128, ctx 128 × 8) 48 → 11 MiB for +15–20 % step time — there the memory saved is less
 * than the Node.js runtime's own, and the time is not worth it.
 */
export const CHECKPOINT_ABOVE_BYTES = 256 * 2 ** 20;

/**
 * About how many bytes a training pass keeps of the layers' activations without checkpointing:
 * per token 5 hidden vectors and 3 feed-forward ones, per sequence and head one score matrix, in
 * F32. Fit to the compute buffers measured with and without checkpointing (2026-11-30): reference
 * config 37 MiB (this: 36), smol_lora 1,251 (1,148), Qwen2.5-0.5B's shapes at 512 × 4 5,000 (4,925).
 */
export function layerActivationBytes(config: LlamaConfig, batch: number, seqLen: number): number {
  const tokens = batch * seqLen;
  const perLayer = 5 * tokens * config.embeddingLength + 3 * tokens * config.feedForwardLength + batch * config.headCount * seqLen * seqLen;
  return 4 * config.blockCount * perLayer;
}

/** Whether a graph of these shapes checkpoints its layers unless told: when their activations are large. */
export function checkpointsByDefault(config: LlamaConfig, batch: number, seqLen: number): boolean {
  return layerActivationBytes(config, batch, seqLen) > CHECKPOINT_ABOVE_BYTES;
}

const GRAPH_SIZE_BASE = 4096;
const GRAPH_SIZE_PER_LAYER = 1024;

/**
 * The no_alloc ggml contexts a graph's tensors are described in. Each static one gets its own
 * backend buffer, allocated once; the compute context's tensors (activations, gradients) get their
 * memory from the graph allocator, which lets tensors whose lifetimes do not overlap share it.
 */
interface GraphContexts {
  /** Frozen base weights and their transposed copies: written once, never changed. */
  frozen: GgmlContext;
  /** Trainable tensors, their gradient accumulators, the AdamW moments and the AdamW parameters. */
  params: GgmlContext;
  /** Tokens, positions, labels, masks: written by the trainer before each compute. */
  inputs: GgmlContext;
  /** Every op of the graphs, and the graphs themselves. */
  compute: GgmlContext;
}

/**
 * Owns the ggml contexts, backend buffers, graph allocators and graphs of one decoder. Not
 * thread-safe; call dispose() to free the native memory.
 */
export class LlamaGraph {
  readonly g: GgmlApi;
  readonly config: LlamaConfig;
  readonly batch: number;
  readonly seqLen: number;
  readonly threads: number;
  readonly device: ComputeDevice;
  readonly matmul: MatmulBackend;
  /** With BLAS-backend matmuls: which matmuls the BLAS backend leaves to ggml-cpu. */
  private readonly blasLimits: BlasLimits;
  readonly lora?: GraphLoraSpec;
  private readonly plainAutodiff: boolean;
  private readonly padLoraRank: boolean;
  private readonly headChunkTokens: number;
  private readonly weightTypes: ReadonlyMap<string, number>;
  /** Base model tensors (frozen under LoRA). */
  readonly weights = new Map<string, GgmlTensor>();
  /** LoRA tensors by adapter tensor name (`X.weight.lora_a` / `.lora_b`). */
  readonly loraTensors = new Map<string, GgmlTensor>();
  readonly trainables: TrainableTensor[] = [];
  /** Native memory for tensor data: the static buffers plus the graph allocator's compute buffer. */
  readonly memBytes: number;
  /** Bytes of the compute buffer the graph allocator placed activations and gradients in. */
  readonly computeBytes: number;

  /** I32 [seqLen*batch], row-major by sequence: index b*seqLen + t. */
  tokens!: GgmlTensor;
  positions!: GgmlTensor;
  /** I32 [1, seqLen*batch]: the next token at each position (any valid id where the mask is 0). */
  labelIds!: GgmlTensor;
  /** F32 [1, seqLen*batch]: 1 where the loss counts. */
  mask!: GgmlTensor;
  /** I32 [seqLen*batch]: the most likely next token at each position, after a compute. */
  argmax!: GgmlTensor;
  /** F32 [1]: the summed cross-entropy of the counted positions over seqLen*batch, after a compute. */
  loss!: GgmlTensor;
  /**
   * Whether the loss is computed in token chunks from label ids (whether the head is frozen, fully
   * trained or LoRA-adapted), or over the dense [vocab, tokens] logits by ggml's cross-entropy
   * (`denseHead`, which the tests compare against).
   */
  readonly chunkedHead: boolean;
  optParamsDecay!: GgmlTensor;
  optParamsNoDecay!: GgmlTensor;

  private ctxs: GraphContexts | null = null;
  private backend: GgmlBackend | null = null;
  /**
   * With BLAS-backend matmuls: the BLAS backend, and per graph a scheduler that splits it between BLAS
   * and `backend` and keeps its placement: a tensor placed once keeps its address (ggml's graph
   * allocator only places tensors that have none), so one scheduler switching graphs would plan
   * the second graph around the first one's addresses and overwrite live tensors.
   */
  private blasBackend: GgmlBackend | null = null;
  /**
   * On a device other than the CPU (CUDA): a CPU backend the scheduler runs the ops the device
   * lacks on, copying their inputs out of and their results back into device memory.
   */
  private cpuFallback: GgmlBackend | null = null;
  private readonly scheds = new Map<GgmlGraph, GgmlSched>();
  /** The scale setLossGradScale last set, written into the d(loss) inputs just before each training pass. */
  private lossGradScale = 1;
  private buffers: GgmlBuffer[] = [];
  private gallocs: GgmlGallocr[] = [];
  private evalGraph!: GgmlGraph;
  private trainGraph: GgmlGraph | null = null;
  private optGraph: GgmlGraph | null = null;
  /** Frozen weights and the tensors their transposes are copied into once, before the first training pass. */
  private transposeJobs: Array<{ src: GgmlTensor; dst: GgmlTensor }> = [];
  private prepared = false;
  /** d(loss)/d(loss) of each loss autodiff starts from: the head's, and each recomputed layer's surrogate. */
  private readonly lossGrads: GgmlTensor[] = [];
  /** Gradient accumulators of the checkpointed layer inputs, zeroed before each training pass. */
  private readonly checkpointGrads: GgmlTensor[] = [];
  /** Whether each layer is recomputed just before its backward (LlamaGraphOptions.checkpointLayers). */
  readonly checkpointLayers: boolean;
  /** Chunked head: F32 [1], d(reported loss)/d(loss) divided by the token count; the final normed hidden state. */
  private lossScale: GgmlTensor | null = null;
  private hidden!: GgmlTensor;
  private head!: GgmlTensor;
  /** A LoRA adapter on the head (an untied `output` target): its A [D, r], B [r, V], alpha/r, and the rank padding of the products. */
  private headAdapter: { a: GgmlTensor; b: GgmlTensor; scale: number; padRank: (t: GgmlTensor) => GgmlTensor } | null = null;
  /** Dense head: the logits, and the one-hot targets written from labelIds before each compute. */
  private logits: GgmlTensor | null = null;
  private denseLabels: GgmlTensor | null = null;
  private denseLabelSet: Int32Array | null = null;
  /** Input tensors holding a constant, written once their buffer exists. */
  private readonly constants: Array<{ tensor: GgmlTensor; value: number }> = [];
  /** Transposed copies of frozen weights by the weight's address. */
  private readonly frozenTransposes = new Map<bigint, GgmlTensor>();

  constructor(opts: LlamaGraphOptions) {
    validateLlamaConfig(opts.config);
    if (!Number.isInteger(opts.batch) || opts.batch <= 0) {
      throw new TrainerError('BAD_OPTION', `batch must be a positive integer (got ${opts.batch})`);
    }
    if (!Number.isInteger(opts.seqLen) || opts.seqLen <= 0 || opts.seqLen > opts.config.contextLength) {
      throw new TrainerError(
        'BAD_OPTION',
        `seqLen must be an integer in 1..${opts.config.contextLength} (the model's context), got ${opts.seqLen}`,
      );
    }
    if (opts.lora) {
      const { rank, alpha, targets } = opts.lora;
      if (!Number.isInteger(rank) || rank <= 0) throw new TrainerError('BAD_OPTION', `LoRA rank must be a positive integer (got ${rank})`);
      if (!(alpha > 0)) throw new TrainerError('BAD_OPTION', `LoRA alpha must be > 0 (got ${alpha})`);
      if (targets.length === 0) throw new TrainerError('BAD_OPTION', 'LoRA needs at least one target tensor.');
      const known = new Set(expectedTensors(opts.config).map((t) => t.name));
      for (const t of targets) {
        if (!known.has(t) || !t.endsWith('.weight') || t.endsWith('norm.weight')) {
          throw new TrainerError('BAD_OPTION', `LoRA target "${t}" is not a projection weight of this model.`);
        }
      }
    }
    for (const [name, type] of opts.weightTypes ?? []) {
      if (type !== GGML_TYPE_F32 && opts.plainAutodiff) {
        // ggml-cpu's out_prod has no BF16 kernel and aborts the process on one.
        throw new TrainerError('BAD_OPTION', `plainAutodiff needs F32 weights, but ${name} is ${ggmlTypeName(type)}.`);
      }
      if (type !== GGML_TYPE_F32 && !opts.lora) {
        throw new TrainerError(
          'BAD_OPTION',
          `Full fine-tuning trains every weight in F32, but ${name} is ${ggmlTypeName(type)}: train a LoRA adapter on this base, or use an F32/F16/BF16 file.`,
        );
      }
    }
    this.g = loadGgml();
    this.config = opts.config;
    this.weightTypes = opts.weightTypes ?? new Map();
    this.batch = opts.batch;
    this.seqLen = opts.seqLen;
    this.threads = Math.max(1, Math.floor(opts.threads));
    this.device = opts.device ?? chooseComputeDevice('cpu');
    this.matmul = opts.matmul ?? { kind: 'ggml', reason: 'ggml-cpu unless told otherwise' };
    if (this.matmul.kind === 'blas' && this.device.kind !== 'cpu') {
      throw new TrainerError('BAD_OPTION', `The BLAS backend computes matmuls on the CPU, but the graph computes on ${this.device.name}.`);
    }
    this.blasLimits = {
      maxConvertedBytes: opts.blasLimits?.maxConvertedBytes ?? BLAS_MAX_CONVERTED_BYTES,
      minMultiplyAdds: opts.blasLimits?.minMultiplyAdds ?? BLAS_MIN_MULTIPLY_ADDS,
    };
    this.lora = opts.lora;
    this.plainAutodiff = opts.plainAutodiff ?? false;
    this.padLoraRank = opts.padLoraRank ?? true;
    this.checkpointLayers = opts.checkpointLayers ?? checkpointsByDefault(opts.config, opts.batch, opts.seqLen);
    this.chunkedHead = !opts.denseHead;
    this.headChunkTokens = opts.headChunkTokens ?? Math.max(1, Math.floor(HEAD_CHUNK_BYTES / (4 * opts.config.vocabSize)));

    const graphSize = GRAPH_SIZE_BASE + GRAPH_SIZE_PER_LAYER * opts.config.blockCount * (opts.lora ? 2 : 1);
    const nWeights = expectedTensors(opts.config).length;
    // no_alloc contexts hold only tensor and graph descriptions; the data lives in backend buffers.
    const meta = (tensors: number, graphs = 0) => tensors * this.g.tensorOverhead() + graphs * this.g.graphOverheadCustom(graphSize, true);
    const init = (bytes: number): GgmlContext => {
      const ctx = this.g.init(bytes, true);
      if (!ctx) throw new TrainerError('GGML_COMPUTE_FAILED', 'ggml_init failed (out of memory?)');
      return ctx;
    };
    this.backend = this.device.createBackend(this.threads);
    try {
      this.ctxs = {
        frozen: init(meta(2 * nWeights + 16)),
        params: init(meta(4 * (nWeights + 14 * opts.config.blockCount + 16) + 16)),
        inputs: init(meta(64 + 2 * (opts.config.blockCount + 1) + 4 * LORA_TARGET_MODULES.length)),
        compute: init(meta(200_000, 6)),
      };
      this.define(this.ctxs, graphSize);
      const weightBuffers: GgmlBuffer[] = [];
      for (const ctx of [this.ctxs.frozen, this.ctxs.params, this.ctxs.inputs]) {
        const buffer = this.g.allocCtxTensors(ctx, this.backend);
        if (!buffer) continue;
        this.buffers.push(buffer);
        if (ctx !== this.ctxs.inputs) weightBuffers.push(buffer);
      }
      // The backends a scheduler splits each graph over, first choice first; the CPU's last.
      let schedBackends: GgmlBackend[] | null = null;
      if (this.matmul.kind === 'blas') {
        this.blasBackend = this.matmul.createBackend(this.threads, this.blasLimits);
        schedBackends = [this.blasBackend, this.backend];
      } else if (this.device.kind !== 'cpu') {
        this.cpuFallback = this.g.cpuBackend(this.threads);
        schedBackends = [this.backend, this.cpuFallback];
      }
      if (schedBackends) {
        // Ops that read a weight (frozen or trained) go to the first backend that can run them (the
        // scheduler's rule for weight buffers), so BLAS gets every large matmul by a weight or its
        // transpose, and AdamW, which BLAS lacks, the CPU; on a GPU, every op it has.
        for (const buffer of weightBuffers) this.g.bufferSetUsageWeights(buffer);
        // The train graph is placed first: the eval graph is its forward prefix, whose tensors then
        // keep the train graph's addresses, valid for the prefix as with the graph allocator below.
        let bytes = 0;
        // On a device, evaluation runs the train graph (runEval says why).
        for (const gr of this.cpuFallback ? [this.trainGraph!, this.optGraph!] : [this.trainGraph!, this.optGraph!, this.evalGraph]) {
          this.assertDeviceRuns(gr);
          // Nodes and leafs of the graph, which the scheduler's hash set must hold together.
          const sched = this.g.schedNew(schedBackends, 2 * graphSize);
          this.scheds.set(gr, sched);
          // A split points each op the scheduler moves between backends at a copy of its input, made
          // in the scheduler's context, which the next split frees: on a device (where there are
          // such copies) the one split is alloc_graph's, with no reserve before it.
          if ((!this.cpuFallback && !this.g.schedReserve(sched, gr)) || !this.g.schedAllocGraph(sched, gr)) {
            throw new TrainerError('GGML_COMPUTE_FAILED', 'ggml_backend_sched could not place a graph (out of memory?)');
          }
          for (const backend of schedBackends) bytes += this.g.schedBufferSize(sched, backend);
        }
        this.computeBytes = bytes;
      } else {
        // Every tensor the trainer reads or writes between computes lives in a static buffer, except
        // the loss, argmax and d(loss) scale: graph outputs and inputs, which the allocator never reuses.
        const trainAlloc = this.allocate(this.trainGraph!);
        // The eval graph is the train graph's forward prefix, in the same order, so the train graph's
        // placement is valid for it: two forward tensors alive together in the prefix are alive
        // together in the whole graph.
        const optAlloc = this.allocate(this.optGraph!);
        this.computeBytes = this.g.gallocrBufferSize(trainAlloc) + this.g.gallocrBufferSize(optAlloc);
      }
      this.memBytes = this.buffers.reduce((sum, b) => sum + this.g.bufferSize(b), 0) + this.computeBytes;
      this.initialize();
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /**
   * Refuses a graph that ggml's scheduler cannot split between the device and the CPU: one with an
   * op the device lacks on a tensor that lives in the device's memory (a weight, a gradient
   * accumulator, optimizer state), which would abort the process, or an op that writes into
   * another op's result in place (the chunked loss's set_rows into the softmax) where the device
   * has one of the two but not the other, which the scheduler would then put on different
   * backends and so compute wrong.
   * Any other op the device lacks runs on the CPU.
   */
  private assertDeviceRuns(gr: GgmlGraph): void {
    if (!this.cpuFallback) return;
    const g = this.g;
    const refuse = (op: GgmlTensor, why: string) => {
      const name = g.opName(g.op(op));
      throw new TrainerError(
        'DEVICE_UNAVAILABLE',
        `${this.device.name} cannot run ${name} on ${why} (${ggmlTypeName(g.type(op))} [${g.shape(op).join(', ')}]), and ggml cannot move that op to the CPU. Train on the CPU (device "cpu").`,
        { op: name },
      );
    };
    const viewOps = new Set([g.ops.NONE, g.ops.VIEW, g.ops.RESHAPE, g.ops.PERMUTE, g.ops.TRANSPOSE]);
    // Only the static buffers: a tensor placed by another graph's scheduler may be in the CPU's.
    const deviceBuffers = new Set(this.buffers.map((b) => g.address(b)));
    for (let i = 0; i < g.graphNNodes(gr); i++) {
      const node = g.graphNode(gr, i);
      const source = g.viewSrc(node);
      const buffer = g.tensorBuffer(source ?? node);
      if (buffer !== null && deviceBuffers.has(g.address(buffer))) {
        if (!g.backendSupportsOp(this.backend!, node)) refuse(node, 'a tensor the trainer keeps in its memory');
      } else if (source && !viewOps.has(g.op(node)) && !viewOps.has(g.op(source))) {
        // Both on the device or both on the CPU is fine; apart, the write misses the result.
        const [writer, producer] = [g.backendSupportsOp(this.backend!, node), g.backendSupportsOp(this.backend!, source)];
        if (writer !== producer) refuse(writer ? source : node, writer ? 'a result another op then writes into in place' : 'the result of another op, in place');
      }
    }
  }

  /** A graph allocator of its own for `gr`, which places every tensor of it that has no memory yet. */
  private allocate(gr: GgmlGraph): GgmlGallocr {
    const galloc = this.g.gallocrNew(this.g.backendBufferType(this.backend!));
    this.gallocs.push(galloc);
    if (!this.g.gallocrAllocGraph(galloc, gr)) throw new TrainerError('GGML_COMPUTE_FAILED', 'ggml_gallocr_alloc_graph failed (out of memory?)');
    return galloc;
  }

  /** Initial values of the inputs and optimizer state, once their buffers exist (written through ggml-backend). */
  private initialize(): void {
    if (this.denseLabels) this.zero(this.denseLabels);
    this.denseLabelSet = this.denseLabels ? new Int32Array(this.batch * this.seqLen).fill(-1) : null;
    for (const { tensor, value } of this.constants) this.writeF32(tensor, new Float32Array(this.g.nelements(tensor)).fill(value));
    for (const t of [this.labelIds, this.mask, this.tokens, ...this.rankPadZeros.values(), this.optParamsDecay, this.optParamsNoDecay]) this.zero(t);
    const T = this.seqLen;
    this.writeI32(this.positions, Int32Array.from({ length: T }, (_, i) => i));
    for (const [w, m] of this.attentionMasks) {
      const a = new Float32Array(T * T);
      for (let qi = 0; qi < T; qi++) for (let ki = 0; ki < T; ki++) a[qi * T + ki] = ki > qi || qi - ki >= w ? -Infinity : 0;
      this.writeF32(m, a);
    }
    for (const t of this.trainables) for (const state of [t.gradAcc, t.m, t.v]) this.zero(state);
  }

  /** Zero [loraPaddedRank, n] tensors the LoRA rank is padded into, by n. */
  private readonly rankPadZeros = new Map<number, GgmlTensor>();

  /** One additive attention mask per sliding-window size (Infinity: none), by window. */
  private readonly attentionMasks = new Map<number, GgmlTensor>();

  /** Describes every tensor and graph: static tensors in their contexts, ops in the compute one. */
  private define(ctxs: GraphContexts, graphSize: number): void {
    const ctx = ctxs.compute;
    const g = this.g;
    const c = this.config;
    const B = this.batch;
    const T = this.seqLen;
    const N = B * T;
    const H = c.headCount;
    const Hkv = c.headCountKv;
    const hd = headDimOf(c);
    const arch = architectureSpec(c.architecture);

    for (const { name, shape, frozen } of expectedTensors(c)) {
      this.weights.set(name, this.createWeight(this.lora || frozen ? ctxs.frozen : ctxs.params, name, shape));
    }
    const adapters = new Map<string, { a: GgmlTensor; b: GgmlTensor }>();
    if (this.lora) {
      const shapes = new Map(expectedTensors(c).map((t) => [t.name, t.shape]));
      for (const target of this.lora.targets) {
        const [nIn, nOut] = shapes.get(target)!;
        const names = loraTensorNames(target);
        const a = g.newTensor2d(ctxs.params, GGML_TYPE_F32, nIn, this.lora.rank);
        const b = g.newTensor2d(ctxs.params, GGML_TYPE_F32, this.lora.rank, nOut);
        g.setName(a, names.a);
        g.setName(b, names.b);
        this.loraTensors.set(names.a, a);
        this.loraTensors.set(names.b, b);
        adapters.set(target, { a, b });
      }
    }
    const paramList: Array<{ name: string; tensor: GgmlTensor; shape: number[] }> = [];
    if (this.lora) {
      for (const [name, tensor] of this.loraTensors) paramList.push({ name, tensor, shape: g.shape(tensor).slice(0, 2) });
    } else {
      for (const { name, shape, frozen } of expectedTensors(c)) if (!frozen) paramList.push({ name, tensor: this.weights.get(name)!, shape });
    }
    for (const p of paramList) g.setParam(p.tensor);

    this.tokens = g.newTensor1d(ctxs.inputs, GGML_TYPE_I32, N);
    this.positions = g.newTensor1d(ctxs.inputs, GGML_TYPE_I32, T);
    this.labelIds = g.newTensor2d(ctxs.inputs, GGML_TYPE_I32, 1, N);
    this.mask = g.newTensor2d(ctxs.inputs, GGML_TYPE_F32, 1, N);
    for (const t of [this.tokens, this.positions, this.labelIds, this.mask]) g.setInput(t);

    const loraScale = this.lora ? this.lora.alpha / this.lora.rank : 0;
    const linear = (x: GgmlTensor, name: string): GgmlTensor => {
      const y = g.mulMat(ctx, this.weights.get(name)!, x);
      const ad = adapters.get(name);
      if (!ad) return y;
      // Scaling the rank-r intermediate instead of the [n_out, N] product gives the same values
      // (exactly, for the usual power-of-two alpha/rank) at a fraction of the memory and work.
      return g.add(ctx, y, g.mulMat(ctx, padRank(ad.b), padRank(g.scale(ctx, g.mulMat(ctx, ad.a, x), loraScale))));
    };
    // B·u sums over the rank: with K = rank % 16 ≠ 0 ggml misses tinyBLAS and runs a vec_dot per
    // output element (B [8, 1536] · u [8, 1024]: 19.8 ms on one core, 8.9 ms at K = 16 with the
    // zeros added). So both are padded (padLoraRank, on by default) with zero rows to
    // loraPaddedRank (ggml_acc into a zero tensor: it has a backward, which pad and concat lack);
    // the padded rows of the product's gradients are views the backward drops, so A and B, their
    // gradients and AdamW see the true rank.
    const paddedRank = this.padLoraRank ? loraPaddedRank(this.lora?.rank ?? 0) : (this.lora?.rank ?? 0);
    const padRank = (t: GgmlTensor): GgmlTensor => {
      const [rank, n] = g.shape(t);
      if (rank === paddedRank) return t;
      let zeros = this.rankPadZeros.get(n);
      if (!zeros) {
        zeros = g.newTensor2d(ctxs.inputs, GGML_TYPE_F32, paddedRank, n);
        g.setInput(zeros);
        this.rankPadZeros.set(n, zeros);
      }
      return g.acc(ctx, zeros, t, paddedRank * 4, paddedRank * n * 4, paddedRank * n * 4, 0);
    };
    const weight = (name: string) => this.weights.get(name)!;
    const norm = (x: GgmlTensor, w: string) => g.mul(ctx, g.rmsNorm(ctx, x, c.rmsNormEps), weight(w));
    const ropeFreqs = c.ropeFreqFactors ? weight(tensorNames.ropeFreqs) : null;
    // ext_factor 0: no YaRN, so beta_fast/beta_slow are unused (as in llama.cpp for these files).
    const rope = (x: GgmlTensor, l: number) => {
      const { rope: positional, ropeFreqBase, ropeFreqScale } = arch.layerAttention(c, l);
      if (!positional) return x;
      return g.ropeExt(ctx, x, this.positions, ropeFreqs, hd, arch.ropeMode, c.contextLength, ropeFreqBase, ropeFreqScale, 0, 1, 0, 0);
    };
    const withBias = (y: GgmlTensor, bias: string) => (arch.qkvBias ? g.add(ctx, y, weight(bias)) : y);
    const headNorm = (x: GgmlTensor, w: string) => (arch.qkNorm ? norm(x, w) : x);
    const postNorm = (x: GgmlTensor, w: string) => (arch.postNorms ? norm(x, w) : x);
    const attnScale = arch.attentionScale(c);
    const ffnAct = (gate: GgmlTensor, up: GgmlTensor) =>
      arch.ffnActivation === 'gelu' ? g.mul(ctx, this.geluTanh(ctx, gate), up) : g.swigluSplit(ctx, gate, up);
    // One additive mask per window size: -inf where the key comes after the query (causal) or is
    // `window` or more positions back (llama_hparams::is_masked_swa, STANDARD). soft_max_ext adds it
    // as it scales, so masking costs no pass of its own (diag_mask_inf would write the scores once
    // more, and its backward the gradient); masked scores give exactly 0 either way.
    const attentionMask = (window: number | null) => {
      const w = window !== null && window < T ? window : Infinity;
      let m = this.attentionMasks.get(w);
      if (!m) {
        m = g.newTensor2d(ctxs.inputs, GGML_TYPE_F32, T, T);
        g.setInput(m);
        this.attentionMasks.set(w, m);
      }
      return m;
    };

    const embed = () => {
      const e = g.getRows(ctx, weight(tensorNames.tokenEmbd), this.tokens); // [D, N]
      const embScale = arch.embeddingScale(c);
      return embScale !== 1 ? g.scale(ctx, e, embScale) : e;
    };
    const block = (input: GgmlTensor, l: number): GgmlTensor => {
      let x = input;
      const h = norm(x, tensorNames.attnNorm(l));
      const qh = headNorm(g.reshape4d(ctx, withBias(linear(h, tensorNames.attnQ(l)), tensorNames.attnQBias(l)), hd, H, T, B), tensorNames.attnQNorm(l));
      const kh = headNorm(g.reshape4d(ctx, withBias(linear(h, tensorNames.attnK(l)), tensorNames.attnKBias(l)), hd, Hkv, T, B), tensorNames.attnKNorm(l));
      const q = rope(qh, l);
      const k = rope(kh, l);
      const v = g.reshape4d(ctx, withBias(linear(h, tensorNames.attnV(l)), tensorNames.attnVBias(l)), hd, Hkv, T, B);
      // Heads and batch share dim 2 (head fastest) so the GQA broadcast stays 3-D: ggml's
      // mul_mat backward only un-broadcasts over dim 2.
      const q3 = g.reshape3d(ctx, g.cont(ctx, g.permute(ctx, q, 0, 2, 1, 3)), hd, T, H * B);
      const k3 = g.reshape3d(ctx, g.cont(ctx, g.permute(ctx, k, 0, 2, 1, 3)), hd, T, Hkv * B);
      const vT = g.reshape3d(ctx, g.cont(ctx, g.permute(ctx, v, 1, 2, 0, 3)), T, hd, Hkv * B);
      let att = g.mulMat(ctx, k3, q3); // [T_k, T_q, H*B]
      att = g.softMaxExt(ctx, att, attentionMask(arch.layerAttention(c, l).window), attnScale, 0);
      const o = g.mulMat(ctx, vT, att); // [hd, T_q, H*B]
      const merged = g.reshape2d(ctx, g.cont(ctx, g.permute(ctx, g.reshape4d(ctx, o, hd, T, H, B), 0, 2, 1, 3)), hd * H, N);
      x = g.add(ctx, x, postNorm(linear(merged, tensorNames.attnOutput(l)), tensorNames.attnPostNorm(l)));
      const h2 = norm(x, tensorNames.ffnNorm(l));
      const act = ffnAct(linear(h2, tensorNames.ffnGate(l)), linear(h2, tensorNames.ffnUp(l)));
      return g.add(ctx, x, postNorm(linear(act, tensorNames.ffnDown(l)), tensorNames.ffnPostNorm(l)));
    };

    const params = new Set(paramList.map((p) => g.address(p.tensor)));
    const checkpoint = this.checkpointLayers ? this.layerCheckpoints(ctxs, embed, block, params.has(g.address(weight(tensorNames.tokenEmbd)))) : null;
    let x = checkpoint ? checkpoint.top : embed();
    if (!checkpoint) for (let l = 0; l < c.blockCount; l++) x = block(x, l);
    this.hidden = norm(x, tensorNames.outputNorm); // [D, N]
    this.head = weight(headWeightName(c));
    const headLora = adapters.get(headWeightName(c));
    this.headAdapter = headLora ? { ...headLora, scale: loraScale, padRank } : null;
    const head = this.chunkedHead
      ? this.chunkedCrossEntropy(ctxs, params.has(g.address(this.head)))
      : this.denseCrossEntropy(ctxs, linear(this.hidden, headWeightName(c)));
    const evalOutputs = [...(checkpoint?.copies.slice(-1) ?? []), ...head.evalOutputs];
    // Autodiff emits backward nodes in reverse order of the forward ones: the head's after the
    // layers' recomputations, so its gradient reaches the top checkpoint before layer L-1 reads it.
    const trainLosses = [...(checkpoint?.losses ?? []), head.trainLoss];
    for (const t of trainLosses) g.setLoss(t);
    g.setOutput(this.loss);

    const train = g.newGraphCustom(ctx, graphSize, true);
    for (const t of [...(checkpoint?.copies ?? []), ...checkpoint?.losses ?? [], ...head.order, head.trainLoss]) g.buildForwardExpand(train, t);
    const nFwd = g.graphNNodes(train);
    const accs: Array<GgmlTensor | null> = new Array(nFwd).fill(null);
    const byAddr = new Map<bigint, number>();
    for (let i = 0; i < nFwd; i++) byAddr.set(g.address(g.graphNode(train, i)), i);
    const accFor = new Map<string, GgmlTensor>();
    for (const p of paramList) {
      const idx = byAddr.get(g.address(p.tensor));
      if (idx === undefined) throw new TrainerError('GGML_COMPUTE_FAILED', `parameter ${p.name} is not in the graph`);
      const acc = g.dupTensor(ctxs.params, p.tensor);
      accs[idx] = acc;
      accFor.set(p.name, acc);
    }
    for (const { input, grad } of checkpoint?.inputs ?? []) accs[byAddr.get(g.address(input))!] = grad;
    g.buildBackwardExpand(ctx, train, accs);
    for (const t of trainLosses) {
      const grad = g.graphGetGradAcc(train, t)!;
      // An input, so the allocator places it before any node and never lets one overwrite it.
      g.setInput(grad);
      this.lossGrads.push(grad);
    }
    let trainGraph = this.plainAutodiff ? train : this.backwardAsMulMat(ctx, ctxs.frozen, train, graphSize, params);
    if (checkpoint) {
      // Each layer's recomputation runs just before the first backward node that needs it, so one
      // layer's activations are alive at a time instead of all of them.
      const kept = this.ancestors([...checkpoint.copies, ...head.order, head.trainLoss]);
      const recomputed = new Set<bigint>();
      for (let i = 0; i < nFwd; i++) {
        const key = g.address(g.graphNode(train, i));
        if (!kept.has(key)) recomputed.add(key);
      }
      trainGraph = this.resequence(ctx, trainGraph, graphSize, (node) => recomputed.has(g.address(node)));
    }
    this.trainGraph = trainGraph;
    this.evalGraph = this.forwardPart(ctx, this.trainGraph, evalOutputs, graphSize);

    this.optParamsDecay = g.newTensor1d(ctxs.params, GGML_TYPE_F32, 7);
    this.optParamsNoDecay = g.newTensor1d(ctxs.params, GGML_TYPE_F32, 7);
    const opt = g.newGraphCustom(ctx, Math.max(256, paramList.length * 4), false);
    for (const p of paramList) {
      const m = g.dupTensor(ctxs.params, p.tensor);
      const v = g.dupTensor(ctxs.params, p.tensor);
      const decay = p.shape.length >= 2;
      const gradAcc = accFor.get(p.name)!;
      g.buildForwardExpand(opt, g.optStepAdamw(ctx, p.tensor, gradAcc, m, v, decay ? this.optParamsDecay : this.optParamsNoDecay));
      this.trainables.push({ name: p.name, shape: p.shape, tensor: p.tensor, gradAcc, m, v, decay });
    }
    this.optGraph = opt;
  }

  /**
   * The loss over the dense [vocab, tokens] logits with ggml's cross-entropy, autodiff
   * differentiating the head as any other op (`denseHead`: what the tests check the chunked loss
   * against).
   */
  private denseCrossEntropy(ctxs: GraphContexts, logits: GgmlTensor): { order: GgmlTensor[]; trainLoss: GgmlTensor; evalOutputs: GgmlTensor[] } {
    const g = this.g;
    const ctx = ctxs.compute;
    const [V, N] = g.shape(logits);
    this.logits = logits;
    this.denseLabels = g.newTensor2d(ctxs.inputs, GGML_TYPE_F32, V, N);
    g.setInput(this.denseLabels);
    this.argmax = g.argmax(ctx, logits);
    // Masked rows get zero logits *and* zero labels: ggml's cross-entropy backward is
    // (softmax - label)/N even for an all-zero label row, so without zeroing the logits through
    // the mask a prompt token would still push gradients. Multiplying by the 0/1 mask makes the
    // gradient of a masked row exactly 0. ggml's loss is the mean over all N rows.
    const meanLoss = g.crossEntropyLoss(ctx, g.mul(ctx, logits, this.mask), this.denseLabels);
    this.loss = g.scale(ctx, meanLoss, N);
    g.setOutput(this.argmax);
    return { order: [this.loss, this.argmax], trainLoss: meanLoss, evalOutputs: [this.loss, this.argmax] };
  }

  /**
   * The loss of the head, and its gradient by the hidden state, a chunk of tokens at a time and
   * from label ids (no one-hot): per chunk the logits z = W·h and p = softmax(z), the loss
   * log Σ exp z − z[label] = z[argmax] − log p[argmax] − z[label] (p[argmax] ≥ 1/vocab, so the
   * log never underflows), and dL/dz = (p − onehot(label))·mask·scale, written over p in place
   * (p[label] − 1 by set_rows), then dL/dh = Wᵀ·dL/dz into a static buffer. Autodiff then runs
   * from the surrogate Σ h ⊙ dL/dh, whose gradient by h is exactly dL/dh, so at most one chunk of
   * logits is alive at a time. The chunks are expanded one after the other, each loss part before
   * its gradient part, because set_rows overwrites the probabilities the loss reads. A trained
   * head (full fine-tuning) also gets dL/dW = Σ over chunks of h·(dL/dz)ᵀ, summed chunk by chunk
   * in a static buffer, and the surrogate Σ W ⊙ dL/dW; its dL/dh is an out_prod by the
   * transposed chunk, which the BLAS backend computes reading W in place (on ggml-cpu the backward
   * rewrite may copy Wᵀ instead, by its cost model), not the transposed copy a frozen head keeps.
   */
  private chunkedCrossEntropy(ctxs: GraphContexts, headTrained: boolean): { order: GgmlTensor[]; trainLoss: GgmlTensor; evalOutputs: GgmlTensor[] } {
    const g = this.g;
    const ctx = ctxs.compute;
    const [D, N] = g.shape(this.hidden);
    const V = this.config.vocabSize;
    const perChunk = this.headChunkTokens;
    this.argmax = g.newTensor1d(ctxs.inputs, GGML_TYPE_I32, N);
    this.lossScale = g.newTensor1d(ctxs.inputs, GGML_TYPE_F32, 1);
    const minusOne = g.newTensor1d(ctxs.inputs, GGML_TYPE_F32, 1);
    const dHidden = g.newTensor2d(ctxs.inputs, GGML_TYPE_F32, D, N);
    const dHead = headTrained ? g.newTensor2d(ctxs.inputs, GGML_TYPE_F32, D, V) : null;
    const adapter = this.headAdapter;
    // A LoRA-adapted head's gradients, dL/dA [D, r] and dL/dB [r, V], summed over the chunks as dHead is.
    const adapterGrads = adapter ? { a: g.dupTensor(ctxs.inputs, adapter.a), b: g.dupTensor(ctxs.inputs, adapter.b) } : null;
    let adapterSums: { a: GgmlTensor; b: GgmlTensor } | null = null;
    this.constants.push({ tensor: minusOne, value: -1 });
    const headT = headTrained ? null : this.frozenTranspose(ctxs.frozen, this.head);
    const rowWeight = g.mul(ctx, this.mask, this.lossScale); // [1, N]
    // Columns [from, from + n) of a [rows, N] tensor, as [rows, n].
    const columns = (t: GgmlTensor, rows: number, from: number, n: number) =>
      g.view3d(ctx, t, rows, n, 1, rows * 4, rows * 4 * n, from * rows * 4);
    const order: GgmlTensor[] = [];
    const evalOutputs: GgmlTensor[] = [];
    let lossSum: GgmlTensor | null = null;
    // dL/dW so far: a view of dHead, each chunk's part added to it and copied back.
    let dHeadSum: GgmlTensor | null = null;
    for (let from = 0; from < N; from += perChunk) {
      const n = Math.min(perChunk, N - from);
      const h = columns(this.hidden, D, from, n);
      const { logits, u } = this.headLogits(ctx, h, adapter?.padRank); // [V, n]
      const argmax = g.argmax(ctx, logits); // I32 [n]
      const argmaxOut = g.cpy(ctx, argmax, g.view3d(ctx, this.argmax, n, 1, 1, n * 4, n * 4, from * 4));
      const p = g.softMaxExt(ctx, logits, null, 1, 0);
      const z3 = g.reshape3d(ctx, logits, 1, V, n);
      const p3 = g.reshape3d(ctx, p, 1, V, n);
      const labels = columns(this.labelIds, 1, from, n); // [1, n]: one row index per token
      const best = g.reshape2d(ctx, argmax, 1, n);
      const logSumExp = g.sub(ctx, g.getRows(ctx, z3, best), g.log(ctx, g.getRows(ctx, p3, best)));
      const nll = g.sub(ctx, logSumExp, g.getRows(ctx, z3, labels)); // [1, 1, n]
      const part = g.sum(ctx, g.mul(ctx, g.reshape2d(ctx, nll, 1, n), columns(this.mask, 1, from, n)));
      lossSum = lossSum ? g.add(ctx, lossSum, part) : part;
      order.push(argmaxOut, lossSum);
      evalOutputs.push(argmaxOut);
      const dLogits3 = g.setRows(ctx, p3, g.add(ctx, g.getRows(ctx, p3, labels), minusOne), labels);
      const dLogits = g.mul(ctx, g.reshape2d(ctx, dLogits3, V, n), columns(rowWeight, 1, from, n));
      // dL/dh [D, n] = W [D, V] · dL/dz [V, n]: by the transposed copy, or as out_prod(W, (dL/dz)ᵀ).
      let dh = headT ? g.mulMat(ctx, headT, dLogits) : g.outProd(ctx, this.head, g.transpose(ctx, dLogits));
      if (adapter && adapterGrads && u) {
        // Through the adapter: Bᵀ·dL/dz [r, n]; dL/dh gains (alpha/r)·Aᵀ·(Bᵀ·dL/dz), dL/dA is
        // (alpha/r)·h·(Bᵀ·dL/dz)ᵀ and dL/dB is u·(dL/dz)ᵀ (out_prod sums over the chunk's tokens).
        const back = g.outProd(ctx, adapter.b, g.transpose(ctx, dLogits));
        dh = g.add(ctx, dh, g.scale(ctx, g.outProd(ctx, adapter.a, g.transpose(ctx, back)), adapter.scale));
        const aPart = g.scale(ctx, g.outProd(ctx, h, back), adapter.scale);
        const bPart = g.outProd(ctx, u, dLogits);
        adapterSums = {
          a: g.cpy(ctx, adapterSums ? g.add(ctx, adapterSums.a, aPart) : aPart, adapterGrads.a),
          b: g.cpy(ctx, adapterSums ? g.add(ctx, adapterSums.b, bPart) : bPart, adapterGrads.b),
        };
        order.push(adapterSums.a, adapterSums.b);
      }
      order.push(g.cpy(ctx, dh, columns(dHidden, D, from, n)));
      if (dHead) {
        // dL/dW [D, V] += h [D, n] · (dL/dz)ᵀ: out_prod sums over the chunk's tokens.
        const part = g.outProd(ctx, h, dLogits);
        // Copied back into dHead, not added in place: ggml's autodiff refuses in-place ops in its graph.
        dHeadSum = g.cpy(ctx, dHeadSum ? g.add(ctx, dHeadSum, part) : part, dHead);
        order.push(dHeadSum);
      }
    }
    this.loss = lossSum!;
    evalOutputs.push(this.loss);
    // Kept after the computes so the logits can be recomputed from it (logitsF32).
    g.setOutput(this.hidden);
    // Surrogates whose gradients are the summed ones: Σ x ⊙ dL/dx, with dL/dx a leaf to autodiff.
    const surrogate = (x: GgmlTensor, grad: GgmlTensor) => g.sum(ctx, g.mul(ctx, x, grad));
    let trainLoss = surrogate(this.hidden, dHidden);
    if (dHead) trainLoss = g.add(ctx, trainLoss, surrogate(this.head, dHead));
    if (adapter && adapterGrads) trainLoss = g.add(ctx, trainLoss, g.add(ctx, surrogate(adapter.a, adapterGrads.a), surrogate(adapter.b, adapterGrads.b)));
    return { order, trainLoss, evalOutputs };
  }

  /**
   * Activation checkpointing: the forward keeps only each layer's input, copied into a static
   * tensor that autodiff sees as a leaf with a gradient accumulator of its own; each layer is then
   * built a second time from that copy, with the surrogate loss Σ layer(x_l) ⊙ dL/dx_{l+1}, whose
   * gradients are the layer's true ones (dL/dx_{l+1} being the next layer's input accumulator,
   * or the head's for the top). Returns the top copy (the head reads it), the copies in order, the
   * surrogate losses bottom-up, and each copy with its accumulator.
   */
  private layerCheckpoints(
    ctxs: GraphContexts,
    embed: () => GgmlTensor,
    block: (x: GgmlTensor, l: number) => GgmlTensor,
    embeddingTrained: boolean,
  ): { top: GgmlTensor; copies: GgmlTensor[]; losses: GgmlTensor[]; inputs: Array<{ input: GgmlTensor; grad: GgmlTensor }> } {
    const g = this.g;
    const ctx = ctxs.compute;
    const L = this.config.blockCount;
    const copies: GgmlTensor[] = [];
    const inputs: Array<{ input: GgmlTensor; grad: GgmlTensor }> = [];
    let x = embed();
    for (let l = 0; l <= L; l++) {
      const input = g.dupTensor(ctxs.inputs, x);
      const grad = g.dupTensor(ctxs.inputs, x);
      // Layer 0's input needs a gradient only to train the embeddings.
      if (l > 0 || embeddingTrained) {
        g.setParam(input);
        inputs.push({ input, grad });
      }
      copies.push(g.cpy(ctx, x, input));
      if (l < L) x = block(x, l);
    }
    const stored = (l: number) => g.viewSrc(copies[l])!;
    const gradOf = (l: number) => inputs.find((i) => g.address(i.input) === g.address(stored(l)))!.grad;
    const losses: GgmlTensor[] = [];
    if (embeddingTrained) losses.push(g.sum(ctx, g.mul(ctx, embed(), gradOf(0))));
    for (let l = 0; l < L; l++) losses.push(g.sum(ctx, g.mul(ctx, block(stored(l), l), gradOf(l + 1))));
    this.checkpointGrads.push(...inputs.map((i) => i.grad));
    return { top: stored(L), copies, losses, inputs };
  }

  /** Copy of `from` with the nodes `deferred` picks left out until the first node that needs them. */
  private resequence(ctx: GgmlContext, from: GgmlGraph, graphSize: number, deferred: (node: GgmlTensor) => boolean): GgmlGraph {
    const g = this.g;
    const out = g.newGraphCustom(ctx, graphSize, false);
    for (let i = 0; i < g.graphNNodes(from); i++) {
      const node = g.graphNode(from, i);
      if (!deferred(node)) g.buildForwardExpand(out, node);
    }
    return out;
  }

  /** Addresses of the tensors `outputs` depend on (sources and viewed tensors), themselves included. */
  private ancestors(outputs: GgmlTensor[]): Set<bigint> {
    const g = this.g;
    const found = new Set<bigint>();
    const stack = [...outputs];
    while (stack.length > 0) {
      const t = stack.pop()!;
      const key = g.address(t);
      if (found.has(key)) continue;
      found.add(key);
      for (let k = 0; k < 10; k++) {
        const src = g.src(t, k);
        if (src) stack.push(src);
      }
      const viewed = g.viewSrc(t);
      if (viewed) stack.push(viewed);
    }
    return found;
  }

  /**
   * The nodes of `from` that `outputs` depend on, in from's order: computing them under from's
   * placement is safe, since two of them alive together here are alive together in from.
   */
  private forwardPart(ctx: GgmlContext, from: GgmlGraph, outputs: GgmlTensor[], graphSize: number): GgmlGraph {
    const g = this.g;
    const needed = this.ancestors(outputs);
    const out = g.newGraphCustom(ctx, graphSize, false);
    for (let i = 0; i < g.graphNNodes(from); i++) {
      const node = g.graphNode(from, i);
      if (needed.has(g.address(node))) g.buildForwardExpand(out, node);
    }
    return out;
  }

  /** The transposed copy of a frozen weight, filled once before the first training pass. */
  private frozenTranspose(frozenCtx: GgmlContext, v: GgmlTensor): GgmlTensor {
    const g = this.g;
    const key = g.address(v);
    let t = this.frozenTransposes.get(key);
    if (!t) {
      const [n0, n1] = g.shape(v);
      t = g.newTensor2d(frozenCtx, transposedCopyType(g.type(v)), n1, n0);
      this.transposeJobs.push({ src: v, dst: t });
      this.frozenTransposes.set(key, t);
    }
    return t;
  }

  /** A base-model weight as the graph holds it: F32, or the stored type of a frozen LoRA base (filled by the trainer after construction). */
  private createWeight(ctx: GgmlContext, name: string, shape: number[]): GgmlTensor {
    const g = this.g;
    const type = this.weightTypes.get(name) ?? GGML_TYPE_F32;
    const t = shape.length === 1 ? g.newTensor1d(ctx, type, shape[0]) : g.newTensor2d(ctx, type, shape[0], shape[1]);
    g.setName(t, name);
    return t;
  }

  /**
   * ggml's tanh-approximated GELU, 0.5·x·(1 + tanh(u)) with u = √(2/π)·(x + 0.044715·x³), from ops
   * that have a backward in this ggml (ggml_gelu and ggml_tanh have none): 0.5·(1 + tanh(u)) is
   * σ(2u), and σ(z) = exp(−softplus(−z)) stays finite for every z.
   */
  private geluTanh(ctx: GgmlContext, x: GgmlTensor): GgmlTensor {
    const g = this.g;
    const cubicTerm = g.add(ctx, x, g.scale(ctx, g.mul(ctx, g.sqr(ctx, x), x), 0.044715));
    const minusTwoU = g.scale(ctx, cubicTerm, -2 * Math.sqrt(2 / Math.PI));
    const sigmoid = g.exp(ctx, g.scale(ctx, g.softplus(ctx, minusTwoU), -1));
    return g.mul(ctx, x, sigmoid);
  }

  /**
   * ggml's autodiff writes both gradients of every mul_mat as ggml_out_prod, a loop of axpy
   * updates along dst rows: fine when those rows are long, several times slower than the blocked
   * mul_mat kernel otherwise, and hopeless for rows of LoRA-rank length. out_prod(a, b)[i, j] =
   * Σ_k a[i, k]·b[j, k], so each out_prod node is rewritten in place into the cheapest of
   *   mul_mat(aᵀ, bᵀ)          (contiguous transposes; free for a transpose view of a contiguous
   *                             tensor, and a frozen weight's transpose is copied once by the prep
   *                             graph instead of every step),
   *   out_prod(a, b)           (kept: rows of length a.ne0), or
   *   cont(out_prod(b, a)ᵀ)    (rows of length b.ne0, plus a copy of the small result),
   * by a rough cost model (measured on AVX-512: tinyBLAS ~40 flop/ns when K is a multiple of 16,
   * out_prod ~12 flop/ns on long rows, ~1 ns per transposed element). Returns a graph holding the
   * nodes in their original order, any new node before its first user.
   *
   * A frozen weight stored as F16, BF16 or a quantized type always takes the mul_mat path: its
   * transpose is copied once (see {@link transposedCopyType}), because ggml-cpu's out_prod for
   * such a weight converts every row of it again for every token (out_prod_q_f32 /
   * out_prod_f16_f32 in ops.cpp) and has no BF16 kernel at all.
   */
  private backwardAsMulMat(ctx: GgmlContext, frozenCtx: GgmlContext, train: GgmlGraph, graphSize: number, params: Set<bigint>): GgmlGraph {
    const g = this.g;
    const frozen = new Set<bigint>();
    for (const w of this.weights.values()) if (!params.has(g.address(w))) frozen.add(g.address(w));
    const n = g.graphNNodes(train);
    let outProds = 0;
    for (let i = 0; i < n; i++) if (g.op(g.graphNode(train, i)) === g.ops.OUT_PROD) outProds++;
    const out = g.newGraphCustom(ctx, graphSize + 4 * outProds, false);
    const transposed = new Map<bigint, GgmlTensor>();
    const freeSource = (v: GgmlTensor): GgmlTensor | null => {
      if (g.op(v) === g.ops.TRANSPOSE && g.isContiguous(g.src(v, 0)!)) return g.src(v, 0)!;
      return transposed.get(g.address(v)) ?? null;
    };
    const nel = (v: GgmlTensor) => g.shape(v).reduce((x, y) => x * y, 1);
    // Cost of having vᵀ contiguous: nothing when free or frozen (copied once), else one copy.
    const transposeCost = (v: GgmlTensor) => (freeSource(v) || frozen.has(g.address(v)) ? 0 : nel(v));
    const T = (v: GgmlTensor): GgmlTensor => {
      const free = freeSource(v);
      if (free) return free;
      const key = g.address(v);
      let t: GgmlTensor;
      if (!frozen.has(key)) {
        const [n0, n1, , n3] = g.shape(v);
        // ggml_cont of a transpose copies element by element through a memcpy call (dup_bytes);
        // ggml_concat with an empty second part writes the same contiguous result with plain
        // loads and stores, several times faster.
        t = n3 === 1
          ? g.concat(ctx, g.transpose(ctx, v), g.view3d(ctx, v, n1, n0, 0, n1 * 4, n1 * n0 * 4, 0), 2)
          : g.cont(ctx, g.transpose(ctx, v));
      } else {
        t = this.frozenTranspose(frozenCtx, v);
      }
      transposed.set(key, t);
      return t;
    };
    const axpyRate = (len: number) => (len >= 64 ? 12 : len >= 16 ? 6 : 1.5);
    const viewOps = new Set([g.ops.VIEW, g.ops.TRANSPOSE, g.ops.PERMUTE, g.ops.RESHAPE]);
    for (let i = 0; i < n; i++) {
      const node = g.graphNode(train, i);
      if (g.op(node) === g.ops.OUT_PROD) {
        const a = g.src(node, 0)!;
        const b = g.src(node, 1)!;
        const [M, K, a2, a3] = g.shape(a);
        const [N, , b2, b3] = g.shape(b);
        const flops = 2 * M * N * K * b2 * b3;
        const viaMulMat = flops / (K % 16 === 0 ? 40 : 4) + transposeCost(a) + transposeCost(b);
        const kept = flops / axpyRate(M);
        const swapped =
          a2 === b2 && a3 === b3 && g.strides(b)[0] === 4 && g.strides(b)[0] <= g.strides(b)[1]
            ? flops / axpyRate(N) + 3 * M * N * b2 * b3
            : Infinity;
        const compactFrozen = frozen.has(g.address(a)) && g.type(a) !== GGML_TYPE_F32;
        if (this.blasTakesOutProd(a, b, M, N, K, flops / 2)) {
          // Kept: the BLAS backend computes it as one product that reads the transposed operand in place.
        } else if (compactFrozen || (viaMulMat <= kept && viaMulMat <= swapped)) g.rewriteAsMulMat(node, T(a), T(b));
        else if (swapped < kept) g.rewriteAsCont(node, g.transpose(ctx, g.outProd(ctx, b, a)));
      }
      // A view is added with its first user instead: a rewritten node no longer reads the
      // transpose views ggml's backward made for it, and a view left in the graph without a user
      // would keep the graph allocator from ever freeing the tensor it shows.
      if (!viewOps.has(g.op(node))) g.buildForwardExpand(out, node);
    }
    return out;
  }

  /**
   * Whether the BLAS backend computes out_prod(a, b) of `macs` multiply-adds: ggml-blas takes an
   * F32 out_prod of two matrices, `a` contiguous and `b` contiguous or a transpose view, as one
   * sgemm with the transpose flags set; oneDNN's library takes any F32 out_prod whose operands are
   * matrices or transposes per batch (attention's, batched over heads), with a dimension under 32
   * (LoRA's) too; and the trainer's limits leave it the large ones. Then the out_prod is best kept:
   * rewritten as a mul_mat it would need contiguous transposes — a copy of an activation every
   * step, or a kept transposed copy of a frozen weight.
   */
  private blasTakesOutProd(a: GgmlTensor, b: GgmlTensor, M: number, N: number, K: number, macs: number): boolean {
    const g = this.g;
    if (this.matmul.kind !== 'blas' || macs < this.blasLimits.minMultiplyAdds) return false;
    const f32 = (t: GgmlTensor) => g.type(t) === GGML_TYPE_F32;
    if (this.matmul.everyF32Product) {
      const inPlace = (t: GgmlTensor) => g.strides(t)[0] === 4 || g.strides(t)[1] === 4;
      return f32(a) && f32(b) && inPlace(a) && inPlace(b);
    }
    if (Math.min(M, N, K) < 32) return false;
    const matrix = (t: GgmlTensor) => f32(t) && g.shape(t)[2] === 1 && g.shape(t)[3] === 1;
    const transposed = (t: GgmlTensor) => g.strides(t)[0] > g.strides(t)[1];
    return matrix(a) && matrix(b) && g.isContiguous(a) && (g.isContiguous(b) || transposed(b));
  }

  /**
   * Copies each frozen weight's transpose into its tensor, once: in a scratch context per weight
   * (freed at once), which also holds the F32 dequantization a quantized weight needs first, since
   * ggml can only transpose float tensors — so the peak is one weight's F32 copy, not all of them.
   */
  private copyFrozenTransposes(): void {
    const g = this.g;
    for (const { src, dst } of this.transposeJobs) {
      const [n0, n1] = g.shape(src);
      const quantized = !isFloatTensorType(g.type(src));
      this.computeInScratch((scratch) => {
        const from = quantized ? g.cpy(scratch, src, g.newTensor2d(scratch, GGML_TYPE_F32, n0, n1)) : src;
        return g.cpy(scratch, g.transpose(scratch, from), dst);
      }, () => undefined);
    }
  }

  /**
   * Builds a small graph in a scratch context (room for `nodes` tensors), gives its new tensors a
   * buffer of their own, computes it on the graph's backend, reads its (first) result and frees
   * both, so one-off work never stays in the step's memory.
   */
  private computeInScratch<R>(build: (scratch: GgmlContext) => GgmlTensor | GgmlTensor[], read: (out: GgmlTensor) => R, nodes = 16): R {
    const g = this.g;
    this.assertLive();
    const size = nodes + SCRATCH_SPARE_LEAVES;
    const scratch = g.init(size * g.tensorOverhead() + g.graphOverheadCustom(size, false), true);
    if (!scratch) throw new TrainerError('GGML_COMPUTE_FAILED', 'ggml_init failed (out of memory?)');
    let buffer: GgmlBuffer | null = null;
    let sched: GgmlSched | null = null;
    try {
      const built = build(scratch);
      const outs = Array.isArray(built) ? built : [built];
      const gr = g.newGraphCustom(scratch, size, false);
      for (const out of outs) {
        g.setOutput(out);
        g.buildForwardExpand(gr, out);
      }
      if (this.cpuFallback) {
        // ggml's graph allocator sizes its hash set by the graph's nodes and leaves (×1.25), but
        // also hashes the source of a view leaf, which is in neither (logitsF32's view of the hidden
        // state): a graph of three would overflow it and abort. Spare 1-value leaves make room
        // (inputs, so the scheduler places them, on the CPU, though no op reads them).
        for (let i = 0; i < SCRATCH_SPARE_LEAVES; i++) {
          const spare = g.newTensor1d(scratch, GGML_TYPE_F32, 1);
          g.setInput(spare);
          g.buildForwardExpand(gr, spare);
        }
        // On a device, a scheduler places the new tensors, so an op the device lacks (a K-quant's
        // dequantization, say) runs on the CPU.
        this.assertDeviceRuns(gr);
        sched = g.schedNew([this.backend!, this.cpuFallback], 2 * size);
        const status = g.schedGraphCompute(sched, gr);
        if (status !== 0) throw new TrainerError('GGML_COMPUTE_FAILED', `ggml_backend_sched_graph_compute returned status ${status}`);
        return read(outs[0]);
      }
      // Null when every new tensor is a view of one that has memory already (an in-place op).
      buffer = g.allocCtxTensors(scratch, this.backend!);
      const status = g.backendGraphCompute(this.backend!, gr);
      if (status !== 0) throw new TrainerError('GGML_COMPUTE_FAILED', `ggml_backend_graph_compute returned status ${status}`);
      return read(outs[0]);
    } finally {
      if (sched) g.schedFree(sched);
      if (buffer) g.bufferFree(buffer);
      g.free(scratch);
    }
  }

  /**
   * Writes every base weight into ggml memory: float32 arrays (`model.tensors`) as they are or
   * rounded to the F16/BF16 type the graph holds that frozen weight in (`weightTypes`), and
   * stored tensors (`model.stored`) read from their file straight into a ggml tensor of their
   * own type, never through a JavaScript array. Call once, before the first step.
   */
  loadWeights(model: LlamaModel): void {
    this.assertLive();
    // One buffer for every stored weight's copy from its file (see copyStoredTensor).
    let chunk: Uint8Array | null = null;
    for (const [name, t] of this.weights) {
      const data = model.tensors.get(name)?.data;
      const stored = model.stored?.get(name);
      const type = this.g.type(t);
      if (data && type === GGML_TYPE_F32) this.g.tensorSet(t, data, 0);
      else if (data && isFloatTensorType(type)) this.g.tensorSet(t, encodeFloatValues(data, ggmlTypeName(type) as GgmlFloatType), 0);
      else if (stored && stored.type === type) {
        chunk ??= new Uint8Array(Math.min(STORED_COPY_CHUNK_BYTES, Math.max(...[...this.weights.values()].map((w) => this.g.nbytes(w)))));
        this.copyStoredTensor(t, stored, name, chunk);
      } else {
        throw new TrainerError('MISSING_TENSOR', `Model ${model.name} has no ${ggmlTypeName(this.g.type(t))} data for tensor ${name}.`);
      }
    }
  }

  /**
   * Copies a tensor's bytes from its file into ggml memory (any device's) through `chunk`, so a
   * large weight never needs a JavaScript copy of its own size.
   */
  private copyStoredTensor(t: GgmlTensor, stored: { path: string; offset: number }, name: string, chunk: Uint8Array): void {
    const total = this.g.nbytes(t);
    for (let done = 0; done < total; done += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, total - done));
      readStoredBytes(stored.path, stored.offset + done, part, `tensor '${name}'`);
      this.g.tensorSet(t, part, done);
    }
  }

  /** A base weight's current values as float32 (a copy; quantized and half weights are dequantized by ggml). */
  weightF32(name: string): Float32Array {
    const g = this.g;
    const w = this.weights.get(name);
    if (!w) throw new TrainerError('MISSING_TENSOR', `The graph has no weight ${name}.`);
    if (g.type(w) === GGML_TYPE_F32) return this.readF32(w);
    const n = g.nelements(w);
    return this.computeInScratch((scratch) => g.cpy(scratch, w, g.newTensor1d(scratch, GGML_TYPE_F32, n)), (out) => this.readF32(out));
  }

  /** A copy of a weight's bytes in ggml memory, in its own type. */
  weightBytes(name: string): Uint8Array {
    const w = this.weights.get(name);
    if (!w) throw new TrainerError('MISSING_TENSOR', `The graph has no weight ${name}.`);
    this.assertLive();
    const out = new Uint8Array(this.g.nbytes(w));
    this.g.tensorGet(w, out, 0);
    return out;
  }

  /**
   * For each frozen base weight, the ops of the training graph that read it or its transposed
   * copy: with compact frozen weights only MUL_MAT, GET_ROWS and MUL may appear (a CPY or CONT
   * would be a per-step copy of the weight).
   */
  frozenWeightReaders(): Map<string, string[]> {
    const g = this.g;
    const params = new Set(this.trainables.map((t) => g.address(t.tensor)));
    const names = new Map<bigint, string>();
    for (const [name, w] of this.weights) if (!params.has(g.address(w))) names.set(g.address(w), name);
    for (const { src, dst } of this.transposeJobs) names.set(g.address(dst), `${names.get(g.address(src))}ᵀ`);
    const out = new Map<string, string[]>();
    const graph = this.trainGraph!;
    for (let i = 0; i < g.graphNNodes(graph); i++) {
      const node = g.graphNode(graph, i);
      for (let k = 0; k < 10; k++) {
        const src = g.src(node, k);
        const name = src && names.get(g.address(src));
        if (name) out.set(name, [...(out.get(name) ?? []), g.opName(g.op(node))]);
      }
    }
    return out;
  }

  // Tensor data is only ever copied in and out through ggml-backend (ggml_backend_tensor_get/set),
  // never viewed in place: the same code then works whether the tensors live in host memory or in
  // a GPU's. GgmlApi offers no in-place view, so nothing here can take one by mistake.

  /** A copy of `count` F32 values of a tensor from its start (all of them by default). */
  readF32(t: GgmlTensor, count = this.g.nelements(t)): Float32Array {
    this.assertLive();
    const out = new Float32Array(count);
    this.g.tensorGet(t, out, 0);
    return out;
  }

  /** Copies F32 values [from, from + into.length) of a tensor into `into`, through ggml-backend (any device's memory). */
  readF32Into(t: GgmlTensor, into: Float32Array, from: number): void {
    this.assertLive();
    this.g.tensorGet(t, into, 4 * from);
  }

  /** A copy of a whole I32 tensor, through ggml-backend (any device's memory). */
  readI32(t: GgmlTensor): Int32Array {
    this.assertLive();
    const out = new Int32Array(this.g.nelements(t));
    this.g.tensorGet(t, out, 0);
    return out;
  }

  /** Writes I32 values at the tensor's start, through ggml-backend (any device's memory). */
  writeI32(t: GgmlTensor, values: Int32Array): void {
    this.assertLive();
    this.g.tensorSet(t, values, 0);
  }

  /** Writes F32 values from the tensor's value `at` on (its start by default), through ggml-backend (any device's memory). */
  writeF32(t: GgmlTensor, values: ArrayLike<number>, at = 0): void {
    this.assertLive();
    this.g.tensorSet(t, values instanceof Float32Array ? values : Float32Array.from(values), 4 * at);
  }

  /** Sets the scale of d(loss) used by the next backward pass: the gradients are those of s·loss/(seqLen·batch). */
  setLossGradScale(s: number): void {
    this.assertLive();
    this.lossGradScale = s;
  }

  /** Writes d(loss) inputs of the training pass (in the compute buffer: after its graph is placed). */
  private writeLossGrads(): void {
    const s = this.lossGradScale;
    const N = this.batch * this.seqLen;
    for (const grad of this.lossGrads) this.writeF32(grad, [1]);
    if (this.lossScale) this.writeF32(this.lossScale, [s / N]);
    // The dense head's loss is the first one autodiff reaches; layer surrogates carry its scale.
    else this.writeF32(this.lossGrads.at(-1)!, [s]);
  }

  /** Next-token logits [vocab] per position (position-major) of the last compute; a copy. */
  logitsF32(): Float32Array {
    if (this.logits) return this.readF32(this.logits);
    const g = this.g;
    return this.computeInScratch((scratch) => this.headLogits(scratch, g.viewTensor(scratch, this.hidden)).logits, (out) => this.readF32(out));
  }

  /**
   * The head's logits [V, n] of hidden states h [D, n]: z = W·h, plus B·u with a LoRA adapter on
   * the head, u = (alpha/r)·A·h [r, n] (returned too, for the adapter's gradients; null without
   * one). `padRank` widens B and u to the padded rank (the step's graph; a scratch graph has no
   * padding inputs).
   */
  private headLogits(ctx: GgmlContext, h: GgmlTensor, padRank: (t: GgmlTensor) => GgmlTensor = (t) => t): { logits: GgmlTensor; u: GgmlTensor | null } {
    const g = this.g;
    const z = g.mulMat(ctx, this.head, h);
    const adapter = this.headAdapter;
    if (!adapter) return { logits: z, u: null };
    const u = g.scale(ctx, g.mulMat(ctx, adapter.a, h), adapter.scale);
    return { logits: g.add(ctx, z, g.mulMat(ctx, padRank(adapter.b), padRank(u))), u };
  }

  /**
   * Dense head: the one-hot targets of the counted positions, from labelIds and mask. Only the
   * ones that moved since the last pass are written (a whole [vocab, tokens] upload would be
   * hundreds of MB).
   */
  private writeDenseLabels(): void {
    const dense = this.denseLabels;
    const set = this.denseLabelSet;
    if (!dense || !set) return;
    const ids = this.readI32(this.labelIds);
    const mask = this.readF32(this.mask);
    const V = this.config.vocabSize;
    for (let i = 0; i < set.length; i++) {
      const next = mask[i] !== 0 ? i * V + ids[i] : -1;
      if (next === set[i]) continue;
      if (set[i] >= 0) this.writeF32(dense, ONE_HOT_OFF, set[i]);
      if (next >= 0) this.writeF32(dense, ONE_HOT_ON, next);
      set[i] = next;
    }
  }

  zeroGradients(): void {
    for (const t of this.trainables) this.zero(t.gradAcc);
  }

  /** Sets a tensor to zeros (0x00 bytes are +0 in F32/F16/BF16/I32), through ggml-backend (any device's memory). */
  zero(t: GgmlTensor): void {
    this.assertLive();
    this.g.tensorMemset(t, 0);
  }

  /** The L2 norm of all accumulated gradients together. */
  gradientNorm(): number {
    // One dot product per gradient, by ggml (a JavaScript loop took ~2 ms a step on the reference
    // config's 0.85 M parameters, on one thread between two graph computes).
    const g = this.g;
    const sumOfSquares = this.computeInScratch(
      (scratch) => {
        let sum: GgmlTensor | null = null;
        for (const t of this.trainables) {
          const flat = g.reshape2d(scratch, t.gradAcc, g.nelements(t.gradAcc), 1);
          const dot = g.mulMat(scratch, flat, flat);
          sum = sum ? g.add(scratch, sum, dot) : dot;
        }
        return sum!;
      },
      (out) => this.readF32(out, 1)[0],
      3 * this.trainables.length + 16,
    );
    return Math.sqrt(sumOfSquares);
  }

  scaleGradients(factor: number): void {
    const g = this.g;
    this.computeInScratch(
      (scratch) => this.trainables.map((t) => g.scaleInplace(scratch, t.gradAcc, factor)),
      () => undefined,
      this.trainables.length + 16,
    );
  }

  runEval(): void {
    if (this.cpuFallback) {
      // On a device, ggml's scheduler points an op it moves to the CPU at a copy of its input that
      // only that graph's scheduler refreshes; the eval graph shares its nodes with the train
      // graph's forward part, so it would read the last training pass's copies. The train graph
      // with d(loss) = 0 computes the same forward pass, and adds only zeros to the gradients.
      const scale = this.lossGradScale;
      this.lossGradScale = 0;
      try {
        this.runTrain();
      } finally {
        this.lossGradScale = scale;
      }
      return;
    }
    this.writeDenseLabels();
    this.compute(this.evalGraph);
  }

  /** Forward + backward; gradients add into the accumulators. */
  runTrain(): void {
    // Frozen base weights are written once, after construction and before the first step
    // (loadWeights), and never change afterwards, so their transposes are copied once here.
    if (!this.prepared) this.copyFrozenTransposes();
    this.prepared = true;
    this.writeDenseLabels();
    for (const grad of this.checkpointGrads) this.zero(grad);
    this.compute(this.trainGraph!, () => this.writeLossGrads());
  }

  runOptimizer(): void {
    this.compute(this.optGraph!);
  }

  /** Computes a graph; `writeInputs` writes the inputs that live in the compute buffer, once it is placed. */
  private compute(gr: GgmlGraph, writeInputs?: () => void): void {
    this.assertLive();
    const g = this.g;
    const sched = this.scheds.get(gr);
    if (sched) {
      // With BLAS the split is redone (cheap); the tensors keep the addresses the constructor gave
      // them. On a device it is kept from the constructor: a split points the ops it moves between
      // backends at copies of their inputs in the scheduler's own context, which a new split would
      // free while the graph still points at them.
      if (!this.cpuFallback) {
        g.schedReset(sched);
        if (!g.schedAllocGraph(sched, gr)) throw new TrainerError('GGML_COMPUTE_FAILED', 'ggml_backend_sched_alloc_graph failed (out of memory?)');
      }
      writeInputs?.();
      const status = g.schedGraphCompute(sched, gr);
      if (status !== 0) throw new TrainerError('GGML_COMPUTE_FAILED', `ggml_backend_sched_graph_compute returned status ${status}`);
      return;
    }
    writeInputs?.();
    const status = g.backendGraphCompute(this.backend!, gr);
    if (status !== 0) throw new TrainerError('GGML_COMPUTE_FAILED', `ggml_backend_graph_compute returned status ${status}`);
  }

  /**
   * Where each matmul (MUL_MAT, OUT_PROD) of the training graph ran in its last compute, with its
   * weight's (src0's) type and size. Only with BLAS-backend matmuls (the scheduler); null otherwise.
   */
  matmulPlacement(): MatmulPlacement[] | null {
    const sched = this.scheds.get(this.trainGraph!);
    if (!sched) return null;
    const g = this.g;
    const out: MatmulPlacement[] = [];
    const gr = this.trainGraph!;
    for (let i = 0; i < g.graphNNodes(gr); i++) {
      const node = g.graphNode(gr, i);
      if (g.op(node) !== g.ops.MUL_MAT && g.op(node) !== g.ops.OUT_PROD) continue;
      const backend = g.schedTensorBackend(sched, node);
      const weight = g.src(node, 0)!;
      out.push({ op: g.opName(g.op(node)), weightType: g.type(weight), weightElements: g.nelements(weight), backend: backend ? g.backendName(backend) : 'none' });
    }
    return out;
  }

  private assertLive(): void {
    if (!this.ctxs) throw new TrainerError('TRAINER_DISPOSED', 'The trainer was disposed; create a new one.');
  }

  get disposed(): boolean {
    return this.ctxs === null;
  }

  dispose(): void {
    const g = this.g;
    for (const galloc of this.gallocs) g.gallocrFree(galloc);
    for (const sched of this.scheds.values()) g.schedFree(sched);
    this.scheds.clear();
    if (this.blasBackend) g.backendFree(this.blasBackend);
    this.blasBackend = null;
    if (this.cpuFallback) g.backendFree(this.cpuFallback);
    this.cpuFallback = null;
    for (const buffer of this.buffers) g.bufferFree(buffer);
    if (this.ctxs) for (const ctx of Object.values(this.ctxs)) g.free(ctx);
    if (this.backend) g.backendFree(this.backend);
    this.gallocs = [];
    this.buffers = [];
    this.ctxs = null;
    this.backend = null;
  }
}
