import { describe, expect, it } from 'vitest';
import { MainFlushPolicy, PROBE_EVERY } from './main-flush-policy.js';

function run(policy: MainFlushPolicy, requests: Array<[waiters: number, inFlight: boolean]>): boolean[] {
  return requests.map(([waiters, inFlight]) => policy.decide(waiters, inFlight));
}

describe('MainFlushPolicy', () => {
  it('lets a lone session flush on the main thread, but for one probe in PROBE_EVERY', () => {
    const decisions = run(new MainFlushPolicy(), Array.from({ length: 4 * PROBE_EVERY }, () => [1, false] as [number, boolean]));
    expect(decisions.filter((d) => !d)).toHaveLength(4);
    expect(decisions.slice(0, PROBE_EVERY - 1).every((d) => d)).toBe(true);
    expect(decisions[PROBE_EVERY - 1]).toBe(false);
  });

  it('hands groups and requests made while a flush is in flight to the worker', () => {
    const policy = new MainFlushPolicy();
    expect(policy.decide(2, false)).toBe(false);
    expect(policy.decide(1, true)).toBe(false);
  });

  it('keeps handing lone commits to the worker while other sessions committed recently, and stops once they are gone', () => {
    const policy = new MainFlushPolicy();
    // Two sessions through the worker: about every other request finds the other one's flush in flight.
    run(policy, Array.from({ length: 40 }, (_, i) => [1, i % 2 === 0] as [number, boolean]));
    // The lone requests among them, and the first ones after, still go to the worker.
    expect(policy.decide(1, false)).toBe(false);
    expect(policy.decide(1, false)).toBe(false);
    const after = run(policy, Array.from({ length: 30 }, () => [1, false] as [number, boolean]));
    const firstMain = after.indexOf(true);
    expect(firstMain).toBeGreaterThan(0);
    expect(after.slice(firstMain, firstMain + 10).every((d) => d)).toBe(true);
  });

  it('goes back to the worker after a single request found a flush in flight', () => {
    const policy = new MainFlushPolicy();
    expect(run(policy, [[1, false], [1, false]])).toEqual([true, true]);
    expect(policy.decide(1, true)).toBe(false);
    expect(policy.decide(1, false)).toBe(false);
  });
});
