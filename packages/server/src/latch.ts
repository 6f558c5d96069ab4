/**
 * Latches (PostgreSQL's latch.c): a wake-up flag per component. `setLatch()` wakes the owner's
 * loop; `waitLatch(timeoutMs)` sleeps until the latch is set or the time is up, and resets it.
 *
 * The flag lives in a SharedArrayBuffer and the wait is Atomics.waitAsync, so the same latch
 * works unchanged when a component moves into a worker thread: another thread sets it with
 * Atomics.store + notify.
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
    const result = Atomics.waitAsync(this.cell, 0, 0, Math.max(0, timeoutMs));
    if (result.async) await result.value;
    return Atomics.exchange(this.cell, 0, 0) === 1;
  }
}
