// A worker's hold on a job: who holds it, and the fencing token of its claim. The lease is renewed
// by the work — each event of the trainer — not by a timer, so a trainer that stops making
// progress lets its lease run out however alive its process is. Its length follows the trainer's
// stall allowance (the job's measured step time, with a floor and a cap) plus a grace for the
// holder to kill a stuck trainer and hand the job back before anyone else may take it.
import { stallPolicy, type StallPolicy, type StepClock } from '../trainer/progress-watchdog.ts';

export interface JobLease {
  jobId: string;
  /** `locked_by`: the worker's identity. */
  holder: string;
  /** The claim's fencing token: every write of this holder is checked against the job's. */
  token: number;
}

export interface LeasePolicy {
  stall: StallPolicy;
  /** Added to the stall allowance: time for the holder to kill a stuck trainer and hand the job back. */
  graceMs: number;
}

export const DEFAULT_LEASE_GRACE_MS = 30_000;

export function leasePolicy(overrides: { stall?: Partial<StallPolicy>; graceMs?: number } = {}): LeasePolicy {
  const graceMs = overrides.graceMs ?? DEFAULT_LEASE_GRACE_MS;
  if (!Number.isFinite(graceMs) || graceMs < 0) throw new RangeError(`lease graceMs must be a number ≥ 0, got ${String(graceMs)}`);
  return { stall: stallPolicy(overrides.stall), graceMs };
}

/** How long a claim lasts from `clock`'s last progress: the stall allowance plus the grace. */
export function leaseMs(policy: LeasePolicy, clock: StepClock): number {
  return clock.allowanceMs() + policy.graceMs;
}

/** The lease of a fresh claim: the start-up allowance plus the grace. */
export function startupLeaseMs(policy: LeasePolicy): number {
  return policy.stall.startupMs + policy.graceMs;
}
