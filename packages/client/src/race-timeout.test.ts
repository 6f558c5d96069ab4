import { afterEach, describe, expect, it, vi } from 'vitest';
import { raceTimeout } from './race-timeout.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('raceTimeout', () => {
  it('gives the value and leaves no timer behind, so a process done with it can exit', async () => {
    vi.useFakeTimers();
    expect(await raceTimeout(Promise.resolve('answer'), 1_000)).toBe('answer');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('gives null once the time is up, and passes a rejection on, clearing its timer either way', async () => {
    vi.useFakeTimers();
    const late = raceTimeout(new Promise<string>(() => undefined), 1_000);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(await late).toBeNull();
    await expect(raceTimeout(Promise.reject(new Error('refused')), 1_000)).rejects.toThrow('refused');
    expect(vi.getTimerCount()).toBe(0);
  });
});
