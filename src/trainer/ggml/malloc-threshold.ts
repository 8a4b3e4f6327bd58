import koffi from 'koffi';

/**
 * ggml's CPU buffers come from malloc. glibc serves a block at or above its mmap threshold with a
 * mapping of its own, returned to the system on free, and anything smaller from its heap, whose
 * freed holes stay resident until they are reused. The threshold is dynamic by default: the first
 * freed mapped block of up to 32 MiB raises it to that block's size. The trainer then frees a
 * scratch buffer of the same size for every frozen weight as it loads (each weight's F32 copy on
 * its way to the transposed one: 16.6 MiB for Qwen2.5-0.5B's FFN matrices). Each later buffer
 * lands in the heap, and an aligned allocation cannot reuse the hole of the last one it
 * replaces. Whenever another thread's small allocation lands between two holes, every hole stays:
 * ~1 GB more peak RSS in 1 of 7–10 runs of that model (found with a malloc trace, 2026-11-30).
 * Setting the threshold turns the dynamic rule off, so every block from this size up is its own
 * mapping and gives its memory back when freed.
 */
export const MMAP_THRESHOLD_BYTES = 1 << 20;

/** glibc's mallopt parameter number for the mmap threshold (malloc.h). */
const M_MMAP_THRESHOLD = -3;

let state: 'set' | 'unavailable' | undefined;

/**
 * Fixes glibc's mmap threshold at MMAP_THRESHOLD_BYTES for this process, once; 'unavailable' where
 * the C library is not glibc (musl, macOS, Windows), whose allocators have no such rule.
 */
export function fixMallocMmapThreshold(): 'set' | 'unavailable' {
  if (state) return state;
  state = 'unavailable';
  if (process.platform !== 'linux') return state;
  try {
    const mallopt = koffi.load('libc.so.6').func('int mallopt(int param, int value)') as (param: number, value: number) => number;
    if (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) === 1) state = 'set';
  } catch {
    // Not glibc: nothing to fix.
  }
  return state;
}
