/**
 * WalReceiveWriter with its real thread, real files and fdatasync: what it reports as written and
 * flushed is on disk, in order; the end of a timeline and close flush everything handed over; a
 * write that cannot be done is reported as a failure and never as written; WAL sent as stored
 * keeps its timeline label through the ring.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Lsn } from '../lsn.js';
import type { ArchiveStatus } from './archive-status.js';
import { generateDataKeys } from '../crypto/key-file.js';
import { registerDataKeys, unregisterDataKeys } from '../crypto/registry.js';
import { WalCipher } from '../crypto/wal-cipher.js';
import { WAL_RECEIVE_INLINE_BYTES_MAX, WalReceiveWriter } from './wal-receive-writer.js';
import { WalReceiveCtl, WalReceiveOwner, type WalReceiveSharedViews } from './wal-receive-shared.js';
import { xlogFileName } from './xlog-internal.js';

const SEGMENT = 64 * 1024;
let dataDir: string;

interface Observed {
  progress: Array<{ written: number; flushed: number; flushMoved: boolean }>;
  statuses: Array<[string, ArchiveStatus]>;
  failures: Error[];
}

function writer(startLsn: number, timeline = 1, ringBytes?: number): { w: WalReceiveWriter; seen: Observed } {
  const seen: Observed = { progress: [], statuses: [], failures: [] };
  const w = new WalReceiveWriter({
    dataDir, timeline, segmentSize: SEGMENT, startLsn: startLsn as Lsn, archiveMode: 'on',
    onProgress: (written, flushed, flushMoved) => seen.progress.push({ written, flushed, flushMoved }),
    onStatus: (name, status) => seen.statuses.push([name, status]),
    onFailure: (error) => seen.failures.push(error),
    ...(ringBytes !== undefined ? { ringBytes } : {}),
  });
  return { w, seen };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** The writer's shared control block (private): what the thread holds is only seen there. */
function sharedViews(w: WalReceiveWriter): WalReceiveSharedViews {
  return (w as unknown as { views: WalReceiveSharedViews }).views;
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

function segmentBytes(segNo: number, timeline = 1): Buffer {
  return fs.readFileSync(path.join(dataDir, 'pg_wal', xlogFileName(timeline, segNo, SEGMENT)));
}

beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-receive-writer-'));
  fs.mkdirSync(path.join(dataDir, 'pg_wal', 'archive_status'), { recursive: true });
});
afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

describe('WalReceiveWriter', () => {
  it('writes on its thread, reports written then flushed, and what it reports is on disk', async () => {
    const start = 2 * SEGMENT;
    const { w, seen } = writer(start);
    const chunks = [pattern(5000, 1), pattern(SEGMENT, 2), pattern(7000, 3)];
    let at = start;
    for (const chunk of chunks) {
      w.write(at as Lsn, chunk);
      at += chunk.length;
    }
    await until(() => w.flushed === at, 'the flush of everything handed over');
    expect(w.written).toBe(at);
    expect(w.queuedBytes).toBe(0);
    // Positions only move forward, and flushed never passes written.
    for (let i = 0; i < seen.progress.length; i++) {
      const p = seen.progress[i]!;
      expect(p.flushed).toBeLessThanOrEqual(p.written);
      if (i > 0) expect(p.flushed).toBeGreaterThanOrEqual(seen.progress[i - 1]!.flushed);
    }
    expect(seen.progress.some((p) => p.flushMoved)).toBe(true);
    // The bytes are where their LSNs say, across the segment boundary.
    const all = Buffer.concat(chunks);
    const onDisk = Buffer.concat([segmentBytes(2), segmentBytes(3)]).subarray(0, all.length);
    expect(onDisk.equals(all)).toBe(true);
    await w.close();
    // The finished segment got its status; the unfinished one did not. (Statuses come as
    // messages, positions through shared memory: once closed, every message is in.)
    expect(seen.statuses).toEqual([[xlogFileName(1, 2, SEGMENT), 'done']]);
    expect(seen.failures).toEqual([]);
  });

  it('copies what it is given: the caller may reuse its buffer at once', async () => {
    const { w } = writer(0);
    const frame = Buffer.alloc(4096);
    pattern(4096, 7).copy(frame);
    w.write(0 as Lsn, frame);
    frame.fill(0xee);
    w.write(4096 as Lsn, frame.subarray(0, 1000));
    await until(() => w.flushed === 5096, 'the flush');
    expect(segmentBytes(0).subarray(0, 4096).equals(pattern(4096, 7))).toBe(true);
    expect(segmentBytes(0).subarray(4096, 5096).equals(Buffer.alloc(1000, 0xee))).toBe(true);
    await w.close();
  });

  it('keeps WAL that does not fit in a full ring, in order, and writes it all (wrapping around the ring)', async () => {
    const { w, seen } = writer(0, 1, 16 * 1024);
    const chunks = Array.from({ length: 64 }, (_, i) => pattern(1000 + 37 * i, i));
    // One piece larger than the ring itself is cut to fit.
    chunks.push(pattern(40 * 1024, 99));
    let at = 0;
    for (const chunk of chunks) {
      w.write(at as Lsn, chunk);
      at += chunk.length;
    }
    expect(w.queuedBytes).toBe(at);
    await until(() => w.flushed === at, 'the flush of everything handed over');
    const onDisk = Buffer.concat([segmentBytes(0), segmentBytes(1), segmentBytes(2)]).subarray(0, at);
    expect(onDisk.equals(Buffer.concat(chunks))).toBe(true);
    expect(w.queuedBytes).toBe(0);
    await w.close();
    expect(seen.failures).toEqual([]);
  });

  it('in an encrypted directory, carries each piece\'s label through the ring and its overflow: as stored, converted or encrypted', async () => {
    const keys = generateDataKeys();
    registerDataKeys(dataDir, keys);
    try {
      const cipher = new WalCipher(keys.walKey);
      const { w, seen } = writer(0, 1, 16 * 1024);
      const plain = pattern(80 * 1024, 5);
      let at = 0;
      for (let i = 0; at < plain.length; i++) {
        const piece = plain.subarray(at, Math.min(plain.length, at + 1500 + 113 * i));
        // Timeline 1's file: sent under timeline 1 (as is), under 2 (a switch segment), or plain.
        const label = [1, 2, null][i % 3]!;
        w.write(at as Lsn, label === null ? piece : cipher.applyToNew(label, at, piece), label);
        at += piece.length;
      }
      await until(() => w.flushed === at, 'the flush of everything handed over');
      const onDisk = Buffer.concat([segmentBytes(0), segmentBytes(1)]).subarray(0, at);
      expect(onDisk.equals(cipher.applyToNew(1, 0, plain))).toBe(true);
      await w.close();
      expect(seen.failures).toEqual([]);
    } finally {
      unregisterDataKeys(dataDir);
    }
  });

  it('close flushes WAL still waiting for room in the ring', async () => {
    const { w } = writer(0, 1, 16 * 1024);
    const chunk = pattern(60 * 1024, 3);
    w.write(0 as Lsn, chunk);
    await w.close();
    expect(w.flushed).toBe(chunk.length);
    expect(segmentBytes(0).subarray(0, chunk.length).equals(chunk)).toBe(true);
  });

  it('at the end of a timeline flushes and finishes its last segment; close flushes the rest', async () => {
    const { w, seen } = writer(SEGMENT);
    w.write(SEGMENT as Lsn, pattern(3000, 4));
    await w.endOfTimeline();
    expect(w.flushed).toBe(SEGMENT + 3000);
    expect(seen.statuses).toEqual([[xlogFileName(1, 1, SEGMENT), 'done']]);
    await w.close();
    expect(seen.failures).toEqual([]);
  });

  it('writes a small message on the main thread: fsynced at the end of the turn, written and flushed reported together', async () => {
    const start = SEGMENT + 100;
    const { w, seen } = writer(start);
    w.write(start as Lsn, pattern(300, 6));
    w.write((start + 300) as Lsn, pattern(200, 7));
    // Nothing is reported before the turn's fdatasync.
    expect(w.inlineBytes).toBe(500);
    expect(seen.progress).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen.progress).toEqual([{ written: start + 500, flushed: start + 500, flushMoved: true }]);
    expect(w.flushed).toBe(start + 500);
    expect(segmentBytes(1).subarray(100, 600).equals(Buffer.concat([pattern(300, 6), pattern(200, 7)]))).toBe(true);
    await w.close();
    expect(seen.failures).toEqual([]);
  });

  it('hands WAL to the thread past a turn\'s budget or at a segment boundary, and writes on the main thread again once it is idle', async () => {
    const start = 50;
    const { w, seen } = writer(start);
    const chunks: Buffer[] = [];
    let at = start;
    const put = (n: number): void => {
      const chunk = pattern(n, chunks.length);
      chunks.push(chunk);
      w.write(at as Lsn, chunk);
      at += n;
    };
    // More than the budget in one turn: the rest goes to the thread, across two segment boundaries.
    for (let i = 0; i < 3 * SEGMENT / 1000; i++) put(1000);
    expect(w.inlineBytes).toBeGreaterThan(0);
    expect(w.inlineBytes).toBeLessThanOrEqual(WAL_RECEIVE_INLINE_BYTES_MAX);
    await until(() => w.flushed === at, 'the flush of everything');
    // The thread publishes the flush, then gives the files back on its way to sleep.
    await until(() => Atomics.load(sharedViews(w).ctl, WalReceiveCtl.owner) === WalReceiveOwner.idle, 'the thread to give the files back');
    // The thread is idle again: small messages are the main thread's once more.
    const before = w.inlineBytes;
    put(700);
    put(900);
    expect(w.inlineBytes).toBe(before + 1600);
    await until(() => w.flushed === at, 'the main thread\'s flush');
    const onDisk = Buffer.concat([segmentBytes(0), segmentBytes(1), segmentBytes(2), segmentBytes(3)]).subarray(start, at);
    expect(onDisk.equals(Buffer.concat(chunks))).toBe(true);
    // Then the end of the timeline finishes the segment the main thread wrote last, once.
    await w.endOfTimeline();
    await w.close();
    expect(seen.statuses).toEqual([0, 1, 2, 3].map((segNo) => [xlogFileName(1, segNo, SEGMENT), 'done']));
    expect(seen.failures).toEqual([]);
  });

  it('makes the next segment ahead once three quarters of the current one are written, and writes into it', async () => {
    const start = SEGMENT + 100;
    const { w, seen } = writer(start);
    const nextSegment = path.join(dataDir, 'pg_wal', xlogFileName(1, 2, SEGMENT));
    const chunks: Buffer[] = [];
    let at = start;
    const put = async (n: number): Promise<void> => {
      const chunk = pattern(n, chunks.length);
      chunks.push(chunk);
      w.write(at as Lsn, chunk);
      at += n;
      await until(() => w.flushed === at, 'the flush');
    };
    // Written on the main thread up to 70% of segment 1: the thread was not rung, and sleeps.
    while (at < SEGMENT + 0.7 * SEGMENT) await put(1000);
    expect(w.inlineBytes).toBe(at - start);
    await until(() => Atomics.load(sharedViews(w).ctl, WalReceiveCtl.threadSleeping) === 1, 'the thread to sleep');
    expect(fs.existsSync(nextSegment)).toBe(false);
    // Into the last quarter: the thread makes segment 2, whole and zero-filled, before any WAL for it.
    while (at < SEGMENT + 0.8 * SEGMENT) await put(1000);
    await until(() => fs.existsSync(nextSegment), 'segment 2 made ahead');
    expect(fs.readFileSync(nextSegment).equals(Buffer.alloc(SEGMENT))).toBe(true);
    // Across the boundary: the WAL lands in that file, which is not made again over it.
    while (at < 2 * SEGMENT + 5000) await put(1000);
    const onDisk = Buffer.concat([segmentBytes(1), segmentBytes(2)]).subarray(100, at - SEGMENT);
    expect(onDisk.equals(Buffer.concat(chunks))).toBe(true);
    await w.close();
    expect(fs.readdirSync(path.join(dataDir, 'pg_wal')).filter((name) => name.startsWith('xlogtemp.'))).toEqual([]);
    expect(seen.failures).toEqual([]);
  });

  it('reports a write it cannot do as a failure, never as written', async () => {
    const { w, seen } = writer(0);
    // pg_wal is gone: the segment cannot be created.
    fs.rmSync(path.join(dataDir, 'pg_wal'), { recursive: true, force: true });
    w.write(0 as Lsn, pattern(100, 5));
    await until(() => seen.failures.length > 0, 'the failure');
    expect(seen.failures[0]!.message).toMatch(/ENOENT|no such file/);
    expect(w.written).toBe(0);
    expect(w.flushed).toBe(0);
    await w.close();
  });
});
