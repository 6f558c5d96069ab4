/**
 * Shared memory between the walreceiver (main thread) and its write-and-fsync thread: a ring of
 * received WAL and the positions, read and written with Atomics, so that neither side pays a
 * message port round trip per batch (a doorbell, as wal-shared.ts is for the WAL I/O worker).
 *
 * The ring is a single-producer, single-consumer queue of entries: a header (the WAL position of
 * the bytes, as a float64, which holds any LSN exactly, their length, and the timeline they are
 * encrypted under when the upstream sent them as stored, 0 for plaintext) then the bytes, padded
 * to 8. An entry never wraps: when it does not fit before the ring's end, the producer leaves a
 * wrap marker there (or nothing, when not even a header fits) and starts again at offset 0.
 * `head` and `tail` are byte counters that only grow, wasted ends included; the ring holds
 * `head - tail` bytes.
 *
 * Who writes what: the main thread writes entries, then `head`, and raises the requests; only
 * the thread writes `tail`. `written` and `flushed` are written by the side that owns the files
 * (`owner`: the thread, or the main thread when it writes a small message itself, see
 * wal-receive-writer.ts), each after the work it stands for is done (a position is never
 * published before its bytes are written, or fsynced).
 */
import { createCtlBlock, ctlBlockViews, type WalSharedViews } from './wal-shared.js';

export const WalReceiveCtl = {
  /** Bumped by the main thread after handing over WAL or a request. The thread waits on it. */
  requestSeq: 0,
  /** Bumped by the thread after publishing positions. The main thread waits on it. */
  doneSeq: 1,
  /**
   * Set by the thread before it re-checks for work and sleeps, cleared when it wakes: the main
   * thread only pays for Atomics.notify when the thread may be asleep.
   */
  threadSleeping: 2,
  /** Ends of timeline asked for, and done (each done one flushed and finished its segment). */
  endOfTimelineRequested: 3,
  endOfTimelineDone: 4,
  /** Set by the main thread: flush, close and exit. */
  closeRequested: 5,
  /** Set by the thread when a write or fsync failed: nothing more is published. */
  failed: 6,
  /**
   * Who writes the stream's files now (WalReceiveOwner): taken with compareExchange from idle,
   * given back when all that side wrote is flushed and published.
   */
  owner: 7,
} as const;

/** Values of WalReceiveCtl.owner. */
export const WalReceiveOwner = { idle: 0, thread: 1, main: 2 } as const;

export const WalReceivePos = {
  /** Ring bytes handed over (main thread). */
  head: 0,
  /** Ring bytes consumed (thread). */
  tail: 1,
  /** End of the WAL written (thread). */
  written: 2,
  /** End of the WAL fsynced (thread). */
  flushed: 3,
} as const;

const CTL_INTS = 8;
const POS_COUNT = 4;

/** An entry's header: the WAL position (float64), the length (uint32) and the encrypted timeline (uint32, 0: plaintext). */
export const RING_ENTRY_HEADER_BYTES = 16;
/** The length that marks the rest of the ring as unused: the next entry is at offset 0. */
export const RING_WRAP_MARKER = 0xffff_ffff;

/** The control block (wal-shared.ts's layout, so that loadPos and storePos serve) and the ring. */
export interface WalReceiveSharedViews extends WalSharedViews {
  ring: Buffer;
}

export function createWalReceiveShared(ringBytes: number): { ctlSab: SharedArrayBuffer; ringSab: SharedArrayBuffer } {
  return { ctlSab: createCtlBlock(CTL_INTS, POS_COUNT), ringSab: new SharedArrayBuffer(ringBytes) };
}

export function walReceiveSharedViews(ctlSab: SharedArrayBuffer, ringSab: SharedArrayBuffer): WalReceiveSharedViews {
  return { ...ctlBlockViews(ctlSab, CTL_INTS, POS_COUNT), ring: Buffer.from(ringSab) };
}

/** The ring bytes an entry of `dataBytes` takes. */
export function ringEntryBytes(dataBytes: number): number {
  return RING_ENTRY_HEADER_BYTES + Math.ceil(dataBytes / 8) * 8;
}

/**
 * The producer's half: appends `data` at WAL position `start` (ciphertext under
 * `encryptedTimeline`, or plaintext when null) when the ring has room, and returns the new head
 * (not yet published), or -1 when it has not.
 */
export function ringAppend(views: WalReceiveSharedViews, head: number, tail: number, start: number, data: Uint8Array, encryptedTimeline: number | null = null): number {
  const ringBytes = views.ring.length;
  const size = ringEntryBytes(data.length);
  let offset = head % ringBytes;
  let waste = 0;
  if (ringBytes - offset < size) {
    waste = ringBytes - offset;
    offset = 0;
  }
  if (ringBytes - (head - tail) < waste + size) return -1;
  if (waste >= RING_ENTRY_HEADER_BYTES) views.ring.writeUInt32LE(RING_WRAP_MARKER, head % ringBytes + 8);
  views.ring.writeDoubleLE(start, offset);
  views.ring.writeUInt32LE(data.length, offset + 8);
  views.ring.writeUInt32LE(encryptedTimeline ?? 0, offset + 12);
  views.ring.set(data, offset + RING_ENTRY_HEADER_BYTES);
  return head + waste + size;
}

/**
 * The consumer's half: the entry at `tail` (skipping a wrapped end), as its WAL position, a view
 * of its bytes in the ring (valid until `tail` is published past it), the timeline they are
 * encrypted under (null: plaintext), and the tail after it.
 */
export function ringNext(views: WalReceiveSharedViews, tail: number): { start: number; data: Buffer; encryptedTimeline: number | null; next: number } {
  const ringBytes = views.ring.length;
  let offset = tail % ringBytes;
  let next = tail;
  if (ringBytes - offset < RING_ENTRY_HEADER_BYTES || views.ring.readUInt32LE(offset + 8) === RING_WRAP_MARKER) {
    next += ringBytes - offset;
    offset = 0;
  }
  const start = views.ring.readDoubleLE(offset);
  const length = views.ring.readUInt32LE(offset + 8);
  const timeline = views.ring.readUInt32LE(offset + 12);
  const data = views.ring.subarray(offset + RING_ENTRY_HEADER_BYTES, offset + RING_ENTRY_HEADER_BYTES + length);
  return { start, data, encryptedTimeline: timeline === 0 ? null : timeline, next: next + ringEntryBytes(length) };
}
