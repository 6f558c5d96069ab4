/**
 * The walsender's hot path of a base backup: a `backupChunk` frame laid out in a buffer of the
 * sender's own, so that a file's bytes are read straight into the frame and never copied by the
 * encoder (as `allocXLogDataFrame` does for WAL).
 *
 * The frame is the same msgpack map `encodeReplicationMessage` writes for
 * `{ type: 'backupChunk', id, path, offset, data }` — byte for byte, with msgpackr's choices
 * (map16 header, the shortest string, integer and bin forms, integers above 2^32 - 1 as
 * float64) — so the receiver decodes and checks it with `decodeReplicationFrame` like any other
 * control message. Only the data is not copied: its bytes follow the header in the buffer.
 *
 *   const header = writeBackupChunkHeader(buffer, id, path, offset, length);
 *   readSync(fd, buffer, header, length, offset);            // the file's bytes, in place
 *   send(buffer.subarray(0, header + length));
 *
 * `writeBackupChunkHeader` checks what the receiver's decoder checks (the id, the path rule, the
 * offset, 1 to MAX_BACKUP_CHUNK_BYTES of data, the frame limit) and throws ProtocolError.
 */
import { MAX_BACKUP_CHUNK_BYTES, MAX_BACKUP_PATH_BYTES, MAX_REPLICATION_FRAME_BYTES } from './constants.js';
import { backupPathProblem } from './replication-validate.js';
import { checkInteger, fail } from './wire-fields.js';

const TWO_32 = 0x1_0000_0000;

// The keys and the type, as msgpackr writes them (fixstr).
const TYPE_KEY = Buffer.from([0xa4, ...Buffer.from('type')]);
const TYPE_VALUE = Buffer.from([0xab, ...Buffer.from('backupChunk')]);
const ID_KEY = Buffer.from([0xa2, ...Buffer.from('id')]);
const PATH_KEY = Buffer.from([0xa4, ...Buffer.from('path')]);
const OFFSET_KEY = Buffer.from([0xa6, ...Buffer.from('offset')]);
const DATA_KEY = Buffer.from([0xa4, ...Buffer.from('data')]);
const FIXED_BYTES = 3 + TYPE_KEY.length + TYPE_VALUE.length + ID_KEY.length + PATH_KEY.length + OFFSET_KEY.length + DATA_KEY.length;

/** The longest header: the fixed part, a float64 id and offset, a str16 path of the longest, bin32. */
export const BACKUP_CHUNK_HEADER_MAX_BYTES = FIXED_BYTES + 9 + 3 + MAX_BACKUP_PATH_BYTES + 9 + 5;

/** A buffer that holds any backupChunk frame: the longest header and MAX_BACKUP_CHUNK_BYTES. */
export function allocBackupChunkBuffer(): Buffer {
  // Zeroed, not allocUnsafe, for the same reason as allocXLogDataFrame: a bug that sent more than
  // was read would send zeros, not stale process memory. Buffers are reused, so it is paid once.
  return Buffer.alloc(BACKUP_CHUNK_HEADER_MAX_BYTES + MAX_BACKUP_CHUNK_BYTES);
}

function uintBytes(value: number): number {
  if (value < 0x80) return 1;
  if (value < 0x100) return 2;
  if (value < 0x1_0000) return 3;
  if (value < TWO_32) return 5;
  return 9;
}

function writeUint(buffer: Buffer, value: number, at: number): number {
  if (value < 0x80) {
    buffer[at] = value;
    return at + 1;
  }
  if (value < 0x100) {
    buffer[at] = 0xcc;
    buffer[at + 1] = value;
    return at + 2;
  }
  if (value < 0x1_0000) {
    buffer[at] = 0xcd;
    buffer.writeUInt16BE(value, at + 1);
    return at + 3;
  }
  if (value < TWO_32) {
    buffer[at] = 0xce;
    buffer.writeUInt32BE(value, at + 1);
    return at + 5;
  }
  // msgpackr writes a safe integer above 2^32 - 1 as float64 (exact below 2^53); its uint64
  // would decode as a bigint, which the receiver refuses.
  buffer[at] = 0xcb;
  buffer.writeDoubleBE(value, at + 1);
  return at + 9;
}

function strHeaderBytes(byteLength: number): number {
  if (byteLength < 0x20) return 1;
  if (byteLength < 0x100) return 2;
  return 3;
}

function writeStr(buffer: Buffer, text: string, byteLength: number, at: number): number {
  if (byteLength < 0x20) {
    buffer[at++] = 0xa0 | byteLength;
  } else if (byteLength < 0x100) {
    buffer[at++] = 0xd9;
    buffer[at++] = byteLength;
  } else {
    buffer[at++] = 0xda;
    buffer.writeUInt16BE(byteLength, at);
    at += 2;
  }
  return at + buffer.write(text, at, byteLength, 'utf8');
}

function binHeaderBytes(length: number): number {
  if (length < 0x100) return 2;
  if (length < 0x1_0000) return 3;
  return 5;
}

function writeBinHeader(buffer: Buffer, length: number, at: number): number {
  if (length < 0x100) {
    buffer[at] = 0xc4;
    buffer[at + 1] = length;
    return at + 2;
  }
  if (length < 0x1_0000) {
    buffer[at] = 0xc5;
    buffer.writeUInt16BE(length, at + 1);
    return at + 3;
  }
  buffer[at] = 0xc6;
  buffer.writeUInt32BE(length, at + 1);
  return at + 5;
}

/** Bytes before the data of a backupChunk frame with these fields. */
export function backupChunkHeaderBytes(id: number, path: string, offset: number, dataLength: number): number {
  const pathBytes = Buffer.byteLength(path, 'utf8');
  return FIXED_BYTES + uintBytes(id) + strHeaderBytes(pathBytes) + pathBytes + uintBytes(offset) + binHeaderBytes(dataLength);
}

/**
 * Writes the msgpack bytes of a backupChunk frame up to its data into the start of `buffer` and
 * returns their length; the `dataLength` data bytes go right after them. Throws ProtocolError
 * when a field is one the receiver refuses or the frame does not fit in `buffer`.
 */
export function writeBackupChunkHeader(buffer: Buffer, id: number, path: string, offset: number, dataLength: number): number {
  checkInteger(id, 'backupChunk.id', 0, Number.MAX_SAFE_INTEGER);
  const problem = typeof path === 'string' ? backupPathProblem(path) : 'is not a string';
  if (problem !== null) fail('backupChunk.path', problem);
  checkInteger(offset, 'backupChunk.offset', 0, Number.MAX_SAFE_INTEGER);
  checkInteger(dataLength, 'backupChunk.data length', 1, MAX_BACKUP_CHUNK_BYTES);
  if (!Number.isSafeInteger(offset + dataLength)) fail('backupChunk.offset', 'plus the chunk length is out of range');
  const headerBytes = backupChunkHeaderBytes(id, path, offset, dataLength);
  if (headerBytes + dataLength > MAX_REPLICATION_FRAME_BYTES) {
    fail('backupChunk', `frame of ${headerBytes + dataLength} bytes exceeds the maximum replication frame size of ${MAX_REPLICATION_FRAME_BYTES} bytes`);
  }
  if (!Buffer.isBuffer(buffer) || buffer.length < headerBytes + dataLength) {
    fail('backupChunk', `buffer must hold ${headerBytes + dataLength} bytes (use allocBackupChunkBuffer)`);
  }
  // map16 of 5 entries, as msgpackr writes an object.
  buffer[0] = 0xde;
  buffer[1] = 0x00;
  buffer[2] = 0x05;
  let at = 3;
  at += TYPE_KEY.copy(buffer, at);
  at += TYPE_VALUE.copy(buffer, at);
  at += ID_KEY.copy(buffer, at);
  at = writeUint(buffer, id, at);
  at += PATH_KEY.copy(buffer, at);
  at = writeStr(buffer, path, Buffer.byteLength(path, 'utf8'), at);
  at += OFFSET_KEY.copy(buffer, at);
  at = writeUint(buffer, offset, at);
  at += DATA_KEY.copy(buffer, at);
  at = writeBinHeader(buffer, dataLength, at);
  return at;
}
