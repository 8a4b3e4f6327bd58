// Takes back, every few seconds, the jobs whose holder is gone (its lease ran out, or on this host
// its process no longer exists), so that a job of a server killed outright is resumed by any live
// server or worker within about one lease period — not only when a process starts.
import type { JobQueue, RecoveryReport } from './queue.ts';

export const DEFAULT_RECLAIM_EVERY_MS = 5_000;

export interface LeaseReclaimerOptions {
  /** How often to look; default 5 s. */
  everyMs?: number;
  /** Told of every round that requeued, failed or cancelled a job. */
  onReclaimed?: (report: RecoveryReport) => void;
  onError?: (err: unknown) => void;
}

export class LeaseReclaimer {
  private timer?: NodeJS.Timeout;
  private round?: Promise<void>;

  constructor(
    private readonly queue: JobQueue,
    private readonly options: LeaseReclaimerOptions = {},
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.round ??= this.reclaim().finally(() => (this.round = undefined));
    }, this.options.everyMs ?? DEFAULT_RECLAIM_EVERY_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.round;
  }

  private async reclaim(): Promise<void> {
    try {
      const report = await this.queue.recoverInterrupted();
      if (report.requeued.length || report.failed.length || report.cancelled.length) this.options.onReclaimed?.(report);
    } catch (err) {
      this.options.onError?.(err);
    }
  }
}
