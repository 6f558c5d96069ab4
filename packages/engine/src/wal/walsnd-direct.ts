/**
 * Direct walsender sends: whoever makes WAL durable (the WAL I/O worker, or the main thread in
 * `flushOnMainThread`) writes it to the sockets of the standbys that are caught up, right after
 * the fdatasync, instead of the main thread's walsenders sending it once the completion has come
 * through the event loop.
 *
 * PostgreSQL's walsenders are processes of their own: XLogWrite sets their latches and they send
 * at once, in parallel with the backends. walship's walsenders live on the main thread, which is
 * busy with the sessions' requests and replies; measured on a three-node cluster at 8 clients with
 * a synchronous standby, the WAL reached it 177 µs (median) after the fdatasync, 532 µs at p90.
 * Here it leaves from the thread that did the fdatasync, with the main thread told beside it.
 *
 * A walsender hands its socket over only while it is caught up, streaming, over plain TCP, and has
 * nothing buffered: it arms a slot (the socket's descriptor and the position sent so far), and
 * from then on takes in what was sent from the slot and sends nothing itself. It takes the socket
 * back (releases the slot) before it writes anything else (a keepalive, an error, a close) and
 * before the socket is destroyed, so that nobody writes to a descriptor that was closed (or
 * reused). A sender gives the socket back by itself (RETURNED) when the WAL to send is more than
 * one message, or the socket's buffer is full, or the write failed: the walsender then sends from
 * the slot's position as before, after writing the rest of a frame cut short. So a standby that
 * stops reading never blocks a flush: the worker's write is a non-blocking one.
 *
 * Each frame is one WebSocket binary message (RFC 6455, unmasked, as a server sends it) holding
 * an XLogData frame ('w', DESIGN.md section 5): the standby reads it exactly as the ones `ws` frames.
 * Slots live in a SharedArrayBuffer with a lock word; a send holds the lock across its system calls,
 * and arming and releasing take it, so a release waits out a send under way.
 */
import * as fs from 'node:fs';
import { XLOG_BLCKSZ } from '../constants.js';
import { readLsn, writeLsn } from '../lsn.js';
import { copyFromWalRing } from './xlog-internal.js';

/** Standbys served this way at once; a walsender that finds no free slot sends as before. */
export const WALSND_DIRECT_SLOTS = 8;
/**
 * The most WAL one direct send carries: one XLogData message (the protocol's MAX_SEND_SIZE, which
 * a standby refuses to exceed). More than that at once is a walsender's catch-up work.
 */
export const WALSND_DIRECT_MAX_BYTES = 16 * XLOG_BLCKSZ;

/** 'w', dataStart, walEnd, sendTime: the XLogData header (protocol's XLOG_DATA_HEADER_BYTES). */
const XLOG_DATA_TAG = 0x77;
const XLOG_DATA_HEADER_BYTES = 25;
const WS_BINARY_FINAL = 0x82;
/** xlp_pageaddr in a WAL page header (xlog-internal.ts writePageHeader). */
const PAGE_ADDRESS_OFFSET = 8;
const MAX_WS_HEADER_BYTES = 10;
const MAX_FRAME_BYTES = MAX_WS_HEADER_BYTES + XLOG_DATA_HEADER_BYTES + WALSND_DIRECT_MAX_BYTES;

export const WalSndDirectState = {
  free: 0,
  armed: 1,
  /** The sender gave the socket back; a frame cut short left its rest in the slot. */
  returned: 2,
} as const;
export type WalSndDirectState = (typeof WalSndDirectState)[keyof typeof WalSndDirectState];

// Int32 cells: the lock, how many slots are in use, then per slot its state, descriptor and the
// rest's length.
const LOCK = 0;
const SLOTS_IN_USE = 1;
const HEADER_CELLS = 2;
const INT_CELLS_PER_SLOT = 3;
const intCell = (slot: number, field: 0 | 1 | 2): number => HEADER_CELLS + slot * INT_CELLS_PER_SLOT + field;
const INT_CELLS = HEADER_CELLS + WALSND_DIRECT_SLOTS * INT_CELLS_PER_SLOT;
const INT_BYTES = 8 * Math.ceil((INT_CELLS * 4) / 8);
/** How long one wait for the lock sleeps before looking again (it is normally woken at once). */
const LOCK_WAIT_SLICE_MS = 1;
// Float64 cells per slot: the position sent up to and the send time.
const FLOAT_BYTES = WALSND_DIRECT_SLOTS * 2 * 8;

export interface WalSndDirectViews {
  ints: Int32Array;
  floats: Float64Array;
  /** Per slot, room for the rest of one frame. */
  rests: Buffer;
}

export function createWalSndDirectShared(): SharedArrayBuffer {
  return new SharedArrayBuffer(INT_BYTES + FLOAT_BYTES + WALSND_DIRECT_SLOTS * MAX_FRAME_BYTES);
}

export function walSndDirectViews(sab: SharedArrayBuffer): WalSndDirectViews {
  return {
    ints: new Int32Array(sab, 0, INT_CELLS),
    floats: new Float64Array(sab, INT_BYTES, WALSND_DIRECT_SLOTS * 2),
    rests: Buffer.from(sab, INT_BYTES + FLOAT_BYTES, WALSND_DIRECT_SLOTS * MAX_FRAME_BYTES),
  };
}

/**
 * The time a direct send is stamped with: protocol's getCurrentTimestamp (µs since the Unix epoch
 * from performance.timeOrigin, which a worker thread has too), here because the engine sits below
 * the protocol package.
 */
export function walSndDirectTimestamp(): number {
  return Math.floor(performance.timeOrigin * 1000 + performance.now() * 1000);
}

/**
 * Held across a few non-blocking writes at most. A waiter sleeps (Atomics.wait) instead of spinning:
 * on two cores the holder may be the thread that waits for the core. Never left held by a thread
 * that stopped: the worker is terminated only after `closeWalSndDirect` has taken the lock for good.
 */
function lock(views: WalSndDirectViews): void {
  while (Atomics.compareExchange(views.ints, LOCK, 0, 1) !== 0) Atomics.wait(views.ints, LOCK, 1, LOCK_WAIT_SLICE_MS);
}

function unlock(views: WalSndDirectViews): void {
  Atomics.store(views.ints, LOCK, 0);
  Atomics.notify(views.ints, LOCK, 1);
}

/**
 * Before the worker is stopped: waits out a send under way and keeps the lock, so that no send
 * starts again; the slots are then the main thread's alone (`releaseWalSndDirectClosed`).
 */
export function closeWalSndDirect(views: WalSndDirectViews): void {
  lock(views);
}

/** After closeWalSndDirect: frees a slot without the lock (no other thread sends any more). */
export function releaseWalSndDirectClosed(views: WalSndDirectViews, slot: number): WalSndDirectRelease {
  return takeSlot(views, slot);
}

/**
 * Hands a caught-up walsender's socket to the senders. Armed only when WAL is durable exactly up to
 * `sentLsn` (`flushedNow`, read under the lock): what is flushed later is then the senders' to send,
 * and nothing flushed before is missed. Returns the slot, or null (not now; the walsender sends).
 */
export function armWalSndDirect(views: WalSndDirectViews, fd: number, sentLsn: number, flushedNow: () => number): number | null {
  // Counted before the flush position is read: a flusher that publishes a newer one after this
  // either sees the count (and sends to this slot, once armed) or published before the read (and
  // the slot is not armed).
  Atomics.add(views.ints, SLOTS_IN_USE, 1);
  let armed: number | null = null;
  lock(views);
  try {
    if (flushedNow() !== sentLsn) return null;
    for (let slot = 0; slot < WALSND_DIRECT_SLOTS; slot++) {
      if (Atomics.load(views.ints, intCell(slot, 0)) !== WalSndDirectState.free) continue;
      views.ints[intCell(slot, 1)] = fd;
      views.ints[intCell(slot, 2)] = 0;
      views.floats[slot * 2] = sentLsn;
      views.floats[slot * 2 + 1] = 0;
      Atomics.store(views.ints, intCell(slot, 0), WalSndDirectState.armed);
      armed = slot;
      return slot;
    }
    return null;
  } finally {
    if (armed === null) Atomics.sub(views.ints, SLOTS_IN_USE, 1);
    unlock(views);
  }
}

export interface WalSndDirectProgress {
  state: WalSndDirectState;
  /** Sent up to here (a frame cut short counts as sent: its rest is the walsender's to write). */
  sent: number;
  /** When the last send was made (TimestampTz, µs); 0 before the first. */
  sendTime: number;
}

/** A released slot: what was sent and when, and the unsent rest of a frame cut short (null: none). */
export interface WalSndDirectRelease {
  sent: number;
  sendTime: number;
  rest: Buffer | null;
}

/** Whether any walsender has handed its socket over (no send, no lock otherwise). */
export function walSndDirectInUse(views: WalSndDirectViews): boolean {
  return Atomics.load(views.ints, SLOTS_IN_USE) !== 0;
}

/** What the senders did with a slot; read without the lock (each cell is written before the state). */
export function readWalSndDirect(views: WalSndDirectViews, slot: number): WalSndDirectProgress {
  const state = Atomics.load(views.ints, intCell(slot, 0)) as WalSndDirectState;
  return { state, sent: views.floats[slot * 2]!, sendTime: views.floats[slot * 2 + 1]! };
}

/**
 * Takes the socket back: frees the slot, waiting out a send under way. Returns the position sent
 * up to and a copy of the unsent rest of a frame cut short (null when none), which the walsender
 * must write before anything else.
 */
export function releaseWalSndDirect(views: WalSndDirectViews, slot: number): WalSndDirectRelease {
  lock(views);
  try {
    return takeSlot(views, slot);
  } finally {
    unlock(views);
  }
}

function takeSlot(views: WalSndDirectViews, slot: number): WalSndDirectRelease {
  const sent = views.floats[slot * 2]!;
  const sendTime = views.floats[slot * 2 + 1]!;
  const restBytes = views.ints[intCell(slot, 2)]!;
  const rest = restBytes > 0 ? Buffer.from(views.rests.subarray(slot * MAX_FRAME_BYTES, slot * MAX_FRAME_BYTES + restBytes)) : null;
  views.ints[intCell(slot, 2)] = 0;
  if (Atomics.load(views.ints, intCell(slot, 0)) !== WalSndDirectState.free) Atomics.sub(views.ints, SLOTS_IN_USE, 1);
  Atomics.store(views.ints, intCell(slot, 0), WalSndDirectState.free);
  return { sent, sendTime, rest };
}

/**
 * Sends WAL up to `flushed` to every armed slot, from the WAL buffers `ring` (whose pages between
 * any armed slot's position and `flushed` are still there: those positions were flushed moments
 * ago). Called after the fdatasync and after the positions are published. Slots at the same
 * position share one frame. Returns whether it gave a socket back: its walsender must be woken.
 */
export function walSndDirectSend(views: WalSndDirectViews, ring: Buffer, flushed: number, now: number): boolean {
  let returned = false;
  // Nobody streams through here (no standby caught up, or none at all): not even the lock.
  if (!walSndDirectInUse(views)) return false;
  lock(views);
  try {
    let frame: Buffer | null = null;
    let frameFrom = -1;
    for (let slot = 0; slot < WALSND_DIRECT_SLOTS; slot++) {
      if (Atomics.load(views.ints, intCell(slot, 0)) !== WalSndDirectState.armed) continue;
      const sent = views.floats[slot * 2]!;
      if (sent >= flushed) continue;
      if (flushed - sent > Math.min(WALSND_DIRECT_MAX_BYTES, ring.length / 2)) {
        Atomics.store(views.ints, intCell(slot, 0), WalSndDirectState.returned);
        returned = true;
        continue;
      }
      if (frame === null || frameFrom !== sent) {
        frame = buildXLogDataMessage(ring, sent, flushed, now);
        frameFrom = sent;
      }
      if (frame === null) {
        // The WAL buffers moved on past it (a large insert right after the flush): from the files.
        Atomics.store(views.ints, intCell(slot, 0), WalSndDirectState.returned);
        returned = true;
        continue;
      }
      const written = writeSome(views.ints[intCell(slot, 1)]!, frame);
      if (written === frame.length) {
        views.floats[slot * 2] = flushed;
        views.floats[slot * 2 + 1] = now;
        continue;
      }
      if (written > 0) {
        // Cut short: the rest goes first when the walsender takes the socket back.
        frame.copy(views.rests, slot * MAX_FRAME_BYTES, written);
        views.ints[intCell(slot, 2)] = frame.length - written;
        views.floats[slot * 2] = flushed;
        views.floats[slot * 2 + 1] = now;
      }
      Atomics.store(views.ints, intCell(slot, 0), WalSndDirectState.returned);
      returned = true;
    }
  } finally {
    unlock(views);
  }
  return returned;
}

/** One non-blocking write attempt loop: bytes written, stopping at a full buffer or an error. */
function writeSome(fd: number, frame: Buffer): number {
  let written = 0;
  while (written < frame.length) {
    try {
      written += fs.writeSync(fd, frame, written, frame.length - written);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EINTR') continue;
      // EAGAIN: the standby is not reading; EPIPE, ECONNRESET: it is gone. Either way the
      // walsender takes over, and sees for itself.
      return written;
    }
  }
  return written;
}

/** This thread's room for the message being sent: no allocation per flush. */
const scratch = Buffer.allocUnsafe(MAX_FRAME_BYTES);

/**
 * A WebSocket binary message (server to client, unmasked) holding the XLogData frame for [from, to),
 * or null when a page of it is no longer in the ring. It is this thread's scratch buffer: valid until
 * the next call.
 */
function buildXLogDataMessage(ring: Buffer, from: number, to: number, sendTime: number): Buffer | null {
  const payloadBytes = XLOG_DATA_HEADER_BYTES + (to - from);
  const wsHeaderBytes = payloadBytes < 126 ? 2 : payloadBytes < 65_536 ? 4 : 10;
  // One message at a time per thread, written (or its rest copied out) before the next is built.
  const message = scratch.subarray(0, wsHeaderBytes + payloadBytes);
  message[0] = WS_BINARY_FINAL;
  if (wsHeaderBytes === 2) {
    message[1] = payloadBytes;
  } else if (wsHeaderBytes === 4) {
    message[1] = 126;
    message.writeUInt16BE(payloadBytes, 2);
  } else {
    message[1] = 127;
    message.writeUInt32BE(0, 2);
    message.writeUInt32BE(payloadBytes, 6);
  }
  const at = wsHeaderBytes;
  message[at] = XLOG_DATA_TAG;
  writeLsn(message, from, at + 1);
  writeLsn(message, to, at + 9);
  // A TimestampTz is below 2^53: written as the protocol's two little-endian halves.
  writeLsn(message, sendTime, at + 17);
  copyFromWalRing(ring, from, to, message, at + XLOG_DATA_HEADER_BYTES);
  return pagesStillInRing(ring, from, to) ? message : null;
}

/**
 * Whether every page of [from, to) still holds that page. The main thread inserts on while this
 * thread copies; a slot it reuses is zeroed first, header first, and then given the new page's
 * address, so a page reused before or during the copy shows another address now.
 */
function pagesStillInRing(ring: Buffer, from: number, to: number): boolean {
  const ringPages = ring.length / XLOG_BLCKSZ;
  for (let page = from - (from % XLOG_BLCKSZ); page < to; page += XLOG_BLCKSZ) {
    const slot = ((page / XLOG_BLCKSZ) % ringPages) * XLOG_BLCKSZ;
    if (readLsn(ring, slot + PAGE_ADDRESS_OFFSET) !== page) return false;
  }
  return true;
}
