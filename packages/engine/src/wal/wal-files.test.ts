import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateDataKeys } from '../crypto/key-file.js';
import { registerDataKeys, unregisterDataKeys } from '../crypto/registry.js';
import { WalCipher } from '../crypto/wal-cipher.js';
import { WalFileReader, findSegmentTimeline, findSegmentTimelineFinal, segmentPath } from './wal-files.js';

const SEGMENT = 1024 * 1024;

describe('findSegmentTimelineFinal', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-wal-files-'));
    fs.mkdirSync(path.join(dataDir, 'pg_wal'));
  });
  afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const touch = (tli: number, segNo: number) => fs.writeFileSync(segmentPath(dataDir, tli, segNo, SEGMENT), '');
  // Timeline 2 forked from timeline 1 inside segment 3; newest first, as expectedTLEs.
  const history = [
    { tli: 2, begin: 3 * SEGMENT + 100, end: Number.POSITIVE_INFINITY },
    { tli: 1, begin: 0, end: 3 * SEGMENT + 100 },
  ];

  it('is final when the newest timeline covering the segment has its file', () => {
    touch(1, 3);
    touch(2, 3);
    expect(findSegmentTimelineFinal(dataDir, history, 3, SEGMENT)).toEqual({ tli: 2, final: true });
    // Segment 2 is covered by timeline 1 only: its file is the final answer.
    touch(1, 2);
    expect(findSegmentTimelineFinal(dataDir, history, 2, SEGMENT)).toEqual({ tli: 1, final: true });
  });

  it('is not final while a newer timeline covering the segment may still get its file', () => {
    touch(1, 3);
    expect(findSegmentTimelineFinal(dataDir, history, 3, SEGMENT)).toEqual({ tli: 1, final: false });
    // No file at all: the newest covering timeline, to wait for.
    expect(findSegmentTimelineFinal(dataDir, history, 4, SEGMENT)).toEqual({ tli: 2, final: false });
    touch(2, 3);
    expect(findSegmentTimeline(dataDir, history, 3, SEGMENT)).toBe(2);
  });
});

describe('WalFileReader in an encrypted data directory', () => {
  const SMALL = 64 * 1024;
  let dataDir: string;
  let cipher: WalCipher;
  const plain = Buffer.alloc(2 * SMALL);
  for (let i = 0; i < plain.length; i++) plain[i] = (i * 7 + 3) & 0xff;
  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-wal-files-'));
    fs.mkdirSync(path.join(dataDir, 'pg_wal'));
    const keys = generateDataKeys();
    registerDataKeys(dataDir, keys);
    cipher = new WalCipher(keys.walKey);
    // Segment 0 in timeline 1's file, segment 1 in timeline 2's (a switch inside segment 1).
    fs.writeFileSync(segmentPath(dataDir, 1, 0, SMALL), cipher.applyToNew(1, 0, plain.subarray(0, SMALL)));
    fs.writeFileSync(segmentPath(dataDir, 2, 1, SMALL), cipher.applyToNew(2, SMALL, plain.subarray(SMALL)));
  });
  afterEach(() => {
    unregisterDataKeys(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
  });
  const reader = (): WalFileReader => new WalFileReader(dataDir, (segNo) => (segNo === 0 ? 1 : 2), SMALL);

  it('reads plaintext across files of two timelines, and the stored bytes of one file with its timeline', () => {
    const r = reader();
    expect(r.encrypted).toBe(true);
    const into = Buffer.alloc(3000 + 10);
    r.read(into, 10, SMALL - 1000, 3000);
    expect(into.subarray(10).equals(plain.subarray(SMALL - 1000, SMALL + 2000))).toBe(true);
    const stored = Buffer.alloc(2000);
    expect(r.readStored(stored, 0, SMALL - 2000, 2000)).toBe(1);
    expect(stored.equals(cipher.applyToNew(1, SMALL - 2000, plain.subarray(SMALL - 2000, SMALL)))).toBe(true);
    expect(r.readStored(stored, 0, SMALL + 5, 2000)).toBe(2);
    expect(stored.equals(cipher.applyToNew(2, SMALL + 5, plain.subarray(SMALL + 5, SMALL + 2005)))).toBe(true);
    r.close();
  });

  it('refuses a read as stored across a segment boundary (the next file may be another timeline\'s)', () => {
    const r = reader();
    expect(() => r.readStored(Buffer.alloc(20), 0, SMALL - 10, 20)).toThrow(/crosses a segment boundary/);
    r.close();
  });

  it('an unencrypted directory reads as stored with no timeline', () => {
    const plainDir = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-wal-files-'));
    try {
      fs.mkdirSync(path.join(plainDir, 'pg_wal'));
      fs.writeFileSync(segmentPath(plainDir, 1, 0, SMALL), plain.subarray(0, SMALL));
      const r = new WalFileReader(plainDir, () => 1, SMALL);
      expect(r.encrypted).toBe(false);
      const into = Buffer.alloc(100);
      expect(r.readStored(into, 0, 100, 100)).toBeNull();
      expect(into.equals(plain.subarray(100, 200))).toBe(true);
      r.close();
    } finally {
      fs.rmSync(plainDir, { recursive: true, force: true });
    }
  });
});
