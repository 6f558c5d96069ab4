/**
 * Latches (PostgreSQL's latch.c): a wake-up flag per component. `setLatch()` wakes the owner's
 * loop; `waitLatch(timeoutMs)` sleeps until the latch is set or the time is up, and resets it.
 *
 * The flag lives in a SharedArrayBuffer and the wait is Atomics.waitAsync, so the same latch
 * works unchanged when a component moves into a worker thread: another thread sets it with
 * Atomics.store + notify.
 *
 * The timeout is a timer of our own that notifies the cell, not waitAsync's timeout argument:
 * V8 gives each timed waitAsync a delayed platform task that stays scheduled until its time is
 * up even when the wait was woken long before, so walsenders and the startup process waking a
 * few thousand times a second kept tens of thousands of dead timers alive, and Node's platform
 * spent several percent of a primary's CPU scanning its list of them.
 */

export class Latch {
  private readonly cell: Int32Array;

  constructor(buffer: SharedArrayBuffer = new SharedArrayBuffer(4), index = 0) {
    this.cell = new Int32Array(buffer, index * 4, 1);
  }

  /** SetLatch. Idempotent; safe from any thread holding the buffer. */
  set(): void {
    if (Atomics.exchange(this.cell, 0, 1) === 0) Atomics.notify(this.cell, 0);
  }

  /** Whether the latch is set, without resetting it. */
  get isSet(): boolean {
    return Atomics.load(this.cell, 0) === 1;
  }

  /**
   * WaitLatch + ResetLatch: resolves true when woken by setLatch (now or before the call),
   * false on timeout.
   */
  async wait(timeoutMs: number): Promise<boolean> {
    if (Atomics.exchange(this.cell, 0, 0) === 1) return true;
    const result = Atomics.waitAsync(this.cell, 0, 0);
    if (result.async) {
      // A notify without a set is a timeout: the flag below stays 0. Like the pending wait
      // itself, the timer does not keep the process alive.
      const timer = setTimeout(() => Atomics.notify(this.cell, 0), Math.max(0, timeoutMs));
      timer.unref();
      await result.value;
      clearTimeout(timer);
    }
    return Atomics.exchange(this.cell, 0, 0) === 1;
  }
}
