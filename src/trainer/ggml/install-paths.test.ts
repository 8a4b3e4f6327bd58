import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { chooseMatmul } from './blas.ts';
import { chooseComputeDevice } from './device.ts';
import { withoutInstallRoot } from './install-paths.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

describe('messages about the installation', () => {
  it('name its files from the project root or node_modules/ on, never by absolute path', () => {
    expect(withoutInstallRoot(`found ggml's BLAS backend (${root}/build/ggml-blas/libggml-blas.so)`)).toBe("found ggml's BLAS backend (build/ggml-blas/libggml-blas.so)");
    expect(withoutInstallRoot('libcublas.so.13 (needed by /srv/app/node_modules/@node-llama-cpp/linux-x64-cuda/bins/libggml-cuda.so)')).toBe(
      'libcublas.so.13 (needed by node_modules/@node-llama-cpp/linux-x64-cuda/bins/libggml-cuda.so)',
    );
    expect(withoutInstallRoot('libcuda.so.1 (needed by libggml-cuda.so)')).toBe('libcuda.so.1 (needed by libggml-cuda.so)');
  });

  it('as the trainer reports them here: the device and matmul choices name no absolute path', () => {
    const device = chooseComputeDevice('auto');
    const matmul = chooseMatmul('auto', device);
    for (const text of [device.reason, matmul.reason]) expect(text).not.toContain(root);
  });
});
