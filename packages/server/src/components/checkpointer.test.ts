/**
 * The checkpointer's pacing of a spread checkpoint, against a stand-in target that writes its
 * "buffers" in ten batches and calls the write delay between them, as createCheckPoint does. The
 * real checkpoint's use of the delay is tested in the engine (database.test.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { CheckpointFlags, type CheckpointResult, type CheckpointWriteDelay, type Lsn } from '@walship/engine';
import { Checkpointer, type CheckpointerSettings } from './checkpointer.js';

interface Run { flags: number; spread: boolean; startedAt: number; endedAt: number }

function standIn(): { target: ConstructorParameters<typeof Checkpointer>[0]; runs: Run[]; wal: { position: number } } {
  const runs: Run[] = [];
  const wal = { position: 1_000 };
  return {
    runs,
    wal,
    target: {
      async checkpoint(flags: number, writeDelay?: CheckpointWriteDelay): Promise<CheckpointResult> {
        const run: Run = { flags, spread: writeDelay !== undefined, startedAt: performance.now(), endedAt: 0 };
        runs.push(run);
        for (let batch = 1; batch <= 10; batch++) await (writeDelay?.(batch / 10) ?? Promise.resolve());
        run.endedAt = performance.now();
        wal.position += 100;
        return { skipped: false, lsn: wal.position as Lsn, redo: wal.position as Lsn, buffersWritten: 640, segmentsRemoved: 0, elapsedMs: run.endedAt - run.startedAt };
      },
      walSinceRedo: () => 0,
      walPosition: () => wal.position,
    },
  };
}

const running: Checkpointer[] = [];
afterEach(async () => {
  for (const checkpointer of running.splice(0)) await checkpointer.stopAndWait();
});

function start(target: ConstructorParameters<typeof Checkpointer>[0], settings: CheckpointerSettings): Checkpointer {
  const checkpointer = new Checkpointer(target, settings);
  running.push(checkpointer);
  void checkpointer.start();
  return checkpointer;
}

async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('Checkpointer: spread checkpoints (checkpoint_completion_target)', () => {
  it('spreads a timed checkpoint over the completion target of checkpoint_timeout', async () => {
    const { target, runs } = standIn();
    start(target, { checkpointTimeoutMs: 1_000, maxWalSizeBytes: 1e12, completionTarget: 0.5 });
    await until(() => runs[0]?.endedAt !== undefined && runs[0].endedAt > 0, 'the first timed checkpoint');
    const run = runs[0]!;
    expect(run.flags & CheckpointFlags.causeTime).not.toBe(0);
    expect(run.spread).toBe(true);
    // The last batch is due at 0.5 of the 1 s interval; naps are 100 ms.
    const took = run.endedAt - run.startedAt;
    expect(took).toBeGreaterThanOrEqual(450);
    expect(took).toBeLessThan(1_000);
  });

  it('keeps pace with the WAL: a checkpoint whose WAL clock runs out writes without napping', async () => {
    const { target, runs, wal } = standIn();
    // WAL moves 1 GB at each look, far past max_wal_size's trigger: never ahead of schedule.
    const walPosition = target.walPosition;
    target.walPosition = () => (wal.position += 1024 ** 3, walPosition());
    start(target, { checkpointTimeoutMs: 1_000, maxWalSizeBytes: 64 * 1024 * 1024, completionTarget: 0.9 });
    await until(() => (runs[0]?.endedAt ?? 0) > 0, 'the first checkpoint');
    expect(runs[0]!.endedAt - runs[0]!.startedAt).toBeLessThan(100);
  });

  it('finishes a spread checkpoint at full speed once an immediate one is asked for, then runs that one unpaced', async () => {
    const { target, runs } = standIn();
    // Spread over 0.9 of a minute: about 54 s unless something hurries it.
    const checkpointer = start(target, { checkpointTimeoutMs: 60_000, maxWalSizeBytes: 1e12, completionTarget: 0.9 });
    // Make the timed one due at once.
    checkpointer.settings = { ...checkpointer.settings, checkpointTimeoutMs: 0 };
    checkpointer.latch.set();
    await until(() => runs.length === 1, 'the timed checkpoint to start');
    checkpointer.settings = { ...checkpointer.settings, checkpointTimeoutMs: 60_000 };
    const askedAt = performance.now();
    const result = await checkpointer.request(CheckpointFlags.immediate | CheckpointFlags.wait);
    expect(result.skipped).toBe(false);
    expect(performance.now() - askedAt).toBeLessThan(2_000);
    expect(runs).toHaveLength(2);
    expect(runs[1]!.flags & CheckpointFlags.immediate).not.toBe(0);
    expect(runs[1]!.spread).toBe(false);
  });
});

describe('Checkpointer: a skipped WAL-volume checkpoint', () => {
  it('is tried again on a primary as soon as more WAL comes, not after a restartpoint\'s 15 s', async () => {
    const wal = { position: 10_000_000, redo: 0 };
    const attempts: number[] = [];
    const checkpointer = start({
      // Skipped at first: nothing important since the last checkpoint record, though the WAL since its redo point is past the volume.
      async checkpoint(flags: number) {
        attempts.push(flags);
        const skipped = attempts.length === 1;
        if (!skipped) wal.redo = wal.position;
        return { skipped, lsn: wal.position as Lsn, redo: wal.redo as Lsn, buffersWritten: 0, segmentsRemoved: 0, elapsedMs: 0 };
      },
      walSinceRedo: () => wal.position - wal.redo,
      walPosition: () => wal.position,
    }, { checkpointTimeoutMs: 3_600_000, maxWalSizeBytes: 1_900_000, completionTarget: 0.9 });
    await until(() => attempts.length === 1, 'the first, skipped attempt');
    // No new WAL: no new attempt (it would loop otherwise).
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(attempts).toHaveLength(1);
    wal.position += 100;
    checkpointer.walAdvanced();
    await until(() => attempts.length === 2, 'the attempt after new WAL', 2_000);
    expect(attempts[1]! & CheckpointFlags.causeXlog).not.toBe(0);
  });
});
