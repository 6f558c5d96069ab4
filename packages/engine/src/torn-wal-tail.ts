/**
 * The torn tail of an encrypted WAL: bytes written past the end of valid WAL before a crash.
 *
 * WAL is encrypted with AES-256-CTR under (timeline, LSN) (crypto/wal-cipher.ts). Crash recovery
 * ends at the first invalid record; without encryption the records written next simply go over
 * whatever lies beyond (as in PostgreSQL). With encryption that would reuse keystream: if the WAL
 * I/O worker had written bytes there before the crash (a record whose later pages never reached
 * the disk, or whole records after a torn one), they were encrypted under this timeline's
 * counters for those positions, and new, different records written at the same positions on the
 * same timeline would be encrypted under the same counters. Someone holding disk images from
 * before and after could XOR the two ciphertexts and get the XOR of the two plaintexts.
 *
 * How such bytes are recognized: the worker writes only final bytes encrypted and the rest of the
 * last page as CLEAR zeros, and new segment files are zero-filled in the clear. Segments are
 * never recycled or renamed to a later position in this codebase (checkpoints delete old ones and
 * the worker creates new ones zero-filled; promotion's renamed segment has clear zeros past its
 * switch point), so past the end of valid WAL, in the end segment and the later segments of the
 * same timeline, a non-zero byte can only be one the worker wrote encrypted at that position on
 * this timeline. It is conservative: any non-zero byte counts (a torn byte of ciphertext is
 * non-zero but for 1 in 256; a write torn inside one page so that only zeros of it persisted
 * leaves nothing to reuse). When some is found, recovery ends on a new timeline (database.ts),
 * whose counters nothing has used yet; a clean restart, or a crash that left only complete
 * records, finds only zeros and keeps its timeline.
 *
 * A standby's walreceiver needs none of this: it writes only bytes it received, a prefix of its
 * upstream's flushed WAL on the timeline it streams, and what it writes again at the same
 * position after a reconnection is the same upstream WAL, so the same plaintext and ciphertext.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Lsn } from './lsn.js';
import { PARTIAL_SUFFIX, segmentOf } from './wal/xlog-internal.js';
import { fsyncDirectory, listSegments, segmentPath, walDir } from './wal/wal-files.js';

const SCAN_CHUNK_BYTES = 1024 * 1024;
const ZEROS = Buffer.alloc(SCAN_CHUNK_BYTES);

/** Index of the first non-zero byte of `bytes` in [from, to), or -1. */
export function firstNonZeroByte(bytes: Buffer, from = 0, to = bytes.length): number {
  for (let start = from; start < to; start += SCAN_CHUNK_BYTES) {
    const end = Math.min(to, start + SCAN_CHUNK_BYTES);
    // Whole chunks are compared natively; only a chunk that differs is walked byte by byte.
    if (bytes.subarray(start, end).equals(ZEROS.subarray(0, end - start))) continue;
    for (let i = start; i < end; i++) if (bytes[i] !== 0) return i;
  }
  return -1;
}

/**
 * The LSN of the first non-zero byte at or after `endOfWal` in the segment files of `timeline`
 * (the rest of the end segment, then its later segments), or null when all of it is zeros.
 * Reads the raw files: the bytes are looked at, not decrypted.
 */
export function findBytesPastEndOfWal(dataDir: string, timeline: number, endOfWal: Lsn, segmentSize: number): Lsn | null {
  const endSegNo = segmentOf(endOfWal, segmentSize);
  const segNos = listSegments(dataDir, segmentSize)
    .filter((segment) => segment.timeline === timeline && segment.segNo >= endSegNo)
    .map((segment) => segment.segNo);
  const chunk = Buffer.allocUnsafe(SCAN_CHUNK_BYTES);
  for (const segNo of segNos) {
    const segmentStart = segNo * segmentSize;
    const fd = fs.openSync(segmentPath(dataDir, timeline, segNo, segmentSize), 'r');
    try {
      for (let offset = Math.max(0, endOfWal - segmentStart); offset < segmentSize;) {
        const n = fs.readSync(fd, chunk, 0, Math.min(SCAN_CHUNK_BYTES, segmentSize - offset), offset);
        if (n === 0) break;
        const at = firstNonZeroByte(chunk, 0, n);
        if (at >= 0) return (segmentStart + offset + at) as Lsn;
        offset += n;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return null;
}

/**
 * After recovery switched away from `oldTimeline` because of a torn tail, and the new timeline
 * is durable in the control file: the old timeline's switch segment is kept as `<name>.partial`
 * (as promotion keeps it: archived when archiving is on, then removed by checkpoints by its
 * segment number; nothing reads it, the new timeline's file holds its valid WAL) and the old
 * timeline's later segments, which hold nothing but what lay past the end of valid WAL, are
 * removed. Until then they stay, so that a crash during the switch recovers the old timeline
 * again, torn tail and all, and switches again.
 */
export function retireOldTimelineTail(dataDir: string, oldTimeline: number, switchPoint: Lsn, segmentSize: number): void {
  const switchSegNo = segmentOf(switchPoint, segmentSize);
  let changed = false;
  for (const segment of listSegments(dataDir, segmentSize)) {
    if (segment.timeline !== oldTimeline || segment.segNo < switchSegNo) continue;
    const file = segmentPath(dataDir, oldTimeline, segment.segNo, segmentSize);
    const partial = path.join(walDir(dataDir), `${segment.name}${PARTIAL_SUFFIX}`);
    if (segment.segNo === switchSegNo && switchPoint % segmentSize !== 0 && !fs.existsSync(partial)) fs.renameSync(file, partial);
    else fs.unlinkSync(file);
    changed = true;
  }
  if (changed) fsyncDirectory(walDir(dataDir));
}
