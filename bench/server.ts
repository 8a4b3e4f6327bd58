// Server benchmark (issue 5): requests/s and p99 latency of `GET /api/v1/jobs/:id` and
// `GET /v1/fine_tuning/jobs/:id` under wrk on loopback, and SSE fan-out: 500 subscribers to one
// job's events, with the delay from a training step being recorded to its delivery to each of them.
//
//   npm run bench:server                 # prints a Markdown section for BENCHMARKS.md
//   npm run bench:server -- --json       # one JSON object
//
// The subscribers run in a child process (this file, with --sse-clients) so that they do not share
// the server's event loop; both processes stamp times with performance.timeOrigin + now().
import { execFile, fork } from 'node:child_process';
import { promisify } from 'node:util';
import http from 'node:http';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { rmSync } from 'node:fs';
import { Engine, NodeRegistry } from '../src/engine/index.ts';
import { JobQueue } from '../src/jobs/index.ts';
import { startServer } from '../src/server/start.ts';
import { createStore } from '../src/store/index.ts';
import { tempDir } from '../src/store/testing.ts';

const TOKEN = 'bench-token-0123456789abcdef';
const SUBSCRIBERS = 500;
const STEPS = 100;
const STEP_MS = 50;
const WRK_SECONDS = Number(process.env.BENCH_WRK_SECONDS ?? 10);
const now = () => performance.timeOrigin + performance.now();

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Parses wrk's --latency output into req/s and latency percentiles in ms. */
// Async: the server under test shares this process's event loop.
async function wrk(url: string, connections: number): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
  const { stdout: out } = await promisify(execFile)('wrk', ['-t2', `-c${connections}`, `-d${WRK_SECONDS}s`, '--latency', '-H', `Authorization: Bearer ${TOKEN}`, url], { encoding: 'utf8' });
  const ms = (v: string, unit: string) => Number(v) * (unit === 'us' ? 0.001 : unit === 's' ? 1000 : 1);
  const lat = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s)`, 'm').exec(out);
    return m ? ms(m[1], m[2]) : NaN;
  };
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p50: lat('50'),
    p99: lat('99'),
    errors: Number(non2xx?.[1] ?? 0) + (sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
  };
}

/** Child mode: open N SSE streams, report every delivery's delay, exit when told. */
async function sseClients(url: string, n: number, steps: number): Promise<void> {
  const delays: number[] = [];
  let connected = 0;
  let complete = 0;
  const agent = new http.Agent({ keepAlive: true, maxSockets: n + 10 });
  await new Promise<void>((resolveAll) => {
    for (let i = 0; i < n; i++) {
      const req = http.request(url, { agent, headers: { accept: 'text/event-stream', authorization: `Bearer ${TOKEN}` } }, (res) => {
        res.setEncoding('utf8');
        let buf = '';
        let got = 0;
        res.on('data', (chunk: string) => {
          const at = now();
          buf += chunk;
          let end: number;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            if (block.includes('event: ready')) {
              if (++connected === n) process.send!({ type: 'ready' });
              continue;
            }
            if (!block.includes('event: job.metrics')) continue;
            const data = JSON.parse(block.split('\n').find((l) => l.startsWith('data: '))!.slice(6));
            delays.push(at - data.data.sent_at);
            if (++got === steps && ++complete === n) resolveAll();
          }
        });
      });
      req.end();
    }
  });
  process.send!({ type: 'done', delays });
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const dataDir = tempDir('nodeai-bench-server-');
  const store = await createStore({ dataDir, databaseUrl: '' });
  const jobs = new JobQueue(store);
  const engine = new Engine({ store, registry: new NodeRegistry() });
  const server = await startServer({ store, engine, jobs, token: TOKEN, host: '127.0.0.1', port: 0, onError: () => undefined });
  try {
    const file = await store.files.put((async function* () {
      yield Buffer.from('{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n');
    })(), { filename: 'train.jsonl' });
    const job = await jobs.create({ model: 'nodeai-tiny', training_file: file.id, suffix: 'bench' });
    await store.db.updateTable('jobs').set({ status: 'running' }).where('id', '=', job.id).execute();
    await server.hub.pollJobs();

    const rest = await wrk(`${server.url}/api/v1/jobs/${job.id}`, 50);
    const openai = await wrk(`${server.url}/v1/fine_tuning/jobs/${job.id}`, 50);
    const health = await wrk(`${server.url}/health`, 50);

    // SSE fan-out: a training step is one job event recorded through the queue, as the worker does.
    const child = fork(new URL(import.meta.url).pathname, ['--sse-clients', `${server.url}/api/v1/events?job_id=${job.id}`, String(SUBSCRIBERS), String(STEPS)], { execArgv: process.execArgv });
    const result = await new Promise<number[]>((resolve, reject) => {
      child.on('message', async (m: { type: string; delays?: number[] }) => {
        if (m.type === 'ready') {
          for (let step = 1; step <= STEPS; step++) {
            await jobs.addEvent(job.id, { type: 'metrics', message: `Step ${step}/${STEPS}`, data: { step, train_loss: 1 / step, sent_at: now() } });
            await new Promise((r) => setTimeout(r, STEP_MS));
          }
        } else if (m.type === 'done') resolve(m.delays!);
      });
      child.on('exit', (code) => code && reject(new Error(`SSE clients exited with ${code}`)));
    });
    child.kill();
    const delays = result.sort((a, b) => a - b);
    const sse = { subscribers: SUBSCRIBERS, steps: STEPS, deliveries: delays.length, p50: percentile(delays, 50), p99: percentile(delays, 99), max: delays.at(-1)! };

    const env = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, load: loadavg()[0].toFixed(1), date: new Date().toISOString().slice(0, 10) };
    if (json) {
      console.log(JSON.stringify({ env, rest, openai, health, sse }, null, 2));
      return;
    }
    const f = (n: number, d = 2) => n.toFixed(d);
    console.log(`## Server

\`npm run bench:server\` (\`bench/server.ts\`): an in-process server on 127.0.0.1 with SQLite, \`wrk -t2 -c50 -d${WRK_SECONDS}s --latency\`
per route against one job; then ${SUBSCRIBERS} SSE subscribers (in a child process) on that job while ${STEPS} training steps are
recorded through the job queue ${STEP_MS} ms apart; delay = step recorded → event parsed by each subscriber.

Machine: ${env.cpu}, ${env.cores} cores; Node ${env.node}; ${env.date}; load average ${env.load} at the end.

| route | req/s | p50 ms | p99 ms | errors |
| --- | ---: | ---: | ---: | ---: |
| \`GET /api/v1/jobs/:id\` | ${f(rest.rps, 0)} | ${f(rest.p50)} | ${f(rest.p99)} | ${rest.errors} |
| \`GET /v1/fine_tuning/jobs/:id\` | ${f(openai.rps, 0)} | ${f(openai.p50)} | ${f(openai.p99)} | ${openai.errors} |
| \`GET /health\` (no auth, no database; the HTTP floor) | ${f(health.rps, 0)} | ${f(health.p50)} | ${f(health.p99)} | ${health.errors} |

| SSE fan-out | subscribers | deliveries | p50 ms | p99 ms | max ms |
| --- | ---: | ---: | ---: | ---: | ---: |
| step → delivery | ${sse.subscribers} | ${sse.deliveries} / ${sse.subscribers * sse.steps} | ${f(sse.p50, 1)} | ${f(sse.p99, 1)} | ${f(sse.max, 1)} |`);
  } finally {
    await server.close(1000);
    engine.close();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--sse-clients') {
  await sseClients(process.argv[3], Number(process.argv[4]), Number(process.argv[5]));
} else {
  await main();
}
