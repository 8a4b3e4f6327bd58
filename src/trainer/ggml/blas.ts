// ggml's BLAS backend, built by scripts/build-ggml-blas.sh from the llama.cpp source node-llama-cpp
// ships, so the trainer's large matmuls can run on oneDNN's matmuls (when oneDNN is installed; BF16
// ones on AMX tiles where the CPU has them) or OpenBLAS's sgemm instead of ggml-cpu's kernels. The library links to libggml-base by soname: loaded after loadGgml() it binds
// to the libggml-base the trainer already uses, so the process keeps one copy of ggml (as device.ts
// does for libggml-cuda).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';
import { TrainerError } from '../train-errors.js';
import { TRAINING_MATMULS, type TrainingMatmul } from '../training-device.js';
import { readCpuFlags } from './cpu-variant.js';
import type { ComputeDevice } from './device.js';
import { PROJECT_ROOT, withoutInstallRoot } from './install-paths.js';
import { loadGgml, type GgmlApi, type GgmlBackend } from './lib.js';

/** log2 of the cycles OpenBLAS's idle worker threads spin before sleeping (inspectBlas says why). */
export const OPENBLAS_THREAD_TIMEOUT_LOG2 = 4;

/** The command that builds the library, for messages. */
export const BLAS_BUILD_COMMAND = 'bash scripts/build-ggml-blas.sh';

/**
 * Who computes the trainer's large matmuls on the CPU: ggml-cpu's own kernels, or oneDNN/OpenBLAS
 * through ggml's BLAS backend. `reason` says why, for the job's events.
 */
export type MatmulBackend =
  | { kind: 'ggml'; reason: string }
  | ({ kind: 'blas'; reason: string } & BlasLibrary);

/** A loaded BLAS backend library: who computes, what it is fast at, and how to start one. */
export interface BlasLibrary {
  /** "oneDNN 2.6.3 (AMX BF16 tiles)", "OpenBLAS 0.3.21 (Cooperlake kernels)". */
  name: string;
  /**
   * Whether it takes every F32 product: with a dimension under 32 (LoRA's), batched out_prods
   * (attention's backward), and operands read in place through their strides — oneDNN's.
   * OpenBLAS's is slow on skinny products, and ggml-blas gives it contiguous operands only (but
   * out_prod's transposed second one) and out_prods of matrices only.
   */
  everyF32Product: boolean;
  /** Whether it multiplies BF16 weights in BF16 on this CPU (oneDNN with AVX-512 BF16 or AMX) instead of converting them to F32. */
  bf16: boolean;
  createBackend: CreateBlasBackend;
}

/** Which matmuls the BLAS backend leaves to ggml-cpu (scripts/ggml-blas/matmul-limits.cpp says why). */
export interface BlasLimits {
  /** A matmul by a non-F32 weight whose F32 copy would be larger than this many bytes. */
  maxConvertedBytes: number;
  /** A matmul of fewer multiply-adds than this. */
  minMultiplyAdds: number;
}

/** Limits that leave nothing to ggml-cpu but what the BLAS backend cannot do. */
export const NO_BLAS_LIMITS: BlasLimits = { maxConvertedBytes: Number.MAX_SAFE_INTEGER, minMultiplyAdds: 0 };

/**
 * A new BLAS backend computing with `threads` threads of its library, which leaves the matmuls `limits`
 * names to the CPU (the limits are one per process). The caller frees it.
 */
export type CreateBlasBackend = (threads: number, limits: BlasLimits) => GgmlBackend;

/** What the probe found: a loadable BLAS backend, or what is missing and what to do about it. */
export type BlasProbe =
  | ({ ok: true; path: string } & BlasLibrary)
  | { ok: false; missing: string; fix: string };

/** build/ggml-blas/libggml-blas.so of this checkout, or NODEAI_GGML_BLAS_LIB. */
export function blasLibraryPath(): string {
  const override = process.env.NODEAI_GGML_BLAS_LIB;
  if (override) return override;
  return join(PROJECT_ROOT, 'build', 'ggml-blas', 'libggml-blas.so');
}

/**
 * The OPENBLAS_CORETYPE for a CPU with these /proc/cpuinfo flags, or null to let OpenBLAS decide.
 * OpenBLAS picks its kernels by CPU model number, and an unknown one (a virtual machine's "Intel
 * Xeon Processor", a CPU newer than the library) falls back to Prescott's SSE3 kernels: measured
 * 2026-11-30 with Debian's 0.3.21 on such a VM, 1024×576·576×1536 at one thread ran at 14 GFLOP/s
 * against 94–126 with the AVX-512 kernels (bench/blas-matmul.ts). The instruction sets decide here.
 */
export function openblasCoreType(flags: Set<string>): string | null {
  const has = (...names: string[]) => names.every((f) => flags.has(f));
  if (has('avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl')) return has('avx512_bf16') ? 'Cooperlake' : 'SkylakeX';
  if (has('avx2', 'fma')) return 'Haswell';
  return null;
}

/** Loads the library at `path` and binds its backend; never throws. */
export function inspectBlas(g: GgmlApi, path: string, flags: Set<string> = readCpuFlags()): BlasProbe {
  // g is taken so that libggml-base is loaded before the library that needs it.
  void g;
  if (!existsSync(path)) {
    return { ok: false, missing: withoutInstallRoot(`ggml's BLAS backend (${path} is not built)`), fix: `run \`${BLAS_BUILD_COMMAND}\` (needs g++ and OpenBLAS: Debian libopenblas0)` };
  }
  // OpenBLAS reads these when it is loaded (below, as the backend's dependency); a value the user set wins.
  const coreType = openblasCoreType(flags);
  if (coreType && !process.env.OPENBLAS_CORETYPE) process.env.OPENBLAS_CORETYPE = coreType;
  // After each sgemm OpenBLAS's worker threads spin for 2^28 cycles (~0.1 s) before they sleep, on
  // the cores ggml-cpu's threads need for the ops between two matmuls; 2^4 (the least) lets them
  // sleep at once. Measured 2026-11-30, smol_lora at two threads on two cores: 44–46 tok/s spinning,
  // 133–150 sleeping, against 78–82 on ggml-cpu alone.
  if (!process.env.OPENBLAS_THREAD_TIMEOUT) process.env.OPENBLAS_THREAD_TIMEOUT = String(OPENBLAS_THREAD_TIMEOUT_LOG2);
  // The same for oneDNN's OpenMP threads (libgomp spins ~300,000 rounds after each parallel region
  // by default): smol_lora with a BF16 base at two threads took 14.3–15.8 s a step spinning,
  // 3.7–4.9 s passive, 4.4–11.4 s with GOMP_SPINCOUNT=10000 (2026-11-30).
  if (!process.env.OMP_WAIT_POLICY) process.env.OMP_WAIT_POLICY = 'passive';
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load(path);
  } catch (e) {
    return { ok: false, missing: withoutInstallRoot(`a loadable ${path} (${(e as Error).message})`), fix: `rebuild it with \`${BLAS_BUILD_COMMAND}\`` };
  }
  let init: (maxConvertedBytes: number, minMultiplyAdds: number, threads: number) => GgmlBackend | null;
  try {
    init = lib.func('void *nodeai_ggml_backend_blas_init(size_t max_bytes, int64_t min_multiply_adds, int threads)') as typeof init;
  } catch {
    return { ok: false, missing: withoutInstallRoot(`the matmul limits in ${path} (built by an older build script)`), fix: `rebuild it with \`${BLAS_BUILD_COMMAND}\`` };
  }
  let vendor: string | null;
  let bf16: boolean;
  try {
    // A build with oneDNN names it and says whether this CPU multiplies BF16 in BF16
    // (scripts/ggml-blas/onednn-matmul.cpp); an OpenBLAS build returns NULL and false.
    vendor = (lib.func('const char *nodeai_ggml_blas_vendor()') as () => string | null)();
    bf16 = (lib.func('bool nodeai_ggml_blas_bf16()') as () => boolean)();
  } catch {
    return { ok: false, missing: withoutInstallRoot(`the library name in ${path} (built by an older build script)`), fix: `rebuild it with \`${BLAS_BUILD_COMMAND}\`` };
  }
  return {
    ok: true,
    path,
    name: vendor ?? openblasName(),
    everyF32Product: vendor !== null,
    bf16,
    createBackend: (threads, limits) => {
      const backend = init(limits.maxConvertedBytes, limits.minMultiplyAdds, threads);
      if (!backend) throw new TrainerError('GGML_COMPUTE_FAILED', 'ggml_backend_blas_init failed (out of memory?)');
      return backend;
    },
  };
}

/** "OpenBLAS 0.3.21 (Cooperlake kernels)", from the OpenBLAS the backend loaded. */
function openblasName(): string {
  try {
    // Already loaded as the backend's dependency: this only looks its symbols up.
    const openblas = koffi.load('libopenblas.so.0');
    const config = (openblas.func('const char *openblas_get_config()') as () => string)().split(' ')[1];
    const core = (openblas.func('const char *openblas_get_corename()') as () => string)();
    return `OpenBLAS ${config} (${core} kernels)`;
  } catch {
    // Another BLAS, or a differently named OpenBLAS: the generic name will do.
    return 'OpenBLAS';
  }
}

let probe: BlasProbe | undefined;

/** The BLAS probe of this checkout's library, once per process; never throws. */
export function probeBlas(g: GgmlApi = loadGgml()): BlasProbe {
  probe ??= inspectBlas(g, blasLibraryPath());
  return probe;
}

/**
 * Who computes a run's large matmuls. `ggml`: ggml-cpu. `blas`: ggml's BLAS backend (oneDNN or
 * OpenBLAS), or a DEVICE_UNAVAILABLE error naming what is missing and what to do. `auto`: the BLAS
 * backend when it is built, else ggml-cpu with what is missing. Measured 2026-11-30 on 2 cores
 * (bench/lora-step.ts, npm run bench:trainer): OpenBLAS took smol_lora from 40.5 to 91.3 tok/s at
 * one thread and from 78–82 to 133–150 at two once its idle threads sleep (OPENBLAS_THREAD_TIMEOUT
 * above; spinning they made it 44–46); oneDNN is faster again (BENCHMARKS.md). The golden trajectory
 * holds with either. A CUDA device computes its own matmuls.
 */
export function chooseMatmul(requested: TrainingMatmul, device: ComputeDevice, probe: (g: GgmlApi) => BlasProbe = probeBlas): MatmulBackend {
  if (!TRAINING_MATMULS.includes(requested)) {
    throw new TrainerError('BAD_OPTION', `matmul must be one of ${TRAINING_MATMULS.map((m) => `"${m}"`).join(', ')}, got ${JSON.stringify(requested)}.`);
  }
  if (requested === 'ggml') return { kind: 'ggml', reason: 'matmul "ggml" was asked for' };
  if (device.kind !== 'cpu') {
    if (requested === 'blas') throw new TrainerError('BAD_OPTION', `matmul "blas" computes on the CPU, but this run trains on ${device.name}: set device to "cpu", or matmul to "auto".`);
    return { kind: 'ggml', reason: `${device.name} computes every op it has, matmuls included` };
  }
  const blas = probe(loadGgml());
  if (blas.ok) {
    const reason = requested === 'blas' ? 'matmul "blas" was asked for' : `matmul "auto" found ggml's BLAS backend (${withoutInstallRoot(blas.path)})`;
    const { name, everyF32Product, bf16, createBackend } = blas;
    return { kind: 'blas', reason, name, everyF32Product, bf16, createBackend };
  }
  if (requested === 'auto') return { kind: 'ggml', reason: `ggml's BLAS backend is not used: missing ${blas.missing}; to use it, ${blas.fix}` };
  throw new TrainerError('DEVICE_UNAVAILABLE', `Cannot compute matmuls with ggml's BLAS backend: missing ${blas.missing}. To fix: ${blas.fix}; or set matmul to "ggml" (or "auto").`, { missing: blas.missing });
}

/** The job event that says who computes the matmuls and why. */
export function matmulEvent(matmul: MatmulBackend): string {
  return matmul.kind === 'blas' ? `Matmuls through ${matmul.name}: ${matmul.reason}.` : `Matmuls on ggml's own kernels: ${matmul.reason}.`;
}
