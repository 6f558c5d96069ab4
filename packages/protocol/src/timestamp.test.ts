import { describe, expect, it } from 'vitest';
import {
  MAX_TIMESTAMP_TZ, getCurrentTimestamp, isTimestampTz, timeOffsetToMs, timestampDifferenceMs, timestampTzFromMs,
  timestampTzToIsoString, timestampTzToMs, type TimestampTz,
} from './timestamp.js';

/** 2023-11-14T22:13:20.123456Z. */
const T = 1_700_000_000_123_456 as TimestampTz;

describe('getCurrentTimestamp', () => {
  it('reads integer microseconds since the Unix epoch, on the same clock as Date.now()', () => {
    const before = Date.now();
    const now = getCurrentTimestamp();
    const after = Date.now();
    expect(isTimestampTz(now)).toBe(true);
    // Not equal: Date.now() truncates to the ms, and a clock step since the process started
    // shows in one and not the other. A wrong unit or epoch would be off by years.
    expect(now / 1000).toBeGreaterThan(before - 1000);
    expect(now / 1000).toBeLessThan(after + 1000);
  });

  it('has sub-millisecond resolution and never goes backwards', () => {
    let previous = getCurrentTimestamp();
    let subMillisecond = false;
    for (let i = 0; i < 100_000 && !subMillisecond; i++) {
      const now = getCurrentTimestamp();
      expect(now).toBeGreaterThanOrEqual(previous);
      // A millisecond clock scaled to µs would only ever give multiples of 1000.
      if (now % 1000 !== 0 && now !== previous) subMillisecond = true;
      previous = now;
    }
    expect(subMillisecond).toBe(true);
  });
});

describe('conversions', () => {
  it('prints ISO 8601 with six fractional digits, which Date reads back', () => {
    expect(timestampTzToIsoString(T)).toBe('2023-11-14T22:13:20.123456Z');
    expect(timestampTzToIsoString(0 as TimestampTz)).toBe('1970-01-01T00:00:00.000000Z');
    expect(timestampTzToIsoString(1 as TimestampTz)).toBe('1970-01-01T00:00:00.000001Z');
    expect(timestampTzToIsoString(999_999 as TimestampTz)).toBe('1970-01-01T00:00:00.999999Z');
    expect(Date.parse(timestampTzToIsoString(T))).toBe(1_700_000_000_123);
  });

  it('turns lags and differences into fractional milliseconds, keeping the microseconds', () => {
    expect(timeOffsetToMs(412)).toBe(0.412);
    expect(timeOffsetToMs(1)).toBe(0.001);
    expect(timeOffsetToMs(0)).toBe(0);
    expect(timestampDifferenceMs(T, (T + 1_500) as TimestampTz)).toBe(1.5);
    expect(timestampDifferenceMs((T + 1_500) as TimestampTz, T)).toBe(-1.5);
    expect(timestampTzToMs(T)).toBe(1_700_000_000_123.456);
  });

  it('converts milliseconds to the nearest microsecond', () => {
    expect(timestampTzFromMs(1_700_000_000_123.456)).toBe(T);
    expect(timestampTzFromMs(1.005)).toBe(1_005);
    expect(() => timestampTzFromMs(-1)).toThrow(RangeError);
    expect(() => timestampTzFromMs(Number.NaN)).toThrow(RangeError);
    expect(() => timestampTzFromMs(Number.MAX_SAFE_INTEGER)).toThrow(RangeError);
  });

  it('accepts only integers from 0 to 2^53 - 1 as a TimestampTz', () => {
    for (const good of [0, 1, T, MAX_TIMESTAMP_TZ]) expect(isTimestampTz(good)).toBe(true);
    for (const bad of [-1, -0, 0.5, 2 ** 53, Number.NaN, Infinity, '1', null]) expect(isTimestampTz(bad)).toBe(false);
  });
});
