import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readBytesAt } from '../../../test/helpers/files.js';
import { bootstrapDataDirectory } from './bootstrap.js';
import { readControlFile } from './control-file.js';
import { dataKeysFor } from './crypto/registry.js';
import { WalCipher } from './crypto/wal-cipher.js';
import { Database, type DatabaseOptions } from './database.js';
import type { Lsn } from './lsn.js';
import { startNewTimeline } from './promote.js';
import { findBytesPastEndOfWal, firstNonZeroByte } from './torn-wal-tail.js';
import { historyFilePath, readTimeLineHistory } from './wal/timeline.js';
import { segmentPath } from './wal/wal-files.js';

const SEGMENT = 1024 * 1024;
let root: string;

function options(dataDir: string, lines: string[] = []): DatabaseOptions {
  return {
    dataDir, sharedBuffersBytes: 64 * 8192, walBuffersBytes: 64 * 8192, fsync: true, fullPageWrites: true,
    synchronousCommit: 'on', memberName: 'torn', walKeepBytes: 0, log: (level, message) => { lines.push(`${level}: ${message}`); },
  };
}

async function put(db: Database, from: number, to: number, tag: string): Promise<void> {
  for (let i = from; i < to; i++) {
    await db.txn({ onSuccess: [{ kind: 'put', key: Buffer.from(`k${String(i).padStart(5, '0')}`), value: Buffer.from(`${tag}-${i}`) }] });
  }
}

async function count(db: Database, tag: string): Promise<number> {
  const { entries } = await db.range({ limit: 100_000 });
  return entries.filter((entry) => entry.value.toString().startsWith(`${tag}-`)).length;
}

/** Writes `bytes` into the segment file of `timeline` at `lsn`, as a write the crash tore would have left them. */
function writeAt(dataDir: string, timeline: number, lsn: number, bytes: Buffer): void {
  const fd = fs.openSync(segmentPath(dataDir, timeline, Math.floor(lsn / SEGMENT), SEGMENT), 'r+');
  try {
    fs.writeSync(fd, bytes, 0, bytes.length, lsn % SEGMENT);
  } finally {
    fs.closeSync(fd);
  }
}

function readAt(file: string, lsn: number, length: number): Buffer {
  return readBytesAt(file, lsn % SEGMENT, length);
}

/**
 * A crashed node whose last write left `tail` past the end of valid WAL. The fault is made by
 * writing the bytes into the segment file after the crash: a real crash cannot be made to tear a
 * write at a chosen place. Returns the end of valid WAL.
 */
async function crashWithTail(dataDir: string, tail: Buffer | null): Promise<Lsn> {
  const db = await Database.open(options(dataDir));
  await put(db, 0, 300, 'acked');
  const end = db.xlog.getFlushRecPtr();
  const timeline = db.timeline;
  await db.abort();
  if (tail !== null) writeAt(dataDir, timeline, end, tail);
  return end;
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-torn-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('firstNonZeroByte', () => {
  it('finds the first non-zero byte in a range, across chunks', () => {
    const bytes = Buffer.alloc(3 * 1024 * 1024);
    expect(firstNonZeroByte(bytes)).toBe(-1);
    bytes[2_500_000] = 7;
    bytes[10] = 1;
    expect(firstNonZeroByte(bytes)).toBe(10);
    expect(firstNonZeroByte(bytes, 11)).toBe(2_500_000);
    expect(firstNonZeroByte(bytes, 11, 2_500_000)).toBe(-1);
  });
});

describe('findBytesPastEndOfWal', () => {
  it('looks at the rest of the end segment and the later segments of the timeline only', () => {
    const dataDir = path.join(root, 'scan');
    fs.mkdirSync(path.join(dataDir, 'pg_wal'), { recursive: true });
    const file = (tli: number, segNo: number) => segmentPath(dataDir, tli, segNo, SEGMENT);
    for (const [tli, segNo] of [[1, 1], [1, 2], [2, 2]] as const) fs.writeFileSync(file(tli, segNo), Buffer.alloc(SEGMENT));
    const end = (SEGMENT + 5000) as Lsn;
    expect(findBytesPastEndOfWal(dataDir, 1, end, SEGMENT)).toBeNull();
    // Before the end of WAL, and on another timeline: not evidence.
    writeAt(dataDir, 1, SEGMENT + 4999, Buffer.from([1]));
    writeAt(dataDir, 2, 2 * SEGMENT + 10, Buffer.from([1]));
    expect(findBytesPastEndOfWal(dataDir, 1, end, SEGMENT)).toBeNull();
    // In a later segment of the timeline, then in the end segment.
    writeAt(dataDir, 1, 2 * SEGMENT + 100, Buffer.from([9]));
    expect(findBytesPastEndOfWal(dataDir, 1, end, SEGMENT)).toBe(2 * SEGMENT + 100);
    writeAt(dataDir, 1, SEGMENT + 900_000, Buffer.from([9]));
    expect(findBytesPastEndOfWal(dataDir, 1, end, SEGMENT)).toBe(SEGMENT + 900_000);
    expect(findBytesPastEndOfWal(dataDir, 2, (2 * SEGMENT) as Lsn, SEGMENT)).toBe(2 * SEGMENT + 10);
  });
});

describe('crash recovery of an encrypted cluster with a torn tail', () => {
  const encrypted = async (name: string): Promise<string> => {
    const dataDir = path.join(root, name);
    await bootstrapDataDirectory(dataDir, { walSegmentSize: SEGMENT, clusterKey: crypto.randomBytes(32) });
    return dataDir;
  };

  it('ends on a new timeline, keeps every acknowledged write, and never writes the torn positions again under the old counter', async () => {
    const dataDir = await encrypted('torn');
    // What the worker would have written: bytes encrypted under timeline 1 at those positions.
    const tail = crypto.randomBytes(3000);
    const end0 = await crashWithTail(dataDir, null);
    const cipher = new WalCipher(dataKeysFor(dataDir)!.walKey);
    const db0 = await Database.open(options(dataDir));
    expect(db0.timeline).toBe(1);
    await put(db0, 300, 310, 'acked');
    const end = db0.xlog.getFlushRecPtr();
    expect(end).toBeGreaterThan(end0);
    await db0.abort();
    const torn = Buffer.from(tail);
    cipher.applyInPlace(1, end, torn, 0, torn.length);
    writeAt(dataDir, 1, end, torn);
    const oldFile = segmentPath(dataDir, 1, Math.floor(end / SEGMENT), SEGMENT);

    const lines: string[] = [];
    const db = await Database.open(options(dataDir, lines));
    expect(db.timeline).toBe(2);
    expect(lines).toContain('LOG: selected new timeline ID: 2');
    const detail = lines[lines.indexOf('LOG: selected new timeline ID: 2') + 1]!;
    expect(detail).toMatch(/^DETAIL: Bytes of an unfinished write follow the end of WAL at .* on timeline 1 .*encrypted twice under one counter\.$/);
    expect(readTimeLineHistory(dataDir, 2)[1]).toMatchObject({ tli: 1, end });
    expect(readControlFile(dataDir).timeline).toBe(2);
    expect(db.timelineSwitchedAfterCrash).toEqual({ previousTimeline: 1, switchPoint: end });
    expect(await count(db, 'acked')).toBe(310);
    // New records go to timeline 2's file; timeline 1's is kept as .partial, the torn bytes as they were.
    await put(db, 310, 400, 'after');
    const newFile = segmentPath(dataDir, 2, Math.floor(end / SEGMENT), SEGMENT);
    expect(fs.existsSync(oldFile)).toBe(false);
    expect(readAt(`${oldFile}.partial`, end, torn.length).equals(torn)).toBe(true);
    const rewritten = readAt(newFile, end, torn.length);
    expect(rewritten.equals(torn)).toBe(false);
    // The new file holds timeline 2's encryption of the WAL before the switch point too.
    const prefix = readAt(newFile, end - 100, 100);
    cipher.applyInPlace(2, end - 100, prefix, 0, 100);
    const oldPrefix = readAt(`${oldFile}.partial`, end - 100, 100);
    cipher.applyInPlace(1, end - 100, oldPrefix, 0, 100);
    expect(prefix.equals(oldPrefix)).toBe(true);
    await db.abort();

    // A crash that leaves only complete records keeps the timeline.
    const again: string[] = [];
    const db2 = await Database.open(options(dataDir, again));
    expect(db2.timeline).toBe(2);
    expect(again.some((line) => line.includes('selected new timeline'))).toBe(false);
    expect(await count(db2, 'after')).toBe(90);
    await db2.shutdown();
    const db3 = await Database.open(options(dataDir));
    expect(db3.timeline).toBe(2);
    await db3.shutdown();
  });

  it('keeps its timeline after a crash that left nothing past the end of WAL', async () => {
    const dataDir = await encrypted('clean-kill');
    await crashWithTail(dataDir, null);
    const lines: string[] = [];
    const db = await Database.open(options(dataDir, lines));
    expect(db.timeline).toBe(1);
    expect(db.timelineSwitchedAfterCrash).toBeNull();
    expect(lines.some((line) => line.includes('selected new timeline'))).toBe(false);
    expect(await count(db, 'acked')).toBe(300);
    await db.shutdown();
  });

  it('switches again when it crashed during the switch, with nothing lost', async () => {
    const dataDir = await encrypted('crash-in-switch');
    const end = await crashWithTail(dataDir, Buffer.alloc(500, 0xab));
    // As if the node died right after the new timeline's files were made, before the control file named it.
    const control = readControlFile(dataDir);
    expect(startNewTimeline(dataDir, control, 1, end, () => undefined, { crashRecoveryReason: 'test' })).toBe(2);
    expect(fs.existsSync(historyFilePath(dataDir, 2))).toBe(true);
    const db = await Database.open(options(dataDir));
    expect(db.timeline).toBe(3);
    expect(await count(db, 'acked')).toBe(300);
    await db.shutdown();
  });

  it('switches above newTimelineAbove (rewind passes its source\'s timeline)', async () => {
    const dataDir = await encrypted('above');
    await crashWithTail(dataDir, Buffer.alloc(500, 0xab));
    const db = await Database.open({ ...options(dataDir), newTimelineAbove: 5 });
    expect(db.timeline).toBe(6);
    expect(readTimeLineHistory(dataDir, 6)[1]).toMatchObject({ tli: 1 });
    expect(await count(db, 'acked')).toBe(300);
    await db.shutdown();
  });

  it('leaves an unencrypted cluster on its timeline: the torn tail is zeroed and written over, as before', async () => {
    const dataDir = path.join(root, 'plain');
    await bootstrapDataDirectory(dataDir, { walSegmentSize: SEGMENT });
    const end = await crashWithTail(dataDir, Buffer.alloc(500, 0xab));
    const db = await Database.open(options(dataDir));
    expect(db.timeline).toBe(1);
    expect(fs.existsSync(historyFilePath(dataDir, 2))).toBe(false);
    expect(await count(db, 'acked')).toBe(300);
    await db.shutdown();
    expect(readAt(segmentPath(dataDir, 1, Math.floor(end / SEGMENT), SEGMENT), end, 500).equals(Buffer.alloc(500, 0xab))).toBe(false);
  });
});
