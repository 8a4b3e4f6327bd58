import { describe, expect, it } from 'vitest';
import { GGML_TYPE_F32, loadGgml } from './lib.js';

describe('ggml bindings', () => {
  const g = loadGgml();

  it('loads a CPU variant and agrees with the struct layout of the binaries', () => {
    expect(g.cpuVariant).toMatch(/^[a-z0-9_.]+$/);
    expect(g.tensorOverhead()).toBeGreaterThan(300);
  });

  it('computes mul_mat and a masked cross-entropy with exact zero gradients on masked rows', () => {
    const ctx = g.init(16 << 20, false)!;
    try {
      const w = g.newTensor2d(ctx, GGML_TYPE_F32, 3, 4); // 4 outputs of 3 inputs
      const x = g.newTensor2d(ctx, GGML_TYPE_F32, 3, 2); // 2 rows
      const mask = g.newTensor2d(ctx, GGML_TYPE_F32, 1, 2);
      const labels = g.newTensor2d(ctx, GGML_TYPE_F32, 4, 2);
      g.f32(w).set([1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1]);
      g.f32(x).set([0.5, -1, 2, 3, 1, -2]);
      g.f32(mask).set([1, 0]);
      g.f32(labels).set([0, 0, 1, 0, 0, 0, 0, 0]);
      g.setParam(x);
      const logits = g.mulMat(ctx, w, x);
      expect(g.shape(logits)).toEqual([4, 2, 1, 1]);
      const loss = g.crossEntropyLoss(ctx, g.mul(ctx, logits, mask), labels);
      g.setLoss(loss);
      const gf = g.newGraphCustom(ctx, 64, true);
      g.buildForwardExpand(gf, loss);
      g.buildBackwardExpand(ctx, gf, null);
      g.graphReset(gf);
      const plan = g.graphPlan(gf, 2);
      const wctx = g.init(Number(plan.work_size) + 4096, false)!;
      plan.work_data = g.newBuffer(wctx, Number(plan.work_size) + 1);
      expect(g.graphCompute(gf, plan)).toBe(0);
      expect(Array.from(g.f32(logits))).toEqual([0.5, -1, 2, 1.5, 3, 1, -2, 2]);
      const row = [0.5, -1, 2, 1.5];
      const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
      // ggml divides by all rows (2), counted or not.
      expect(g.f32(loss)[0]).toBeCloseTo((lse - 2) / 2, 5);
      const grad = g.f32(g.graphGetGrad(gf, x)!);
      expect(Array.from(grad.slice(3))).toEqual([0, 0, 0]);
      expect(grad.slice(0, 3).some((v) => v !== 0)).toBe(true);
      g.free(wctx);
    } finally {
      g.free(ctx);
    }
  });

  it('copies tensor data in and out through ggml-backend, refusing a range outside the tensor', () => {
    const ctx = g.init(4 * g.tensorOverhead(), true)!;
    const backend = g.cpuBackend(1);
    try {
      const t = g.newTensor1d(ctx, GGML_TYPE_F32, 4);
      const buffer = g.allocCtxTensors(ctx, backend)!;
      try {
        g.tensorSet(t, Float32Array.of(1.5, -2, 3.25, 4), 0);
        g.tensorSet(t, Float32Array.of(9), 8);
        const back = new Float32Array(4);
        g.tensorGet(t, back, 0);
        expect([...back]).toEqual([1.5, -2, 9, 4]);
        const tail = new Float32Array(1);
        g.tensorGet(t, tail, 12);
        expect(tail[0]).toBe(4);
        expect(() => g.tensorSet(t, new Float32Array(2), 12)).toThrow('tensor write of 8 bytes at 12 is outside the tensor');
        expect(() => g.tensorGet(t, new Float32Array(5), 0)).toThrow('tensor read of 20 bytes at 0 is outside the tensor');
      } finally {
        g.bufferFree(buffer);
      }
    } finally {
      g.backendFree(backend);
      g.free(ctx);
    }
  });
});
