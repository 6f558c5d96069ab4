/**
 * Whether the main thread should flush a commit itself (Xlog.flushOnMainThread) or hand it to the
 * WAL I/O worker: pure logic, fed at every flush request.
 *
 * The main thread's own flush saves a hand-off per commit, but blocks the event loop during the
 * fdatasync. That only pays while nobody else is committing. With other sessions committing, the
 * worker lets the main thread read and insert the next group while it syncs this one; a flush on
 * the main thread would put the two in a row, and worse, hide the other sessions: what arrives
 * during its fdatasync is read afterwards, one commit at a time, so two sessions would look like a
 * run of single commits, each flushed alone.
 *
 * The sign of another committer is a flush request made while a flush is in flight (or a group of
 * more than one). The policy keeps a moving average of that; the main thread flushes only while
 * it is low. And since its own flushes never leave a flush in flight, every PROBE_EVERY-th
 * eligible request goes to the worker anyway, to look: if another session is committing, its
 * commit arrives during that flush, and the average rises.
 */

/** Weight of the newest request in the moving average. */
const WEIGHT = 1 / 8;
/** The main thread flushes only while the moving average is below this. */
const MAX_CONCURRENCY = 0.1;
/** One eligible request in this many is handed to the worker, to see whether others commit meanwhile. */
export const PROBE_EVERY = 16;

export class MainFlushPolicy {
  private concurrency = 0;
  private sinceProbe = 0;

  /**
   * A flush request of `waiters` waiters, `flushInFlight` when an earlier flush was still being
   * written or synced: may the main thread flush it? (It still needs the writer claim and a small
   * write inside the open segment.)
   */
  decide(waiters: number, flushInFlight: boolean): boolean {
    const concurrent = flushInFlight || waiters > 1;
    this.concurrency += ((concurrent ? 1 : 0) - this.concurrency) * WEIGHT;
    if (concurrent || this.concurrency >= MAX_CONCURRENCY) return false;
    this.sinceProbe++;
    if (this.sinceProbe < PROBE_EVERY) return true;
    this.sinceProbe = 0;
    return false;
  }
}
