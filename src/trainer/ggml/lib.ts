// koffi bindings to the ggml libraries that ship inside the pinned `@node-llama-cpp/<platform>`
// package (no compiler, no download).
//
// Every signature, enum value and struct layout below was checked against the headers of the
// exact source those binaries were built from: node-llama-cpp 3.21.1 records release `v0.4.0` of
// ggml-org/llama.cpp (llama/binariesGithubRelease.json, bins/linux-x64/_nlcBuildMetadata.json) and
// ships that tree as llama/gitRelease.bundle (commit 80fb11ac, ggml 0.23.0):
// ggml/include/ggml.h, ggml-cpu.h, and the kernels in ggml/src/ggml-cpu/ops.cpp for op params
// (ggml_opt_step_adamw reads 7 floats: alpha, beta1, beta2, eps, wd, 1/(1-beta1^t), 1/(1-beta2^t)).
// A different llama.cpp release can change any of these: re-check when the pin moves.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import koffi from 'koffi';
import { TrainerError } from '../train-errors.js';
import { rankCpuVariants, readCpuFlags } from './cpu-variant.js';
import { fixMallocMmapThreshold } from './malloc-threshold.js';

/** Opaque native pointers. The brand keeps a context from being passed where a tensor is wanted. */
export type GgmlContext = { readonly __brand: 'ggml_context' };
export type GgmlTensor = { readonly __brand: 'ggml_tensor' };
export type GgmlGraph = { readonly __brand: 'ggml_cgraph' };
export type NativePtr = { readonly __brand: 'void*' };
/** ggml-backend handles (ggml-backend.h, ggml-alloc.h). */
export type GgmlBackend = { readonly __brand: 'ggml_backend_t' };
export type GgmlBuffer = { readonly __brand: 'ggml_backend_buffer_t' };
export type GgmlBufferType = { readonly __brand: 'ggml_backend_buffer_type_t' };
export type GgmlGallocr = { readonly __brand: 'ggml_gallocr_t' };
export type GgmlSched = { readonly __brand: 'ggml_backend_sched_t' };

// enum ggml_type (ggml.h)
export const GGML_TYPE_F32 = 0;
export const GGML_TYPE_F16 = 1;
export const GGML_TYPE_Q8_0 = 8;
export const GGML_TYPE_BF16 = 30;
export const GGML_TYPE_I32 = 26;
// #define GGML_ROPE_TYPE_NORMAL 0 — what llama.cpp applies to LLM_ARCH_LLAMA
export const GGML_ROPE_TYPE_NORMAL = 0;
// #define GGML_ROPE_TYPE_NEOX 2 — rotates the two halves of a head (Qwen, Gemma)
export const GGML_ROPE_TYPE_NEOX = 2;
// enum ggml_status
export const GGML_STATUS_SUCCESS = 0;
export const GGML_MAX_DIMS = 4;
/** sizeof(struct ggml_object) in ggml.c; ggml_tensor_overhead() = this + sizeof(struct ggml_tensor). */
const GGML_OBJECT_SIZE = 32;

koffi.struct('nodeai_ggml_init_params', {
  mem_size: 'size_t',
  mem_buffer: 'void *',
  no_alloc: 'bool',
});

// struct ggml_threadpool_params (ggml.h), field for field.
const GGML_MAX_N_THREADS = 512;
koffi.struct('nodeai_ggml_threadpool_params', {
  cpumask: koffi.array('bool', GGML_MAX_N_THREADS),
  n_threads: 'int',
  prio: 'int',
  poll: 'uint32_t',
  strict_cpu: 'bool',
  paused: 'bool',
});

// struct ggml_tensor, field for field; only read from JS (shapes, data pointer, view source).
const tensorStruct = koffi.struct('nodeai_ggml_tensor', {
  type: 'int',
  buffer: 'void *',
  ne: koffi.array('int64_t', 4),
  nb: koffi.array('size_t', 4),
  op: 'int',
  op_params: koffi.array('int32_t', 16),
  flags: 'int32_t',
  src: koffi.array('void *', 10),
  view_src: 'void *',
  view_offs: 'size_t',
  data: 'void *',
  name: koffi.array('char', 64),
  extra: 'void *',
  padding: koffi.array('char', 8),
});

type T = GgmlTensor;
type C = GgmlContext;

export interface GgmlApi {
  readonly cpuVariant: string;
  readonly libDir: string;
  init(memSize: number, noAlloc: boolean): C | null;
  free(ctx: C): void;
  usedMem(ctx: C): number;
  tensorOverhead(): number;
  graphOverheadCustom(size: number, grads: boolean): number;
  newTensor1d(ctx: C, type: number, ne0: number): T;
  newTensor2d(ctx: C, type: number, ne0: number, ne1: number): T;
  newTensor3d(ctx: C, type: number, ne0: number, ne1: number, ne2: number): T;
  newTensor4d(ctx: C, type: number, ne0: number, ne1: number, ne2: number, ne3: number): T;
  getFirstTensor(ctx: C): T | null;
  getNextTensor(ctx: C, t: T): T | null;
  nbytes(t: T): number;
  nbytesPad(t: T): number;
  nelements(t: T): number;
  setName(t: T, name: string): T;
  setInput(t: T): void;
  setOutput(t: T): void;
  setParam(t: T): void;
  setLoss(t: T): void;
  add(ctx: C, a: T, b: T): T;
  mul(ctx: C, a: T, b: T): T;
  scale(ctx: C, a: T, s: number): T;
  /** a·s written over a (a view of it). */
  scaleInplace(ctx: C, a: T, s: number): T;
  mulMat(ctx: C, a: T, b: T): T;
  rmsNorm(ctx: C, a: T, eps: number): T;
  silu(ctx: C, a: T): T;
  sqr(ctx: C, a: T): T;
  exp(ctx: C, a: T): T;
  log(ctx: C, a: T): T;
  sub(ctx: C, a: T, b: T): T;
  /** Sum of all elements: a 1-element tensor. */
  sum(ctx: C, a: T): T;
  /** A view of a with rows idx[i] set to b's rows (ggml_set_rows; broadcasts idx over dims 2-3). */
  setRows(ctx: C, a: T, b: T, idx: T): T;
  softplus(ctx: C, a: T): T;
  swigluSplit(ctx: C, a: T, b: T): T;
  getRows(ctx: C, a: T, idx: T): T;
  reshape2d(ctx: C, a: T, ne0: number, ne1: number): T;
  reshape3d(ctx: C, a: T, ne0: number, ne1: number, ne2: number): T;
  reshape4d(ctx: C, a: T, ne0: number, ne1: number, ne2: number, ne3: number): T;
  permute(ctx: C, a: T, ax0: number, ax1: number, ax2: number, ax3: number): T;
  cont(ctx: C, a: T): T;
  diagMaskInf(ctx: C, a: T, nPast: number): T;
  softMaxExt(ctx: C, a: T, mask: T | null, scale: number, maxBias: number): T;
  /** softMaxExt's backward: d(input) from d(output) `dy` and the output `y` (what autodiff builds). */
  softMaxExtBack(ctx: C, dy: T, y: T, scale: number, maxBias: number): T;
  /** silu's backward: d(input) from d(output) `dy` and the input `x` (what autodiff builds). */
  siluBack(ctx: C, dy: T, x: T): T;
  ropeExt(
    ctx: C, a: T, pos: T, freqFactors: T | null, nDims: number, mode: number, nCtxOrig: number,
    freqBase: number, freqScale: number, extFactor: number, attnFactor: number, betaFast: number, betaSlow: number,
  ): T;
  argmax(ctx: C, a: T): T;
  transpose(ctx: C, a: T): T;
  outProd(ctx: C, a: T, b: T): T;
  concat(ctx: C, a: T, b: T, dim: number): T;
  /** a with b added into a's view of b's shape at row strides nb1, nb2, nb3 and byte offset (has a backward, unlike pad/concat). */
  acc(ctx: C, a: T, b: T, nb1: number, nb2: number, nb3: number, offset: number): T;
  view3d(ctx: C, a: T, ne0: number, ne1: number, ne2: number, nb1: number, nb2: number, offset: number): T;
  cpy(ctx: C, a: T, b: T): T;
  isContiguous(t: T): boolean;
  /** enum ggml_op values looked up by name at load (ggml_op_name), so a renumbering cannot go unnoticed. */
  readonly ops: { NONE: number; MUL_MAT: number; OUT_PROD: number; TRANSPOSE: number; CONT: number; VIEW: number; PERMUTE: number; RESHAPE: number };
  /** The node's op (enum ggml_op). */
  op(t: T): number;
  /** src[i] of a node, or null. */
  src(t: T, i: number): T | null;
  /**
   * Turns an existing node into `ggml_mul_mat(a, b)` in place (op and sources only). Only valid when
   * the node is an F32, contiguous tensor of exactly the mul_mat result's shape and has no op params.
   */
  rewriteAsMulMat(node: T, a: T, b: T): void;
  /** Same for `ggml_cont(a)`: a must have the node's shape. */
  rewriteAsCont(node: T, a: T): void;
  /** Byte strides (nb[0..3]) of a tensor. */
  strides(t: T): [number, number, number, number];
  crossEntropyLoss(ctx: C, logits: T, labels: T): T;
  optStepAdamw(ctx: C, a: T, grad: T, m: T, v: T, params: T): T;
  dupTensor(ctx: C, t: T): T;
  /** A leaf sharing t's memory (no source link, so a graph built on it does not pull in t's graph). */
  viewTensor(ctx: C, t: T): T;
  newGraphCustom(ctx: C, size: number, grads: boolean): GgmlGraph;
  buildForwardExpand(g: GgmlGraph, t: T): void;
  buildBackwardExpand(ctx: C, g: GgmlGraph, gradAccs: Array<T | null> | null): void;
  graphGetGrad(g: GgmlGraph, t: T): T | null;
  graphGetGradAcc(g: GgmlGraph, t: T): T | null;
  graphNNodes(g: GgmlGraph): number;
  graphNode(g: GgmlGraph, i: number): T;
  graphReset(g: GgmlGraph): void;
  /** Shape (ne[0..3]) of a tensor, read from the struct. */
  shape(t: T): [number, number, number, number];
  /** Whether the tensor is a view of another (so owns no data in a no_alloc=false context). */
  isView(t: T): boolean;
  /** The tensor a view shows, or null. */
  viewSrc(t: T): T | null;
  /** ggml_op_name of an enum ggml_op value ("MUL_MAT", "CPY", …). */
  opName(op: number): string;
  /** The tensor's ggml_type. */
  type(t: T): number;
  /** Numeric address, to compare pointers (koffi hands out a new wrapper object per call). */
  address(p: T | NativePtr | GgmlGraph | GgmlContext | GgmlBuffer): bigint;

  // ggml-backend: compute on a backend, tensors in backend buffers, a graph allocator for activations.
  /** A CPU backend (ggml_backend_cpu_init) computing with `threads` threads. */
  cpuBackend(threads: number): GgmlBackend;
  backendName(backend: GgmlBackend): string;
  backendFree(backend: GgmlBackend): void;
  backendBufferType(backend: GgmlBackend): GgmlBufferType;
  /** enum ggml_status of ggml_backend_graph_compute (0: success). */
  backendGraphCompute(backend: GgmlBackend, g: GgmlGraph): number;
  backendSupportsOp(backend: GgmlBackend, t: T): boolean;
  /** Allocates every tensor of a no_alloc context in one backend buffer; null when there is nothing to allocate. */
  allocCtxTensors(ctx: C, backend: GgmlBackend): GgmlBuffer | null;
  bufferFree(buffer: GgmlBuffer): void;
  bufferSize(buffer: GgmlBuffer): number;
  bufferIsHost(buffer: GgmlBuffer): boolean;
  /** Copies `data` into the tensor's memory at byte `offset`, on whatever backend it lives (ggml_backend_tensor_set). */
  tensorSet(t: T, data: Float32Array | Int32Array | Uint8Array, offset: number): void;
  /** Copies the tensor's memory from byte `offset` into `into`, on whatever backend it lives (ggml_backend_tensor_get). */
  tensorGet(t: T, into: Float32Array | Int32Array | Uint8Array, offset: number): void;
  /** Sets every byte of the tensor to `value`, on whatever backend it lives (ggml_backend_tensor_memset). */
  tensorMemset(t: T, value: number): void;
  /** The backend buffer a tensor lives in, or null. */
  tensorBuffer(t: T): GgmlBuffer | null;
  gallocrNew(buft: GgmlBufferType): GgmlGallocr;
  /** Places every tensor of the graph that has no memory yet; false when it cannot. */
  gallocrAllocGraph(galloc: GgmlGallocr, g: GgmlGraph): boolean;
  gallocrBufferSize(galloc: GgmlGallocr): number;
  gallocrFree(galloc: GgmlGallocr): void;
  /** Marks a buffer as holding weights, so the scheduler runs the ops that read them on a backend that can (ggml_backend_buffer_set_usage). */
  bufferSetUsageWeights(buffer: GgmlBuffer): void;

  // ggml_backend_sched: one graph over several backends, highest priority first, each op on the
  // first backend that supports it (the last should be the CPU, which supports every op).
  schedNew(backends: GgmlBackend[], graphSize: number): GgmlSched;
  schedFree(sched: GgmlSched): void;
  /** Sizes the scheduler's compute buffers for `g` (the largest graph reserved wins); false when it cannot. */
  schedReserve(sched: GgmlSched, g: GgmlGraph): boolean;
  /** Forgets the previous graph's split and allocation; call before computing a different graph. */
  schedReset(sched: GgmlSched): void;
  /** Splits `g` over the backends and places its tensors (after a reset); false when it cannot. */
  schedAllocGraph(sched: GgmlSched, g: GgmlGraph): boolean;
  /** Computes `g` (splitting and allocating it first unless schedAllocGraph did); enum ggml_status (0: success). */
  schedGraphCompute(sched: GgmlSched, g: GgmlGraph): number;
  schedNSplits(sched: GgmlSched): number;
  /** Bytes of the compute buffer the scheduler holds for `backend` (0 when it shares another backend's). */
  schedBufferSize(sched: GgmlSched, backend: GgmlBackend): number;
  /** The backend the last split assigned the node to, or null. */
  schedTensorBackend(sched: GgmlSched, node: T): GgmlBackend | null;
}

/** `@node-llama-cpp/<platform>-<arch>[-<flavor>]`: the CPU build, or a GPU one ("cuda"). */
export function platformPackage(flavor?: string): string {
  return `@node-llama-cpp/${process.platform}-${process.arch}${flavor ? `-${flavor}` : ''}`;
}

/** The bins/ folder of an installed @node-llama-cpp package, or null when the package is not installed. */
export function packageBinDir(pkg: string): string | null {
  let entry: string;
  try {
    entry = createRequire(import.meta.url).resolve(pkg);
  } catch {
    return null;
  }
  // entry is <pkg>/dist/index.js; the libraries live in <pkg>/bins/<package name without scope>/
  return join(dirname(dirname(entry)), 'bins', pkg.slice(pkg.indexOf('/') + 1));
}

/** The directory holding libggml-base and the libggml-cpu-* variants. */
export function findGgmlLibDir(): string {
  const override = process.env.NODEAI_GGML_DIR;
  if (override) return override;
  const pkg = platformPackage();
  const dir = packageBinDir(pkg);
  if (dir === null) {
    throw new TrainerError(
      'GGML_LOAD_FAILED',
      `The ggml binaries for ${process.platform}-${process.arch} are not installed (npm package ${pkg}). ` +
        'Reinstall dependencies with `npm ci`, or set NODEAI_GGML_DIR to a folder holding libggml-base and libggml-cpu-*.',
    );
  }
  return dir;
}

export function libFile(dir: string, stem: string): string {
  if (process.platform === 'win32') return join(dir, `${stem}.dll`);
  return join(dir, process.platform === 'darwin' ? `lib${stem}.dylib` : `lib${stem}.so`);
}

/** Picks the CPU library: NODEAI_GGML_CPU_VARIANT, else the best one this processor supports. */
export function chooseCpuLibrary(dir: string): { variant: string; path: string } {
  const forced = process.env.NODEAI_GGML_CPU_VARIANT;
  const candidates = forced ? [forced] : [...rankCpuVariants(readCpuFlags()), 'x64'];
  for (const variant of candidates) {
    const path = libFile(dir, `ggml-cpu-${variant}`);
    if (existsSync(path)) return { variant, path };
  }
  // Non-x64 builds ship a single `libggml-cpu`.
  const plain = libFile(dir, 'ggml-cpu');
  if (existsSync(plain)) return { variant: 'default', path: plain };
  throw new TrainerError('GGML_LOAD_FAILED', `No usable libggml-cpu library in ${dir} (tried ${candidates.join(', ')}).`);
}

let cached: GgmlApi | undefined;

/** Loads the libraries once per process. */
export function loadGgml(): GgmlApi {
  if (cached) return cached;
  // Before ggml allocates anything (see malloc-threshold.ts).
  fixMallocMmapThreshold();
  const dir = findGgmlLibDir();
  const basePath = libFile(dir, 'ggml-base');
  let base: ReturnType<typeof koffi.load>;
  let cpu: ReturnType<typeof koffi.load>;
  let variant: string;
  try {
    base = koffi.load(basePath);
    const chosen = chooseCpuLibrary(dir);
    variant = chosen.variant;
    cpu = koffi.load(chosen.path);
  } catch (e) {
    if (e instanceof TrainerError) throw e;
    throw new TrainerError('GGML_LOAD_FAILED', `Could not load ggml from ${dir}: ${(e as Error).message}`);
  }
  const b = (sig: string) => base.func(sig);
  // Each CPU backend's threadpool (cpuBackend), freed with it.
  const cpuThreadpools = new Map<bigint, unknown>();
  const f = {
    init: b('void *ggml_init(nodeai_ggml_init_params params)'),
    free: b('void ggml_free(void *ctx)'),
    used_mem: b('size_t ggml_used_mem(void *ctx)'),
    tensor_overhead: b('size_t ggml_tensor_overhead()'),
    graph_overhead_custom: b('size_t ggml_graph_overhead_custom(size_t size, bool grads)'),
    new_tensor_1d: b('void *ggml_new_tensor_1d(void *ctx, int type, int64_t ne0)'),
    new_tensor_2d: b('void *ggml_new_tensor_2d(void *ctx, int type, int64_t ne0, int64_t ne1)'),
    new_tensor_3d: b('void *ggml_new_tensor_3d(void *ctx, int type, int64_t ne0, int64_t ne1, int64_t ne2)'),
    new_tensor_4d: b('void *ggml_new_tensor_4d(void *ctx, int type, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3)'),
    get_first_tensor: b('void *ggml_get_first_tensor(void *ctx)'),
    get_next_tensor: b('void *ggml_get_next_tensor(void *ctx, void *tensor)'),
    nbytes: b('size_t ggml_nbytes(void *tensor)'),
    nbytes_pad: b('size_t ggml_nbytes_pad(void *tensor)'),
    nelements: b('int64_t ggml_nelements(void *tensor)'),
    set_name: b('void *ggml_set_name(void *tensor, const char *name)'),
    set_input: b('void ggml_set_input(void *tensor)'),
    set_output: b('void ggml_set_output(void *tensor)'),
    set_param: b('void ggml_set_param(void *tensor)'),
    set_loss: b('void ggml_set_loss(void *tensor)'),
    add: b('void *ggml_add(void *ctx, void *a, void *b)'),
    mul: b('void *ggml_mul(void *ctx, void *a, void *b)'),
    scale: b('void *ggml_scale(void *ctx, void *a, float s)'),
    scale_inplace: b('void *ggml_scale_inplace(void *ctx, void *a, float s)'),
    mul_mat: b('void *ggml_mul_mat(void *ctx, void *a, void *b)'),
    rms_norm: b('void *ggml_rms_norm(void *ctx, void *a, float eps)'),
    silu: b('void *ggml_silu(void *ctx, void *a)'),
    sqr: b('void *ggml_sqr(void *ctx, void *a)'),
    exp: b('void *ggml_exp(void *ctx, void *a)'),
    log: b('void *ggml_log(void *ctx, void *a)'),
    sub: b('void *ggml_sub(void *ctx, void *a, void *b)'),
    sum: b('void *ggml_sum(void *ctx, void *a)'),
    set_rows: b('void *ggml_set_rows(void *ctx, void *a, void *b, void *c)'),
    softplus: b('void *ggml_softplus(void *ctx, void *a)'),
    swiglu_split: b('void *ggml_swiglu_split(void *ctx, void *a, void *b)'),
    get_rows: b('void *ggml_get_rows(void *ctx, void *a, void *b)'),
    reshape_2d: b('void *ggml_reshape_2d(void *ctx, void *a, int64_t ne0, int64_t ne1)'),
    reshape_3d: b('void *ggml_reshape_3d(void *ctx, void *a, int64_t ne0, int64_t ne1, int64_t ne2)'),
    reshape_4d: b('void *ggml_reshape_4d(void *ctx, void *a, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3)'),
    permute: b('void *ggml_permute(void *ctx, void *a, int axis0, int axis1, int axis2, int axis3)'),
    cont: b('void *ggml_cont(void *ctx, void *a)'),
    diag_mask_inf: b('void *ggml_diag_mask_inf(void *ctx, void *a, int n_past)'),
    soft_max_ext: b('void *ggml_soft_max_ext(void *ctx, void *a, void *mask, float scale, float max_bias)'),
    soft_max_ext_back: b('void *ggml_soft_max_ext_back(void *ctx, void *a, void *b, float scale, float max_bias)'),
    silu_back: b('void *ggml_silu_back(void *ctx, void *a, void *b)'),
    rope_ext: b(
      'void *ggml_rope_ext(void *ctx, void *a, void *b, void *c, int n_dims, int mode, int n_ctx_orig, ' +
        'float freq_base, float freq_scale, float ext_factor, float attn_factor, float beta_fast, float beta_slow)',
    ),
    argmax: b('void *ggml_argmax(void *ctx, void *a)'),
    transpose: b('void *ggml_transpose(void *ctx, void *a)'),
    out_prod: b('void *ggml_out_prod(void *ctx, void *a, void *b)'),
    concat: b('void *ggml_concat(void *ctx, void *a, void *b, int dim)'),
    acc: b('void *ggml_acc(void *ctx, void *a, void *b, size_t nb1, size_t nb2, size_t nb3, size_t offset)'),
    view_3d: b('void *ggml_view_3d(void *ctx, void *a, int64_t ne0, int64_t ne1, int64_t ne2, size_t nb1, size_t nb2, size_t offset)'),
    cpy: b('void *ggml_cpy(void *ctx, void *a, void *b)'),
    is_contiguous: b('bool ggml_is_contiguous(void *tensor)'),
    op_name: b('const char *ggml_op_name(int op)'),
    cross_entropy_loss: b('void *ggml_cross_entropy_loss(void *ctx, void *a, void *b)'),
    opt_step_adamw: b('void *ggml_opt_step_adamw(void *ctx, void *a, void *grad, void *m, void *v, void *adamw_params)'),
    dup_tensor: b('void *ggml_dup_tensor(void *ctx, void *src)'),
    view_tensor: b('void *ggml_view_tensor(void *ctx, void *src)'),
    new_graph_custom: b('void *ggml_new_graph_custom(void *ctx, size_t size, bool grads)'),
    build_forward_expand: b('void ggml_build_forward_expand(void *cgraph, void *tensor)'),
    build_backward_expand: b('void ggml_build_backward_expand(void *ctx, void *cgraph, void **grad_accs)'),
    graph_get_grad: b('void *ggml_graph_get_grad(void *cgraph, void *node)'),
    graph_get_grad_acc: b('void *ggml_graph_get_grad_acc(void *cgraph, void *node)'),
    graph_n_nodes: b('int ggml_graph_n_nodes(void *cgraph)'),
    graph_node: b('void *ggml_graph_node(void *cgraph, int i)'),
    graph_reset: b('void ggml_graph_reset(void *cgraph)'),
    backend_name: b('const char *ggml_backend_name(void *backend)'),
    backend_free: b('void ggml_backend_free(void *backend)'),
    backend_get_default_buffer_type: b('void *ggml_backend_get_default_buffer_type(void *backend)'),
    backend_graph_compute: b('int ggml_backend_graph_compute(void *backend, void *cgraph)'),
    backend_supports_op: b('bool ggml_backend_supports_op(void *backend, void *op)'),
    backend_alloc_ctx_tensors: b('void *ggml_backend_alloc_ctx_tensors(void *ctx, void *backend)'),
    backend_tensor_set: b('void ggml_backend_tensor_set(void *tensor, const void *data, size_t offset, size_t size)'),
    backend_tensor_get: b('void ggml_backend_tensor_get(void *tensor, void *data, size_t offset, size_t size)'),
    backend_tensor_memset: b('void ggml_backend_tensor_memset(void *tensor, uint8_t value, size_t offset, size_t size)'),
    backend_buffer_free: b('void ggml_backend_buffer_free(void *buffer)'),
    backend_buffer_get_size: b('size_t ggml_backend_buffer_get_size(void *buffer)'),
    backend_buffer_is_host: b('bool ggml_backend_buffer_is_host(void *buffer)'),
    gallocr_new: b('void *ggml_gallocr_new(void *buft)'),
    gallocr_alloc_graph: b('bool ggml_gallocr_alloc_graph(void *galloc, void *cgraph)'),
    gallocr_get_buffer_size: b('size_t ggml_gallocr_get_buffer_size(void *galloc, int buffer_id)'),
    gallocr_free: b('void ggml_gallocr_free(void *galloc)'),
    buffer_set_usage: b('void ggml_backend_buffer_set_usage(void *buffer, int usage)'),
    sched_new: b('void *ggml_backend_sched_new(void **backends, void **bufts, int n_backends, size_t graph_size, bool parallel, bool op_offload)'),
    sched_free: b('void ggml_backend_sched_free(void *sched)'),
    sched_reserve: b('bool ggml_backend_sched_reserve(void *sched, void *measure_graph)'),
    sched_reset: b('void ggml_backend_sched_reset(void *sched)'),
    sched_alloc_graph: b('bool ggml_backend_sched_alloc_graph(void *sched, void *cgraph)'),
    sched_graph_compute: b('int ggml_backend_sched_graph_compute(void *sched, void *cgraph)'),
    sched_get_n_splits: b('int ggml_backend_sched_get_n_splits(void *sched)'),
    sched_get_buffer_size: b('size_t ggml_backend_sched_get_buffer_size(void *sched, void *backend)'),
    sched_get_tensor_backend: b('void *ggml_backend_sched_get_tensor_backend(void *sched, void *node)'),
    cpu_init: cpu.func('void ggml_cpu_init()'),
    backend_cpu_init: cpu.func('void *ggml_backend_cpu_init()'),
    backend_cpu_set_n_threads: cpu.func('void ggml_backend_cpu_set_n_threads(void *backend, int n_threads)'),
    threadpool_params_default: b('nodeai_ggml_threadpool_params ggml_threadpool_params_default(int n_threads)'),
    threadpool_new: cpu.func('void *ggml_threadpool_new(nodeai_ggml_threadpool_params *params)'),
    threadpool_free: cpu.func('void ggml_threadpool_free(void *threadpool)'),
    backend_cpu_set_threadpool: cpu.func('void ggml_backend_cpu_set_threadpool(void *backend, void *threadpool)'),
  };
  f.cpu_init();

  const tensorSize = koffi.sizeof(tensorStruct);
  const overhead = Number(f.tensor_overhead());
  if (tensorSize + GGML_OBJECT_SIZE !== overhead) {
    throw new TrainerError(
      'GGML_LOAD_FAILED',
      `ggml struct layout mismatch (tensor ${tensorSize} + object ${GGML_OBJECT_SIZE} != ggml_tensor_overhead() ${overhead}): ` +
        'the installed ggml is not the version these bindings were written for.',
    );
  }
  const neOffset = koffi.offsetof(tensorStruct, 'ne');
  const viewSrcOffset = koffi.offsetof(tensorStruct, 'view_src');
  const opOffset = koffi.offsetof(tensorStruct, 'op');
  const srcOffset = koffi.offsetof(tensorStruct, 'src');
  const nbOffset = koffi.offsetof(tensorStruct, 'nb');
  const bufferOffset = koffi.offsetof(tensorStruct, 'buffer');
  const ptrSize = koffi.sizeof('void *');
  const opCode = (name: string): number => {
    // GGML_OP_COUNT is below 128 in every ggml release; ggml_op_name indexes a table, so stay inside it.
    for (let i = 0; i < 100; i++) if (f.op_name(i) === name) return i;
    throw new TrainerError('GGML_LOAD_FAILED', `ggml has no op named ${name}: the installed ggml is not the version these bindings were written for.`);
  };
  const ops = {
    NONE: opCode('NONE'),
    MUL_MAT: opCode('MUL_MAT'),
    OUT_PROD: opCode('OUT_PROD'),
    TRANSPOSE: opCode('TRANSPOSE'),
    CONT: opCode('CONT'),
    VIEW: opCode('VIEW'),
    PERMUTE: opCode('PERMUTE'),
    RESHAPE: opCode('RESHAPE'),
  };

  const n = (v: number | bigint) => Number(v);
  const api: GgmlApi = {
    cpuVariant: variant,
    libDir: dir,
    init: (memSize, noAlloc) => f.init({ mem_size: memSize, mem_buffer: null, no_alloc: noAlloc }),
    free: (ctx) => f.free(ctx),
    usedMem: (ctx) => n(f.used_mem(ctx)),
    tensorOverhead: () => overhead,
    graphOverheadCustom: (size, grads) => n(f.graph_overhead_custom(size, grads)),
    newTensor1d: (ctx, type, ne0) => f.new_tensor_1d(ctx, type, ne0),
    newTensor2d: (ctx, type, ne0, ne1) => f.new_tensor_2d(ctx, type, ne0, ne1),
    newTensor3d: (ctx, type, ne0, ne1, ne2) => f.new_tensor_3d(ctx, type, ne0, ne1, ne2),
    newTensor4d: (ctx, type, ne0, ne1, ne2, ne3) => f.new_tensor_4d(ctx, type, ne0, ne1, ne2, ne3),
    getFirstTensor: (ctx) => f.get_first_tensor(ctx),
    getNextTensor: (ctx, t) => f.get_next_tensor(ctx, t),
    nbytes: (t) => n(f.nbytes(t)),
    nbytesPad: (t) => n(f.nbytes_pad(t)),
    nelements: (t) => n(f.nelements(t)),
    setName: (t, name) => f.set_name(t, name.slice(0, 63)),
    setInput: (t) => f.set_input(t),
    setOutput: (t) => f.set_output(t),
    setParam: (t) => f.set_param(t),
    setLoss: (t) => f.set_loss(t),
    add: (ctx, a, bb) => f.add(ctx, a, bb),
    mul: (ctx, a, bb) => f.mul(ctx, a, bb),
    scale: (ctx, a, s) => f.scale(ctx, a, s),
    scaleInplace: (ctx, a, s) => f.scale_inplace(ctx, a, s),
    mulMat: (ctx, a, bb) => f.mul_mat(ctx, a, bb),
    rmsNorm: (ctx, a, eps) => f.rms_norm(ctx, a, eps),
    silu: (ctx, a) => f.silu(ctx, a),
    sqr: (ctx, a) => f.sqr(ctx, a),
    exp: (ctx, a) => f.exp(ctx, a),
    log: (ctx, a) => f.log(ctx, a),
    sub: (ctx, a, bb) => f.sub(ctx, a, bb),
    sum: (ctx, a) => f.sum(ctx, a),
    setRows: (ctx, a, bb, idx) => f.set_rows(ctx, a, bb, idx),
    softplus: (ctx, a) => f.softplus(ctx, a),
    swigluSplit: (ctx, a, bb) => f.swiglu_split(ctx, a, bb),
    getRows: (ctx, a, idx) => f.get_rows(ctx, a, idx),
    reshape2d: (ctx, a, ne0, ne1) => f.reshape_2d(ctx, a, ne0, ne1),
    reshape3d: (ctx, a, ne0, ne1, ne2) => f.reshape_3d(ctx, a, ne0, ne1, ne2),
    reshape4d: (ctx, a, ne0, ne1, ne2, ne3) => f.reshape_4d(ctx, a, ne0, ne1, ne2, ne3),
    permute: (ctx, a, a0, a1, a2, a3) => f.permute(ctx, a, a0, a1, a2, a3),
    cont: (ctx, a) => f.cont(ctx, a),
    diagMaskInf: (ctx, a, nPast) => f.diag_mask_inf(ctx, a, nPast),
    softMaxExt: (ctx, a, mask, s, maxBias) => f.soft_max_ext(ctx, a, mask, s, maxBias),
    softMaxExtBack: (ctx, dy, y, s, maxBias) => f.soft_max_ext_back(ctx, dy, y, s, maxBias),
    siluBack: (ctx, dy, x) => f.silu_back(ctx, dy, x),
    ropeExt: (ctx, a, pos, ff, nDims, mode, nCtxOrig, fb, fs, ef, af, bf, bs) =>
      f.rope_ext(ctx, a, pos, ff, nDims, mode, nCtxOrig, fb, fs, ef, af, bf, bs),
    argmax: (ctx, a) => f.argmax(ctx, a),
    transpose: (ctx, a) => f.transpose(ctx, a),
    outProd: (ctx, a, bb) => f.out_prod(ctx, a, bb),
    concat: (ctx, a, bb, dim) => f.concat(ctx, a, bb, dim),
    acc: (ctx, a, bb, nb1, nb2, nb3, offset) => f.acc(ctx, a, bb, nb1, nb2, nb3, offset),
    view3d: (ctx, a, ne0, ne1, ne2, nb1, nb2, offset) => f.view_3d(ctx, a, ne0, ne1, ne2, nb1, nb2, offset),
    cpy: (ctx, a, bb) => f.cpy(ctx, a, bb),
    isContiguous: (t) => f.is_contiguous(t),
    ops,
    op: (t) => koffi.decode(t, opOffset, 'int') as number,
    src: (t, i) => koffi.decode(t, srcOffset + i * ptrSize, 'void *') as T | null,
    rewriteAsMulMat: (node, a, bb) => {
      koffi.encode(node, opOffset, 'int', ops.MUL_MAT);
      koffi.encode(node, srcOffset, 'void *', a);
      koffi.encode(node, srcOffset + ptrSize, 'void *', bb);
    },
    rewriteAsCont: (node, a) => {
      koffi.encode(node, opOffset, 'int', ops.CONT);
      koffi.encode(node, srcOffset, 'void *', a);
      koffi.encode(node, srcOffset + ptrSize, 'void *', null);
    },
    strides: (t) => {
      const nb = koffi.decode(t, nbOffset, 'size_t', 4) as Array<number | bigint>;
      return [n(nb[0]), n(nb[1]), n(nb[2]), n(nb[3])];
    },
    crossEntropyLoss: (ctx, logits, labels) => f.cross_entropy_loss(ctx, logits, labels),
    optStepAdamw: (ctx, a, grad, m, v, p) => f.opt_step_adamw(ctx, a, grad, m, v, p),
    dupTensor: (ctx, t) => f.dup_tensor(ctx, t),
    viewTensor: (ctx, t) => f.view_tensor(ctx, t),
    newGraphCustom: (ctx, size, grads) => f.new_graph_custom(ctx, size, grads),
    buildForwardExpand: (g, t) => f.build_forward_expand(g, t),
    buildBackwardExpand: (ctx, g, accs) => f.build_backward_expand(ctx, g, accs),
    graphGetGrad: (g, t) => f.graph_get_grad(g, t),
    graphGetGradAcc: (g, t) => f.graph_get_grad_acc(g, t),
    graphNNodes: (g) => f.graph_n_nodes(g),
    graphNode: (g, i) => f.graph_node(g, i),
    graphReset: (g) => f.graph_reset(g),
    shape: (t) => {
      const ne = koffi.decode(t, neOffset, 'int64_t', 4) as Array<number | bigint>;
      return [n(ne[0]), n(ne[1]), n(ne[2]), n(ne[3])];
    },
    isView: (t) => koffi.decode(t, viewSrcOffset, 'void *') !== null,
    viewSrc: (t) => koffi.decode(t, viewSrcOffset, 'void *') as T | null,
    address: (p) => koffi.address(p),
    opName: (op) => f.op_name(op) as string,
    type: (t) => koffi.decode(t, 0, 'int') as number,
    cpuBackend: (threads) => {
      const backend = f.backend_cpu_init();
      if (!backend) throw new TrainerError('GGML_COMPUTE_FAILED', 'ggml_backend_cpu_init failed (out of memory?)');
      f.backend_cpu_set_n_threads(backend, threads);
      if (threads > 1) {
        // Without a threadpool of its own, ggml-cpu starts and joins its worker threads in every
        // graph compute: once per CPU segment of a scheduled graph, ~110 a step on the reference
        // config, between oneDNN's products. A pool that keeps them, sleeping as soon as a segment
        // ends (poll 0) rather than spinning on the cores oneDNN's threads then need, took its
        // two-thread step from 45–49 to 40–42 ms; polling at 1 or the default 50 took 70–77 ms
        // (2026-11-30).
        const params = f.threadpool_params_default(threads) as { poll: number };
        params.poll = 0;
        const pool = f.threadpool_new(params);
        if (!pool) throw new TrainerError('GGML_COMPUTE_FAILED', 'ggml_threadpool_new failed (out of memory?)');
        f.backend_cpu_set_threadpool(backend, pool);
        cpuThreadpools.set(koffi.address(backend), pool);
      }
      return backend;
    },
    backendName: (backend) => f.backend_name(backend) as string,
    backendFree: (backend) => {
      f.backend_free(backend);
      const pool = cpuThreadpools.get(koffi.address(backend));
      if (pool) {
        cpuThreadpools.delete(koffi.address(backend));
        f.threadpool_free(pool);
      }
    },
    backendBufferType: (backend) => f.backend_get_default_buffer_type(backend),
    backendGraphCompute: (backend, gr) => f.backend_graph_compute(backend, gr),
    backendSupportsOp: (backend, t) => f.backend_supports_op(backend, t),
    allocCtxTensors: (ctx, backend) => f.backend_alloc_ctx_tensors(ctx, backend),
    bufferFree: (buffer) => f.backend_buffer_free(buffer),
    bufferSize: (buffer) => n(f.backend_buffer_get_size(buffer)),
    bufferIsHost: (buffer) => f.backend_buffer_is_host(buffer),
    tensorSet: (t, data, offset) => {
      if (offset < 0 || offset + data.byteLength > n(f.nbytes(t))) throw new TrainerError('GGML_COMPUTE_FAILED', `tensor write of ${data.byteLength} bytes at ${offset} is outside the tensor`);
      f.backend_tensor_set(t, data, offset, data.byteLength);
    },
    tensorGet: (t, into, offset) => {
      if (offset < 0 || offset + into.byteLength > n(f.nbytes(t))) throw new TrainerError('GGML_COMPUTE_FAILED', `tensor read of ${into.byteLength} bytes at ${offset} is outside the tensor`);
      f.backend_tensor_get(t, into, offset, into.byteLength);
    },
    tensorMemset: (t, value) => f.backend_tensor_memset(t, value, 0, f.nbytes(t)),
    tensorBuffer: (t) => koffi.decode(t, bufferOffset, 'void *') as GgmlBuffer | null,
    gallocrNew: (buft) => {
      const galloc = f.gallocr_new(buft);
      if (!galloc) throw new TrainerError('GGML_COMPUTE_FAILED', 'ggml_gallocr_new failed (out of memory?)');
      return galloc;
    },
    gallocrAllocGraph: (galloc, gr) => f.gallocr_alloc_graph(galloc, gr),
    gallocrBufferSize: (galloc) => n(f.gallocr_get_buffer_size(galloc, 0)),
    gallocrFree: (galloc) => f.gallocr_free(galloc),
    // enum ggml_backend_buffer_usage: GGML_BACKEND_BUFFER_USAGE_WEIGHTS = 1
    bufferSetUsageWeights: (buffer) => f.buffer_set_usage(buffer, 1),
    schedNew: (backends, graphSize) => {
      // bufts NULL: each backend's default buffer type. Not parallel (no pipeline copies), no op offload.
      const sched = f.sched_new(backends, null, backends.length, graphSize, false, false);
      if (!sched) throw new TrainerError('GGML_COMPUTE_FAILED', 'ggml_backend_sched_new failed (out of memory?)');
      return sched;
    },
    schedFree: (sched) => f.sched_free(sched),
    schedReserve: (sched, gr) => f.sched_reserve(sched, gr),
    schedReset: (sched) => f.sched_reset(sched),
    schedAllocGraph: (sched, gr) => f.sched_alloc_graph(sched, gr),
    schedGraphCompute: (sched, gr) => f.sched_graph_compute(sched, gr),
    schedNSplits: (sched) => f.sched_get_n_splits(sched),
    schedBufferSize: (sched, backend) => n(f.sched_get_buffer_size(sched, backend)),
    schedTensorBackend: (sched, node) => f.sched_get_tensor_backend(sched, node),
  };
  cached = api;
  return api;
}

