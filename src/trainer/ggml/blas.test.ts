// The matmul backend choice, with the real BLAS library when scripts/build-ggml-blas.sh has built
// it (CI builds it: .ci/ggml-blas.sh) and a folder without it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { blasLibraryPath, chooseMatmul, inspectBlas, matmulEvent, NO_BLAS_LIMITS, openblasCoreType, probeBlas, type BlasProbe } from './blas.js';
import { chooseComputeDevice, type ComputeDevice } from './device.js';
import { f16ToF32, f32ToF16 } from '../gguf.js';
import { GGML_TYPE_BF16, GGML_TYPE_F32, GGML_TYPE_Q8_0, loadGgml } from './lib.js';

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
    expect(chooseMatmul('ggml', cpu, probe)).toEqual({ kind: 'ggml', reason: 'matmul "ggml" was asked for' });
    expect(probed).toBe(false);
    expect(chooseMatmul('auto', cpu, probe)).toEqual({
      kind: 'ggml',
      reason: "ggml's BLAS backend is not used: missing ggml's BLAS backend (x is not built); to use it, run `bash scripts/build-ggml-blas.sh`",
    });
    expect(() => chooseMatmul('blas', cpu, probe)).toThrow(
      expect.objectContaining({
        code: 'DEVICE_UNAVAILABLE',
        message: expect.stringContaining("missing ggml's BLAS backend (x is not built). To fix: run `bash scripts/build-ggml-blas.sh`"),
      }),
    );
  });

  it('"auto" and "blas" take a BLAS backend that loads, at any thread count, and say why', () => {
    const found: BlasProbe = { ok: true, path: '/x/libggml-blas.so', name: 'oneDNN 9.9 (Test)', skinnyProducts: true, bf16: true, createBackend: () => cpu.createBackend(1) };
    expect(chooseMatmul('auto', cpu, () => found)).toMatchObject({ kind: 'blas', name: 'oneDNN 9.9 (Test)', skinnyProducts: true, bf16: true, reason: 'matmul "auto" found ggml\'s BLAS backend (/x/libggml-blas.so)' });
    expect(chooseMatmul('blas', cpu, () => found)).toMatchObject({ kind: 'blas', reason: 'matmul "blas" was asked for' });
    expect(matmulEvent(chooseMatmul('auto', cpu, () => found))).toBe('Matmuls through oneDNN 9.9 (Test): matmul "auto" found ggml\'s BLAS backend (/x/libggml-blas.so).');
    expect(matmulEvent(chooseMatmul('ggml', cpu))).toBe('Matmuls on ggml-cpu\'s kernels: matmul "ggml" was asked for.');
  });

  it('a CUDA run computes its own matmuls: "auto" says so, "blas" is refused; an unknown value is BAD_OPTION', () => {
    const cuda: ComputeDevice = { kind: 'cuda', name: 'CUDA0: test GPU', reason: 'test', createBackend: () => cpu.createBackend(1) };
    expect(chooseMatmul('auto', cuda)).toEqual({ kind: 'ggml', reason: 'CUDA0: test GPU computes its own matmuls' });
    expect(() => chooseMatmul('blas', cuda)).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => chooseMatmul('mkl' as 'blas', cpu)).toThrow(expect.objectContaining({ code: 'BAD_OPTION', message: expect.stringContaining('"auto", "ggml", "blas"') }));
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
  /**
   * mul_mat(a, b) of an F32 b [k, n] by a [k, m] of `type` (F32 or BF16), on a scheduler over
   * [BLAS, CPU]: the product, its reference from the values a holds (rounded to `type`) and b's
   * (rounded to BF16 too for a BF16 a: the product is BF16 × BF16), and where it ran.
   */
  const product = (type: number, [k, m, n]: [number, number, number]) => {
    if (!built.ok) throw new Error('not built');
    const blas = built.createBackend(1, NO_BLAS_LIMITS);
    const cpuBackend = cpu.createBackend(1);
    const sched = g.schedNew([blas, cpuBackend], 64);
    const ctx = g.init(16 * g.tensorOverhead() + g.graphOverheadCustom(16, false), true)!;
    try {
      expect(g.backendName(blas)).toBe('BLAS');
      const a = g.newTensor2d(ctx, type, k, m);
      const b = g.newTensor2d(ctx, GGML_TYPE_F32, k, n);
      const inputs = g.allocCtxTensors(ctx, cpuBackend)!;
      const av = Float32Array.from({ length: k * m }, (_, i) => Math.sin(i));
      const bv = Float32Array.from({ length: k * n }, (_, i) => Math.cos(i * 0.7));
      const roundBf16 = (x: Float32Array) => {
        const bits = new Uint32Array(x.buffer.slice(0));
        for (let i = 0; i < bits.length; i++) bits[i] = ((bits[i] + 0x7fff + ((bits[i] >>> 16) & 1)) >>> 16) << 16;
        return new Float32Array(bits.buffer);
      };
      // The values a holds: a BF16 or Q8_0 weight holds av rounded to its type.
      let held: Float32Array = av;
      if (type === GGML_TYPE_BF16) {
        held = roundBf16(av);
        g.tensorSet(a, new Uint8Array(Uint16Array.from(new Uint32Array(held.buffer), (u) => u >>> 16).buffer), 0);
      } else if (type === GGML_TYPE_Q8_0) {
        // Blocks of 32: an F16 scale, then 32 int8 values (ggml's block_q8_0).
        const bytes = new Uint8Array((k * m / 32) * 34);
        const view = new DataView(bytes.buffer);
        held = new Float32Array(k * m);
        for (let blk = 0; blk < (k * m) / 32; blk++) {
          const xs = av.subarray(blk * 32, blk * 32 + 32);
          const d = f16ToF32(f32ToF16(Math.max(...xs.map(Math.abs)) / 127));
          view.setUint16(blk * 34, f32ToF16(d), true);
          xs.forEach((x, i) => {
            const q = Math.round(x / d);
            view.setInt8(blk * 34 + 2 + i, q);
            held[blk * 32 + i] = q * d;
          });
        }
        g.tensorSet(a, bytes, 0);
      } else {
        g.tensorSet(a, av, 0);
      }
      g.tensorSet(b, bv, 0);
      const y = g.mulMat(ctx, a, b);
      const gr = g.newGraphCustom(ctx, 16, false);
      g.buildForwardExpand(gr, y);
      expect(g.schedGraphCompute(sched, gr)).toBe(0);
      const backend = g.backendName(g.schedTensorBackend(sched, y)!);
      const got = new Float32Array(m * n);
      g.tensorGet(y, got, 0);
      // oneDNN's BF16 products round both sides to BF16 (a Q8_0 weight is expanded to BF16).
      const [ar, br] = type === GGML_TYPE_F32 ? [av, bv] : [roundBf16(held), roundBf16(bv)];
      const want = new Float64Array(m * n);
      for (let j = 0; j < n; j++) for (let i = 0; i < m; i++) for (let x = 0; x < k; x++) want[j * m + i] += ar[i * k + x] * br[j * k + x];
      g.bufferFree(inputs);
      return { got, want, backend };
    } finally {
      g.schedFree(sched);
      g.free(ctx);
      g.backendFree(blas);
      g.backendFree(cpuBackend);
    }
  };
  const worst = (got: Float32Array, want: Float64Array) => Math.max(...got.map((v, i) => Math.abs(v - want[i])));

  it('loads next to ggml, names its library, and computes an F32 mul_mat on BLAS as the sums say', () => {
    if (!built.ok) return;
    expect(built.name).toMatch(/^(OpenBLAS \S+ \(\w+ kernels\)|oneDNN \d+\.\d+\.\d+ \(.+\))$/);
    expect(built.name).not.toContain('Prescott');
    const { got, want, backend } = product(GGML_TYPE_F32, [48, 40, 36]);
    expect(backend).toBe('BLAS');
    expect(worst(got, want)).toBeLessThan(1e-4);
  });

  it.skipIf(!built.ok || !built.bf16)('with oneDNN on a BF16 CPU: multiplies a BF16 weight, and a Q8_0 one expanded to BF16, in BF16 (F32 sums), and takes a LoRA-thin F32 product', () => {
    if (!built.ok) return;
    expect(built.skinnyProducts).toBe(true);
    // 40 × 20 output, k = 96: BF16 inputs, F32 accumulation — the sums of the rounded values to
    // float32 precision, where a product of unrounded activations would be off by ~1e-2.
    const bf16 = product(GGML_TYPE_BF16, [96, 40, 20]);
    expect(bf16.backend).toBe('BLAS');
    expect(worst(bf16.got, bf16.want)).toBeLessThan(1e-4);
    // A Q8_0 weight with 256 rows of activations: expanded to BF16 for the product, not to F32.
    const q8 = product(GGML_TYPE_Q8_0, [64, 40, 256]);
    expect(q8.backend).toBe('BLAS');
    expect(worst(q8.got, q8.want)).toBeLessThan(1e-4);
    // Rank 16 < 32, which ggml-blas alone leaves to ggml-cpu.
    const thin = product(GGML_TYPE_F32, [64, 16, 48]);
    expect(thin.backend).toBe('BLAS');
    expect(worst(thin.got, thin.want)).toBeLessThan(1e-4);
  });
});
