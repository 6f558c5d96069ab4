/**
 * The background writer (bgwriter.c): every bgwriter_delay, writes up to bgwriter_lru_maxpages
 * dirty buffers that the clock sweep is about to reuse (as many as bgwriter_lru_multiplier times
 * the recent allocations call for) and whose WAL is already flushed, so that backends seldom
 * have to write (and flush WAL) themselves to evict a page. Started after recovery; a crash is a
 * node crash.
 */
import type { Database } from '@walship/engine';
import { Component } from '../component.js';

export class BgWriter extends Component {
  readonly kind = 'background writer' as const;

  constructor(private readonly db: Database, public delayMs: number, public maxPages: number, public lruMultiplier: number) {
    super();
  }

  protected async main(): Promise<void> {
    while (!this.stopping) {
      if (this.maxPages > 0) this.db.bgWriterStep(this.maxPages, this.lruMultiplier);
      await this.latch.wait(this.delayMs);
    }
  }
}
