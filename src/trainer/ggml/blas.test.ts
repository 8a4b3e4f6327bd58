// The matmul backend choice, with the real BLAS library when scripts/build-ggml-blas.sh has built
// it (CI builds it: .ci/ggml-blas.sh) and a folder without it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { blasLibraryPath, chooseMatmul, inspectBlas, matmulEvent, NO_BLAS_LIMITS, openblasCoreType, probeBlas, type BlasProbe } from './blas.js';
import { chooseComputeDevice, type ComputeDevice } from './device.js';
import { GGML_TYPE_F32, loadGgml } from './lib.js';

const g = loadGgml();
const cpu = chooseComputeDevice('cpu');
const tmp = mkdtempSync(join(tmpdir(), 'nodeai-blas-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const built = probeBlas(g);

describe('chooseMatmul', () => {
  const missing: BlasProbe = { ok: false, missing: "ggml's BLAS backend (x is not built)", fix: 'run `bash scripts/build-ggml-blas.sh`' };

  it('"ggml" keeps ggml-cpu without loading OpenBLAS; "auto" falls back to it saying what is missing; "blas" is refused naming it and what to do', () => {
    let probed = false;
    const probe = () => {
      probed = true;
      return missing;
    };
    expect(chooseMatmul('ggml', cpu, 1, probe)).toEqual({ kind: 'ggml', reason: 'matmul "ggml" was asked for' });
    expect(probed).toBe(false);
    expect(chooseMatmul('auto', cpu, 1, probe)).toEqual({
      kind: 'ggml',
      reason: "OpenBLAS is not used: missing ggml's BLAS backend (x is not built); to use it, run `bash scripts/build-ggml-blas.sh`",
    });
    expect(() => chooseMatmul('blas', cpu, 1, probe)).toThrow(
      expect.objectContaining({
        code: 'DEVICE_UNAVAILABLE',
        message: expect.stringContaining("missing ggml's BLAS backend (x is not built). To fix: run `bash scripts/build-ggml-blas.sh`"),
      }),
    );
  });

  it('"auto" at one thread and "blas" take a BLAS backend that loads, and say why', () => {
    const found: BlasProbe = { ok: true, path: '/x/libggml-blas.so', name: 'OpenBLAS 9.9 (Test kernels)', createBackend: () => cpu.createBackend(1) };
    expect(chooseMatmul('auto', cpu, 1, () => found)).toMatchObject({ kind: 'blas', name: 'OpenBLAS 9.9 (Test kernels)', reason: 'matmul "auto" found ggml\'s BLAS backend (/x/libggml-blas.so)' });
    expect(chooseMatmul('blas', cpu, 1, () => found)).toMatchObject({ kind: 'blas', reason: 'matmul "blas" was asked for' });
    expect(matmulEvent(chooseMatmul('auto', cpu, 1, () => found))).toBe('Matmuls through OpenBLAS 9.9 (Test kernels): matmul "auto" found ggml\'s BLAS backend (/x/libggml-blas.so).');
    expect(matmulEvent(chooseMatmul('ggml', cpu, 1))).toBe('Matmuls on ggml-cpu\'s kernels: matmul "ggml" was asked for.');
    // At more than one thread "auto" keeps ggml-cpu (OpenBLAS lost there), without loading it; "blas" still takes it.
    let probed = false;
    const counted = () => {
      probed = true;
      return found;
    };
    expect(chooseMatmul('auto', cpu, 2, counted)).toEqual({ kind: 'ggml', reason: expect.stringContaining('matmul "auto" keeps ggml-cpu at 2 threads') });
    expect(probed).toBe(false);
    expect(chooseMatmul('blas', cpu, 2, counted).kind).toBe('blas');
  });

  it('a CUDA run computes its own matmuls: "auto" says so, "blas" is refused; an unknown value is BAD_OPTION', () => {
    const cuda: ComputeDevice = { kind: 'cuda', name: 'CUDA0: test GPU', reason: 'test', createBackend: () => cpu.createBackend(1) };
    expect(chooseMatmul('auto', cuda, 1)).toEqual({ kind: 'ggml', reason: 'CUDA0: test GPU computes its own matmuls' });
    expect(() => chooseMatmul('blas', cuda, 1)).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => chooseMatmul('mkl' as 'blas', cpu, 1)).toThrow(expect.objectContaining({ code: 'BAD_OPTION', message: expect.stringContaining('"auto", "ggml", "blas"') }));
  });

  it('a library that is not there is reported with the command that builds it', () => {
    const probe = inspectBlas(g, join(tmp, 'libggml-blas.so'));
    expect(probe).toEqual({ ok: false, missing: `ggml's BLAS backend (${join(tmp, 'libggml-blas.so')} is not built)`, fix: expect.stringContaining('bash scripts/build-ggml-blas.sh') });
  });
});

describe('openblasCoreType', () => {
  it('picks the kernels from the instruction sets, not the CPU model OpenBLAS may not know', () => {
    const avx512 = ['avx2', 'fma', 'avx512f', 'avx512cd', 'avx512bw', 'avx512dq', 'avx512vl'];
    expect(openblasCoreType(new Set([...avx512, 'avx512_bf16']))).toBe('Cooperlake');
    expect(openblasCoreType(new Set(avx512))).toBe('SkylakeX');
    expect(openblasCoreType(new Set(['avx2', 'fma', 'avx512f']))).toBe('Haswell');
    expect(openblasCoreType(new Set(['sse4_2', 'avx']))).toBeNull();
  });
});

describe.skipIf(!built.ok)(`the built BLAS backend (${blasLibraryPath()})`, () => {
  it('loads next to ggml, names its OpenBLAS, and computes a mul_mat as ggml-cpu does', () => {
    if (!built.ok) return;
    expect(built.name).toMatch(/^OpenBLAS \S+ \(\w+ kernels\)$/);
    expect(built.name).not.toContain('Prescott');
    const blas = built.createBackend(1, NO_BLAS_LIMITS);
    const cpuBackend = cpu.createBackend(1);
    const sched = g.schedNew([blas, cpuBackend], 64);
    const ctx = g.init(16 * g.tensorOverhead() + g.graphOverheadCustom(16, false), true)!;
    try {
      expect(g.backendName(blas)).toBe('BLAS');
      const [k, m, n] = [48, 40, 36];
      const a = g.newTensor2d(ctx, GGML_TYPE_F32, k, m);
      const b = g.newTensor2d(ctx, GGML_TYPE_F32, k, n);
      const inputs = g.allocCtxTensors(ctx, cpuBackend)!;
      g.tensorSet(a, Float32Array.from({ length: k * m }, (_, i) => Math.sin(i)), 0);
      g.tensorSet(b, Float32Array.from({ length: k * n }, (_, i) => Math.cos(i * 0.7)), 0);
      const y = g.mulMat(ctx, a, b);
      const gr = g.newGraphCustom(ctx, 16, false);
      g.buildForwardExpand(gr, y);
      expect(g.schedGraphCompute(sched, gr)).toBe(0);
      expect(g.backendName(g.schedTensorBackend(sched, y)!)).toBe('BLAS');
      const got = new Float32Array(m * n);
      g.tensorGet(y, got, 0);
      const av = new Float32Array(k * m);
      const bv = new Float32Array(k * n);
      g.tensorGet(a, av, 0);
      g.tensorGet(b, bv, 0);
      for (let j = 0; j < n; j++) {
        for (let i = 0; i < m; i++) {
          let s = 0;
          for (let x = 0; x < k; x++) s += av[i * k + x] * bv[j * k + x];
          expect(Math.abs(got[j * m + i] - s)).toBeLessThan(1e-4);
        }
      }
      g.bufferFree(inputs);
    } finally {
      g.schedFree(sched);
      g.free(ctx);
      g.backendFree(blas);
      g.backendFree(cpuBackend);
    }
  });
});
