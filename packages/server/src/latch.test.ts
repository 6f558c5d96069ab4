import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { Latch } from './latch.js';

describe('Latch', () => {
  it('returns at once, true, when it was set before the wait, and resets', async () => {
    const latch = new Latch();
    latch.set();
    expect(latch.isSet).toBe(true);
    expect(await latch.wait(60_000)).toBe(true);
    expect(latch.isSet).toBe(false);
  });

  it('wakes a waiter when set during the wait, long before its timeout', async () => {
    const latch = new Latch();
    const startedAt = performance.now();
    const waiting = latch.wait(60_000);
    setTimeout(() => latch.set(), 20);
    expect(await waiting).toBe(true);
    expect(performance.now() - startedAt).toBeLessThan(10_000);
  });

  it('returns false once the timeout has passed without a set', async () => {
    const latch = new Latch();
    const startedAt = performance.now();
    expect(await latch.wait(50)).toBe(false);
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(45);
    // A timed-out wait leaves nothing behind: the next set is seen by the next wait.
    latch.set();
    expect(await latch.wait(60_000)).toBe(true);
  });

  it('times each wait from its own start, whatever timer an earlier wait left armed', async () => {
    const latch = new Latch();
    // A short wait woken at once leaves the shared timer armed for its own deadline, 40 ms away.
    const early = latch.wait(40);
    latch.set();
    expect(await early).toBe(true);
    const startedAt = performance.now();
    expect(await latch.wait(150)).toBe(false);
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(145);
    // A long wait woken at once leaves the timer a minute away; a short wait after it still ends on time.
    const long = latch.wait(60_000);
    latch.set();
    expect(await long).toBe(true);
    const shortStartedAt = performance.now();
    expect(await latch.wait(30)).toBe(false);
    expect(performance.now() - shortStartedAt).toBeLessThan(10_000);
  });

  it('ends concurrent waits at their own deadlines', async () => {
    const latch = new Latch();
    const startedAt = performance.now();
    const ended: Array<[string, boolean, number]> = [];
    const late = latch.wait(160).then((set) => ended.push(['late', set, performance.now() - startedAt]));
    const soon = latch.wait(40).then((set) => ended.push(['soon', set, performance.now() - startedAt]));
    await Promise.all([late, soon]);
    expect(ended.map(([name, set]) => [name, set])).toEqual([['soon', false], ['late', false]]);
    expect(ended[0]![2]).toBeGreaterThanOrEqual(35);
    expect(ended[1]![2]).toBeGreaterThanOrEqual(155);
  });

  it('coalesces the sets made during one wait into one wake-up', async () => {
    const latch = new Latch();
    const waiting = latch.wait(60_000);
    latch.set();
    latch.set();
    expect(await waiting).toBe(true);
    expect(latch.isSet).toBe(false);
    expect(await latch.wait(20)).toBe(false);
  });

  it('wakes every waiter of the latch, and the setter finishes its turn first', async () => {
    const latch = new Latch();
    const order: string[] = [];
    const first = latch.wait(60_000).then((set) => order.push(`first ${set}`));
    const second = latch.wait(60_000).then((set) => order.push(`second ${set}`));
    latch.set();
    await Promise.resolve();
    order.push('setter');
    await Promise.all([first, second]);
    // The first waiter resets the latch; the second was woken too and sees it reset.
    expect(order).toEqual(['setter', 'first true', 'second false']);
  });

  it('setNow wakes the waiter once the setter\'s callback is done, before anything of the next turn', async () => {
    const latch = new Latch();
    const order: string[] = [];
    const waiting = latch.wait(60_000).then((set) => order.push(`waiter ${set}`));
    await new Promise<void>((resolve) => {
      // In the check phase, as the walreceiver's end-of-turn flush that wakes recovery.
      setImmediate(() => {
        setImmediate(() => {
          order.push('next turn');
          resolve();
        });
        latch.setNow();
        order.push('setter');
      });
    });
    await waiting;
    // set() would have woken it in the next turn's check phase, after 'next turn'.
    expect(order).toEqual(['setter', 'waiter true', 'next turn']);
    expect(latch.isSet).toBe(false);
    // Set with no waiter, it stays set for the next wait.
    latch.setNow();
    expect(await latch.wait(60_000)).toBe(true);
  });

  it('is set from another thread through its shared memory', async () => {
    const buffer = new SharedArrayBuffer(4);
    const latch = new Latch(buffer);
    const waiting = latch.wait(60_000);
    const worker = new Worker(
      'const { workerData } = require("node:worker_threads"); const cell = new Int32Array(workerData, 0, 1);' +
      'setTimeout(() => { if (Atomics.exchange(cell, 0, 1) === 0) Atomics.notify(cell, 0); }, 20);',
      { eval: true, workerData: buffer },
    );
    expect(await waiting).toBe(true);
    expect(await latch.wait(20)).toBe(false);
    latch.set();
    expect(latch.isSet).toBe(true);
    expect(await latch.wait(60_000)).toBe(true);
    await worker.terminate();
  });
});
