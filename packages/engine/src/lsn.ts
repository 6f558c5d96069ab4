/**
 * Log sequence numbers.
 *
 * An LSN is a byte position in the WAL stream (PostgreSQL's XLogRecPtr). In memory it is a
 * branded safe-integer `number`: bigint arithmetic is far slower in V8 and 2^53 bytes of WAL
 * (8 PiB) is more than any node will write. On disk and on the wire it is 64 bits, written as two
 * 32-bit halves so that no bigint is ever created on a hot path.
 */

export type Lsn = number & { readonly __brand: 'Lsn' };

/** PostgreSQL's InvalidXLogRecPtr. */
export const INVALID_LSN = 0 as Lsn;

const TWO_32 = 0x1_0000_0000;

export function asLsn(value: number): Lsn {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`LSN out of range: ${value}`);
  }
  return value as Lsn;
}

/** Prints an LSN as PostgreSQL does (`%X/%X`), e.g. `0/16B3748`. */
export function formatLsn(lsn: number): string {
  const hi = Math.floor(lsn / TWO_32);
  const lo = lsn - hi * TWO_32;
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}

const LSN_PATTERN = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** Parses `X/X`; returns null when the text is not an LSN. */
export function parseLsn(text: string): Lsn | null {
  // A client parses the LSN of every commit it is answered: read the hex digits in place, with no
  // match array or substrings; text with spaces around it, or anything odd, goes to the pattern.
  const fast = parseBareLsn(text);
  if (fast >= 0) return fast as Lsn;
  const match = LSN_PATTERN.exec(text.trim());
  if (match === null) return null;
  const value = parseInt(match[1]!, 16) * TWO_32 + parseInt(match[2]!, 16);
  return Number.isSafeInteger(value) ? (value as Lsn) : null;
}

/** `X/X` with 1 to 8 hex digits on each side and nothing else: its value, or -1. */
function parseBareLsn(text: string): number {
  const slash = text.indexOf('/');
  if (slash < 1 || slash > 8 || text.length - slash - 1 < 1 || text.length - slash - 1 > 8) return -1;
  const hi = hexValue(text, 0, slash);
  const lo = hi < 0 ? -1 : hexValue(text, slash + 1, text.length);
  if (lo < 0) return -1;
  const value = hi * TWO_32 + lo;
  return Number.isSafeInteger(value) ? value : -1;
}

/** The value of the hex digits text[from, to) (at most 8), or -1 if any is not one. */
function hexValue(text: string, from: number, to: number): number {
  let value = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    let digit: number;
    if (c >= 48 && c <= 57) digit = c - 48;
    else if (c >= 65 && c <= 70) digit = c - 55;
    else if (c >= 97 && c <= 102) digit = c - 87;
    else return -1;
    value = value * 16 + digit;
  }
  return value;
}

/** Writes an LSN as a little-endian 64-bit integer at `offset`. */
export function writeLsn(buffer: Buffer, lsn: number, offset: number): void {
  const hi = Math.floor(lsn / TWO_32);
  buffer.writeUInt32LE(lsn - hi * TWO_32, offset);
  buffer.writeUInt32LE(hi, offset + 4);
}

/** Reads a little-endian 64-bit LSN written by `writeLsn`. */
export function readLsn(buffer: Buffer, offset: number): Lsn {
  const lo = buffer.readUInt32LE(offset);
  const hi = buffer.readUInt32LE(offset + 4);
  // 2^21 * 2^32 = 2^53: anything above is not a safe integer.
  if (hi >= 0x20_0000) throw new RangeError(`LSN out of range at offset ${offset}`);
  return (hi * TWO_32 + lo) as Lsn;
}
