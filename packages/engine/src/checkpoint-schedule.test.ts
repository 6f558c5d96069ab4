import { describe, expect, it } from 'vitest';
import { isCheckpointOnSchedule, type CheckpointSchedule } from './checkpoint.js';

const schedule = (over: Partial<CheckpointSchedule>): CheckpointSchedule => ({
  completionTarget: 0.9, elapsedMs: 0, timeoutMs: 300_000, walSinceStart: 0, walTriggerBytes: 512 * 1024 * 1024, ...over,
});

describe('isCheckpointOnSchedule (IsCheckpointOnSchedule)', () => {
  it('is ahead while the share written, scaled by the completion target, is ahead of the share of checkpoint_timeout gone', () => {
    // Half written of a checkpoint spread over 0.9 of 300 s: due at 135 s.
    expect(isCheckpointOnSchedule(0.5, schedule({ elapsedMs: 134_000 }))).toBe(true);
    expect(isCheckpointOnSchedule(0.5, schedule({ elapsedMs: 136_000 }))).toBe(false);
    // All written is never ahead once the target share of the interval is gone.
    expect(isCheckpointOnSchedule(1, schedule({ elapsedMs: 271_000 }))).toBe(false);
  });

  it('is behind as soon as the WAL since the start runs ahead of the share written, whatever the time', () => {
    const trigger = 512 * 1024 * 1024;
    expect(isCheckpointOnSchedule(0.5, schedule({ walSinceStart: 0.44 * trigger, walTriggerBytes: trigger }))).toBe(true);
    expect(isCheckpointOnSchedule(0.5, schedule({ walSinceStart: 0.46 * trigger, walTriggerBytes: trigger }))).toBe(false);
  });

  it('leaves out a clock that is off: no timeout, or no WAL trigger', () => {
    expect(isCheckpointOnSchedule(0.1, schedule({ timeoutMs: 0, elapsedMs: 10_000_000, walTriggerBytes: 0, walSinceStart: 1e12 }))).toBe(true);
  });
});
