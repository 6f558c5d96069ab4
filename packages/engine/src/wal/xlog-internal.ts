/**
 * WAL page and segment layout (PostgreSQL's xlog_internal.h): page headers, segment file names,
 * and LSN arithmetic over pages and segments.
 *
 * Short page header (24 bytes):
 *   0 magic u16 | 2 info u16 | 4 timeline u32 | 8 page address u64 | 16 rem_len u32 | 20 pad
 * Long page header (first page of a segment, 40 bytes): the short one, then
 *   24 system identifier u64 | 32 segment size u32 | 36 page size u32
 */
import { XLOG_BLCKSZ } from '../constants.js';
import { readLsn, writeLsn, type Lsn } from '../lsn.js';

/** Changes whenever the WAL format changes, so that old WAL is never misread. */
export const XLOG_PAGE_MAGIC = 0xd1a5;

export const SIZE_OF_SHORT_PHD = 24;
export const SIZE_OF_LONG_PHD = 40;

/** The page starts with the rest of a record begun on an earlier page. */
export const XLP_FIRST_IS_CONTRECORD = 0x0001;
/** The page has the long header (first page of a segment). */
export const XLP_LONG_HEADER = 0x0002;
export const XLP_ALL_FLAGS = 0x0003;

/** Records start 8-byte aligned (MAXALIGN). */
export const WAL_ALIGN = 8;

export function maxAlign(n: number): number {
  return Math.ceil(n / WAL_ALIGN) * WAL_ALIGN;
}

export interface PageHeader {
  magic: number;
  info: number;
  timeline: number;
  pageAddress: Lsn;
  remLength: number;
  /** Long header fields, present when info has XLP_LONG_HEADER. */
  systemId?: bigint;
  segmentSize?: number;
  pageSize?: number;
}

export function pageHeaderSize(info: number): number {
  return info & XLP_LONG_HEADER ? SIZE_OF_LONG_PHD : SIZE_OF_SHORT_PHD;
}

export function writePageHeader(page: Buffer, offset: number, header: PageHeader): void {
  page.writeUInt16LE(header.magic, offset);
  page.writeUInt16LE(header.info, offset + 2);
  page.writeUInt32LE(header.timeline, offset + 4);
  writeLsn(page, header.pageAddress, offset + 8);
  page.writeUInt32LE(header.remLength, offset + 16);
  page.writeUInt32LE(0, offset + 20);
  if (header.info & XLP_LONG_HEADER) {
    page.writeBigUInt64LE(header.systemId ?? 0n, offset + 24);
    page.writeUInt32LE(header.segmentSize ?? 0, offset + 32);
    page.writeUInt32LE(header.pageSize ?? XLOG_BLCKSZ, offset + 36);
  }
}

export function readPageHeader(page: Buffer, offset = 0): PageHeader {
  const info = page.readUInt16LE(offset + 2);
  const header: PageHeader = {
    magic: page.readUInt16LE(offset),
    info,
    timeline: page.readUInt32LE(offset + 4),
    pageAddress: readLsnLenient(page, offset + 8),
    remLength: page.readUInt32LE(offset + 16),
  };
  if (info & XLP_LONG_HEADER) {
    header.systemId = page.readBigUInt64LE(offset + 24);
    header.segmentSize = page.readUInt32LE(offset + 32);
    header.pageSize = page.readUInt32LE(offset + 36);
  }
  return header;
}

/** Reads an LSN that may be garbage (an invalid page): out-of-range values read as -1. */
function readLsnLenient(page: Buffer, offset: number): Lsn {
  try {
    return readLsn(page, offset);
  } catch {
    return -1 as Lsn;
  }
}

/** Segment number holding `lsn` (XLByteToSeg). */
export function segmentOf(lsn: number, segmentSize: number): number {
  return Math.floor(lsn / segmentSize);
}

/** First LSN of a segment (XLogSegNoOffsetToRecPtr with offset 0). */
export function segmentStart(segNo: number, segmentSize: number): Lsn {
  return (segNo * segmentSize) as Lsn;
}

/** Segment file name: timeline, then segNo split as PostgreSQL splits it (XLogFileName). */
export function xlogFileName(timeline: number, segNo: number, segmentSize: number): string {
  const segmentsPerXLogId = 0x1_0000_0000 / segmentSize;
  const log = Math.floor(segNo / segmentsPerXLogId);
  const seg = segNo % segmentsPerXLogId;
  return hex8(timeline) + hex8(log) + hex8(seg);
}

const SEGMENT_FILE_PATTERN = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/;

/** IsXLogFileName: whether `name` is a segment file's name (any segment size). */
export function isXlogFileName(name: string): boolean {
  return SEGMENT_FILE_PATTERN.test(name);
}

/** Parses a segment file name; null when `name` is not one (IsXLogFileName). */
export function parseXlogFileName(name: string, segmentSize: number): { timeline: number; segNo: number } | null {
  const match = SEGMENT_FILE_PATTERN.exec(name);
  if (match === null) return null;
  const segmentsPerXLogId = 0x1_0000_0000 / segmentSize;
  return {
    timeline: parseInt(match[1]!, 16),
    segNo: parseInt(match[2]!, 16) * segmentsPerXLogId + parseInt(match[3]!, 16),
  };
}

/** The suffix promotion gives the old timeline's last, unfinished segment. */
export const PARTIAL_SUFFIX = '.partial';

/**
 * Parses a partial segment's name (IsPartialXLogFileName): a segment name followed by `.partial`,
 * what promotion leaves of the old timeline's last segment. Null when `name` is not one.
 */
export function parsePartialXlogFileName(name: string, segmentSize: number): { timeline: number; segNo: number } | null {
  if (!name.endsWith(PARTIAL_SUFFIX)) return null;
  return parseXlogFileName(name.slice(0, -PARTIAL_SUFFIX.length), segmentSize);
}

export function hex8(n: number): string {
  return n.toString(16).toUpperCase().padStart(8, '0');
}

/** Start of the page holding `lsn`. */
export function pageStartOf(lsn: number): number {
  return lsn - (lsn % XLOG_BLCKSZ);
}

/** Size of the header of the page starting at `pageStart`. */
export function headerSizeAt(pageStart: number, segmentSize: number): number {
  return pageStart % segmentSize === 0 ? SIZE_OF_LONG_PHD : SIZE_OF_SHORT_PHD;
}

/**
 * Copies the WAL [from, to) out of a ring of WAL buffers (page p in slot p mod the ring's pages)
 * into `into` at `offset`. Consecutive pages are in consecutive slots: one copy up to the ring's
 * end, one after it. The caller knows the pages are still there.
 */
export function copyFromWalRing(ring: Buffer, from: number, to: number, into: Buffer, offset: number): void {
  const ringPages = ring.length / XLOG_BLCKSZ;
  let pos = from;
  while (pos < to) {
    const inPage = pos % XLOG_BLCKSZ;
    const start = (((pos - inPage) / XLOG_BLCKSZ) % ringPages) * XLOG_BLCKSZ + inPage;
    const n = Math.min(to - pos, ring.length - start);
    ring.copy(into, offset + pos - from, start, start + n);
    pos += n;
  }
}
