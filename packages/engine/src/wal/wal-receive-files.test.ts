import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Lsn } from '../lsn.js';
import { xlogArchiveForceDone, type ArchiveMode, type ArchiveStatus } from './archive-status.js';
import { WalReceiveFiles } from './wal-receive-files.js';
import { xlogFileName } from './xlog-internal.js';

const SEGMENT = 64 * 1024;
let dataDir: string;

function seg(segNo: number, tli = 1): string {
  return xlogFileName(tli, segNo, SEGMENT);
}

function statusFiles(): string[] {
  try {
    return fs.readdirSync(path.join(dataDir, 'pg_wal', 'archive_status')).sort();
  } catch {
    return [];
  }
}

/** Receiving files in `mode`, and the statuses they reported. */
function receiver(mode: ArchiveMode, startLsn: number, timeline = 1): { files: WalReceiveFiles; reported: Array<[string, ArchiveStatus, boolean]> } {
  const reported: Array<[string, ArchiveStatus, boolean]> = [];
  const files = new WalReceiveFiles(dataDir, timeline, SEGMENT, startLsn as Lsn, {
    mode, onStatus: (name, status, error) => reported.push([name, status, error !== null]),
  });
  return { files, reported };
}

function bytes(n: number, fill: number): Buffer {
  return Buffer.alloc(n, fill);
}

beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-receive-files-'));
  fs.mkdirSync(path.join(dataDir, 'pg_wal', 'archive_status'), { recursive: true });
});
afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

describe('WalReceiveFiles', () => {
  it('marks a segment .done as soon as its last byte is written, not before, and an unfinished one never', () => {
    const { files, reported } = receiver('on', 2 * SEGMENT);
    files.write((2 * SEGMENT) as Lsn, bytes(SEGMENT - 100, 1));
    expect(statusFiles()).toEqual([]);
    // The rest of segment 2, and nothing of segment 3 yet: segment 2 is finished all the same.
    files.write((3 * SEGMENT - 100) as Lsn, bytes(100, 2));
    expect(statusFiles()).toEqual([`${seg(2)}.done`]);
    expect(reported).toEqual([[seg(2), 'done', false]]);
    // Not flushed yet as far as the caller knows: the flushed position moves only in flush().
    expect(files.flushed).toBe(2 * SEGMENT);
    expect(files.flush()).toBe(true);
    expect(files.flushed).toBe(3 * SEGMENT);

    // One write across two boundaries finishes two segments; the third stays open.
    files.write((3 * SEGMENT) as Lsn, bytes(2 * SEGMENT + 10, 3));
    expect(statusFiles()).toEqual([`${seg(2)}.done`, `${seg(3)}.done`, `${seg(4)}.done`]);
    files.close();
    expect(statusFiles()).toEqual([`${seg(2)}.done`, `${seg(3)}.done`, `${seg(4)}.done`]);
    expect(files.flushed).toBe(5 * SEGMENT + 10);
    const content = fs.readFileSync(path.join(dataDir, 'pg_wal', seg(2)));
    expect(content.length).toBe(SEGMENT);
    expect(content[0]).toBe(1);
    expect(content[SEGMENT - 1]).toBe(2);
  });

  it('with archive_mode = always marks finished segments .ready, replacing a .done from the base backup', () => {
    // The base backup's last segment came with a .done; streaming completes it, and this
    // standby archives the whole of it.
    xlogArchiveForceDone(dataDir, seg(1));
    const { files, reported } = receiver('always', SEGMENT);
    files.write(SEGMENT as Lsn, bytes(SEGMENT + 5, 7));
    expect(statusFiles()).toEqual([`${seg(1)}.ready`]);
    expect(reported).toEqual([[seg(1), 'ready', false]]);
    files.close();
  });

  it('marks the last segment of a timeline the upstream ended, and the new timeline\'s segments under its name', () => {
    const { files, reported } = receiver('on', 0);
    files.write(0 as Lsn, bytes(SEGMENT + 300, 4));
    files.switchTimeline(2, (SEGMENT + 300) as Lsn);
    expect(statusFiles()).toEqual([`${seg(0)}.done`, `${seg(1)}.done`]);
    files.write((SEGMENT + 300) as Lsn, bytes(SEGMENT - 300, 5));
    expect(reported.map(([name]) => name)).toEqual([seg(0), seg(1), seg(1, 2)]);
    files.endOfTimeline();
    files.endOfTimeline();
    expect(reported.length).toBe(3);
  });

  it('reports a status it could not write, and keeps the WAL', () => {
    fs.rmSync(path.join(dataDir, 'pg_wal', 'archive_status'), { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'pg_wal', 'archive_status'), 'not a directory');
    const { files, reported } = receiver('always', 0);
    files.write(0 as Lsn, bytes(SEGMENT, 9));
    expect(reported).toEqual([[seg(0), 'ready', true]]);
    expect(files.flush()).toBe(true);
    expect(fs.readFileSync(path.join(dataDir, 'pg_wal', seg(0)))[SEGMENT - 1]).toBe(9);
    files.close();
  });
});

describe('WalReceiveFiles in an encrypted data directory', () => {
  it('encrypts exactly the bytes received, under the streamed timeline, and leaves the rest of the page clear', async () => {
    const { randomBytes } = await import('node:crypto');
    const { WalCipher } = await import('../crypto/wal-cipher.js');
    const cipher = new WalCipher(randomBytes(32));
    const start = 2 * SEGMENT + 100;
    const files = new WalReceiveFiles(dataDir, 3, SEGMENT, start as Lsn, { mode: 'off' }, cipher);
    const received = randomBytes(5000);
    // Two writes, one ending in the middle of a CTR block and one starting there.
    files.write(start as Lsn, received.subarray(0, 1234));
    files.write((start + 1234) as Lsn, received.subarray(1234));
    files.close();
    const file = fs.readFileSync(path.join(dataDir, 'pg_wal', seg(2, 3)));
    const stored = file.subarray(100, 100 + received.length);
    expect(stored.equals(received)).toBe(false);
    expect(file.subarray(0, 100).equals(Buffer.alloc(100))).toBe(true);
    expect(file.subarray(100 + received.length).equals(Buffer.alloc(SEGMENT - 100 - received.length))).toBe(true);
    const decrypted = Buffer.from(stored);
    cipher.applyInPlace(3, start, decrypted, 0, decrypted.length);
    expect(decrypted.equals(received)).toBe(true);
    // Timeline 3's keystream, not timeline 2's.
    const other = Buffer.from(stored);
    cipher.applyInPlace(2, start, other, 0, other.length);
    expect(other.equals(received)).toBe(false);
  });

  it('writes WAL sent as stored under its own timeline as it came, and converts one under another timeline', async () => {
    const { randomBytes } = await import('node:crypto');
    const { WalCipher } = await import('../crypto/wal-cipher.js');
    const cipher = new WalCipher(randomBytes(32));
    const start = SEGMENT + 50;
    const plain = randomBytes(3000);
    const files = new WalReceiveFiles(dataDir, 1, SEGMENT, start as Lsn, { mode: 'off' }, cipher);
    // The first part as the upstream stores it in its timeline-1 file, the second from its
    // timeline-2 file (a switch segment re-encrypted at promotion), the third as plaintext.
    files.write(start as Lsn, cipher.applyToNew(1, start, plain.subarray(0, 1000)), 1);
    files.write((start + 1000) as Lsn, cipher.applyToNew(2, start + 1000, plain.subarray(1000, 2000)), 2);
    files.write((start + 2000) as Lsn, plain.subarray(2000), null);
    files.close();
    const stored = fs.readFileSync(path.join(dataDir, 'pg_wal', seg(1, 1))).subarray(50, 50 + plain.length);
    // All of it timeline 1's ciphertext of the plaintext: what encrypting here would have written.
    expect(stored.equals(cipher.applyToNew(1, start, plain))).toBe(true);
  });

  it('refuses WAL sent as stored into an unencrypted directory and writes nothing', () => {
    const files = new WalReceiveFiles(dataDir, 1, SEGMENT, 0 as Lsn, { mode: 'off' }, null);
    expect(() => files.write(0 as Lsn, bytes(100, 1), 1)).toThrow(/received encrypted WAL, but this data directory is not encrypted/);
    files.close();
    expect(files.written).toBe(0);
    expect(fs.existsSync(path.join(dataDir, 'pg_wal', seg(0)))).toBe(false);
  });
});
