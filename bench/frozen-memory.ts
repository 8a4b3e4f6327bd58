// Memory of a LoRA run by how the frozen base is held: read as float32 JavaScript arrays (what a
// base cost before: the arrays, an F32 ggml tensor and an F32 transposed copy), or left as the
// file stores it (F32, F16, Q8_0, Q4_K) and read straight into ggml memory. One process per
// variant, so each peak RSS is its own. Random weights, fixtures quantized by llama.cpp.
// Usage: tsx bench/frozen-memory.ts [d_model ffn layers vocab]   (defaults: a 0.1B-parameter shape)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { llamaQuantize } from '../src/trainer/ggml/llama-quantize.ts';
import { readGgufModel, writeGgufModel } from '../src/trainer/gguf-model.ts';
import { randomModel, testConfig } from '../src/trainer/train-fixtures.ts';
import { createTrainer } from '../src/trainer/train.ts';

const args = process.argv.slice(2);
if (args[0] === '--child') {
  const [, path, weights] = args;
  const model = await readGgufModel(path, { weights: weights as 'float32' | 'stored' });
  const seq = { tokens: Int32Array.from({ length: 129 }, (_, i) => (i * 31) % model.config.vocabSize), lossMask: new Uint8Array(129).fill(1) };
  const trainer = createTrainer({ model, lora: { rank: 16 }, train: [seq, seq, seq, seq], epochs: 1, batchSize: 2, threads: 1, learningRate: 1e-4 });
  trainer.step(); // the first step also copies the frozen transposes, once
  const t0 = performance.now();
  trainer.step();
  const stepMs = performance.now() - t0;
  trainer.dispose();
  console.log(JSON.stringify({ rssMb: Math.round(process.resourceUsage().maxRSS / 1024), stepMs: Math.round(stepMs) }));
  process.exit(0);
}

const [d, ffn, layers, vocab] = (args.length ? args : ['768', '2048', '8', '32000']).map(Number);
const dir = mkdtempSync(join(tmpdir(), 'nodeai-frozen-mem-'));
try {
  const config = testConfig({ embeddingLength: d, feedForwardLength: ffn, blockCount: layers, vocabSize: vocab, headCount: d / 64, headCountKv: d / 64, contextLength: 256 });
  const f32 = join(dir, 'F32.gguf');
  await writeGgufModel(f32, randomModel(config, 1));
  const f16 = join(dir, 'F16.gguf');
  llamaQuantize(f32, f16, 'F16', { threads: 2 });
  const q8 = join(dir, 'Q8_0.gguf');
  llamaQuantize(f32, q8, 'Q8_0', { threads: 2 });
  const q4 = join(dir, 'Q4_K.gguf');
  llamaQuantize(f32, q4, 'Q4_K_M', { threads: 2 });
  console.log(`LoRA r=16 on d_model ${d}, ffn ${ffn}, ${layers} layers, vocab ${vocab}: batch 2 × 128 tokens, 1 thread, the second step's time`);
  for (const [label, path, weights] of [
    ['F32 file, float32 arrays (before)', f32, 'float32'],
    ['F32 file, stored', f32, 'stored'],
    ['F16 file, stored', f16, 'stored'],
    ['Q8_0 file, stored', q8, 'stored'],
    ['Q4_K_M file, stored', q4, 'stored'],
  ] as const) {
    const r = spawnSync(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--child', path, weights], { encoding: 'utf8' });
    const line = r.stdout.trim().split('\n').at(-1) ?? '';
    const { rssMb, stepMs } = JSON.parse(line || '{}') as { rssMb?: number; stepMs?: number };
    console.log(`${label.padEnd(36)} peak RSS ${String(rssMb).padStart(6)} MB   step ${String(stepMs).padStart(6)} ms`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
