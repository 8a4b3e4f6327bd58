// One mul_mat, y = W·x with W [n_in, n_out] and x [n_in, tokens] (ggml's order), computed by
// ggml-cpu and by ggml's BLAS backend (OpenBLAS, scripts/build-ggml-blas.sh) through
// ggml_backend_sched with [BLAS, CPU]: time, GFLOP/s and the largest difference between the two.
// W in F32 and in BF16 (which the BLAS backend converts to F32 on every call).
// Usage: tsx bench/blas-matmul.ts [n_in n_out tokens threads]   (default 576 1536 1024 1)
import { performance } from 'node:perf_hooks';
import { NO_BLAS_LIMITS, probeBlas } from '../src/trainer/ggml/blas.ts';
import { GGML_TYPE_BF16, GGML_TYPE_F32, loadGgml, type GgmlBackend, type GgmlTensor } from '../src/trainer/ggml/lib.ts';

const [nIn, nOut, tokens, threads] = (process.argv.slice(2).length ? process.argv.slice(2) : ['576', '1536', '1024', '1']).map(Number);
const g = loadGgml();
const blas = probeBlas(g);
if (!blas.ok) {
  console.error(`BLAS backend unavailable: missing ${blas.missing}; ${blas.fix}`);
  process.exit(1);
}
const cpu = g.cpuBackend(threads);
const blasBackend = blas.createBackend(threads, NO_BLAS_LIMITS);
const sched = g.schedNew([blasBackend, cpu], 64);

const ctx = g.init(16 * g.tensorOverhead() + g.graphOverheadCustom(64, false), true)!;
const w = g.newTensor2d(ctx, GGML_TYPE_F32, nIn, nOut);
const wBf16 = g.newTensor2d(ctx, GGML_TYPE_BF16, nIn, nOut);
const x = g.newTensor2d(ctx, GGML_TYPE_F32, nIn, tokens);
const inputs = g.allocCtxTensors(ctx, cpu)!;
const wave = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * k) * 0.05);
g.tensorSet(w, wave(nIn * nOut, 12.9898), 0);
g.tensorSet(x, wave(nIn * tokens, 78.233), 0);
{
  // W's BF16 copy, by ggml.
  const gr = g.newGraphCustom(ctx, 8, false);
  g.buildForwardExpand(gr, g.cpy(ctx, w, wBf16));
  g.backendGraphCompute(cpu, gr);
}

const flops = 2 * nIn * nOut * tokens;
console.log(`y = W·x, W [${nIn}, ${nOut}], ${tokens} tokens, ${threads} thread(s), ggml-cpu-${g.cpuVariant} vs OpenBLAS (${blas.path})`);

function timeIt(run: () => void): number {
  run(); // warm-up (and the scheduler's first allocation)
  const times = [0, 1, 2, 3, 4].map(() => {
    const t0 = performance.now();
    run();
    return performance.now() - t0;
  });
  return times.sort((a, b) => a - b)[2];
}

for (const [name, weight] of [['F32', w], ['BF16', wBf16]] as const) {
  const results: Float32Array[] = [];
  for (const via of ['ggml-cpu', 'OpenBLAS'] as const) {
    const opCtx = g.init(8 * g.tensorOverhead() + g.graphOverheadCustom(8, false), true)!;
    const y: GgmlTensor = g.mulMat(opCtx, weight, x);
    const gr = g.newGraphCustom(opCtx, 8, false);
    g.buildForwardExpand(gr, y);
    let buffer = null;
    let ms: number;
    let ranOn = 'CPU';
    if (via === 'ggml-cpu') {
      buffer = g.allocCtxTensors(opCtx, cpu);
      ms = timeIt(() => {
        if (g.backendGraphCompute(cpu, gr) !== 0) throw new Error('ggml-cpu compute failed');
      });
    } else {
      ms = timeIt(() => {
        g.schedReset(sched);
        if (g.schedGraphCompute(sched, gr) !== 0) throw new Error('sched compute failed');
      });
      const on: GgmlBackend | null = g.schedTensorBackend(sched, y);
      ranOn = on ? g.backendName(on) : 'unassigned';
    }
    const out = new Float32Array(nOut * tokens);
    g.tensorGet(y, out, 0);
    results.push(out);
    console.log(`${`mul_mat W ${name} via ${via} (on ${ranOn})`.padEnd(44)} ${ms.toFixed(1).padStart(8)} ms  ${(flops / ms / 1e6).toFixed(1).padStart(6)} GFLOP/s`);
    if (buffer) g.bufferFree(buffer);
    g.free(opCtx);
  }
  let maxDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < results[0].length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(results[0][i] - results[1][i]));
    maxAbs = Math.max(maxAbs, Math.abs(results[0][i]));
  }
  console.log(`  W ${name}: largest |ggml-cpu − OpenBLAS| = ${maxDiff.toExponential(2)} (largest |y| ${maxAbs.toFixed(3)})`);
}
g.schedFree(sched);
g.bufferFree(inputs);
g.free(ctx);
g.backendFree(blasBackend);
g.backendFree(cpu);
