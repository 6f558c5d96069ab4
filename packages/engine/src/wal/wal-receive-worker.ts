/**
 * The walreceiver's write-and-fsync thread. In PostgreSQL the walreceiver is a process of its own,
 * so its writes and fdatasyncs run beside the startup process's replay. Here both would share the
 * main thread: during a catch-up a third of it went to writing, zero-filling new segments and
 * fsyncing. This thread runs WalReceiveFiles (the same synchronous code, tested on its own) and
 * leaves replay the main thread.
 *
 * Received WAL and the positions go through shared memory (wal-receive-shared.ts): the thread
 * sleeps in Atomics.wait until the main thread rings, writes every entry handed over, publishes
 * `written` (so that remote_write waiters need not wait for the fsync), fdatasyncs once for all
 * of them (XLogWalRcvFlush after the receive loop), publishes `flushed`, and rings back. A
 * message port carried each batch and each report before: moving or cloning the buffer, the
 * port's queue and its event dispatch cost a streaming standby a quarter of its CPU per commit.
 * Requests, in order after the WAL handed over before them:
 * - an end of timeline: flushes, finishes the timeline's last segment, counts it done and says so
 *   on the port, after the segment's archive status;
 * - close: flushes, closes and exits.
 * Under a light load the main thread writes small messages itself (wal-receive-writer.ts's
 * writeInline): the files then belong to whichever side holds `owner`. This thread takes them
 * only when it has work, and gives them back when it is idle, everything it wrote flushed and
 * published; taking them, it carries on from the flushed position the main thread published.
 * Finished segments' archive statuses go to the main thread as messages (they are rare). An I/O
 * error sets `failed`, is reported once as a message and ends the thread: the walreceiver ends
 * with it, and nothing after the failure is published as written or flushed.
 * When idle it makes the next segment ahead of time, as the primary's WAL I/O worker does (see
 * precreateNextSegment).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { WalCipher } from '../crypto/wal-cipher.js';
import type { Lsn } from '../lsn.js';
import type { ArchiveMode, ArchiveStatus } from './archive-status.js';
import { WalReceiveFiles } from './wal-receive-files.js';
import { SegmentsAhead } from './wal-files.js';
import { segmentOf } from './xlog-internal.js';
import {
  WalReceiveCtl, WalReceiveOwner, WalReceivePos, ringNext, walReceiveSharedViews, type WalReceiveSharedViews,
} from './wal-receive-shared.js';
import { loadPos, storePos } from './wal-shared.js';

export interface WalReceiveWorkerData {
  dataDir: string;
  timeline: number;
  segmentSize: number;
  startLsn: number;
  archiveMode: ArchiveMode;
  /** The WAL key of an encrypted data directory (absent: not encrypted). */
  walKey?: Uint8Array;
  ctlSab: SharedArrayBuffer;
  ringSab: SharedArrayBuffer;
}

export type WalReceiveWorkerReport =
  | { type: 'status'; fileName: string; status: ArchiveStatus; error: string | null }
  /** After the statuses it gave, so that the caller has them all when it learns the end is written. */
  | { type: 'endOfTimeline' }
  | { type: 'failed'; message: string };

const port = parentPort!;
const data = workerData as WalReceiveWorkerData;
const views: WalReceiveSharedViews = walReceiveSharedViews(data.ctlSab, data.ringSab);
const { ctl } = views;
const files = new WalReceiveFiles(data.dataDir, data.timeline, data.segmentSize, data.startLsn as Lsn, {
  mode: data.archiveMode,
  onStatus: (fileName, status, error) => port.postMessage({ type: 'status', fileName, status, error: error === null ? null : error.message } satisfies WalReceiveWorkerReport),
}, data.walKey === undefined ? null : new WalCipher(Buffer.from(data.walKey)));
let tail = loadPos(views, WalReceivePos.tail);
let endsOfTimelineDone = 0;

/** Stores the positions and rings the main thread. */
function publish(): void {
  storePos(views, WalReceivePos.tail, tail);
  storePos(views, WalReceivePos.written, files.written);
  storePos(views, WalReceivePos.flushed, files.flushed);
  Atomics.add(ctl, WalReceiveCtl.doneSeq, 1);
  Atomics.notify(ctl, WalReceiveCtl.doneSeq);
}

/** XLogWalRcvWrite for every entry handed over; returns whether there was any. */
function writeHandedOver(): boolean {
  const head = loadPos(views, WalReceivePos.head);
  if (tail >= head) return false;
  while (tail < head) {
    const entry = ringNext(views, tail);
    // WalReceiveFiles creates a segment this WAL needs whole, not a chunk at a time.
    ahead.neededUpTo(segmentOf(entry.start + entry.data.length - 1, data.segmentSize));
    files.write(entry.start as Lsn, entry.data, entry.encryptedTimeline);
    tail = entry.next;
  }
  return true;
}

let owned = false;
/** The next segment, made ahead a chunk per idle moment. */
const ahead = new SegmentsAhead(data.dataDir, data.segmentSize);

/**
 * PreallocXlogFiles on a standby: once three quarters of the segment being written are written,
 * the next one is made ahead, zero-filled a chunk per idle moment (SegmentsAhead), while the
 * main thread goes on writing small messages itself. Made when the first WAL for it arrived, it
 * held that WAL and everything after it back for the whole zero-fill and fsync of 16 MB: at each
 * segment switch under a steady load both standbys' write, flush and replay lags jumped to about
 * 40 ms (70 ms in a full benchmark run). A PostgreSQL standby mostly finds the next segment
 * there already, recycled at a restartpoint. Returns whether it did some of it (the requests are
 * then looked at again before the next chunk).
 */
function precreateNextSegment(): boolean {
  return ahead.step(loadPos(views, WalReceivePos.written), data.timeline);
}

/**
 * Takes the files from the main thread, which writes small messages itself while this thread
 * is idle (wal-receive-writer.ts): it holds them only within one synchronous step of its event
 * loop, and hands over nothing while it does, so the wait is short.
 */
function claim(): void {
  if (owned) return;
  while (Atomics.compareExchange(ctl, WalReceiveCtl.owner, WalReceiveOwner.idle, WalReceiveOwner.thread) !== WalReceiveOwner.idle) {
    Atomics.wait(ctl, WalReceiveCtl.owner, WalReceiveOwner.main, 100);
  }
  owned = true;
  files.resumeAt(loadPos(views, WalReceivePos.flushed) as Lsn);
}

/** Gives the files back: everything written is flushed and published by then. */
function release(): void {
  if (!owned) return;
  owned = false;
  Atomics.store(ctl, WalReceiveCtl.owner, WalReceiveOwner.idle);
}

/** Returns once closed. */
function main(): void {
  for (;;) {
    const seq = Atomics.load(ctl, WalReceiveCtl.requestSeq);
    // Requests are read before the ring: the WAL handed over before them is then in sight.
    const endsOfTimeline = Atomics.load(ctl, WalReceiveCtl.endOfTimelineRequested);
    const close = Atomics.load(ctl, WalReceiveCtl.closeRequested) !== 0;
    if (close || endsOfTimeline > endsOfTimelineDone || loadPos(views, WalReceivePos.head) > tail) claim();
    const wrote = writeHandedOver();
    if (wrote) publish();
    if (files.flush()) publish();
    if (endsOfTimeline > endsOfTimelineDone) {
      files.endOfTimeline();
      endsOfTimelineDone = endsOfTimeline;
      Atomics.store(ctl, WalReceiveCtl.endOfTimelineDone, endsOfTimelineDone);
      publish();
      port.postMessage({ type: 'endOfTimeline' } satisfies WalReceiveWorkerReport);
    }
    if (close) {
      ahead.abandon();
      files.close();
      publish();
      return;
    }
    if (wrote) continue;
    release();
    if (precreateNextSegment()) continue;
    // Announce the sleep, then look once more: work handed over before the main thread saw the
    // flag is caught here; work handed over after it comes with a notify.
    Atomics.store(ctl, WalReceiveCtl.threadSleeping, 1);
    if (Atomics.load(ctl, WalReceiveCtl.requestSeq) === seq) Atomics.wait(ctl, WalReceiveCtl.requestSeq, seq);
    Atomics.store(ctl, WalReceiveCtl.threadSleeping, 0);
  }
}

try {
  main();
} catch (error) {
  Atomics.store(ctl, WalReceiveCtl.failed, 1);
  Atomics.add(ctl, WalReceiveCtl.doneSeq, 1);
  Atomics.notify(ctl, WalReceiveCtl.doneSeq);
  port.postMessage({ type: 'failed', message: error instanceof Error ? error.message : String(error) } satisfies WalReceiveWorkerReport);
}
port.close();
