/**
 * XLogWrite's writes: the pages of the WAL buffers (the shared ring) covering [written, target),
 * into segment files. Both writers use it: the WAL I/O worker, and the main thread when it
 * flushes a commit itself (xlog.ts, `flushOnMainThread`); only the holder of the writer claim
 * (wal-shared.ts) calls it.
 *
 * Whole pages, in as few calls as the ring and segment boundaries allow; the last page may be
 * partial and is rewritten whole later, as PostgreSQL does. In an encrypted data directory it
 * encrypts on the way out (crypto/wal-cipher.ts): exactly the bytes below `target`, which are
 * final (whole records copied into the ring before the request was raised), under the counters of
 * the segment file's timeline; the rest of the last page goes out as clear zeros, because the
 * keystream there will encrypt the records that fill the page later. The ring stays plaintext.
 */
import * as fs from 'node:fs';
import { XLOG_BLCKSZ } from '../constants.js';
import { WalCipher } from '../crypto/wal-cipher.js';
import { segmentOf } from './xlog-internal.js';
import { CtlIndex, type WalSharedViews } from './wal-shared.js';

/** A segment file open for writing, and the timeline in its name (the one it is encrypted under). */
export interface OpenSegment {
  fd: number;
  timeline: number;
}

/**
 * The fdatasync of the open segment, `fd` (either writer's descriptor of it): done when either
 * writer left writes in it (CtlIndex.segmentDirty) and fsync is on; the flag is cleared either
 * way. Called with the writer claim held. Returns whether it synced (for the fsync count).
 */
export function syncSegmentIfDirty(views: WalSharedViews, fd: number): boolean {
  if (Atomics.load(views.ctl, CtlIndex.segmentDirty) === 0) return false;
  const synced = Atomics.load(views.ctl, CtlIndex.fsync) !== 0;
  if (synced) fs.fdatasyncSync(fd);
  Atomics.store(views.ctl, CtlIndex.segmentDirty, 0);
  return synced;
}

/** Where pages are encrypted before they are written: a bounded chunk at a time. */
const ENCRYPT_CHUNK_BYTES = 1024 * 1024;

/** The first and last segment a write of [written, target) touches (whole pages). */
export function segmentsOfWrite(written: number, target: number, segmentSize: number): { first: number; last: number } {
  const firstPage = written - (written % XLOG_BLCKSZ);
  const lastPageEnd = Math.ceil(target / XLOG_BLCKSZ) * XLOG_BLCKSZ;
  return { first: segmentOf(firstPage, segmentSize), last: segmentOf(lastPageEnd - 1, segmentSize) };
}

export class WalPageWriter {
  private readonly ringPages: number;
  private readonly cipher: WalCipher | null;
  private encrypted: Buffer | null = null;

  constructor(private readonly ring: Buffer, private readonly segmentSize: number, walKey: Uint8Array | undefined) {
    this.ringPages = ring.length / XLOG_BLCKSZ;
    this.cipher = walKey === undefined ? null : new WalCipher(Buffer.from(walKey));
  }

  /**
   * Writes the pages covering [written, target); `segment(segNo)` opens (or returns) the file of
   * each segment met, in order. Returns the bytes written. Throws on an I/O error, which the
   * caller must treat as a PANIC.
   */
  writeUpTo(written: number, target: number, segment: (segNo: number) => OpenSegment): number {
    let page = written - (written % XLOG_BLCKSZ);
    const lastPageEnd = Math.ceil(target / XLOG_BLCKSZ) * XLOG_BLCKSZ;
    let bytes = 0;
    while (page < lastPageEnd) {
      const segNo = segmentOf(page, this.segmentSize);
      const segEnd = (segNo + 1) * this.segmentSize;
      const slot = (page / XLOG_BLCKSZ) % this.ringPages;
      const contiguousPages = Math.min(this.ringPages - slot, (Math.min(lastPageEnd, segEnd) - page) / XLOG_BLCKSZ);
      const length = contiguousPages * XLOG_BLCKSZ;
      const file = segment(segNo);
      if (this.cipher === null) {
        let done = 0;
        while (done < length) {
          done += fs.writeSync(file.fd, this.ring, slot * XLOG_BLCKSZ + done, length - done, (page % this.segmentSize) + done);
        }
      } else {
        this.writeEncrypted(this.cipher, file, slot * XLOG_BLCKSZ, length, page, target);
      }
      bytes += length;
      page += length;
    }
    return bytes;
  }

  /**
   * Writes ring bytes [ringOffset, ringOffset + length), WAL [lsn, lsn + length), encrypted up to
   * `finalEnd` and clear zeros after it (see the banner: never a keystream over bytes not final).
   */
  private writeEncrypted(cipher: WalCipher, file: OpenSegment, ringOffset: number, length: number, lsn: number, finalEnd: number): void {
    const encrypted = (this.encrypted ??= Buffer.allocUnsafe(ENCRYPT_CHUNK_BYTES));
    for (let chunkStart = 0; chunkStart < length; chunkStart += ENCRYPT_CHUNK_BYTES) {
      const n = Math.min(ENCRYPT_CHUNK_BYTES, length - chunkStart);
      const chunkLsn = lsn + chunkStart;
      const finalBytes = Math.max(0, Math.min(n, finalEnd - chunkLsn));
      cipher.apply(file.timeline, chunkLsn, this.ring, ringOffset + chunkStart, finalBytes, encrypted, 0);
      encrypted.fill(0, finalBytes, n);
      let done = 0;
      while (done < n) done += fs.writeSync(file.fd, encrypted, done, n - done, (chunkLsn % this.segmentSize) + done);
    }
  }
}
