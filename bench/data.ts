// `npm run bench:data [-- --size-mb N] [--json]`: generates a ~1 GB chat JSONL (~1M examples) in a
// temp folder and measures, each in its own child process so peak RSS is its own:
//   (a) floor     — read lines + JSON.parse, nothing else (the project's line reader; node:readline
//                   is shown beside it for reference)
//   (b) check     — `checkDataset` without token counts
//   (c) + tokens  — `checkDataset` with gpt-4o-mini's o200k_base token counts
// Targets (issue #2): (b) ≥ 60% of (a)'s MB/s; peak RSS < 300 MB in all three. "CPU vs (a)" is
// (a)'s CPU seconds over the row's: on a machine shared with other work it moves less than wall time.
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { checkDataset } from '../src/datasets/check.ts';
import { readLines } from '../src/datasets/line-reader.ts';
import { CHUNK_BYTES } from '../src/datasets/source.ts';
import { seededRandom } from '../src/datasets/split.ts';

type Mode = 'floor' | 'readline' | 'check' | 'tokens';
interface ChildResult {
  mode: Mode;
  seconds: number;
  /** User + system CPU of the child (all its threads): steadier than wall time on a shared machine. */
  cpuSeconds: number;
  bytes: number;
  examples: number;
  tokens: number | null;
  maxRssMB: number;
  errors: number;
}

const WORDS = (
  'order account password reset shipping delivery refund return invoice payment card charge subscription plan ' +
  'device bulb hub light app update firmware network router signal battery warranty replacement store receipt ' +
  'please thanks help need want problem issue question answer customer support agent today tomorrow week month ' +
  'the a an to of in on for with from by at as is are was were be been have has had do does did can could will ' +
  'would should may might must not no yes it this that these those my your our their his her its we you they i ' +
  'contract lease clause liability indemnify terminate notice party agreement signature state law court claim ' +
  'employee contractor wage overtime leave policy handbook record tax license permit trademark copyright patent ' +
  'quickly carefully usually often always never sometimes again still already just only also very really about ' +
  'check open close click tap select choose enter type send receive write read call email message chat reply ' +
  'first second third next last new old good bad best better worse small large long short free paid annual ' +
  '1 2 3 5 10 12 24 30 48 60 90 100 250 500 1000 2026 2027 $5 $19 $29 $99 #4821 #5097 ok hi hello sorry great'
).split(' ');

const SYSTEMS = [
  "You are Lumen's support agent. Be brief and kind.",
  'You are a legal information assistant for small businesses in the United States. Give general information, not legal advice.',
  "You are Lumen's billing assistant. Be brief.",
  'You are a helpful assistant that answers questions about orders, payments and devices.',
];

function sentence(rand: () => number, words: number): string {
  let s = '';
  for (let i = 0; i < words; i++) s += (i ? ' ' : '') + WORDS[Math.floor(rand() * WORDS.length)];
  return s.charAt(0).toUpperCase() + s.slice(1) + (rand() < 0.2 ? '?' : '.');
}

async function generate(path: string, targetBytes: number): Promise<{ bytes: number; examples: number }> {
  const rand = seededRandom(2026);
  const out = createWriteStream(path);
  let bytes = 0;
  let examples = 0;
  let buf = '';
  while (bytes < targetBytes) {
    const messages: Array<{ role: string; content: string }> = [{ role: 'system', content: SYSTEMS[examples % SYSTEMS.length] }];
    const turns = rand() < 0.25 ? 2 : 1;
    for (let t = 0; t < turns; t++) {
      messages.push({ role: 'user', content: sentence(rand, 8 + Math.floor(rand() * 25)) });
      messages.push({ role: 'assistant', content: sentence(rand, 30 + Math.floor(rand() * (110 / turns))) + ' ' + sentence(rand, 10) });
    }
    const line = JSON.stringify({ messages }) + '\n';
    buf += line;
    bytes += Buffer.byteLength(line);
    examples++;
    if (buf.length > 1 << 20) {
      if (!out.write(buf)) await once(out, 'drain');
      buf = '';
    }
  }
  out.end(buf);
  await once(out, 'close');
  return { bytes, examples };
}

async function child(mode: Mode, file: string): Promise<ChildResult> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let bytes = 0;
  let examples = 0;
  let tokens: number | null = null;
  let errors = 0;
  if (mode === 'floor') {
    const progress = { bytes: 0 };
    for await (const batch of readLines(createReadStream(file, { highWaterMark: CHUNK_BYTES }), { progress })) {
      for (const l of batch) if (l.text !== undefined) {
        JSON.parse(l.text);
        examples++;
      }
    }
    bytes = progress.bytes;
  } else if (mode === 'readline') {
    const rl = createInterface({ input: createReadStream(file, { highWaterMark: CHUNK_BYTES }), crlfDelay: Infinity });
    for await (const line of rl) {
      if (line) {
        JSON.parse(line);
        examples++;
      }
      bytes += Buffer.byteLength(line) + 1;
    }
  } else {
    const r = await checkDataset(file, { model: 'gpt-4o-mini', countTokens: mode === 'tokens', now: new Date('2026-11-25') });
    bytes = r.bytes;
    examples = r.valid_examples;
    tokens = r.tokens?.total ?? null;
    errors = r.error_count;
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  return { mode, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, bytes, examples, tokens, errors, maxRssMB: process.resourceUsage().maxRSS / 1024 };
}

function runChild(mode: Mode, file: string): Promise<ChildResult> {
  const self = fileURLToPath(import.meta.url);
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', self, '--child', mode, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${mode} child exited with ${code}`))));
  });
}

async function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    process.stdout.write(JSON.stringify(await child(args[1] as Mode, args[2])));
    return;
  }
  const json = args.includes('--json');
  const sizeArg = args.indexOf('--size-mb');
  const sizeMB = sizeArg >= 0 ? Number(args[sizeArg + 1]) : 1024;
  const dir = await mkdtemp(join(tmpdir(), 'nodeai-bench-data-'));
  const file = join(dir, 'chat.jsonl');
  try {
    const log = (s: string) => !json && console.error(s);
    log(`generating ~${sizeMB} MB of chat JSONL in ${dir} …`);
    const g0 = performance.now();
    const gen = await generate(file, sizeMB * 1024 * 1024);
    log(`  ${(gen.bytes / 1048576).toFixed(0)} MB, ${gen.examples.toLocaleString('en-US')} examples in ${((performance.now() - g0) / 1000).toFixed(1)} s`);
    const results: ChildResult[] = [];
    for (const mode of ['floor', 'readline', 'check', 'tokens'] as Mode[]) {
      log(`running ${mode} …`);
      results.push(await runChild(mode, file));
    }
    const floor = results[0];
    const mbps = (r: ChildResult) => r.bytes / 1048576 / r.seconds;
    const summary = {
      date: new Date().toISOString(),
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      node: process.version,
      file: { bytes: gen.bytes, examples: gen.examples },
      results: results.map((r) => ({
        ...r,
        mb_per_s: Number(mbps(r).toFixed(1)),
        examples_per_s: Math.round(r.examples / r.seconds),
        tokens_per_s: r.tokens === null ? null : Math.round(r.tokens / r.seconds),
        vs_floor: Number((mbps(r) / mbps(floor)).toFixed(2)),
        cpu_vs_floor: Number((floor.cpuSeconds / r.cpuSeconds).toFixed(2)),
      })),
    };
    if (json) {
      console.log(JSON.stringify(summary, null, 2));
      return;
    }
    const label: Record<Mode, string> = { floor: '(a) floor: lines + JSON.parse', readline: '    node:readline + JSON.parse', check: '(b) data check, no tokens', tokens: '(c) data check + o200k tokens' };
    const rows = summary.results.map((r) => [
      label[r.mode],
      r.seconds.toFixed(1),
      r.cpuSeconds.toFixed(1),
      r.mb_per_s.toFixed(1),
      r.examples_per_s.toLocaleString('en-US'),
      r.tokens_per_s === null ? '–' : r.tokens_per_s.toLocaleString('en-US'),
      `${Math.round(r.vs_floor * 100)}%`,
      `${Math.round(r.cpu_vs_floor * 100)}%`,
      r.maxRssMB.toFixed(0),
    ]);
    const head = ['', 's', 'CPU s', 'MB/s', 'examples/s', 'tokens/s', 'vs (a)', 'CPU vs (a)', 'peak RSS MB'];
    const w = head.map((_, c) => Math.max(head[c].length, ...rows.map((r) => r[c].length)));
    for (const r of [head, ...rows]) console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(w[c]) : cell.padStart(w[c]))).join('  '));
    console.log(`\n${summary.cpu}, ${summary.cores} cores, Node ${summary.node}, ${summary.date.slice(0, 10)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
