/**
 * Latches (PostgreSQL's latch.c): a wake-up flag per component. `setLatch()` wakes the owner's
 * loop; `waitLatch(timeoutMs)` sleeps until the latch is set or the time is up, and resets it.
 *
 * Two kinds, one interface:
 * - `new Latch()`, a latch of this thread: the flag is a plain field and a set wakes the waiter
 *   by resolving its promise from a setImmediate. Only this thread can reach such a latch, so nothing is lost by not
 *   going through shared memory, and a set costs no system call: an Atomics.waitAsync woken from
 *   its own thread still goes through V8's platform task queue, an eventfd write and an extra
 *   event-loop wake-up, and a timed one leaves behind a delayed platform task that stays
 *   scheduled until its time is up (walsenders, the walreceiver and the startup process wait
 *   with timeouts of seconds and are woken thousands of times a second: perf on a primary showed
 *   node::PerIsolatePlatformData::DeleteFromScheduledTasks, uv_timer_stop and the eventfd round
 *   trips at several percent of its CPU).
 * - `new Latch(buffer, index)`, a latch in a SharedArrayBuffer: the flag is an Int32 cell and
 *   the wait is Atomics.waitAsync, so that another thread holding the buffer sets it with
 *   Atomics.exchange + notify (a component moved into a worker thread).
 */

export class Latch {
  /** The shared cell, for a latch made over a SharedArrayBuffer; null for a latch of this thread. */
  private readonly cell: Int32Array | null;
  /** A thread-local latch's flag. */
  private flag = false;
  /**
   * A thread-local latch's sleeping waiters (normally one: the owner's loop). An array emptied
   * in place: a Set's clear() allocates a new table, once per wake-up.
   */
  private readonly waiters: Sleeper[] = [];
  private wakeScheduled = false;
  /**
   * One timer for all of a thread-local latch's waits, armed for the earliest deadline (or
   * earlier). A walsender waits once per commit with a timeout of seconds and is nearly always
   * woken long before it: a setTimeout and clearTimeout per wait were 2 kB of garbage and a timer
   * list insertion per commit and standby. A wait whose deadline is later than the armed timer
   * keeps it; when it fires early it is armed again for the deadline still pending.
   */
  private timer: NodeJS.Timeout | null = null;
  private timerDueMs = Number.POSITIVE_INFINITY;

  constructor(buffer?: SharedArrayBuffer, index = 0) {
    this.cell = buffer === undefined ? null : new Int32Array(buffer, index * 4, 1);
  }

  /** SetLatch. Idempotent; for a shared latch, safe from any thread holding the buffer. */
  set(): void {
    if (this.cell !== null) {
      if (Atomics.exchange(this.cell, 0, 1) === 0) Atomics.notify(this.cell, 0);
      return;
    }
    this.flag = true;
    if (this.waiters.length === 0 || this.wakeScheduled) return;
    // Woken in this event-loop turn's check phase, as a waitAsync's wake-up came in a later task:
    // the setter's own work finishes first (after a WAL flush, the commits' replies are written
    // before the walsenders, woken from the same completion, send).
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      this.wakeWaiters();
    });
  }

  /**
   * SetLatch that wakes a waiter of this thread as soon as the setter's synchronous work is done
   * (in this callback's microtasks), not in a check phase. For a setter that runs in the check
   * phase itself: its set() would wake the waiter only in the next event-loop turn, after
   * another poll and whatever that turn reads. A shared latch is set as by set().
   */
  setNow(): void {
    if (this.cell !== null) {
      this.set();
      return;
    }
    this.flag = true;
    this.wakeWaiters();
  }

  private wakeWaiters(): void {
    // wake() resolves a promise: the waiter runs later, so the list cannot change meanwhile.
    for (const sleeper of this.waiters) sleeper.wake();
    this.waiters.length = 0;
  }

  /** Whether the latch is set, without resetting it. */
  get isSet(): boolean {
    return this.cell === null ? this.flag : Atomics.load(this.cell, 0) === 1;
  }

  /**
   * WaitLatch + ResetLatch: resolves true when woken by setLatch (now or before the call),
   * false on timeout.
   */
  async wait(timeoutMs: number): Promise<boolean> {
    if (this.cell !== null) {
      if (Atomics.exchange(this.cell, 0, 0) === 1) return true;
      const result = Atomics.waitAsync(this.cell, 0, 0, Math.max(0, timeoutMs));
      if (result.async) await result.value;
      return Atomics.exchange(this.cell, 0, 0) === 1;
    }
    if (!this.flag) {
      const dueMs = performance.now() + Math.max(0, timeoutMs);
      await new Promise<void>((resolve) => {
        this.waiters.push({ dueMs, wake: resolve });
        this.armTimer(dueMs);
      });
    }
    const wasSet = this.flag;
    this.flag = false;
    return wasSet;
  }

  private armTimer(dueMs: number): void {
    if (this.timer !== null && this.timerDueMs <= dueMs) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timerDueMs = dueMs;
    this.timer = setTimeout(() => this.onTimer(), Math.max(0, dueMs - performance.now()));
    // Like a pending Atomics.waitAsync, the timer does not keep the process alive.
    this.timer.unref();
  }

  /** Ends the waits whose time is up, and arms the timer again for the earliest one left. */
  private onTimer(): void {
    this.timer = null;
    this.timerDueMs = Number.POSITIVE_INFINITY;
    // A timer may fire a little early by performance.now(): what is due within a millisecond is due.
    const now = performance.now() + 1;
    let next = Number.POSITIVE_INFINITY;
    let kept = 0;
    for (const sleeper of this.waiters) {
      if (sleeper.dueMs <= now) {
        sleeper.wake();
        continue;
      }
      this.waiters[kept++] = sleeper;
      if (sleeper.dueMs < next) next = sleeper.dueMs;
    }
    this.waiters.length = kept;
    if (next !== Number.POSITIVE_INFINITY) this.armTimer(next);
  }
}

interface Sleeper {
  dueMs: number;
  wake: () => void;
}
