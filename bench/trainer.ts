// Trainer benchmark (issues 10 and 11): training tokens/s and peak RSS of the local trainer against
// the PyTorch reference (bench/reference/llama_train.py) on the same shapes. Every run is its own
// child process, so one run's memory does not inflate the next one's peak RSS, and the engines
// alternate (NodeAI, PyTorch, NodeAI, …) so both see the same share of a busy machine; each figure
// is the median of the runs, with the 1-minute load recorded before each run.
//
//   npm run bench:trainer                        # every config, 3 runs per engine, table and ratios
//   npm run bench:trainer -- --json              # ... and one JSON line at the end
//   npm run bench:trainer -- --only reference --threads 1
//   npm run bench:trainer -- --only qwen05_lora,llama1b_lora --runs 1 --ctx 128 --batch 1
//
// Options: --threads N (both engines; default: the cores), --device auto|cpu|cuda (NodeAI's; default cpu),
// --matmul auto|ggml|blas (NodeAI's CPU matmuls; default auto; blas needs scripts/build-ggml-blas.sh), --runs N (per engine; default 3),
// --python PATH (the interpreter whose torch is timed; default /usr/bin/python3), --skip-pytorch (NodeAI only, e.g. where PyTorch's run would not fit in memory), --only NAME[,NAME] (configs), --ctx N / --batch N (a smaller size than the config's, labelled
// "reduced" in the table and the JSON), --max-rss-mb N (a run whose resident memory passes N MB is
// killed and reported with the RSS it had reached; default: MemAvailable at the start − 2 GB, so the
// benchmark never pushes a shared machine into the OOM killer), --keep-bases DIR (write the random
// GGUF bases there and reuse them next time instead of a temporary folder), --record FILE (also
// write the summary with machine, date, load and command, as src/trainer/benchmark-figures.json is).
//
// Configs (random weights, random tokens, loss on every position, AdamW, gradient clipping at 1):
// - reference: byte-level vocabulary (nodeai-tiny's 259 tokens), 4 layers, d_model 128, 4 heads
//   (2 KV heads, SwiGLU FFN 384, as nodeai-tiny), ctx 128, batch 8, full fine-tuning.
// - smol_lora: SmolLM2-135M's shapes, LoRA r=8 on every projection, F32 base, ctx 256, batch 4.
// - qwen05_lora: Qwen2.5-0.5B-Instruct's shapes (qwen2, QKV bias, tied), LoRA r=16 on a Q8_0 base.
// - llama1b_lora: Llama-3.2-1B-Instruct's shapes (llama3 rope_freqs, tied), LoRA r=16 on a Q4_K base.
// The last two read a GGUF written by buildRandomModel and quantized by llama.cpp's quantizer; the
// PyTorch side holds the frozen base in BF16 (the checkpoints' own dtype: PyTorch has no Q8_0/Q4_K
// kernels) and multiplies in it, with the LoRA branches, activations and optimizer in F32.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { LlamaFtypeName } from '../src/trainer/ggml/llama-quantize.ts';
import type { LlamaConfig, LlamaModel, TrainingSequence } from '../src/trainer/llama-model.ts';
import { TINY_CONFIG } from '../src/trainer/tiny-model.ts';
import { FROZEN_BASE_CHOICES, TRAINING_DEVICES, TRAINING_MATMULS, type TrainingDevice } from '../src/trainer/training-device.ts';
import { SMOL_LM2_135M_SHAPES } from './smol-shapes.ts';

const CONFIG_NAMES = ['reference', 'smol_lora', 'qwen05_lora', 'llama1b_lora'] as const;
type ConfigName = (typeof CONFIG_NAMES)[number];

interface BenchConfig {
  name: ConfigName;
  label: string;
  config: LlamaConfig;
  ctx: number;
  batch: number;
  loraRank: number;
  warmup: number;
  steps: number;
  /** A quantized GGUF base (llama.cpp's ftype; `pure`, so every matrix has the ftype's base type). */
  base?: { ftype: LlamaFtypeName; type: string; torchDtype: 'bfloat16' };
}

const CONFIGS: BenchConfig[] = [
  {
    name: 'reference',
    label: 'reference (byte vocab, 4×128, full)',
    config: { ...TINY_CONFIG, contextLength: 128 },
    ctx: 128,
    batch: 8,
    loraRank: 0,
    warmup: 3,
    steps: 20,
  },
  {
    name: 'smol_lora',
    label: 'SmolLM2-135M shapes, LoRA r=8, F32 base',
    config: SMOL_LM2_135M_SHAPES,
    ctx: 256,
    batch: 4,
    loraRank: 8,
    warmup: 1,
    steps: 4,
  },
  {
    // Qwen/Qwen2.5-0.5B-Instruct config.json: hidden 896, 24 layers, 14 heads, 2 KV heads, FFN
    // 4864, vocab 151936, rope_theta 1e6, rms_norm_eps 1e-6, tie_word_embeddings; qwen2 = QKV bias.
    name: 'qwen05_lora',
    label: 'Qwen2.5-0.5B shapes, LoRA r=16, Q8_0 base',
    config: { architecture: 'qwen2', vocabSize: 151936, contextLength: 32768, embeddingLength: 896, blockCount: 24, headCount: 14, headCountKv: 2, feedForwardLength: 4864, ropeFreqBase: 1e6, rmsNormEps: 1e-6, tiedEmbeddings: true },
    ctx: 512,
    batch: 4,
    loraRank: 16,
    warmup: 1,
    steps: 2,
    base: { ftype: 'Q8_0', type: 'Q8_0', torchDtype: 'bfloat16' },
  },
  {
    // meta-llama/Llama-3.2-1B-Instruct config.json: hidden 2048, 16 layers, 32 heads, 8 KV heads,
    // FFN 8192, vocab 128256, rope_theta 500000 with llama3 rope_scaling (factor 32, low 1, high 4,
    // original 8192 → rope_freqs), rms_norm_eps 1e-5, tie_word_embeddings.
    name: 'llama1b_lora',
    label: 'Llama-3.2-1B shapes, LoRA r=16, Q4_K base',
    config: { vocabSize: 128256, contextLength: 131072, embeddingLength: 2048, blockCount: 16, headCount: 32, headCountKv: 8, feedForwardLength: 8192, ropeFreqBase: 500000, rmsNormEps: 1e-5, tiedEmbeddings: true, ropeFreqFactors: true },
    ctx: 512,
    batch: 4,
    loraRank: 16,
    warmup: 1,
    steps: 2,
    base: { ftype: 'Q4_K_M', type: 'Q4_K', torchDtype: 'bfloat16' },
  },
];

/** What a child prints as its last line. */
interface ChildResult {
  tok_s: number;
  step_ms: number;
  loss_first: number;
  loss_last: number;
  max_rss_mb: number;
  /** Who computed the matmuls ("oneDNN 2.6.3 (AMX BF16 tiles)", "ggml-cpu"), and how the frozen base was held. */
  matmul: string;
  frozen_base: string;
}

/** One run: a child's result, or where the memory limit stopped it. */
type Run = { load_before: number } & ({ ok: true; result: ChildResult } | { ok: false; rss_mb_at_stop: number });

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

function wholeOption(name: string, fallback: number | undefined): number | undefined {
  const text = option(name);
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a whole number ≥ 1 (got ${JSON.stringify(text)})`);
  return n;
}

// Children inherit the thread count and size through the environment, so both engines always agree.
const threads = wholeOption('threads', Number(process.env.NODEAI_BENCH_THREADS ?? availableParallelism()))!;
// NodeAI's device (auto|cpu|cuda; default cpu, so CPU figures stay CPU figures on a GPU machine); PyTorch stays on the CPU.
const deviceText = option('device') ?? process.env.NODEAI_BENCH_DEVICE ?? 'cpu';
const device = TRAINING_DEVICES.find((d) => d === deviceText);
if (!device) throw new Error(`--device takes ${TRAINING_DEVICES.join(', ')} (got ${JSON.stringify(deviceText)})`);
const matmulText = option('matmul') ?? process.env.NODEAI_BENCH_MATMUL ?? 'auto';
const matmul = TRAINING_MATMULS.find((m) => m === matmulText);
if (!matmul) throw new Error(`--matmul takes ${TRAINING_MATMULS.join(', ')} (got ${JSON.stringify(matmulText)})`);
const frozenBaseText = option('frozen-base') ?? process.env.NODEAI_BENCH_FROZEN_BASE ?? 'auto';
const frozenBase = FROZEN_BASE_CHOICES.find((m) => m === frozenBaseText);
if (!frozenBase) throw new Error(`--frozen-base takes ${FROZEN_BASE_CHOICES.join(', ')} (got ${JSON.stringify(frozenBaseText)})`);

/** The config at the size this invocation runs it (--ctx/--batch make it smaller). */
function sized(b: BenchConfig): BenchConfig & { reduced: boolean; fullCtx: number; fullBatch: number } {
  const ctx = wholeOption('ctx', Number(process.env.NODEAI_BENCH_CTX ?? b.ctx))!;
  const batch = wholeOption('batch', Number(process.env.NODEAI_BENCH_BATCH ?? b.batch))!;
  return { ...b, ctx, batch, reduced: ctx !== b.ctx || batch !== b.batch, fullCtx: b.ctx, fullBatch: b.batch };
}

/** In a child: write config `name`'s random base to `path` (a child, so its F32 arrays are freed with it). */
async function writeBase(name: string, path: string): Promise<void> {
  const b = CONFIGS.find((c) => c.name === name)!;
  const { buildRandomModel } = await import('../src/trainer/random-model.ts');
  const { paddedTokenizer, writeQuantizedModel } = await import('./random-base.ts');
  const { vocabSize, architecture, ...config } = b.config;
  const model = buildRandomModel({ architecture: architecture ?? 'llama', config, tokenizer: paddedTokenizer(vocabSize), seed: 1, name: `${b.label}, random weights` });
  await writeQuantizedModel(path, model, b.base!.ftype);
  process.stdout.write(JSON.stringify({ max_rss_mb: process.resourceUsage().maxRSS / 1024 }) + '\n');
}

/**
 * In a child: the size of the trainer's ggml arena (weights, activations, gradients, optimizer
 * state: all of the trainer's native memory but the work buffer) for config `name` at its own size,
 * without training. ggml_init only reserves the arena, so nothing of it becomes resident here; an
 * arena larger than the machine can reserve makes ggml abort, and the parent reads the size from
 * ggml's message.
 */
async function arena(name: string, basePath: string | undefined): Promise<void> {
  const b = CONFIGS.find((c) => c.name === name)!;
  const { LlamaGraph, loraTargetTensors } = await import('../src/trainer/graph.ts');
  const { DEFAULT_LORA_TARGETS } = await import('../src/trainer/train.ts');
  const { readGgufModel } = await import('../src/trainer/gguf-model.ts');
  const stored = basePath ? (await readGgufModel(basePath, { weights: 'stored' })).stored : undefined;
  const graph = new LlamaGraph({
    config: b.config,
    batch: b.batch,
    seqLen: b.ctx,
    threads,
    ...(b.loraRank ? { lora: { rank: b.loraRank, alpha: 2 * b.loraRank, targets: loraTargetTensors(b.config, DEFAULT_LORA_TARGETS) } } : {}),
    weightTypes: new Map([...(stored ?? [])].map(([n, t]) => [n, t.type])),
  });
  process.stdout.write(JSON.stringify({ arena_mb: graph.memBytes / 2 ** 20 }) + '\n');
  graph.dispose();
}

/** In a child: build or read the model, train warmup + steps, print one JSON line. */
async function child(name: string, basePath: string | undefined): Promise<void> {
  const b = sized(CONFIGS.find((c) => c.name === name)!);
  const { randomModel } = await import('../src/trainer/train-fixtures.ts');
  const { readGgufModel } = await import('../src/trainer/gguf-model.ts');
  const { Rng } = await import('../src/trainer/train-rng.ts');
  const { createTrainer } = await import('../src/trainer/train.ts');
  let model: LlamaModel;
  if (basePath) {
    model = await readGgufModel(basePath, { weights: 'stored' });
    // llama.cpp's quantizer falls back silently for rows that do not fit a block: refuse to time that.
    const types = new Set([...(model.stored?.values() ?? [])].filter((t) => t.shape.length === 2).map((t) => t.typeName));
    if (types.size !== 1 || !types.has(b.base!.type)) throw new Error(`${basePath}: the frozen matrices are ${[...types].join(', ') || 'not stored'}, not all ${b.base!.type}`);
  } else model = randomModel(b.config, 1);
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
    device: device as TrainingDevice,
    matmul,
    ...(b.loraRank ? { lora: { rank: b.loraRank, alpha: 2 * b.loraRank }, frozenBase } : {}),
  });
  const matmulName = trainer.matmul.kind === 'blas' ? trainer.matmul.name : 'ggml-cpu';
  const frozenBaseName = b.loraRank ? (b.base ? `${b.base.type} base as stored` : `${trainer.settings.frozenBase?.toUpperCase()} frozen base`) : 'full fine-tuning, F32';
  const losses: number[] = [];
  let t0 = 0;
  for (let s = 0; s < b.warmup + b.steps; s++) {
    if (s === b.warmup) t0 = performance.now();
    losses.push(trainer.step().trainLoss);
  }
  const dt = (performance.now() - t0) / 1000;
  trainer.dispose();
  const out: ChildResult = {
    tok_s: (b.steps * b.batch * b.ctx) / dt,
    step_ms: (dt / b.steps) * 1000,
    loss_first: losses[0],
    loss_last: losses.at(-1)!,
    max_rss_mb: process.resourceUsage().maxRSS / 1024,
    matmul: matmulName,
    frozen_base: frozenBaseName,
  };
  process.stdout.write(JSON.stringify(out) + '\n');
}

/** The CPU as /proc/cpuinfo names it, with the matrix extensions both engines' kernels pick from. */
function machine(): string {
  let flags: string[] = [];
  try {
    flags = (/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').trim().split(/\s+/);
  } catch {
    // Not Linux: the model name alone.
  }
  const wanted = ['avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_tile', 'amx_bf16', 'amx_int8'].filter((f) => flags.includes(f));
  const memGb = Math.round(totalmem() / 2 ** 30);
  return `${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores, ${memGb} GiB${wanted.length ? ` (${wanted.join(' ')})` : ''}`;
}

/** MemAvailable of /proc/meminfo in MB (Linux); null elsewhere. */
function memAvailableMb(): number | null {
  try {
    const kb = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : null;
  } catch {
    return null;
  }
}

function rssMbOf(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) / 1024 : 0;
  } catch {
    return 0;
  }
}

const maxRssMb = wholeOption('max-rss-mb', Math.max(1024, Math.floor((memAvailableMb() ?? 16384) - 2048)))!;

/** Runs a child, killing it when its RSS passes --max-rss-mb (sampled every 100 ms). */
function runChild(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const load = loadavg()[0];
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let stoppedAt = 0;
    const watch = setInterval(() => {
      const rss = rssMbOf(p.pid!);
      if (rss > maxRssMb && !stoppedAt) {
        stoppedAt = rss;
        p.kill('SIGKILL');
      }
    }, 100);
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (err += d));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      clearInterval(watch);
      if (stoppedAt) return resolve({ load_before: load, ok: false, rss_mb_at_stop: stoppedAt });
      const last = out.trim().split('\n').at(-1) ?? '';
      try {
        if (code !== 0) throw new Error();
        resolve({ load_before: load, ok: true, result: JSON.parse(last) as ChildResult });
      } catch {
        reject(new Error(`${cmd} ${args.slice(-1)[0]} ended with ${signal ?? code}: ${err.trim().split('\n').slice(-5).join('\n')}`));
      }
    });
  });
}

/** This script as a child's node arguments: through tsx, unless it runs bundled to JavaScript (bench/gpu-bundle.sh). */
function selfArgs(): string[] {
  const self = fileURLToPath(import.meta.url);
  return self.endsWith('.ts') ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href, self] : [self];
}

function childEnv(b: BenchConfig): NodeJS.ProcessEnv {
  return { NODEAI_BENCH_THREADS: String(threads), NODEAI_BENCH_DEVICE: device, NODEAI_BENCH_MATMUL: matmul, NODEAI_BENCH_FROZEN_BASE: frozenBase, NODEAI_BENCH_CTX: String(b.ctx), NODEAI_BENCH_BATCH: String(b.batch) };
}

function nodeai(b: BenchConfig, basePath: string | undefined): Promise<Run> {
  const args = [...selfArgs(), '--child', b.name, ...(basePath ? ['--base', basePath] : [])];
  return runChild(process.execPath, args, childEnv(b));
}

/** The base's GGUF in `dir`, written once (by a child process) and reused while it is there. */
async function ensureBase(b: BenchConfig, dir: string): Promise<string> {
  const path = join(dir, `${b.name}-${b.base!.ftype}.gguf`);
  if (existsSync(path)) return path;
  process.stderr.write(`${b.name}: writing the random ${b.base!.type} base (buildRandomModel → F16 → llama.cpp quantizer)…\n`);
  const tmp = path.replace(/\.gguf$/, '.partial.gguf');
  const run = await runChild(process.execPath, [...selfArgs(), '--write-base', b.name, tmp], {});
  if (!run.ok) throw new Error(`writing ${b.name}'s base passed --max-rss-mb ${maxRssMb} (${Math.round(run.rss_mb_at_stop)} MB)`);
  renameSync(tmp, path);
  return path;
}

/** The NodeAI trainer's ggml arena at the config's own size (not --ctx/--batch), in MB. */
async function fullArenaMb(b: BenchConfig, basePath: string | undefined): Promise<number> {
  const args = [...selfArgs(), '--arena', b.name, ...(basePath ? ['--base', basePath] : [])];
  let run: Run;
  try {
    run = await runChild(process.execPath, args, {});
  } catch (e) {
    // ggml_aligned_malloc: insufficient memory (attempted to allocate 44452.83 MB)
    const refused = /attempted to allocate ([\d.]+) MB/.exec((e as Error).message);
    if (!refused) throw e;
    return Number(refused[1]);
  }
  if (!run.ok) throw new Error(`sizing ${b.name}'s arena passed --max-rss-mb ${maxRssMb}`);
  return (run.result as unknown as { arena_mb: number }).arena_mb;
}

// Debian's python3-torch (1.13) by default; --python names another interpreter, e.g. one with a
// pip-installed PyTorch 2.x, whose BF16 matmuls reach this CPU's AMX tiles through oneDNN.
const PYTHON = option('python') ?? '/usr/bin/python3';

/** The PyTorch version PYTHON imports, or null when it cannot import torch. */
function torchVersion(): string | null {
  try {
    return execFileSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: '1' } }).trim();
  } catch {
    return null;
  }
}

async function pytorch(b: BenchConfig): Promise<Run> {
  const c = b.config;
  const { architectureSpec } = await import('../src/trainer/architectures/index.ts');
  const { llama3RopeFactors } = await import('../src/trainer/random-model.ts');
  const headDim = c.embeddingLength / c.headCount;
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
    qkv_bias: architectureSpec(c.architecture).qkvBias ?? false,
    rope_base: c.ropeFreqBase,
    rms_eps: c.rmsNormEps,
    rope_factors: c.ropeFreqFactors ? [...llama3RopeFactors(headDim, c.ropeFreqBase)] : null,
    frozen_dtype: b.base?.torchDtype ?? null,
  };
  const script = fileURLToPath(new URL('./reference/llama_train.py', import.meta.url));
  return runChild(PYTHON, [script, JSON.stringify(cfg)], { OPENBLAS_NUM_THREADS: '1' });
}

/** One run's figures, as a progress line (the table gives the medians). */
function runResult(run: Run): string {
  return run.ok
    ? `  ${figure(run.result.tok_s).toLocaleString('en-US')} tok/s, ${Math.round(run.result.max_rss_mb).toLocaleString('en-US')} MB peak RSS\n`
    : `  stopped at ${Math.round(run.rss_mb_at_stop).toLocaleString('en-US')} MB RSS\n`;
}

/** A figure as the table and the JSON state it: whole numbers, but one decimal below 100 (the big configs on a busy machine). */
function figure(x: number): number {
  return Math.abs(x) < 100 ? Math.round(x * 10) / 10 : Math.round(x);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

type Summary =
  | { stopped: false; tok_s: number; step_ms: number; max_rss_mb: number; loss_first: number; loss_last: number; finished: number; how: string }
  | { stopped: true; stopped_at_rss_mb: number };

/** Medians of the runs that finished; when none did, the highest RSS a stopped run had reached. */
function summarize(runs: Run[]): Summary | null {
  const done = runs.flatMap((r) => (r.ok ? [r.result] : []));
  if (done.length === 0) {
    const stops = runs.flatMap((r) => (r.ok ? [] : [r.rss_mb_at_stop]));
    return stops.length ? { stopped: true, stopped_at_rss_mb: Math.round(Math.max(...stops)) } : null;
  }
  return {
    stopped: false,
    tok_s: median(done.map((r) => r.tok_s)),
    step_ms: median(done.map((r) => r.step_ms)),
    max_rss_mb: median(done.map((r) => r.max_rss_mb)),
    loss_first: median(done.map((r) => r.loss_first)),
    loss_last: median(done.map((r) => r.loss_last)),
    finished: done.length,
    // PyTorch's runs report neither.
    how: [...new Set(done.filter((r) => r.matmul).map((r) => `${r.matmul}; ${r.frozen_base}`))].join(' / '),
  };
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const runs = wholeOption('runs', 3)!;
  const only = option('only')?.split(',');
  const unknown = only?.filter((n) => !CONFIG_NAMES.includes(n as ConfigName)) ?? [];
  if (unknown.length) throw new Error(`--only takes ${CONFIG_NAMES.join(', ')} (comma-separated); not ${unknown.join(', ')}`);
  const configs = CONFIGS.filter((c) => !only || only.includes(c.name)).map(sized);
  const cpu = machine();
  const date = new Date().toISOString();
  const command = `npm run bench:trainer -- ${process.argv.slice(2).join(' ')}`.trim();
  console.log(`Trainer benchmark · ${cpu} · threads = ${threads} in both engines · NodeAI matmul "${matmul}", frozenBase "${frozenBase}" · ${date} · Node ${process.version}`);
  console.log(`${runs} run(s) per engine, interleaved (NodeAI, PyTorch, NodeAI, …), medians reported${runs < 3 ? ` — fewer than the contract's 3 (--runs ${runs})` : ''}; a run is stopped at ${maxRssMb} MB RSS.`);
  const skipAsked = process.argv.includes('--skip-pytorch');
  const torch = skipAsked ? null : torchVersion();
  const skip = torch === null;
  if (skipAsked) console.log('PyTorch not run (--skip-pytorch).');
  else if (skip) console.log(`note: ${PYTHON} cannot import torch (install Debian's python3-torch and libopenblas0-pthread, or pass --python); PyTorch figures skipped`);
  else console.log(`PyTorch ${torch} (${PYTHON})`);

  const keep = option('keep-bases');
  const baseDir = keep ?? mkdtempSync(join(tmpdir(), 'nodeai-bench-bases-'));
  if (keep) mkdirSync(keep, { recursive: true });
  const rows: Array<{ b: ReturnType<typeof sized>; n: Run[]; p: Run[]; fullArenaMb: number }> = [];
  try {
    for (const b of configs) {
      const basePath = b.base ? await ensureBase(b, baseDir) : undefined;
      const row = { b, n: [] as Run[], p: [] as Run[], fullArenaMb: await fullArenaMb(b, basePath) };
      for (let r = 0; r < runs; r++) {
        process.stderr.write(`${b.name} run ${r + 1}/${runs}: NodeAI (ggml)… (1-min load ${loadavg()[0].toFixed(2)})\n`);
        row.n.push(await nodeai(b, basePath));
        process.stderr.write(runResult(row.n.at(-1)!));
        if (!skip) {
          process.stderr.write(`${b.name} run ${r + 1}/${runs}: PyTorch… (1-min load ${loadavg()[0].toFixed(2)})\n`);
          row.p.push(await pytorch(b));
          process.stderr.write(runResult(row.p.at(-1)!));
        }
      }
      rows.push(row);
    }
  } finally {
    if (!keep) rmSync(baseDir, { recursive: true, force: true });
  }

  const f = (x: number) => figure(x).toLocaleString('en-US');
  console.log('\n| config | size | engine | training tok/s | ms/step | peak RSS MB | loss first → last | 1-min load before each run |');
  console.log('| --- | --- | --- | ---: | ---: | ---: | --- | --- |');
  const summary: Record<string, unknown> = {};
  for (const { b, n, p, fullArenaMb } of rows) {
    const size = `ctx ${b.ctx}, batch ${b.batch}${b.reduced ? ' (reduced)' : ''}`;
    const sn = summarize(n);
    const sp = summarize(p);
    for (const [engine, s, rs] of [[`NodeAI (ggml via koffi${sn && !sn.stopped && sn.how ? `; ${sn.how}` : ''})`, sn, n], [`PyTorch ${torch ?? ''} (CPU${b.base ? `, ${b.base.torchDtype} base` : ''})`, sp, p]] as const) {
      if (!s) continue;
      const loads = rs.map((r) => r.load_before.toFixed(2)).join(', ');
      if (!s.stopped) console.log(`| ${b.label} | ${size} | ${engine} | ${f(s.tok_s)} | ${f(s.step_ms)} | ${f(s.max_rss_mb)} | ${s.loss_first.toFixed(2)} → ${s.loss_last.toFixed(2)} | ${loads} |`);
      else console.log(`| ${b.label} | ${size} | ${engine} | stopped | | > ${f(s.stopped_at_rss_mb)} (limit ${maxRssMb}) | | ${loads} |`);
    }
    const tokN = sn && !sn.stopped ? sn.tok_s : null;
    const tokP = sp && !sp.stopped ? sp.tok_s : null;
    const ratio = tokN !== null && tokP !== null ? tokN / tokP : null;
    summary[b.name] = {
      nodeai_tok_s: tokN === null ? null : figure(tokN),
      pytorch_tok_s: tokP === null ? null : figure(tokP),
      ratio: ratio === null ? null : Number(ratio.toFixed(3)),
      nodeai_rss_mb: sn ? Math.round(sn.stopped ? sn.stopped_at_rss_mb : sn.max_rss_mb) : null,
      pytorch_rss_mb: sp ? Math.round(sp.stopped ? sp.stopped_at_rss_mb : sp.max_rss_mb) : null,
      pytorch_version: torch,
      nodeai_matmul_and_base: sn && !sn.stopped ? sn.how : null,
      threads,
      runs,
      ctx: b.ctx,
      batch: b.batch,
      reduced: b.reduced,
      full_ctx: b.fullCtx,
      full_batch: b.fullBatch,
      nodeai_full_size_arena_mb: Math.round(fullArenaMb),
      ...(sn?.stopped ? { nodeai_stopped: `RSS passed ${maxRssMb} MB` } : {}),
      ...(sp?.stopped ? { pytorch_stopped: `RSS passed ${maxRssMb} MB` } : {}),
      // NodeAI's runs, then PyTorch's.
      loads_before: [...n, ...p].map((r) => r.load_before).map((l) => Number(l.toFixed(2))),
    };
  }
  console.log('');
  for (const { b, fullArenaMb } of rows) {
    console.log(`${b.name}: the NodeAI trainer's ggml arena at ctx ${b.fullCtx}, batch ${b.fullBatch} is ${f(fullArenaMb)} MB (its peak RSS is that plus the work buffer and the JS heap)${fullArenaMb > totalmem() / 2 ** 20 ? `: more than this machine's ${f(totalmem() / 2 ** 20)} MB` : ''}.`);
  }
  for (const [name, s] of Object.entries(summary) as Array<[string, { ratio: number | null }]>) console.log(`${name}: NodeAI / PyTorch = ${s.ratio === null ? 'n/a' : s.ratio.toFixed(2)}`);
  const record = option('record');
  if (record) {
    const previous = existsSync(record) ? (JSON.parse(readFileSync(record, 'utf8')) as { configs?: Record<string, unknown> }).configs ?? {} : {};
    const entry = { machine: cpu, date, command };
    const configsOut = { ...previous };
    for (const { b } of rows) configsOut[b.name] = { label: b.label, ...(summary[b.name] as object), ...entry };
    writeFileSync(record, JSON.stringify({ configs: configsOut }, null, 2) + '\n');
  }
  if (json) console.log(JSON.stringify(summary));
}

const arenaAt = process.argv.indexOf('--arena');
const childAt = process.argv.indexOf('--child');
const writeAt = process.argv.indexOf('--write-base');
if (arenaAt !== -1) await arena(process.argv[arenaAt + 1], option('base'));
else if (childAt !== -1) await child(process.argv[childAt + 1], option('base'));
else if (writeAt !== -1) await writeBase(process.argv[writeAt + 1], process.argv[writeAt + 2]);
else await main();
