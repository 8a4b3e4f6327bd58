// The kernel experiment behind the backward through a frozen quantized/half weight (graph.ts):
// dx = Wᵀ·dy for a weight W [n_in, n_out] that gets no gradient itself. Candidates:
//   out_prod(W, dyᵀ)       what ggml's autodiff writes; reads W as stored (any type) but
//                           dequantizes every row of W once per token (ggml-cpu ops.cpp
//                           out_prod_q_f32 / out_prod_f16_f32);
//   mul_mat(Wᵀ, dy)         with Wᵀ a contiguous copy made once, in F32 / F16 / BF16 / Q8_0.
// Usage: tsx bench/frozen-backward.ts [n_in n_out tokens threads]
import { performance } from 'node:perf_hooks';
import { GGML_TYPE_BF16, GGML_TYPE_F16, GGML_TYPE_F32, loadGgml, type GgmlBuffer, type GgmlGraph, type GgmlTensor } from '../src/trainer/ggml/lib.ts';

const [nIn, nOut, tokens, threads] = (process.argv.slice(2).length ? process.argv.slice(2) : ['1024', '4096', '128', '1']).map(Number);
const Q8_0 = 8;
const Q4_K = 12;
const g = loadGgml();
const ctx = g.init(1024 * g.tensorOverhead() + 16 * g.graphOverheadCustom(64, false), true)!;
const backend = g.cpuBackend(threads);
const buffers: GgmlBuffer[] = [];

/** Gives the tensors defined since the last call a CPU buffer of their own. */
function allocateNew(): void {
  const buffer = g.allocCtxTensors(ctx, backend);
  if (buffer) buffers.push(buffer);
}

function compute(gr: GgmlGraph): number {
  allocateNew();
  const t0 = performance.now();
  if (g.backendGraphCompute(backend, gr) !== 0) throw new Error('compute failed');
  return performance.now() - t0;
}
function run(out: GgmlTensor): number {
  const gr = g.newGraphCustom(ctx, 64, false);
  g.buildForwardExpand(gr, out);
  compute(gr); // warm-up
  const times = [0, 1, 2].map(() => compute(gr));
  return times.sort((a, b) => a - b)[1];
}
function copyTo(src: GgmlTensor, type: number, transpose: boolean): GgmlTensor {
  const [n0, n1] = g.shape(src);
  const dst = transpose ? g.newTensor2d(ctx, type, n1, n0) : g.newTensor2d(ctx, type, n0, n1);
  const gr = g.newGraphCustom(ctx, 16, false);
  g.buildForwardExpand(gr, g.cpy(ctx, transpose ? g.transpose(ctx, src) : src, dst));
  compute(gr);
  return dst;
}

const w = g.newTensor2d(ctx, GGML_TYPE_F32, nIn, nOut);
const dy = g.newTensor2d(ctx, GGML_TYPE_F32, nOut, tokens);
allocateNew();
for (const t of [w, dy]) g.tensorSet(t, Float32Array.from({ length: g.nelements(t) }, (_, i) => Math.sin(i * 12.9898) * 0.05), 0);
const flops = 2 * nIn * nOut * tokens;
const report = (name: string, ms: number) => console.log(`${name.padEnd(34)} ${ms.toFixed(1).padStart(8)} ms  ${(flops / ms / 1e6).toFixed(1).padStart(6)} GFLOP/s`);
console.log(`dx = Wᵀ·dy, W [${nIn}, ${nOut}], ${tokens} tokens, ${threads} thread(s), ggml-cpu-${g.cpuVariant}`);
for (const [name, type] of [['Q4_K', Q4_K], ['Q8_0', Q8_0], ['F16', GGML_TYPE_F16], ['F32', GGML_TYPE_F32]] as const) {
  const wq = type === GGML_TYPE_F32 ? w : copyTo(w, type, false);
  report(`out_prod(W ${name}, dyᵀ)`, run(g.outProd(ctx, wq, g.transpose(ctx, dy))));
}
for (const [name, type] of [['F32', GGML_TYPE_F32], ['F16', GGML_TYPE_F16], ['BF16', GGML_TYPE_BF16], ['Q8_0', Q8_0]] as const) {
  const wt = copyTo(w, GGML_TYPE_F32, true);
  const wtT = type === GGML_TYPE_F32 ? wt : copyTo(wt, type, false);
  report(`mul_mat(Wᵀ ${name} copy, dy)`, run(g.mulMat(ctx, wtT, dy)));
}
for (const buffer of buffers) g.bufferFree(buffer);
g.backendFree(backend);
g.free(ctx);
