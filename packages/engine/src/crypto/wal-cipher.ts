/**
 * WAL encryption: AES-256-CTR with the WAL key, one keystream per timeline, addressed by LSN.
 *
 * The counter block of the 16 bytes of WAL at LSN L in a segment file of timeline T is
 *
 *     T (32 bits, big-endian) | 0 (32 bits) | floor(L / 16) (64 bits, big-endian)
 *
 * so that the keystream of a byte is a function of (timeline, position) only. CTR increments the
 * whole block as one 128-bit big-endian number; floor(L / 16) stays below 2^49, so the count never
 * carries into the timeline. T is the timeline in the segment file's NAME, not the timeline of
 * the page header: every reader and writer opens a segment by name, so each knows it, and bytes
 * copied from one timeline's file into another's are decrypted and encrypted again (promotion).
 *
 * The rules that keep a keystream from ever encrypting two different plaintexts (CTR's one
 * requirement: C1 XOR C2 = P1 XOR P2 otherwise):
 *
 *  1. Only final bytes are encrypted. The WAL I/O worker encrypts exactly [page start, the
 *     requested write position), which is the end of a record fully copied into the buffers;
 *     the rest of a partial last page is written as CLEAR zeros, never as encrypted zeros
 *     (whose keystream would later encrypt the records that fill the page). Rewriting the page
 *     later encrypts the same final bytes under the same counters: the same ciphertext.
 *     The walreceiver writes exactly the bytes it received (a prefix of its upstream's flushed
 *     WAL: final too) and nothing of the page around them.
 *  2. The timeline is in the counter. An old primary and the standby promoted in its place share
 *     the key and write different records at the same LSNs, but on different timelines: the
 *     promoted node's new segment files are named (and so encrypted) with its new timeline,
 *     including the part before the switch point that it re-encrypts from the old file.
 *  3. A new segment is zero-filled in the clear; a recycled or renamed file's old bytes were
 *     encrypted under their old (timeline, position) and are overwritten, never re-encrypted.
 *
 * What a reader sees: bytes written clear (the zero tail of a partial page, never-written pages)
 * decrypt to noise, which the WAL reader rejects like any invalid record (wrong magic, length,
 * prev-link or CRC): the end of WAL. The CRC is over the plaintext record and checked after
 * decryption, so it keeps detecting flipped or torn bytes.
 *
 *  4. A torn tail ends recovery on a new timeline. Bytes the worker wrote past the end of valid
 *     WAL before a crash (a record torn across pages, records after a torn one) were encrypted
 *     under this timeline's counters; crash recovery of an encrypted directory that finds any
 *     non-zero byte there ends on a new timeline instead of writing over them
 *     (torn-wal-tail.ts, database.ts).
 *
 * What is not covered: two nodes promoted to the same timeline (split brain) would share
 * keystream; the failover lease exists to prevent that.
 */
import * as crypto from 'node:crypto';
import { assert } from '../errors.js';

const WAL_CIPHER = 'aes-256-ctr';
const CTR_BLOCK_BYTES = 16;
const SKIP = Buffer.alloc(CTR_BLOCK_BYTES);

/** The CTR counter block for the WAL byte at `lsn` (rounded down to its 16-byte block) on `timeline`. */
export function walCounterBlock(timeline: number, lsn: number, into: Buffer = Buffer.alloc(CTR_BLOCK_BYTES)): Buffer {
  assert(Number.isInteger(timeline) && timeline > 0 && timeline <= 0xffff_ffff, 'timeline in range');
  assert(Number.isSafeInteger(lsn) && lsn >= 0, 'lsn in range');
  into.writeUInt32BE(timeline, 0);
  into.writeUInt32BE(0, 4);
  const block = Math.floor(lsn / CTR_BLOCK_BYTES);
  into.writeUInt32BE(Math.floor(block / 0x1_0000_0000), 8);
  into.writeUInt32BE(block >>> 0, 12);
  return into;
}

export class WalCipher {
  private readonly iv = Buffer.alloc(CTR_BLOCK_BYTES);

  constructor(private readonly key: Buffer) {
    assert(key.length === 32, 'the WAL key is 32 bytes');
  }

  /**
   * Encrypts (or decrypts: CTR is its own inverse) `length` bytes of WAL starting at `lsn` of
   * `timeline`, from `source` at `sourceOffset` into `target` at `targetOffset` (may be the same
   * bytes). One cipher per call: the callers hand it whole writes and whole read windows.
   */
  apply(timeline: number, lsn: number, source: Buffer, sourceOffset: number, length: number, target: Buffer, targetOffset: number): void {
    if (length === 0) return;
    assert(sourceOffset + length <= source.length && targetOffset + length <= target.length, 'WAL cipher range in bounds');
    this.applyToNew(timeline, lsn, source.subarray(sourceOffset, sourceOffset + length)).copy(target, targetOffset);
  }

  /**
   * The same, into a new buffer (the cipher's own output): for a caller that only writes the
   * result out, one copy less than apply() into a buffer of its own.
   */
  applyToNew(timeline: number, lsn: number, bytes: Buffer): Buffer {
    const cipher = crypto.createCipheriv(WAL_CIPHER, this.key, walCounterBlock(timeline, lsn, this.iv));
    const skip = lsn % CTR_BLOCK_BYTES;
    if (skip > 0) cipher.update(SKIP.subarray(0, skip));
    const out = cipher.update(bytes);
    assert(out.length === bytes.length, 'CTR returns as many bytes as it was given');
    return out;
  }

  /** In place. */
  applyInPlace(timeline: number, lsn: number, bytes: Buffer, offset: number, length: number): void {
    this.apply(timeline, lsn, bytes, offset, length, bytes, offset);
  }
}
