/**
 * The hot messages of the CopyBoth stream — XLogData, Keepalive, StandbyStatusUpdate — as
 * binary frames: an ASCII tag byte, a fixed little-endian header, and for XLogData the WAL bytes
 * exactly as they are in the segment files, never re-encoded. PostgreSQL's CopyData payloads
 * ('w', 'k', 'r') with two changes: little-endian (the engine's own on-disk order, so `writeLsn`
 * and `readLsn` serve both), and times counted from the Unix epoch instead of 2000-01-01. Times
 * are 64-bit integer microseconds as in PostgreSQL (a TimestampTz, see timestamp.ts), so that
 * lags computed from them keep their microseconds.
 *
 *   XLogData            'w' | u64 dataStart | u64 walEnd | i64 sendTime | WAL bytes
 *   XLogData, as stored 'e' | u64 dataStart | u64 walEnd | i64 sendTime | u32 timeline | WAL bytes
 *   Keepalive           'k' | u64 walEnd | i64 sendTime | u8 flags
 *   StandbyStatusUpdate 'r' | u64 write | u64 flush | u64 apply | i64 sendTime | u8 replyRequested
 *
 * 'e' is walship's own: WAL bytes as stored in an encrypted segment file, ciphertext of the WAL
 * cipher under `timeline` (the timeline in the file's name, 1 to 2^32 - 1) at their own positions.
 * A walsender sends it only to a standby that asked for it with its WAL key identifier
 * (`startReplication.walKeyId`), so a standby that does not know the tag never receives one.
 * Its header is the 'w' header and four more bytes, so that one buffer can become either frame
 * after the WAL is read into it (see `allocXLogDataFrameAsStored`).
 *
 * Why a tag byte cannot be mistaken for msgpack: every control message is a msgpack map, and a
 * msgpack map's first byte is 0x80-0x8f (fixmap), 0xde (map 16) or 0xdf (map 32). Bytes 0x00 to
 * 0x7f are positive fixints, never the start of a map; every ASCII tag is in that range. So the
 * first byte alone routes a frame: below 0x80 binary, otherwise msgpack.
 *
 * A u64 LSN is written as two u32 halves and must be below 2^53 (the engine's `Lsn` is a safe
 * integer); a larger one is a malformed frame. A time is written the same way: a non-negative
 * int64 below 2^53 µs (the year 2255), so a negative one, or the float64 milliseconds of the
 * old frame format (whose exponent bits make it far larger), is refused rather than misread.
 * `replyRequested` must be 0 or 1. A Keepalive's flags byte is `replyRequested` in bit 0 and, for
 * a standby that asked for it (`startReplication.reportSyncStandby`), `syncStandby` in bit 2 with
 * bit 1 saying it is there: 0 to 7, bit 2 only with bit 1. Without bit 1 the byte is 0 or 1, what
 * a standby that did not ask accepts.
 *
 * The sender's hot path, without copying WAL:
 *
 *   const frame = allocXLogDataFrame(length);
 *   readWal(frame.subarray(XLOG_DATA_HEADER_BYTES), ...);  // straight into the frame
 *   writeXLogDataHeader(frame, dataStart, walEnd, getCurrentTimestamp());
 *   socket.send(frame);
 *
 * and the receiver's: `decodeReplicationFrame(frame, 'receiver')` returns `data` as a view of the
 * frame.
 */
import { readLsn, writeLsn } from '@walship/engine/lsn';
import type { Lsn } from '@walship/engine/lsn';
import { MAX_SEND_SIZE } from './constants.js';
import { ProtocolError } from './protocol-error.js';
import type { KeepaliveMessage, StandbyStatusUpdateMessage, XLogDataMessage } from './replication-messages.js';
import { isTimestampTz, type TimestampTz } from './timestamp.js';
import { fail } from './wire-fields.js';

/** Tag bytes (PostgreSQL's CopyData message types, and walship's 'e'). */
export const XLOG_DATA_TAG = 0x77; // 'w'
export const XLOG_DATA_AS_STORED_TAG = 0x65; // 'e'
export const KEEPALIVE_TAG = 0x6b; // 'k'
export const STANDBY_STATUS_UPDATE_TAG = 0x72; // 'r'

/** Tag, dataStart, walEnd, sendTime; the WAL bytes follow. */
export const XLOG_DATA_HEADER_BYTES = 1 + 8 + 8 + 8;
/** The same and the timeline the bytes are encrypted under ('e'). */
export const XLOG_DATA_AS_STORED_HEADER_BYTES = XLOG_DATA_HEADER_BYTES + 4;
/** Tag, walEnd, sendTime, replyRequested. */
export const KEEPALIVE_BYTES = 1 + 8 + 8 + 1;
/** Tag, write, flush, apply, sendTime, replyRequested. */
export const STANDBY_STATUS_UPDATE_BYTES = 1 + 8 + 8 + 8 + 8 + 1;

const TWO_32 = 0x1_0000_0000;
/** A high half at or above this is 2^53 or more: no TimestampTz (and, as int64, any negative). */
const HIGH_HALF_LIMIT = 0x20_0000;

// ---------------------------------------------------------------------------------------------
// Leaves

function checkLsnValue(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    fail(where, `must be an LSN below 2^53 (got ${String(value)})`);
  }
  return value;
}

function checkTime(value: unknown, where: string): TimestampTz {
  if (!isTimestampTz(value)) {
    fail(where, `must be a time in integer microseconds since the epoch, from 0 to 2^53 - 1 (got ${String(value)})`);
  }
  return value;
}

function checkTimeline(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 0xffff_ffff) {
    fail(where, `must be a timeline, 1 to 2^32 - 1 (got ${String(value)})`);
  }
  return value;
}

/** An XLogData frame carries 1 to MAX_SEND_SIZE bytes of WAL. */
function checkDataLength(dataLength: number): void {
  if (!Number.isSafeInteger(dataLength) || dataLength < 1 || dataLength > MAX_SEND_SIZE) {
    fail('XLogData.data', `length must be between 1 and MAX_SEND_SIZE (${MAX_SEND_SIZE}) bytes (got ${dataLength})`);
  }
}

function checkFlag(value: unknown, where: string): boolean {
  if (typeof value !== 'boolean') fail(where, `must be a boolean (got ${typeof value})`);
  return value;
}

function readFrameLsn(frame: Buffer, offset: number, where: string): Lsn {
  try {
    return readLsn(frame, offset);
  } catch {
    return fail(where, 'is not below 2^53');
  }
}

/** Writes a checked TimestampTz as a little-endian int64, in two u32 halves (no bigint). */
function writeFrameTime(frame: Buffer, time: TimestampTz, offset: number): void {
  const high = Math.floor(time / TWO_32);
  frame.writeUInt32LE(time - high * TWO_32, offset);
  frame.writeUInt32LE(high, offset + 4);
}

function readFrameTime(frame: Buffer, offset: number, where: string): TimestampTz {
  const low = frame.readUInt32LE(offset);
  const high = frame.readUInt32LE(offset + 4);
  if (high >= HIGH_HALF_LIMIT) {
    const shown = high >= 0x8000_0000 ? 'is negative' : 'is not below 2^53 microseconds';
    fail(where, `${shown} (high half 0x${high.toString(16)}); a time is integer microseconds since the epoch`);
  }
  return (high * TWO_32 + low) as TimestampTz;
}

function readFrameFlag(frame: Buffer, offset: number, where: string): boolean {
  const byte = frame[offset]!;
  if (byte > 1) fail(where, `must be 0 or 1 (got ${byte})`);
  return byte === 1;
}

function checkLength(frame: Buffer, expected: number, where: string): void {
  if (frame.length !== expected) fail(where, `frame must be ${expected} bytes (got ${frame.length})`);
}

// ---------------------------------------------------------------------------------------------
// XLogData

/**
 * A zeroed frame for `dataLength` bytes of WAL (1 to MAX_SEND_SIZE), its tag written. Read the
 * WAL into `frame.subarray(XLOG_DATA_HEADER_BYTES)`, then call `writeXLogDataHeader`. If the read
 * returns fewer bytes, send `frame.subarray(0, XLOG_DATA_HEADER_BYTES + bytesRead)` (and write the
 * header into that). Zeroed, not `allocUnsafe`: if a short read were ever sent whole, it would
 * send zeros, not stale process memory; the memset is noise next to the read.
 */
export function allocXLogDataFrame(dataLength: number): Buffer {
  checkDataLength(dataLength);
  const frame = Buffer.alloc(XLOG_DATA_HEADER_BYTES + dataLength);
  frame[0] = XLOG_DATA_TAG;
  return frame;
}

/**
 * Writes the tag and header of an XLogData frame whose WAL bytes are already in place (the data
 * is everything after the header). Checks what the receiver will check: 1 to MAX_SEND_SIZE data
 * bytes, LSNs below 2^53, `dataStart + data length <= walEnd`, a valid time. Throws ProtocolError.
 */
export function writeXLogDataHeader(frame: Buffer, dataStart: Lsn | number, walEnd: Lsn | number, sendTime: TimestampTz): void {
  if (!Buffer.isBuffer(frame)) fail('XLogData', 'frame must be a Buffer');
  const dataLength = frame.length - XLOG_DATA_HEADER_BYTES;
  if (dataLength < 1 || dataLength > MAX_SEND_SIZE) {
    fail('XLogData.data', `length must be between 1 and MAX_SEND_SIZE (${MAX_SEND_SIZE}) bytes (got ${dataLength})`);
  }
  checkLsnValue(dataStart, 'XLogData.dataStart');
  checkLsnValue(walEnd, 'XLogData.walEnd');
  const time = checkTime(sendTime, 'XLogData.sendTime');
  if (dataStart + dataLength > walEnd) {
    fail('XLogData.walEnd', `must be at least dataStart plus the data length (${dataStart} + ${dataLength} > ${walEnd})`);
  }
  frame[0] = XLOG_DATA_TAG;
  writeLsn(frame, dataStart, 1);
  writeLsn(frame, walEnd, 9);
  writeFrameTime(frame, time, 17);
}

/**
 * A zeroed buffer for `dataLength` bytes of WAL (1 to MAX_SEND_SIZE) that becomes either kind of
 * XLogData frame once the walsender knows what it read: read the WAL into
 * `buffer.subarray(XLOG_DATA_AS_STORED_HEADER_BYTES)`, then `finishXLogDataFrame` writes the
 * header and returns the frame to send. The 'w' header is four bytes shorter and ends where the
 * data begins, so a plaintext frame is the buffer from byte 4: no copy either way.
 */
export function allocXLogDataFrameAsStored(dataLength: number): Buffer {
  checkDataLength(dataLength);
  return Buffer.alloc(XLOG_DATA_AS_STORED_HEADER_BYTES + dataLength);
}

/**
 * Writes the header into a buffer from `allocXLogDataFrameAsStored` whose WAL bytes are in place
 * and returns the frame to send: 'e' with `encryptedTimeline` (the bytes are ciphertext as
 * stored under that timeline), or 'w' when it is null (plaintext). Checks as `writeXLogDataHeader`
 * does, and the timeline (1 to 2^32 - 1). Throws ProtocolError.
 */
export function finishXLogDataFrame(buffer: Buffer, dataStart: Lsn | number, walEnd: Lsn | number, sendTime: TimestampTz, encryptedTimeline: number | null): Buffer {
  if (!Buffer.isBuffer(buffer) || buffer.length <= XLOG_DATA_AS_STORED_HEADER_BYTES) fail('XLogData', 'frame must be a Buffer with WAL bytes after the header');
  const shift = XLOG_DATA_AS_STORED_HEADER_BYTES - XLOG_DATA_HEADER_BYTES;
  if (encryptedTimeline === null) {
    const frame = buffer.subarray(shift);
    writeXLogDataHeader(frame, dataStart, walEnd, sendTime);
    return frame;
  }
  const timeline = checkTimeline(encryptedTimeline, 'XLogData.encryptedTimeline');
  // The common part of the header goes through the one checked writer, then the tag and the
  // timeline are put in place: 'e' | the same 24 bytes | timeline.
  writeXLogDataHeader(buffer.subarray(0, buffer.length - shift), dataStart, walEnd, sendTime);
  buffer[0] = XLOG_DATA_AS_STORED_TAG;
  buffer.writeUInt32LE(timeline, XLOG_DATA_HEADER_BYTES);
  return buffer;
}

/** Encodes an XLogData message, copying its data (tests and tools; the sender uses the above). */
export function encodeXLogData(message: XLogDataMessage): Buffer {
  const data: unknown = message.data;
  if (!(data instanceof Uint8Array)) fail('XLogData.data', 'must be binary');
  if (message.encryptedTimeline === undefined) {
    const frame = allocXLogDataFrame(data.length);
    frame.set(data, XLOG_DATA_HEADER_BYTES);
    writeXLogDataHeader(frame, message.dataStart, message.walEnd, message.sendTime);
    return frame;
  }
  const buffer = allocXLogDataFrameAsStored(data.length);
  buffer.set(data, XLOG_DATA_AS_STORED_HEADER_BYTES);
  return finishXLogDataFrame(buffer, message.dataStart, message.walEnd, message.sendTime, message.encryptedTimeline);
}

function decodeXLogData(frame: Buffer, asStored: boolean): XLogDataMessage {
  const headerBytes = asStored ? XLOG_DATA_AS_STORED_HEADER_BYTES : XLOG_DATA_HEADER_BYTES;
  const dataLength = frame.length - headerBytes;
  if (dataLength < 1 || dataLength > MAX_SEND_SIZE) {
    fail('XLogData', `frame must be ${headerBytes + 1} to ${headerBytes + MAX_SEND_SIZE} bytes (got ${frame.length})`);
  }
  const dataStart = readFrameLsn(frame, 1, 'XLogData.dataStart');
  const walEnd = readFrameLsn(frame, 9, 'XLogData.walEnd');
  const sendTime = readFrameTime(frame, 17, 'XLogData.sendTime');
  if (dataStart + dataLength > walEnd) {
    fail('XLogData.walEnd', `must be at least dataStart plus the data length (${dataStart} + ${dataLength} > ${walEnd})`);
  }
  const message: XLogDataMessage = { type: 'xlogData', dataStart, walEnd, sendTime, data: frame.subarray(headerBytes) };
  if (asStored) message.encryptedTimeline = checkTimeline(frame.readUInt32LE(XLOG_DATA_HEADER_BYTES), 'XLogData.encryptedTimeline');
  return message;
}

// ---------------------------------------------------------------------------------------------
// Keepalive

export function encodeKeepalive(message: KeepaliveMessage): Buffer {
  const walEnd = checkLsnValue(message.walEnd, 'Keepalive.walEnd');
  const sendTime = checkTime(message.sendTime, 'Keepalive.sendTime');
  const replyRequested = checkFlag(message.replyRequested, 'Keepalive.replyRequested');
  const syncStandby = message.syncStandby === undefined ? undefined : checkFlag(message.syncStandby, 'Keepalive.syncStandby');
  const frame = Buffer.alloc(KEEPALIVE_BYTES);
  frame[0] = KEEPALIVE_TAG;
  writeLsn(frame, walEnd, 1);
  writeFrameTime(frame, sendTime, 9);
  frame[17] = (replyRequested ? KEEPALIVE_REPLY_REQUESTED : 0) | (syncStandby === undefined ? 0 : KEEPALIVE_SYNC_STANDBY_TOLD | (syncStandby ? KEEPALIVE_SYNC_STANDBY : 0));
  return frame;
}

/** The Keepalive's flags byte. */
const KEEPALIVE_REPLY_REQUESTED = 1;
const KEEPALIVE_SYNC_STANDBY_TOLD = 2;
const KEEPALIVE_SYNC_STANDBY = 4;

function decodeKeepalive(frame: Buffer): KeepaliveMessage {
  checkLength(frame, KEEPALIVE_BYTES, 'Keepalive');
  const flags = frame[17]!;
  if (flags > 7 || ((flags & KEEPALIVE_SYNC_STANDBY_TOLD) === 0 && (flags & KEEPALIVE_SYNC_STANDBY) !== 0)) {
    fail('Keepalive.flags', `must be 0 to 7, with bit 2 only beside bit 1 (got ${flags})`);
  }
  const message: KeepaliveMessage = {
    type: 'keepalive',
    walEnd: readFrameLsn(frame, 1, 'Keepalive.walEnd'),
    sendTime: readFrameTime(frame, 9, 'Keepalive.sendTime'),
    replyRequested: (flags & KEEPALIVE_REPLY_REQUESTED) !== 0,
  };
  if ((flags & KEEPALIVE_SYNC_STANDBY_TOLD) !== 0) message.syncStandby = (flags & KEEPALIVE_SYNC_STANDBY) !== 0;
  return message;
}

// ---------------------------------------------------------------------------------------------
// StandbyStatusUpdate

export function encodeStandbyStatusUpdate(message: StandbyStatusUpdateMessage): Buffer {
  const write = checkLsnValue(message.write, 'StandbyStatusUpdate.write');
  const flush = checkLsnValue(message.flush, 'StandbyStatusUpdate.flush');
  const apply = checkLsnValue(message.apply, 'StandbyStatusUpdate.apply');
  const sendTime = checkTime(message.sendTime, 'StandbyStatusUpdate.sendTime');
  const replyRequested = checkFlag(message.replyRequested, 'StandbyStatusUpdate.replyRequested');
  const frame = Buffer.alloc(STANDBY_STATUS_UPDATE_BYTES);
  frame[0] = STANDBY_STATUS_UPDATE_TAG;
  writeLsn(frame, write, 1);
  writeLsn(frame, flush, 9);
  writeLsn(frame, apply, 17);
  writeFrameTime(frame, sendTime, 25);
  frame[33] = replyRequested ? 1 : 0;
  return frame;
}

function decodeStandbyStatusUpdate(frame: Buffer): StandbyStatusUpdateMessage {
  checkLength(frame, STANDBY_STATUS_UPDATE_BYTES, 'StandbyStatusUpdate');
  return {
    type: 'standbyStatusUpdate',
    write: readFrameLsn(frame, 1, 'StandbyStatusUpdate.write'),
    flush: readFrameLsn(frame, 9, 'StandbyStatusUpdate.flush'),
    apply: readFrameLsn(frame, 17, 'StandbyStatusUpdate.apply'),
    sendTime: readFrameTime(frame, 25, 'StandbyStatusUpdate.sendTime'),
    replyRequested: readFrameFlag(frame, 33, 'StandbyStatusUpdate.replyRequested'),
  };
}

// ---------------------------------------------------------------------------------------------
// Routing

/** Whether a frame is binary (its first byte is below 0x80, where no msgpack map starts). */
export function isBinaryReplicationFrame(frame: Uint8Array): boolean {
  return frame.length > 0 && frame[0]! < 0x80;
}

function tagName(tag: number): string {
  const printable = tag >= 0x20 && tag < 0x7f ? ` '${String.fromCharCode(tag)}'` : '';
  return `0x${tag.toString(16).padStart(2, '0')}${printable}`;
}

/** Decodes a binary frame the walsender receives: only a StandbyStatusUpdate. */
export function decodeFrameFromReceiver(frame: Buffer): StandbyStatusUpdateMessage {
  const tag = frame[0]!;
  if (tag === STANDBY_STATUS_UPDATE_TAG) return decodeStandbyStatusUpdate(frame);
  if (tag === XLOG_DATA_TAG || tag === XLOG_DATA_AS_STORED_TAG || tag === KEEPALIVE_TAG) {
    throw new ProtocolError(`invalid message: ${tag === KEEPALIVE_TAG ? 'Keepalive' : 'XLogData'} is sent by a walsender, not to one`);
  }
  throw new ProtocolError(`invalid message: unknown binary message tag ${tagName(tag)}`);
}

/** Decodes a binary frame the standby receives: XLogData or Keepalive. */
export function decodeFrameFromSender(frame: Buffer): XLogDataMessage | KeepaliveMessage {
  const tag = frame[0]!;
  if (tag === XLOG_DATA_TAG) return decodeXLogData(frame, false);
  if (tag === XLOG_DATA_AS_STORED_TAG) return decodeXLogData(frame, true);
  if (tag === KEEPALIVE_TAG) return decodeKeepalive(frame);
  if (tag === STANDBY_STATUS_UPDATE_TAG) {
    throw new ProtocolError('invalid message: StandbyStatusUpdate is sent by a standby, not to one');
  }
  throw new ProtocolError(`invalid message: unknown binary message tag ${tagName(tag)}`);
}
