import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GGML_TYPE_F32, loadGgml, type GgmlTensor } from './lib.js';
import { testDevice, testDeviceBuilt } from './test-device.js';

describe('ggml bindings', () => {
  const g = loadGgml();
  /** The threads of this process (Linux). */
  const threadsNow = () => readdirSync('/proc/self/task').length;

  it('loads a CPU variant and agrees with the struct layout of the binaries', () => {
    expect(g.cpuVariant).toMatch(/^[a-z0-9_.]+$/);
    expect(g.tensorOverhead()).toBeGreaterThan(300);
  });

  it('computes mul_mat and a masked cross-entropy with exact zero gradients on masked rows', () => {
    const ctx = g.init(64 * g.tensorOverhead() + g.graphOverheadCustom(64, true), true)!;
    const backend = g.cpuBackend(2);
    let buffer = null;
    try {
      const w = g.newTensor2d(ctx, GGML_TYPE_F32, 3, 4); // 4 outputs of 3 inputs
      const x = g.newTensor2d(ctx, GGML_TYPE_F32, 3, 2); // 2 rows
      const mask = g.newTensor2d(ctx, GGML_TYPE_F32, 1, 2);
      const labels = g.newTensor2d(ctx, GGML_TYPE_F32, 4, 2);
      g.setParam(x);
      const logits = g.mulMat(ctx, w, x);
      expect(g.shape(logits)).toEqual([4, 2, 1, 1]);
      const loss = g.crossEntropyLoss(ctx, g.mul(ctx, logits, mask), labels);
      g.setLoss(loss);
      const gf = g.newGraphCustom(ctx, 64, true);
      g.buildForwardExpand(gf, loss);
      g.buildBackwardExpand(ctx, gf, null);
      buffer = g.allocCtxTensors(ctx, backend)!;
      g.tensorSet(w, Float32Array.of(1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1), 0);
      g.tensorSet(x, Float32Array.of(0.5, -1, 2, 3, 1, -2), 0);
      g.tensorSet(mask, Float32Array.of(1, 0), 0);
      g.tensorSet(labels, Float32Array.of(0, 0, 1, 0, 0, 0, 0, 0), 0);
      g.graphReset(gf); // d(loss) = 1, every other gradient 0
      expect(g.backendGraphCompute(backend, gf)).toBe(0);
      const read = (t: GgmlTensor) => {
        const out = new Float32Array(g.nelements(t));
        g.tensorGet(t, out, 0);
        return out;
      };
      expect(Array.from(read(logits))).toEqual([0.5, -1, 2, 1.5, 3, 1, -2, 2]);
      const row = [0.5, -1, 2, 1.5];
      const lse = Math.log(row.reduce((s, v) => s + Math.exp(v), 0));
      // ggml divides by all rows (2), counted or not.
      expect(read(loss)[0]).toBeCloseTo((lse - 2) / 2, 5);
      const grad = read(g.graphGetGrad(gf, x)!);
      expect(Array.from(grad.slice(3))).toEqual([0, 0, 0]);
      expect(grad.slice(0, 3).some((v) => v !== 0)).toBe(true);
    } finally {
      if (buffer) g.bufferFree(buffer);
      g.backendFree(backend);
      g.free(ctx);
    }
  });

  it.skipIf(process.platform !== 'linux')('keeps a CPU backend\'s worker threads from its creation until it is freed', () => {
    const before = threadsNow();
    const backend = g.cpuBackend(3);
    try {
      // ggml's own pool: the two workers besides the calling thread, there between computes too.
      expect(threadsNow()).toBe(before + 2);
    } finally {
      g.backendFree(backend);
    }
    expect(threadsNow()).toBe(before);
  });

  it.skipIf(process.platform !== 'linux' || !testDeviceBuilt())('the stand-in device frees the CPU backend it computes on with its worker threads', () => {
    const before = threadsNow();
    const backend = testDevice().createBackend(3);
    expect(threadsNow()).toBe(before + 2);
    g.backendFree(backend);
    expect(threadsNow()).toBe(before);
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

  it.skipIf(!testDeviceBuilt())("the stand-in device's buffers are not host memory; data goes in and out through ggml-backend", () => {
    const ctx = g.init(4 * g.tensorOverhead(), true)!;
    const backend = testDevice().createBackend(1);
    try {
      const t = g.newTensor1d(ctx, GGML_TYPE_F32, 3);
      const buffer = g.allocCtxTensors(ctx, backend)!;
      try {
        expect(g.bufferIsHost(buffer)).toBe(false);
        g.tensorSet(t, Float32Array.of(1, 2, 3), 0);
        g.tensorMemset(t, 0);
        const back = Float32Array.of(7, 7, 7);
        g.tensorGet(t, back, 0);
        expect([...back]).toEqual([0, 0, 0]);
      } finally {
        g.bufferFree(buffer);
      }
    } finally {
      g.backendFree(backend);
      g.free(ctx);
    }
  });
});
