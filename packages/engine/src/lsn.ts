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
  const match = LSN_PATTERN.exec(text.trim());
  if (match === null) return null;
  const value = parseInt(match[1]!, 16) * TWO_32 + parseInt(match[2]!, 16);
  return Number.isSafeInteger(value) ? (value as Lsn) : null;
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
