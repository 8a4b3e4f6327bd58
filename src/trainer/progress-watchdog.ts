// How long a trainer may go without progress before it counts as stuck, measured from the work
// itself (as Temporal's activity heartbeats are): every message from the training process is
// progress, and the time its steps take sets the allowance. A 1B step on two cores takes minutes
// and nodeai-tiny's a few milliseconds, so no fixed timeout fits both; a stuck native call sends
// nothing, so its silence is what gets noticed.
import type { LocalFineTuneEvent } from './supervised-job-types.ts';

export interface StallPolicy {
  /** Allowance before the first step: loading the model, tokenizing the data. */
  startupMs: number;
  /** The least allowance once steps are measured, however fast they are. */
  floorMs: number;
  /** The most allowance, however slow the steps are. */
  capMs: number;
  /** The allowance is this many times the slowest recent step. */
  stepFactor: number;
}

export const DEFAULT_STALL_POLICY: StallPolicy = { startupMs: 15 * 60_000, floorMs: 60_000, capMs: 60 * 60_000, stepFactor: 5 };

/** Steps measured: the slowest of the last few sets the allowance (an evaluation step is slower). */
const STEPS_REMEMBERED = 20;

/** A policy with defaults filled in, checked so a typo cannot turn the watchdog off. */
export function stallPolicy(overrides: Partial<StallPolicy> = {}): StallPolicy {
  const policy = { ...DEFAULT_STALL_POLICY, ...overrides };
  for (const key of ['startupMs', 'floorMs', 'capMs', 'stepFactor'] as const) {
    const v = policy[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new RangeError(`stall policy ${key} must be a positive number, got ${String(v)}`);
  }
  if (policy.capMs < policy.floorMs) throw new RangeError(`stall policy capMs (${policy.capMs}) is below floorMs (${policy.floorMs})`);
  return policy;
}

/** Measures a trainer's steps from its events and says how long silence may last. */
export class StepClock {
  private lastStep: { step: number; at: number } | undefined;
  private readonly recent: number[] = [];
  private lastProgressAt: number;

  constructor(
    readonly policy: StallPolicy,
    now = Date.now(),
  ) {
    this.lastProgressAt = now;
  }

  /** Any sign of life; a metrics event also measures the time per step since the previous one. */
  observe(event: LocalFineTuneEvent | null, now = Date.now()): void {
    this.lastProgressAt = now;
    if (event?.type !== 'metrics') return;
    const prev = this.lastStep;
    this.lastStep = { step: event.step, at: now };
    // The first step after a start or a resume includes the warm-up; only step-to-step gaps count.
    if (!prev || event.step <= prev.step) return;
    this.recent.push((now - prev.at) / (event.step - prev.step));
    if (this.recent.length > STEPS_REMEMBERED) this.recent.shift();
  }

  /** The slowest recent step in ms, or null before two steps were seen. */
  get stepMs(): number | null {
    return this.recent.length ? Math.max(...this.recent) : null;
  }

  /** The step of the last metrics event, or null before the first. */
  get step(): number | null {
    return this.lastStep?.step ?? null;
  }

  /** How long without progress means stuck, from the last progress on. */
  allowanceMs(): number {
    if (!this.lastStep) return this.policy.startupMs;
    const measured = this.stepMs;
    // One step seen: its time includes the warm-up, so the start-up allowance still applies.
    if (measured === null) return this.policy.startupMs;
    return Math.min(this.policy.capMs, Math.max(this.policy.floorMs, this.policy.stepFactor * measured));
  }

  /** Epoch ms at which the trainer counts as stuck unless it makes progress first. */
  deadline(): number {
    return this.lastProgressAt + this.allowanceMs();
  }

  /** A sentence for the error: how long it was silent, after which step, what its steps took. */
  describeStall(now = Date.now()): string {
    const silent = Math.round((now - this.lastProgressAt) / 1000);
    if (!this.lastStep) return `made no progress for ${silent} s while starting (loading the model and data; the allowance is ${Math.round(this.policy.startupMs / 1000)} s)`;
    const per = this.stepMs;
    return `made no progress for ${silent} s after step ${this.lastStep.step}${per !== null ? ` (its steps took up to ${(per / 1000).toFixed(1)} s)` : ''}`;
  }
}
