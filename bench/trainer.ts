// Trainer benchmark (issue 3, Performance): training tokens/s and peak RSS of the local trainer
// against the PyTorch reference (bench/reference/llama_train.py) on the same shapes, each config
// in its own child process so one run's memory does not inflate the next one's peak RSS.
//
//   npm run bench:trainer             # table and ratios
//   npm run bench:trainer -- --json   # ... and one JSON line at the end
//   npm run bench:trainer -- --only reference --threads 1   # one config, another thread count
//
// (a) reference: byte-level vocabulary (nodeai-tiny's 259 tokens), 4 layers, d_model 128, 4 heads
//     (2 KV heads and SwiGLU FFN 384, as nodeai-tiny), ctx 128, batch 8, full fine-tuning.
// (b) smol_lora: SmolLM2-135M's shapes (vocab 49152, d 576, 30 layers, 9 heads, 3 KV heads,
//     FFN 1536, tied embeddings), random weights, LoRA r=8 on every projection, ctx 256, batch 4.
// Both engines see random tokens with the loss on every position, AdamW, threads = cores.
import { execFileSync, spawn } from 'node:child_process';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { LlamaConfig, TrainingSequence } from '../src/trainer/llama-model.ts';
import { TINY_CONFIG } from '../src/trainer/tiny-model.ts';
import { SMOL_LM2_135M_SHAPES } from './smol-shapes.ts';

interface BenchConfig {
  name: 'reference' | 'smol_lora';
  label: string;
  config: LlamaConfig;
  ctx: number;
  batch: number;
  loraRank: number;
  warmup: number;
  steps: number;
}

const CONFIGS: BenchConfig[] = [
  {
    name: 'reference',
    label: 'reference (byte vocab, 4×128, ctx 128, batch 8, full)',
    config: { ...TINY_CONFIG, contextLength: 128 },
    ctx: 128,
    batch: 8,
    loraRank: 0,
    warmup: 3,
    steps: 20,
  },
  {
    name: 'smol_lora',
    label: 'SmolLM2-135M shapes, LoRA r=8 (ctx 256, batch 4)',
    config: SMOL_LM2_135M_SHAPES,
    ctx: 256,
    batch: 4,
    loraRank: 8,
    warmup: 1,
    steps: 4,
  },
];

interface Measured {
  tok_s: number;
  step_ms: number;
  loss_first: number;
  loss_last: number;
  max_rss_mb: number;
  load_before: number;
}

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

// Children inherit the thread count through the environment, so both engines always agree.
const threads = Number(option('threads') ?? process.env.NODEAI_BENCH_THREADS ?? availableParallelism());
if (!Number.isInteger(threads) || threads < 1) throw new Error(`--threads must be a whole number ≥ 1`);

/** In the child: build the model, train warmup + steps, print one JSON line. */
async function child(name: string): Promise<void> {
  const b = CONFIGS.find((c) => c.name === name)!;
  const { randomModel } = await import('../src/trainer/train-fixtures.ts');
  const { Rng } = await import('../src/trainer/train-rng.ts');
  const { createTrainer } = await import('../src/trainer/train.ts');
  const model = randomModel(b.config, 1);
  const rng = new Rng(2);
  const rows = b.batch * (b.warmup + b.steps);
  const train: TrainingSequence[] = Array.from({ length: rows }, () => {
    const tokens = new Int32Array(b.ctx + 1);
    for (let i = 0; i < tokens.length; i++) tokens[i] = rng.int(b.config.vocabSize);
    return { tokens, lossMask: new Uint8Array(b.ctx + 1).fill(1) };
  });
  const trainer = createTrainer({
    model,
    train,
    epochs: 1,
    batchSize: b.batch,
    learningRate: 1e-3,
    warmup: 0,
    seqLen: b.ctx,
    threads,
    ...(b.loraRank ? { lora: { rank: b.loraRank, alpha: 2 * b.loraRank } } : {}),
  });
  const losses: number[] = [];
  let t0 = 0;
  for (let s = 0; s < b.warmup + b.steps; s++) {
    if (s === b.warmup) t0 = performance.now();
    losses.push(trainer.step().trainLoss);
  }
  const dt = (performance.now() - t0) / 1000;
  trainer.dispose();
  const out: Omit<Measured, 'load_before'> = {
    tok_s: (b.steps * b.batch * b.ctx) / dt,
    step_ms: (dt / b.steps) * 1000,
    loss_first: losses[0],
    loss_last: losses.at(-1)!,
    max_rss_mb: process.resourceUsage().maxRSS / 1024,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

function runChild(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Measured> {
  const load = loadavg()[0];
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (err += d));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      try {
        if (code !== 0) throw new Error();
        resolve({ ...(JSON.parse(last) as Omit<Measured, 'load_before'>), load_before: load });
      } catch {
        reject(new Error(`${cmd} ${args.slice(-1)[0]} ended with ${signal ?? code}: ${err.trim().split('\n').slice(-5).join('\n')}`));
      }
    });
  });
}

function nodeai(b: BenchConfig): Promise<Measured> {
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
  return runChild(process.execPath, ['--import', tsx, fileURLToPath(import.meta.url), '--child', b.name], { NODEAI_BENCH_THREADS: String(threads) });
}

const PYTHON = '/usr/bin/python3';

function torchAvailable(): string | null {
  try {
    execFileSync(PYTHON, ['-c', 'import torch'], { stdio: 'ignore', env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } });
    return null;
  } catch {
    return `${PYTHON} cannot import torch (install Debian's python3-torch and libopenblas0-pthread); PyTorch figures skipped`;
  }
}

function pytorch(b: BenchConfig): Promise<Measured> {
  const c = b.config;
  const cfg = {
    vocab: c.vocabSize,
    d: c.embeddingLength,
    layers: c.blockCount,
    heads: c.headCount,
    kv_heads: c.headCountKv,
    ffn: c.feedForwardLength,
    ctx: b.ctx,
    batch: b.batch,
    tied: c.tiedEmbeddings,
    lora_rank: b.loraRank,
    lora_alpha: 2 * b.loraRank,
    steps: b.steps,
    warmup: b.warmup,
    threads,
  };
  const script = fileURLToPath(new URL('./reference/llama_train.py', import.meta.url));
  return runChild(PYTHON, [script, JSON.stringify(cfg)], { OPENBLAS_NUM_THREADS: '1' });
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const only = option('only');
  const configs = CONFIGS.filter((c) => !only || c.name === only);
  if (configs.length === 0) throw new Error(`--only must be one of ${CONFIGS.map((c) => c.name).join(', ')}`);
  console.log(`Trainer benchmark · ${cpu} · ${availableParallelism()} cores (threads = ${threads} in both engines) · ${new Date().toISOString().slice(0, 10)} · Node ${process.version}`);
  const skip = torchAvailable();
  if (skip) console.log(`note: ${skip}`);
  const rows: Array<{ b: BenchConfig; n: Measured; p: Measured | null }> = [];
  for (const b of configs) {
    process.stderr.write(`${b.name}: NodeAI (ggml)…\n`);
    const n = await nodeai(b);
    let p: Measured | null = null;
    if (!skip) {
      process.stderr.write(`${b.name}: PyTorch…\n`);
      p = await pytorch(b);
    }
    rows.push({ b, n, p });
  }
  const f = (x: number) => Math.round(x).toLocaleString('en-US');
  console.log('\n| config | engine | training tok/s | ms/step | peak RSS MB | loss first → last | 1-min load before |');
  console.log('| --- | --- | ---: | ---: | ---: | --- | ---: |');
  for (const { b, n, p } of rows) {
    for (const [engine, m] of [['NodeAI (ggml via koffi)', n], ['PyTorch (CPU, OpenBLAS)', p]] as const) {
      if (!m) continue;
      console.log(`| ${b.label} | ${engine} | ${f(m.tok_s)} | ${f(m.step_ms)} | ${f(m.max_rss_mb)} | ${m.loss_first.toFixed(2)} → ${m.loss_last.toFixed(2)} | ${m.load_before.toFixed(2)} |`);
    }
  }
  console.log('');
  const summary: Record<string, { nodeai_tok_s: number; pytorch_tok_s: number | null; ratio: number | null; nodeai_rss_mb: number; pytorch_rss_mb: number | null }> = {};
  for (const { b, n, p } of rows) {
    const ratio = p ? n.tok_s / p.tok_s : null;
    summary[b.name] = {
      nodeai_tok_s: Math.round(n.tok_s),
      pytorch_tok_s: p ? Math.round(p.tok_s) : null,
      ratio: ratio === null ? null : Number(ratio.toFixed(3)),
      nodeai_rss_mb: Math.round(n.max_rss_mb),
      pytorch_rss_mb: p ? Math.round(p.max_rss_mb) : null,
    };
    console.log(`${b.name}: NodeAI / PyTorch = ${ratio === null ? 'n/a' : ratio.toFixed(2)}`);
  }
  if (json) console.log(JSON.stringify(summary));
}

const i = process.argv.indexOf('--child');
if (i !== -1) await child(process.argv[i + 1]);
else await main();
