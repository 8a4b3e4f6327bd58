import koffi from 'koffi';
import { describe, expect, it } from 'vitest';
import { fixMallocMmapThreshold, MMAP_THRESHOLD_BYTES } from './malloc-threshold.js';
import { loadGgml } from './lib.js';

describe.skipIf(process.platform !== 'linux')('glibc mmap threshold', () => {
  const libc = koffi.load('libc.so.6');
  const malloc = libc.func('void *malloc(size_t size)') as (size: number) => unknown;
  const free = libc.func('void free(void *ptr)') as (ptr: unknown) => void;
  // glibc keeps a block's size in the 8 bytes before it; bit 1 says the block is a mapping of its own.
  const isOwnMapping = (p: unknown) => (BigInt(koffi.decode(p, -8, 'uint64_t') as number | bigint) & 2n) !== 0n;

  it('is fixed when ggml loads, so a block above it is still its own mapping after a larger one is freed', () => {
    loadGgml();
    // With glibc's dynamic threshold, freeing this mapping raises the threshold to 20 MiB ...
    const large = malloc(20 << 20);
    expect(isOwnMapping(large)).toBe(true);
    free(large);
    // ... and this block would then come from the heap, whose freed holes stay resident.
    const medium = malloc(2 * MMAP_THRESHOLD_BYTES);
    expect(isOwnMapping(medium)).toBe(true);
    free(medium);
    const small = malloc(MMAP_THRESHOLD_BYTES / 4);
    expect(isOwnMapping(small)).toBe(false);
    free(small);
    expect(fixMallocMmapThreshold()).toBe('set');
  });
});
