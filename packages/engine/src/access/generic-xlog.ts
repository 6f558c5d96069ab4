/**
 * Physical WAL for page changes (after PostgreSQL's generic_xlog.c): a transaction registers each
 * page before changing it; at commit the changes become one WAL record carrying, per page, either
 * the byte ranges that differ from the pre-image (a delta) or, for the first change after the
 * checkpoint's redo pointer and for new pages, a full-page image with the free hole left out.
 *
 * Redo is deterministic: a delta is applied only when the page LSN is older than the record,
 * an image always replaces the page, and the hole of an imaged page is zero on both sides, so
 * the same records on the same pages give the same bytes on a standby and after a crash.
 *
 * The commit LSN is stamped into the entries the transaction wrote (their revision). Entries are
 * written with PENDING_REVISION; the delta always covers each revision field whole, so the
 * record's length does not depend on the LSN, which is computed from that length, written into
 * the fields, and only then copied into the record.
 */
import { BLCKSZ } from '../constants.js';
import { WalshipError, assert, assertionFailed } from '../errors.js';
import { readLsn, writeLsn, type Lsn } from '../lsn.js';
import { PageHeader, type BufferHandle, type PageModifyContext } from '../storage/contracts.js';
import {
  BKP_DELTA,
  BKP_IMAGE,
  SIZE_OF_BLOCK_HEADER,
  SIZE_OF_DELTA_HEADER,
  SIZE_OF_FRAGMENT_HEADER,
  SIZE_OF_IMAGE_HEADER,
  SIZE_OF_XLOG_RECORD,
  type DecodedRecord,
} from '../wal/xlog-record.js';
import type { Xlog } from '../wal/xlog.js';

/** Deltas skip the page LSN and checksum: redo sets the one, a write computes the other. */
const DELTA_START = PageHeader.checksumOffset + 4;
/** Equal runs shorter than a fragment header are cheaper to include than to split around. */
const MERGE_GAP_BYTES = SIZE_OF_FRAGMENT_HEADER;
const REVISION_BYTES = 8;

/** What the buffer pool must offer the WAL layer. */
export interface RedoBufferPool {
  pin(handle: BufferHandle): void;
  release(handle: BufferHandle): void;
  markDirty(handle: BufferHandle): void;
  readBufferForRedo(relNode: number, blockNo: number, zeroPage: boolean): BufferHandle;
}

interface Registered {
  handle: BufferHandle;
  preImage: Buffer;
  isNew: boolean;
  /** Filled at commit. */
  image: boolean;
  holeOffset: number;
  holeLength: number;
  fragments: number[];
  revisionOffsets: number[];
}

/** Finds the revision fields a transaction left pending in a page (Store.pendingRevisionOffsets). */
export type PendingRevisionFinder = (page: Buffer) => number[];

let scratch = Buffer.allocUnsafe(256 * 1024);

/**
 * Pre-images are reused rather than allocated for every page of every transaction (8 KiB each,
 * which otherwise dominates the garbage collector's work on the commit path). Bounded: a few
 * typical transactions' worth; bigger ones allocate and drop the extra.
 */
const PRE_IMAGE_POOL_MAX = 256;
const preImagePool: Buffer[] = [];

function takePreImage(page: Buffer): Buffer {
  const image = preImagePool.pop() ?? Buffer.allocUnsafeSlow(BLCKSZ);
  page.copy(image, 0, 0, BLCKSZ);
  return image;
}

function givePreImage(image: Buffer): void {
  if (preImagePool.length < PRE_IMAGE_POOL_MAX) preImagePool.push(image);
}

export class PageChangeSet implements PageModifyContext {
  private readonly registered: Registered[] = [];
  private readonly byBlock = new Map<number, Registered>();
  private finished = false;

  constructor(private readonly pool: RedoBufferPool) {}

  get size(): number {
    return this.registered.length;
  }

  registerBuffer(handle: BufferHandle, isNew: boolean): void {
    assert(!this.finished, 'page registered after the change set finished');
    const key = handle.relNode * 0x1_0000_0000 + handle.blockNo;
    const existing = this.byBlock.get(key);
    if (existing !== undefined) {
      if (isNew) existing.isNew = true;
      return;
    }
    this.pool.pin(handle);
    const entry: Registered = {
      handle, preImage: takePreImage(handle.page), isNew, image: false, holeOffset: 0, holeLength: 0, fragments: [], revisionOffsets: [],
    };
    this.registered.push(entry);
    this.byBlock.set(key, entry);
  }

  /**
   * Puts every registered page back as it was (the transaction failed before it was logged).
   * Putting it back is a change like any other: marked dirty, as the pool's readers of changes
   * (the catalog cache's version) expect.
   */
  abort(): void {
    if (this.finished) return;
    for (const entry of this.registered) {
      entry.preImage.copy(entry.handle.page);
      this.pool.markDirty(entry.handle);
    }
    this.releaseAll();
  }

  /**
   * GenericXLogFinish: builds the record for every registered page plus `mainData`, stamps the
   * commit LSN into pending revisions, inserts the record, and sets each page's LSN. Returns the
   * record's start and end; the end is the commit LSN. Throws (after undoing the changes) when
   * the record would be too large.
   */
  finish(xlog: Xlog, findRevisions: PendingRevisionFinder, rmid: number, info: number, xid: number, mainData: Buffer): { start: Lsn; end: Lsn } {
    assert(!this.finished, 'change set finished twice');
    let totalLength = SIZE_OF_XLOG_RECORD + 2;
    const redo = xlog.redoRecPtr;
    const fullPageImages = xlog.updateFullPageWrites() || xlog.forcePageWrites > 0;
    for (const entry of this.registered) {
      const page = entry.handle.page;
      entry.revisionOffsets = findRevisions(page);
      entry.image = entry.isNew || (fullPageImages && readLsn(entry.preImage, PageHeader.lsnOffset) <= redo);
      if (entry.image) {
        const [holeOffset, holeLength] = pageHole(page);
        entry.holeOffset = holeOffset;
        entry.holeLength = holeLength;
        // The hole is free space; zero it so that the image restores these exact bytes.
        if (holeLength > 0) page.fill(0, holeOffset, holeOffset + holeLength);
        totalLength += SIZE_OF_BLOCK_HEADER + SIZE_OF_IMAGE_HEADER + BLCKSZ - holeLength;
      } else {
        entry.fragments = computeDelta(entry.preImage, page, entry.revisionOffsets);
        totalLength += SIZE_OF_BLOCK_HEADER + SIZE_OF_DELTA_HEADER + deltaLength(entry.fragments);
      }
    }
    totalLength += mainData.length;
    if (this.registered.length > 0xffff) {
      this.abort();
      throw tooLarge(`it changes ${this.registered.length} pages`);
    }

    let end: Lsn;
    try {
      end = xlog.predictEndLsn(totalLength);
    } catch (error) {
      this.abort();
      throw error;
    }
    for (const entry of this.registered) {
      for (const offset of entry.revisionOffsets) writeLsn(entry.handle.page, end, offset);
    }

    if (scratch.length < totalLength) scratch = Buffer.allocUnsafe(Math.max(totalLength, scratch.length * 2));
    const record = scratch;
    let pos = SIZE_OF_XLOG_RECORD;
    record.writeUInt16LE(this.registered.length, pos);
    pos += 2;
    for (const entry of this.registered) {
      const page = entry.handle.page;
      record.writeUInt8(entry.image ? BKP_IMAGE : BKP_DELTA, pos);
      record.writeUInt32LE(entry.handle.relNode, pos + 1);
      record.writeUInt32LE(entry.handle.blockNo, pos + 5);
      pos += SIZE_OF_BLOCK_HEADER;
      if (entry.image) {
        record.writeUInt16LE(entry.holeOffset, pos);
        record.writeUInt16LE(entry.holeLength, pos + 2);
        pos += SIZE_OF_IMAGE_HEADER;
        pos += page.copy(record, pos, 0, entry.holeOffset);
        pos += page.copy(record, pos, entry.holeOffset + entry.holeLength, BLCKSZ);
      } else {
        record.writeUInt32LE(deltaLength(entry.fragments), pos);
        pos += SIZE_OF_DELTA_HEADER;
        const f = entry.fragments;
        for (let i = 0; i < f.length; i += 2) {
          record.writeUInt16LE(f[i]!, pos);
          record.writeUInt16LE(f[i + 1]!, pos + 2);
          pos += SIZE_OF_FRAGMENT_HEADER;
          pos += page.copy(record, pos, f[i]!, f[i]! + f[i + 1]!);
        }
      }
    }
    pos += mainData.copy(record, pos);
    if (pos !== totalLength) assertionFailed(`record assembled to ${pos} bytes, expected ${totalLength}`);

    let result: { start: Lsn; end: Lsn };
    try {
      result = xlog.xlogInsertRecord(record, totalLength, rmid, info, xid);
    } catch (error) {
      this.abort();
      throw error;
    }
    if (result.end !== end) assertionFailed(`record ended at ${result.end}, predicted ${end}`);
    for (const entry of this.registered) {
      writeLsn(entry.handle.page, end, PageHeader.lsnOffset);
      this.pool.markDirty(entry.handle);
    }
    this.releaseAll();
    return result;
  }

  private releaseAll(): void {
    this.finished = true;
    for (const entry of this.registered) {
      this.pool.release(entry.handle);
      givePreImage(entry.preImage);
    }
    this.registered.length = 0;
    this.byBlock.clear();
  }
}

function tooLarge(detail: string): WalshipError {
  return new WalshipError('transaction_too_large', 'transaction is too large for one WAL record', {
    detail,
    hint: 'Split the transaction into smaller ones.',
  });
}

/** The free hole [pd_lower, pd_upper) of a standard page, or [0, 0) when the page has none. */
export function pageHole(page: Buffer): [number, number] {
  const lower = page.readUInt16LE(PageHeader.lowerOffset);
  const upper = page.readUInt16LE(PageHeader.upperOffset);
  if (lower >= PageHeader.size && lower < upper && upper <= BLCKSZ) return [lower, upper - lower];
  return [0, 0];
}

/**
 * The byte ranges where `after` differs from `before`, as a flat list [offset, length, ...],
 * always covering each 8-byte revision field in `forced` whole.
 */
export function computeDelta(before: Buffer, after: Buffer, forced: number[]): number[] {
  const a = wordView(before);
  const b = a === null ? null : wordView(after);
  const aBase = before.byteOffset >> 2;
  const bBase = after.byteOffset >> 2;
  const ranges: number[] = [];
  let runStart = -1;
  let lastDiff = -1;
  // A native compare per chunk skips the (usually many) unchanged parts of the page. Within a
  // chunk that differs, 32-bit words are compared in JavaScript (bytes four at a time when the
  // pages are not word-aligned): a native compare costs an API call (~0.2 us on a 2-core VM),
  // and a second level of them (64-byte chunks) made an upsert's delta ~7 us.
  for (let chunk = 0; chunk < BLCKSZ; chunk += CHUNK) {
    const from = Math.max(chunk, DELTA_START);
    const to = chunk + CHUNK;
    if (before.compare(after, from, to, from, to) === 0) continue;
    for (let w = from >> 2; w < to >> 2; w++) {
      // The word's first and last differing bytes: only they can start or end a run, as the
      // bytes between them are fewer than MERGE_GAP_BYTES.
      let first: number;
      let last: number;
      if (b !== null) {
        const x = a![aBase + w]! ^ b[bBase + w]!;
        if (x === 0) continue;
        // Little-endian: byte 0 is the lowest.
        first = (w << 2) + ((31 - Math.clz32(x & -x)) >> 3);
        last = (w << 2) + ((31 - Math.clz32(x)) >> 3);
      } else {
        first = -1;
        last = -1;
        for (let i = w << 2; i < (w << 2) + 4; i++) {
          if (before[i] === after[i]) continue;
          if (first < 0) first = i;
          last = i;
        }
        if (first < 0) continue;
      }
      if (runStart >= 0 && first - lastDiff - 1 > MERGE_GAP_BYTES) {
        ranges.push(runStart, lastDiff + 1 - runStart);
        runStart = -1;
      }
      if (runStart < 0) runStart = first;
      lastDiff = last;
    }
  }
  if (runStart >= 0) ranges.push(runStart, lastDiff + 1 - runStart);
  if (forced.length === 0) return ranges;
  return mergeRanges(ranges, forced);
}

const CHUNK = 512;

/** Whether typed arrays put a word's lowest byte first, as the word scan assumes. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** One Int32Array per memory block (the pool's arena, each pre-image), made on first use. */
const wordViews = new WeakMap<ArrayBufferLike, Int32Array>();

/** A word view over the memory holding `page`; null when the page is not 4-byte aligned in it (or on a big-endian machine). */
function wordView(page: Buffer): Int32Array | null {
  if (!LITTLE_ENDIAN || (page.byteOffset & 3) !== 0 || page.length < BLCKSZ) return null;
  const memory = page.buffer;
  let view = wordViews.get(memory);
  if (view === undefined) {
    view = new Int32Array(memory, 0, memory.byteLength >> 2);
    wordViews.set(memory, view);
  }
  return view;
}

/**
 * Adds each [offset, offset + 8) of `forced` to `ranges`, merging overlaps and near neighbours.
 * `ranges` comes sorted from the page scan, so this is a merge of two sorted lists: no pair
 * arrays and no sort, which were a kilobyte of garbage per commit.
 */
function mergeRanges(ranges: number[], forced: number[]): number[] {
  const offsets = isAscending(forced) ? forced : forced.slice().sort((a, b) => a - b);
  const out: number[] = [];
  let start = -1;
  let end = -1;
  let r = 0;
  let f = 0;
  while (r < ranges.length || f < offsets.length) {
    let s: number;
    let e: number;
    if (f >= offsets.length || (r < ranges.length && ranges[r]! <= offsets[f]!)) {
      s = ranges[r]!;
      e = s + ranges[r + 1]!;
      r += 2;
    } else {
      s = offsets[f]!;
      e = s + REVISION_BYTES;
      f++;
    }
    if (start >= 0 && s - end <= MERGE_GAP_BYTES) {
      if (e > end) end = e;
      continue;
    }
    if (start >= 0) out.push(start, end - start);
    start = s;
    end = e;
  }
  out.push(start, end - start);
  return out;
}

function isAscending(values: number[]): boolean {
  for (let i = 1; i < values.length; i++) if (values[i]! < values[i - 1]!) return false;
  return true;
}

function deltaLength(fragments: number[]): number {
  let n = 0;
  for (let i = 1; i < fragments.length; i += 2) n += SIZE_OF_FRAGMENT_HEADER + fragments[i]!;
  return n;
}

/**
 * Replays the block references of a record onto the pages (the redo of every record that
 * changes pages). An image always replaces its page; a delta is skipped when the page already
 * has the record's changes (page LSN at or past the record's end).
 */
export function redoPageChanges(pool: RedoBufferPool, record: DecodedRecord): void {
  const buffer = record.buffer;
  const end = record.endLsn;
  for (const block of record.blocks) {
    if (block.flags === BKP_IMAGE) {
      const handle = pool.readBufferForRedo(block.relNode, block.blockNo, true);
      try {
        const page = handle.page;
        const split = block.holeOffset;
        buffer.copy(page, 0, block.dataOffset, block.dataOffset + split);
        page.fill(0, split, split + block.holeLength);
        buffer.copy(page, split + block.holeLength, block.dataOffset + split, block.dataOffset + block.dataLength);
        writeLsn(page, end, PageHeader.lsnOffset);
        pool.markDirty(handle);
      } finally {
        pool.release(handle);
      }
      continue;
    }
    const handle = pool.readBufferForRedo(block.relNode, block.blockNo, false);
    try {
      const page = handle.page;
      if (readLsn(page, PageHeader.lsnOffset) >= end) continue;
      let pos = block.dataOffset;
      const limit = block.dataOffset + block.dataLength;
      while (pos < limit) {
        const offset = buffer.readUInt16LE(pos);
        const length = buffer.readUInt16LE(pos + 2);
        pos += SIZE_OF_FRAGMENT_HEADER;
        if (offset + length > BLCKSZ || pos + length > limit) {
          throw new WalshipError('wal_corrupted', `invalid page delta for block ${block.blockNo} of relation ${block.relNode} in record at ${record.lsn}`);
        }
        buffer.copy(page, offset, pos, pos + length);
        pos += length;
      }
      writeLsn(page, end, PageHeader.lsnOffset);
      pool.markDirty(handle);
    } finally {
      pool.release(handle);
    }
  }
}
