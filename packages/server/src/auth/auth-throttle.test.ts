import { describe, expect, it } from 'vitest';
import { AuthThrottle } from './auth-throttle.js';

describe('AuthThrottle', () => {
  it('an address without failures waits for nothing', () => {
    const throttle = new AuthThrottle();
    expect(throttle.admit('10.0.0.1', 0)).toBe(0);
    expect(throttle.admit('10.0.0.1', 0)).toBe(0);
  });

  it('the delay doubles with each failure in a row, up to the cap', () => {
    const throttle = new AuthThrottle({ baseDelayMs: 100, maxDelayMs: 1_000 });
    let now = 1_000;
    const waits: number[] = [];
    for (let attempt = 0; attempt < 7; attempt++) {
      const wait = throttle.admit('a', now);
      waits.push(wait);
      now += wait + 5; // the attempt runs, then fails
      throttle.failed('a', now);
    }
    expect(waits).toEqual([0, 100, 200, 400, 800, 1_000, 1_000]);
    expect(throttle.failures('a', now)).toBe(7);
  });

  it('a success forgets the failures; so does a quiet window', () => {
    const throttle = new AuthThrottle({ baseDelayMs: 100, windowMs: 10_000 });
    throttle.failed('a', 0);
    throttle.failed('a', 1);
    throttle.succeeded('a');
    expect(throttle.admit('a', 2)).toBe(0);
    throttle.failed('b', 0);
    throttle.failed('b', 0);
    expect(throttle.admit('b', 10_000)).toBe(0);
    expect(throttle.admit('b', 10_001)).toBe(0);
    expect(throttle.failures('b', 10_001)).toBe(0);
  });

  it('attempts arriving together from one address queue behind each other; other addresses do not wait', () => {
    const throttle = new AuthThrottle({ baseDelayMs: 100 });
    throttle.failed('a', 0);
    throttle.failed('a', 0); // delay 200
    expect([throttle.admit('a', 0), throttle.admit('a', 0), throttle.admit('a', 0)]).toEqual([200, 400, 600]);
    expect(throttle.admit('b', 0)).toBe(0);
  });

  it('remembers a bounded number of addresses, dropping the oldest failure first', () => {
    const throttle = new AuthThrottle({ maxAddresses: 2 });
    throttle.failed('a', 0);
    throttle.failed('b', 1);
    throttle.failed('a', 2);
    throttle.failed('c', 3);
    expect(throttle.failures('b', 3)).toBe(0);
    expect(throttle.failures('a', 3)).toBe(2);
    expect(throttle.failures('c', 3)).toBe(1);
  });
});
