/**
 * Replication timestamps: PostgreSQL's TimestampTz, TimeOffset and GetCurrentTimestamp
 * (utils/timestamp.h, utils/adt/timestamp.c).
 *
 * PostgreSQL stamps XLogData, keepalives and standby status updates with an int64 count of
 * microseconds, and its lag tracker subtracts such stamps, so pg_stat_replication shows a
 * loopback standby's replay lag as 0.3 to 0.5 ms. Date.now()'s whole milliseconds would show
 * the same lag as 0 or 1 ms. walship therefore keeps these times in integer microseconds too.
 *
 * One difference: PostgreSQL counts from 2000-01-01, walship from the Unix epoch, as every
 * other time in walship does (commit records, the control file, Date), so turning a stamp into
 * a Date is a division and never an epoch shift that one caller might forget. In memory a
 * TimestampTz is a safe integer, like an Lsn: 2^53 µs after 1970 is in the year 2255. On the
 * wire it is 64 bits (see replication-frames.ts).
 */

/** Microseconds since the Unix epoch, an integer from 0 to 2^53 - 1. */
export type TimestampTz = number & { readonly __brand: 'TimestampTz' };

/** PostgreSQL's USECS_PER_MSEC. */
export const USECS_PER_MSEC = 1000;

/** The largest TimestampTz: the largest safe integer, so that arithmetic on it stays exact. */
export const MAX_TIMESTAMP_TZ = Number.MAX_SAFE_INTEGER as TimestampTz;

/**
 * The current time (GetCurrentTimestamp), to the microsecond. The one place walship reads the
 * clock for replication stamps and lags.
 *
 * performance.timeOrigin is the wall-clock time at which this process (or worker) started, in
 * fractional milliseconds, and performance.now() a monotonic offset from it with sub-microsecond
 * resolution; Date.now() has only whole milliseconds. The sum is a wall clock that never steps
 * backwards within a process, which suits the lag tracker (all its subtractions are on one
 * node's clock); a step of the system clock after the process started is not followed, which
 * only shifts the wall time shown as replyTime.
 */
export function getCurrentTimestamp(): TimestampTz {
  // Each term is scaled before adding: (origin + now) * 1000 would round the sum at the
  // millisecond value's precision first.
  return Math.floor(performance.timeOrigin * USECS_PER_MSEC + performance.now() * USECS_PER_MSEC) as TimestampTz;
}

/** Whether `value` can be a TimestampTz: an integer from 0 to 2^53 - 1 (and not -0). */
export function isTimestampTz(value: unknown): value is TimestampTz {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && !Object.is(value, -0);
}

/**
 * A time in (possibly fractional) milliseconds since the epoch, as a TimestampTz. Rounded, not
 * truncated: in binary floating point 1.005 ms times 1000 is 1004.9999..., not 1005 µs.
 */
export function timestampTzFromMs(ms: number): TimestampTz {
  const value = Math.round(ms * USECS_PER_MSEC);
  if (!isTimestampTz(value)) throw new RangeError(`time out of range for a TimestampTz: ${ms} ms`);
  return value;
}

/** Milliseconds since the epoch, fractional (what a Date and the ms settings take). */
export function timestampTzToMs(timestamp: TimestampTz): number {
  return timestamp / USECS_PER_MSEC;
}

/**
 * A difference of two stamps or a lag (PostgreSQL's TimeOffset, integer µs) in milliseconds,
 * keeping the microseconds as three decimals: 412 µs is 0.412, never rounded to 0 or 1.
 */
export function timeOffsetToMs(offsetUs: number): number {
  return offsetUs / USECS_PER_MSEC;
}

/** How many milliseconds (fractional) passed from `start` to `stop` (TimestampDifferenceMilliseconds). */
export function timestampDifferenceMs(start: TimestampTz, stop: TimestampTz): number {
  return (stop - start) / USECS_PER_MSEC;
}

/**
 * ISO 8601 with six fractional digits (`2025-05-01T12:00:00.123456Z`), as PostgreSQL prints a
 * timestamptz to the microsecond. `new Date(text)` and Date.parse read it.
 */
export function timestampTzToIsoString(timestamp: TimestampTz): string {
  const ms = Math.floor(timestamp / USECS_PER_MSEC);
  const micros = timestamp - ms * USECS_PER_MSEC;
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, -1)}${String(micros).padStart(3, '0')}Z`;
}
