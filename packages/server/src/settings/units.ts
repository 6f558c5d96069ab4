/**
 * Units of memory and time settings, as PostgreSQL spells and converts them (guc.c's
 * memory_unit_conversion_table and time_unit_conversion_table).
 *
 * Every numeric setting with a unit has a base unit: the unit a bare number is read in and the
 * unit its range is stated in (shared_buffers counts 8kB blocks, max_wal_size megabytes,
 * checkpoint_timeout seconds). Typed values leave this module in bytes (memory) and milliseconds
 * (time), whatever the base unit.
 *
 * Pure: no I/O.
 */

/** Base units of memory settings. `8kB` is PostgreSQL's GUC_UNIT_BLOCKS (BLCKSZ pages). */
export type MemoryUnit = 'B' | 'kB' | 'MB' | '8kB';

/** Base units of time settings. */
export type TimeUnit = 'ms' | 's' | 'min';

const KILOBYTE = 1024;
const MEGABYTE = 1024 * KILOBYTE;
const GIGABYTE = 1024 * MEGABYTE;
const TERABYTE = 1024 * GIGABYTE;

/** Bytes in one base unit. */
export const MEMORY_UNIT_BYTES: Readonly<Record<MemoryUnit, number>> = {
  B: 1,
  kB: KILOBYTE,
  MB: MEGABYTE,
  '8kB': 8 * KILOBYTE,
};

/** Milliseconds in one base unit. */
export const TIME_UNIT_MS: Readonly<Record<TimeUnit, number>> = {
  ms: 1,
  s: 1000,
  min: 60_000,
};

/**
 * Units accepted in input, largest first: the order is also the order of preference when a value
 * is printed (the largest unit in which it is a whole number, as PostgreSQL's
 * convert_int_from_base_unit picks).
 */
export const MEMORY_INPUT_UNITS: ReadonlyArray<readonly [string, number]> = [
  ['TB', TERABYTE],
  ['GB', GIGABYTE],
  ['MB', MEGABYTE],
  ['kB', KILOBYTE],
  ['B', 1],
];

export const TIME_INPUT_UNITS: ReadonlyArray<readonly [string, number]> = [
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['min', 60_000],
  ['s', 1000],
  ['ms', 1],
  ['us', 0.001],
];

/** PostgreSQL's memory_units_hint, word for word. */
export const MEMORY_UNITS_HINT = 'Valid units for this parameter are "B", "kB", "MB", "GB", and "TB".';

/** PostgreSQL's time_units_hint, word for word. */
export const TIME_UNITS_HINT = 'Valid units for this parameter are "us", "ms", "s", "min", "h", and "d".';

/** Outcome of reading a number with an optional unit: the value in base units, or why not. */
export type UnitParseResult =
  | { ok: true; value: number }
  | { ok: false; reason: 'syntax' | 'unit' | 'range' };

// A decimal number (optionally fractional, optionally with an exponent) or a hexadecimal
// integer, then optional blanks, then the unit letters, then optional blanks. PostgreSQL reads
// integers with strtol(base 0); octal (leading zero) is deliberately not taken here: `010` is ten.
const NUMBER_WITH_UNIT = /^\s*([+-]?(?:0[xX][0-9A-Fa-f]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))\s*([A-Za-z]*)\s*$/;

function parseNumberText(text: string): number {
  const unsigned = text.replace(/^[+-]/, '');
  if (/^0[xX]/.test(unsigned)) {
    const magnitude = parseInt(unsigned.slice(2), 16);
    return text.startsWith('-') ? -magnitude : magnitude;
  }
  return Number(text);
}

/**
 * Reads `text` as a number in base units, or with one of `units` converted to base units
 * (`unitSize / baseSize` per unit), rounding to the nearest base unit as PostgreSQL does for
 * fractional input (`1.5GB` of a setting in MB is 1536).
 */
export function parseWithUnits(
  text: string,
  units: ReadonlyArray<readonly [string, number]> | null,
  baseSize: number,
  integer: boolean,
): UnitParseResult {
  const match = NUMBER_WITH_UNIT.exec(text);
  if (match === null) return { ok: false, reason: 'syntax' };
  const number = parseNumberText(match[1]!);
  if (!Number.isFinite(number)) return { ok: false, reason: 'range' };
  const unitText = match[2]!;
  let value = number;
  if (unitText !== '') {
    if (units === null) return { ok: false, reason: 'syntax' };
    const unit = units.find(([name]) => name === unitText);
    if (unit === undefined) return { ok: false, reason: 'unit' };
    value = (number * unit[1]) / baseSize;
  }
  if (integer) {
    value = Math.round(value);
    if (!Number.isSafeInteger(value)) return { ok: false, reason: 'range' };
    // Math.round(-0.4) is -0; print it as 0.
    if (Object.is(value, -0)) value = 0;
  }
  return { ok: true, value };
}

/**
 * Prints an amount (bytes or milliseconds) in the largest unit of `units` in which it is a whole
 * number: `134217728` bytes is `128MB`, `300000` ms is `5min`. Zero and negative values (the
 * special values such as -1, "no limit") print as bare numbers, as PostgreSQL's SHOW does.
 */
export function formatWithUnits(amount: number, units: ReadonlyArray<readonly [string, number]>): string {
  if (amount <= 0) return String(amount);
  for (const [name, size] of units) {
    if (size >= 1 && amount % size === 0) return `${amount / size}${name}`;
  }
  return String(amount);
}
