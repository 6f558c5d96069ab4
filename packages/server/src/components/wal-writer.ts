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

/** Idle loops before hibernating, and how much longer a hibernating loop sleeps (walwriter.c). */
const LOOPS_UNTIL_HIBERNATE = 50;
const HIBERNATE_FACTOR = 25;

export class WalWriter extends Component {
  readonly kind = 'wal writer' as const;

  constructor(private readonly db: Database, public delayMs: number) {
    super();
  }

  protected async main(): Promise<void> {
    let idleLoops = 0;
    while (!this.stopping) {
      const worked = this.db.xlog.xlogBackgroundFlush();
      idleLoops = worked ? 0 : idleLoops + 1;
      const sleep = idleLoops >= LOOPS_UNTIL_HIBERNATE ? this.delayMs * HIBERNATE_FACTOR : this.delayMs;
      await this.latch.wait(sleep);
    }
  }
}
