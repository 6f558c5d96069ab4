/**
 * The two ways a commit's WAL reaches the disk: the main thread writing and syncing it itself
 * while the WAL I/O worker is idle (Xlog.flushOnMainThread), and the hand-off to the worker
 * when the writer claim is held, the group is large or a segment boundary is near. Real files,
 * real fdatasyncs, the real worker thread.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { XLOG_BLCKSZ } from '../constants.js';
import { generateDataKeys } from '../crypto/key-file.js';
import { registerDataKeys, unregisterDataKeys } from '../crypto/registry.js';
import type { Lsn } from '../lsn.js';
import { SegmentFilePageSource, segmentPath } from './wal-files.js';
import { CtlIndex, PosIndex, WriterClaim, createWalShared, loadPos, releaseWriter, tryClaimWriter, walSharedViews, type WalSharedViews } from './wal-shared.js';
import { XLogReader } from './xlog-reader.js';
import { SIZE_OF_XLOG_RECORD } from './xlog-record.js';
import { PreparedWalIo, Xlog } from './xlog.js';
import { PROBE_EVERY } from './main-flush-policy.js';
import { WalCipher } from '../crypto/wal-cipher.js';

const SEGMENT = 1024 * 1024;
const SYSTEM_ID = 7300000000000000002n;
const RING_PAGES = 16;
let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-flush-paths-'));
  fs.mkdirSync(path.join(dir, 'pg_wal'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** An Xlog whose shared control block the test can see (through a worker spawned ahead of time). */
function newXlog(insertLsn = SEGMENT): { xlog: Xlog; views: WalSharedViews } {
  const prepared = new PreparedWalIo(dir, SEGMENT, RING_PAGES * XLOG_BLCKSZ);
  const xlog = new Xlog({
    dataDir: dir, segmentSize: SEGMENT, walBuffersBytes: RING_PAGES * XLOG_BLCKSZ, systemId: SYSTEM_ID, timeline: 1,
    fsync: true, insertLsn: insertLsn as Lsn, prevRecordLsn: 0 as Lsn, prepared,
  });
  return { xlog, views: walSharedViews(prepared.ctlSab) };
}

function insert(xlog: Xlog, size: number, seed: number): Lsn {
  const record = Buffer.alloc(SIZE_OF_XLOG_RECORD + 2 + size);
  for (let i = 0; i < size; i++) record[SIZE_OF_XLOG_RECORD + 2 + i] = (seed * 31 + i) & 0xff;
  return xlog.xlogInsertRecord(record, record.length, 1, 0, seed).end;
}

/** Resolves after `turns` turns of the event loop (each a setImmediate, microtasks in between). */
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** A lone client's round trip between two commits. */
async function roundTrip(): Promise<void> {
  await new Promise<void>((resolve) => setTimeout(resolve, 1));
}

function countRecords(from: number): number {
  const r = new XLogReader({ segmentSize: SEGMENT, systemId: SYSTEM_ID, source: new SegmentFilePageSource(dir, () => 1, SEGMENT) });
  r.beginRead(from as Lsn);
  let n = 0;
  while (r.readRecord().ok) n++;
  return n;
}

describe('the writer claim', () => {
  it('goes to one holder at a time, and only that holder can release it', () => {
    const views = walSharedViews(createWalShared());
    expect(tryClaimWriter(views, WriterClaim.main)).toBe(true);
    expect(tryClaimWriter(views, WriterClaim.worker)).toBe(false);
    expect(tryClaimWriter(views, WriterClaim.main)).toBe(false);
    expect(() => releaseWriter(views, WriterClaim.worker)).toThrow(/held by 2, not by 1/);
    releaseWriter(views, WriterClaim.main);
    expect(Atomics.load(views.ctl, CtlIndex.writer)).toBe(WriterClaim.idle);
    expect(tryClaimWriter(views, WriterClaim.worker)).toBe(true);
    expect(tryClaimWriter(views, WriterClaim.main)).toBe(false);
    releaseWriter(views, WriterClaim.worker);
  });
});

describe('Xlog flushes', () => {
  it('leaves the first flush to the worker, which creates and opens the segment, then writes and syncs single commits on the main thread', async () => {
    const { xlog, views } = newXlog();
    await xlog.xlogFlush(insert(xlog, 100, 0));
    expect(xlog.stats().mainThreadFlushes).toBe(0);
    expect(loadPos(views, PosIndex.openSegNo)).toBe(1);

    // With the first, fewer than PROBE_EVERY: none is handed to the worker to look for other sessions.
    for (let i = 1; i < PROBE_EVERY - 1; i++) {
      await roundTrip();
      const before = xlog.stats();
      const end = insert(xlog, 100 + i * 37, i);
      let released = false;
      const flushed = xlog.xlogFlush(end).then(() => (released = true));
      // The flush runs at the end of this turn and releases its waiter there, with no wait for
      // another thread: by the next turn it is done.
      await turns(1);
      expect(released).toBe(true);
      await flushed;
      const after = xlog.stats();
      expect(after.mainThreadFlushes).toBe(before.mainThreadFlushes + 1);
      expect(after.fsyncs).toBe(before.fsyncs + 1);
      expect(after.bytesWritten).toBeGreaterThan(before.bytesWritten);
      // Published as the worker publishes: written and flushed to the end of the commit.
      expect(xlog.getWriteRecPtr()).toBe(end);
      expect(xlog.getFlushRecPtr()).toBe(end);
      expect(Atomics.load(views.ctl, CtlIndex.writer)).toBe(WriterClaim.idle);
      expect(Atomics.load(views.ctl, CtlIndex.segmentDirty)).toBe(0);
    }
    await xlog.shutdown();
    expect(countRecords(SEGMENT + 40)).toBe(PROBE_EVERY - 1);
  });

  it('hands one lone commit in PROBE_EVERY to the worker, to see whether another session commits meanwhile', async () => {
    const { xlog } = newXlog();
    await xlog.xlogFlush(insert(xlog, 100, 0));
    for (let i = 1; i <= 2 * PROBE_EVERY; i++) {
      await roundTrip();
      await xlog.xlogFlush(insert(xlog, 100, i));
    }
    expect(xlog.stats().mainThreadFlushes).toBe(2 * PROBE_EVERY - 2);
    await xlog.shutdown();
    expect(countRecords(SEGMENT + 40)).toBe(2 * PROBE_EVERY + 1);
  });

  it('hands a flush to the worker while the claim is held, and the worker flushes the grown group with one fdatasync once it is released', async () => {
    const { xlog, views } = newXlog();
    await xlog.xlogFlush(insert(xlog, 100, 0));
    // Another writer holds WALWriteLock (here the test, as the main thread's own earlier flush would).
    expect(tryClaimWriter(views, WriterClaim.main)).toBe(true);
    const before = xlog.stats();
    let released = 0;
    const flushes = [xlog.xlogFlush(insert(xlog, 100, 1)).then(() => released++)];
    await turns(3);
    // More commits arrive meanwhile: they join the same group.
    for (let i = 2; i < 6; i++) flushes.push(xlog.xlogFlush(insert(xlog, 100, i)).then(() => released++));
    await turns(3);
    expect(released).toBe(0);
    expect(xlog.stats().fsyncs).toBe(before.fsyncs);
    releaseWriter(views, WriterClaim.main);
    await Promise.all(flushes);
    expect(released).toBe(5);
    const after = xlog.stats();
    expect(after.mainThreadFlushes).toBe(before.mainThreadFlushes);
    expect(after.fsyncs).toBe(before.fsyncs + 1);
    expect(xlog.getFlushRecPtr()).toBe(xlog.getInsertRecPtr());
    await xlog.shutdown();
    expect(countRecords(SEGMENT + 40)).toBe(6);
  });

  it('leaves commits to the worker once one was requested while a flush was in flight (another session committing), until lone commits follow again', async () => {
    const { xlog, views } = newXlog();
    await xlog.xlogFlush(insert(xlog, 100, 0));
    await roundTrip();
    await xlog.xlogFlush(insert(xlog, 100, 1));
    const start = xlog.stats().mainThreadFlushes;
    expect(start).toBe(1);
    // A flush in flight: the worker busy with it (the test holds the claim in its place).
    expect(tryClaimWriter(views, WriterClaim.main)).toBe(true);
    const first = xlog.xlogFlush(insert(xlog, 100, 2));
    await turns(2);
    // Another session's commit, read while that flush is in flight.
    const second = xlog.xlogFlush(insert(xlog, 100, 3));
    await turns(2);
    releaseWriter(views, WriterClaim.main);
    await Promise.all([first, second]);
    // The next lone commits still go to the worker: someone else was committing a moment ago.
    await roundTrip();
    await xlog.xlogFlush(insert(xlog, 100, 4));
    expect(xlog.stats().mainThreadFlushes).toBe(start);
    // Once lone commits have followed for a while, the main thread flushes again.
    for (let i = 5; i < 10; i++) {
      await roundTrip();
      await xlog.xlogFlush(insert(xlog, 100, i));
    }
    expect(xlog.stats().mainThreadFlushes).toBeGreaterThan(start);
    await xlog.shutdown();
    expect(countRecords(SEGMENT + 40)).toBe(10);
  });

  it('leaves a group of concurrent committers to the worker: one fdatasync for all of them', async () => {
    const { xlog } = newXlog();
    await xlog.xlogFlush(insert(xlog, 100, 0));
    const before = xlog.stats();
    const flushes: Promise<void>[] = [];
    for (let i = 1; i <= 50; i++) flushes.push(xlog.xlogFlush(insert(xlog, 100, i)));
    await Promise.all(flushes);
    const after = xlog.stats();
    expect(after.mainThreadFlushes).toBe(before.mainThreadFlushes);
    expect(after.fsyncs).toBe(before.fsyncs + 1);
    await xlog.shutdown();
  });

  it('crosses segment boundaries through the worker, and keeps every commit', async () => {
    const { xlog, views } = newXlog();
    let commits = 0;
    let crossings = 0;
    while (xlog.getInsertRecPtr() < SEGMENT * 3.5) {
      const segBefore = loadPos(views, PosIndex.openSegNo);
      const mainBefore = xlog.stats().mainThreadFlushes;
      await roundTrip();
      await xlog.xlogFlush(insert(xlog, 3000 + (commits % 7) * 1000, commits));
      commits++;
      if (loadPos(views, PosIndex.openSegNo) !== segBefore) {
        crossings++;
        // Only the worker creates and switches segments.
        expect(xlog.stats().mainThreadFlushes).toBe(mainBefore);
      }
    }
    // -1 (none yet) to 1, then 1 to 2 and 2 to 3.
    expect(crossings).toBe(3);
    expect(xlog.stats().mainThreadFlushes).toBeGreaterThan(commits / 2);
    await xlog.shutdown();
    expect(countRecords(SEGMENT + 40)).toBe(commits);
  });

  it('in an encrypted data directory writes only final bytes encrypted, the rest of the page as clear zeros', async () => {
    const keys = generateDataKeys();
    registerDataKeys(dir, keys);
    try {
      const { xlog } = newXlog();
      const ends: Lsn[] = [];
      for (let i = 0; i < 10; i++) {
        await roundTrip();
        ends.push(insert(xlog, 300, i));
        await xlog.xlogFlush(ends[i]!);
      }
      expect(xlog.stats().mainThreadFlushes).toBe(9);
      const last = ends[9]!;
      const file = segmentPath(dir, 1, 1, SEGMENT);
      const onDisk = fs.readFileSync(file);
      // Past the last commit the page is clear zeros, never keystream.
      const pageEnd = Math.ceil(last / XLOG_BLCKSZ) * XLOG_BLCKSZ;
      expect(onDisk.subarray(last - SEGMENT, pageEnd - SEGMENT).every((b) => b === 0)).toBe(true);
      await xlog.shutdown();
      // Decrypted, the file reads back as ten valid records.
      const plain = new WalCipher(keys.walKey).applyToNew(1, SEGMENT, fs.readFileSync(file).subarray(0, last - SEGMENT));
      unregisterDataKeys(dir);
      fs.writeFileSync(file, Buffer.concat([plain, Buffer.alloc(SEGMENT - plain.length)]));
      expect(countRecords(SEGMENT + 40)).toBe(10);
    } finally {
      unregisterDataKeys(dir);
    }
  });

  it('treats an I/O error on the main thread as a PANIC: waiters fail, failure listeners run, and nobody writes again', async () => {
    const { xlog, views } = newXlog();
    await xlog.xlogFlush(insert(xlog, 100, 0));
    await roundTrip();
    await xlog.xlogFlush(insert(xlog, 100, 1));
    expect(xlog.stats().mainThreadFlushes).toBe(1);
    // A failing write cannot be made with a real file here: close the main thread's descriptor
    // under it, so that its next write gets EBADF.
    const mainSegment = (xlog as unknown as { mainSegment: { fd: number } }).mainSegment;
    fs.closeSync(mainSegment.fd);
    const failures: Error[] = [];
    xlog.onFailure((error) => failures.push(error));
    const written = xlog.getWriteRecPtr();
    await roundTrip();
    await expect(xlog.xlogFlush(insert(xlog, 100, 2))).rejects.toMatchObject({ code: 'io_error', severity: 'PANIC' });
    expect(failures).toHaveLength(1);
    expect(Atomics.load(views.ctl, CtlIndex.failed)).toBe(1);
    // The claim stays held: the worker will not write after the failure either.
    expect(Atomics.load(views.ctl, CtlIndex.writer)).toBe(WriterClaim.main);
    expect(xlog.getWriteRecPtr()).toBe(written);
    expect(() => insert(xlog, 100, 3)).toThrow(/could not write or fsync WAL/);
    await xlog.abort();
  });
});
