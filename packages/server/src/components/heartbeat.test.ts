import { describe, expect, it } from 'vitest';
import type { Lsn } from '@walship/engine';
import { Heartbeat, heartbeatDue, type HeartbeatTarget } from './heartbeat.js';

/**
 * A WAL of numbers: heartbeats add 40 bytes; while `busy`, other writers have added 100 bytes
 * each time the heartbeat looks.
 */
function fakeWal(): HeartbeatTarget & { insert: number; flushed: number; beats: number[]; busy: boolean } {
  const wal = {
    insert: 1000,
    flushed: 1000,
    beats: [] as number[],
    busy: false,
    logHeartbeat(time: number): Lsn {
      wal.beats.push(time);
      wal.insert += 40;
      return wal.insert as Lsn;
    },
    xlog: {
      getInsertRecPtr: () => {
        if (wal.busy) wal.insert += 100;
        return wal.insert as Lsn;
      },
      xlogFlush: async (lsn: Lsn) => {
        wal.flushed = Math.max(wal.flushed, lsn);
      },
    },
  };
  return wal;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('heartbeat', () => {
  it('is due at the first tick and whenever no other WAL was written since the previous one', () => {
    expect(heartbeatDue(null, 100)).toBe(true);
    expect(heartbeatDue(100, 100)).toBe(true);
    expect(heartbeatDue(100, 140)).toBe(false);
  });

  it('beats and flushes while the node is idle, skips while WAL moves, and stops when turned off', async () => {
    const wal = fakeWal();
    let intervalMs = 10;
    const heartbeat = new Heartbeat(wal, () => intervalMs, () => 42);
    const running = heartbeat.start();
    try {
      await until(() => heartbeat.beats >= 3, 'three beats on an idle node');
      expect(wal.flushed).toBe(wal.insert);
      expect(wal.beats.every((time) => time === 42)).toBe(true);

      // Busy: other WAL at every tick, so no beat.
      const beatsBefore = heartbeat.beats;
      wal.busy = true;
      await until(() => heartbeat.skipped >= 5, 'skipped beats while busy');
      expect(heartbeat.beats).toBe(beatsBefore);
      wal.busy = false;
      await until(() => heartbeat.beats >= beatsBefore + 2, 'beats again once idle');

      intervalMs = 0;
      heartbeat.latch.set();
      await new Promise((resolve) => setTimeout(resolve, 10));
      const beatsWhenOff = heartbeat.beats;
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(heartbeat.beats).toBe(beatsWhenOff);
    } finally {
      await heartbeat.stopAndWait();
    }
    await running;
  });
});
