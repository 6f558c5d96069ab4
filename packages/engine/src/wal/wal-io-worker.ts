/**
 * The WAL I/O worker: XLogWrite's writes and fsyncs, on a thread of their own.
 *
 * libuv's four threads are shared by every asynchronous fs call of the node (checkpoint writes,
 * base backups), so a commit's fdatasync could queue behind them. This worker does synchronous
 * writes and fdatasyncs straight out of the shared WAL buffers, so group commit has a path that
 * nothing else can stand in front of.
 *
 * It loops: take the highest requested write/flush positions; when there is work, take the
 * writer claim (WALWriteLock, wal-shared.ts), write whole pages (wal-page-writer.ts: the last one
 * partial, rewritten later as PostgreSQL does; encrypted in an encrypted data directory),
 * fdatasync when a flush was asked, publish the new positions, release the claim. The main
 * thread may hold the claim instead, flushing a commit itself while the worker is idle (xlog.ts,
 * `flushOnMainThread`): the worker then waits for it and starts from the positions it published.
 * Only the worker creates, opens and leaves segments; it publishes the one it has open
 * (`openSegNo`, `openTimeline`), the only one the main thread writes into.
 *
 * When idle it creates the next segment ahead of time, a chunk at a time so that a request never
 * waits for more than one (SegmentsAhead); that file is not the open segment, so it needs no
 * claim. An I/O error is fatal: it sets `failed` and exits; the postmaster then crashes and
 * recovers the node.
 */
import * as fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { walSndDirectSend, walSndDirectTimestamp, walSndDirectViews } from './walsnd-direct.js';
import { SegmentsAhead, createSegmentFile, segmentPath } from './wal-files.js';
import { WalPageWriter, syncSegmentIfDirty, type OpenSegment } from './wal-page-writer.js';
import {
  CtlIndex,
  PosIndex,
  WriterClaim,
  loadPos,
  loadWriterPositions,
  publishAndReleaseWriter,
  releaseWriter,
  storePos,
  tryClaimWriter,
  walSharedViews,
  type WalIoWorkerData,
} from './wal-shared.js';

const data = workerData as WalIoWorkerData;
const views = walSharedViews(data.ctlSab);

// Spawned ahead of time, the worker waits here until the positions below are meaningful.
while (Atomics.load(views.ctl, CtlIndex.started) === 0) Atomics.wait(views.ctl, CtlIndex.started, 0);

const ring = Buffer.from(data.ringSab);
const pageWriter = new WalPageWriter(ring, data.segmentSize, data.walKey);
const walSndDirect = walSndDirectViews(data.walSndDirectSab);
/** A wait for the main thread's claim this long means it died mid-flush; look at `stop` again. */
const CLAIM_WAIT_SLICE_MS = 100;

let open: (OpenSegment & { segNo: number }) | null = null;
/** The next segment, made ahead a chunk per idle moment. */
const ahead = new SegmentsAhead(data.dataDir, data.segmentSize);

function stopping(): boolean {
  return Atomics.load(views.ctl, CtlIndex.stop) !== 0 || Atomics.load(views.ctl, CtlIndex.failed) !== 0;
}

/** fdatasyncs the open segment if either writer left writes in it; returns whether it synced. */
function syncOpenSegment(): boolean {
  return open !== null && syncSegmentIfDirty(views, open.fd);
}

/** Called with the claim held. `fsyncs` counts the fdatasync of a segment left behind. */
function openSegment(segNo: number, fsyncs: { count: number }): OpenSegment {
  if (open !== null && open.segNo === segNo) return open;
  if (open !== null) {
    // Leaving a segment: make it durable now (XLogWrite fsyncs a finished segment), so that a
    // later flush only has one file to sync.
    if (syncOpenSegment()) fsyncs.count++;
    fs.closeSync(open.fd);
    open = null;
  }
  const timeline = Atomics.load(views.ctl, CtlIndex.timeline);
  // Needed now: created whole here, not a chunk at a time.
  ahead.neededUpTo(segNo);
  createSegmentFile(data.dataDir, timeline, segNo, data.segmentSize);
  const fd = fs.openSync(segmentPath(data.dataDir, timeline, segNo, data.segmentSize), 'r+');
  open = { fd, timeline, segNo };
  Atomics.store(views.ctl, CtlIndex.segmentDirty, 0);
  Atomics.store(views.ctl, CtlIndex.openTimeline, timeline);
  storePos(views, PosIndex.openSegNo, segNo);
  return open;
}

/** Takes the writer claim, waiting while the main thread holds it; false when stopping. */
function claim(): boolean {
  for (;;) {
    if (tryClaimWriter(views, WriterClaim.worker)) return true;
    if (stopping()) return false;
    const holder = Atomics.load(views.ctl, CtlIndex.writer);
    if (holder !== WriterClaim.idle) Atomics.wait(views.ctl, CtlIndex.writer, holder, CLAIM_WAIT_SLICE_MS);
  }
}

/** One write/flush pass with the claim held, which it releases; returns whether it did anything. */
function writeAndFlush(): boolean {
  const positions = loadWriterPositions(views);
  const requestWrite = loadPos(views, PosIndex.requestWrite);
  const requestFlush = loadPos(views, PosIndex.requestFlush);
  const target = Math.max(requestWrite, requestFlush);
  let worked = false;
  if (target > positions.written) {
    const fsyncs = { count: positions.fsyncCount };
    positions.bytesWritten += pageWriter.writeUpTo(positions.written, target, (segNo) => {
      const segment = openSegment(segNo, fsyncs);
      // Set before the write it precedes: leaving this segment later in the pass syncs it.
      Atomics.store(views.ctl, CtlIndex.segmentDirty, 1);
      return segment;
    });
    positions.fsyncCount = fsyncs.count;
    positions.written = target;
    worked = true;
  }
  if (requestFlush > positions.flushed) {
    if (syncOpenSegment()) positions.fsyncCount++;
    positions.flushed = positions.written;
    worked = true;
  }
  if (!worked) {
    releaseWriter(views, WriterClaim.worker);
    return false;
  }
  const flushedBefore = loadPos(views, PosIndex.flushed);
  publishAndReleaseWriter(views, positions, WriterClaim.worker);
  // The main thread is told first (its commits' replies), then the caught-up standbys get the
  // WAL from here, beside it.
  if (positions.flushed > flushedBefore && walSndDirectSend(walSndDirect, ring, positions.flushed, walSndDirectTimestamp())) {
    parentPort?.postMessage({ type: 'walSndDirectReturned' });
  }
  return true;
}

/**
 * Creates the segment after the current one while nothing is asked of us, one chunk per call;
 * returns whether it did some of it (the requests are then looked at again before the next).
 */
function precreateNextSegment(): boolean {
  return ahead.step(loadPos(views, PosIndex.written), Atomics.load(views.ctl, CtlIndex.timeline));
}

function hasWork(): boolean {
  const requestFlush = loadPos(views, PosIndex.requestFlush);
  const written = loadPos(views, PosIndex.written);
  return requestFlush > loadPos(views, PosIndex.flushed) || Math.max(loadPos(views, PosIndex.requestWrite), requestFlush) > written;
}

function main(): void {
  for (;;) {
    const seq = Atomics.load(views.ctl, CtlIndex.requestSeq);
    if (Atomics.load(views.ctl, CtlIndex.stop) !== 0) break;
    if (hasWork()) {
      if (!claim()) break;
      // An I/O error leaves the claim held: after a failed write or fsync, nobody writes again.
      writeAndFlush();
      continue;
    }
    if (precreateNextSegment()) continue;
    // Announce the sleep, then look once more: a request stored before the main thread saw the
    // flag is caught here; one stored after it comes with a notify.
    Atomics.store(views.ctl, CtlIndex.workerSleeping, 1);
    if (!hasWork() && Atomics.load(views.ctl, CtlIndex.stop) === 0) Atomics.wait(views.ctl, CtlIndex.requestSeq, seq);
    Atomics.store(views.ctl, CtlIndex.workerSleeping, 0);
  }
  ahead.abandon();
  if (open !== null) {
    // Not claimed after a failure: nothing is synced then, the descriptor only closed.
    if (claim()) {
      syncOpenSegment();
      releaseWriter(views, WriterClaim.worker);
    }
    fs.closeSync(open.fd);
    open = null;
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
