// Model downloads started through the API: each pull is an object a client polls
// (GET /api/v1/models/pulls/:id) and whose progress is published on the /api/v1/events stream as
// `model.pull` events. Pulls live in this server process; the files they bring are in the data
// dir, so a pull lost to a restart resumes from its partial file when asked again.
import { randomBytes } from 'node:crypto';
import type { RemoteModelRef } from '../trainer/model-ref.ts';
import { ModelSourceError } from '../trainer/model-source-errors.ts';
import { resolveModelFile, type DownloadProgress } from '../trainer/model-source.ts';

export interface ModelPull {
  id: string;
  object: 'model.pull';
  /** Canonical reference. */
  model: string;
  source: 'hf' | 'ollama';
  status: 'running' | 'succeeded' | 'failed';
  bytes: number;
  /** 0 while unknown. */
  total: number;
  bytes_per_second: number;
  eta_seconds: number | null;
  /** The local GGUF once succeeded. */
  local_path: string | null;
  /** False when the file was already here. */
  downloaded: boolean | null;
  error: { code: string; message: string } | null;
  /** Epoch milliseconds. */
  created_at: number;
  finished_at: number | null;
}

export interface ModelPullsOptions {
  dataDir: string;
  env?: NodeJS.ProcessEnv;
  /** Called with each change of a pull (progress, success, failure). */
  publish?: (pull: ModelPull) => void;
  /** Finished pulls kept for polling. */
  keep?: number;
}

export class ModelPulls {
  private readonly pulls = new Map<string, ModelPull>();
  private readonly running = new Map<string, ModelPull>();
  private readonly controllers = new Set<AbortController>();

  constructor(private readonly options: ModelPullsOptions) {}

  /** Starts a pull, or returns the one already running for the same model. */
  start(ref: RemoteModelRef): ModelPull {
    const existing = this.running.get(ref.text);
    if (existing) return { ...existing };
    const pull: ModelPull = {
      id: `pull-${randomBytes(12).toString('hex')}`,
      object: 'model.pull',
      model: ref.text,
      source: ref.kind,
      status: 'running',
      bytes: 0,
      total: 0,
      bytes_per_second: 0,
      eta_seconds: null,
      local_path: null,
      downloaded: null,
      error: null,
      created_at: Date.now(),
      finished_at: null,
    };
    this.pulls.set(pull.id, pull);
    this.running.set(ref.text, pull);
    this.prune();
    const controller = new AbortController();
    this.controllers.add(controller);
    const changed = () => this.options.publish?.({ ...pull });
    const onProgress = (p: DownloadProgress) => {
      Object.assign(pull, { bytes: p.bytes, total: p.total, bytes_per_second: Math.round(p.bytesPerSecond), eta_seconds: p.etaSeconds === null ? null : Math.round(p.etaSeconds) });
      changed();
    };
    void resolveModelFile(ref, { dataDir: this.options.dataDir, signal: controller.signal, onProgress, ...(this.options.env ? { env: this.options.env } : {}) })
      .then(
        (file) => Object.assign(pull, { status: 'succeeded', local_path: file.path, downloaded: file.downloaded, bytes: file.bytes, total: file.bytes, eta_seconds: 0 }),
        (e: unknown) =>
          Object.assign(pull, {
            status: 'failed',
            error: e instanceof ModelSourceError ? { code: e.code, message: e.message } : { code: 'pull_failed', message: `Pulling ${ref.text} failed: ${(e as Error)?.message ?? String(e)}` },
          }),
      )
      .finally(() => {
        pull.finished_at = Date.now();
        this.running.delete(ref.text);
        this.controllers.delete(controller);
        changed();
      });
    changed();
    return { ...pull };
  }

  get(id: string): ModelPull | undefined {
    const pull = this.pulls.get(id);
    return pull ? { ...pull } : undefined;
  }

  /** Stops running downloads (their partial files stay for a resume). */
  close(): void {
    for (const c of this.controllers) c.abort();
  }

  private prune(): void {
    const keep = this.options.keep ?? 100;
    for (const [id, p] of this.pulls) {
      if (this.pulls.size <= keep) break;
      if (p.status !== 'running') this.pulls.delete(id);
    }
  }
}
