/**
 * The heartbeat (walship's own; pt-heartbeat and postgres_exporter's answers to the same problem
 * live outside PostgreSQL): on a primary, every heartbeat_interval during which no other WAL was
 * written, insert a small heartbeat record (an XLOG_NOOP stamped with this node's clock) and
 * flush it. Every standby then receives, flushes and replays something each interval, so its
 * lag tracker keeps fresh write / flush / replay lags and its replay delay stays small, where an
 * idle cluster would otherwise show NULL lags and a last-replay time growing without end (the
 * false alerts of postgres_exporter #385 and #1007, check_postgres #220).
 *
 * A beat is skipped when the insert position moved since the previous beat: other WAL already
 * gives the standbys fresh figures, and a busy primary should not pay for heartbeats. The record
 * is marked unimportant, so an idle primary's timed checkpoints are still skipped.
 *
 * Started by the postmaster beside the other components of a primary (never on a standby: the
 * primary's heartbeats flow through cascading standbys); stopped with them before the shutdown
 * checkpoint. heartbeat_interval = 0 turns it off; a reload takes effect at the next beat (the
 * reload sets every component's latch). A failure to insert or flush is a node crash, as for any
 * WAL write.
 */
import type { Lsn } from '@walship/engine';
import { Component } from '../component.js';

/** What the heartbeat needs of the primary's database (a Database fits). */
export interface HeartbeatTarget {
  logHeartbeat(time: number): Lsn;
  readonly xlog: { getInsertRecPtr(): Lsn; xlogFlush(lsn: Lsn): Promise<void> };
}

/** While heartbeat_interval is 0, how often the loop looks whether a reload turned it on. */
const DISABLED_RECHECK_MS = 60_000;

/**
 * Whether a beat is due: yes at the first tick, and when the insert position is where the
 * previous tick (or its heartbeat) left it; no when other WAL was written in between.
 */
export function heartbeatDue(previousInsertLsn: number | null, insertLsn: number): boolean {
  return previousInsertLsn === null || insertLsn === previousInsertLsn;
}

export class Heartbeat extends Component {
  readonly kind = 'heartbeat' as const;
  /** Heartbeats written, and ticks skipped because WAL moved (for /metrics). */
  beats = 0;
  skipped = 0;

  constructor(private readonly db: HeartbeatTarget, private readonly intervalMs: () => number, private readonly now: () => number = Date.now) {
    super();
  }

  protected async main(): Promise<void> {
    let previousInsert: Lsn | null = null;
    while (!this.stopping) {
      const intervalMs = this.intervalMs();
      if (intervalMs > 0) {
        const insert = this.db.xlog.getInsertRecPtr();
        if (heartbeatDue(previousInsert, insert)) {
          const end = this.db.logHeartbeat(this.now());
          // Walsenders send only flushed WAL: the flush is what gets the beat to the standbys.
          await this.db.xlog.xlogFlush(end);
          this.beats++;
          // The next tick compares with where the beat ended, not with what others wrote since.
          previousInsert = end;
        } else {
          this.skipped++;
          previousInsert = insert;
        }
      } else {
        previousInsert = null;
      }
      await this.latch.wait(intervalMs > 0 ? intervalMs : DISABLED_RECHECK_MS);
    }
  }
}
