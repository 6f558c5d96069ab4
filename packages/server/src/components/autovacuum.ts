/**
 * Autovacuum (autovacuum.c, launcher and worker in one): every autovacuum_naptime, compacts and
 * merges the underfull pages of tables that saw deletes, putting freed pages on their free lists,
 * so that a delete-heavy workload does not grow the files without bound. Each step is one WAL
 * record, like any change; the loop yields between steps so clients keep being served.
 */
import type { Database, LogFunction } from '@walship/engine';
import { Component } from '../component.js';

/** Pages one vacuum step may change: keeps each record and each pause of the event loop small. */
const PAGES_PER_STEP = 32;
/** Steps per round before sleeping again, so that one busy table cannot monopolize the loop. */
const STEPS_PER_ROUND = 1000;

export class AutoVacuum extends Component {
  readonly kind = 'autovacuum launcher' as const;
  readonly counts = { pagesCompacted: 0, pagesMerged: 0, pagesFreed: 0 };

  constructor(private readonly db: Database, public napTimeMs: number, public enabled: boolean, private readonly log: LogFunction) {
    super();
  }

  protected async main(): Promise<void> {
    while (!this.stopping) {
      await this.latch.wait(this.napTimeMs);
      if (!this.enabled || this.stopping) continue;
      const before = { ...this.counts };
      for (let step = 0; step < STEPS_PER_ROUND && !this.stopping; step++) {
        const result = this.db.vacuumStep(PAGES_PER_STEP);
        this.counts.pagesCompacted += result.pagesCompacted;
        this.counts.pagesMerged += result.pagesMerged;
        this.counts.pagesFreed += result.pagesFreed;
        if (result.pagesCompacted + result.pagesMerged + result.pagesFreed === 0) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      // At DEBUG, as PostgreSQL's autovacuum reports its rounds below LOG: seen only when asked for.
      const compacted = this.counts.pagesCompacted - before.pagesCompacted;
      const merged = this.counts.pagesMerged - before.pagesMerged;
      const freed = this.counts.pagesFreed - before.pagesFreed;
      if (compacted + merged + freed > 0) this.log('DEBUG', `automatic vacuum: ${compacted} pages compacted, ${merged} merged, ${freed} freed`);
    }
  }

  /** Runs a round now (tests, and `walship vacuum` later). */
  wake(): void {
    this.latch.set();
  }
}
