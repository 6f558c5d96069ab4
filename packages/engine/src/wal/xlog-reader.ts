/**
 * The WAL reader (PostgreSQL's xlogreader.c): reads records one after another from pages that a
 * caller-supplied source returns, validating page headers, continuation records, lengths,
 * prev-links and CRCs. It has no server dependencies and does its I/O through the source, so that
 * recovery, the walsender and `walship waldump` share it. Errors are returned as values.
 */
import { MAX_RECORD_BYTES, XLOG_BLCKSZ } from '../constants.js';
import { formatLsn, type Lsn } from '../lsn.js';
import {
  XLOG_PAGE_MAGIC,
  XLP_ALL_FLAGS,
  XLP_FIRST_IS_CONTRECORD,
  XLP_LONG_HEADER,
  headerSizeAt,
  maxAlign,
  pageHeaderSize,
  readPageHeader,
} from './xlog-internal.js';
import {
  RMGR_NAMES,
  SIZE_OF_XLOG_RECORD,
  XLOG_RECORD_CRC_OFFSET,
  computeRecordCrc,
  decodeRecordBody,
  decodeRecordHeader,
  type DecodedRecord,
} from './xlog-record.js';

/** Returns the WAL page starting at `pageLsn` (XLOG_BLCKSZ bytes), or null when it is not available. */
export interface WalPageSource {
  readPage(pageLsn: Lsn): Buffer | null;
  /**
   * Where valid WAL ends for now (on a standby, the walreceiver's flushed position): a record
   * reaching past it is "not yet received", not invalid. Absent: the files are complete.
   */
  availableEnd?(): number;
  /**
   * Bumped whenever a page returned earlier may no longer be what its memory holds (the source
   * reused its buffer, or was told the files changed). With it, the reader keeps a whole page it
   * validated and reads the page's next records without asking again.
   */
  readonly generation?: number;
}

export type ReadResult =
  | { ok: true; record: DecodedRecord }
  | {
    ok: false; lsn: Lsn; message: string;
    /** No page there, or not received yet: ran out of WAL rather than hit bad WAL. */
    missing: boolean;
    /** When missing: the end of the bytes needed to make progress (XLogPageRead's RecPtr + reqLen). */
    neededLsn: Lsn;
  };

export interface XLogReaderOptions {
  segmentSize: number;
  /** When given, long page headers must carry this system identifier. */
  systemId?: bigint;
  source: WalPageSource;
}

export class XLogReader {
  private readonly segmentSize: number;
  private readonly systemId: bigint | undefined;
  private readonly source: WalPageSource;
  private nextLsn: Lsn = 0 as Lsn;
  private expectedPrev: Lsn | null = null;
  /** The highest timeline seen in a page header. */
  private latestTimeline = 0;
  /**
   * The last page read going forward and its timeline (latestPagePtr / latestPageTLI): timelines
   * never go back from one page to a later one, but a page read again (redo starts before the
   * checkpoint record's last page) may be older than the newest already seen.
   */
  private latestPagePtr = -1;
  private latestPageTli = 0;
  private scratch: Buffer = Buffer.allocUnsafe(64 * 1024);
  /** The last record read; reused to keep the hot loop free of allocations. */
  private readonly record: DecodedRecord = {
    lsn: 0 as Lsn, endLsn: 0 as Lsn, totalLength: 0, xid: 0, prev: 0 as Lsn, info: 0, rmid: 0,
    buffer: Buffer.alloc(0), blocks: [], mainDataOffset: 0, mainDataLength: 0,
  };

  constructor(options: XLogReaderOptions) {
    this.segmentSize = options.segmentSize;
    this.systemId = options.systemId;
    this.source = options.source;
  }

  /** Positions the reader at a record start; `prev` is the expected prev-link, when known. */
  beginRead(lsn: Lsn, prev: Lsn | null = null): void {
    this.nextLsn = lsn;
    this.expectedPrev = prev;
  }

  /** Where the next record starts (after the last one read). */
  get endOfLastRecord(): Lsn {
    return this.nextLsn;
  }

  /** The highest timeline seen in a page header so far. */
  get timeline(): number {
    return this.latestTimeline;
  }

  readRecord(): ReadResult {
    const available = this.source.availableEnd?.() ?? Number.POSITIVE_INFINITY;
    let lsn = this.nextLsn;
    // The length field must have arrived before it can be trusted (XLogPageRead reads only up
    // to the walreceiver's flush position).
    const lengthEnd = lsn + (lsn % XLOG_BLCKSZ === 0 ? headerSizeAt(lsn, this.segmentSize) : 0) + 4;
    if (lengthEnd > available) {
      return new NotReceivedYet(lsn as Lsn, lengthEnd as Lsn);
    }
    if (lsn % XLOG_BLCKSZ === 0) {
      // A record never starts inside a page header: skip it, and check there is no continuation.
      const page = this.readValidPage(lsn as Lsn, available);
      if (typeof page === 'string') return this.fail(lsn, page, this.lastMissing, lengthEnd);
      const info = page.readUInt16LE(2);
      if (info & XLP_FIRST_IS_CONTRECORD) {
        return this.fail(lsn, `contrecord flag set on a page where a record starts, at ${formatLsn(lsn)}`, false);
      }
      lsn = (lsn + pageHeaderSize(info)) as Lsn;
    }
    const pageStart = lsn - (lsn % XLOG_BLCKSZ);
    const page = this.readValidPage(pageStart as Lsn, available);
    if (typeof page === 'string') return this.fail(lsn, page, this.lastMissing, lengthEnd);
    let offset = lsn - pageStart;
    const totalLength = page.readUInt32LE(offset);
    if (totalLength < SIZE_OF_XLOG_RECORD) {
      return this.fail(lsn, `invalid record length at ${formatLsn(lsn)}: expected at least ${SIZE_OF_XLOG_RECORD}, got ${totalLength}`, false);
    }
    if (totalLength > MAX_RECORD_BYTES + 1024 * 1024) {
      return this.fail(lsn, `record length ${totalLength} at ${formatLsn(lsn)} too long`, false);
    }

    const end = recordEnd(lsn, totalLength, this.segmentSize);
    if (end > available) {
      return this.fail(lsn, `record at ${formatLsn(lsn)} has not been received in full yet`, true, end);
    }

    let buffer: Buffer;
    let cursor = lsn + 0;
    const availableHere = XLOG_BLCKSZ - offset;
    if (totalLength <= availableHere) {
      buffer = page.subarray(offset, offset + totalLength);
      cursor += totalLength;
    } else {
      if (this.scratch.length < totalLength) this.scratch = Buffer.allocUnsafe(Math.max(totalLength, this.scratch.length * 2));
      buffer = this.scratch.subarray(0, totalLength);
      page.copy(buffer, 0, offset, XLOG_BLCKSZ);
      let gathered = availableHere;
      let nextPage = pageStart + XLOG_BLCKSZ;
      while (gathered < totalLength) {
        const contPage = this.readValidPage(nextPage as Lsn, available);
        if (typeof contPage === 'string') return this.fail(lsn, contPage, this.lastMissing, end);
        const info = contPage.readUInt16LE(2);
        const remLength = contPage.readUInt32LE(16);
        if (!(info & XLP_FIRST_IS_CONTRECORD)) {
          return this.fail(lsn, `there is no contrecord flag at ${formatLsn(nextPage)}`, false);
        }
        if (remLength !== totalLength - gathered) {
          return this.fail(lsn, `invalid contrecord length ${remLength} (expected ${totalLength - gathered}) at ${formatLsn(nextPage)}`, false);
        }
        const headerSize = pageHeaderSize(info);
        const take = Math.min(totalLength - gathered, XLOG_BLCKSZ - headerSize);
        contPage.copy(buffer, gathered, headerSize, headerSize + take);
        gathered += take;
        cursor = nextPage + headerSize + take;
        nextPage += XLOG_BLCKSZ;
      }
      offset = 0;
    }

    const record = this.record;
    record.lsn = lsn;
    record.buffer = buffer;
    decodeRecordHeader(buffer, record);
    if (this.expectedPrev !== null && record.prev !== this.expectedPrev) {
      return this.fail(lsn, `record with incorrect prev-link ${formatLsn(record.prev)} at ${formatLsn(lsn)}`, false);
    }
    if (RMGR_NAMES[record.rmid] === undefined) {
      return this.fail(lsn, `invalid resource manager ID ${record.rmid} at ${formatLsn(lsn)}`, false);
    }
    const crc = computeRecordCrc(buffer, totalLength);
    if (crc !== buffer.readUInt32LE(XLOG_RECORD_CRC_OFFSET)) {
      return this.fail(lsn, `incorrect resource manager data checksum in record at ${formatLsn(lsn)}`, false);
    }
    const bodyError = decodeRecordBody(buffer, totalLength, record);
    if (bodyError !== null) return this.fail(lsn, `${bodyError}, in record at ${formatLsn(lsn)}`, false);

    record.endLsn = maxAlign(cursor) as Lsn;
    this.nextLsn = record.endLsn;
    this.expectedPrev = lsn;
    return { ok: true, record };
  }

  private lastMissing = false;
  /**
   * The last page validated, while the source's generation says its memory still holds it, and
   * the available end when it was read. A page wholly below that end is kept; a partial one (a
   * standby's newest page, the walreceiver still writing into it) only while the end has not
   * moved: what was read of it is then all there is, and a commit's several records on it need
   * one read, not one each. Once the end moves, the bytes past the old end are read again.
   */
  private cachedPageLsn = -1;
  private cachedGeneration = -1;
  private cachedAvailable = -1;
  private cachedPage: Buffer | null = null;

  /** Reads and validates a page header (XLogReaderValidatePageHeader); an error message on failure. */
  private readValidPage(pageLsn: Lsn, available: number): Buffer | string {
    if (pageLsn === this.cachedPageLsn && this.cachedPage !== null && this.source.generation === this.cachedGeneration &&
        (pageLsn + XLOG_BLCKSZ <= this.cachedAvailable || available === this.cachedAvailable)) {
      this.lastMissing = false;
      return this.cachedPage;
    }
    const page = this.source.readPage(pageLsn);
    this.lastMissing = page === null;
    if (page === null) return `could not read WAL page at ${formatLsn(pageLsn)}: no WAL there`;
    // Only pages later than the last one read are held to its timeline (XLogReaderValidatePageHeader).
    const error = validatePageHeader(page, pageLsn, this.segmentSize, this.systemId, pageLsn > this.latestPagePtr ? this.latestPageTli : 0);
    if (error !== null) return error;
    const timeline = page.readUInt32LE(4);
    if (timeline > this.latestTimeline) this.latestTimeline = timeline;
    this.latestPagePtr = pageLsn;
    this.latestPageTli = timeline;
    const generation = this.source.generation;
    if (generation !== undefined) {
      this.cachedPageLsn = pageLsn;
      this.cachedGeneration = generation;
      this.cachedAvailable = available;
      this.cachedPage = page;
    } else {
      this.cachedPage = null;
    }
    return page;
  }

  private fail(lsn: number, message: string, missing: boolean, neededLsn = lsn + 1): ReadResult {
    return { ok: false, lsn: lsn as Lsn, message, missing, neededLsn: neededLsn as Lsn };
  }
}

/**
 * Where a streaming standby's replay stops after every batch (the next record has not arrived):
 * its message is formatted only when someone reads it, which is rare.
 */
class NotReceivedYet {
  readonly ok = false;
  readonly missing = true;
  constructor(readonly lsn: Lsn, readonly neededLsn: Lsn) {}

  get message(): string {
    return `WAL at ${formatLsn(this.lsn)} has not been received yet`;
  }
}

/** The LSN where a record of `totalLength` starting at `lsn` ends, page headers included. */
function recordEnd(lsn: number, totalLength: number, segmentSize: number): number {
  let pos = lsn;
  let remaining = totalLength;
  for (;;) {
    const pageEnd = pos - (pos % XLOG_BLCKSZ) + XLOG_BLCKSZ;
    if (remaining <= pageEnd - pos) return pos + remaining;
    remaining -= pageEnd - pos;
    pos = pageEnd + headerSizeAt(pageEnd, segmentSize);
  }
}

/** Validates a WAL page header; returns an error message, or null when it is valid. */
export function validatePageHeader(page: Buffer, pageLsn: Lsn, segmentSize: number, systemId: bigint | undefined, minTimeline: number): string | null {
  const header = readPageHeader(page);
  const offsetInSegment = pageLsn % segmentSize;
  if (header.magic !== XLOG_PAGE_MAGIC) {
    return `invalid magic number ${header.magic.toString(16).toUpperCase().padStart(4, '0')} in WAL page at ${formatLsn(pageLsn)}, offset ${offsetInSegment}`;
  }
  if ((header.info & ~XLP_ALL_FLAGS) !== 0) {
    return `invalid info bits ${header.info.toString(16).toUpperCase().padStart(4, '0')} in WAL page at ${formatLsn(pageLsn)}`;
  }
  const isSegmentStart = offsetInSegment === 0;
  if (isSegmentStart !== ((header.info & XLP_LONG_HEADER) !== 0)) {
    return `${isSegmentStart ? 'missing' : 'unexpected'} long header in WAL page at ${formatLsn(pageLsn)}`;
  }
  if (header.pageAddress !== pageLsn) {
    return `unexpected pageaddr ${header.pageAddress < 0 ? 'invalid' : formatLsn(header.pageAddress)} in WAL page at ${formatLsn(pageLsn)}`;
  }
  if (header.info & XLP_LONG_HEADER) {
    if (systemId !== undefined && header.systemId !== systemId) {
      return `WAL file is from different database system: WAL file database system identifier is ${header.systemId}, pg_control database system identifier is ${systemId}`;
    }
    if (header.segmentSize !== segmentSize) return `WAL file is from different database system: incorrect segment size in page header`;
    if (header.pageSize !== XLOG_BLCKSZ) return `WAL file is from different database system: incorrect XLOG_BLCKSZ in page header`;
  }
  if (header.timeline === 0 || header.timeline < minTimeline) {
    return `out-of-sequence timeline ID ${header.timeline} (after ${minTimeline}) in WAL page at ${formatLsn(pageLsn)}`;
  }
  return null;
}
