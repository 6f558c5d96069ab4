/**
 * WAL record layout (after PostgreSQL's xlogrecord.h), its resource managers, and decoding.
 *
 * Header (24 bytes):
 *   0 total length u32 | 4 xid u32 | 8 prev-link u64 | 16 info u8 | 17 rmid u8 | 18 pad u16 | 20 crc u32
 * Body:
 *   u16 number of block references, then each block reference:
 *     u8 flags | u32 relation | u32 block |
 *       BKP_IMAGE: u16 hole offset, u16 hole length, then BLCKSZ - hole length bytes of image
 *       BKP_DELTA: u32 delta length, then fragments (u16 offset, u16 length, bytes)
 *   then the main data: everything up to the total length.
 *
 * The CRC covers the body first and then the header up to the CRC field, as PostgreSQL computes
 * it, because the prev-link is only known when the record is inserted.
 */
import { BLCKSZ } from '../constants.js';
import { crc32c } from '../crc32c.js';
import { readLsn, writeLsn, type Lsn } from '../lsn.js';

export const SIZE_OF_XLOG_RECORD = 24;
export const XLOG_RECORD_CRC_OFFSET = 20;

/** Resource managers: who owns a record's redo. */
export const RmgrId = {
  xlog: 0,
  transaction: 1,
  storage: 2,
} as const;
export type RmgrIdValue = (typeof RmgrId)[keyof typeof RmgrId];

export const RMGR_NAMES: Record<number, string> = {
  [RmgrId.xlog]: 'XLOG',
  [RmgrId.transaction]: 'Transaction',
  [RmgrId.storage]: 'Storage',
};

/** info bits of RM_XLOG_ID records (PostgreSQL's values). */
export const XlogInfo = {
  checkpointShutdown: 0x00,
  checkpointOnline: 0x10,
  noop: 0x20,
  switch: 0x40,
  /** XLOG_FPW_CHANGE: full_page_writes changed; main data is one byte, 1 for on. */
  fpwChange: 0x80,
  endOfRecovery: 0x90,
} as const;

/**
 * xlogInsertRecord's flags (XLogSetRecordFlags). XLOG_MARK_UNIMPORTANT: the record does not
 * count as activity for the checkpoint's idle test (a heartbeat, as PostgreSQL's standby
 * snapshots and XLOG_SWITCH of archive_timeout are).
 */
export const XLOG_MARK_UNIMPORTANT = 0x02;

/** info bits of Transaction records. */
export const XactInfo = {
  commit: 0x00,
} as const;

/** info bits of Storage records. */
export const StorageInfo = {
  vacuum: 0x00,
} as const;

export const BKP_IMAGE = 0x01;
export const BKP_DELTA = 0x02;
/** Block header: flags u8, relation u32, block u32. */
export const SIZE_OF_BLOCK_HEADER = 9;
/** Image header after the block header: hole offset u16, hole length u16. */
export const SIZE_OF_IMAGE_HEADER = 4;
/** Delta header after the block header: delta length u32. */
export const SIZE_OF_DELTA_HEADER = 4;
/** Each delta fragment: offset u16, length u16, then the bytes. */
export const SIZE_OF_FRAGMENT_HEADER = 4;

export interface DecodedBlock {
  relNode: number;
  blockNo: number;
  flags: number;
  /** BKP_IMAGE: where the hole is, and where the image bytes start in the record buffer. */
  holeOffset: number;
  holeLength: number;
  /** Start and length, in the record buffer, of the image bytes or of the delta fragments. */
  dataOffset: number;
  dataLength: number;
}

export interface DecodedRecord {
  /** Start LSN of the record. */
  lsn: Lsn;
  /** End LSN (aligned): where the next record may start, and the commit LSN of a transaction. */
  endLsn: Lsn;
  totalLength: number;
  xid: number;
  prev: Lsn;
  info: number;
  rmid: number;
  /** The whole record (header included); valid until the reader reads the next one. */
  buffer: Buffer;
  blocks: DecodedBlock[];
  mainDataOffset: number;
  mainDataLength: number;
}

/** Computes a record's CRC over `record[0, totalLength)`; the CRC field itself is skipped. */
export function computeRecordCrc(record: Buffer, totalLength: number): number {
  let crc = crc32c(record.subarray(SIZE_OF_XLOG_RECORD, totalLength));
  crc = crc32c(record.subarray(0, XLOG_RECORD_CRC_OFFSET), crc);
  return crc;
}

export function writeRecordHeader(record: Buffer, totalLength: number, xid: number, prev: Lsn, info: number, rmid: number): void {
  record.writeUInt32LE(totalLength, 0);
  record.writeUInt32LE(xid >>> 0, 4);
  writeLsn(record, prev, 8);
  record.writeUInt8(info, 16);
  record.writeUInt8(rmid, 17);
  record.writeUInt16LE(0, 18);
  record.writeUInt32LE(0, 20);
}

/**
 * Decodes the body of a record whose header and CRC were validated. Returns an error message
 * (a value, not an exception) when the body is malformed.
 */
export function decodeRecordBody(buffer: Buffer, totalLength: number, out: DecodedRecord): string | null {
  let pos = SIZE_OF_XLOG_RECORD;
  if (totalLength < pos + 2) return 'record too short for its block count';
  const nBlocks = buffer.readUInt16LE(pos);
  pos += 2;
  out.blocks = [];
  for (let i = 0; i < nBlocks; i++) {
    if (pos + SIZE_OF_BLOCK_HEADER > totalLength) return `block reference ${i} runs past the record`;
    const flags = buffer.readUInt8(pos);
    const relNode = buffer.readUInt32LE(pos + 1);
    const blockNo = buffer.readUInt32LE(pos + 5);
    pos += SIZE_OF_BLOCK_HEADER;
    if (flags === BKP_IMAGE) {
      if (pos + SIZE_OF_IMAGE_HEADER > totalLength) return `block image header ${i} runs past the record`;
      const holeOffset = buffer.readUInt16LE(pos);
      const holeLength = buffer.readUInt16LE(pos + 2);
      pos += SIZE_OF_IMAGE_HEADER;
      if (holeOffset + holeLength > BLCKSZ) return `block image ${i} has an invalid hole`;
      const dataLength = BLCKSZ - holeLength;
      if (pos + dataLength > totalLength) return `block image ${i} runs past the record`;
      out.blocks.push({ relNode, blockNo, flags, holeOffset, holeLength, dataOffset: pos, dataLength });
      pos += dataLength;
    } else if (flags === BKP_DELTA) {
      if (pos + SIZE_OF_DELTA_HEADER > totalLength) return `block delta header ${i} runs past the record`;
      const dataLength = buffer.readUInt32LE(pos);
      pos += SIZE_OF_DELTA_HEADER;
      if (pos + dataLength > totalLength) return `block delta ${i} runs past the record`;
      out.blocks.push({ relNode, blockNo, flags, holeOffset: 0, holeLength: 0, dataOffset: pos, dataLength });
      pos += dataLength;
    } else {
      return `block reference ${i} has invalid flags ${flags}`;
    }
  }
  out.mainDataOffset = pos;
  out.mainDataLength = totalLength - pos;
  return null;
}

/** Reads the header fields into `out` (no validation). */
export function decodeRecordHeader(buffer: Buffer, out: DecodedRecord): void {
  out.totalLength = buffer.readUInt32LE(0);
  out.xid = buffer.readUInt32LE(4);
  out.prev = readLsn(buffer, 8);
  out.info = buffer.readUInt8(16);
  out.rmid = buffer.readUInt8(17);
}
