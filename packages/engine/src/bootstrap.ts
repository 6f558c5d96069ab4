/**
 * `walship init`'s engine part (PostgreSQL's initdb + BootStrapXLOG): makes the data directory,
 * a new system identifier, the first WAL segment with a shutdown checkpoint, the control file,
 * and then the catalog and the default table, logged and checkpointed like any later change.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BLCKSZ, DATA_SUBDIRECTORIES, MAX_KEY_BYTES, MAX_WAL_SEGMENT_SIZE, MIN_WAL_SEGMENT_SIZE, XLOG_BLCKSZ } from './constants.js';
import { CONTROL_VERSION, DbState, writeControlFile, type ControlFileData } from './control-file.js';
import { Database, type LogFunction } from './database.js';
import { ErrorCode, WalshipError } from './errors.js';
import { generateDataKeys, writeKeyFile } from './crypto/key-file.js';
import { registerDataKeys } from './crypto/registry.js';
import type { Lsn } from './lsn.js';
import { encodeCheckPoint } from './wal/record-data.js';
import { RmgrId, SIZE_OF_XLOG_RECORD, XlogInfo } from './wal/xlog-record.js';
import { Xlog } from './wal/xlog.js';

export interface BootstrapOptions {
  walSegmentSize: number;
  /**
   * `init --encrypt`: the cluster key. Random data keys are made, stored wrapped by it in
   * pg_cryptokeys/, and every page and WAL byte from the first one on is encrypted.
   */
  clusterKey?: Buffer;
  log?: LogFunction;
}

export { DATA_SUBDIRECTORIES };

/** A system identifier as PostgreSQL makes one: seconds, microseconds and pid bits. */
export function makeSystemIdentifier(): bigint {
  const nowUs = BigInt(Date.now()) * 1000n + BigInt(Math.floor((performance.now() % 1) * 1000));
  const seconds = nowUs / 1_000_000n;
  const micros = nowUs % 1_000_000n;
  return ((seconds << 32n) | (micros << 12n) | BigInt(process.pid & 0xfff)) & 0xffff_ffff_ffff_ffffn;
}

export function validateSegmentSize(size: number): void {
  if (!Number.isInteger(size) || size < MIN_WAL_SEGMENT_SIZE || size > MAX_WAL_SEGMENT_SIZE || (size & (size - 1)) !== 0) {
    throw new WalshipError(ErrorCode.invalidParameter, `invalid value for parameter "wal_segment_size": ${size}`, {
      detail: 'The WAL segment size must be a power of two between 1 MB and 1 GB.',
      hint: 'For example: --set wal_segment_size=16MB.',
    });
  }
}

export async function bootstrapDataDirectory(dataDir: string, options: BootstrapOptions): Promise<{ systemId: string }> {
  validateSegmentSize(options.walSegmentSize);
  const log = options.log ?? (() => undefined);
  if (fs.existsSync(dataDir)) {
    if (!fs.statSync(dataDir).isDirectory()) {
      throw new WalshipError(ErrorCode.notADataDirectory, `"${dataDir}" exists but is not a directory`, {
        hint: 'Choose another path for the data directory.',
      });
    }
    if (fs.readdirSync(dataDir).length > 0) {
      throw new WalshipError(ErrorCode.invalidParameter, `directory "${dataDir}" exists but is not empty`, {
        hint: `If you want to create a new data directory, either remove or empty the directory "${dataDir}" or run walship init with an argument other than "${dataDir}".`,
      });
    }
  }
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  for (const sub of DATA_SUBDIRECTORIES) fs.mkdirSync(path.join(dataDir, sub), { recursive: true, mode: 0o700 });
  if (options.clusterKey !== undefined) {
    const keys = generateDataKeys();
    writeKeyFile(dataDir, options.clusterKey, keys);
    registerDataKeys(dataDir, keys);
  }

  const systemId = makeSystemIdentifier();
  const segmentSize = options.walSegmentSize;
  // WAL starts at the second segment, as PostgreSQL's does (0/1000000 with 16 MB segments).
  const firstLsn = segmentSize as Lsn;
  const xlog = new Xlog({
    dataDir, segmentSize, walBuffersBytes: 16 * XLOG_BLCKSZ, systemId, timeline: 1, fsync: true,
    insertLsn: firstLsn, prevRecordLsn: 0 as Lsn,
  });
  const redo = xlog.nextRecordStart();
  const now = Date.now();
  const data = encodeCheckPoint({ redo, timeline: 1, prevTimeline: 1, fullPageWrites: true, nextXid: 3, time: now });
  const record = Buffer.alloc(SIZE_OF_XLOG_RECORD + 2 + data.length);
  data.copy(record, SIZE_OF_XLOG_RECORD + 2);
  const { start, end } = xlog.xlogInsertRecord(record, record.length, RmgrId.xlog, XlogInfo.checkpointShutdown, 0);
  await xlog.xlogFlush(end);
  await xlog.shutdown();

  const control: ControlFileData = {
    version: CONTROL_VERSION, systemId, state: DbState.shutdowned, time: now, checkpointLsn: start, redoLsn: redo,
    timeline: 1, prevTimeline: 1, fullPageWrites: true, nextXid: 3, checkpointTime: now, minRecoveryLsn: 0 as Lsn,
    minRecoveryTimeline: 0, backupStartLsn: 0 as Lsn, backupEndLsn: 0 as Lsn, walSegmentSize: segmentSize,
    xlogBlcksz: XLOG_BLCKSZ, blcksz: BLCKSZ, maxKeyBytes: MAX_KEY_BYTES, dataChecksumVersion: 1,
  };
  writeControlFile(dataDir, control);

  const db = await Database.open({
    dataDir, sharedBuffersBytes: 1024 * BLCKSZ, walBuffersBytes: 64 * XLOG_BLCKSZ, fsync: true, fullPageWrites: true,
    synchronousCommit: 'local', memberName: 'initdb', walKeepBytes: 0, log,
  });
  db.bootstrapStore();
  await db.shutdown();
  return { systemId: systemId.toString() };
}
