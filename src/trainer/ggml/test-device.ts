// The stand-in accelerator the trainer's tests run the device path on when the machine has no GPU
// (scripts/ggml-blas/test-device.cpp, built with the BLAS backend): its buffers are not host
// memory, as a GPU's are not, so every tensor the trainer reads or writes goes through
// ggml_backend_tensor_get/set and ggml-backend's scheduler copies between it and the CPU; ops it is
// told to refuse run on the CPU instead. It computes on a CPU backend underneath.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';
import type { ComputeDevice } from './device.js';
import { PROJECT_ROOT } from './install-paths.js';
import { loadGgml, type GgmlBackend } from './lib.js';

/** build/ggml-blas/libggml-test-device.so of this checkout. */
export const TEST_DEVICE_LIBRARY = join(PROJECT_ROOT, 'build', 'ggml-blas', 'libggml-test-device.so');

/** Whether the library is built (scripts/build-ggml-blas.sh). */
export function testDeviceBuilt(): boolean {
  return existsSync(TEST_DEVICE_LIBRARY);
}

type TestDeviceInit = (cpu: GgmlBackend, refusedOps: string, freeCpu: unknown) => GgmlBackend | null;
let library: { init: TestDeviceInit; opsRun: (op: string) => number; freeCpu: unknown } | undefined;

function load(): NonNullable<typeof library> {
  if (library) return library;
  const lib = koffi.load(TEST_DEVICE_LIBRARY);
  const FreeCpu = koffi.proto('void nodeai_test_device_free_cpu(void *cpu)');
  library = {
    init: lib.func('void *nodeai_test_device_init(void *cpu, const char *refused_ops, nodeai_test_device_free_cpu *free_cpu)') as TestDeviceInit,
    opsRun: lib.func('long nodeai_test_device_ops_run(const char *op)') as (op: string) => number,
    // The stand-in frees the CPU backend it computes on through the bindings that made it, which
    // also free that backend's threadpool (ggml_backend_free alone would leave its threads).
    freeCpu: koffi.register((cpu: GgmlBackend) => loadGgml().backendFree(cpu), koffi.pointer(FreeCpu)),
  };
  return library;
}

/** How many nodes of an op ("ROPE", or "CPY:q4_K" by its first source's type) the stand-in devices computed in this process so far. */
export function testDeviceOpsRun(op: string): number {
  return load().opsRun(op);
}

/**
 * The stand-in device. `refusedOps`: what it says it cannot run, by ggml_op_name — an op
 * ("ROPE"), or an op whose first source has a type, by ggml_type_name ("CPY:q4_K").
 */
export function testDevice(refusedOps: readonly string[] = []): ComputeDevice {
  const g = loadGgml();
  const { init, freeCpu } = load();
  const refused = refusedOps.join(',');
  return {
    kind: 'test',
    name: `TestDevice${refused ? ` (without ${refusedOps.join(', ')})` : ''}`,
    reason: 'a test asked for it',
    createBackend: (threads) => {
      const backend = init(g.cpuBackend(threads), refused, freeCpu);
      if (!backend) throw new Error('nodeai_test_device_init failed');
      return backend;
    },
  };
}
