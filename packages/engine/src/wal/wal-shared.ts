/**
 * Shared memory between the main thread (which inserts WAL into the buffers) and the WAL I/O
 * worker (which writes and fsyncs them): PostgreSQL's XLogCtl, as a SharedArrayBuffer.
 *
 * Requests and results are LSNs in a BigInt64Array read and written with Atomics; the sequence
 * counters are what each side waits on. The main thread only raises REQ_WRITE / REQ_FLUSH.
 * WRITTEN / FLUSHED and the counters are written by whoever holds the writer claim (`writer`,
 * PostgreSQL's WALWriteLock): the worker, or the main thread when it flushes a commit itself.
 */

export const CtlIndex = {
  /** Bumped by the main thread after raising a request. The worker waits on it. */
  requestSeq: 0,
  /** Bumped by the worker after each write/flush. The main thread waits on it. */
  doneSeq: 1,
  /** Set by the worker when an I/O call failed: the node must crash and recover. */
  failed: 2,
  timeline: 3,
  stop: 4,
  /**
   * Set by the worker before it re-checks the requests and sleeps, cleared when it wakes. The
   * main thread only pays for Atomics.notify when the worker may be asleep: while it is busy
   * writing or fsyncing, it re-reads the requests when done anyway.
   */
  workerSleeping: 5,
  /** fsync setting (1 on, 0 off), read at every flush so that a reload changes it. */
  fsync: 6,
  /**
   * Set once the Xlog has stored the positions the worker starts from. A worker spawned ahead of
   * time (a standby's, for its promotion) waits on it before reading them.
   */
  started: 7,
  /**
   * The writer claim (WALWriteLock): WriterClaim.idle, or who is writing. Whoever writes, fsyncs
   * or publishes the positions below holds it; it is taken with compareExchange, never waited
   * for by the main thread (it hands off to the worker instead).
   */
  writer: 8,
  /** The timeline in the name of the worker's open segment (see PosIndex.openSegNo). */
  openTimeline: 9,
  /** 1 while the open segment has writes not yet fdatasynced, by either writer. */
  segmentDirty: 10,
} as const;

/** Values of CtlIndex.writer. */
export const WriterClaim = {
  idle: 0,
  worker: 1,
  main: 2,
} as const;
export type WriterClaimHolder = typeof WriterClaim.worker | typeof WriterClaim.main;

export const PosIndex = {
  requestWrite: 0,
  requestFlush: 1,
  written: 2,
  flushed: 3,
  /** Number of fdatasync calls, for the statistics and benchmarks. */
  fsyncCount: 4,
  /** Bytes written, for the statistics. */
  bytesWritten: 5,
  /**
   * The segment the worker has created and opened (-1: none yet). Only the worker creates or
   * leaves a segment; the main thread writes only into this one, through a descriptor of its own.
   */
  openSegNo: 6,
} as const;

const CTL_INTS = 16;
const POS_COUNT = 8;

export interface WalSharedViews {
  ctl: Int32Array;
  pos: BigInt64Array;
}

export function createWalShared(): SharedArrayBuffer {
  return createCtlBlock(CTL_INTS, POS_COUNT);
}

export function walSharedViews(sab: SharedArrayBuffer): WalSharedViews {
  return ctlBlockViews(sab, CTL_INTS, POS_COUNT);
}

/**
 * A control block in shared memory: `ctlInts` Int32 cells (flags and sequence counters, what
 * Atomics.wait works on), then `posCount` positions as BigInt64 (LSNs do not fit in an Int32).
 * The WAL I/O worker's and the WAL receive thread's blocks share this layout. `ctlInts` is even,
 * so that the positions are 8-aligned.
 */
export function createCtlBlock(ctlInts: number, posCount: number): SharedArrayBuffer {
  return new SharedArrayBuffer(ctlInts * 4 + posCount * 8);
}

export function ctlBlockViews(sab: SharedArrayBuffer, ctlInts: number, posCount: number): WalSharedViews {
  return { ctl: new Int32Array(sab, 0, ctlInts), pos: new BigInt64Array(sab, ctlInts * 4, posCount) };
}

export function loadPos(views: WalSharedViews, index: number): number {
  return Number(Atomics.load(views.pos, index));
}

/** Stores a position; only the side that owns it calls this. */
export function storePos(views: WalSharedViews, index: number, value: number): void {
  Atomics.store(views.pos, index, BigInt(value));
}

export function raisePos(views: WalSharedViews, index: number, value: number): void {
  // Only the owning side stores; a plain compare-then-store is enough.
  if (Number(Atomics.load(views.pos, index)) < value) Atomics.store(views.pos, index, BigInt(value));
}

/** Takes the writer claim if nobody holds it; returns whether it did. */
export function tryClaimWriter(views: WalSharedViews, holder: WriterClaimHolder): boolean {
  return Atomics.compareExchange(views.ctl, CtlIndex.writer, WriterClaim.idle, holder) === WriterClaim.idle;
}

/** Releases the claim `holder` holds, and wakes the worker if it waits for it. */
export function releaseWriter(views: WalSharedViews, holder: WriterClaimHolder): void {
  const previous = Atomics.compareExchange(views.ctl, CtlIndex.writer, holder, WriterClaim.idle);
  if (previous !== holder) throw new Error(`the WAL writer claim is held by ${previous}, not by ${holder}`);
  Atomics.notify(views.ctl, CtlIndex.writer);
}

/** The positions a writer advances, read when it takes the claim and published when it is done. */
export interface WriterPositions {
  written: number;
  flushed: number;
  fsyncCount: number;
  bytesWritten: number;
}

export function loadWriterPositions(views: WalSharedViews): WriterPositions {
  return {
    written: loadPos(views, PosIndex.written),
    flushed: loadPos(views, PosIndex.flushed),
    fsyncCount: loadPos(views, PosIndex.fsyncCount),
    bytesWritten: loadPos(views, PosIndex.bytesWritten),
  };
}

/**
 * XLogWrite's end: stores the positions, releases the claim `holder` holds, then bumps doneSeq
 * and wakes whoever waits on it (the main thread's Atomics.waitAsync or its synchronous wait).
 * The claim is free before anyone is woken, so a commit made in answer to this completion finds
 * the writer idle.
 */
export function publishAndReleaseWriter(views: WalSharedViews, positions: WriterPositions, holder: WriterClaimHolder): void {
  Atomics.store(views.pos, PosIndex.written, BigInt(positions.written));
  Atomics.store(views.pos, PosIndex.flushed, BigInt(positions.flushed));
  Atomics.store(views.pos, PosIndex.fsyncCount, BigInt(positions.fsyncCount));
  Atomics.store(views.pos, PosIndex.bytesWritten, BigInt(positions.bytesWritten));
  releaseWriter(views, holder);
  Atomics.add(views.ctl, CtlIndex.doneSeq, 1);
  Atomics.notify(views.ctl, CtlIndex.doneSeq);
}

export interface WalIoWorkerData {
  dataDir: string;
  segmentSize: number;
  ringBytes: number;
  ctlSab: SharedArrayBuffer;
  ringSab: SharedArrayBuffer;
  /** The WAL key of an encrypted data directory (absent: not encrypted). */
  walKey?: Uint8Array;
  /** The direct walsender sends' slots (walsnd-direct.ts). */
  walSndDirectSab: SharedArrayBuffer;
}
