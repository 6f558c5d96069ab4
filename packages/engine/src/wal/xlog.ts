/**
 * WAL insertion and flushing (PostgreSQL's xlog.c): xlogInsertRecord copies a record into the WAL
 * buffers, xlogFlush makes WAL durable up to an LSN with group commit, xlogBackgroundFlush is the
 * WAL writer's step. The writes and fdatasyncs themselves happen in the WAL I/O worker.
 *
 * Insertion is synchronous and single-threaded (the main event loop is the only inserter), so
 * the space reservation PostgreSQL does under a spinlock is a plain position update here. The
 * WAL buffers are a ring of pages in a SharedArrayBuffer that the worker writes from directly.
 *
 * Group commit: every committer waiting in xlogFlush is served by one flush covering everything
 * inserted before it started; while a flush is under way, new committers queue for the next one,
 * which the worker starts as soon as the current one ends.
 *
 * XLogWrite is split in two: `xlogWrite` (here) raises the write/flush request, and the WAL I/O
 * worker does the writes and fdatasyncs. At low concurrency the main thread writes and syncs a
 * commit itself instead (`flushOnMainThread`), as a PostgreSQL backend does its own XLogWrite
 * when it gets WALWriteLock: a hand-off costs two thread wake-ups and an event-loop wake-up per
 * commit, more CPU than the fdatasync's own. It does so only when no other session is committing
 * (MainFlushPolicy: with others committing, the worker lets the event loop read and insert the
 * next group during the fdatasync), it gets the writer claim at once (the worker is idle), and the
 * write is small and stays in the segment the worker has open: it never waits for the worker and
 * never creates or leaves a segment.
 * When the worker reports back, `xlogWriteCompleted` releases the
 * XLogFlush waiters, runs the checkpointer's WAL-volume check, and — as XLogWrite only *records*
 * a wake-up request for the walsenders (WalSndWakeupRequest) — serves that request at the end
 * (WalSndWakeupProcessRequests): every registered walSndWakeup runs once per completion that
 * advanced the flush position. A walsender never polls: this is what wakes it.
 */
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { walKeyData } from '../crypto/registry.js';
import { MAX_RECORD_BYTES, XLOG_BLCKSZ } from '../constants.js';
import { WalshipError, assert, assertionFailed } from '../errors.js';
import { formatLsn, type Lsn } from '../lsn.js';
import {
  SIZE_OF_LONG_PHD,
  SIZE_OF_SHORT_PHD,
  XLOG_PAGE_MAGIC,
  XLP_FIRST_IS_CONTRECORD,
  XLP_LONG_HEADER,
  copyFromWalRing,
  headerSizeAt,
  maxAlign,
  segmentOf,
  writePageHeader,
  xlogFileName,
} from './xlog-internal.js';
import { xlogArchiveNotify, type ArchiveMode } from './archive-status.js';
import { RmgrId, SIZE_OF_XLOG_RECORD, XLOG_MARK_UNIMPORTANT, XLOG_RECORD_CRC_OFFSET, XlogInfo, computeRecordCrc, writeRecordHeader } from './xlog-record.js';
import { encodeFpwChange } from './record-data.js';
import { preallocationDue, segmentPath } from './wal-files.js';
import { MainFlushPolicy } from './main-flush-policy.js';
import {
  armWalSndDirect,
  closeWalSndDirect,
  createWalSndDirectShared,
  readWalSndDirect,
  releaseWalSndDirect,
  releaseWalSndDirectClosed,
  walSndDirectInUse,
  walSndDirectSend,
  walSndDirectTimestamp,
  walSndDirectViews,
  type WalSndDirectProgress,
  type WalSndDirectRelease,
  type WalSndDirectViews,
} from './walsnd-direct.js';
import { WalPageWriter, segmentsOfWrite, syncSegmentIfDirty, type OpenSegment } from './wal-page-writer.js';
import {
  CtlIndex,
  PosIndex,
  WriterClaim,
  createWalShared,
  loadPos,
  loadWriterPositions,
  publishAndReleaseWriter,
  releaseWriter,
  storePos,
  tryClaimWriter,
  walSharedViews,
  type WalIoWorkerData,
  type WalSharedViews,
} from './wal-shared.js';

export interface XlogOptions {
  dataDir: string;
  segmentSize: number;
  /** Size of the WAL buffer ring (wal_buffers), a multiple of XLOG_BLCKSZ. */
  walBuffersBytes: number;
  systemId: bigint;
  timeline: number;
  fsync: boolean;
  /** Where insertion continues: the end of valid WAL found by recovery. */
  insertLsn: Lsn;
  /** Start of the last valid record, the next record's prev-link. */
  prevRecordLsn: Lsn;
  /** The page holding insertLsn as it is on disk, when insertLsn is not at a page start. */
  partialPage?: Buffer;
  /** A WAL I/O worker spawned ahead of time, taken over instead of spawning one. */
  prepared?: PreparedWalIo;
  /**
   * full_page_writes as the WAL last stated it (the last checkpoint or XLOG_FPW_CHANGE record
   * before insertLsn); true when not given, as a freshly initialized cluster's checkpoint says.
   */
  fullPageWritesInWal?: boolean;
}

/**
 * A WAL I/O worker thread and its shared memory, spawned before the Xlog that will drive it: a
 * thread takes tens of milliseconds to start, which a standby would otherwise pay at promotion,
 * between the end of recovery and the first write it accepts.
 */
export class PreparedWalIo {
  readonly ctlSab = createWalShared();
  readonly ringSab: SharedArrayBuffer;
  readonly walSndDirectSab = createWalSndDirectShared();
  readonly worker: Worker;
  private taken = false;

  constructor(readonly dataDir: string, readonly segmentSize: number, readonly walBuffersBytes: number) {
    this.ringSab = new SharedArrayBuffer(walBuffersBytes);
    const data: WalIoWorkerData = { dataDir, segmentSize, ringBytes: walBuffersBytes, ctlSab: this.ctlSab, ringSab: this.ringSab, walSndDirectSab: this.walSndDirectSab, ...walKeyData(dataDir) };
    this.worker = new Worker(workerUrl(), { workerData: data });
    // Until an Xlog takes it over, a failure surfaces there (the worker would not have started);
    // meanwhile the idle thread must neither crash nor keep the process alive.
    this.worker.on('error', () => undefined);
    this.worker.unref();
  }

  /** Whether an Xlog with these options can use it. */
  fits(options: { dataDir: string; segmentSize: number; walBuffersBytes: number }): boolean {
    return !this.taken && options.dataDir === this.dataDir && options.segmentSize === this.segmentSize && options.walBuffersBytes === this.walBuffersBytes;
  }

  take(): void {
    this.taken = true;
  }

  /** Stops a worker nobody took over (a standby shut down without being promoted). */
  async discard(): Promise<void> {
    if (this.taken) return;
    this.taken = true;
    const ctl = walSharedViews(this.ctlSab).ctl;
    Atomics.store(ctl, CtlIndex.stop, 1);
    Atomics.store(ctl, CtlIndex.started, 1);
    Atomics.notify(ctl, CtlIndex.started);
    await this.worker.terminate().catch(() => undefined);
  }
}

/** Runs after a completed write/flush: the checkpointer's "enough WAL since the redo point" check. */
export type WrittenListener = (written: Lsn, flushed: Lsn) => void;
/** walSndWakeup: sets a walsender's latch; it then sends what became flushed. */
export type WalSndWakeup = (flushed: Lsn) => void;
/**
 * XLogArchiveNotify's signal to the archiver (PMSIGNAL_WAKEN_ARCHIVER): `fileName` was marked
 * `.ready`, or marking it failed with `error` (logged; the next checkpoint retries).
 */
export type ArchiveNotifyListener = (fileName: string, error: Error | null) => void;

interface FlushWaiter {
  lsn: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** A flush waiting more than this is still fine; a sync wait this long means the worker hung. */
const SYNC_WAIT_SLICE_MS = 1000;

/** The main thread flushes only this much WAL: a bulk write is the worker's, off the event loop. */
const MAIN_FLUSH_MAX_BYTES = 128 * 1024;

export class Xlog {
  readonly segmentSize: number;
  readonly systemId: bigint;
  private timelineId: number;
  private readonly ring: Buffer;
  /** The direct walsender sends' slots, shared with the worker (walsnd-direct.ts). */
  private readonly walSndDirect: WalSndDirectViews;
  private walSndDirectClosed = false;
  /** A main-thread flush's direct send, queued to run after the commits' replies (flushOnMainThread). */
  private directSendQueued = false;
  private directSendUpTo = 0;
  private readonly ringBytes: number;
  private readonly ringPages: number;
  private readonly views: WalSharedViews;
  private readonly worker: Worker;
  private insertPos: number;
  private prevRecord: number;
  /** Start of the last record not marked XLOG_MARK_UNIMPORTANT (XLogCtl's lastImportantAt). */
  private lastImportantRecord: number;
  /** The redo pointer of the checkpoint in progress or last done (Insert->RedoRecPtr). */
  redoRecPtr: Lsn = 0 as Lsn;
  /** full_page_writes as configured; a reload changes it, and updateFullPageWrites logs the change. */
  fullPageWrites = true;
  /** full_page_writes as the WAL last stated it (Insert->fullPageWrites of xlog.c). */
  private fullPageWritesInWal: boolean;
  /**
   * Running base backups (XLogCtl->Insert.runningBackups): while any runs, every first change
   * after the redo point logs a full page even with full_page_writes off, because the copy's
   * pages may be torn.
   */
  forcePageWrites = 0;
  private readonly waiters: FlushWaiter[] = [];
  private waitingAsync = false;
  private flushRequestScheduled = false;
  private lastDoneSeq = 0;
  /** The main thread's own writes (flushOnMainThread), with the same code as the worker's. */
  private readonly pageWriter: WalPageWriter;
  /** Whether a flush is the main thread's (nobody else committing) or the worker's. */
  private readonly mainFlushPolicy = new MainFlushPolicy();
  private mainThreadFlushes = 0;
  /** The main thread's descriptor of the worker's open segment, opened at its first use. */
  private mainSegment: (OpenSegment & { segNo: number }) | null = null;
  /** The segment whose last quarter the worker was last woken for (wakeWorkerForPreallocation). */
  private preallocationWakeSegNo = -1;
  private readonly writtenListeners: WrittenListener[] = [];
  private readonly walSndWakeups: WalSndWakeup[] = [];
  /** WalSndWakeupRequest's flag: set when a completion advanced the flush position. */
  private walSndWakeupPending = false;
  private lastWakeupFlush = 0;
  private failure: Error | null = null;
  private closed = false;
  private recordsInserted = 0;
  private readonly dataDir: string;
  /**
   * archive_mode, set by the postmaster once the WAL is open (null until then): when not `off`,
   * every finished segment is marked `.ready` (XLogArchiveNotifySeg in XLogWrite).
   */
  archiveMode: ArchiveMode | null = null;
  /** Wakes the archiver after a `.ready` was created (set by the postmaster with archiveMode). */
  onArchiveNotify: ArchiveNotifyListener | null = null;
  /** The first segment not yet finished: the one holding the insert position at start. */
  private nextSegmentToFinish: number;
  /** Where the WAL buffers' contents start: nothing before the insert position at start is in them. */
  private readonly buffersValidFrom: number;

  constructor(options: XlogOptions) {
    assert(options.walBuffersBytes % XLOG_BLCKSZ === 0 && options.walBuffersBytes >= 4 * XLOG_BLCKSZ, 'wal_buffers must be at least 4 pages');
    this.segmentSize = options.segmentSize;
    this.systemId = options.systemId;
    this.timelineId = options.timeline;
    this.ringBytes = options.walBuffersBytes;
    this.ringPages = this.ringBytes / XLOG_BLCKSZ;
    const prepared = options.prepared?.fits(options) === true ? options.prepared : null;
    prepared?.take();
    const ringSab = prepared?.ringSab ?? new SharedArrayBuffer(this.ringBytes);
    this.ring = Buffer.from(ringSab);
    const ctlSab = prepared?.ctlSab ?? createWalShared();
    const walSndDirectSab = prepared?.walSndDirectSab ?? createWalSndDirectShared();
    this.walSndDirect = walSndDirectViews(walSndDirectSab);
    this.views = walSharedViews(ctlSab);
    this.insertPos = options.insertLsn;
    this.prevRecord = options.prevRecordLsn;
    this.lastImportantRecord = options.prevRecordLsn;
    this.fullPageWritesInWal = options.fullPageWritesInWal ?? true;
    this.dataDir = options.dataDir;
    this.nextSegmentToFinish = segmentOf(options.insertLsn, options.segmentSize);
    this.buffersValidFrom = options.insertLsn;
    Atomics.store(this.views.ctl, CtlIndex.timeline, options.timeline);
    Atomics.store(this.views.ctl, CtlIndex.fsync, options.fsync ? 1 : 0);
    for (const index of [PosIndex.requestWrite, PosIndex.requestFlush, PosIndex.written, PosIndex.flushed]) {
      Atomics.store(this.views.pos, index, BigInt(options.insertLsn));
    }
    storePos(this.views, PosIndex.openSegNo, -1);
    const keyData = walKeyData(options.dataDir);
    this.pageWriter = new WalPageWriter(this.ring, options.segmentSize, keyData.walKey);
    if (options.insertLsn % XLOG_BLCKSZ !== 0) {
      assert(options.partialPage !== undefined, 'the partial last WAL page is needed to continue inserting');
      const slot = this.slotOf(options.insertLsn - (options.insertLsn % XLOG_BLCKSZ));
      options.partialPage.copy(this.ring, slot, 0, options.insertLsn % XLOG_BLCKSZ);
      this.ring.fill(0, slot + (options.insertLsn % XLOG_BLCKSZ), slot + XLOG_BLCKSZ);
    }
    if (prepared !== null) {
      this.worker = prepared.worker;
      this.worker.removeAllListeners('error');
    } else {
      const data: WalIoWorkerData = { dataDir: options.dataDir, segmentSize: options.segmentSize, ringBytes: this.ringBytes, ctlSab, ringSab, walSndDirectSab, ...keyData };
      this.worker = new Worker(workerUrl(), { workerData: data });
    }
    // The positions are in place: the worker may read them and start.
    Atomics.store(this.views.ctl, CtlIndex.started, 1);
    Atomics.notify(this.views.ctl, CtlIndex.started);
    this.worker.on('message', (message: { type: string; message: string }) => {
      // A direct send gave a socket back: its walsender takes over (walsnd-direct.ts).
      if (message.type === 'walSndDirectReturned') this.wakeAllWalSnds();
      if (message.type === 'failed') this.fail(new WalshipError('io_error', `could not write or fsync WAL: ${message.message}`, { severity: 'PANIC' }));
    });
    this.worker.on('error', (error) => this.fail(new WalshipError('io_error', `WAL I/O worker failed: ${error.message}`, { severity: 'PANIC' })));
    this.worker.unref();
  }

  /** The fsync setting; takes effect at the next flush (a reload changes it). */
  setFsync(on: boolean): void {
    Atomics.store(this.views.ctl, CtlIndex.fsync, on ? 1 : 0);
  }

  get timeline(): number {
    return this.timelineId;
  }

  /** GetInsertRecPtr: the end of the last inserted record. */
  getInsertRecPtr(): Lsn {
    return this.insertPos as Lsn;
  }

  /** GetXLogWriteRecPtr. */
  getWriteRecPtr(): Lsn {
    return loadPos(this.views, PosIndex.written) as Lsn;
  }

  /** GetFlushRecPtr. */
  getFlushRecPtr(): Lsn {
    return loadPos(this.views, PosIndex.flushed) as Lsn;
  }

  /** Start of the last inserted record. */
  getLastRecordLsn(): Lsn {
    return this.prevRecord as Lsn;
  }

  /**
   * GetLastImportantRecPtr: start of the last record that was not inserted with
   * XLOG_MARK_UNIMPORTANT. A checkpoint on an idle node is skipped when this is its own record,
   * so heartbeats (which are unimportant) do not make an idle node checkpoint forever.
   */
  getLastImportantRecPtr(): Lsn {
    return this.lastImportantRecord as Lsn;
  }

  /** `mainThreadFlushes`: the flushes the main thread wrote and synced itself (flushOnMainThread). */
  stats(): { fsyncs: number; bytesWritten: number; records: number; mainThreadFlushes: number } {
    return {
      fsyncs: loadPos(this.views, PosIndex.fsyncCount),
      bytesWritten: loadPos(this.views, PosIndex.bytesWritten),
      records: this.recordsInserted,
      mainThreadFlushes: this.mainThreadFlushes,
    };
  }

  /** Registers a listener run after each completed write or flush (the checkpointer's). */
  onWritten(listener: WrittenListener): void {
    this.writtenListeners.push(listener);
  }

  /** Registers a walsender's wake-up; returns the function that unregisters it. */
  registerWalSndWakeup(wakeup: WalSndWakeup): () => void {
    this.walSndWakeups.push(wakeup);
    return () => {
      const i = this.walSndWakeups.indexOf(wakeup);
      if (i >= 0) this.walSndWakeups.splice(i, 1);
    };
  }

  /** The LSN where the next record will start (after any page header). */
  nextRecordStart(): Lsn {
    const pos = this.insertPos;
    return (pos % XLOG_BLCKSZ === 0 ? pos + headerSizeAt(pos, this.segmentSize) : pos) as Lsn;
  }

  /**
   * The end LSN a record of `totalLength` bytes would have if inserted now. Insertion is
   * synchronous, so this holds until the next insert: a transaction uses it to stamp its
   * commit LSN into the pages before assembling its record.
   */
  predictEndLsn(totalLength: number): Lsn {
    let pos: number = this.nextRecordStart();
    let remaining = totalLength;
    for (;;) {
      const pageEnd = pos - (pos % XLOG_BLCKSZ) + XLOG_BLCKSZ;
      const space = pageEnd - pos;
      if (remaining <= space) {
        pos += remaining;
        break;
      }
      remaining -= space;
      pos = pageEnd + headerSizeAt(pageEnd, this.segmentSize);
    }
    return maxAlign(pos) as Lsn;
  }

  /**
   * UpdateFullPageWrites: the full_page_writes a record built now follows. A changed setting is
   * first stated in the WAL with an XLOG_FPW_CHANGE record, ahead of every record built under
   * it, because a standby cannot see the primary's settings: a base backup taken from a standby
   * is only safe while every record replayed since its start point carries full-page images
   * after the redo point, and this record is how the standby learns that one may not.
   * PostgreSQL's checkpointer logs the change when it reloads the setting; here it is logged
   * when the first record that depends on it is built, which keeps the same order.
   */
  updateFullPageWrites(): boolean {
    if (this.fullPageWrites !== this.fullPageWritesInWal) {
      const data = encodeFpwChange(this.fullPageWrites);
      const record = Buffer.alloc(SIZE_OF_XLOG_RECORD + 2 + data.length);
      data.copy(record, SIZE_OF_XLOG_RECORD + 2);
      this.xlogInsertRecord(record, record.length, RmgrId.xlog, XlogInfo.fpwChange, 0);
      this.fullPageWritesInWal = this.fullPageWrites;
    }
    return this.fullPageWrites;
  }

  /**
   * XLogInsertRecord: fills in the record header (length, xid, prev-link, info, rmid) and CRC of
   * `record[0, totalLength)` and copies it into the WAL buffers. Returns the start and end LSNs.
   */
  xlogInsertRecord(record: Buffer, totalLength: number, rmid: number, info: number, xid: number, flags = 0): { start: Lsn; end: Lsn } {
    this.checkUsable();
    if (totalLength > MAX_RECORD_BYTES) {
      throw new WalshipError('transaction_too_large', `WAL record of ${totalLength} bytes exceeds the maximum of ${MAX_RECORD_BYTES}`, {
        hint: 'Split the transaction into smaller ones.',
      });
    }
    writeRecordHeader(record, totalLength, xid, this.prevRecord as Lsn, info, rmid);
    record.writeUInt32LE(computeRecordCrc(record, totalLength), XLOG_RECORD_CRC_OFFSET);

    let pos = this.insertPos;
    let copied = 0;
    let start = -1;
    while (copied < totalLength) {
      if (pos % XLOG_BLCKSZ === 0) pos = this.initPage(pos, totalLength - copied, copied > 0);
      if (start < 0) start = pos;
      const pageEnd = pos - (pos % XLOG_BLCKSZ) + XLOG_BLCKSZ;
      const n = Math.min(totalLength - copied, pageEnd - pos);
      record.copy(this.ring, this.slotOf(pos - (pos % XLOG_BLCKSZ)) + (pos % XLOG_BLCKSZ), copied, copied + n);
      copied += n;
      pos += n;
    }
    const end = maxAlign(pos);
    // Alignment padding: the page was zeroed when initialized, so nothing to write.
    this.prevRecord = start;
    if ((flags & XLOG_MARK_UNIMPORTANT) === 0) this.lastImportantRecord = start;
    this.insertPos = end;
    this.recordsInserted++;
    return { start: start as Lsn, end: end as Lsn };
  }

  /** Starts the page at `pageLsn` in the ring: waits for its slot to be written, writes its header. */
  private initPage(pageLsn: number, remaining: number, continuation: boolean): number {
    const previousOccupantEnd = pageLsn - this.ringBytes + XLOG_BLCKSZ;
    if (previousOccupantEnd > 0 && this.getWriteRecPtr() < previousOccupantEnd) {
      // The WAL buffers are full of unwritten WAL: write some out before reusing the slot
      // (AdvanceXLInsertBuffer does the same when the WAL writer falls behind).
      this.waitForPosition(PosIndex.written, previousOccupantEnd, PosIndex.requestWrite, Math.min(this.insertPos, previousOccupantEnd + this.ringBytes / 2));
    }
    const slot = this.slotOf(pageLsn);
    this.ring.fill(0, slot, slot + XLOG_BLCKSZ);
    const isLong = pageLsn % this.segmentSize === 0;
    let info = isLong ? XLP_LONG_HEADER : 0;
    if (continuation) info |= XLP_FIRST_IS_CONTRECORD;
    writePageHeader(this.ring, slot, {
      magic: XLOG_PAGE_MAGIC,
      info,
      timeline: this.timelineId,
      pageAddress: pageLsn as Lsn,
      remLength: continuation ? remaining : 0,
      systemId: this.systemId,
      segmentSize: this.segmentSize,
      pageSize: XLOG_BLCKSZ,
    });
    return pageLsn + (isLong ? SIZE_OF_LONG_PHD : SIZE_OF_SHORT_PHD);
  }

  /**
   * XLogReadFromBuffers (PostgreSQL 17): copies the WAL [startLsn, startLsn + length) into `into`
   * at `offset` when all of it is written and still in the WAL buffers, and returns whether it
   * did; otherwise the caller reads the segment files. A walsender on the primary sends what was
   * just flushed, which is nearly always still there: a copy instead of a read from the file.
   * Insertion runs on the same thread, so no page can be reused during the copy.
   */
  readFromBuffers(into: Buffer, offset: number, startLsn: number, length: number): boolean {
    const end = startLsn + length;
    if (startLsn < this.buffersValidFrom || end > this.getWriteRecPtr()) return false;
    // The newest page started; the slot of every page a ring's length before it was reused.
    const newestPage = this.insertPos - 1 - ((this.insertPos - 1) % XLOG_BLCKSZ);
    if (startLsn - (startLsn % XLOG_BLCKSZ) <= newestPage - this.ringBytes) return false;
    copyFromWalRing(this.ring, startLsn, end, into, offset);
    return true;
  }

  private slotOf(pageLsn: number): number {
    return ((pageLsn / XLOG_BLCKSZ) % this.ringPages) * XLOG_BLCKSZ;
  }

  /**
   * XLogFlush: resolves once WAL up to `lsn` is written and fsynced. Group commit: the request
   * is raised to everything inserted so far, and concurrent callers share one fdatasync.
   */
  xlogFlush(lsn: Lsn): Promise<void> {
    if (this.getFlushRecPtr() >= lsn) return Promise.resolve();
    if (this.failure !== null) return Promise.reject(this.failure);
    if (lsn > this.insertPos) assertionFailed(`cannot flush ${formatLsn(lsn)}: past the insert position ${formatLsn(this.insertPos)}`);
    return new Promise<void>((resolve, reject) => {
      const waiter = { lsn, resolve, reject };
      // Committers arrive in LSN order; anything else is inserted where it belongs.
      let i = this.waiters.length;
      while (i > 0 && this.waiters[i - 1]!.lsn > lsn) i--;
      this.waiters.splice(i, 0, waiter);
      // A pending Atomics.waitAsync does not keep the event loop alive; the worker does, while
      // someone waits for it (a short-lived program would otherwise exit mid-flush).
      if (this.waiters.length === 1) this.worker.ref();
      this.requestFlushAtEndOfTurn();
    });
  }

  /**
   * Group commit across sessions: the flush request is raised once the event loop has run every
   * callback of its current turn, so that the commits of all the sessions whose requests were
   * read in the same turn share one fdatasync. Raised at once, the first of them started a flush
   * alone while the others, inserted microseconds later, waited for the next one. (PostgreSQL's
   * backends run in parallel and meet at WALWriteLock; here they run one after the other.) The
   * cost is the rest of one turn, microseconds; commit_delay-like sleeping stays off.
   * Then the main thread flushes the group itself when it can (flushOnMainThread), or hands it
   * to the worker and waits for its completion.
   */
  private requestFlushAtEndOfTurn(): void {
    if (this.flushRequestScheduled) return;
    this.flushRequestScheduled = true;
    setImmediate(() => {
      this.flushRequestScheduled = false;
      if (this.waiters.length === 0 || this.closed) return;
      if (this.flushOnMainThread()) return;
      this.xlogWrite(PosIndex.requestFlush, this.insertPos);
      this.armWait();
    });
  }

  /**
   * XLogFlush's own XLogWrite: with the writer claim taken at once (the worker is idle), write and
   * fdatasync everything inserted on this thread, publish the positions as the worker does, and
   * release the waiters with no hop through the event loop. Returns false, having done nothing,
   * when the flush is the worker's: other sessions are committing (MainFlushPolicy), the claim is
   * held, the write is large, or it would leave the worker's open segment (only the worker
   * creates and switches segments).
   * An I/O error is a PANIC, as in the worker: the claim stays held so that nobody writes again.
   */
  private flushOnMainThread(): boolean {
    const flushInFlight = loadPos(this.views, PosIndex.requestFlush) > loadPos(this.views, PosIndex.flushed);
    if (!this.mainFlushPolicy.decide(this.waiters.length, flushInFlight) || this.failure !== null) return false;
    const target = this.insertPos;
    if (!this.mainCanWrite(loadPos(this.views, PosIndex.written), target)) return false;
    if (!tryClaimWriter(this.views, WriterClaim.main)) return false;
    // The worker may have moved on between the look above and the claim: look again.
    const positions = loadWriterPositions(this.views);
    if (Atomics.load(this.views.ctl, CtlIndex.failed) !== 0 || !this.mainCanWrite(positions.written, target)) {
      releaseWriter(this.views, WriterClaim.main);
      return false;
    }
    try {
      const segment = this.mainSegmentFile();
      if (positions.written < target) {
        Atomics.store(this.views.ctl, CtlIndex.segmentDirty, 1);
        positions.bytesWritten += this.pageWriter.writeUpTo(positions.written, target, () => segment);
        positions.written = target;
      }
      if (positions.flushed < target) {
        if (syncSegmentIfDirty(this.views, segment.fd)) positions.fsyncCount++;
        positions.flushed = positions.written;
      }
    } catch (error) {
      Atomics.store(this.views.ctl, CtlIndex.failed, 1);
      this.fail(new WalshipError('io_error', `could not write or fsync WAL: ${(error as Error).message}`, { severity: 'PANIC' }));
      return true;
    }
    publishAndReleaseWriter(this.views, positions, WriterClaim.main);
    this.mainThreadFlushes++;
    this.wakeWorkerForPreallocation(target);
    this.xlogWriteCompleted();
    // After the released commits' replies: the tick queued from a microtask runs once the
    // microtask queue is empty, i.e. after every continuation this completion released (the
    // session's reply is several awaits down; a plain microtask ran before it, and cost 1-client
    // commits 3 to 5%).
    if (!walSndDirectInUse(this.walSndDirect)) return true;
    // Flushes before the tick runs are sent together, up to the last (flushed only grows).
    this.directSendUpTo = positions.flushed;
    if (!this.directSendQueued) {
      this.directSendQueued = true;
      queueMicrotask(this.queueDirectSend);
    }
    return true;
  }

  /** Made once: queued after every main-thread flush while a walsender has handed its socket over. */
  private readonly queueDirectSend = (): void => {
    process.nextTick(this.sendDirectly);
  };

  private readonly sendDirectly = (): void => {
    this.directSendQueued = false;
    if (this.walSndDirectClosed) return;
    if (walSndDirectSend(this.walSndDirect, this.ring, this.directSendUpTo, walSndDirectTimestamp())) this.wakeAllWalSnds();
  };

  /**
   * The worker makes the next segment while idle in the last quarter of the current one
   * (preallocationDue), but a lone committer's flushes are the main thread's and do not wake it:
   * it is woken once when they cross into that quarter, instead of finding out at its next probe.
   */
  private wakeWorkerForPreallocation(written: number): void {
    const segNo = segmentOf(written, this.segmentSize);
    if (segNo === this.preallocationWakeSegNo || !preallocationDue(written, this.segmentSize)) return;
    this.preallocationWakeSegNo = segNo;
    this.wakeWorker();
  }

  /** Whether the main thread may write [written, target): a small write inside the worker's open segment. */
  private mainCanWrite(written: number, target: number): boolean {
    const openSegNo = loadPos(this.views, PosIndex.openSegNo);
    if (openSegNo < 0) return false;
    if (written >= target) return true;
    if (target - written > MAIN_FLUSH_MAX_BYTES) return false;
    const { first, last } = segmentsOfWrite(written, target, this.segmentSize);
    return first === openSegNo && last === openSegNo;
  }

  /** The main thread's descriptor of the worker's open segment; called with the claim held. */
  private mainSegmentFile(): OpenSegment {
    const segNo = loadPos(this.views, PosIndex.openSegNo);
    const timeline = Atomics.load(this.views.ctl, CtlIndex.openTimeline);
    if (this.mainSegment !== null && this.mainSegment.segNo === segNo && this.mainSegment.timeline === timeline) return this.mainSegment;
    this.closeMainSegment();
    // The worker created the file before it published it as open: never created here.
    const fd = fs.openSync(segmentPath(this.dataDir, timeline, segNo, this.segmentSize), 'r+');
    this.mainSegment = { fd, timeline, segNo };
    return this.mainSegment;
  }

  private closeMainSegment(): void {
    if (this.mainSegment === null) return;
    const { fd } = this.mainSegment;
    this.mainSegment = null;
    fs.closeSync(fd);
  }

  /**
   * Hands a caught-up walsender's socket (descriptor `fd`, WAL sent up to `sentLsn`) to whoever
   * flushes next (walsnd-direct.ts); the slot, or null when it is not caught up with the flush
   * position or no slot is free.
   */
  armWalSndDirect(fd: number, sentLsn: Lsn): number | null {
    if (this.closed || this.failure !== null || this.walSndDirectClosed) return null;
    return armWalSndDirect(this.walSndDirect, fd, sentLsn, () => this.getFlushRecPtr());
  }

  /** What the flushers sent through a slot. */
  readWalSndDirect(slot: number): WalSndDirectProgress {
    return readWalSndDirect(this.walSndDirect, slot);
  }

  /** Takes a walsender's socket back: what was sent, and the rest of a frame cut short to write first. */
  releaseWalSndDirect(slot: number): WalSndDirectRelease {
    return this.walSndDirectClosed ? releaseWalSndDirectClosed(this.walSndDirect, slot) : releaseWalSndDirect(this.walSndDirect, slot);
  }

  /**
   * Before the worker is stopped (terminate() can stop it anywhere): no direct send is under way or
   * starts again, and the slots become this thread's alone.
   */
  private closeWalSndDirect(): void {
    if (this.walSndDirectClosed) return;
    this.walSndDirectClosed = true;
    closeWalSndDirect(this.walSndDirect);
  }

  /** A synchronous xlogFlush, for evicting a dirty page (WAL before data) and for shutdown. */
  xlogFlushSync(lsn: Lsn): void {
    if (this.getFlushRecPtr() >= lsn) return;
    this.waitForPosition(PosIndex.flushed, lsn, PosIndex.requestFlush, this.insertPos);
  }

  /**
   * XLogBackgroundFlush, the WAL writer's step: writes and flushes everything inserted, so that
   * asynchronous commits become durable within wal_writer_delay. Returns whether there was work.
   */
  xlogBackgroundFlush(): boolean {
    if (this.getFlushRecPtr() >= this.insertPos || this.failure !== null) return false;
    this.xlogWrite(PosIndex.requestFlush, this.insertPos);
    this.armWait();
    return true;
  }

  /**
   * XLogWrite, the main thread's half: raises the worker's write (or flush) request to `lsn`.
   * The worker is only woken with a notify when it sleeps; while it is busy it re-reads the
   * requests when its current write ends, which is what makes commits queue into one group.
   */
  private xlogWrite(index: number, lsn: number): void {
    if (Number(Atomics.load(this.views.pos, index)) >= lsn) return;
    Atomics.store(this.views.pos, index, BigInt(lsn));
    this.wakeWorker();
  }

  /** Tells the worker to look at the requests again: a notify only when it sleeps. */
  private wakeWorker(): void {
    Atomics.add(this.views.ctl, CtlIndex.requestSeq, 1);
    if (Atomics.load(this.views.ctl, CtlIndex.workerSleeping) !== 0) Atomics.notify(this.views.ctl, CtlIndex.requestSeq);
  }

  private waitForPosition(posIndex: number, lsn: number, requestIndex: number, requestLsn: number): void {
    this.xlogWrite(requestIndex, Math.max(lsn, requestLsn));
    for (;;) {
      this.checkUsable();
      const seq = Atomics.load(this.views.ctl, CtlIndex.doneSeq);
      if (loadPos(this.views, posIndex) >= lsn) break;
      Atomics.wait(this.views.ctl, CtlIndex.doneSeq, seq, SYNC_WAIT_SLICE_MS);
    }
    this.xlogWriteCompleted();
  }

  /** Waits (asynchronously) for the worker's next completion while anyone is waiting for it. */
  private armWait(): void {
    if (this.waitingAsync || this.closed) return;
    this.waitingAsync = true;
    const seq = Atomics.load(this.views.ctl, CtlIndex.doneSeq);
    if (seq !== this.lastDoneSeq) {
      queueMicrotask(() => this.afterWait());
      return;
    }
    const result = Atomics.waitAsync(this.views.ctl, CtlIndex.doneSeq, seq);
    if (result.async) result.value.then(() => this.afterWait());
    else queueMicrotask(() => this.afterWait());
  }

  private afterWait(): void {
    this.waitingAsync = false;
    this.xlogWriteCompleted();
    const pendingWrite = this.getWriteRecPtr() < Number(Atomics.load(this.views.pos, PosIndex.requestWrite));
    if (this.waiters.length > 0 || pendingWrite) this.armWait();
  }

  /**
   * The worker completed a write or flush: release the XLogFlush waiters it covers, record and
   * serve the walsenders' wake-up request, and let the checkpointer look at the WAL volume.
   */
  private xlogWriteCompleted(): void {
    this.lastDoneSeq = Atomics.load(this.views.ctl, CtlIndex.doneSeq);
    if (Atomics.load(this.views.ctl, CtlIndex.failed) !== 0 && this.failure === null) {
      this.fail(new WalshipError('io_error', 'could not write or fsync WAL', { severity: 'PANIC' }));
      return;
    }
    const flushed = this.getFlushRecPtr();
    let released = 0;
    while (released < this.waiters.length && this.waiters[released]!.lsn <= flushed) {
      this.waiters[released]!.resolve();
      released++;
    }
    if (released > 0) {
      this.waiters.splice(0, released);
      if (this.waiters.length === 0) this.worker.unref();
    }
    if (this.waiters.length > 0) this.xlogWrite(PosIndex.requestFlush, this.insertPos);
    if (flushed > this.lastWakeupFlush) this.walSndWakeupRequest(flushed);
    const written = this.getWriteRecPtr();
    this.segmentsFinished(flushed);
    for (const listener of this.writtenListeners) listener(written, flushed);
    this.walSndWakeupProcessRequests();
  }

  /**
   * XLogWrite's end of a segment, seen from the flushed position: a segment wholly below it is
   * written and fsynced (the worker fsyncs a segment as it leaves it), so it is finished: with
   * archiving on, it is marked `.ready` and the archiver woken (XLogArchiveNotifySeg).
   */
  private segmentsFinished(flushed: number): void {
    const finishedBelow = Math.floor(flushed / this.segmentSize);
    while (this.nextSegmentToFinish < finishedBelow) {
      const segNo = this.nextSegmentToFinish++;
      if (this.archiveMode === null || this.archiveMode === 'off') continue;
      const fileName = xlogFileName(this.timelineId, segNo, this.segmentSize);
      let error: Error | null = null;
      try {
        xlogArchiveNotify(this.dataDir, fileName);
      } catch (cause) {
        error = cause as Error;
      }
      this.onArchiveNotify?.(fileName, error);
    }
  }

  /** WalSndWakeupRequest: XLogWrite only notes that walsenders have new WAL to send. */
  private walSndWakeupRequest(flushed: number): void {
    this.lastWakeupFlush = flushed;
    this.walSndWakeupPending = true;
  }

  /** WalSndWakeupProcessRequests: after the write, wake every walsender once. */
  private walSndWakeupProcessRequests(): void {
    if (!this.walSndWakeupPending) return;
    this.walSndWakeupPending = false;
    this.wakeAllWalSnds();
  }

  private wakeAllWalSnds(): void {
    for (const wakeup of this.walSndWakeups) wakeup(this.lastWakeupFlush as Lsn);
  }

  private fail(error: Error): void {
    if (this.failure !== null) return;
    this.failure = error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
    for (const listener of this.failureListeners) listener(error);
  }

  private readonly failureListeners: Array<(error: Error) => void> = [];

  /** Runs when the WAL can no longer be written (an fsync failed): the node must crash-restart. */
  onFailure(listener: (error: Error) => void): void {
    this.failureListeners.push(listener);
  }

  private checkUsable(): void {
    if (this.failure !== null) throw this.failure;
    if (this.closed) throw new WalshipError('admin_shutdown', 'WAL is shut down', { severity: 'FATAL' });
  }

  /** Flushes everything and stops the worker (part of ShutdownXLOG). */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    if (this.failure === null && this.getFlushRecPtr() < this.insertPos) await this.xlogFlush(this.insertPos as Lsn);
    this.closed = true;
    this.closeMainSegmentQuietly();
    Atomics.store(this.views.ctl, CtlIndex.stop, 1);
    Atomics.add(this.views.ctl, CtlIndex.requestSeq, 1);
    Atomics.notify(this.views.ctl, CtlIndex.requestSeq);
    this.closeWalSndDirect();
    await this.worker.terminate().catch(() => undefined);
  }

  /** At shutdown: the main thread's writes were fdatasynced (or fsync is off); a close error changes nothing. */
  private closeMainSegmentQuietly(): void {
    try {
      this.closeMainSegment();
    } catch {
      // Nothing to do: the descriptor is gone either way.
    }
  }

  /** Stops the worker at once without flushing (immediate shutdown, crash-restart). */
  async abort(): Promise<void> {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) waiter.reject(new WalshipError('admin_shutdown', 'terminating connection because of crash of another server process', { severity: 'FATAL' }));
    this.closeMainSegmentQuietly();
    Atomics.store(this.views.ctl, CtlIndex.stop, 1);
    Atomics.add(this.views.ctl, CtlIndex.requestSeq, 1);
    Atomics.notify(this.views.ctl, CtlIndex.requestSeq);
    this.closeWalSndDirect();
    await this.worker.terminate().catch(() => undefined);
  }
}

/** The worker's compiled file; under vitest the sources are TypeScript, so use the build output. */
function workerUrl(): URL {
  if (import.meta.url.endsWith('.ts')) return new URL('../../dist/wal/wal-io-worker.js', import.meta.url);
  return new URL('./wal-io-worker.js', import.meta.url);
}
