import { describe, expect, it } from 'vitest';
import { parseCpuFlags, rankCpuVariants } from './cpu-variant.js';

const zen4 =
  'sse4_2 avx f16c fma avx2 bmi2 avx512f avx512cd avx512vl avx512dq avx512bw avx512vbmi avx512_vnni avx512_bf16 avx_vnni';

describe('rankCpuVariants', () => {
  it('picks zen4 for a Zen 4 flag set and never a variant needing a missing flag', () => {
    const ranked = rankCpuVariants(new Set(zen4.split(' ')));
    expect(ranked[0]).toBe('zen4');
    expect(ranked).not.toContain('sapphirerapids');
    expect(ranked.at(-1)).toBe('x64');
  });

  it('picks sapphirerapids only with AMX', () => {
    expect(rankCpuVariants(new Set([...zen4.split(' '), 'amx_tile', 'amx_int8']))[0]).toBe('sapphirerapids');
  });

  it('falls back to haswell, sse42 and x64', () => {
    expect(rankCpuVariants(new Set(['sse4_2', 'avx', 'f16c', 'fma', 'avx2', 'bmi2']))[0]).toBe('haswell');
    expect(rankCpuVariants(new Set(['sse4_2']))[0]).toBe('sse42');
    expect(rankCpuVariants(new Set())).toEqual(['x64']);
  });

  it('does not treat partial AVX-512 as AVX-512', () => {
    expect(rankCpuVariants(new Set(['sse4_2', 'avx', 'f16c', 'fma', 'avx2', 'bmi2', 'avx512f']))[0]).toBe('haswell');
  });

  it('parses the flags line of /proc/cpuinfo', () => {
    const flags = parseCpuFlags('processor\t: 0\nflags\t\t: fpu sse4_2 avx2\nbugs\t: x\n');
    expect([...flags]).toEqual(['fpu', 'sse4_2', 'avx2']);
  });
});
