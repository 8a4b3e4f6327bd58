// The matmul backend choice, with the real BLAS library when scripts/build-ggml-blas.sh has built
// it (CI builds it: .ci/ggml-blas.sh) and a folder without it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { blasLibraryPath, chooseMatmul, inspectBlas, matmulEvent, NO_BLAS_LIMITS, openblasCoreType, probeBlas, type BlasProbe } from './blas.js';
import { chooseComputeDevice, type ComputeDevice } from './device.js';
import { f16ToF32, f32ToF16 } from '../gguf.js';
import { GGML_TYPE_BF16, GGML_TYPE_F32, GGML_TYPE_Q8_0, loadGgml, type GgmlBackend, type GgmlContext, type GgmlSched } from './lib.js';

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
    const found: BlasProbe = { ok: true, path: '/x/libggml-blas.so', name: 'oneDNN 9.9 (Test)', everyF32Product: true, bf16: true, createBackend: () => cpu.createBackend(1) };
    expect(chooseMatmul('auto', cpu, () => found)).toMatchObject({ kind: 'blas', name: 'oneDNN 9.9 (Test)', everyF32Product: true, bf16: true, reason: 'matmul "auto" found ggml\'s BLAS backend (/x/libggml-blas.so)' });
    expect(chooseMatmul('blas', cpu, () => found)).toMatchObject({ kind: 'blas', reason: 'matmul "blas" was asked for' });
    expect(matmulEvent(chooseMatmul('auto', cpu, () => found))).toBe('Matmuls through oneDNN 9.9 (Test): matmul "auto" found ggml\'s BLAS backend (/x/libggml-blas.so).');
    expect(matmulEvent(chooseMatmul('ggml', cpu))).toBe('Matmuls on ggml\'s own kernels: matmul "ggml" was asked for.');
  });

  it('a CUDA run computes its own matmuls: "auto" says so, "blas" is refused; an unknown value is BAD_OPTION', () => {
    const cuda: ComputeDevice = { kind: 'cuda', name: 'CUDA0: test GPU', reason: 'test', createBackend: () => cpu.createBackend(1) };
    expect(chooseMatmul('auto', cuda)).toEqual({ kind: 'ggml', reason: 'CUDA0: test GPU computes every op it has, matmuls included' });
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
  /** Runs `body` on a scheduler over [BLAS, CPU] (or the CPU alone) with a no_alloc context of 32 tensors, then frees them. */
  const onScheduler = <R>(threads: number, withBlas: boolean, body: (sched: GgmlSched, ctx: GgmlContext, cpuBackend: GgmlBackend) => R): R => {
    if (!built.ok) throw new Error('not built');
    const blas = built.createBackend(threads, NO_BLAS_LIMITS);
    const cpuBackend = cpu.createBackend(threads);
    const sched = g.schedNew(withBlas ? [blas, cpuBackend] : [cpuBackend], 64);
    const ctx = g.init(32 * g.tensorOverhead() + g.graphOverheadCustom(16, false), true)!;
    try {
      return body(sched, ctx, cpuBackend);
    } finally {
      g.schedFree(sched);
      g.free(ctx);
      g.backendFree(blas);
      g.backendFree(cpuBackend);
    }
  };

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
    expect(built.everyF32Product).toBe(true);
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
  it.skipIf(!built.ok || !built.everyF32Product)('with oneDNN: computes batched F32 products as ggml defines them, reading transposed and permuted operands in place and broadcasting the first over the batches', () => {
    if (!built.ok) return;
    const [k, m, n] = [40, 36, 33];
    onScheduler(2, true, (sched, ctx, cpuBackend) => {
      // a: 2 × 1 matrices, broadcast over the products' 4 × 2 batches (grouped-query attention's
      // heads), as ggml does: batch (i2, i3) reads a's (i2 / 2, i3).
      const aMul = g.newTensor4d(ctx, GGML_TYPE_F32, k, m, 2, 2);
      const aOut = g.newTensor4d(ctx, GGML_TYPE_F32, m, k, 2, 2);
      // mul_mat's b: [k, n, 4, 2] as a permuted view of [k, 4, n, 2]; out_prod's b: [n, k, 4, 2] as a transpose of [k, n, 4, 2].
      const bStoredMul = g.newTensor4d(ctx, GGML_TYPE_F32, k, 4, n, 2);
      const bStoredOut = g.newTensor4d(ctx, GGML_TYPE_F32, k, n, 4, 2);
      const inputs = g.allocCtxTensors(ctx, cpuBackend)!;
      const values = (len: number, f: number) => Float32Array.from({ length: len }, (_, i) => Math.sin(i * f + 0.3));
      const [av, aov, bmv, bov] = [values(k * m * 4, 0.37), values(m * k * 4, 0.53), values(k * 4 * n * 2, 0.71), values(k * n * 8, 0.29)];
      g.tensorSet(aMul, av, 0);
      g.tensorSet(aOut, aov, 0);
      g.tensorSet(bStoredMul, bmv, 0);
      g.tensorSet(bStoredOut, bov, 0);
      const mul = g.mulMat(ctx, aMul, g.permute(ctx, bStoredMul, 0, 2, 1, 3)); // [m, n, 4, 2]
      const out = g.outProd(ctx, aOut, g.transpose(ctx, bStoredOut)); // [m, n, 4, 2]
      const gr = g.newGraphCustom(ctx, 16, false);
      g.buildForwardExpand(gr, mul);
      g.buildForwardExpand(gr, out);
      expect(g.schedGraphCompute(sched, gr)).toBe(0);
      // ggml-blas alone takes neither (a permuted operand; a batched out_prod): the wrapper must.
      expect(g.backendName(g.schedTensorBackend(sched, mul)!)).toBe('BLAS');
      expect(g.backendName(g.schedTensorBackend(sched, out)!)).toBe('BLAS');
      const wantMul = new Float64Array(m * n * 8);
      const wantOut = new Float64Array(m * n * 8);
      for (let i3 = 0; i3 < 2; i3++) {
        for (let i2 = 0; i2 < 4; i2++) {
          const aBatch = (Math.floor(i2 / 2) + 2 * i3) * k * m;
          for (let i1 = 0; i1 < n; i1++) {
            for (let i0 = 0; i0 < m; i0++) {
              const at = ((i3 * 4 + i2) * n + i1) * m + i0;
              for (let x = 0; x < k; x++) {
                wantMul[at] += av[aBatch + i0 * k + x] * bmv[((i3 * n + i1) * 4 + i2) * k + x];
                wantOut[at] += aov[aBatch + x * m + i0] * bov[((i3 * 4 + i2) * n + i1) * k + x];
              }
            }
          }
        }
      }
      for (const [t, want] of [[mul, wantMul], [out, wantOut]] as const) {
        const got = new Float32Array(m * n * 8);
        g.tensorGet(t, got, 0);
        expect(worst(got, want)).toBeLessThan(1e-4);
      }
      g.bufferFree(inputs);
    });
  });
  it.skipIf(!built.ok || !built.everyF32Product)("with oneDNN: computes attention's soft_max (scaled, causally masked) and its backward, and silu's backward, as ggml-cpu does", () => {
    if (!built.ok) return;
    // Taken at any size here (NO_BLAS_LIMITS); under the trainer's default limit, ops under 2^16 values stay on ggml-cpu.
    const [n, rows, batches, count] = [72, 72, 16, 70_000];
    const compute = (onBlas: boolean) =>
      onScheduler(2, onBlas, (sched, ctx, cpuBackend) => {
        const scores = g.newTensor3d(ctx, GGML_TYPE_F32, n, rows, batches);
        const mask = g.newTensor2d(ctx, GGML_TYPE_F32, n, rows);
        const dy = g.newTensor3d(ctx, GGML_TYPE_F32, n, rows, batches);
        const x = g.newTensor1d(ctx, GGML_TYPE_F32, count);
        const dx = g.newTensor1d(ctx, GGML_TYPE_F32, count);
        const inputs = g.allocCtxTensors(ctx, cpuBackend)!;
        g.tensorSet(scores, Float32Array.from({ length: n * rows * batches }, (_, i) => 4 * Math.sin(i * 0.37)), 0);
        g.tensorSet(mask, Float32Array.from({ length: n * rows }, (_, i) => (i % n > Math.floor(i / n) ? -Infinity : 0)), 0);
        g.tensorSet(dy, Float32Array.from({ length: n * rows * batches }, (_, i) => Math.cos(i * 0.11)), 0);
        // Silu's inputs past ±87 too, where libmvec's expf leaves its range.
        g.tensorSet(x, Float32Array.from({ length: count }, (_, i) => 120 * Math.sin(i * 0.013)), 0);
        g.tensorSet(dx, Float32Array.from({ length: count }, (_, i) => Math.cos(i * 0.7)), 0);
        const y = g.softMaxExt(ctx, scores, mask, 0.3, 0);
        const back = g.softMaxExtBack(ctx, dy, y, 0.3, 0);
        const silu = g.siluBack(ctx, dx, x);
        const gr = g.newGraphCustom(ctx, 16, false);
        // Outputs, so the scheduler's allocator does not reuse y's memory once its backward has read it.
        for (const t of [y, back, silu]) g.setOutput(t);
        for (const t of [y, back, silu]) g.buildForwardExpand(gr, t);
        expect(g.schedGraphCompute(sched, gr)).toBe(0);
        const read = (t: typeof y, len: number) => {
          const out = new Float32Array(len);
          g.tensorGet(t, out, 0);
          return { values: out, backend: g.backendName(g.schedTensorBackend(sched, t)!) };
        };
        const result = { y: read(y, n * rows * batches), back: read(back, n * rows * batches), silu: read(silu, count) };
        g.bufferFree(inputs);
        return result;
      });
    const ours = compute(true);
    const ggml = compute(false);
    for (const op of ['y', 'back', 'silu'] as const) {
      expect(ours[op].backend, op).toBe('BLAS');
      expect(ggml[op].backend, op).toBe('CPU');
      const scale = Math.max(...ggml[op].values.map(Math.abs));
      const diff = Math.max(...ours[op].values.map((v, i) => Math.abs(v - ggml[op].values[i])));
      expect(diff / scale, op).toBeLessThan(1e-6);
    }
    // The causal mask's zeros are exact: no weight above the diagonal, so no gradient through it.
    for (let r = 0; r < rows; r++) for (let c = r + 1; c < n; c++) expect(ours.y.values[r * n + c]).toBe(0);
    // A softmax row sums to 1.
    expect(ours.y.values.subarray(0, n).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
  });
  it.skipIf(!built.ok || !built.everyF32Product)('with oneDNN: a NaN score makes its softmax row NaN, as on ggml-cpu, so a diverged run still shows', () => {
    if (!built.ok) return;
    const n = 40;
    onScheduler(1, true, (sched, ctx, cpuBackend) => {
      const scores = g.newTensor2d(ctx, GGML_TYPE_F32, n, 3);
      const inputs = g.allocCtxTensors(ctx, cpuBackend)!;
      const values = Float32Array.from({ length: 3 * n }, (_, i) => Math.sin(i));
      values[n + 7] = NaN; // row 1
      values[2 * n + 3] = -Infinity; // row 2: a masked score, exactly 0 after
      g.tensorSet(scores, values, 0);
      const y = g.softMaxExt(ctx, scores, null, 1, 0);
      const gr = g.newGraphCustom(ctx, 16, false);
      g.buildForwardExpand(gr, y);
      expect(g.schedGraphCompute(sched, gr)).toBe(0);
      expect(g.backendName(g.schedTensorBackend(sched, y)!)).toBe('BLAS');
      const out = new Float32Array(3 * n);
      g.tensorGet(y, out, 0);
      expect(out.subarray(0, n).every(Number.isFinite)).toBe(true);
      expect(out.subarray(n, 2 * n).every(Number.isNaN)).toBe(true);
      expect(out[2 * n + 3]).toBe(0);
      expect(out.subarray(2 * n, 3 * n).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
      g.bufferFree(inputs);
    });
  });
});
