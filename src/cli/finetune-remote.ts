// `nodeai finetune --provider openai`: the same checked, split data as a local run, trained by
// OpenAI or any OpenAI-compatible server (Azure OpenAI, another NodeAI with a GPU). The job is
// polled until it ends; DIR receives job.json in the provider's own shape.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { OpenAIFineTuneProvider } from '../providers/openai.ts';
import { findOpenAIKey } from '../providers/openai-key.ts';
import type { FineTuningJob, Hyperparameters } from '../providers/spec.ts';
import { ProviderError } from '../providers/spec.ts';
import { openStore } from './app.ts';

export interface RemoteFineTuneOptions {
  out: string;
  trainingFile: string;
  validationFile: string | null;
  model: string;
  baseURL?: string;
  hyperparameters: Partial<Hyperparameters>;
  seed?: number;
  suffix?: string;
  dataDir?: string;
  pollMs?: number;
  signal?: AbortSignal;
  log: (line: string) => void;
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);

export async function runRemoteFineTune(o: RemoteFineTuneOptions): Promise<FineTuningJob> {
  const store = await openStore({ 'data-dir': o.dataDir });
  let apiKey: string;
  try {
    await store.secrets.primeRedactor();
    apiKey = await findOpenAIKey({ getSecret: store.secrets.lookupKey, baseURL: o.baseURL });
  } finally {
    await store.close();
  }
  const provider = new OpenAIFineTuneProvider({ apiKey, baseURL: o.baseURL ?? null });
  const signal = o.signal;
  o.log(`Uploading ${o.trainingFile}${o.validationFile ? ' and the validation file' : ''} to ${o.baseURL ?? 'OpenAI'}…`);
  const training = await provider.uploadFile({ path: o.trainingFile, filename: 'train.jsonl' }, { signal });
  const validation = o.validationFile ? await provider.uploadFile({ path: o.validationFile, filename: 'validation.jsonl' }, { signal }) : null;
  let job = await provider.createJob(
    {
      model: o.model,
      training_file: training.id,
      validation_file: validation?.id ?? null,
      hyperparameters: o.hyperparameters,
      ...(o.seed !== undefined ? { seed: o.seed } : {}),
      ...(o.suffix ? { suffix: o.suffix } : {}),
    },
    { signal },
  );
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
