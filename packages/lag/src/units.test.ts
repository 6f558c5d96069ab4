import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration, formatThreshold, parseBytes, parseDuration, parseInterval, parseThreshold } from './units.js';

describe('units', () => {
  it('parses durations and sizes with their units', () => {
    expect(parseDuration('500ms')).toEqual({ ok: true, value: 500 });
    expect(parseDuration('1.5s')).toEqual({ ok: true, value: 1500 });
    expect(parseDuration('2min')).toEqual({ ok: true, value: 120_000 });
    expect(parseDuration('250us')).toEqual({ ok: true, value: 0.25 });
    expect(parseDuration('10')).toMatchObject({ ok: false, problem: expect.stringContaining('with a unit') });
    expect(parseBytes('16MB')).toEqual({ ok: true, value: 16 * 1024 * 1024 });
    expect(parseBytes('512kB')).toEqual({ ok: true, value: 512 * 1024 });
    expect(parseBytes('512KB')).toEqual({ ok: true, value: 512 * 1024 });
    expect(parseBytes('100B')).toEqual({ ok: true, value: 100 });
    expect(parseBytes('1.5GB')).toEqual({ ok: true, value: 1.5 * 1024 ** 3 });
    expect(parseBytes('16MiB').ok).toBe(false);
  });

  it('parses thresholds: a duration, a size, or one of each', () => {
    expect(parseThreshold('10s')).toEqual({ ok: true, value: { durationMs: 10_000, bytes: null } });
    expect(parseThreshold('16MB')).toEqual({ ok: true, value: { durationMs: null, bytes: 16 * 1024 * 1024 } });
    expect(parseThreshold('500ms, 1MB')).toEqual({ ok: true, value: { durationMs: 500, bytes: 1024 * 1024 } });
    expect(parseThreshold('1MB,2MB')).toMatchObject({ ok: false, problem: expect.stringContaining('two sizes') });
    expect(parseThreshold('fast')).toMatchObject({ ok: false, problem: expect.stringContaining('neither a duration') });
    expect(parseThreshold('')).toMatchObject({ ok: false });
    expect(formatThreshold({ durationMs: 10_000, bytes: 16 * 1024 * 1024 })).toBe('10.00 s or 16.0 MB');
  });

  it('parses intervals in ms, bare or with a unit, above the minimum', () => {
    expect(parseInterval('500')).toEqual({ ok: true, value: 500 });
    expect(parseInterval('2s')).toEqual({ ok: true, value: 2000 });
    expect(parseInterval('5').ok).toBe(false);
    expect(parseInterval('soon').ok).toBe(false);
  });

  it('formats sizes and durations for people', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(812)).toBe('812 B');
    expect(formatBytes(12.4 * 1024)).toBe('12.4 kB');
    expect(formatBytes(3 * 1024 * 1024)).toBe('3.0 MB');
    expect(formatBytes(300 * 1024 * 1024)).toBe('300 MB');
    expect(formatBytes(null)).toBe('-');
    expect(formatDuration(0.412)).toBe('0.412 ms');
    expect(formatDuration(38.14)).toBe('38.1 ms');
    expect(formatDuration(2345)).toBe('2.35 s');
    expect(formatDuration(250_000)).toBe('4 min 10 s');
    expect(formatDuration(null)).toBe('-');
  });
});
