import path from 'node:path';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { asLsn } from '@walship/engine';
import {
  MAX_BACKUP_CHUNK_BYTES,
  MAX_DATA_FILE_READ_BYTES,
  MAX_LISTED_DATA_FILES,
  MAX_LISTED_REPLICATION_SLOTS,
  MAX_PAGE_CHECKSUMS_PER_REQUEST,
  MAX_REPLICATION_FRAME_BYTES,
  MAX_SEND_SIZE,
  MAX_TIMELINE_HISTORY_BYTES,
  PROTOCOL_VERSION,
} from './constants.js';
import { ProtocolError } from './protocol-error.js';
import { BackupStreamChecker } from './replication-backup-stream.js';
import { decodeReplicationFrame, encodeReplicationMessage } from './replication-codec.js';
import {
  KEEPALIVE_BYTES,
  STANDBY_STATUS_UPDATE_BYTES,
  XLOG_DATA_AS_STORED_HEADER_BYTES,
  XLOG_DATA_HEADER_BYTES,
  allocXLogDataFrame,
  allocXLogDataFrameAsStored,
  finishXLogDataFrame,
  writeXLogDataHeader,
} from './replication-frames.js';
import type {
  BackupStreamMessage,
  ReplicationMessage,
  ReplicationSide,
  WalReceiverMessage,
  WalSenderMessage,
  WireReplicationSlot,
} from './replication-messages.js';
import { backupPathProblem, validateReplicationSlotName } from './replication-validate.js';
import { MAX_TIMESTAMP_TZ, getCurrentTimestamp, type TimestampTz } from './timestamp.js';

const rawPackr = new Packr({ useRecords: false, mapsAsObjects: true });
const b = (text: string): Buffer => Buffer.from(text);
const hex = (text: string): Buffer => Buffer.from(text.replace(/[\s|]/g, ''), 'hex');
/** 2023-11-14T22:13:20.123456Z: a send time in microseconds since the epoch. */
const T = 1_700_000_000_123_456 as TimestampTz;
const ZERO_TIME = 0 as TimestampTz;
/** The int64 bytes of T, little-endian. */
const T_BYTES = '40222018240a0600';

/** Offset of the sendTime field in each hot frame, by tag. */
const TIME_OFFSET: Record<number, number> = { 0x6b: 9, 0x72: 25, 0x77: 17, 0x65: 17 };
/** A WAL key identifier's 16 bytes. */
const KEY_ID = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

function writeTime(frame: Buffer, offset: number, value: number): void {
  frame.writeUInt32LE(value % 2 ** 32, offset);
  frame.writeUInt32LE(Math.floor(value / 2 ** 32), offset + 4);
}

/** What a standby sends (decoded by the walsender, side 'sender'). */
const FROM_STANDBY: WalReceiverMessage[] = [
  { type: 'startup', protocolVersion: PROTOCOL_VERSION, user: 'replicator', password: 'pw', applicationName: 's1' },
  { type: 'password', password: 'pw' },
  { type: 'identifySystem', id: 1 },
  { type: 'timelineHistory', id: 2, timeline: 3 },
  { type: 'createReplicationSlot', id: 3, name: 'standby_1' },
  { type: 'createReplicationSlot', id: 4, name: 's'.repeat(63), reserveWal: true },
  { type: 'dropReplicationSlot', id: 5, name: 'standby_1', wait: false },
  { type: 'dropReplicationSlot', id: 6, name: '0_a' },
  { type: 'listReplicationSlots', id: 7 },
  { type: 'startReplication', id: 8, startLsn: '0/3000000', timeline: 1 },
  { type: 'startReplication', id: 9, slot: 'standby_1', startLsn: 'FFFF/FF000000', timeline: 0xffff_ffff },
  { type: 'startReplication', id: 12, startLsn: '0/3000000', timeline: 2, walKeyId: KEY_ID },
  { type: 'startReplication', id: 13, startLsn: '0/3000000', timeline: 2, reportSyncStandby: true },
  { type: 'baseBackup', id: 10, label: 'walship basebackup' },
  { type: 'baseBackup', id: 11, label: '', fast: true, includeWal: false, maxRateBytes: 32 * 1024 },
  { type: 'standbyStatusUpdate', write: asLsn(0x300), flush: asLsn(0x200), apply: asLsn(0), sendTime: T, replyRequested: false },
  { type: 'standbyStatusUpdate', write: asLsn(2 ** 53 - 1), flush: asLsn(2 ** 32), apply: asLsn(1), sendTime: ZERO_TIME, replyRequested: true },
  { type: 'standbyStatusUpdate', write: asLsn(1), flush: asLsn(1), apply: asLsn(1), sendTime: MAX_TIMESTAMP_TZ, replyRequested: false },
  { type: 'copyDone' },
];

const slots: WireReplicationSlot[] = [
  { name: 'a', restartLsn: '0/1000028', walStatus: 'reserved', active: true, activePid: 4242 },
  { name: 'b', restartLsn: null, walStatus: null, active: false, activePid: null },
  { name: 'c', restartLsn: '1/0', walStatus: 'lost', active: false },
];

/** What a walsender sends (decoded by a standby, side 'receiver'). */
const FROM_SENDER: WalSenderMessage[] = [
  { type: 'authRequest', method: 'password' },
  { type: 'authOk', serverVersion: '0.1.0', member: 'primary', role: 'primary' },
  { type: 'error', code: 'invalid_password', message: 'password authentication failed', severity: 'FATAL' },
  { type: 'error', id: 3, code: 'duplicate_object', message: 'replication slot "s" already exists', hint: 'h', severity: 'ERROR' },
  { type: 'result', id: 1, request: 'identifySystem', systemId: '7301234567890123456', timeline: 2, xlogPos: '0/3000148', dbname: null },
  { type: 'result', id: 1, request: 'identifySystem', systemId: '18446744073709551615', timeline: 1, xlogPos: '0/0', dbname: null },
  { type: 'result', id: 2, request: 'timelineHistory', fileName: '00000002.history', content: '1\t0/3000148\tno recovery target specified\n' },
  { type: 'result', id: 3, request: 'createReplicationSlot', slotName: 'standby_1', consistentPoint: '0/3000148' },
  { type: 'result', id: 4, request: 'createReplicationSlot', slotName: 'standby_2', consistentPoint: null },
  { type: 'result', id: 5, request: 'dropReplicationSlot' },
  { type: 'result', id: 6, request: 'listReplicationSlots', slots },
  { type: 'result', id: 7, request: 'listReplicationSlots', slots: [] },
  { type: 'result', id: 8, request: 'startReplication' },
  { type: 'xlogData', dataStart: asLsn(0x1_0000_0028), walEnd: asLsn(0x1_0000_0100), sendTime: T, data: b('abc') },
  { type: 'xlogData', dataStart: asLsn(0), walEnd: asLsn(2 ** 53 - 1), sendTime: ZERO_TIME, data: Buffer.alloc(1) },
  { type: 'xlogData', dataStart: asLsn(0), walEnd: asLsn(1), sendTime: MAX_TIMESTAMP_TZ, data: Buffer.alloc(1) },
  { type: 'xlogData', dataStart: asLsn(0x1_0000_0028), walEnd: asLsn(0x1_0000_0100), sendTime: T, data: b('abc'), encryptedTimeline: 2 },
  { type: 'xlogData', dataStart: asLsn(0), walEnd: asLsn(1), sendTime: ZERO_TIME, data: Buffer.alloc(1), encryptedTimeline: 0xffff_ffff },
  { type: 'keepalive', walEnd: asLsn(0x16b3748), sendTime: T, replyRequested: true },
  { type: 'keepalive', walEnd: asLsn(2 ** 53 - 1), sendTime: MAX_TIMESTAMP_TZ, replyRequested: false },
  { type: 'keepalive', walEnd: asLsn(2 ** 32), sendTime: (T + 1) as TimestampTz, replyRequested: false },
  { type: 'keepalive', walEnd: asLsn(7), sendTime: T, replyRequested: false, syncStandby: true },
  { type: 'keepalive', walEnd: asLsn(7), sendTime: T, replyRequested: true, syncStandby: false },
  { type: 'endOfTimeline', nextTimeline: 2, nextTimelineStartLsn: '0/3000148' },
  { type: 'copyDone' },
  { type: 'backupStart', id: 10, startLsn: '0/2000028', timeline: 1, totalBytes: 123_456, fileCount: 2 },
  { type: 'backupFile', id: 10, path: 'global/control', size: 3, mode: 0o600 },
  { type: 'backupFile', id: 10, path: 'pg_wal/000000010000000000000002', size: 0, mode: 0o777 },
  { type: 'backupChunk', id: 10, path: 'global/control', offset: 0, data: b('xyz') },
  { type: 'backupChunk', id: 10, path: '.hidden/a-b_c.d', offset: 2 ** 40, data: Buffer.alloc(1000, 1) },
  { type: 'backupEnd', id: 10, endLsn: '0/2000100', timeline: 1, backupLabel: 'START WAL LOCATION: 0/2000028\n' },
];

function expectProtocolError(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (error) {
    if (!(error instanceof ProtocolError)) throw new Error(`expected a ProtocolError, got ${String(error)}`);
    expect(error.code).toBe('protocol_violation');
    return error;
  }
  throw new Error('expected a ProtocolError');
}

function label(message: ReplicationMessage): string {
  return 'request' in message ? `${message.type}:${message.request}` : message.type;
}

describe('round trips', () => {
  it.each(FROM_STANDBY.map((m) => [label(m), m] as const))('standby -> walsender: %s', (_name, message) => {
    expect(decodeReplicationFrame(encodeReplicationMessage(message), 'sender')).toEqual(message);
  });

  it.each(FROM_SENDER.map((m) => [label(m), m] as const))('walsender -> standby: %s', (_name, message) => {
    expect(decodeReplicationFrame(encodeReplicationMessage(message), 'receiver')).toEqual(message);
  });

  it('canonicalizes LSN text, drops unknown fields, reads nil as absent', () => {
    const frame = rawPackr.pack({ type: 'startReplication', id: 1, startLsn: '0/0300000a', timeline: 1, slot: null, extra: 1 });
    expect(decodeReplicationFrame(frame, 'sender')).toEqual({ type: 'startReplication', id: 1, startLsn: '0/300000A', timeline: 1 });
    const slot = rawPackr.pack({ type: 'result', id: 1, request: 'listReplicationSlots', slots: [{ name: 'a', active: false }] });
    expect(decodeReplicationFrame(slot, 'receiver')).toEqual({
      type: 'result',
      id: 1,
      request: 'listReplicationSlots',
      slots: [{ name: 'a', restartLsn: null, walStatus: null, active: false }],
    });
  });

  it('carries the largest XLogData and backupChunk', () => {
    // Compared with Buffer.equals: a deep toEqual walks a large Buffer key by key.
    const wal = Buffer.alloc(MAX_SEND_SIZE, 7);
    const xlogData = decodeReplicationFrame(
      encodeReplicationMessage({ type: 'xlogData', dataStart: asLsn(0), walEnd: asLsn(MAX_SEND_SIZE), sendTime: ZERO_TIME, data: wal }),
      'receiver',
    );
    expect(xlogData.type === 'xlogData' && xlogData.data.equals(wal)).toBe(true);
    const data = Buffer.alloc(MAX_BACKUP_CHUNK_BYTES, 1);
    const chunk = decodeReplicationFrame(encodeReplicationMessage({ type: 'backupChunk', id: 1, path: 'a', offset: 0, data }), 'receiver');
    expect(chunk.type === 'backupChunk' && Buffer.isBuffer(chunk.data) && chunk.data.equals(data)).toBe(true);
  });

  it('the largest messages fit in MAX_REPLICATION_FRAME_BYTES', () => {
    const many: WireReplicationSlot[] = Array.from({ length: MAX_LISTED_REPLICATION_SLOTS }, (_, i) => ({
      name: `${'s'.repeat(58)}${String(i).padStart(5, '0')}`,
      restartLsn: '1FFFFF/FFFFFFFF',
      walStatus: 'unreserved',
      active: true,
      activePid: 0x7fff_ffff,
    }));
    const list = encodeReplicationMessage({ type: 'result', id: Number.MAX_SAFE_INTEGER, request: 'listReplicationSlots', slots: many });
    expect(list.length).toBeLessThan(MAX_REPLICATION_FRAME_BYTES);
    const history = encodeReplicationMessage({
      type: 'result',
      id: 1,
      request: 'timelineHistory',
      fileName: 'FFFFFFFF.history',
      content: 'x'.repeat(MAX_TIMELINE_HISTORY_BYTES),
    });
    expect(history.length).toBeLessThan(MAX_REPLICATION_FRAME_BYTES);
    const chunk = encodeReplicationMessage({
      type: 'backupChunk',
      id: Number.MAX_SAFE_INTEGER,
      path: `${`${'a'.repeat(255)}/`.repeat(3)}${'a'.repeat(255)}`,
      offset: Number.MAX_SAFE_INTEGER - MAX_BACKUP_CHUNK_BYTES,
      data: Buffer.alloc(MAX_BACKUP_CHUNK_BYTES),
    });
    expect(chunk.length).toBeLessThan(MAX_REPLICATION_FRAME_BYTES);
  });
});

describe('hot frames', () => {
  it('XLogData golden bytes', () => {
    const frame = encodeReplicationMessage({
      type: 'xlogData',
      dataStart: asLsn(0x1_0000_0028),
      walEnd: asLsn(0x1_0000_0100),
      sendTime: T,
      data: b('abc'),
    });
    expect(frame).toEqual(hex(`77 | 2800000001000000 | 0001000001000000 | ${T_BYTES} | 616263`));
    expect(XLOG_DATA_HEADER_BYTES).toBe(25);
  });

  it('XLogData as stored golden bytes: the same header, then the timeline', () => {
    const frame = encodeReplicationMessage({
      type: 'xlogData', dataStart: asLsn(0x1_0000_0028), walEnd: asLsn(0x1_0000_0100), sendTime: T, data: b('abc'), encryptedTimeline: 0x0102_0304,
    });
    expect(frame).toEqual(hex(`65 | 2800000001000000 | 0001000001000000 | ${T_BYTES} | 04030201 | 616263`));
    expect(XLOG_DATA_AS_STORED_HEADER_BYTES).toBe(29);
  });

  it('one buffer becomes either frame after the read, without a copy', () => {
    for (const timeline of [null, 7]) {
      const buffer = allocXLogDataFrameAsStored(5);
      b('hello').copy(buffer, XLOG_DATA_AS_STORED_HEADER_BYTES);
      const frame = finishXLogDataFrame(buffer, asLsn(100), asLsn(105), T, timeline);
      expect(frame.buffer).toBe(buffer.buffer);
      expect(frame.length).toBe((timeline === null ? XLOG_DATA_HEADER_BYTES : XLOG_DATA_AS_STORED_HEADER_BYTES) + 5);
      const decoded = decodeReplicationFrame(frame, 'receiver');
      expect(decoded).toEqual({
        type: 'xlogData', dataStart: 100, walEnd: 105, sendTime: T, data: b('hello'), ...(timeline === null ? {} : { encryptedTimeline: timeline }),
      });
      expect(decoded.type === 'xlogData' && decoded.data.buffer).toBe(buffer.buffer);
    }
    expectProtocolError(() => allocXLogDataFrameAsStored(0));
    expectProtocolError(() => allocXLogDataFrameAsStored(MAX_SEND_SIZE + 1));
    const buffer = allocXLogDataFrameAsStored(10);
    for (const timeline of [0, -1, 2 ** 32, 1.5, Number.NaN]) expectProtocolError(() => finishXLogDataFrame(buffer, 0, 10, T, timeline));
    expectProtocolError(() => finishXLogDataFrame(buffer, 100, 109, T, 1)); // walEnd before the data's end
    expectProtocolError(() => finishXLogDataFrame(buffer.subarray(0, XLOG_DATA_AS_STORED_HEADER_BYTES), 0, 10, T, 1));
    expectProtocolError(() =>
      encodeReplicationMessage({ type: 'xlogData', dataStart: asLsn(0), walEnd: asLsn(1), sendTime: T, data: b('x'), encryptedTimeline: 0 }),
    );
  });

  it('Keepalive golden bytes', () => {
    const frame = encodeReplicationMessage({ type: 'keepalive', walEnd: asLsn(0x16b3748), sendTime: T, replyRequested: true });
    expect(frame).toEqual(hex(`6b | 48376b0100000000 | ${T_BYTES} | 01`));
    expect(frame.length).toBe(KEEPALIVE_BYTES);
  });

  it('Keepalive flags: syncStandby in bit 2 with bit 1 saying it is there, and nothing for a standby not told', () => {
    const flags = (syncStandby: boolean | undefined, replyRequested = false) =>
      encodeReplicationMessage({ type: 'keepalive', walEnd: asLsn(1), sendTime: T, replyRequested, ...(syncStandby === undefined ? {} : { syncStandby }) })[17];
    expect([flags(undefined), flags(undefined, true), flags(false), flags(false, true), flags(true), flags(true, true)]).toEqual([0, 1, 2, 3, 6, 7]);
    // A frame a walsender that does not tell sends decodes without the field: the standby replies as if waited for.
    const decoded = decodeReplicationFrame(keepalive(), 'receiver');
    expect(decoded.type === 'keepalive' && 'syncStandby' in decoded).toBe(false);
  });

  it('StandbyStatusUpdate golden bytes', () => {
    const frame = encodeReplicationMessage({
      type: 'standbyStatusUpdate',
      write: asLsn(0x300),
      flush: asLsn(0x2_0000_0200),
      apply: asLsn(0),
      sendTime: (2 ** 32 + 1) as TimestampTz,
      replyRequested: false,
    });
    expect(frame).toEqual(hex('72 | 0003000000000000 | 0002000002000000 | 0000000000000000 | 0100000001000000 | 00'));
    expect(frame.length).toBe(STANDBY_STATUS_UPDATE_BYTES);
  });

  it('the sender reads WAL straight into the frame; the receiver gets a view of it', () => {
    const frame = allocXLogDataFrame(5);
    expect(frame.length).toBe(XLOG_DATA_HEADER_BYTES + 5);
    b('hello').copy(frame.subarray(XLOG_DATA_HEADER_BYTES));
    writeXLogDataHeader(frame, asLsn(100), asLsn(105), T);
    const decoded = decodeReplicationFrame(frame, 'receiver');
    if (decoded.type !== 'xlogData') throw new Error('expected XLogData');
    expect(decoded).toMatchObject({ dataStart: 100, walEnd: 105, sendTime: T });
    expect(decoded.data.toString()).toBe('hello');
    expect(decoded.data.buffer).toBe(frame.buffer);
    frame[XLOG_DATA_HEADER_BYTES] = 0x4a; // 'J'
    expect(decoded.data.toString()).toBe('Jello');
  });

  it('a plain Uint8Array frame decodes too, still without a copy', () => {
    const frame = encodeReplicationMessage(FROM_SENDER.find((m) => m.type === 'xlogData')!);
    const view = new Uint8Array(frame.buffer, frame.byteOffset, frame.length);
    const decoded = decodeReplicationFrame(view as Buffer, 'receiver');
    expect(decoded.type === 'xlogData' && decoded.data.buffer === frame.buffer).toBe(true);
  });

  it('the frame helpers refuse what the receiver would refuse', () => {
    expectProtocolError(() => allocXLogDataFrame(0));
    expectProtocolError(() => allocXLogDataFrame(MAX_SEND_SIZE + 1));
    expectProtocolError(() => allocXLogDataFrame(1.5));
    const frame = allocXLogDataFrame(10);
    expectProtocolError(() => writeXLogDataHeader(frame, 100, 109, T)); // walEnd before the data's end
    expectProtocolError(() => writeXLogDataHeader(frame, 2 ** 53, 2 ** 53 + 10, T));
    expectProtocolError(() => writeXLogDataHeader(frame, -1, 10, T));
    expectProtocolError(() => writeXLogDataHeader(frame, 0, 10, Number.NaN as TimestampTz));
    expectProtocolError(() => writeXLogDataHeader(frame, 0, 10, -1 as TimestampTz));
    expectProtocolError(() => writeXLogDataHeader(frame, 0, 10, -0 as TimestampTz));
    // Milliseconds with a fraction (the old format's Date.now() style) are not microseconds.
    expectProtocolError(() => writeXLogDataHeader(frame, 0, 10, 1_700_000_000_000.5 as TimestampTz));
    expectProtocolError(() => writeXLogDataHeader(frame, 0, 10, 2 ** 53 as TimestampTz));
    expectProtocolError(() => writeXLogDataHeader(frame.subarray(0, XLOG_DATA_HEADER_BYTES), 0, 10, T));
    writeXLogDataHeader(frame, 0, 10, T);
    expectProtocolError(() =>
      encodeReplicationMessage({ type: 'keepalive', walEnd: asLsn(1), sendTime: Infinity as TimestampTz, replyRequested: false }),
    );
    expectProtocolError(() =>
      encodeReplicationMessage({ type: 'standbyStatusUpdate', write: asLsn(1), flush: asLsn(1), apply: asLsn(1), sendTime: 0.5 as TimestampTz, replyRequested: false }),
    );
    expectProtocolError(() =>
      encodeReplicationMessage({ type: 'keepalive', walEnd: 1.5 as never, sendTime: ZERO_TIME, replyRequested: false }),
    );
    expectProtocolError(() =>
      encodeReplicationMessage({ type: 'keepalive', walEnd: asLsn(1), sendTime: ZERO_TIME, replyRequested: 1 as never }),
    );
  });

  it('carries the current clock to the microsecond', () => {
    const now = getCurrentTimestamp();
    expect(Number.isSafeInteger(now)).toBe(true);
    // Within a minute of Date.now(): the same epoch and unit, not ms and not since 2000.
    expect(Math.abs(now / 1000 - Date.now())).toBeLessThan(60_000);
    for (const message of [
      { type: 'keepalive', walEnd: asLsn(1), sendTime: now, replyRequested: false },
      { type: 'xlogData', dataStart: asLsn(0), walEnd: asLsn(1), sendTime: now, data: b('x') },
    ] as WalSenderMessage[]) {
      expect(decodeReplicationFrame(encodeReplicationMessage(message), 'receiver')).toEqual(message);
    }
    const reply: WalReceiverMessage = { type: 'standbyStatusUpdate', write: asLsn(1), flush: asLsn(1), apply: asLsn(1), sendTime: now, replyRequested: false };
    expect(decodeReplicationFrame(encodeReplicationMessage(reply), 'sender')).toEqual(reply);
  });

  it('decodes every time below 2^53 microseconds, at each half boundary', () => {
    for (const value of [1, 2 ** 32 - 1, 2 ** 32, 2 ** 52 + 1, 2 ** 53 - 1]) {
      const frame = encodeReplicationMessage({ type: 'keepalive', walEnd: asLsn(1), sendTime: value as TimestampTz, replyRequested: false });
      const decoded = decodeReplicationFrame(frame, 'receiver');
      expect(decoded.type === 'keepalive' && decoded.sendTime).toBe(value);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Malformed frames

const keepalive = (): Buffer => encodeReplicationMessage({ type: 'keepalive', walEnd: asLsn(5), sendTime: T, replyRequested: false });
const status = (): Buffer =>
  encodeReplicationMessage({ type: 'standbyStatusUpdate', write: asLsn(1), flush: asLsn(1), apply: asLsn(1), sendTime: T, replyRequested: false });
const xlog = (): Buffer => encodeReplicationMessage({ type: 'xlogData', dataStart: asLsn(8), walEnd: asLsn(16), sendTime: T, data: b('12345678') });
const xlogAsStored = (): Buffer =>
  encodeReplicationMessage({ type: 'xlogData', dataStart: asLsn(8), walEnd: asLsn(16), sendTime: T, data: b('12345678'), encryptedTimeline: 3 });

function patched(frame: Buffer, patch: (frame: Buffer) => void): Buffer {
  const copy = Buffer.from(frame);
  patch(copy);
  return copy;
}

const BINARY_CASES: [string, ReplicationSide, Buffer][] = [
  ['unknown tag', 'receiver', patched(keepalive(), (f) => (f[0] = 0x78))],
  ['unknown tag (sender)', 'sender', patched(status(), (f) => (f[0] = 0x00))],
  ['hot standby feedback (not supported)', 'sender', patched(status(), (f) => (f[0] = 0x68))],
  ['keepalive too short', 'receiver', keepalive().subarray(0, KEEPALIVE_BYTES - 1)],
  ['keepalive too long', 'receiver', Buffer.concat([keepalive(), Buffer.from([0])])],
  ['tag alone', 'receiver', Buffer.from([0x6b])],
  ['status too short', 'sender', status().subarray(0, STANDBY_STATUS_UPDATE_BYTES - 1)],
  ['status too long', 'sender', Buffer.concat([status(), Buffer.from([0])])],
  ['XLogData without data', 'receiver', xlog().subarray(0, XLOG_DATA_HEADER_BYTES)],
  ['XLogData shorter than its header', 'receiver', xlog().subarray(0, 10)],
  ['XLogData above MAX_SEND_SIZE', 'receiver', Buffer.concat([xlog().subarray(0, XLOG_DATA_HEADER_BYTES), Buffer.alloc(MAX_SEND_SIZE + 1)])],
  ['XLogData walEnd before its data ends', 'receiver', patched(xlog(), (f) => f.writeUInt32LE(15, 9))],
  ['LSN of 2^53', 'receiver', patched(keepalive(), (f) => f.writeUInt32LE(0x20_0000, 5))],
  ['LSN of 2^64 - 1', 'sender', patched(status(), (f) => f.fill(0xff, 9, 17))],
  ['dataStart of 2^53', 'receiver', patched(xlog(), (f) => f.writeUInt32LE(0x20_0000, 5))],
  ['time of 2^53 microseconds', 'receiver', patched(keepalive(), (f) => f.writeUInt32LE(0x20_0000, 13))],
  ['time of 2^63 (the most negative int64)', 'sender', patched(status(), (f) => f.writeUInt32LE(0x8000_0000, 29))],
  ['time of -1', 'receiver', patched(xlog(), (f) => f.fill(0xff, 17, 25))],
  ['float64 ms time (the old frame format) in a keepalive', 'receiver', patched(keepalive(), (f) => f.writeDoubleLE(1_700_000_000_000.5, 9))],
  ['float64 ms time (the old frame format) in a status update', 'sender', patched(status(), (f) => f.writeDoubleLE(1_700_000_000_000.5, 25))],
  ['float64 ms time (the old frame format) in XLogData', 'receiver', patched(xlog(), (f) => f.writeDoubleLE(1_700_000_000_000.5, 17))],
  ['keepalive flags 8', 'receiver', patched(keepalive(), (f) => (f[17] = 8))],
  ['keepalive flags 0xff', 'receiver', patched(keepalive(), (f) => (f[17] = 0xff))],
  ['keepalive syncStandby without the bit saying it is there', 'receiver', patched(keepalive(), (f) => (f[17] = 4))],
  ['replyRequested 0xff', 'sender', patched(status(), (f) => (f[33] = 0xff))],
  ['XLogData sent to a walsender', 'sender', xlog()],
  ['XLogData as stored sent to a walsender', 'sender', xlogAsStored()],
  ['XLogData as stored, timeline 0', 'receiver', patched(xlogAsStored(), (f) => f.writeUInt32LE(0, 25))],
  ['XLogData as stored without data', 'receiver', xlogAsStored().subarray(0, XLOG_DATA_AS_STORED_HEADER_BYTES)],
  ['XLogData as stored cut inside its timeline', 'receiver', xlogAsStored().subarray(0, XLOG_DATA_HEADER_BYTES + 2)],
  ['XLogData as stored walEnd before its data ends', 'receiver', patched(xlogAsStored(), (f) => f.writeUInt32LE(15, 9))],
  ['Keepalive sent to a walsender', 'sender', keepalive()],
  ['StandbyStatusUpdate sent to a standby', 'receiver', status()],
];

const pack = (value: unknown): Buffer => rawPackr.pack(value);

const MSGPACK_CASES: [string, ReplicationSide, unknown][] = [
  ['not a map', 'sender', [1, 2]],
  ['no type', 'receiver', { id: 1 }],
  ['unknown type', 'sender', { type: 'dropDatabase', id: 1 }],
  ['a hot message as msgpack', 'receiver', { type: 'xlogData', dataStart: '0/0', walEnd: '0/1', sendTime: 0, data: b('x') }],
  ['a client request on a replication connection', 'sender', { type: 'get', id: 1, key: b('k') }],
  ['authOk sent to a walsender', 'sender', { type: 'authOk', serverVersion: '1', member: 'm', role: 'primary' }],
  ['a command sent to a standby', 'receiver', { type: 'identifySystem', id: 1 }],
  ['backupFile sent to a walsender', 'sender', { type: 'backupFile', id: 1, path: 'a', size: 1, mode: 0o600 }],
  ['missing id', 'sender', { type: 'identifySystem' }],
  ['timeline 0', 'sender', { type: 'timelineHistory', id: 1, timeline: 0 }],
  ['timeline above u32', 'sender', { type: 'startReplication', id: 1, startLsn: '0/0', timeline: 2 ** 32 }],
  ['numeric startLsn', 'sender', { type: 'startReplication', id: 1, startLsn: 5, timeline: 1 }],
  ['LSN past 2^53', 'sender', { type: 'startReplication', id: 1, startLsn: 'FFFFFFFF/0', timeline: 1 }],
  ['missing startLsn', 'sender', { type: 'startReplication', id: 1, timeline: 1 }],
  ['walKeyId too short', 'sender', { type: 'startReplication', id: 1, startLsn: '0/0', timeline: 1, walKeyId: KEY_ID.subarray(0, 15) }],
  ['walKeyId too long', 'sender', { type: 'startReplication', id: 1, startLsn: '0/0', timeline: 1, walKeyId: Buffer.concat([KEY_ID, b('x')]) }],
  ['walKeyId empty', 'sender', { type: 'startReplication', id: 1, startLsn: '0/0', timeline: 1, walKeyId: Buffer.alloc(0) }],
  ['walKeyId as hex text', 'sender', { type: 'startReplication', id: 1, startLsn: '0/0', timeline: 1, walKeyId: KEY_ID.toString('hex') }],
  ['walKeyId as a number', 'sender', { type: 'startReplication', id: 1, startLsn: '0/0', timeline: 1, walKeyId: 16 }],
  ['reportSyncStandby as a number', 'sender', { type: 'startReplication', id: 1, startLsn: '0/0', timeline: 1, reportSyncStandby: 1 }],
  ['non-boolean reserveWal', 'sender', { type: 'createReplicationSlot', id: 1, name: 'a', reserveWal: 1 }],
  ['maxRateBytes below the minimum', 'sender', { type: 'baseBackup', id: 1, label: 'l', maxRateBytes: 1024 }],
  ['maxRateBytes above the maximum', 'sender', { type: 'baseBackup', id: 1, label: 'l', maxRateBytes: 2 ** 31 }],
  ['label too long', 'sender', { type: 'baseBackup', id: 1, label: 'x'.repeat(1024) }],
  ['result for baseBackup', 'receiver', { type: 'result', id: 1, request: 'baseBackup' }],
  ['client result on a replication connection', 'receiver', { type: 'result', id: 1, request: 'ping' }],
  ['systemId not decimal', 'receiver', { type: 'result', id: 1, request: 'identifySystem', systemId: '0x10', timeline: 1, xlogPos: '0/0' }],
  ['systemId above u64', 'receiver', { type: 'result', id: 1, request: 'identifySystem', systemId: '18446744073709551616', timeline: 1, xlogPos: '0/0' }],
  ['systemId leading zero', 'receiver', { type: 'result', id: 1, request: 'identifySystem', systemId: '01', timeline: 1, xlogPos: '0/0' }],
  ['numeric systemId', 'receiver', { type: 'result', id: 1, request: 'identifySystem', systemId: 7, timeline: 1, xlogPos: '0/0' }],
  ['a dbname', 'receiver', { type: 'result', id: 1, request: 'identifySystem', systemId: '1', timeline: 1, xlogPos: '0/0', dbname: 'postgres' }],
  ['history file name', 'receiver', { type: 'result', id: 1, request: 'timelineHistory', fileName: '../00000002.history', content: '' }],
  ['history file name in lower case', 'receiver', { type: 'result', id: 1, request: 'timelineHistory', fileName: '0000000a.history', content: '' }],
  ['history too long', 'receiver', { type: 'result', id: 1, request: 'timelineHistory', fileName: '00000002.history', content: 'x'.repeat(MAX_TIMELINE_HISTORY_BYTES + 1) }],
  ['slots not an array', 'receiver', { type: 'result', id: 1, request: 'listReplicationSlots', slots: {} }],
  ['slot walStatus', 'receiver', { type: 'result', id: 1, request: 'listReplicationSlots', slots: [{ name: 'a', active: true, walStatus: 'ok' }] }],
  ['slot without active', 'receiver', { type: 'result', id: 1, request: 'listReplicationSlots', slots: [{ name: 'a' }] }],
  ['slot pid', 'receiver', { type: 'result', id: 1, request: 'listReplicationSlots', slots: [{ name: 'a', active: true, activePid: -1 }] }],
  ['too many slots', 'receiver', { type: 'result', id: 1, request: 'listReplicationSlots', slots: new Array(MAX_LISTED_REPLICATION_SLOTS + 1).fill({ name: 'a', active: true }) }],
  ['endOfTimeline without LSN', 'receiver', { type: 'endOfTimeline', nextTimeline: 2 }],
  ['endOfTimeline timeline 0', 'receiver', { type: 'endOfTimeline', nextTimeline: 0, nextTimelineStartLsn: '0/1' }],
  ['backupStart negative size', 'receiver', { type: 'backupStart', id: 1, startLsn: '0/1', timeline: 1, totalBytes: -1, fileCount: 0 }],
  ['backupFile setuid mode', 'receiver', { type: 'backupFile', id: 1, path: 'a', size: 1, mode: 0o4755 }],
  ['backupFile fractional size', 'receiver', { type: 'backupFile', id: 1, path: 'a', size: 1.5, mode: 0o600 }],
  ['backupChunk empty data', 'receiver', { type: 'backupChunk', id: 1, path: 'a', offset: 0, data: Buffer.alloc(0) }],
  ['backupChunk string data', 'receiver', { type: 'backupChunk', id: 1, path: 'a', offset: 0, data: 'abc' }],
  ['backupChunk too large', 'receiver', { type: 'backupChunk', id: 1, path: 'a', offset: 0, data: Buffer.alloc(MAX_BACKUP_CHUNK_BYTES + 1) }],
  ['backupChunk offset out of range', 'receiver', { type: 'backupChunk', id: 1, path: 'a', offset: Number.MAX_SAFE_INTEGER, data: b('x') }],
  ['backupEnd without label', 'receiver', { type: 'backupEnd', id: 1, endLsn: '0/1', timeline: 1 }],
];

describe('malformed frames', () => {
  it.each(BINARY_CASES)('binary: %s', (_name, side, frame) => {
    expectProtocolError(() => decodeReplicationFrame(frame, side));
  });

  it.each(MSGPACK_CASES)('msgpack: %s', (_name, side, value) => {
    expectProtocolError(() => decodeReplicationFrame(pack(value), side));
  });

  it('says which side may send a message', () => {
    expect(expectProtocolError(() => decodeReplicationFrame(xlog(), 'sender')).message).toContain('sent by a walsender');
    expect(expectProtocolError(() => decodeReplicationFrame(status(), 'receiver')).message).toContain('sent by a standby');
    expect(expectProtocolError(() => decodeReplicationFrame(keepalive().fill(0x01, 0, 1), 'receiver')).message).toContain('unknown binary message tag 0x01');
    expect(expectProtocolError(() => decodeReplicationFrame(xlogAsStored(), 'sender')).message).toContain('sent by a walsender');
    expect(expectProtocolError(() => decodeReplicationFrame(patched(xlogAsStored(), (f) => f.writeUInt32LE(0, 25)), 'receiver')).message)
      .toBe('invalid message: XLogData.encryptedTimeline must be a timeline, 1 to 2^32 - 1 (got 0)');
    expect(expectProtocolError(() => decodeReplicationFrame(pack({ type: 'startReplication', id: 1, startLsn: '0/0', timeline: 1, walKeyId: KEY_ID.subarray(0, 4) }), 'sender')).message)
      .toBe('invalid message: startReplication.walKeyId is 4 bytes, less than the minimum of 16');
  });

  it('refuses non-binary, empty, truncated, trailing and oversized frames', () => {
    expectProtocolError(() => decodeReplicationFrame('{"type":"copyDone"}' as unknown as Buffer, 'sender'));
    expectProtocolError(() => decodeReplicationFrame(Buffer.alloc(0), 'sender'));
    const frame = encodeReplicationMessage({ type: 'identifySystem', id: 1 });
    expectProtocolError(() => decodeReplicationFrame(frame.subarray(0, frame.length - 1), 'sender'));
    expectProtocolError(() => decodeReplicationFrame(Buffer.concat([frame, Buffer.from([0xc0])]), 'sender'));
    const big = Buffer.alloc(MAX_REPLICATION_FRAME_BYTES + 1, 0x80);
    expect(expectProtocolError(() => decodeReplicationFrame(big, 'receiver')).message).toContain('maximum replication frame size');
  });

  it('refuses deeply nested msgpack without overflowing the caller', () => {
    const depth = 200_000;
    const frame = Buffer.alloc(depth + 1, 0x81); // fixmap(1) nested: key fixmap(1) ...
    frame[depth] = 0x00;
    expectProtocolError(() => decodeReplicationFrame(frame, 'sender'));
    expectProtocolError(() => decodeReplicationFrame(frame, 'receiver'));
  });

  it('encoding refuses invalid messages with a ProtocolError', () => {
    expectProtocolError(() => encodeReplicationMessage({ type: 'createReplicationSlot', id: 1, name: 'Bad' }));
    expectProtocolError(() => encodeReplicationMessage({ type: 'nope' } as unknown as ReplicationMessage));
    expectProtocolError(() => encodeReplicationMessage(null as unknown as ReplicationMessage));
    expectProtocolError(() => encodeReplicationMessage({ type: 'backupFile', id: 1, path: '../x', size: 0, mode: 0o600 }));
  });
});

describe('replication slot names', () => {
  it('rejects names as PostgreSQL does, with its message and hint', () => {
    for (const name of ['Standby', 'standby-1', 'a.b', 'slot name', 'ä', 'a/b', '../x']) {
      const error = expectProtocolError(() => decodeReplicationFrame(pack({ type: 'createReplicationSlot', id: 1, name }), 'sender'));
      expect(error.message).toBe(`replication slot name "${name}" contains invalid character`);
      expect(error.hint).toBe('Replication slot names may only contain lower case letters, numbers, and the underscore character.');
    }
    const long = expectProtocolError(() => decodeReplicationFrame(pack({ type: 'dropReplicationSlot', id: 1, name: 'a'.repeat(64) }), 'sender'));
    expect(long.message).toMatch(/^replication slot name "a+\.\.\." is too long$/);
    const empty = expectProtocolError(() => decodeReplicationFrame(pack({ type: 'startReplication', id: 1, slot: '', startLsn: '0/0', timeline: 1 }), 'sender'));
    expect(empty.message).toBe('replication slot name "" is too short');
    const escaped = expectProtocolError(() => decodeReplicationFrame(pack({ type: 'dropReplicationSlot', id: 1, name: 'a\nb"' }), 'sender'));
    expect(escaped.message).toBe('replication slot name "a\\nb\\"" contains invalid character');
    expectProtocolError(() => decodeReplicationFrame(pack({ type: 'dropReplicationSlot', id: 1, name: 5 }), 'sender'));
  });

  it('accepts 1 to 63 lower-case letters, digits and underscores', () => {
    for (const name of ['a', '_', '0', 'standby_1', 'z'.repeat(63)]) expect(validateReplicationSlotName(name)).toBeNull();
  });
});

describe('backup paths', () => {
  const TRAVERSALS = [
    '',
    '..',
    '.',
    '../x',
    '../../etc/passwd',
    'base/../../x',
    'base/..',
    'base/./x',
    './x',
    '/etc/passwd',
    '//server/share',
    'a//b',
    'a/',
    'a\\..\\..\\x',
    '..\\x',
    'C:\\Windows',
    'C:/x',
    'c:x',
    'a\u0000/x',
    'a\n',
    '\u2024\u2024/x', // one dot leaders, not dots
    '%2e%2e/x',
    ' ../x',
    '~/x',
    'a'.repeat(256),
    `${'a/'.repeat(511)}ab`,
  ];

  it.each(TRAVERSALS.map((p) => [JSON.stringify(p).slice(0, 60), p] as const))('refuses %s', (_name, evil) => {
    expect(backupPathProblem(evil)).not.toBeNull();
    for (const side of ['receiver'] as const) {
      expectProtocolError(() => decodeReplicationFrame(pack({ type: 'backupFile', id: 1, path: evil, size: 1, mode: 0o600 }), side));
      expectProtocolError(() => decodeReplicationFrame(pack({ type: 'backupChunk', id: 1, path: evil, offset: 0, data: b('x') }), side));
    }
  });

  it('refuses a non-string path', () => {
    for (const evil of [5, b('../x'), ['..', 'x'], { 0: '..' }]) {
      expectProtocolError(() => decodeReplicationFrame(pack({ type: 'backupFile', id: 1, path: evil, size: 1, mode: 0o600 }), 'receiver'));
      expectProtocolError(() => decodeReplicationFrame(pack({ type: 'backupChunk', id: 1, path: evil, offset: 0, data: b('x') }), 'receiver'));
    }
  });

  it('accepts data directory paths', () => {
    for (const ok of ['walship.conf', 'global/control', 'base/16384', 'pg_wal/000000010000000000000002', 'pg_wal/00000002.history', '.a/...', 'a'.repeat(255)]) {
      expect(backupPathProblem(ok)).toBeNull();
    }
  });

  it('whatever it accepts stays inside the target directory (seeded)', () => {
    const random = mulberry32(0x5eed_0100);
    const alphabet = ['.', '.', '/', '/', 'a', 'b', '\\', ':', '\u0000', 'é', '~', ' ', '..', '../'];
    const target = '/target';
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      let candidate = '';
      for (let n = Math.floor(random() * 10); n >= 0; n--) candidate += alphabet[Math.floor(random() * alphabet.length)];
      if (backupPathProblem(candidate) !== null) continue;
      accepted++;
      const resolved = path.posix.resolve(target, candidate);
      expect(resolved.startsWith(`${target}/`)).toBe(true);
      expect(path.posix.normalize(candidate)).toBe(candidate);
      const windows = path.win32.resolve('C:\\target', candidate);
      expect(windows.startsWith('C:\\target\\')).toBe(true);
    }
    expect(accepted).toBeGreaterThan(100);
  });
});

describe('base backup stream order', () => {
  const start: BackupStreamMessage = { type: 'backupStart', id: 7, startLsn: '0/1', timeline: 1, totalBytes: 5, fileCount: 2 };
  const file = (p: string, size: number): BackupStreamMessage => ({ type: 'backupFile', id: 7, path: p, size, mode: 0o600 });
  const chunk = (p: string, offset: number, data: string): BackupStreamMessage => ({ type: 'backupChunk', id: 7, path: p, offset, data: b(data) });
  const end: BackupStreamMessage = { type: 'backupEnd', id: 7, endLsn: '0/2', timeline: 1, backupLabel: 'x' };

  function run(messages: BackupStreamMessage[]): BackupStreamChecker {
    const checker = new BackupStreamChecker(7);
    for (const message of messages) checker.check(message);
    return checker;
  }

  it('accepts a well-formed stream', () => {
    const checker = run([start, file('a', 5), chunk('a', 0, 'ab'), chunk('a', 2, 'cde'), file('b/empty', 0), end]);
    expect(checker.finished).toBe(true);
  });

  it.each([
    ['a file before backupStart', [file('a', 0)]],
    ['two backupStarts', [start, start]],
    ['another request id', [start, { ...file('a', 0), id: 8 }]],
    ['a chunk with no file', [start, chunk('a', 0, 'x')]],
    ['a chunk of another file', [start, file('a', 2), chunk('b', 0, 'x')]],
    ['a gap', [start, file('a', 5), chunk('a', 1, 'x')]],
    ['an overlap', [start, file('a', 5), chunk('a', 0, 'xy'), chunk('a', 1, 'x')]],
    ['a chunk past the size', [start, file('a', 2), chunk('a', 0, 'xyz')]],
    ['a short file', [start, file('a', 2), chunk('a', 0, 'x'), file('b', 0)]],
    ['a short last file', [start, file('a', 2), end]],
    ['a path sent twice', [start, file('a', 0), file('a', 0)]],
    ['a message after backupEnd', [start, end, file('a', 0)]],
  ] as [string, BackupStreamMessage[]][])('refuses %s', (_name, messages) => {
    expectProtocolError(() => run(messages));
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzzing: whatever the bytes, decodeReplicationFrame returns a valid message or throws a
// ProtocolError; anything it accepts encodes again and decodes to itself.

function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function checkDecoders(frame: Buffer): { valid: number; rejected: number } {
  let valid = 0;
  let rejected = 0;
  for (const side of ['sender', 'receiver'] as const) {
    let message: ReplicationMessage;
    try {
      message = decodeReplicationFrame(frame, side);
    } catch (error) {
      if (!(error instanceof ProtocolError)) {
        throw new Error(`decoder (${side}) threw ${String(error)} for frame ${frame.toString('hex').slice(0, 200)}`);
      }
      rejected++;
      continue;
    }
    expect(decodeReplicationFrame(encodeReplicationMessage(message), side)).toEqual(message);
    valid++;
  }
  return { valid, rejected };
}

function mutate(random: () => number, source: Buffer): Buffer {
  let mutated = Buffer.from(source);
  const mutations = 1 + Math.floor(random() * 3);
  for (let m = 0; m < mutations; m++) {
    const at = Math.floor(random() * mutated.length);
    switch (Math.floor(random() * 5)) {
      case 0:
        mutated[at] = Math.floor(random() * 256);
        break;
      case 1:
        mutated[at] = mutated[at]! ^ (1 << Math.floor(random() * 8));
        break;
      case 2:
        mutated = mutated.subarray(0, Math.max(1, at));
        break;
      case 3: {
        // An LSN's or a time's high half just below, at or past 2^53.
        const high = [0x1f_ffff, 0x20_0000, 0xffff_ffff][Math.floor(random() * 3)]!;
        const timeAt = TIME_OFFSET[mutated[0]!];
        if (timeAt !== undefined && random() < 0.5 && mutated.length >= timeAt + 8) mutated.writeUInt32LE(high, timeAt + 4);
        else if (mutated.length >= 9) mutated.writeUInt32LE(high, 5);
        break;
      }
      default:
        mutated = Buffer.concat([mutated.subarray(0, at), Buffer.from([Math.floor(random() * 256)]), mutated.subarray(at)]);
    }
  }
  return mutated;
}

function randomValue(random: () => number, depth: number): unknown {
  const pick = Math.floor(random() * (depth > 3 ? 7 : 10));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return random() < 0.5;
    case 2:
      return Math.floor(random() * 2 ** 40) * (random() < 0.2 ? -1 : 1);
    case 3:
      return [random() * 1000, 2 ** 32, 1, 0, 0o600, 32 * 1024][Math.floor(random() * 6)];
    case 4:
      return ['a', '', '0/10', 'global/control', '../x', 'Bad', '00000002.history', '7301234567890123456', 'reserved', 'x'.repeat(70)][
        Math.floor(random() * 10)
      ];
    case 5:
      return Buffer.alloc(Math.floor(random() * 40), Math.floor(random() * 256));
    case 6:
      return random() < 0.5 ? undefined : -0;
    case 7:
      return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth + 1));
    default: {
      const names = [
        'type', 'id', 'request', 'name', 'slot', 'startLsn', 'timeline', 'path', 'offset', 'data', 'size', 'mode', 'slots',
        'active', 'systemId', 'xlogPos', 'dbname', 'fileName', 'content', 'label', 'nextTimeline', 'nextTimelineStartLsn',
      ];
      const map: Record<string, unknown> = {};
      for (let i = Math.floor(random() * 6); i > 0; i--) map[names[Math.floor(random() * names.length)]!] = randomValue(random, depth + 1);
      return map;
    }
  }
}

describe('fuzzing (seeded)', () => {
  const seeds = [...FROM_STANDBY, ...FROM_SENDER]
    .filter((m) => !(m.type === 'xlogData' && m.data.length > 64) && m.type !== 'backupChunk')
    .map((m) => encodeReplicationMessage(m));
  seeds.push(encodeReplicationMessage({ type: 'backupChunk', id: 1, path: 'base/1', offset: 8, data: b('chunk') }));

  it('random bytes', () => {
    const random = mulberry32(0x5eed_0101);
    const firstBytes = [0x77, 0x65, 0x6b, 0x72, 0x68, 0x80, 0x85, 0xde, 0xdf];
    let rejected = 0;
    for (let i = 0; i < 8000; i++) {
      const frame = Buffer.alloc(1 + Math.floor(random() * 64));
      for (let j = 0; j < frame.length; j++) frame[j] = Math.floor(random() * 256);
      if (random() < 0.7) frame[0] = firstBytes[Math.floor(random() * firstBytes.length)]!;
      rejected += checkDecoders(frame).rejected;
    }
    expect(rejected).toBeGreaterThan(0);
  });

  it('random hot frames of the right lengths', () => {
    const random = mulberry32(0x5eed_0102);
    let valid = 0;
    for (let i = 0; i < 8000; i++) {
      const kind = Math.floor(random() * 4);
      const length = [
        KEEPALIVE_BYTES, STANDBY_STATUS_UPDATE_BYTES, XLOG_DATA_HEADER_BYTES + 1 + Math.floor(random() * 16),
        XLOG_DATA_AS_STORED_HEADER_BYTES + 1 + Math.floor(random() * 16),
      ][kind]!;
      const frame = Buffer.alloc(length);
      for (let j = 0; j < frame.length; j++) frame[j] = random() < 0.5 ? 0 : Math.floor(random() * 256);
      frame[0] = [0x6b, 0x72, 0x77, 0x65][kind]!;
      // Keep some LSNs and times plausible so that valid frames occur too.
      for (let at = 1; at + 8 <= Math.min(length, 25); at += 8) if (random() < 0.7) frame[at + 6] = frame[at + 7] = 0;
      if (random() < 0.5) writeTime(frame, TIME_OFFSET[frame[0]!]!, Math.floor(random() * 2 ** 53));
      if (kind < 2 && random() < 0.7) frame[length - 1] = Math.floor(random() * 2);
      if (kind >= 2 && random() < 0.7) frame.writeUInt32LE(0xffff, 13);
      const result = checkDecoders(frame);
      // An accepted hot frame encodes back to the same bytes: no time or LSN is altered on the way.
      if (result.valid > 0) expect(encodeReplicationMessage(decodeReplicationFrame(frame, kind === 1 ? 'sender' : 'receiver')).equals(frame)).toBe(true);
      valid += result.valid;
    }
    expect(valid).toBeGreaterThan(1000);
  });

  it('mutated valid frames', () => {
    const random = mulberry32(0x5eed_0103);
    let valid = 0;
    let rejected = 0;
    for (let i = 0; i < 12_000; i++) {
      const result = checkDecoders(mutate(random, seeds[Math.floor(random() * seeds.length)]!));
      valid += result.valid;
      rejected += result.rejected;
    }
    expect(valid).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
  });

  it('random msgpack structures', () => {
    const random = mulberry32(0x5eed_0104);
    const types = [
      'identifySystem', 'timelineHistory', 'createReplicationSlot', 'dropReplicationSlot', 'listReplicationSlots',
      'startReplication', 'baseBackup', 'result', 'error', 'endOfTimeline', 'copyDone', 'backupStart', 'backupFile',
      'backupChunk', 'backupEnd', 'startup', 'xlogData', 'x',
    ];
    const requests = ['identifySystem', 'timelineHistory', 'createReplicationSlot', 'dropReplicationSlot', 'listReplicationSlots', 'startReplication'];
    let valid = 0;
    for (let i = 0; i < 8000; i++) {
      const value = randomValue(random, 0);
      if (value !== null && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value) && random() < 0.8) {
        const map = value as Record<string, unknown>;
        map.type = types[Math.floor(random() * types.length)];
        if (random() < 0.6) map.id = Math.floor(random() * 100);
        if (map.type === 'result') map.request = requests[Math.floor(random() * requests.length)];
      }
      valid += checkDecoders(rawPackr.pack(value)).valid;
    }
    expect(valid).toBeGreaterThan(0);
  });

  it('the codec is still sound after hostile input', () => {
    for (const message of FROM_STANDBY) expect(decodeReplicationFrame(encodeReplicationMessage(message), 'sender')).toEqual(message);
    for (const message of FROM_SENDER) expect(decodeReplicationFrame(encodeReplicationMessage(message), 'receiver')).toEqual(message);
  });
});

// ---------------------------------------------------------------------------------------------
// What `walship rewind` and `walship verify` read from a node

describe('rewind and verify commands', () => {
  const requests: WalReceiverMessage[] = [
    { type: 'flushBuffers', id: 1 },
    { type: 'flushBuffers', id: 2, waitForLsn: '0/3000148', timeoutMs: 60_000 },
    { type: 'listDataFiles', id: 3 },
    { type: 'readDataFile', id: 4, path: 'base/16384', offset: 8192 * 7, length: 8192 },
    { type: 'readDataFile', id: 5, path: 'pg_wal/000000020000000000000003', offset: 0, length: MAX_DATA_FILE_READ_BYTES },
    { type: 'pageChecksums', id: 6, relNode: 16384, startBlock: 0, maxBlocks: MAX_PAGE_CHECKSUMS_PER_REQUEST },
  ];
  const results: WalSenderMessage[] = [
    { type: 'result', id: 1, request: 'flushBuffers', lsn: '0/3000148', timeline: 2, role: 'primary' },
    { type: 'result', id: 2, request: 'flushBuffers', lsn: '0/0', timeline: 1, role: 'standby' },
    { type: 'result', id: 3, request: 'listDataFiles', files: [{ path: 'base/1', size: 16384 }, { path: 'global/control', size: 512 }] },
    { type: 'result', id: 3, request: 'listDataFiles', files: [] },
    { type: 'result', id: 4, request: 'readDataFile', path: 'base/16384', offset: 8192, size: 16384, data: b('page') },
    { type: 'result', id: 4, request: 'readDataFile', path: 'base/16384', offset: 16384, size: 16384, data: Buffer.alloc(0) },
    { type: 'result', id: 6, request: 'pageChecksums', relNode: 16384, startBlock: 2, nblocks: 3, checksums: hex('01020304') },
  ];

  it.each(requests.map((m) => [label(m), m] as const))('standby -> walsender: %s', (_name, message) => {
    expect(decodeReplicationFrame(encodeReplicationMessage(message), 'sender')).toEqual(message);
  });

  it.each(results.map((m) => [label(m), m] as const))('walsender -> standby: %s', (_name, message) => {
    expect(decodeReplicationFrame(encodeReplicationMessage(message), 'receiver')).toEqual(message);
  });

  it('the largest answers fit in MAX_REPLICATION_FRAME_BYTES', () => {
    const files = Array.from({ length: MAX_LISTED_DATA_FILES }, (_, i) => ({ path: `pg_wal/${String(i).padStart(24, '0')}`, size: 2 ** 40 }));
    expect(encodeReplicationMessage({ type: 'result', id: Number.MAX_SAFE_INTEGER, request: 'listDataFiles', files }).length).toBeLessThan(MAX_REPLICATION_FRAME_BYTES);
    const read = encodeReplicationMessage({
      type: 'result', id: Number.MAX_SAFE_INTEGER, request: 'readDataFile', path: `${`${'a'.repeat(255)}/`.repeat(3)}${'a'.repeat(255)}`,
      offset: Number.MAX_SAFE_INTEGER - MAX_DATA_FILE_READ_BYTES, size: Number.MAX_SAFE_INTEGER, data: Buffer.alloc(MAX_DATA_FILE_READ_BYTES),
    });
    expect(read.length).toBeLessThan(MAX_REPLICATION_FRAME_BYTES);
    const checksums = encodeReplicationMessage({
      type: 'result', id: 1, request: 'pageChecksums', relNode: 0x1f_ffff, startBlock: 0, nblocks: 0xffff_ffff, checksums: Buffer.alloc(MAX_PAGE_CHECKSUMS_PER_REQUEST * 4),
    });
    expect(checksums.length).toBeLessThan(MAX_REPLICATION_FRAME_BYTES);
  });

  const malformed: [string, ReplicationSide, unknown][] = [
    ['readDataFile climbing out', 'sender', { type: 'readDataFile', id: 1, path: '../etc/passwd', offset: 0, length: 1 }],
    ['readDataFile absolute path', 'sender', { type: 'readDataFile', id: 1, path: '/etc/passwd', offset: 0, length: 1 }],
    ['readDataFile of nothing', 'sender', { type: 'readDataFile', id: 1, path: 'base/1', offset: 0, length: 0 }],
    ['readDataFile above the limit', 'sender', { type: 'readDataFile', id: 1, path: 'base/1', offset: 0, length: MAX_DATA_FILE_READ_BYTES + 1 }],
    ['readDataFile negative offset', 'sender', { type: 'readDataFile', id: 1, path: 'base/1', offset: -1, length: 1 }],
    ['pageChecksums relNode 0', 'sender', { type: 'pageChecksums', id: 1, relNode: 0, startBlock: 0, maxBlocks: 1 }],
    ['pageChecksums relNode above 21 bits', 'sender', { type: 'pageChecksums', id: 1, relNode: 0x20_0000, startBlock: 0, maxBlocks: 1 }],
    ['pageChecksums too many', 'sender', { type: 'pageChecksums', id: 1, relNode: 1, startBlock: 0, maxBlocks: MAX_PAGE_CHECKSUMS_PER_REQUEST + 1 }],
    ['flushBuffers bad LSN', 'sender', { type: 'flushBuffers', id: 1, waitForLsn: 'nope' }],
    ['flushBuffers negative timeout', 'sender', { type: 'flushBuffers', id: 1, timeoutMs: -1 }],
    ['flushBuffers role', 'receiver', { type: 'result', id: 1, request: 'flushBuffers', lsn: '0/1', timeline: 1, role: 'leader' }],
    ['listDataFiles not an array', 'receiver', { type: 'result', id: 1, request: 'listDataFiles', files: {} }],
    ['listDataFiles bad path', 'receiver', { type: 'result', id: 1, request: 'listDataFiles', files: [{ path: 'a/../b', size: 1 }] }],
    ['listDataFiles negative size', 'receiver', { type: 'result', id: 1, request: 'listDataFiles', files: [{ path: 'a', size: -1 }] }],
    ['listDataFiles too many', 'receiver', { type: 'result', id: 1, request: 'listDataFiles', files: new Array(MAX_LISTED_DATA_FILES + 1).fill({ path: 'a', size: 1 }) }],
    ['readDataFile data too large', 'receiver', { type: 'result', id: 1, request: 'readDataFile', path: 'a', offset: 0, size: 1, data: Buffer.alloc(MAX_DATA_FILE_READ_BYTES + 1) }],
    ['pageChecksums ragged', 'receiver', { type: 'result', id: 1, request: 'pageChecksums', relNode: 1, startBlock: 0, nblocks: 1, checksums: Buffer.alloc(5) }],
    ['a rewind command sent to a standby', 'receiver', { type: 'listDataFiles', id: 1 }],
  ];

  it.each(malformed)('refuses %s', (_name, side, value) => {
    expectProtocolError(() => decodeReplicationFrame(pack(value), side));
  });
});
