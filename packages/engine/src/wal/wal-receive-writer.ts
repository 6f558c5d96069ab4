/**
 * The walreceiver's side of its write-and-fsync thread (wal-receive-worker.ts): hands received WAL
 * over through a shared ring, and learns what became written and flushed from shared positions
 * (wal-receive-shared.ts). `written` and `flushed` only ever move when the thread publishes them,
 * so a standby never reports or replays WAL its disk does not hold.
 *
 * Under a light load it hands nothing over: a small message, while the thread is idle with
 * nothing queued, is written on the main thread and fdatasynced at the end of the event-loop
 * turn (writeInline). Each hand-off cost a commit two thread wake-ups and a reply of its own
 * (written, then flushed) on a streaming standby; written here, written and flushed are reported
 * together, in one reply. Who writes the files is settled in
 * shared memory (WalReceiveCtl.owner); a message past the turn's budget or at a segment boundary
 * goes to the thread, after the main thread's own writes are flushed.
 *
 * `queuedBytes` is what was handed over and not yet written; past WAL_RECEIVE_QUEUE_MAX_BYTES the
 * walreceiver stops reading its socket until the thread catches up, so a slow disk pushes back
 * on the upstream instead of filling this node's memory. The ring holds that much; WAL that
 * arrives while it is full (frames already read when reading paused) waits in a list, in order.
 */
import { Worker } from 'node:worker_threads';
import { WalCipher } from '../crypto/wal-cipher.js';
import { walKeyData } from '../crypto/registry.js';
import type { Lsn } from '../lsn.js';
import type { ArchiveMode, ArchiveStatus } from './archive-status.js';
import { WalReceiveFiles } from './wal-receive-files.js';
import type { WalReceiveWorkerData, WalReceiveWorkerReport } from './wal-receive-worker.js';
import {
  WalReceiveCtl, WalReceiveOwner, WalReceivePos, createWalReceiveShared, ringAppend, walReceiveSharedViews,
  type WalReceiveSharedViews,
} from './wal-receive-shared.js';
import { loadPos, storePos } from './wal-shared.js';
import { preallocationDue } from './wal-files.js';
import { segmentOf } from './xlog-internal.js';

/** Received WAL handed to the writer thread and not yet written, above which reading pauses. */
export const WAL_RECEIVE_QUEUE_MAX_BYTES = 16 * 1024 * 1024;

/** The shared ring: what the queue may hold before reading pauses. */
const RING_BYTES = WAL_RECEIVE_QUEUE_MAX_BYTES;

/**
 * The most WAL the main thread writes itself in one event-loop turn (then fsyncs at the turn's
 * end) instead of handing it to the thread. A streaming standby under a light load gets a commit
 * or a few per message: handing each to the thread and back cost two thread wake-ups and an
 * extra reply per commit, more than the write and fdatasync themselves. Past this much (a
 * catch-up, a bulk load) the thread takes over, so that writing runs beside replay.
 */
export const WAL_RECEIVE_INLINE_BYTES_MAX = 64 * 1024;


export interface WalReceiveWriterOptions {
  dataDir: string;
  timeline: number;
  segmentSize: number;
  startLsn: Lsn;
  archiveMode: ArchiveMode;
  /** The thread wrote and/or fsynced more; `flushed` tells whether the flushed position moved. */
  onProgress: (written: Lsn, flushed: Lsn, flushMoved: boolean) => void;
  /** A finished segment was given its archive status (or writing the status file failed). */
  onStatus?: (fileName: string, status: ArchiveStatus, error: string | null) => void;
  /** A write or fsync failed: nothing more is written; the walreceiver must end. */
  onFailure: (error: Error) => void;
  /** The shared ring's size (WAL_RECEIVE_QUEUE_MAX_BYTES; tests make it small to fill it). */
  ringBytes?: number;
}

export class WalReceiveWriter {
  written: Lsn;
  flushed: Lsn;
  /** Bytes handed over and not yet reported written. */
  queuedBytes = 0;
  /** Bytes the main thread wrote itself (writeInline), since the start. */
  inlineBytes = 0;
  private handedOverEnd: number;
  private readonly views: WalReceiveSharedViews;
  private readonly worker: Worker;
  /** Larger hand-overs are cut into entries of this much, so that one always fits in the ring. */
  private readonly entryDataBytesMax: number;
  /** The ring's head as this side last published it (only this side writes it). */
  private head = 0;
  /** WAL that did not fit in the ring yet, oldest first (copies: the callers' buffers are theirs). */
  private readonly overflow: Array<{ start: number; data: Buffer; encryptedTimeline: number | null }> = [];
  private waiting = false;
  private lastDoneSeq = 0;
  private endsOfTimelineRequested = 0;
  private failure: Error | null = null;
  private pendingEndOfTimeline: { upTo: number; resolve: () => void; reject: (error: Error) => void } | null = null;
  private closing: Promise<void> | null = null;
  private closed: (() => void) | null = null;
  private exited = false;
  /** The WAL key of an encrypted data directory, for the thread and for the main thread's own writer. */
  private readonly keyData: { walKey?: Uint8Array };
  /** The main thread's own writer of the stream's files, made when first needed. */
  private inlineFiles: WalReceiveFiles | null = null;
  /** Whether this side holds the files (WalReceiveCtl.owner), until the end of the turn. */
  private inlineOwned = false;
  private inlineBytesThisTurn = 0;
  private inlineFinishScheduled = false;
  /** The segment whose last quarter the thread was last rung for (wakeThreadForPreallocation). */
  private preallocationWakeSegNo = -1;

  constructor(private readonly options: WalReceiveWriterOptions) {
    this.written = options.startLsn;
    this.flushed = options.startLsn;
    this.handedOverEnd = options.startLsn;
    const ringBytes = options.ringBytes ?? RING_BYTES;
    this.entryDataBytesMax = ringBytes / 4;
    const { ctlSab, ringSab } = createWalReceiveShared(ringBytes);
    this.views = walReceiveSharedViews(ctlSab, ringSab);
    storePos(this.views, WalReceivePos.written, options.startLsn);
    storePos(this.views, WalReceivePos.flushed, options.startLsn);
    this.keyData = walKeyData(options.dataDir);
    const data: WalReceiveWorkerData = {
      dataDir: options.dataDir, timeline: options.timeline, segmentSize: options.segmentSize, startLsn: options.startLsn, archiveMode: options.archiveMode,
      ...this.keyData,
      ctlSab, ringSab,
    };
    this.worker = new Worker(workerUrl(), { workerData: data });
    this.worker.on('message', (report: WalReceiveWorkerReport) => this.onReport(report));
    this.worker.on('error', (error) => this.failed(error));
    this.worker.on('exit', () => {
      this.exited = true;
      if (this.closed === null && this.closing === null) this.failed(new Error('the WAL receive thread exited'));
      // What the thread published last (close's flush) is taken in before close resolves.
      if (this.failure === null) this.takeProgress();
      this.closed?.();
      this.settleEndOfTimeline();
    });
    this.armWait();
  }

  /**
   * XLogWalRcvWrite: `data` at `dataStart`, copied into the shared ring; the caller keeps its
   * buffer. A copy of a few kilobytes costs less than moving a buffer to the thread did.
   * `encryptedTimeline`: the data is ciphertext as stored upstream under that timeline (the
   * thread writes it as it is, or converts it: wal-receive-cipher.ts); null: plaintext.
   */
  write(dataStart: Lsn, data: Buffer, encryptedTimeline: number | null = null): void {
    if (this.failure !== null || this.closing !== null) return;
    if (this.writeInline(dataStart, data, encryptedTimeline)) return;
    this.finishInline();
    for (let done = 0; done < data.length; done += this.entryDataBytesMax) {
      const piece = data.subarray(done, Math.min(data.length, done + this.entryDataBytesMax));
      if (this.overflow.length > 0 || !this.append(dataStart + done, piece, encryptedTimeline)) {
        this.overflow.push({ start: dataStart + done, data: Buffer.from(piece), encryptedTimeline });
      }
    }
    this.queuedBytes += data.length;
    this.handedOverEnd = Math.max(this.handedOverEnd, dataStart + data.length);
    this.ring();
  }

  /**
   * Writes a small message on the main thread, when the thread is idle with nothing handed over
   * (it owns the files otherwise), the message stays within one existing segment (creating a
   * segment, zero-filled, is the thread's), and this turn's budget allows. The fdatasync comes
   * at the end of the turn, once for every message read in it (XLogWalRcvFlush after the receive
   * loop). Returns false when the message is to go to the thread.
   */
  private writeInline(dataStart: Lsn, data: Buffer, encryptedTimeline: number | null): boolean {
    if (data.length === 0) return true;
    if (this.overflow.length > 0 || this.inlineBytesThisTurn + data.length > WAL_RECEIVE_INLINE_BYTES_MAX) return false;
    const { segmentSize } = this.options;
    if (dataStart % segmentSize === 0 || segmentOf(dataStart, segmentSize) !== segmentOf(dataStart + data.length - 1, segmentSize)) return false;
    if (!this.inlineOwned && !this.claimInline()) return false;
    if (this.failure !== null) return true;
    try {
      this.inlineFiles!.write(dataStart, data, encryptedTimeline);
      storePos(this.views, WalReceivePos.written, this.inlineFiles!.written);
      this.wakeThreadForPreallocation(this.inlineFiles!.written);
    } catch (error) {
      this.failed(error as Error);
      return true;
    }
    this.inlineBytesThisTurn += data.length;
    this.inlineBytes += data.length;
    this.handedOverEnd = Math.max(this.handedOverEnd, dataStart + data.length);
    if (!this.inlineFinishScheduled) {
      this.inlineFinishScheduled = true;
      setImmediate(() => {
        this.inlineFinishScheduled = false;
        this.inlineBytesThisTurn = 0;
        this.finishInline();
      });
    }
    return true;
  }

  /** Takes the files when the thread is idle with nothing handed over; carries on from what it published. */
  private claimInline(): boolean {
    if (loadPos(this.views, WalReceivePos.tail) !== this.head) return false;
    if (Atomics.compareExchange(this.views.ctl, WalReceiveCtl.owner, WalReceiveOwner.idle, WalReceiveOwner.main) !== WalReceiveOwner.idle) return false;
    this.inlineOwned = true;
    try {
      (this.inlineFiles ??= this.makeInlineFiles()).resumeAt(loadPos(this.views, WalReceivePos.flushed) as Lsn);
    } catch (error) {
      this.failed(error as Error);
    }
    return true;
  }

  private makeInlineFiles(): WalReceiveFiles {
    const { options } = this;
    const { walKey } = this.keyData;
    return new WalReceiveFiles(options.dataDir, options.timeline, options.segmentSize, options.startLsn, {
      mode: options.archiveMode,
      onStatus: (fileName, status, error) => options.onStatus?.(fileName, status, error === null ? null : error.message),
    }, walKey === undefined ? null : new WalCipher(Buffer.from(walKey)));
  }

  /**
   * The end of the main thread's writing: fdatasync what it wrote, publish the positions, give
   * the files back to the thread, and report (the walreceiver replies with write and flush at
   * once, then wakes recovery, which replies again once it has replayed them).
   */
  private finishInline(): void {
    if (!this.inlineOwned || this.failure !== null) return;
    const files = this.inlineFiles!;
    try {
      files.flush();
    } catch (error) {
      this.failed(error as Error);
      return;
    }
    storePos(this.views, WalReceivePos.flushed, files.flushed);
    this.inlineOwned = false;
    Atomics.store(this.views.ctl, WalReceiveCtl.owner, WalReceiveOwner.idle);
    Atomics.notify(this.views.ctl, WalReceiveCtl.owner);
    this.takeProgress();
  }

  /** The upstream ended the timeline: flushed, and its last segment finished and marked. */
  endOfTimeline(): Promise<void> {
    this.finishInline();
    if (this.failure !== null) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      this.endsOfTimelineRequested++;
      this.pendingEndOfTimeline = { upTo: this.endsOfTimelineRequested, resolve, reject };
      // Requested once the WAL before it is in the ring (the thread reads requests first).
      this.moveOverflow();
      Atomics.store(this.views.ctl, WalReceiveCtl.endOfTimelineRequested, this.endsOfTimelineRequested);
      this.ring();
    });
  }

  /** XLogWalRcvClose at the end of streaming: everything handed over is flushed, the thread ends. */
  close(): Promise<void> {
    if (this.closing === null) {
      this.finishInline();
      try {
        this.inlineFiles?.close();
      } catch (error) {
        this.failed(error as Error);
      }
    }
    this.closing ??= new Promise<void>((resolve) => {
      this.closed = resolve;
      if (this.exited) {
        resolve();
        return;
      }
      if (this.failure !== null) {
        // The thread may have exited already (its exit event gone by): wait for the terminate.
        void this.worker.terminate().then(() => resolve(), () => resolve());
        return;
      }
      this.closeWhenHandedOver();
    });
    return this.closing;
  }

  /** Stops the thread without waiting (a node's immediate shutdown). */
  terminate(): void {
    void this.worker.terminate();
  }

  /** Close is requested once the overflow, if any, has gone into the ring. */
  private closeWhenHandedOver(): void {
    if (this.failure !== null || this.exited) return;
    this.moveOverflow();
    if (this.overflow.length > 0) return;
    Atomics.store(this.views.ctl, WalReceiveCtl.closeRequested, 1);
    this.ring();
  }

  private append(start: number, data: Buffer, encryptedTimeline: number | null): boolean {
    const head = ringAppend(this.views, this.head, loadPos(this.views, WalReceivePos.tail), start, data, encryptedTimeline);
    if (head < 0) return false;
    this.head = head;
    storePos(this.views, WalReceivePos.head, head);
    return true;
  }

  private moveOverflow(): void {
    while (this.overflow.length > 0 && this.append(this.overflow[0]!.start, this.overflow[0]!.data, this.overflow[0]!.encryptedTimeline)) this.overflow.shift();
  }

  /**
   * The thread makes the next segment ahead while idle (wal-receive-worker.ts), but the main
   * thread's own writes do not ring it: it is rung once per segment, when they cross into the
   * last quarter (as Xlog wakes the WAL I/O worker for a lone committer's flushes).
   */
  private wakeThreadForPreallocation(written: number): void {
    const { segmentSize } = this.options;
    const segNo = segmentOf(written, segmentSize);
    if (segNo === this.preallocationWakeSegNo || !preallocationDue(written, segmentSize)) return;
    this.preallocationWakeSegNo = segNo;
    this.ring();
  }

  /** Wakes the thread if it may be asleep (it re-reads everything when its current work ends). */
  private ring(): void {
    const { ctl } = this.views;
    Atomics.add(ctl, WalReceiveCtl.requestSeq, 1);
    if (Atomics.load(ctl, WalReceiveCtl.threadSleeping) !== 0) Atomics.notify(ctl, WalReceiveCtl.requestSeq);
  }

  /** Waits (asynchronously, without keeping the process alive) for the thread's next publication. */
  private armWait(): void {
    if (this.waiting || this.exited || this.failure !== null) return;
    this.waiting = true;
    const seq = Atomics.load(this.views.ctl, WalReceiveCtl.doneSeq);
    if (seq !== this.lastDoneSeq) {
      queueMicrotask(() => this.afterWait());
      return;
    }
    const result = Atomics.waitAsync(this.views.ctl, WalReceiveCtl.doneSeq, seq);
    if (result.async) void result.value.then(() => this.afterWait());
    else queueMicrotask(() => this.afterWait());
  }

  private afterWait(): void {
    this.waiting = false;
    this.lastDoneSeq = Atomics.load(this.views.ctl, WalReceiveCtl.doneSeq);
    // A failure is reported with its message (onReport); positions after it are not taken in.
    if (Atomics.load(this.views.ctl, WalReceiveCtl.failed) !== 0) return;
    this.takeProgress();
    if (this.overflow.length > 0) {
      this.moveOverflow();
      this.ring();
    }
    if (this.closing !== null && this.closed !== null) this.closeWhenHandedOver();
    this.armWait();
  }

  /** Takes in the published positions; tells the walreceiver when one moved. */
  private takeProgress(): void {
    const written = loadPos(this.views, WalReceivePos.written);
    const flushed = loadPos(this.views, WalReceivePos.flushed);
    if (written === this.written && flushed === this.flushed) return;
    const flushMoved = flushed > this.flushed;
    this.written = written as Lsn;
    this.flushed = flushed as Lsn;
    this.queuedBytes = Math.max(0, this.handedOverEnd - this.written);
    this.options.onProgress(this.written, this.flushed, flushMoved);
  }

  private settleEndOfTimeline(): void {
    const pending = this.pendingEndOfTimeline;
    if (pending === null) return;
    if (this.failure !== null) {
      this.pendingEndOfTimeline = null;
      pending.reject(this.failure);
    } else if (Atomics.load(this.views.ctl, WalReceiveCtl.endOfTimelineDone) >= pending.upTo) {
      this.takeProgress();
      this.pendingEndOfTimeline = null;
      pending.resolve();
    } else if (this.exited) {
      this.pendingEndOfTimeline = null;
      pending.reject(new Error('the WAL receive thread exited before the end of the timeline was written'));
    }
  }

  private onReport(report: WalReceiveWorkerReport): void {
    switch (report.type) {
      case 'status':
        this.options.onStatus?.(report.fileName, report.status, report.error);
        break;
      case 'endOfTimeline':
        // Settled from the port, not the doorbell: the segment's status, sent before, is in.
        this.settleEndOfTimeline();
        break;
      case 'failed':
        this.failed(new Error(report.message));
        break;
    }
  }

  private failed(error: Error): void {
    if (this.failure !== null) return;
    this.failure = error;
    this.options.onFailure(error);
    this.settleEndOfTimeline();
    void this.worker.terminate();
  }
}

/** The thread's compiled file; under vitest the sources are TypeScript, so use the build output. */
function workerUrl(): URL {
  if (import.meta.url.endsWith('.ts')) return new URL('../../dist/wal/wal-receive-worker.js', import.meta.url);
  return new URL('./wal-receive-worker.js', import.meta.url);
}
