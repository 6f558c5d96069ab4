import { describe, expect, it } from 'vitest';
import { MAX_BACKUP_CHUNK_BYTES, MAX_BACKUP_PATH_BYTES, MAX_REPLICATION_FRAME_BYTES } from './constants.js';
import { ProtocolError } from './protocol-error.js';
import {
  BACKUP_CHUNK_HEADER_MAX_BYTES, allocBackupChunkBuffer, backupChunkHeaderBytes, writeBackupChunkHeader,
} from './replication-backup-chunk.js';
import { decodeReplicationFrame, encodeReplicationMessage } from './replication-codec.js';

/** A frame laid out in place: header, then `data` copied where a file read would put it. */
function layOut(id: number, path: string, offset: number, data: Buffer): Buffer {
  const buffer = allocBackupChunkBuffer();
  const header = writeBackupChunkHeader(buffer, id, path, offset, data.length);
  expect(header).toBe(backupChunkHeaderBytes(id, path, offset, data.length));
  data.copy(buffer, header);
  return buffer.subarray(0, header + data.length);
}

function bytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

describe('writeBackupChunkHeader', () => {
  // Each boundary of msgpack's integer, string and bin forms, on both sides.
  const ids = [0, 1, 127, 128, 255, 256, 65_535, 65_536, 0xffff_ffff, 0x1_0000_0000, Number.MAX_SAFE_INTEGER];
  const offsets = [0, 127, 128, 255, 256, 65_535, 65_536, 0xffff_ffff, 0x1_0000_0000, 2 ** 40, Number.MAX_SAFE_INTEGER - MAX_BACKUP_CHUNK_BYTES];
  const pathLengths = [1, 31, 32, 255, 256, MAX_BACKUP_PATH_BYTES];
  const dataLengths = [1, 255, 256, 65_535, 65_536, MAX_BACKUP_CHUNK_BYTES];
  /** A valid path of `length` bytes: components of at most 100 characters (the limit is 255). */
  const pathOf = (length: number): string => {
    let path = 'a';
    while (path.length < length) path += path.length % 101 === 100 ? '/' : 'x';
    return path.endsWith('/') ? `${path.slice(0, -1)}y` : path;
  };

  it('writes the bytes encodeReplicationMessage writes, for every form of each field', () => {
    const cases: Array<[number, string, number, number]> = [];
    for (const id of ids) cases.push([id, 'base/16384', 0, 100]);
    for (const offset of offsets) cases.push([7, 'base/16384', offset, 100]);
    for (const length of pathLengths) cases.push([7, pathOf(length), 4096, 100]);
    for (const length of dataLengths) cases.push([7, 'pg_wal/000000010000000000000001', 8192, length]);
    for (const [id, path, offset, length] of cases) {
      const data = bytes(length, id + offset + path.length);
      const expected = encodeReplicationMessage({ type: 'backupChunk', id, path, offset, data });
      const frame = layOut(id, path, offset, data);
      expect(frame.equals(expected), `id ${id}, path of ${path.length}, offset ${offset}, ${length} bytes`).toBe(true);
      const decoded = decodeReplicationFrame(frame, 'receiver');
      expect(decoded).toMatchObject({ type: 'backupChunk', id, path, offset });
      expect((decoded as { data: Buffer }).data.equals(data)).toBe(true);
    }
  });

  it('fits the longest header with the largest chunk in one buffer and under the frame limit', () => {
    const longest = backupChunkHeaderBytes(Number.MAX_SAFE_INTEGER, pathOf(MAX_BACKUP_PATH_BYTES), 2 ** 40, MAX_BACKUP_CHUNK_BYTES);
    expect(longest).toBe(BACKUP_CHUNK_HEADER_MAX_BYTES);
    expect(allocBackupChunkBuffer().length).toBe(BACKUP_CHUNK_HEADER_MAX_BYTES + MAX_BACKUP_CHUNK_BYTES);
    expect(BACKUP_CHUNK_HEADER_MAX_BYTES + MAX_BACKUP_CHUNK_BYTES).toBeLessThanOrEqual(MAX_REPLICATION_FRAME_BYTES);
  });

  it('refuses what the receiver refuses, and a buffer too small', () => {
    const buffer = allocBackupChunkBuffer();
    const refused: Array<[number, string, number, number, RegExp]> = [
      [-1, 'base/1', 0, 1, /backupChunk\.id must be between 0/],
      [1.5, 'base/1', 0, 1, /backupChunk\.id must be an integer/],
      [1, '../etc/passwd', 0, 1, /backupChunk\.path/],
      [1, '/abs', 0, 1, /backupChunk\.path/],
      [1, 'base/1', -1, 1, /backupChunk\.offset must be between 0/],
      [1, 'base/1', Number.MAX_SAFE_INTEGER, 1, /plus the chunk length is out of range/],
      [1, 'base/1', 0, 0, /data length must be between 1/],
      [1, 'base/1', 0, MAX_BACKUP_CHUNK_BYTES + 1, /data length must be between 1/],
    ];
    for (const [id, path, offset, length, message] of refused) {
      expect(() => writeBackupChunkHeader(buffer, id, path, offset, length)).toThrow(ProtocolError);
      expect(() => writeBackupChunkHeader(buffer, id, path, offset, length)).toThrow(message);
    }
    expect(() => writeBackupChunkHeader(Buffer.alloc(1000), 1, 'base/1', 0, 1000)).toThrow(/buffer must hold 10\d\d bytes/);
  });
});
