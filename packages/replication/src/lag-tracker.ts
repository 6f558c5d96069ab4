/**
 * The walsender's lag tracker (PostgreSQL's `LagTracker`, `LagTrackerWrite`, `LagTrackerRead` and
 * the lag part of `ProcessStandbyReplyMessage` in walsender.c).
 *
 * What it measures: how long after this node had WAL up to some LSN the standby reported having
 * written, flushed and applied it (`write_lag`, `flush_lag`, `replay_lag` of pg_stat_replication).
 * All times are on the sender's clock, so clock skew between the nodes does not matter. Times are
 * integer microseconds (TimestampTz) and lags too (PostgreSQL's TimeOffset): a loopback
 * standby's lag is a fraction of a millisecond, and whole milliseconds would round it away.
 *
 * How: each time the walsender sends, it records a sample (end of WAL it has seen, now) in a ring
 * of LAG_TRACKER_BUFFER_SIZE entries, but only when that LSN advanced. Each standby reply carries
 * three LSNs; each has its own read head into the ring. Reading with an LSN consumes every sample
 * at or below it, and the lag is now minus the newest consumed sample's time. When no sample was
 * crossed, the lag is interpolated between the last consumed and the next sample, so a standby
 * that is stuck between two samples shows a growing lag rather than a frozen one.
 *
 * Full ring (the 2025 fix, backpatched): when the write head would run into a read head, that
 * (slowest) head's oldest sample moves to an overflow entry and the head is parked there, so the
 * ring keeps taking samples and the faster heads keep updating while, say, replay is stalled. The
 * parked head reports now minus the overflow sample's time until the standby reaches it, then
 * resumes at the oldest sample in the ring.
 *
 * Pure bookkeeping: time is a parameter, nothing here reads a clock. A LagTracker belongs to one
 * walsender; it is created when the walsender starts and dropped with it.
 */
import { assert } from '@walship/engine/errors';
import type { Lsn } from '@walship/engine/lsn';
import type { TimestampTz } from '@walship/protocol';
import { LAG_TRACKER_BUFFER_SIZE } from './constants.js';

/** The three positions a standby reports (SYNC_REP_WAIT_WRITE / _FLUSH / _APPLY). */
export type LagHead = 'write' | 'flush' | 'apply';

const HEAD_INDEX: Record<LagHead, number> = { write: 0, flush: 1, apply: 2 };
const HEAD_COUNT = 3;

/** A read head parked in its overflow entry (PostgreSQL stores -1 in read_heads[]). */
const PARKED = -1;

interface Sample {
  lsn: number;
  time: TimestampTz;
}

/**
 * One walsender's ring of (LSN, time) samples. Treat as opaque: only lagTrackerWrite and
 * lagTrackerRead change it. The fields are visible for tests and for pg_stat-style debugging.
 */
export interface LagTracker {
  readonly bufferSize: number;
  readonly lsns: Float64Array;
  /** TimestampTz per slot: integers below 2^53, which a Float64Array holds exactly. */
  readonly times: Float64Array;
  /** Next slot to write; the ring is empty for a head whose read head equals it. */
  writeHead: number;
  /** Per head: next slot to read, or PARKED (-1) while the head is in its overflow entry. */
  readonly readHeads: Int32Array;
  /** The last LSN written, so that a sample is taken only when WAL advanced. */
  lastLsn: number;
  /** Per head: the newest sample consumed, or null when there is none to interpolate from. */
  readonly lastRead: Array<Sample | null>;
  /** Per head: the sample a parked head is waiting for. */
  readonly overflowed: Array<Sample | null>;
}

/** A new, empty tracker. `bufferSize` is LAG_TRACKER_BUFFER_SIZE; tests use small rings. */
export function createLagTracker(bufferSize = LAG_TRACKER_BUFFER_SIZE): LagTracker {
  assert(Number.isInteger(bufferSize) && bufferSize >= 2, `lag tracker ring of ${bufferSize} samples`);
  return {
    bufferSize,
    lsns: new Float64Array(bufferSize),
    times: new Float64Array(bufferSize),
    writeHead: 0,
    readHeads: new Int32Array(HEAD_COUNT),
    lastLsn: 0,
    lastRead: [null, null, null],
    overflowed: [null, null, null],
  };
}

/**
 * Records that WAL up to `lsn` existed here at `now` (LagTrackerWrite). The walsender calls it
 * once per send with the end of WAL it may send up to (XLogSendPhysical's SendRqstPtr), not per
 * message, and takes the time right after reading that position, as PostgreSQL does. A sample is
 * added only when `lsn` advanced past the last one (PostgreSQL skips an equal LSN; walship also
 * skips a lower one, which would break the ring's ordering after a restarted stream).
 */
export function lagTrackerWrite(tracker: LagTracker, lsn: Lsn, now: TimestampTz): void {
  if (lsn <= tracker.lastLsn) return;
  tracker.lastLsn = lsn;
  const nextWriteHead = (tracker.writeHead + 1) % tracker.bufferSize;
  for (let head = 0; head < HEAD_COUNT; head++) {
    if (tracker.readHeads[head] === nextWriteHead) parkHead(tracker, head);
  }
  tracker.lsns[tracker.writeHead] = lsn;
  tracker.times[tracker.writeHead] = now;
  tracker.writeHead = nextWriteHead;
}

/** The ring is full for this head: move its oldest sample into its overflow entry. */
function parkHead(tracker: LagTracker, head: number): void {
  const slot = tracker.readHeads[head]!;
  tracker.overflowed[head] = { lsn: tracker.lsns[slot]!, time: sampleTime(tracker, slot) };
  tracker.readHeads[head] = PARKED;
}

function sampleTime(tracker: LagTracker, slot: number): TimestampTz {
  return tracker.times[slot]! as TimestampTz;
}

/**
 * The lag in integer microseconds (a TimeOffset) for a standby that reports `lsn` for `head` at
 * `now` (LagTrackerRead), or null when there is no new information (PostgreSQL's -1): nothing
 * was sent since the standby caught up, or the clock went backwards. A caller keeps its previous
 * value on null (see processStandbyReplyLags).
 */
export function lagTrackerRead(tracker: LagTracker, head: LagHead, lsn: Lsn, now: TimestampTz): number | null {
  const index = HEAD_INDEX[head];
  let crossedTime: TimestampTz | null = null;

  if (tracker.readHeads[index] === PARKED) {
    const overflow = tracker.overflowed[index]!;
    if (overflow.lsn > lsn) return now >= overflow.time ? now - overflow.time : null;
    // The standby passed the overflow sample: resume at the oldest sample in the ring.
    crossedTime = overflow.time;
    tracker.lastRead[index] = overflow;
    tracker.overflowed[index] = null;
    tracker.readHeads[index] = (tracker.writeHead + 1) % tracker.bufferSize;
  }

  crossedTime = consumeSamples(tracker, index, lsn) ?? crossedTime;

  // Everything sent was reached: forget the last sample, so that the first reply of the next
  // burst after an idle period does not interpolate from a stale one.
  if (tracker.readHeads[index] === tracker.writeHead) tracker.lastRead[index] = null;

  if (crossedTime !== null) return crossedTime > now ? null : now - crossedTime;
  const estimate = estimateUncrossedTime(tracker, index, lsn);
  return estimate === null ? null : now - estimate;
}

/** Consumes the samples at or below `lsn`; returns the newest one's time, or null if none. */
function consumeSamples(tracker: LagTracker, index: number, lsn: number): TimestampTz | null {
  let time: TimestampTz | null = null;
  for (let slot = tracker.readHeads[index]!; slot !== tracker.writeHead && tracker.lsns[slot]! <= lsn; ) {
    time = sampleTime(tracker, slot);
    tracker.lastRead[index] = { lsn: tracker.lsns[slot]!, time };
    slot = (slot + 1) % tracker.bufferSize;
    tracker.readHeads[index] = slot;
  }
  return time;
}

/**
 * No sample was crossed. With a sample ahead and one behind, interpolate the time at which this
 * node had `lsn`; with only a sample ahead (a new burst after being caught up), use its time, the
 * lag the standby would have if it reached it now. Null when there is nothing ahead, or when the
 * LSN or the clock went backwards. An interpolated time is truncated to the microsecond, as
 * PostgreSQL's cast to TimestampTz does, so every lag stays an integer number of microseconds.
 */
function estimateUncrossedTime(tracker: LagTracker, index: number, lsn: number): TimestampTz | null {
  const slot = tracker.readHeads[index]!;
  if (slot === tracker.writeHead) return null;
  const next: Sample = { lsn: tracker.lsns[slot]!, time: sampleTime(tracker, slot) };
  const previous = tracker.lastRead[index];
  if (previous === null) return next.time;
  // Reported LSNs go backwards only across a timeline change.
  if (lsn < previous.lsn) return null;
  assert(previous.lsn < next.lsn, 'lag tracker samples increase');
  if (previous.time > next.time) return null;
  const fraction = (lsn - previous.lsn) / (next.lsn - previous.lsn);
  return Math.floor(previous.time + (next.time - previous.time) * fraction) as TimestampTz;
}

// ---------------------------------------------------------------------------------------------
// The walsender's use of it on a standby reply
// ---------------------------------------------------------------------------------------------

/**
 * The lags a walsender publishes (pg_stat_replication), in integer microseconds as WalSnd keeps
 * its TimeOffsets; the status view turns them into fractional milliseconds. Null is shown as NULL.
 */
export interface ReplicationLags {
  writeLagUs: number | null;
  flushLagUs: number | null;
  /** PostgreSQL's applyLag, shown as replay_lag. */
  replayLagUs: number | null;
}

/** A walsender's published lags plus what the clearing rule remembers between replies. */
export interface ReplyLagState extends ReplicationLags {
  /** Whether the previous reply had apply == sent (ProcessStandbyReplyMessage's static). */
  fullyAppliedLastTime: boolean;
}

/** The positions of a standby status update ('r'). */
export interface StandbyReplyPositions {
  write: Lsn;
  flush: Lsn;
  apply: Lsn;
}

/** Before the first reply: no lags known (InitWalSenderSlot sets them to -1). */
export const INITIAL_REPLY_LAG_STATE: ReplyLagState = Object.freeze({
  writeLagUs: null, flushLagUs: null, replayLagUs: null, fullyAppliedLastTime: false,
});

/**
 * The lag bookkeeping of ProcessStandbyReplyMessage: reads the three heads, keeps a previous lag
 * when a head has no new information, and clears the lags (to null, or to whatever the read just
 * found) when the standby has applied everything sent in two consecutive replies, so an idle,
 * caught-up standby shows NULL lags instead of the last burst's forever. `sentLsn` is the
 * walsender's sentPtr when the reply is processed, `now` the time the reply was received.
 */
export function processStandbyReplyLags(
  tracker: LagTracker, previous: ReplyLagState, reply: StandbyReplyPositions, sentLsn: Lsn, now: TimestampTz,
): ReplyLagState {
  const writeLagUs = lagTrackerRead(tracker, 'write', reply.write, now);
  const flushLagUs = lagTrackerRead(tracker, 'flush', reply.flush, now);
  const replayLagUs = lagTrackerRead(tracker, 'apply', reply.apply, now);
  const fullyApplied = reply.apply === sentLsn;
  const clearLagTimes = fullyApplied && previous.fullyAppliedLastTime;
  return {
    writeLagUs: writeLagUs !== null || clearLagTimes ? writeLagUs : previous.writeLagUs,
    flushLagUs: flushLagUs !== null || clearLagTimes ? flushLagUs : previous.flushLagUs,
    replayLagUs: replayLagUs !== null || clearLagTimes ? replayLagUs : previous.replayLagUs,
    fullyAppliedLastTime: fullyApplied,
  };
}
