/**
 * Waiting for a WAL position (PostgreSQL 19's WAIT FOR LSN, xlogwait.c and commands/wait.c):
 * read-your-writes on a standby. A session waits until this node's position for a mode reaches an
 * LSN: `standby_write` (what the walreceiver wrote), `standby_flush` (what it fsynced),
 * `standby_replay` (what replay applied: what reads see), or `primary_flush` on a primary.
 *
 * Woken, never polled: the postmaster calls `wakeup()` when the walreceiver flushes, when replay
 * advances, when a primary's WAL write completes, and at promotion. Each waiter re-reads the
 * positions and ends when its LSN is reached, its timeout passes, or recovery ended (promotion)
 * before it got there. One list for all modes: it holds at most one waiter per session request,
 * so checking them all on a wake-up costs what the waiters cost.
 *
 * Differences from PostgreSQL, on purpose: `standby_flush` and `standby_write` count WAL replay
 * has already applied (a restarted standby replays from pg_wal/ before its walreceiver streams
 * again, and that WAL was flushed), so the three positions never go backwards relative to each
 * other: write >= flush >= replay.
 */
import { ErrorCode, WalshipError, formatLsn, type Lsn } from '@walship/engine';
import type { WaitLsnMode, WaitLsnStatus } from '@walship/protocol';

/** A standby's positions, as WAIT FOR reads them (GetCurrentLSNForWaitType). */
export interface StandbyPositions {
  write: Lsn;
  flush: Lsn;
  replay: Lsn;
}

export interface WaitLsnHost {
  /** The positions while in recovery; null on a primary. */
  standbyPositions(): StandbyPositions | null;
  /** The WAL flush position of a primary; null in recovery. */
  primaryFlush(): Lsn | null;
}

export interface WaitLsnOutcome {
  status: WaitLsnStatus;
  /** The position for the mode when the wait ended. */
  lsn: Lsn;
}

/** The noun and participle of each mode in messages (WaitLSNTypeDescs). */
const WORDS: Record<WaitLsnMode, { noun: string; verb: string }> = {
  standby_replay: { noun: 'replay', verb: 'replayed' },
  standby_write: { noun: 'write', verb: 'written' },
  standby_flush: { noun: 'flush', verb: 'flushed' },
  primary_flush: { noun: 'flush', verb: 'flushed' },
};

interface Waiter {
  check(): void;
}

export class LsnWaiters {
  private readonly waiters = new Set<Waiter>();
  /** The standby positions last seen in recovery: what a promoted node had reached. */
  private lastStandby: StandbyPositions | null = null;

  constructor(private readonly host: WaitLsnHost) {}

  /** WaitLSNWakeup: a position moved, or recovery ended; every waiter looks again. */
  wakeup(): void {
    // Kept on every wake-up, waiters or not: after a promotion it is what recovery had reached.
    this.lastStandby = this.host.standbyPositions() ?? this.lastStandby;
    if (this.waiters.size === 0) return;
    for (const waiter of [...this.waiters]) waiter.check();
  }

  /**
   * WaitForLSN: resolves with `success` once the position for `mode` reaches `lsn`, with
   * `timeout` after `timeoutMs` (undefined: no limit), or with `not in recovery` when a standby
   * mode is asked of a node not in recovery (or promoted before `lsn` was reached; reached
   * before, it is a success). Never rejects: `outcomeError` turns the failures into errors.
   */
  waitFor(lsn: Lsn, mode: WaitLsnMode, timeoutMs: number | undefined): Promise<WaitLsnOutcome> {
    const first = this.evaluate(lsn, mode);
    if (first !== null) return Promise.resolve(first);
    return new Promise<WaitLsnOutcome>((resolve) => {
      const finish = (outcome: WaitLsnOutcome): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(outcome);
      };
      const waiter: Waiter = {
        check: () => {
          const outcome = this.evaluate(lsn, mode);
          if (outcome !== null) finish(outcome);
        },
      };
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => finish({ status: 'timeout', lsn: this.current(mode) }), timeoutMs);
      this.waiters.add(waiter);
    });
  }

  /** The error WAIT FOR raises for an outcome that is not a success (commands/wait.c). */
  static outcomeError(target: Lsn, mode: WaitLsnMode, outcome: WaitLsnOutcome, promoted: boolean): WalshipError {
    const words = WORDS[mode];
    if (outcome.status === 'timeout') {
      return new WalshipError(
        ErrorCode.timeout,
        `timed out while waiting for target LSN ${formatLsn(target)} to be ${words.verb}; current ${words.noun} LSN ${formatLsn(outcome.lsn)}`,
        { hint: mode === 'primary_flush' ? 'Raise the timeout.' : 'The standby is behind its primary: retry, read from the primary, or raise the timeout.' },
      );
    }
    if (mode === 'primary_flush') {
      return new WalshipError(ErrorCode.objectNotInPrerequisiteState, 'recovery is in progress', {
        hint: 'Waiting for the primary flush LSN can only be executed on a primary.',
      });
    }
    return new WalshipError(ErrorCode.objectNotInPrerequisiteState, 'recovery is not in progress', promoted
      ? { detail: `Recovery ended before target LSN ${formatLsn(target)} was ${words.verb}; last ${words.noun} LSN ${formatLsn(outcome.lsn)}.` }
      : { hint: `Waiting for the ${words.noun} LSN can only be executed during recovery.` });
  }

  /** Whether this node was a standby earlier in this postmaster's life (it was promoted). */
  get wasStandby(): boolean {
    return this.lastStandby !== null;
  }

  /** The outcome if the wait is over now, else null. */
  private evaluate(lsn: Lsn, mode: WaitLsnMode): WaitLsnOutcome | null {
    if (mode === 'primary_flush') {
      const flush = this.host.primaryFlush();
      if (flush === null) return { status: 'not in recovery', lsn: 0 as Lsn };
      return flush >= lsn ? { status: 'success', lsn: flush } : null;
    }
    const positions = this.host.standbyPositions();
    if (positions === null) {
      // Recovery is over (or never ran): what was reached before the promotion still counts.
      const last = this.lastStandby === null ? (0 as Lsn) : pick(this.lastStandby, mode);
      return { status: this.lastStandby !== null && lsn <= last ? 'success' : 'not in recovery', lsn: last };
    }
    this.lastStandby = positions;
    const current = pick(positions, mode);
    return current >= lsn ? { status: 'success', lsn: current } : null;
  }

  private current(mode: WaitLsnMode): Lsn {
    if (mode === 'primary_flush') return this.host.primaryFlush() ?? (0 as Lsn);
    const positions = this.host.standbyPositions() ?? this.lastStandby;
    return positions === null ? (0 as Lsn) : pick(positions, mode);
  }
}

function pick(positions: StandbyPositions, mode: Exclude<WaitLsnMode, 'primary_flush'>): Lsn {
  switch (mode) {
    case 'standby_write': return positions.write;
    case 'standby_flush': return positions.flush;
    case 'standby_replay': return positions.replay;
  }
}
