/**
 * The control file, `global/control` (PostgreSQL's pg_control): the system identifier, the
 * cluster state, the latest checkpoint and its redo pointer, the timeline, the minimum recovery
 * point and the layout sizes, protected by a CRC-32C.
 *
 * It is replaced atomically: written under a temporary name, fsynced, renamed over the old one,
 * and the directory fsynced. A file whose CRC does not match is never trusted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BLCKSZ, MAX_KEY_BYTES, XLOG_BLCKSZ } from './constants.js';
import { crc32c } from './crc32c.js';
import { ErrorCode, WalshipError } from './errors.js';
import { formatLsn, readLsn, writeLsn, type Lsn } from './lsn.js';

/** Changes whenever the control file or on-disk format changes (PG_CONTROL_VERSION). */
export const CONTROL_VERSION = 1;
const CONTROL_MAGIC = 0x5753_4346; // "WSCF"
/** Fixed size on disk: one sector, so that the write is as close to atomic as it gets. */
export const CONTROL_FILE_SIZE = 512;

export const DbState = {
  startup: 0,
  shutdowned: 1,
  shutdownedInRecovery: 2,
  shutdowning: 3,
  inCrashRecovery: 4,
  inArchiveRecovery: 5,
  inProduction: 6,
} as const;
export type DbStateValue = (typeof DbState)[keyof typeof DbState];

/** As pg_controldata prints the state. */
export const DB_STATE_NAMES: Record<number, string> = {
  [DbState.startup]: 'starting up',
  [DbState.shutdowned]: 'shut down',
  [DbState.shutdownedInRecovery]: 'shut down in recovery',
  [DbState.shutdowning]: 'shutting down',
  [DbState.inCrashRecovery]: 'in crash recovery',
  [DbState.inArchiveRecovery]: 'in archive recovery',
  [DbState.inProduction]: 'in production',
};

export interface ControlFileData {
  version: number;
  systemId: bigint;
  state: DbStateValue;
  /** When the control file was last updated (ms since the epoch). */
  time: number;
  /** Start of the latest checkpoint record. */
  checkpointLsn: Lsn;
  /** Redo pointer of the latest checkpoint: where recovery starts. */
  redoLsn: Lsn;
  timeline: number;
  prevTimeline: number;
  fullPageWrites: boolean;
  nextXid: number;
  /** Time of the latest checkpoint (ms since the epoch). */
  checkpointTime: number;
  /** Recovery must replay at least this far before the data is consistent. */
  minRecoveryLsn: Lsn;
  minRecoveryTimeline: number;
  backupStartLsn: Lsn;
  backupEndLsn: Lsn;
  walSegmentSize: number;
  xlogBlcksz: number;
  blcksz: number;
  maxKeyBytes: number;
  dataChecksumVersion: number;
}

export function controlFilePath(dataDir: string): string {
  return path.join(dataDir, 'global', 'control');
}

export function encodeControlFile(data: ControlFileData): Buffer {
  const b = Buffer.alloc(CONTROL_FILE_SIZE);
  let o = 0;
  b.writeUInt32LE(CONTROL_MAGIC, o); o += 4;
  b.writeUInt32LE(data.version, o); o += 4;
  b.writeBigUInt64LE(data.systemId, o); o += 8;
  b.writeUInt32LE(data.state, o); o += 4;
  b.writeUInt32LE(data.timeline, o); o += 4;
  b.writeDoubleLE(data.time, o); o += 8;
  writeLsn(b, data.checkpointLsn, o); o += 8;
  writeLsn(b, data.redoLsn, o); o += 8;
  b.writeUInt32LE(data.prevTimeline, o); o += 4;
  b.writeUInt32LE(data.fullPageWrites ? 1 : 0, o); o += 4;
  b.writeUInt32LE(data.nextXid >>> 0, o); o += 4;
  b.writeUInt32LE(data.minRecoveryTimeline, o); o += 4;
  b.writeDoubleLE(data.checkpointTime, o); o += 8;
  writeLsn(b, data.minRecoveryLsn, o); o += 8;
  writeLsn(b, data.backupStartLsn, o); o += 8;
  writeLsn(b, data.backupEndLsn, o); o += 8;
  b.writeUInt32LE(data.walSegmentSize, o); o += 4;
  b.writeUInt32LE(data.xlogBlcksz, o); o += 4;
  b.writeUInt32LE(data.blcksz, o); o += 4;
  b.writeUInt32LE(data.maxKeyBytes, o); o += 4;
  b.writeUInt32LE(data.dataChecksumVersion, o); o += 4;
  if (o !== CRC_OFFSET) throw new Error(`control file layout: CRC at ${o}, expected ${CRC_OFFSET}`);
  b.writeUInt32LE(crc32c(b.subarray(0, o)), o);
  return b;
}

/** Where the CRC sits: right after the fields, which it covers. */
const CRC_OFFSET = 116;

export function decodeControlFile(b: Buffer, file = 'global/control'): ControlFileData {
  if (b.length < CONTROL_FILE_SIZE) {
    throw corrupt(file, `the file is ${b.length} bytes, expected ${CONTROL_FILE_SIZE}`);
  }
  if (b.readUInt32LE(0) !== CONTROL_MAGIC) throw corrupt(file, 'it does not start with the control file magic number');
  const version = b.readUInt32LE(4);
  if (version !== CONTROL_VERSION) {
    throw new WalshipError(ErrorCode.wrongVersion, 'database files are incompatible with server', {
      severity: 'FATAL',
      detail: `The database cluster was initialized with control file version ${version}, but the server was compiled with control file version ${CONTROL_VERSION}.`,
      hint: 'It looks like you need to initialize a new data directory with walship init.',
    });
  }
  if (crc32c(b.subarray(0, CRC_OFFSET)) !== b.readUInt32LE(CRC_OFFSET)) {
    throw corrupt(file, 'incorrect checksum in control file');
  }
  let o = 8;
  const systemId = b.readBigUInt64LE(o); o += 8;
  const state = b.readUInt32LE(o) as DbStateValue; o += 4;
  const timeline = b.readUInt32LE(o); o += 4;
  const time = b.readDoubleLE(o); o += 8;
  const checkpointLsn = readLsn(b, o); o += 8;
  const redoLsn = readLsn(b, o); o += 8;
  const prevTimeline = b.readUInt32LE(o); o += 4;
  const fullPageWrites = b.readUInt32LE(o) === 1; o += 4;
  const nextXid = b.readUInt32LE(o); o += 4;
  const minRecoveryTimeline = b.readUInt32LE(o); o += 4;
  const checkpointTime = b.readDoubleLE(o); o += 8;
  const minRecoveryLsn = readLsn(b, o); o += 8;
  const backupStartLsn = readLsn(b, o); o += 8;
  const backupEndLsn = readLsn(b, o); o += 8;
  const walSegmentSize = b.readUInt32LE(o); o += 4;
  const xlogBlcksz = b.readUInt32LE(o); o += 4;
  const blcksz = b.readUInt32LE(o); o += 4;
  const maxKeyBytes = b.readUInt32LE(o); o += 4;
  const dataChecksumVersion = b.readUInt32LE(o); o += 4;
  if (xlogBlcksz !== XLOG_BLCKSZ || blcksz !== BLCKSZ || maxKeyBytes !== MAX_KEY_BYTES) {
    throw new WalshipError(ErrorCode.wrongVersion, 'database files are incompatible with server', {
      severity: 'FATAL',
      detail: `The database cluster was initialized with BLCKSZ ${blcksz}, XLOG_BLCKSZ ${xlogBlcksz} and a key limit of ${maxKeyBytes}, but the server was compiled with ${BLCKSZ}, ${XLOG_BLCKSZ} and ${MAX_KEY_BYTES}.`,
      hint: 'It looks like you need to initialize a new data directory with walship init.',
    });
  }
  return {
    version, systemId, state, time, checkpointLsn, redoLsn, timeline, prevTimeline, fullPageWrites, nextXid,
    checkpointTime, minRecoveryLsn, minRecoveryTimeline, backupStartLsn, backupEndLsn, walSegmentSize, xlogBlcksz,
    blcksz, maxKeyBytes, dataChecksumVersion,
  };
}

function corrupt(file: string, detail: string): WalshipError {
  return new WalshipError(ErrorCode.controlFileCorrupted, `could not read control file "${file}": the file is corrupt`, {
    severity: 'FATAL',
    detail,
    hint: 'The data directory cannot be trusted. Restore it from a backup, or take a new base backup from another node.',
  });
}

/** Reads and validates `DATADIR/global/control`; throws a WalshipError saying what is wrong. */
export function readControlFile(dataDir: string): ControlFileData {
  const file = controlFilePath(dataDir);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      const isDir = fs.existsSync(dataDir);
      throw new WalshipError(ErrorCode.notADataDirectory, isDir
        ? `"${dataDir}" is not a walship data directory`
        : `data directory "${dataDir}" does not exist`, {
        severity: 'FATAL',
        detail: `File "${file}" is missing.`,
        hint: isDir ? 'Is this the right directory? Create a data directory with walship init -D DIR.' : 'Create it with walship init -D DIR.',
      });
    }
    throw new WalshipError(ErrorCode.ioError, `could not read control file "${file}": ${(error as Error).message}`, { severity: 'FATAL' });
  }
  return decodeControlFile(bytes, file);
}

/** UpdateControlFile: replaces the control file atomically. */
export function writeControlFile(dataDir: string, data: ControlFileData): void {
  const file = controlFilePath(dataDir);
  const temp = `${file}.tmp`;
  const fd = fs.openSync(temp, 'w');
  try {
    fs.writeSync(fd, encodeControlFile({ ...data, time: Date.now() }));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, file);
  const dirFd = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dirFd);
  } finally {
    fs.closeSync(dirFd);
  }
}

/** The control file as pg_controldata prints it: [label, value] pairs. */
export function describeControlFile(data: ControlFileData): Array<[string, string]> {
  const time = (ms: number) => (ms > 0 ? new Date(ms).toUTCString() : '');
  return [
    ['pg_control version number', String(data.version)],
    ['Database system identifier', data.systemId.toString()],
    ['Database cluster state', DB_STATE_NAMES[data.state] ?? `unrecognized status code ${data.state}`],
    ['pg_control last modified', time(data.time)],
    ['Latest checkpoint location', formatLsn(data.checkpointLsn)],
    ["Latest checkpoint's REDO location", formatLsn(data.redoLsn)],
    ["Latest checkpoint's TimeLineID", String(data.timeline)],
    ["Latest checkpoint's PrevTimeLineID", String(data.prevTimeline)],
    ["Latest checkpoint's full_page_writes", data.fullPageWrites ? 'on' : 'off'],
    ["Latest checkpoint's NextXID", String(data.nextXid)],
    ['Time of latest checkpoint', time(data.checkpointTime)],
    ['Minimum recovery ending location', formatLsn(data.minRecoveryLsn)],
    ["Min recovery ending loc's timeline", String(data.minRecoveryTimeline)],
    ['Backup start location', formatLsn(data.backupStartLsn)],
    ['Backup end location', formatLsn(data.backupEndLsn)],
    ['Database block size', String(data.blcksz)],
    ['WAL block size', String(data.xlogBlcksz)],
    ['Bytes per WAL segment', String(data.walSegmentSize)],
    ['Maximum key length', String(data.maxKeyBytes)],
    ['Data page checksum version', String(data.dataChecksumVersion)],
  ];
}
