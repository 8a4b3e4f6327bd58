// What the CLI commands share: the data dir, the store, the job queue and the engine wired
// with the four nodes, and JSON / table output.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { Engine } from '../engine/index.ts';
import { JobQueue, type RecoveryReport } from '../jobs/index.ts';
import { createNodeRegistry, createNodeServices, type NodeServices } from '../nodes/index.ts';
import { createStore, defaultDataDir, type Store } from '../store/index.ts';
import { printable } from './terminal-text.ts';
import { UsageError } from './usage-error.ts';

export const DATA_DIR_HELP = `  --data-dir DIR   where NodeAI keeps its database, uploads, jobs and models
                   (default: NODEAI_DATA_DIR, else ~/.nodeai)
  --json           print JSON instead of text`;

export const commonOptions = {
  'data-dir': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O, usage: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${usage}`);
  }
}

export function dataDirOf(values: { 'data-dir'?: string | boolean }): string {
  const dir = values['data-dir'];
  return typeof dir === 'string' && dir.trim() !== '' ? dir : defaultDataDir();
}

export async function openStore(values: { 'data-dir'?: string | boolean }): Promise<Store> {
  return createStore({ dataDir: dataDirOf(values) });
}

export interface App {
  store: Store;
  jobs: JobQueue;
  services: NodeServices;
  engine: Engine;
  close(): Promise<void>;
}

export async function openApp(values: { 'data-dir'?: string | boolean }, options: { workflowDir?: string } = {}): Promise<App> {
  const store = await openStore(values);
  const jobs = new JobQueue(store);
  const services = createNodeServices(store, { jobs, ...(options.workflowDir ? { workflowDir: options.workflowDir } : {}) });
  const engine = new Engine({ store, registry: createNodeRegistry(), services: { nodeai: services } });
  return {
    store,
    jobs,
    services,
    engine,
    async close() {
      engine.close();
      await store.close();
    },
  };
}

export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

/** A plain left-aligned table; empty cells show as "-", control characters as escapes. */
export function table(headers: string[], rows: unknown[][]): string {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined || c === '' ? '-' : printable(String(c)))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  return [line(headers), ...cells.map(line)].join('\n');
}

export function when(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  return new Date(Number(ms)).toISOString().replace('T', ' ').slice(0, 19);
}

export function needArg(positionals: string[], index: number, what: string, usage: string): string {
  const v = positionals[index];
  if (v === undefined || v === '') throw new UsageError(`missing ${what}\n\n${usage}`);
  return v;
}

/** Runs a sub-command from a table, with help and unknown-name handling. */
export async function dispatch(args: string[], name: string, usage: string, subs: Record<string, (rest: string[]) => Promise<number>>): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    console.log(usage);
    return sub === undefined ? 2 : 0;
  }
  const fn = subs[sub];
  if (!fn) throw new UsageError(`unknown sub-command '${name} ${sub}'\n\n${usage}`);
  return fn(rest);
}

/**
 * Waits for SIGINT or SIGTERM, then says `stopping` and runs `shutdown`; resolves with the exit
 * code (0 stopped cleanly, 1 the shutdown failed). A second signal during the shutdown says
 * `again` and exits at once with 130.
 */
export function runUntilSignal(log: (line: string) => void, says: { stopping: () => string; again: string }, shutdown: () => Promise<void>): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    // `on`, not `once`: a second signal must reach the handler (else Node's default kills the
    // process without the message); both are removed when the shutdown is over.
    const onInt = () => void stop('SIGINT');
    const onTerm = () => void stop('SIGTERM');
    const done = (code: number) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(code);
    };
    const stop = async (signal: string) => {
      if (stopping) {
        log(`${signal} again: ${says.again}`);
        process.exit(130);
      }
      stopping = true;
      log(`${signal}: ${says.stopping()}`);
      try {
        await shutdown();
        done(0);
      } catch (err) {
        log(`shutdown failed: ${(err as Error).message}`);
        done(1);
      }
    };
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
}

/** A line for the log of `nodeai serve` / `nodeai worker` when it took back jobs whose holder is gone. */
export function logReclaimed(log: (line: string) => void, report: RecoveryReport): void {
  if (report.requeued.length) log(`took back job(s) whose holder stopped, to resume from their checkpoints: ${report.requeued.join(', ')}`);
  if (report.failed.length) log(`job(s) whose holder stopped could not be resumed and were failed: ${report.failed.join(', ')}`);
  if (report.cancelled.length) log(`job(s) whose holder stopped while being cancelled are now cancelled: ${report.cancelled.join(', ')}`);
}
