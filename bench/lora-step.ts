// CPU time of one LoRA training step (forward + backward + AdamW) on SmolLM2-135M's shapes with
// fewer layers, per graph variant: what LoRA rank padding and compact frozen weights save, measured
// as process CPU time (less sensitive than wall time to a busy machine; one thread). The variants'
// steps are interleaved, round by round, so a change in the machine's load falls on all of them
// (run one after the other, the same two variants came out from +5 % to −9 % apart in one hour).
// With ggml's BLAS backend built (scripts/build-ggml-blas.sh), the same variants also run with the
// large matmuls on its library (oneDNN or OpenBLAS) instead of ggml-cpu's kernels.
// Usage: tsx bench/lora-step.ts [layers=6] [rank=8] [threads=1] [vocab=49152] [rounds=5]
import { performance } from 'node:perf_hooks';
import { probeBlas, type MatmulBackend } from '../src/trainer/ggml/blas.ts';
import { GGML_TYPE_BF16, loadGgml } from '../src/trainer/ggml/lib.ts';
import { LlamaGraph, loraPaddedRank, loraTargetTensors, type LlamaGraphOptions } from '../src/trainer/graph.ts';
import type { LlamaConfig } from '../src/trainer/llama-model.ts';
import { randomModel } from '../src/trainer/train-fixtures.ts';
import { Rng } from '../src/trainer/train-rng.ts';
import { DEFAULT_LORA_TARGETS } from '../src/trainer/train.ts';
import { SMOL_LM2_135M_SHAPES } from './smol-shapes.ts';

// Each argument left out takes its default (not only all of them together).
const [layers, rank, threads, vocab, rounds] = ['6', '8', '1', '49152', '5'].map((fallback, i) => Number(process.argv[2 + i] ?? fallback));
const config: LlamaConfig = { ...SMOL_LM2_135M_SHAPES, blockCount: layers, vocabSize: vocab };
const [batch, seqLen] = [4, 256];
const model = randomModel(config, 1);
const targets = loraTargetTensors(config, DEFAULT_LORA_TARGETS);

interface Variant {
  name: string;
  graph: LlamaGraph;
  steps: Array<{ cpu: number; wall: number }>;
}

/** A graph of the variant with seeded adapters and tokens, warmed up by one step. */
function prepare(name: string, extra: Partial<LlamaGraphOptions>): Variant {
  const graph = new LlamaGraph({ config, batch, seqLen, threads, lora: { rank, alpha: 2 * rank, targets }, ...extra });
  try {
    graph.loadWeights(model);
    const rng = new Rng(5);
    for (const t of graph.loraTensors.values()) graph.writeF32(t, Float32Array.from({ length: graph.g.nelements(t) }, () => (rng.next() - 0.5) * 0.05));
    graph.writeI32(graph.tokens, Int32Array.from({ length: batch * seqLen }, () => rng.int(config.vocabSize)));
    graph.writeF32(graph.mask, new Float32Array(batch * seqLen).fill(1));
    graph.setLossGradScale(1);
    step(graph); // warm-up: the one-off transposes of frozen weights, first touches of memory
    return { name, graph, steps: [] };
  } catch (e) {
    graph.dispose();
    throw e;
  }
}

function step(graph: LlamaGraph): { cpu: number; wall: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  graph.runTrain();
  graph.runOptimizer();
  const c = process.cpuUsage(c0);
  return { cpu: (c.user + c.system) / 1000, wall: performance.now() - t0 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

console.log(`ggml-cpu-${loadGgml().cpuVariant}: LoRA r=${rank} step, SmolLM2-135M shapes with ${layers} layers and vocab ${vocab}, batch ${batch} × ${seqLen}, ${threads} thread(s)`);
const variants: Array<[string, Partial<LlamaGraphOptions>]> = [
  ['F32 base, rank not padded (padLoraRank off)', { padLoraRank: false }],
  [`F32 base, rank padded to ${loraPaddedRank(rank)} (the default)`, { padLoraRank: true }],
  // What the trainer's frozenBase 'bf16' asks the graph for.
  [`BF16 base, rank padded to ${loraPaddedRank(rank)}`, { padLoraRank: true, weightTypes: new Map([...model.tensors.values()].filter((t) => t.shape.length >= 2).map((t) => [t.name, GGML_TYPE_BF16])) }],
];
// The same two with the large matmuls on the BLAS backend (scripts/build-ggml-blas.sh), when it is built.
const blas = probeBlas();
if (blas.ok) {
  const matmul: MatmulBackend = { ...blas, kind: 'blas', reason: 'bench' };
  for (const [name, extra] of variants.slice(1)) variants.push([`${name}, ${blas.name.replace(/ \(.*/, '')}`, { ...extra, matmul }]);
} else {
  console.log(`(no BLAS-backend variants: missing ${blas.missing}; ${blas.fix})`);
}
const prepared: Variant[] = [];
try {
  for (const [name, extra] of variants) prepared.push(prepare(name, extra));
  // Each round in another order, so no variant always runs right after the same one.
  for (let r = 0; r < rounds; r++) for (const v of r % 2 ? [...prepared].reverse() : prepared) v.steps.push(step(v.graph));
  for (const v of prepared) {
    const cpu = median(v.steps.map((s) => s.cpu));
    const wall = median(v.steps.map((s) => s.wall));
    console.log(`${v.name.padEnd(64)} ${cpu.toFixed(0).padStart(7)} ms CPU/step  ${wall.toFixed(0).padStart(7)} ms wall  (median of ${rounds})`);
  }
} finally {
  for (const v of prepared) v.graph.dispose();
}
