/**
 * Durations and sizes as people write them on a command line (`500ms`, `10s`, `16MB`) and as
 * the lag views print them. Parsing returns values or a problem, never throws: the CLI decides
 * whether a bad value is a usage error or, under `--check`, an UNKNOWN.
 */

/** A threshold of `--warn` / `--crit`: a time lag, a byte lag, or both (`10s,16MB`). */
export interface Threshold {
  /** Compared with a standby's replay lag (the largest of the three lag times). */
  durationMs: number | null;
  /** Compared with a standby's lag in bytes behind the primary's flush position. */
  bytes: number | null;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };

const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  us: 0.001, ms: 1, s: 1000, min: 60_000, h: 3_600_000, d: 86_400_000,
};

/**
 * Byte units, upper or lower case (`kB` as PostgreSQL spells it, `KB` and `kb` as people type
 * it), all powers of 1024 as PostgreSQL's memory units are.
 */
const BYTE_UNITS: Readonly<Record<string, number>> = {
  b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4,
};

const QUANTITY = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)\s*$/;

/** `500ms`, `1.5s`, `2min`: a duration in milliseconds. A bare number is refused (ms or s?). */
export function parseDuration(text: string): Parsed<number> {
  const match = QUANTITY.exec(text);
  const factor = match === null ? undefined : DURATION_UNITS_MS[match[2]!];
  if (match === null || factor === undefined) {
    return { ok: false, problem: `"${text}" is not a duration; write a number with a unit: us, ms, s, min, h or d (for example 500ms or 10s).` };
  }
  return { ok: true, value: Number(match[1]) * factor };
}

/** `16MB`, `512kB`, `100B`: a size in bytes. A bare number is refused (a typo for 16MB?). */
export function parseBytes(text: string): Parsed<number> {
  const match = QUANTITY.exec(text);
  const factor = match === null ? undefined : BYTE_UNITS[match[2]!.toLowerCase()];
  if (match === null || factor === undefined) {
    return { ok: false, problem: `"${text}" is not a size; write a number with a unit: B, kB, MB, GB or TB (for example 16MB).` };
  }
  const bytes = Math.round(Number(match[1]) * factor);
  if (!Number.isSafeInteger(bytes)) return { ok: false, problem: `"${text}" is too large.` };
  return { ok: true, value: bytes };
}

/**
 * A `--warn` / `--crit` value: a duration, a size, or one of each separated by a comma
 * (`10s,16MB`: exceeded when either is).
 */
export function parseThreshold(text: string): Parsed<Threshold> {
  const parts = text.split(',').map((part) => part.trim()).filter((part) => part !== '');
  if (parts.length === 0 || parts.length > 2) {
    return { ok: false, problem: `"${text}" is not a threshold; write a duration (10s), a size (16MB), or one of each (10s,16MB).` };
  }
  const threshold: Threshold = { durationMs: null, bytes: null };
  for (const part of parts) {
    const unit = QUANTITY.exec(part)?.[2] ?? '';
    if (unit.toLowerCase() in BYTE_UNITS) {
      if (threshold.bytes !== null) return { ok: false, problem: `"${text}" gives two sizes; give at most one size and one duration.` };
      const bytes = parseBytes(part);
      if (!bytes.ok) return bytes;
      threshold.bytes = bytes.value;
    } else {
      if (threshold.durationMs !== null) return { ok: false, problem: `"${text}" gives two durations; give at most one size and one duration.` };
      const duration = parseDuration(part);
      if (!duration.ok) {
        return { ok: false, problem: `"${part}" is neither a duration (500ms, 10s) nor a size (16MB) in threshold "${text}".` };
      }
      threshold.durationMs = duration.value;
    }
  }
  return { ok: true, value: threshold };
}

/** `--interval`: milliseconds, bare (`500`, as DESIGN's `--interval MS` says) or with a unit. */
export function parseInterval(text: string): Parsed<number> {
  const trimmed = text.trim();
  const value = /^\d+(?:\.\d+)?$/.test(trimmed) ? { ok: true as const, value: Number(trimmed) } : parseDuration(trimmed);
  if (!value.ok) return { ok: false, problem: `"${text}" is not an interval; write milliseconds (500) or a duration (2s).` };
  if (value.value < INTERVAL_MIN_MS) return { ok: false, problem: `interval ${text} is below the minimum of ${INTERVAL_MIN_MS} ms.` };
  return value;
}

/**
 * The shortest refresh: below this a status request to every member each time would cost the
 * nodes more than the figures are worth (each is a session request and a walsender scan).
 */
export const INTERVAL_MIN_MS = 100;

/** A size for people: `0 B`, `812 B`, `12.4 kB`, `3.0 MB` (powers of 1024, PostgreSQL's spelling). */
export function formatBytes(bytes: number | null): string {
  if (bytes === null || !Number.isFinite(bytes)) return '-';
  const sign = bytes < 0 ? '-' : '';
  let value = Math.abs(bytes);
  if (value < 1024) return `${sign}${Math.round(value)} B`;
  for (const unit of ['kB', 'MB', 'GB', 'TB']) {
    value /= 1024;
    if (value < 1024 || unit === 'TB') return `${sign}${value < 100 ? value.toFixed(1) : Math.round(value)} ${unit}`;
  }
  return `${sign}${bytes} B`;
}

/**
 * A duration for people, precise where lags are small: `0.412 ms`, `38.1 ms`, `2.35 s`, `4 min 10 s`.
 * A loopback standby's lag is well under a millisecond, so small values keep three decimals.
 */
export function formatDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '-';
  const sign = ms < 0 ? '-' : '';
  const value = Math.abs(ms);
  if (value < 10) return `${sign}${value.toFixed(3)} ms`;
  if (value < 1000) return `${sign}${value.toFixed(1)} ms`;
  if (value < 60_000) return `${sign}${(value / 1000).toFixed(2)} s`;
  if (value < 3_600_000) return `${sign}${Math.floor(value / 60_000)} min ${Math.floor((value % 60_000) / 1000)} s`;
  return `${sign}${Math.floor(value / 3_600_000)} h ${Math.floor((value % 3_600_000) / 60_000)} min`;
}

/** A rate for people: `1.2 MB/s`. */
export function formatRate(bytesPerSecond: number | null): string {
  return bytesPerSecond === null ? '-' : `${formatBytes(bytesPerSecond)}/s`;
}

/** A threshold as given back to people (`10.00 s or 16 MB`). */
export function formatThreshold(threshold: Threshold): string {
  const parts: string[] = [];
  if (threshold.durationMs !== null) parts.push(formatDuration(threshold.durationMs));
  if (threshold.bytes !== null) parts.push(formatBytes(threshold.bytes));
  return parts.join(' or ');
}
