/**
 * The WAL I/O worker: XLogWrite's writes and fsyncs, on a thread of their own.
 *
 * libuv's four threads are shared by every asynchronous fs call of the node (checkpoint writes,
 * base backups), so a commit's fdatasync could queue behind them. This worker does synchronous
 * writes and fdatasyncs straight out of the shared WAL buffers, so group commit has a path that
 * nothing else can stand in front of.
 *
 * It loops: take the highest requested write/flush positions, write whole pages (the last one
 * partial, rewritten later as PostgreSQL does), fdatasync when a flush was asked, publish the new
 * positions, wake the main thread. When idle it creates the next segment ahead of time, a chunk
 * at a time so that a request never waits for more than one (SegmentPrecreation). An I/O
 * error is fatal: it sets `failed` and exits; the postmaster then crashes and recovers the node.
 *
 * In an encrypted data directory it encrypts on the way out (crypto/wal-cipher.ts): exactly the
 * bytes below the requested position, which are final (whole records copied into the ring before
 * the request was raised), under the counters of the segment file's timeline; the rest of the
 * last page goes out as clear zeros, because the keystream there will encrypt the records that
 * fill the page later. The ring itself stays plaintext for the main thread.
 */
import * as fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { XLOG_BLCKSZ } from '../constants.js';
import { WalCipher } from '../crypto/wal-cipher.js';
import { SegmentPrecreation, createSegmentFile, segmentPath } from './wal-files.js';
import { segmentOf } from './xlog-internal.js';
import { CtlIndex, PosIndex, loadPos, walSharedViews, type WalIoWorkerData } from './wal-shared.js';

const data = workerData as WalIoWorkerData;
const views = walSharedViews(data.ctlSab);
const ring = Buffer.from(data.ringSab);
const ringPages = data.ringBytes / XLOG_BLCKSZ;

// Spawned ahead of time, the worker waits here until the positions below are meaningful.
while (Atomics.load(views.ctl, CtlIndex.started) === 0) Atomics.wait(views.ctl, CtlIndex.started, 0);

/** The WAL cipher of an encrypted data directory, with its key from workerData; null when not encrypted. */
const cipher = data.walKey === undefined ? null : new WalCipher(Buffer.from(data.walKey));
/** Where pages are encrypted before they are written: a bounded chunk at a time. */
const ENCRYPT_CHUNK_BYTES = 1024 * 1024;
const encrypted = cipher === null ? null : Buffer.allocUnsafe(ENCRYPT_CHUNK_BYTES);

let fd: number | null = null;
let fdSegNo = -1;
/** The timeline in the open segment's name: the one its bytes are encrypted under. */
let fdTimeline = -1;
let fdDirty = false;
let written = loadPos(views, PosIndex.written);
let flushed = loadPos(views, PosIndex.flushed);
let fsyncCount = 0;
let bytesWritten = 0;
/** The last segment known to exist ahead of the write position. */
let precreatedSegNo = -1;
/** The segment being created ahead, a chunk per idle moment. */
let precreation: SegmentPrecreation | null = null;

function fsyncOn(): boolean {
  return Atomics.load(views.ctl, CtlIndex.fsync) !== 0;
}

function openSegment(segNo: number): number {
  if (segNo === fdSegNo && fd !== null) return fd;
  if (fd !== null) {
    // Leaving a segment: make it durable now (XLogWrite fsyncs a finished segment), so that a
    // later flush only has one file to sync.
    if (fdDirty && fsyncOn()) {
      fs.fdatasyncSync(fd);
      fsyncCount++;
    }
    fs.closeSync(fd);
  }
  const timeline = Atomics.load(views.ctl, CtlIndex.timeline);
  // Needed now: created whole here, not a chunk at a time.
  if (precreation?.segNo === segNo) {
    precreation.abandon();
    precreation = null;
  }
  createSegmentFile(data.dataDir, timeline, segNo, data.segmentSize);
  fd = fs.openSync(segmentPath(data.dataDir, timeline, segNo, data.segmentSize), 'r+');
  fdSegNo = segNo;
  fdTimeline = timeline;
  fdDirty = false;
  return fd;
}

/** Writes the pages covering [written, target) from the ring; whole pages, in as few calls as possible. */
function writeUpTo(target: number): void {
  let page = written - (written % XLOG_BLCKSZ);
  const lastPageEnd = Math.ceil(target / XLOG_BLCKSZ) * XLOG_BLCKSZ;
  while (page < lastPageEnd) {
    const segNo = segmentOf(page, data.segmentSize);
    const segEnd = (segNo + 1) * data.segmentSize;
    const slot = (page / XLOG_BLCKSZ) % ringPages;
    const contiguousPages = Math.min(ringPages - slot, (Math.min(lastPageEnd, segEnd) - page) / XLOG_BLCKSZ);
    const length = contiguousPages * XLOG_BLCKSZ;
    const file = openSegment(segNo);
    if (cipher === null) {
      let done = 0;
      while (done < length) {
        done += fs.writeSync(file, ring, slot * XLOG_BLCKSZ + done, length - done, (page % data.segmentSize) + done);
      }
    } else {
      writeEncrypted(file, slot * XLOG_BLCKSZ, length, page, target);
    }
    fdDirty = true;
    bytesWritten += length;
    page += length;
  }
  written = target;
}

/**
 * Writes ring bytes [ringOffset, ringOffset + length), WAL [lsn, lsn + length), encrypted up to
 * `finalEnd` and clear zeros after it (see the banner: never a keystream over bytes not final).
 */
function writeEncrypted(file: number, ringOffset: number, length: number, lsn: number, finalEnd: number): void {
  for (let chunkStart = 0; chunkStart < length; chunkStart += ENCRYPT_CHUNK_BYTES) {
    const n = Math.min(ENCRYPT_CHUNK_BYTES, length - chunkStart);
    const chunkLsn = lsn + chunkStart;
    const finalBytes = Math.max(0, Math.min(n, finalEnd - chunkLsn));
    cipher!.apply(fdTimeline, chunkLsn, ring, ringOffset + chunkStart, finalBytes, encrypted!, 0);
    encrypted!.fill(0, finalBytes, n);
    let done = 0;
    while (done < n) done += fs.writeSync(file, encrypted!, done, n - done, (chunkLsn % data.segmentSize) + done);
  }
}

function flush(): void {
  if (fd !== null && fdDirty && fsyncOn()) {
    fs.fdatasyncSync(fd);
    fsyncCount++;
  }
  fdDirty = false;
  flushed = written;
}

function publish(): void {
  Atomics.store(views.pos, PosIndex.written, BigInt(written));
  Atomics.store(views.pos, PosIndex.flushed, BigInt(flushed));
  Atomics.store(views.pos, PosIndex.fsyncCount, BigInt(fsyncCount));
  Atomics.store(views.pos, PosIndex.bytesWritten, BigInt(bytesWritten));
  Atomics.add(views.ctl, CtlIndex.doneSeq, 1);
  Atomics.notify(views.ctl, CtlIndex.doneSeq);
}

/**
 * Creates the segment after the current one while nothing is asked of us, one chunk per call;
 * returns whether it did some of it (the requests are then looked at again before the next).
 */
function precreateNextSegment(): boolean {
  const next = segmentOf(written, data.segmentSize) + 1;
  if (next <= precreatedSegNo) return false;
  if (precreation !== null && precreation.segNo !== next) {
    precreation.abandon();
    precreation = null;
  }
  precreation ??= new SegmentPrecreation(data.dataDir, Atomics.load(views.ctl, CtlIndex.timeline), next, data.segmentSize);
  if (precreation.step()) {
    precreatedSegNo = next;
    precreation = null;
  }
  return true;
}

function main(): void {
  for (;;) {
    const seq = Atomics.load(views.ctl, CtlIndex.requestSeq);
    if (Atomics.load(views.ctl, CtlIndex.stop) !== 0) break;
    const requestWrite = loadPos(views, PosIndex.requestWrite);
    const requestFlush = loadPos(views, PosIndex.requestFlush);
    const target = Math.max(requestWrite, requestFlush);
    let worked = false;
    if (target > written) {
      writeUpTo(target);
      worked = true;
    }
    if (requestFlush > flushed) {
      flush();
      worked = true;
    }
    if (worked) {
      publish();
      continue;
    }
    if (precreateNextSegment()) continue;
    // Announce the sleep, then look once more: a request stored before the main thread saw the
    // flag is caught here; one stored after it comes with a notify.
    Atomics.store(views.ctl, CtlIndex.workerSleeping, 1);
    if (loadPos(views, PosIndex.requestFlush) <= flushed && loadPos(views, PosIndex.requestWrite) <= written &&
        Atomics.load(views.ctl, CtlIndex.stop) === 0) {
      Atomics.wait(views.ctl, CtlIndex.requestSeq, seq);
    }
    Atomics.store(views.ctl, CtlIndex.workerSleeping, 0);
  }
  precreation?.abandon();
  if (fd !== null) {
    if (fdDirty && fsyncOn()) fs.fdatasyncSync(fd);
    fs.closeSync(fd);
  }
}

try {
  main();
} catch (error) {
  Atomics.store(views.ctl, CtlIndex.failed, 1);
  Atomics.add(views.ctl, CtlIndex.doneSeq, 1);
  Atomics.notify(views.ctl, CtlIndex.doneSeq);
  parentPort?.postMessage({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
}
