// The trainer's device choice on this machine, with the real CUDA package and the real dynamic
// loader: a folder that lacks the package, one of another release, and the installed package,
// whose libggml-cuda needs libraries (libcublas, libcuda) a machine without a GPU does not have.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TrainerError } from '../train-errors.js';
import { chooseComputeDevice, inspectCuda, probeCuda, type CudaProbe, type TrainingDevice } from './device.js';
import { libFile, loadGgml, packageBinDir, platformPackage } from './lib.js';

const g = loadGgml();
const tmp = mkdtempSync(join(tmpdir(), 'nodeai-device-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('chooseComputeDevice', () => {
  it('"cpu" trains on the CPU backend without probing CUDA', () => {
    let probed = false;
    const device = chooseComputeDevice('cpu', () => {
      probed = true;
      return { ok: false, missing: 'x', fix: 'y' };
    });
    expect(probed).toBe(false);
    expect(device.kind).toBe('cpu');
    expect(device.name).toContain(g.cpuVariant);
    expect(device.reason).toBe('device "cpu" was asked for');
    const backend = device.createBackend(1);
    expect(g.backendName(backend)).toBe('CPU');
    g.backendFree(backend);
  });

  it('"auto" falls back to the CPU and says what CUDA lacks; "cuda" is refused naming it and what to do', () => {
    const missing: CudaProbe = { ok: false, missing: 'libcuda.so.1 (needed by libggml-cuda.so)', fix: 'install the NVIDIA driver' };
    const auto = chooseComputeDevice('auto', () => missing);
    expect(auto.kind).toBe('cpu');
    expect(auto.reason).toBe('device "auto" found no usable CUDA device (missing libcuda.so.1 (needed by libggml-cuda.so))');
    let error: unknown;
    try {
      chooseComputeDevice('cuda', () => missing);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TrainerError);
    expect((error as TrainerError).code).toBe('DEVICE_UNAVAILABLE');
    expect((error as TrainerError).message).toBe(
      'Cannot train on CUDA: missing libcuda.so.1 (needed by libggml-cuda.so). To fix: install the NVIDIA driver; or set device to "cpu" (or "auto", which falls back to the CPU).',
    );
  });

  it('refuses a device it does not know, naming the ones it does', () => {
    expect(() => chooseComputeDevice('gpu' as TrainingDevice)).toThrow('device must be one of "auto", "cpu", "cuda", got "gpu".');
  });

  it('"auto" and "cuda" take a usable CUDA device', () => {
    const found: CudaProbe = { ok: true, deviceName: 'CUDA0: test', createBackend: () => g.cpuBackend(1) };
    expect(chooseComputeDevice('auto', () => found)).toMatchObject({ kind: 'cuda', name: 'CUDA0: test', reason: 'device "auto" found a CUDA device' });
    expect(chooseComputeDevice('cuda', () => found)).toMatchObject({ kind: 'cuda', reason: 'device "cuda" was asked for' });
  });

  it('with the real probe on this machine, the choice follows what the probe found', () => {
    const probe = probeCuda(g);
    const auto = chooseComputeDevice('auto');
    if (probe.ok) {
      expect(auto.kind).toBe('cuda');
      expect(chooseComputeDevice('cuda').name).toBe(probe.deviceName);
    } else {
      expect(auto.kind).toBe('cpu');
      expect(auto.reason).toContain(probe.missing);
      expect(() => chooseComputeDevice('cuda')).toThrow(probe.missing);
    }
  });
});

describe('inspectCuda', () => {
  it('names the npm package when there is no CUDA build', () => {
    const probe = inspectCuda(g, null);
    expect(probe).toMatchObject({ ok: false, missing: `the npm package ${platformPackage('cuda')} (libggml-cuda)` });
    expect(inspectCuda(g, tmp)).toMatchObject({ ok: false, missing: `the npm package ${platformPackage('cuda')} (libggml-cuda)` });
  });

  const installed = packageBinDir(platformPackage('cuda'));
  it.runIf(installed !== null)('refuses a CUDA build of another llama.cpp release than the CPU one', () => {
    const dir = join(tmp, 'other-release');
    mkdirSync(dir);
    symlinkSync(libFile(installed!, 'ggml-cuda'), libFile(dir, 'ggml-cuda'));
    writeFileSync(join(dir, '_nlcBuildMetadata.json'), JSON.stringify({ buildOptions: { llamaCpp: { release: 'v0.0.1' } } }));
    const probe = inspectCuda(g, dir);
    expect(probe.ok).toBe(false);
    expect(!probe.ok && probe.missing).toMatch(/^a CUDA ggml of the same release as the CPU one \(.* is v0\.0\.1, the CPU package v/);
  });

  it.runIf(installed !== null)('loads the installed libggml-cuda with the real loader and names the first library it lacks', () => {
    const probe = inspectCuda(g, installed);
    if (probe.ok) return; // a machine with the CUDA driver and libraries: nothing is missing
    // Without a GPU stack the loader stops at a CUDA library (libcublas, libcudart or libcuda), or
    // the libraries load and report no device.
    expect(probe.missing).toMatch(/^(lib(cublas|cudart|cuda)\S*\.so[.\d]* \(needed by .*libggml-cuda\.so\)|a CUDA device )/);
    expect(probe.fix).toMatch(/install the (NVIDIA driver|CUDA runtime libraries)|nvidia-smi/);
  });
});
