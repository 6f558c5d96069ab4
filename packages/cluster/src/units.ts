/**
 * Durations and sizes in the cluster config, written as PostgreSQL writes setting values (`500ms`,
 * `2s`, `1min`; `16MB`), so that a policy value reads like the node settings beside it. Pure:
 * text in, a number or a problem out.
 */

const TIME_UNITS_MS: Readonly<Record<string, number>> = { us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS_BYTES: Readonly<Record<string, number>> = { B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3, TB: 1024 ** 4 };

export const TIME_UNITS_TEXT = 'us, ms, s, min, h or d';
export const SIZE_UNITS_TEXT = 'B, kB, MB, GB or TB';

export type Parsed = { ok: true; value: number } | { ok: false; problem: string };

/**
 * A duration: a number with a time unit (`500ms`), or a bare number of milliseconds. Returns
 * whole milliseconds (rounded up, so that a positive duration never becomes 0).
 */
export function parseDurationMs(value: string | number): Parsed {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 ? { ok: true, value: Math.ceil(value) } : { ok: false, problem: `${value} is not a duration` };
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/.exec(value);
  if (match === null) return { ok: false, problem: `"${value}" is not a duration; write a number with a unit (${TIME_UNITS_TEXT}), like 500ms or 2s` };
  const unit = match[2] === '' ? 'ms' : match[2]!;
  const factor = TIME_UNITS_MS[unit];
  if (factor === undefined) return { ok: false, problem: `"${unit}" is not a time unit; use ${TIME_UNITS_TEXT}` };
  const ms = Math.ceil(Number(match[1]) * factor);
  if (!Number.isSafeInteger(ms)) return { ok: false, problem: `"${value}" is too long` };
  return { ok: true, value: ms };
}

/** A size: a number with a unit (`16MB`), or a bare number of bytes. Case matters, as in PostgreSQL (`kB`). */
export function parseSizeBytes(value: string | number): Parsed {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) && value >= 0 ? { ok: true, value } : { ok: false, problem: `${value} is not a whole number of bytes` };
  }
  const match = /^\s*(\d+)\s*([A-Za-z]*)\s*$/.exec(value);
  if (match === null) return { ok: false, problem: `"${value}" is not a size; write a whole number with a unit (${SIZE_UNITS_TEXT}), like 16MB` };
  const unit = match[2] === '' ? 'B' : match[2]!;
  const factor = SIZE_UNITS_BYTES[unit];
  if (factor === undefined) return { ok: false, problem: `"${unit}" is not a size unit; use ${SIZE_UNITS_TEXT} (kB with a small k)` };
  const bytes = Number(match[1]) * factor;
  if (!Number.isSafeInteger(bytes)) return { ok: false, problem: `"${value}" is too large` };
  return { ok: true, value: bytes };
}

/** A duration for people: `500ms`, `2s`, `1.5s`, `2min`. */
export function formatDurationMs(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(3))}s`;
  return `${Number((ms / 60_000).toFixed(2))}min`;
}

/** A size for people, in the largest unit in which it is whole (as SHOW prints memory). */
export function formatSizeBytes(bytes: number): string {
  for (const [unit, factor] of [['TB', 1024 ** 4], ['GB', 1024 ** 3], ['MB', 1024 ** 2], ['kB', 1024]] as const) {
    if (bytes >= factor && bytes % factor === 0) return `${bytes / factor}${unit}`;
  }
  return `${bytes}B`;
}
