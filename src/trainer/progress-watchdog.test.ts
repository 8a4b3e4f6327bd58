import { describe, expect, it } from 'vitest';
import { StepClock, stallPolicy } from './progress-watchdog.ts';
import type { LocalFineTuneEvent } from './supervised-job-types.ts';

const step = (n: number): LocalFineTuneEvent => ({ type: 'metrics', time: 0, step: n, total_steps: 100, epoch: 1, total_epochs: 1 });
const policy = stallPolicy({ startupMs: 600_000, floorMs: 30_000, capMs: 3_600_000, stepFactor: 5 });

describe('StepClock', () => {
  it('allows the start-up time until two steps are measured, then a multiple of the slowest recent step', () => {
    const clock = new StepClock(policy, 0);
    expect(clock.allowanceMs()).toBe(600_000);
    clock.observe(step(1), 400_000); // the first step includes loading: not a measure
    expect(clock.allowanceMs()).toBe(600_000);
    expect(clock.deadline()).toBe(1_000_000);
    clock.observe(step(2), 520_000); // 2 minutes a step, as a 1B model on two cores
    expect(clock.stepMs).toBe(120_000);
    expect(clock.allowanceMs()).toBe(600_000);
    clock.observe(step(3), 580_000);
    expect(clock.allowanceMs()).toBe(600_000); // the slowest recent step rules, not the last
    // A status or message is progress too: it moves the deadline, not the measure.
    clock.observe({ type: 'message', level: 'info', message: 'saving', time: 0 }, 590_000);
    expect(clock.deadline()).toBe(1_190_000);
  });

  it('keeps the allowance within the floor and the cap, and says what stalled', () => {
    const fast = new StepClock(policy, 0);
    for (let i = 1; i <= 10; i++) fast.observe(step(i), i * 5);
    expect(fast.allowanceMs()).toBe(30_000);
    expect(fast.describeStall(40_050)).toBe('made no progress for 40 s after step 10 (its steps took up to 0.0 s)');
    const slow = new StepClock(policy, 0);
    slow.observe(step(1), 0);
    slow.observe(step(3), 4_000_000);
    expect(slow.allowanceMs()).toBe(3_600_000);
    expect(new StepClock(policy, 0).describeStall(61_000)).toBe('made no progress for 61 s while starting (loading the model and data; the allowance is 600 s)');
  });

  it('refuses a policy that would turn the watchdog off', () => {
    expect(() => stallPolicy({ floorMs: 0 })).toThrow(/floorMs must be a positive number/);
    expect(() => stallPolicy({ floorMs: 10, capMs: 5 })).toThrow(/capMs \(5\) is below floorMs \(10\)/);
  });
});
