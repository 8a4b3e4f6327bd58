// Which device the trainer computes on, decided in this one place: the CPU backend of the
// @node-llama-cpp CPU package, or ggml's CUDA backend from the prebuilt @node-llama-cpp CUDA package
// (a registry package; nothing is downloaded at run time).
//
// The CUDA package ships the same ggml release as the CPU one (v0.4.0, byte-identical libggml-base
// and libggml-cpu-*), so only libggml-cuda is loaded from it: its DT_NEEDED libggml-base resolves,
// by soname, to the libggml-base loadGgml already loaded, and the process keeps one copy of ggml.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';
import { TrainerError } from '../train-errors.js';
import { TRAINING_DEVICES, type TrainingDevice } from '../training-device.js';
import { withoutInstallRoot } from './install-paths.js';
import { libFile, loadGgml, packageBinDir, platformPackage, type GgmlApi, type GgmlBackend } from './lib.js';

export { TRAINING_DEVICES, type TrainingDevice };

/** The device a trainer computes on, and why it was chosen (for the job's events). */
export interface ComputeDevice {
  /** `test`: the stand-in accelerator of the trainer's tests (ggml/test-device.ts). */
  kind: 'cpu' | 'cuda' | 'test';
  /** In words: "CPU (ggml-cpu haswell, 4 threads)", "CUDA0: NVIDIA H200". */
  name: string;
  /** Why this device: the request, or why `auto` did not pick CUDA. */
  reason: string;
  /** A new ggml backend on this device; the caller frees it. */
  createBackend(threads: number): GgmlBackend;
}

/** What the CUDA probe found: a usable device, or what is missing and what to do about it. */
export type CudaProbe =
  | { ok: true; deviceName: string; createBackend(): GgmlBackend }
  | { ok: false; missing: string; fix: string };

/** The bins folder of the CUDA package: NODEAI_GGML_CUDA_DIR, else the installed @node-llama-cpp/<platform>-cuda. */
function cudaLibDir(): string | null {
  return process.env.NODEAI_GGML_CUDA_DIR ?? packageBinDir(platformPackage('cuda'));
}

/** What to do when a shared library libggml-cuda needs is not found. */
function fixForMissingLibrary(lib: string): string {
  if (lib.startsWith('libcuda.so')) return 'install the NVIDIA driver (it provides libcuda.so.1) on a machine with an NVIDIA GPU';
  return `install the CUDA runtime libraries that provide ${lib} (cuBLAS/cudart of CUDA 13), or add their folder to LD_LIBRARY_PATH`;
}

/** The llama.cpp release a @node-llama-cpp bins folder was built from, or null when it does not say. */
function buildRelease(dir: string): string | null {
  try {
    const meta = JSON.parse(readFileSync(join(dir, '_nlcBuildMetadata.json'), 'utf8')) as { buildOptions?: { llamaCpp?: { release?: string } } };
    return meta.buildOptions?.llamaCpp?.release ?? null;
  } catch {
    return null;
  }
}

let cudaProbe: CudaProbe | undefined;

/** The CUDA probe of the installed CUDA package, once per process; never throws. */
export function probeCuda(g: GgmlApi = loadGgml()): CudaProbe {
  cudaProbe ??= inspectCuda(g, cudaLibDir());
  return cudaProbe;
}

/** Loads libggml-cuda from `dir` (null: no CUDA package) and asks it for a device; never throws. */
export function inspectCuda(g: GgmlApi, dir: string | null): CudaProbe {
  if (process.platform !== 'linux' && process.platform !== 'win32') {
    return { ok: false, missing: `a CUDA build of ggml for ${process.platform}`, fix: 'train on the CPU (device "cpu")' };
  }
  const pkg = platformPackage('cuda');
  if (dir === null || !existsSync(libFile(dir, 'ggml-cuda'))) {
    return { ok: false, missing: `the npm package ${pkg} (libggml-cuda)`, fix: `install it (npm install ${pkg}@<node-llama-cpp's version>), or set NODEAI_GGML_CUDA_DIR to a folder holding libggml-cuda` };
  }
  const cpuRelease = buildRelease(g.libDir);
  const cudaRelease = buildRelease(dir);
  if (cpuRelease !== cudaRelease) {
    return {
      ok: false,
      missing: `a CUDA ggml of the same release as the CPU one (${pkg} is ${cudaRelease ?? 'unknown'}, the CPU package ${cpuRelease ?? 'unknown'})`,
      fix: `install ${pkg} at the same version as ${platformPackage()}`,
    };
  }
  let lib: ReturnType<typeof koffi.load>;
  try {
    lib = koffi.load(libFile(dir, 'ggml-cuda'));
  } catch (e) {
    const message = (e as Error).message;
    const lost = /([\w.+-]+\.so[.\d]*): cannot open shared object file/.exec(message)?.[1];
    if (lost) return { ok: false, missing: withoutInstallRoot(`${lost} (needed by ${libFile(dir, 'ggml-cuda')})`), fix: fixForMissingLibrary(lost) };
    return { ok: false, missing: withoutInstallRoot(`a loadable libggml-cuda (${message})`), fix: 'reinstall the CUDA package, or train on the CPU (device "cpu")' };
  }
  const deviceCount = lib.func('int ggml_backend_cuda_get_device_count()') as () => number;
  const describe = lib.func('void ggml_backend_cuda_get_device_description(int device, _Out_ char *description, size_t description_size)');
  const cudaInit = lib.func('void *ggml_backend_cuda_init(int device)') as (device: number) => GgmlBackend | null;
  if (deviceCount() < 1) {
    return { ok: false, missing: 'a CUDA device (the driver and libraries load, but report no GPU)', fix: 'check nvidia-smi and CUDA_VISIBLE_DEVICES, or train on the CPU (device "cpu")' };
  }
  const buf = Buffer.alloc(256);
  describe(0, buf, buf.length);
  const deviceName = `CUDA0: ${buf.toString('utf8', 0, Math.max(0, buf.indexOf(0)))}`;
  const createBackend = (): GgmlBackend => {
    const backend = cudaInit(0);
    if (!backend) throw new TrainerError('DEVICE_UNAVAILABLE', `ggml_backend_cuda_init(0) failed on ${deviceName} (out of GPU memory?). Train on the CPU (device "cpu") or free the GPU.`);
    return backend;
  };
  return { ok: true, deviceName, createBackend };
}

/** The CPU device in words. */
function cpuDevice(g: GgmlApi, reason: string): ComputeDevice {
  return { kind: 'cpu', name: `CPU (ggml-cpu ${g.cpuVariant})`, reason, createBackend: (threads) => g.cpuBackend(threads) };
}

/**
 * The device a job trains on. `cpu`: the CPU. `cuda`: the CUDA device, or a DEVICE_UNAVAILABLE
 * error naming what is missing and what to do. `auto`: CUDA when the probe finds a usable device,
 * else the CPU, with the probe's reason.
 */
export function chooseComputeDevice(requested: TrainingDevice, probe: (g: GgmlApi) => CudaProbe = probeCuda): ComputeDevice {
  if (!TRAINING_DEVICES.includes(requested)) {
    throw new TrainerError('BAD_OPTION', `device must be one of ${TRAINING_DEVICES.map((d) => `"${d}"`).join(', ')}, got ${JSON.stringify(requested)}.`);
  }
  const g = loadGgml();
  if (requested === 'cpu') return cpuDevice(g, 'device "cpu" was asked for');
  const cuda = probe(g);
  if (cuda.ok) {
    return {
      kind: 'cuda',
      name: cuda.deviceName,
      reason: requested === 'cuda' ? 'device "cuda" was asked for' : 'device "auto" found a CUDA device',
      // ggml's CUDA backend computes with the GPU; its thread count does not apply.
      createBackend: () => cuda.createBackend(),
    };
  }
  if (requested === 'cuda') {
    throw new TrainerError('DEVICE_UNAVAILABLE', `Cannot train on CUDA: missing ${cuda.missing}. To fix: ${cuda.fix}; or set device to "cpu" (or "auto", which falls back to the CPU).`, {
      missing: cuda.missing,
    });
  }
  return cpuDevice(g, `device "auto" found no usable CUDA device (missing ${cuda.missing})`);
}
