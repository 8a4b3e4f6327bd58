// `nodeai finetune --provider openai`: the fine-tune service submits the same checked, split data
// as a local run to OpenAI or any OpenAI-compatible server (Azure OpenAI, another NodeAI with a
// GPU); the job is then polled until it ends, and DIR receives job.json in the provider's own shape.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { OpenAIFineTuneProvider } from '../providers/openai.ts';
import { findOpenAIKey } from '../providers/openai-key.ts';
import type { FineTuneProvider, FineTuningJob } from '../providers/spec.ts';
import { ProviderError } from '../providers/spec.ts';
import { openStore } from './app.ts';

/** The OpenAI (or compatible) provider `nodeai finetune --provider openai` submits to; the key from the vault or the environment. */
export async function openRemoteProvider(o: { dataDir?: string; baseURL?: string }): Promise<OpenAIFineTuneProvider> {
  const store = await openStore({ 'data-dir': o.dataDir });
  let apiKey: string;
  try {
    await store.secrets.primeRedactor();
    apiKey = await findOpenAIKey({ getSecret: store.secrets.lookupKey, baseURL: o.baseURL });
  } finally {
    await store.close();
  }
  return new OpenAIFineTuneProvider({ apiKey, baseURL: o.baseURL ?? null });
}

export interface FollowOptions {
  out: string;
  pollMs?: number;
  signal?: AbortSignal;
  log: (line: string) => void;
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

/** Polls a remote job until it ends, printing its messages and metrics and keeping DIR/job.json current; an abort cancels it. */
export async function followRemoteJob(provider: FineTuneProvider, created: FineTuningJob, o: FollowOptions): Promise<FineTuningJob> {
  let job = created;
  const signal = o.signal;
  o.log(`Created ${job.id} (${job.status}); following it until it ends. Ctrl-C cancels the remote job.`);
  const save = () => writeFileSync(join(o.out, 'job.json'), JSON.stringify(job, null, 2) + '\n');
  save();
  let lastEvent: string | undefined;
  let wait = o.pollMs ?? 2000;
  while (!TERMINAL.has(job.status)) {
    if (signal?.aborted) {
      job = await provider.cancelJob(job.id);
      save();
      return job;
    }
    // Ctrl-C ends the wait at once (the loop's top then cancels the job), not at the next poll.
    await sleep(wait, undefined, signal ? { signal } : {}).catch(() => undefined);
    if (signal?.aborted) continue;
    // Remote jobs run for minutes to hours: poll less often the longer it goes.
    wait = Math.min(wait * 1.5, 30_000);
    job = await provider.getJob(job.id);
    const events = await provider.listEvents(job.id, { limit: 20 });
    const fresh = [];
    for (const e of events.data) {
      if (e.id === lastEvent) break;
      fresh.push(e);
    }
    if (events.data[0]) lastEvent = events.data[0].id;
    for (const e of fresh.reverse()) if (e.type === 'message') o.log(`  ${e.message}`);
    const metrics = fresh.find((e) => e.type === 'metrics')?.data as { step?: number; train_loss?: number; valid_loss?: number } | undefined;
    if (metrics?.step !== undefined) {
      o.log(`  step ${metrics.step}${metrics.train_loss !== undefined ? ` · loss ${metrics.train_loss.toFixed(3)}` : ''}${metrics.valid_loss !== undefined ? ` · valid ${metrics.valid_loss.toFixed(3)}` : ''}`);
    }
    save();
  }
  return job;
}

export function describeRemoteError(err: unknown): string | null {
  if (err instanceof ProviderError) return `${err.message} (${err.code})`;
  return null;
}
