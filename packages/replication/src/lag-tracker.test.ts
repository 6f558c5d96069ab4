import type { Lsn } from '@walship/engine/lsn';
import { timeOffsetToMs, type TimestampTz } from '@walship/protocol';
import { describe, expect, it } from 'vitest';
import { LAG_TRACKER_BUFFER_SIZE } from './constants.js';
import {
  INITIAL_REPLY_LAG_STATE, createLagTracker, lagTrackerRead, lagTrackerWrite, processStandbyReplyLags,
  type ReplyLagState,
} from './lag-tracker.js';

const at = (n: number): Lsn => n as Lsn;
const t = (n: number): TimestampTz => n as TimestampTz;

describe('lagTrackerWrite / lagTrackerRead', () => {
  it('reports no information before anything was sent', () => {
    const tracker = createLagTracker();
    expect(tracker.bufferSize).toBe(LAG_TRACKER_BUFFER_SIZE);
    expect(lagTrackerRead(tracker, 'write', at(100), t(1_000))).toBeNull();
  });

  it('measures now minus the time of the newest sample crossed, per head', () => {
    const tracker = createLagTracker();
    lagTrackerWrite(tracker, at(100), t(1_000));
    lagTrackerWrite(tracker, at(100), t(1_500)); // no new WAL: no sample
    lagTrackerWrite(tracker, at(200), t(2_000));
    expect(lagTrackerRead(tracker, 'write', at(100), t(1_300))).toBe(300);
    // Crossing both samples: the newest one counts.
    expect(lagTrackerRead(tracker, 'flush', at(200), t(2_700))).toBe(700);
    // The write head reaches 200 later; then the ring is drained for it.
    expect(lagTrackerRead(tracker, 'write', at(250), t(3_000))).toBe(1_000);
    expect(lagTrackerRead(tracker, 'write', at(250), t(3_500))).toBeNull();
  });

  it('interpolates between the last consumed and the next sample, so a stuck standby shows growing lag', () => {
    const tracker = createLagTracker();
    lagTrackerWrite(tracker, at(100), t(1_000));
    lagTrackerWrite(tracker, at(200), t(2_000));
    expect(lagTrackerRead(tracker, 'apply', at(150), t(2_000))).toBe(1_000); // crosses 100
    // Still at 150: halfway between the samples, so this node had it at 1500.
    expect(lagTrackerRead(tracker, 'apply', at(150), t(2_000))).toBe(500);
    expect(lagTrackerRead(tracker, 'apply', at(150), t(5_000))).toBe(3_500);
  });

  it('uses the next sample alone when a new burst starts after being caught up', () => {
    const tracker = createLagTracker();
    lagTrackerWrite(tracker, at(100), t(1_000));
    expect(lagTrackerRead(tracker, 'write', at(100), t(1_100))).toBe(100); // drained: last read forgotten
    lagTrackerWrite(tracker, at(300), t(2_000));
    // Not there yet, nothing behind to interpolate from: the lag it would have if it got there now.
    expect(lagTrackerRead(tracker, 'write', at(200), t(2_400))).toBe(400);
  });

  it('reports no information when the clock or the LSN went backwards', () => {
    const tracker = createLagTracker();
    lagTrackerWrite(tracker, at(100), t(9_000));
    expect(lagTrackerRead(tracker, 'write', at(100), t(8_000))).toBeNull();

    const other = createLagTracker();
    lagTrackerWrite(other, at(100), t(1_000));
    lagTrackerWrite(other, at(200), t(2_000));
    lagTrackerWrite(other, at(300), t(3_000));
    expect(lagTrackerRead(other, 'flush', at(150), t(3_000))).toBe(2_000);
    expect(lagTrackerRead(other, 'flush', at(90), t(3_000))).toBeNull(); // behind the last read (timeline change)
  });

  it('ignores an LSN that did not advance', () => {
    const tracker = createLagTracker();
    lagTrackerWrite(tracker, at(200), t(1_000));
    lagTrackerWrite(tracker, at(100), t(2_000));
    expect(tracker.writeHead).toBe(1);
    expect(tracker.lastLsn).toBe(200);
  });

  it('wraps around the ring', () => {
    const tracker = createLagTracker(4);
    for (let round = 0; round < 10; round++) {
      const lsn = (round + 1) * 100;
      lagTrackerWrite(tracker, at(lsn), t(lsn * 10));
      for (const head of ['write', 'flush', 'apply'] as const) {
        expect(lagTrackerRead(tracker, head, at(lsn), t(lsn * 10 + 7))).toBe(7);
      }
    }
    expect(tracker.writeHead).toBe(10 % 4);
    expect(Array.from(tracker.readHeads)).toEqual([2, 2, 2]);
  });
});

describe('microsecond times (TimestampTz inputs, TimeOffset lags)', () => {
  /** 2025-05-11T21:46:40Z in microseconds since the epoch: real clock magnitudes, not small test numbers. */
  const BASE = 1_747_000_000_000_000;

  it('keeps a sub-millisecond lag to the microsecond', () => {
    const tracker = createLagTracker();
    // Sent at .999700 s, replayed 400 µs later: whole-millisecond clocks would read 999 and
    // 1000 and report 1 ms; the tracker must say 400 µs, shown as 0.4 ms.
    lagTrackerWrite(tracker, at(100), t(BASE + 999_700));
    const lagUs = lagTrackerRead(tracker, 'apply', at(100), t(BASE + 1_000_100));
    expect(lagUs).toBe(400);
    expect(timeOffsetToMs(lagUs!)).toBe(0.4);
  });

  it('gives each head its own microsecond lag through processStandbyReplyLags', () => {
    const tracker = createLagTracker();
    lagTrackerWrite(tracker, at(100), t(BASE));
    lagTrackerWrite(tracker, at(200), t(BASE + 1_000));
    const state = processStandbyReplyLags(
      tracker, INITIAL_REPLY_LAG_STATE, { write: at(200), flush: at(200), apply: at(100) }, at(200), t(BASE + 1_412),
    );
    expect(state).toEqual({ writeLagUs: 412, flushLagUs: 412, replayLagUs: 1_412, fullyAppliedLastTime: false });
    expect([state.writeLagUs, state.replayLagUs].map((us) => timeOffsetToMs(us!))).toEqual([0.412, 1.412]);
  });

  it('interpolates to the microsecond, truncating as the cast to TimestampTz does', () => {
    const tracker = createLagTracker();
    lagTrackerWrite(tracker, at(100), t(BASE));
    lagTrackerWrite(tracker, at(400), t(BASE + 1_000));
    expect(lagTrackerRead(tracker, 'flush', at(200), t(BASE + 250))).toBe(250); // crosses 100
    // A third of the way from 100 to 400: this node had it at BASE + 333.33..., kept as + 333.
    const lagUs = lagTrackerRead(tracker, 'flush', at(200), t(BASE + 1_500));
    expect(lagUs).toBe(1_167);
    expect(Number.isInteger(lagUs)).toBe(true);
  });

  it('stores times up to 2^53 - 1 exactly', () => {
    const tracker = createLagTracker();
    lagTrackerWrite(tracker, at(100), t(Number.MAX_SAFE_INTEGER - 3));
    expect(lagTrackerRead(tracker, 'write', at(100), t(Number.MAX_SAFE_INTEGER))).toBe(3);
  });
});

describe('a full ring (the 2025 overflow fix)', () => {
  /** Ring of 4: each head holds at most 3 unread samples. */
  function stalledReplay(): ReturnType<typeof createLagTracker> {
    const tracker = createLagTracker(4);
    // Samples at 100, 200, 300 (times 1000, 2000, 3000); write and flush keep up, apply does not.
    for (const lsn of [100, 200, 300]) {
      lagTrackerWrite(tracker, at(lsn), t(lsn * 10));
      expect(lagTrackerRead(tracker, 'write', at(lsn), t(lsn * 10 + 5))).toBe(5);
      expect(lagTrackerRead(tracker, 'flush', at(lsn), t(lsn * 10 + 5))).toBe(5);
    }
    expect(lagTrackerRead(tracker, 'apply', at(50), t(3_000))).toBe(2_000); // only a future sample: 1000
    return tracker;
  }

  it('parks the slowest head in its overflow entry instead of overwriting samples', () => {
    const tracker = stalledReplay();
    lagTrackerWrite(tracker, at(400), t(4_000)); // would run into apply's head
    expect(tracker.readHeads[2]).toBe(-1);
    expect(tracker.overflowed[2]).toEqual({ lsn: 100, time: 1_000 });
    // Write and flush keep updating.
    expect(lagTrackerRead(tracker, 'write', at(400), t(4_010))).toBe(10);
    lagTrackerWrite(tracker, at(500), t(5_000));
    lagTrackerWrite(tracker, at(600), t(6_000));
    expect(lagTrackerRead(tracker, 'flush', at(600), t(6_020))).toBe(20);
    expect(lagTrackerRead(tracker, 'write', at(550), t(6_000))).toBe(1_000); // crosses 500
  });

  it('reports growing lag from the overflow sample while the standby stays behind it', () => {
    const tracker = stalledReplay();
    lagTrackerWrite(tracker, at(400), t(4_000));
    expect(lagTrackerRead(tracker, 'apply', at(50), t(4_500))).toBe(3_500);
    expect(lagTrackerRead(tracker, 'apply', at(99), t(9_000))).toBe(8_000);
    // The clock went backwards past the overflow sample: no information.
    expect(lagTrackerRead(tracker, 'apply', at(99), t(500))).toBeNull();
  });

  it('resumes at the oldest sample in the ring once the standby passes the overflow sample', () => {
    const tracker = stalledReplay();
    lagTrackerWrite(tracker, at(400), t(4_000));
    lagTrackerWrite(tracker, at(500), t(5_000)); // apply still parked; ring now holds 300, 400, 500
    // Replay jumps to 450: passes the overflow sample (100) and the ring's 300 and 400.
    expect(lagTrackerRead(tracker, 'apply', at(450), t(6_000))).toBe(2_000);
    expect(tracker.readHeads[2]).not.toBe(-1);
    // Then it interpolates between 400 and 500 as usual.
    expect(lagTrackerRead(tracker, 'apply', at(450), t(6_000))).toBe(1_500);
    expect(lagTrackerRead(tracker, 'apply', at(500), t(6_000))).toBe(1_000);
    expect(lagTrackerRead(tracker, 'apply', at(500), t(6_100))).toBeNull();
  });

  it('handles every head overflowing at once', () => {
    const tracker = createLagTracker(3);
    for (let lsn = 100; lsn <= 1_000; lsn += 100) lagTrackerWrite(tracker, at(lsn), t(lsn));
    expect(Array.from(tracker.readHeads)).toEqual([-1, -1, -1]);
    expect(lagTrackerRead(tracker, 'write', at(50), t(2_000))).toBe(1_900); // overflow sample 100
    expect(lagTrackerRead(tracker, 'write', at(1_000), t(2_000))).toBe(1_000);
    expect(lagTrackerRead(tracker, 'write', at(1_000), t(2_000))).toBeNull();
  });
});

describe('processStandbyReplyLags', () => {
  it('keeps a previous lag when a head has nothing new', () => {
    const tracker = createLagTracker();
    lagTrackerWrite(tracker, at(100), t(1_000));
    let state: ReplyLagState = INITIAL_REPLY_LAG_STATE;
    state = processStandbyReplyLags(tracker, state, { write: at(100), flush: at(100), apply: at(0) }, at(100), t(1_200));
    expect(state).toEqual({ writeLagUs: 200, flushLagUs: 200, replayLagUs: 200, fullyAppliedLastTime: false });
    // The same positions again: write and flush have nothing new and keep their lags; apply has
    // only the sample ahead of it, so its lag grows.
    state = processStandbyReplyLags(tracker, state, { write: at(100), flush: at(100), apply: at(0) }, at(100), t(1_500));
    expect(state).toEqual({ writeLagUs: 200, flushLagUs: 200, replayLagUs: 500, fullyAppliedLastTime: false });
  });

  it('clears the lags when apply == sent in two consecutive replies', () => {
    const tracker = createLagTracker();
    lagTrackerWrite(tracker, at(100), t(1_000));
    const reply = { write: at(100), flush: at(100), apply: at(100) };
    let state = processStandbyReplyLags(tracker, INITIAL_REPLY_LAG_STATE, reply, at(100), t(1_050));
    expect(state).toEqual({ writeLagUs: 50, flushLagUs: 50, replayLagUs: 50, fullyAppliedLastTime: true });
    state = processStandbyReplyLags(tracker, state, reply, at(100), t(5_000));
    expect(state).toEqual({ writeLagUs: null, flushLagUs: null, replayLagUs: null, fullyAppliedLastTime: true });
  });

  it('does not clear when the caught-up replies are not consecutive', () => {
    const tracker = createLagTracker();
    lagTrackerWrite(tracker, at(100), t(1_000));
    let state = processStandbyReplyLags(tracker, INITIAL_REPLY_LAG_STATE, { write: at(100), flush: at(100), apply: at(100) }, at(100), t(1_050));
    lagTrackerWrite(tracker, at(200), t(2_000));
    state = processStandbyReplyLags(tracker, state, { write: at(200), flush: at(200), apply: at(100) }, at(200), t(2_030));
    // Apply had drained the ring at 100: the sample at 200 is a new burst ahead of it.
    expect(state).toEqual({ writeLagUs: 30, flushLagUs: 30, replayLagUs: 30, fullyAppliedLastTime: false });
    state = processStandbyReplyLags(tracker, state, { write: at(200), flush: at(200), apply: at(200) }, at(200), t(2_060));
    expect(state).toEqual({ writeLagUs: 30, flushLagUs: 30, replayLagUs: 60, fullyAppliedLastTime: true });
  });
});
