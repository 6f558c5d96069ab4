/**
 * The WAL writer (walwriter.c): every wal_writer_delay it runs xlogBackgroundFlush, so that
 * asynchronous commits (synchronous_commit = off) become durable without waiting for another
 * commit, and completed WAL pages are written ahead of the next flush. After a run of idle
 * loops it sleeps longer (hibernation), as PostgreSQL's does, to save wake-ups on an idle node.
 *
 * Started by the postmaster once the node accepts connections; stopped at shutdown before the
 * shutdown checkpoint. A crash here is a node crash: the postmaster recovers.
 */
import type { Database } from '@walship/engine';
import { Component } from '../component.js';
import type { Faults } from '../faults.js';

/** Idle loops before hibernating, and how much longer a hibernating loop sleeps (walwriter.c). */
const LOOPS_UNTIL_HIBERNATE = 50;
const HIBERNATE_FACTOR = 25;

export class WalWriter extends Component {
  readonly kind = 'wal writer' as const;
  /** Sleeping the long sleep: an asynchronous commit must wake it (see wakeForAsyncCommit). */
  private hibernating = false;

  constructor(private readonly db: Database, public delayMs: number, private readonly faults: Faults) {
    super();
  }

  /** XLogSetAsyncXactLSN's wake-up: only a hibernating WAL writer needs one. */
  wakeForAsyncCommit(): void {
    if (this.hibernating) this.latch.set();
  }

  protected async main(): Promise<void> {
    let idleLoops = 0;
    while (!this.stopping) {
      if (this.faults.take('crash_wal_writer', (commits) => this.db.stats.commits >= commits)) {
        throw new Error('fault injection: crash_wal_writer');
      }
      const worked = this.db.xlog.xlogBackgroundFlush();
      idleLoops = worked ? 0 : idleLoops + 1;
      this.hibernating = idleLoops >= LOOPS_UNTIL_HIBERNATE;
      await this.latch.wait(this.hibernating ? this.delayMs * HIBERNATE_FACTOR : this.delayMs);
      this.hibernating = false;
    }
  }
}
