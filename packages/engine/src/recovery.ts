/**
 * Redo dispatch and the end of crash recovery. `redoRecord` applies one record with its resource
 * manager's redo; `checkEndOfWal` decides whether the place where crash recovery stopped is a
 * torn tail (fine: those records were never acknowledged) or corruption in the middle of the WAL
 * (refuse to start, and say where); `truncateWalAfter` makes the end of valid WAL the end of the
 * WAL before new records are written there. The replay loop itself is in wal-recovery.ts.
 *
 * Only a torn tail may end recovery quietly. The end is corruption when it lies before the end of
 * the latest checkpoint record, or when valid WAL pages follow it further on: acknowledged
 * transactions would otherwise be dropped without a word.
 */
import * as fs from 'node:fs';
import { XLOG_BLCKSZ } from './constants.js';
import type { ControlFileData } from './control-file.js';
import { ErrorCode, WalshipError } from './errors.js';
import { formatLsn, type Lsn } from './lsn.js';
import { redoPageChanges, type RedoBufferPool } from './access/generic-xlog.js';
import { walCipherFor } from './crypto/registry.js';
import { fsyncDirectory, listSegments, segmentPath, walDir } from './wal/wal-files.js';
import { WAL_ALIGN, pageStartOf, segmentOf } from './wal/xlog-internal.js';
import { validatePageHeader, type WalPageSource } from './wal/xlog-reader.js';
import type { ReplayStop, WalRecovery } from './wal-recovery.js';
import { RMGR_NAMES, RmgrId, SIZE_OF_XLOG_RECORD, XLOG_RECORD_CRC_OFFSET, computeRecordCrc, type DecodedRecord } from './wal/xlog-record.js';

/** Applies one record (the resource managers' redo routines). */
export function redoRecord(pool: RedoBufferPool, record: DecodedRecord): void {
  switch (record.rmid) {
    case RmgrId.transaction:
    case RmgrId.storage:
      redoPageChanges(pool, record);
      break;
    case RmgrId.xlog:
      // Checkpoints and end-of-recovery records change no pages.
      break;
    default:
      throw new WalshipError(ErrorCode.walCorrupted, `unknown resource manager ${record.rmid} in record at ${formatLsn(record.lsn)}`);
  }
}

/**
 * Crash recovery ended at `stop`: decides whether that is the end of the WAL (a torn tail, or
 * simply no more WAL) or corruption, and throws in the second case, saying where.
 */
export function checkEndOfWal(recovery: WalRecovery, stop: ReplayStop): void {
  if (stop.kind === 'budget' || stop.kind === 'delay') return;
  if (stop.lsn < recovery.checkpointEndLsn) {
    throw corruption(stop.lsn, stop.message, `It lies before the end of the latest checkpoint record (${formatLsn(recovery.checkpointEndLsn)}).`);
  }
  if (stop.kind === 'needWal') return;
  const validAfter = findValidRecordLaterInPage(recovery.source, stop.lsn) ??
    findValidPageAfter(recovery.source, stop.lsn, recovery.dataDir, recovery.control);
  if (validAfter !== null) {
    throw corruption(stop.lsn, stop.message, `Valid WAL follows at ${formatLsn(validAfter)}, so this is not the end of the WAL: transactions after it would be lost.`);
  }
}

function corruption(lsn: Lsn, message: string, why: string): WalshipError {
  return new WalshipError(ErrorCode.walCorrupted, `WAL is corrupt at ${formatLsn(lsn)}: ${message}`, {
    severity: 'PANIC',
    detail: why,
    hint: 'The node refuses to start rather than lose acknowledged transactions. Restore the data directory from a backup, or take a new base backup from another node. Use walship waldump to inspect the WAL.',
  });
}

/**
 * Looks for a whole record with a valid CRC later in the page where reading stopped: acknowledged
 * records after a damaged one on the last written page would otherwise be dropped as if they were
 * a torn tail. Candidates start 8-byte aligned; a false match needs a 32-bit CRC to agree by chance.
 */
function findValidRecordLaterInPage(source: WalPageSource, lsn: Lsn): Lsn | null {
  const pageStart = pageStartOf(lsn);
  const page = source.readPage(pageStart as Lsn);
  if (page === null) return null;
  for (let offset = (lsn - pageStart) + WAL_ALIGN; offset + SIZE_OF_XLOG_RECORD <= XLOG_BLCKSZ; offset += WAL_ALIGN) {
    const totalLength = page.readUInt32LE(offset);
    if (totalLength < SIZE_OF_XLOG_RECORD + 2 || offset + totalLength > XLOG_BLCKSZ) continue;
    if (RMGR_NAMES[page.readUInt8(offset + 17)] === undefined) continue;
    const record = page.subarray(offset, offset + totalLength);
    if (computeRecordCrc(record, totalLength) === record.readUInt32LE(XLOG_RECORD_CRC_OFFSET)) return (pageStart + offset) as Lsn;
  }
  return null;
}

/**
 * Looks for a valid WAL page (right magic, address and system) after the page holding `lsn`,
 * through the existing segment files of the timeline.
 */
function findValidPageAfter(source: WalPageSource, lsn: Lsn, dataDir: string, control: ControlFileData): Lsn | null {
  const segmentSize = control.walSegmentSize;
  const segments = listSegments(dataDir, segmentSize).filter((s) => s.timeline === control.timeline);
  const lastSegNo = segments.length > 0 ? segments[segments.length - 1]!.segNo : segmentOf(lsn, segmentSize);
  const end = (lastSegNo + 1) * segmentSize;
  for (let page = pageStartOf(lsn) + XLOG_BLCKSZ; page < end; page += XLOG_BLCKSZ) {
    const bytes = source.readPage(page as Lsn);
    if (bytes === null) {
      // A missing segment: skip to the next one.
      page = (segmentOf(page, segmentSize) + 1) * segmentSize - XLOG_BLCKSZ;
      continue;
    }
    if (validatePageHeader(bytes, page as Lsn, segmentSize, control.systemId, 0) === null) return page as Lsn;
  }
  return null;
}

/**
 * Makes the end of valid WAL the end of the WAL: zeroes the rest of its segment and removes
 * later segments of the timeline, so that the remains of a torn tail can never be mistaken for
 * valid WAL once new records are written over the start of it. Returns the partial last page.
 */
export function truncateWalAfter(dataDir: string, control: ControlFileData, endOfWal: Lsn, writtenUpTo?: number): Buffer | undefined {
  const segmentSize = control.walSegmentSize;
  const segNo = segmentOf(endOfWal, segmentSize);
  const offset = endOfWal % segmentSize;
  // What may hold bytes past the end: the whole rest of the segment after a crash (nobody knows
  // what was written), only up to what the walreceiver wrote when a standby is promoted.
  const zeroEnd = writtenUpTo === undefined || segmentOf(writtenUpTo, segmentSize) !== segNo
    ? segmentSize
    : Math.min(segmentSize, Math.ceil((writtenUpTo % segmentSize) / XLOG_BLCKSZ) * XLOG_BLCKSZ);
  let partialPage: Buffer | undefined;
  const file = segmentPath(dataDir, control.timeline, segNo, segmentSize);
  if (fs.existsSync(file)) {
    const fd = fs.openSync(file, 'r+');
    try {
      if (endOfWal % XLOG_BLCKSZ !== 0) {
        partialPage = Buffer.alloc(XLOG_BLCKSZ);
        fs.readSync(fd, partialPage, 0, XLOG_BLCKSZ, offset - (offset % XLOG_BLCKSZ));
        // The WAL buffers take it plaintext: decrypted under the file's timeline.
        walCipherFor(dataDir)?.applyInPlace(control.timeline, endOfWal - (endOfWal % XLOG_BLCKSZ), partialPage, 0, endOfWal % XLOG_BLCKSZ);
        partialPage.fill(0, endOfWal % XLOG_BLCKSZ);
      }
      const zeros = Buffer.alloc(1024 * 1024);
      for (let pos = offset; pos < zeroEnd; ) {
        const n = Math.min(zeros.length, zeroEnd - pos);
        pos += fs.writeSync(fd, zeros, 0, n, pos);
      }
      fs.fdatasyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
  let removed = false;
  for (const segment of listSegments(dataDir, segmentSize)) {
    if (segment.timeline === control.timeline && segment.segNo > segNo) {
      fs.unlinkSync(segmentPath(dataDir, segment.timeline, segment.segNo, segmentSize));
      removed = true;
    }
  }
  if (removed) fsyncDirectory(walDir(dataDir));
  return partialPage;
}
