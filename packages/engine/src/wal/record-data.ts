/**
 * The main data of each kind of record, and how `waldump` describes a record (each resource
 * manager's rm_desc).
 */
import { formatLsn, readLsn, writeLsn, type Lsn } from '../lsn.js';
import { RMGR_NAMES, RmgrId, StorageInfo, XactInfo, XlogInfo, type DecodedRecord } from './xlog-record.js';

export interface CheckPointData {
  redo: Lsn;
  timeline: number;
  prevTimeline: number;
  fullPageWrites: boolean;
  nextXid: number;
  time: number;
}

const CHECKPOINT_BYTES = 29;

export function encodeCheckPoint(c: CheckPointData): Buffer {
  const b = Buffer.alloc(CHECKPOINT_BYTES);
  writeLsn(b, c.redo, 0);
  b.writeUInt32LE(c.timeline, 8);
  b.writeUInt32LE(c.prevTimeline, 12);
  b.writeUInt8(c.fullPageWrites ? 1 : 0, 16);
  b.writeUInt32LE(c.nextXid >>> 0, 17);
  b.writeDoubleLE(c.time, 21);
  return b;
}

export function decodeCheckPoint(record: DecodedRecord): CheckPointData | null {
  if (record.mainDataLength < CHECKPOINT_BYTES) return null;
  const b = record.buffer;
  const o = record.mainDataOffset;
  return {
    redo: readLsn(b, o),
    timeline: b.readUInt32LE(o + 8),
    prevTimeline: b.readUInt32LE(o + 12),
    fullPageWrites: b.readUInt8(o + 16) === 1,
    nextXid: b.readUInt32LE(o + 17),
    time: b.readDoubleLE(o + 21),
  };
}

/** XLOG_FPW_CHANGE's main data: the new full_page_writes. */
export function encodeFpwChange(fullPageWrites: boolean): Buffer {
  return Buffer.from([fullPageWrites ? 1 : 0]);
}

export function decodeFpwChange(record: DecodedRecord): boolean | null {
  if (record.mainDataLength < 1) return null;
  return record.buffer.readUInt8(record.mainDataOffset) === 1;
}

export interface EndOfRecoveryData {
  time: number;
  timeline: number;
  prevTimeline: number;
}

export function encodeEndOfRecovery(e: EndOfRecoveryData): Buffer {
  const b = Buffer.alloc(16);
  b.writeDoubleLE(e.time, 0);
  b.writeUInt32LE(e.timeline, 8);
  b.writeUInt32LE(e.prevTimeline, 12);
  return b;
}

/**
 * The heartbeat (an XLOG_NOOP record with main data): the primary writes one every
 * heartbeat_interval while no other WAL is written, so that every standby's lag tracker and
 * replay delay get a fresh figure on an idle cluster. Main data: the magic, then the primary's
 * clock (ms since the epoch, a double, as commit records carry it). Redo ignores it, as every
 * XLOG record that changes no page; a NOOP without this magic is an ordinary NOOP.
 */
export const HEARTBEAT_MAGIC = 0x57_48_42_54; // "WHBT"
const HEARTBEAT_BYTES = 12;

export interface HeartbeatData {
  time: number;
}

export function encodeHeartbeat(h: HeartbeatData): Buffer {
  const b = Buffer.alloc(HEARTBEAT_BYTES);
  b.writeUInt32LE(HEARTBEAT_MAGIC, 0);
  b.writeDoubleLE(h.time, 4);
  return b;
}

/** The heartbeat in an XLOG_NOOP record, or null when the record is not one. */
export function decodeHeartbeat(record: DecodedRecord): HeartbeatData | null {
  if (record.rmid !== RmgrId.xlog || (record.info & 0xf0) !== XlogInfo.noop || record.mainDataLength < HEARTBEAT_BYTES) return null;
  const b = record.buffer;
  const o = record.mainDataOffset;
  if (b.readUInt32LE(o) !== HEARTBEAT_MAGIC) return null;
  return { time: b.readDoubleLE(o + 4) };
}

/** Commit flags. */
export const XACT_FLAG_REMOTE_APPLY = 0x01;
export const XACT_FLAG_DDL = 0x02;

export interface CommitData {
  time: number;
  operations: number;
  flags: number;
}

const COMMIT_BYTES = 13;

export function encodeCommit(c: CommitData): Buffer {
  const b = Buffer.alloc(COMMIT_BYTES);
  b.writeDoubleLE(c.time, 0);
  b.writeUInt32LE(c.operations, 8);
  b.writeUInt8(c.flags, 12);
  return b;
}

export function decodeCommit(record: DecodedRecord): CommitData | null {
  if (record.mainDataLength < COMMIT_BYTES) return null;
  const b = record.buffer;
  const o = record.mainDataOffset;
  return { time: b.readDoubleLE(o), operations: b.readUInt32LE(o + 8), flags: b.readUInt8(o + 12) };
}

export function encodeVacuum(relNode: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(relNode, 0);
  return b;
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC');
}

/** pg_waldump's description of a record: the operation and its details. */
export function describeRecord(record: DecodedRecord): { rmgr: string; description: string } {
  const rmgr = RMGR_NAMES[record.rmid] ?? `rmgr ${record.rmid}`;
  let description: string;
  const blocks = record.blocks
    .map((b) => `blkref: rel ${b.relNode} blk ${b.blockNo}${b.flags & 1 ? ' FPW' : ''}`)
    .join(', ');
  switch (record.rmid) {
    case RmgrId.xlog: {
      const info = record.info & 0xf0;
      if (info === XlogInfo.checkpointShutdown || info === XlogInfo.checkpointOnline) {
        const c = decodeCheckPoint(record);
        const kind = info === XlogInfo.checkpointShutdown ? 'CHECKPOINT_SHUTDOWN' : 'CHECKPOINT_ONLINE';
        description = c === null ? kind : `${kind} redo ${formatLsn(c.redo)}; tli ${c.timeline}; prev tli ${c.prevTimeline}; fpw ${c.fullPageWrites}; xid ${c.nextXid}; ${isoTime(c.time)}`;
      } else if (info === XlogInfo.endOfRecovery) {
        const b = record.buffer;
        const o = record.mainDataOffset;
        description = record.mainDataLength >= 16
          ? `END_OF_RECOVERY tli ${b.readUInt32LE(o + 8)}; prev tli ${b.readUInt32LE(o + 12)}; time ${isoTime(b.readDoubleLE(o))}`
          : 'END_OF_RECOVERY';
      } else if (info === XlogInfo.fpwChange) {
        const on = decodeFpwChange(record);
        description = on === null ? 'FPW_CHANGE' : `FPW_CHANGE ${on}`;
      } else if (info === XlogInfo.noop) {
        const heartbeat = decodeHeartbeat(record);
        description = heartbeat === null ? 'NOOP' : `NOOP heartbeat ${isoTime(heartbeat.time)}`;
      } else if (info === XlogInfo.switch) {
        description = 'SWITCH';
      } else {
        description = `UNKNOWN (${info})`;
      }
      break;
    }
    case RmgrId.transaction: {
      const c = decodeCommit(record);
      const kind = (record.info & 0xf0) === XactInfo.commit ? 'COMMIT' : `UNKNOWN (${record.info})`;
      description = c === null ? kind : `${kind} ${isoTime(c.time)}; ops ${c.operations}${c.flags & XACT_FLAG_DDL ? '; ddl' : ''}`;
      break;
    }
    case RmgrId.storage:
      description = (record.info & 0xf0) === StorageInfo.vacuum && record.mainDataLength >= 4
        ? `VACUUM rel ${record.buffer.readUInt32LE(record.mainDataOffset)}`
        : `UNKNOWN (${record.info})`;
      break;
    default:
      description = 'UNKNOWN';
  }
  return { rmgr, description: blocks.length > 0 ? `${description}, ${blocks}` : description };
}
