// Which `libggml-cpu-<variant>` build this processor can run. The variants and the instruction
// sets each one is compiled for mirror `ggml_add_cpu_backend_variant(...)` in ggml/src/CMakeLists.txt
// of the llama.cpp release the pinned @node-llama-cpp binaries were built from (see ggml/lib.ts).
import { readFileSync } from 'node:fs';

/** ggml feature name → the /proc/cpuinfo flags that must all be present. */
const FEATURE_FLAGS: Record<string, string[]> = {
  SSE42: ['sse4_2'],
  AVX: ['avx'],
  F16C: ['f16c'],
  FMA: ['fma'],
  AVX2: ['avx2'],
  BMI2: ['bmi2'],
  // ggml's AVX512 variant is compiled with -mavx512f -mavx512cd -mavx512vl -mavx512dq -mavx512bw.
  AVX512: ['avx512f', 'avx512cd', 'avx512vl', 'avx512dq', 'avx512bw'],
  AVX512_VBMI: ['avx512vbmi'],
  AVX512_VNNI: ['avx512_vnni'],
  AVX512_BF16: ['avx512_bf16'],
  AVX_VNNI: ['avx_vnni'],
  AMX_TILE: ['amx_tile'],
  AMX_INT8: ['amx_int8'],
};

export const X64_CPU_VARIANTS: ReadonlyArray<{ name: string; features: string[] }> = [
  { name: 'x64', features: [] },
  { name: 'sse42', features: ['SSE42'] },
  { name: 'sandybridge', features: ['SSE42', 'AVX'] },
  { name: 'ivybridge', features: ['SSE42', 'AVX', 'F16C'] },
  { name: 'piledriver', features: ['SSE42', 'AVX', 'F16C', 'FMA'] },
  { name: 'haswell', features: ['SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2'] },
  { name: 'skylakex', features: ['SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2', 'AVX512'] },
  { name: 'cannonlake', features: ['SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2', 'AVX512', 'AVX512_VBMI'] },
  { name: 'cascadelake', features: ['SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2', 'AVX512', 'AVX512_VNNI'] },
  {
    name: 'icelake',
    features: ['SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2', 'AVX512', 'AVX512_VBMI', 'AVX512_VNNI'],
  },
  {
    name: 'cooperlake',
    features: ['SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2', 'AVX512', 'AVX512_VNNI', 'AVX512_BF16'],
  },
  {
    name: 'zen4',
    features: ['SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2', 'AVX512', 'AVX512_VBMI', 'AVX512_VNNI', 'AVX512_BF16'],
  },
  { name: 'alderlake', features: ['SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2', 'AVX_VNNI'] },
  {
    name: 'sapphirerapids',
    features: [
      'SSE42', 'AVX', 'F16C', 'FMA', 'AVX2', 'BMI2', 'AVX512', 'AVX512_VBMI', 'AVX512_VNNI', 'AVX512_BF16',
      'AMX_TILE', 'AMX_INT8',
    ],
  },
];

/** Flags of the first processor in a /proc/cpuinfo text. */
export function parseCpuFlags(cpuinfo: string): Set<string> {
  const line = cpuinfo.split('\n').find((l) => /^flags\s*:/.test(l));
  if (!line) return new Set();
  return new Set(line.slice(line.indexOf(':') + 1).trim().split(/\s+/));
}

export function readCpuFlags(): Set<string> {
  try {
    return parseCpuFlags(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    return new Set();
  }
}

/**
 * Variants this CPU can run, best first. "Best" = most instruction-set features; an unsupported
 * instruction in a shared library is a SIGILL, so a variant is only listed when every flag is there.
 */
export function rankCpuVariants(flags: Set<string>): string[] {
  const supported = X64_CPU_VARIANTS.filter((v) =>
    v.features.every((f) => (FEATURE_FLAGS[f] ?? [f.toLowerCase()]).every((flag) => flags.has(flag))),
  );
  return supported
    .map((v, i) => ({ v, i }))
    .sort((a, b) => b.v.features.length - a.v.features.length || b.i - a.i)
    .map(({ v }) => v.name);
}
