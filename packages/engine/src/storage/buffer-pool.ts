/**
 * The buffer pool (PostgreSQL's bufmgr.c, freelist.c): `nBuffers` page frames in one Buffer, a
 * map from (relNode, blockNo) to frame, pin counts, dirty flags and clock-sweep eviction with
 * usage counts. Memory stays at nBuffers pages however large the relations grow.
 *
 * Rules:
 *  1. WAL before data: a dirty page is written only after `flushWal(pageLsn)` returned
 *     (FlushBuffer -> XLogFlush -> smgrwrite).
 *  2. A pinned frame is never evicted or reassigned; `handle.page` is valid only while pinned.
 *  3. Checksums live on disk only: a page is verified when read and its checksum field is then
 *     zeroed in the frame; the checksum is computed on a copy when the page is written. So the
 *     in-memory bytes of a page never depend on when it was last written.
 *  4. Everything is synchronous: a transaction's apply step never awaits.
 *
 * Who calls what: the storage layer (btree.ts, store.ts) reads, allocates, pins and releases;
 * the WAL layer pins the pages a transaction registers until the transaction ends and marks them
 * dirty; the checkpointer uses `dirtyBlocks` and `flushBlock`, the background writer `bgBufferSync`; redo uses
 * `readBufferForRedo`.
 */
import { BLCKSZ, CATALOG_RELNODE } from '../constants.js';
import { ErrorCode, WalshipError, assert } from '../errors.js';
import { readLsn, type Lsn } from '../lsn.js';
import type { BufferHandle } from './contracts.js';
import { pageClearChecksum, pageSetChecksum, pageVerifyChecksum } from './page.js';
import { MAX_RELNODE, type Smgr } from './smgr.js';

/** Usage count cap of the clock sweep (PostgreSQL's BM_MAX_USAGE_COUNT). */
export const BM_MAX_USAGE_COUNT = 5;

/**
 * How many bgwriter rounds the allocation estimate averages over when allocations fall
 * (PostgreSQL's smoothing_samples in BgBufferSync); a rise is taken at once.
 */
const BGWRITER_SMOOTHING_SAMPLES = 16;

/**
 * Fewest frames a pool may have: a single B-tree operation pins a handful of pages at once (the
 * meta page, a parent, two siblings); below this even one operation could run out.
 */
export const MIN_BUFFERS = 16;

export interface BufferPoolOptions {
  smgr: Smgr;
  nBuffers: number;
  /** xlogFlush: make WAL durable up to `lsn` before a page carrying that LSN is written. */
  flushWal: (lsn: Lsn) => void;
}

export interface BufferPoolStats {
  nBuffers: number;
  /** Lookups served from the pool. */
  hits: number;
  /** Pages read from disk. */
  reads: number;
  /** Pages written to disk (eviction and flushBlock). */
  writes: number;
  /** Frames taken from another page. */
  evictions: number;
  /** Frames currently dirty. */
  dirty: number;
  /** Frames currently pinned. */
  pinned: number;
}

export interface BlockTag {
  relNode: number;
  blockNo: number;
}

const TWO_32 = 0x1_0000_0000;

function tagKey(relNode: number, blockNo: number): number {
  return relNode * TWO_32 + blockNo;
}

/** A pinned page. A fresh object per pin, so a stale handle is caught on release. */
class PoolHandle implements BufferHandle {
  constructor(
    readonly relNode: number,
    readonly blockNo: number,
    readonly page: Buffer,
    readonly frame: number,
  ) {}
}

export class BufferPool {
  readonly smgr: Smgr;
  readonly nBuffers: number;
  private flushWal: (lsn: Lsn) => void;

  private readonly arena: Buffer;
  private readonly pages: Buffer[];
  private readonly frameRel: Int32Array;
  private readonly frameBlock: Uint32Array;
  private readonly pinCount: Int32Array;
  private readonly usage: Uint8Array;
  private readonly dirty: Uint8Array;
  private readonly valid: Uint8Array;
  private readonly lookup = new Map<number, number>();
  /** Frames holding no page, used before the clock sweep evicts anything. */
  private readonly freeFrames: number[] = [];
  private clockHand = 0;
  /** Frames handed out by takeFrame (numBufferAllocs), read by the background writer's estimate. */
  private allocs = 0;
  private allocsSeenByBgWriter = 0;
  private smoothedAlloc = 0;
  /** Relation length in blocks, including blocks allocated here and not yet written. */
  private readonly relationBlocks = new Map<number, number>();
  /** Page copy that gets the checksum on its way to disk. */
  private readonly writeScratch = Buffer.alloc(BLCKSZ);

  /** Catalog pages marked dirty so far (catalogVersion). */
  private catalogChanges = 0;

  private hits = 0;
  private reads = 0;
  private writes = 0;
  private evictions = 0;
  private dirtyCount = 0;
  private pinnedCount = 0;

  constructor(options: BufferPoolOptions) {
    assert(Number.isInteger(options.nBuffers) && options.nBuffers >= MIN_BUFFERS, `nBuffers >= ${MIN_BUFFERS}`);
    this.smgr = options.smgr;
    this.nBuffers = options.nBuffers;
    this.flushWal = options.flushWal;
    this.arena = Buffer.alloc(options.nBuffers * BLCKSZ);
    this.pages = [];
    for (let i = 0; i < options.nBuffers; i++) this.pages.push(this.arena.subarray(i * BLCKSZ, (i + 1) * BLCKSZ));
    this.frameRel = new Int32Array(options.nBuffers);
    this.frameBlock = new Uint32Array(options.nBuffers);
    this.pinCount = new Int32Array(options.nBuffers);
    this.usage = new Uint8Array(options.nBuffers);
    this.dirty = new Uint8Array(options.nBuffers);
    this.valid = new Uint8Array(options.nBuffers);
    for (let i = options.nBuffers - 1; i >= 0; i--) this.freeFrames.push(i);
  }

  /** Length of the relation in blocks as the pool sees it (smgr's length plus new blocks). */
  /**
   * Replaces the WAL-before-data callback: during recovery it moves the minimum recovery point,
   * once the node writes WAL of its own it flushes that WAL.
   */
  setFlushWal(flushWal: (lsn: Lsn) => void): void {
    this.flushWal = flushWal;
  }

  nblocks(relNode: number): number {
    let n = this.relationBlocks.get(relNode);
    if (n === undefined) {
      n = this.smgr.nblocks(relNode);
      this.relationBlocks.set(relNode, n);
    }
    return n;
  }

  /**
   * ReadBuffer: the page pinned. On a miss it is read through smgr and its checksum verified; a
   * corrupt page throws data_corrupted and is not kept.
   */
  readBuffer(relNode: number, blockNo: number): BufferHandle {
    const frame = this.lookup.get(tagKey(relNode, blockNo));
    if (frame !== undefined) {
      this.hits++;
      return this.pinFrame(frame);
    }
    if (blockNo >= this.nblocks(relNode)) {
      throw new WalshipError(ErrorCode.dataCorrupted, `block ${blockNo} of relation ${relNode} is past its end`, {
        detail: `The relation has ${this.nblocks(relNode)} blocks.`,
        hint: 'A page refers to a block that does not exist; the relation file may be truncated. Restore from a base backup or a standby.',
      });
    }
    return this.loadFrame(relNode, blockNo, false);
  }

  /**
   * XLogReadBufferExtended for redo. With `zeroPage` the page comes back zeroed without being
   * read (a full-page image or an init record will overwrite it; the block on disk may be torn or
   * past the end). Without it the page is read, and a block past the end reads as a zero page.
   * The caller marks the page dirty once it has applied the record.
   */
  readBufferForRedo(relNode: number, blockNo: number, zeroPage: boolean): BufferHandle {
    if (blockNo >= this.nblocks(relNode)) this.relationBlocks.set(relNode, blockNo + 1);
    const frame = this.lookup.get(tagKey(relNode, blockNo));
    if (frame !== undefined) {
      this.hits++;
      const handle = this.pinFrame(frame);
      if (zeroPage) handle.page.fill(0);
      return handle;
    }
    return this.loadFrame(relNode, blockNo, zeroPage);
  }

  /**
   * A new zeroed block at the end of the relation, pinned and dirty (so that the file grows to
   * include it when it is evicted, even if nothing else is written to it).
   */
  newBuffer(relNode: number): BufferHandle {
    assert(Number.isInteger(relNode) && relNode > 0 && relNode <= MAX_RELNODE, `relNode ${relNode} in range`);
    const blockNo = this.nblocks(relNode);
    assert(blockNo < 0xffff_fffe, 'relation below the block number limit');
    assert(!this.lookup.has(tagKey(relNode, blockNo)), 'new block not already in the pool');
    const frame = this.takeFrame();
    this.pages[frame]!.fill(0);
    this.assignFrame(frame, relNode, blockNo);
    this.relationBlocks.set(relNode, blockNo + 1);
    const handle = this.pinFrame(frame);
    this.setDirty(frame);
    return handle;
  }

  /** Another pin on a pinned page (the WAL layer keeps registered pages pinned this way). */
  pin(handle: BufferHandle): void {
    const frame = this.frameOf(handle);
    this.pinFrame(frame);
  }

  /** ReleaseBuffer: drops one pin. */
  release(handle: BufferHandle): void {
    const frame = this.frameOf(handle);
    const count = this.pinCount[frame]! - 1;
    this.pinCount[frame] = count;
    if (count === 0) this.pinnedCount--;
  }

  /**
   * Moves whenever a catalog page is marked dirty: a transaction about to change it, its commit,
   * its abort putting it back, redo. Store's name → relNode cache holds while this stays the
   * same: the relcache invalidation, where one pool is all there is.
   */
  get catalogVersion(): number {
    return this.catalogChanges;
  }

  /** MarkBufferDirty. The page must be pinned. */
  markDirty(handle: BufferHandle): void {
    this.setDirty(this.frameOf(handle));
  }

  /**
   * LSN of a page in the pool without pinning it (for the background writer's choice of pages it
   * can write without flushing WAL); INVALID_LSN (0) when the block is not in the pool.
   */
  pageLsn(relNode: number, blockNo: number): Lsn {
    const frame = this.lookup.get(tagKey(relNode, blockNo));
    return frame === undefined ? (0 as Lsn) : readLsn(this.pages[frame]!, 0);
  }

  /** Checkpoint support (BufferSync's first pass): every dirty page, as of now. */
  dirtyBlocks(): BlockTag[] {
    const blocks: BlockTag[] = [];
    for (let frame = 0; frame < this.nBuffers; frame++) {
      if (this.valid[frame] === 1 && this.dirty[frame] === 1) {
        blocks.push({ relNode: this.frameRel[frame]!, blockNo: this.frameBlock[frame]! });
      }
    }
    return blocks;
  }

  /**
   * Writes the page if it is in the pool and dirty (after flushing WAL to its LSN); returns
   * whether it wrote. A pinned page may be written: a transaction applies and logs its pages
   * without yielding, so between calls no page holds unlogged changes.
   */
  flushBlock(relNode: number, blockNo: number): boolean {
    const frame = this.lookup.get(tagKey(relNode, blockNo));
    if (frame === undefined || this.dirty[frame] !== 1) return false;
    this.writeFrame(frame);
    return true;
  }

  /**
   * BgBufferSync's LRU scan: writes the dirty pages that the clock sweep is about to reuse, so
   * that a backend seldom writes one itself on eviction. How many frames will be needed before
   * the next round is estimated from recent allocations (smoothed, times `multiplier`, as
   * bgwriter_lru_multiplier does); free frames cover that first. The scan starts at the clock
   * hand and looks only at frames the sweep could take now (unpinned, usage count 0), without
   * touching usage counts, so a page in use is never written by it: a pool that holds the whole
   * working set allocates nothing and the round writes nothing, where writing every dirty page
   * would rewrite the hottest pages again and again. A page whose WAL is not yet flushed up to
   * `walFlushed` is left to the sweep (writing it would mean flushing WAL here). Returns the number
   * of pages written.
   */
  bgBufferSync(maxPages: number, multiplier: number, walFlushed: Lsn): number {
    const recent = this.allocs - this.allocsSeenByBgWriter;
    this.allocsSeenByBgWriter = this.allocs;
    this.smoothedAlloc = recent >= this.smoothedAlloc
      ? recent
      : this.smoothedAlloc + (recent - this.smoothedAlloc) / BGWRITER_SMOOTHING_SAMPLES;
    const wanted = Math.ceil(this.smoothedAlloc * multiplier) - this.freeFrames.length;
    let reusable = 0;
    let written = 0;
    let frame = this.clockHand;
    for (let scanned = 0; scanned < this.nBuffers && reusable < wanted && written < maxPages; scanned++) {
      if (this.valid[frame] === 1 && this.pinCount[frame] === 0 && this.usage[frame] === 0) {
        if (this.dirty[frame] === 0) {
          reusable++;
        } else if (readLsn(this.pages[frame]!, 0) <= walFlushed) {
          this.writeFrame(frame);
          written++;
          reusable++;
        }
      }
      frame = frame + 1 === this.nBuffers ? 0 : frame + 1;
    }
    return written;
  }

  /** Writes every dirty page; returns how many. For shutdown and tests (checkpoints pace it). */
  flushAll(): number {
    let written = 0;
    for (let frame = 0; frame < this.nBuffers; frame++) {
      if (this.valid[frame] === 1 && this.dirty[frame] === 1) {
        this.writeFrame(frame);
        written++;
      }
    }
    return written;
  }

  stats(): BufferPoolStats {
    return {
      nBuffers: this.nBuffers,
      hits: this.hits,
      reads: this.reads,
      writes: this.writes,
      evictions: this.evictions,
      dirty: this.dirtyCount,
      pinned: this.pinnedCount,
    };
  }

  /**
   * DropRelationBuffers: forgets every page of the relation without writing it, and its length.
   * The caller removes the file (smgr.unlink). None of its pages may be pinned.
   */
  dropRelation(relNode: number): void {
    for (let frame = 0; frame < this.nBuffers; frame++) {
      if (this.valid[frame] !== 1 || this.frameRel[frame] !== relNode) continue;
      assert(this.pinCount[frame] === 0, `dropping relation ${relNode} with block ${this.frameBlock[frame]} pinned`);
      this.invalidateFrame(frame);
    }
    this.relationBlocks.delete(relNode);
  }

  // -------------------------------------------------------------------------------------------

  private frameOf(handle: BufferHandle): number {
    const frame = (handle as PoolHandle).frame;
    assert(
      frame !== undefined &&
        this.valid[frame] === 1 &&
        this.frameRel[frame] === handle.relNode &&
        this.frameBlock[frame] === handle.blockNo &&
        this.pinCount[frame]! > 0,
      `buffer handle for block ${handle.blockNo} of relation ${handle.relNode} is pinned and current`,
    );
    return frame;
  }

  private pinFrame(frame: number): PoolHandle {
    if (this.pinCount[frame] === 0) this.pinnedCount++;
    this.pinCount[frame]!++;
    if (this.usage[frame]! < BM_MAX_USAGE_COUNT) this.usage[frame]!++;
    return new PoolHandle(this.frameRel[frame]!, this.frameBlock[frame]!, this.pages[frame]!, frame);
  }

  private setDirty(frame: number): void {
    assert(this.pinCount[frame]! > 0, 'only a pinned page is marked dirty');
    if (this.frameRel[frame] === CATALOG_RELNODE) this.catalogChanges++;
    if (this.dirty[frame] === 0) {
      this.dirty[frame] = 1;
      this.dirtyCount++;
    }
  }

  private loadFrame(relNode: number, blockNo: number, zeroPage: boolean): PoolHandle {
    const frame = this.takeFrame();
    const page = this.pages[frame]!;
    if (zeroPage || blockNo >= this.smgr.nblocks(relNode)) {
      // Past the end on disk: a block extended in memory and never written, or redo's past-EOF.
      page.fill(0);
    } else {
      try {
        this.smgr.read(relNode, blockNo, page);
      } catch (error) {
        this.freeFrames.push(frame);
        throw error;
      }
      this.reads++;
      if (!pageVerifyChecksum(page, blockNo)) {
        this.freeFrames.push(frame);
        throw new WalshipError(ErrorCode.dataCorrupted, `invalid page in block ${blockNo} of relation base/${relNode}`, {
          detail: 'The page checksum or header does not match its contents (PostgreSQL: "page verification failed").',
          hint: 'The data file is damaged. Restore the node from a base backup or rebuild it from a standby.',
        });
      }
      pageClearChecksum(page);
    }
    this.assignFrame(frame, relNode, blockNo);
    return this.pinFrame(frame);
  }

  /** A frame holding nothing: from the free list, else the clock sweep's victim, written if dirty. */
  private takeFrame(): number {
    this.allocs++;
    const free = this.freeFrames.pop();
    if (free !== undefined) return free;
    // StrategyGetBuffer: an unpinned frame with usage 0, decrementing usage on the way. Give up
    // after a full revolution that found every frame pinned.
    let tries = this.nBuffers;
    for (;;) {
      const frame = this.clockHand;
      this.clockHand = frame + 1 === this.nBuffers ? 0 : frame + 1;
      if (this.pinCount[frame] === 0) {
        if (this.usage[frame] === 0) {
          if (this.dirty[frame] === 1) this.writeFrame(frame);
          this.lookup.delete(tagKey(this.frameRel[frame]!, this.frameBlock[frame]!));
          this.valid[frame] = 0;
          this.evictions++;
          return frame;
        }
        this.usage[frame]!--;
        tries = this.nBuffers;
      } else if (--tries === 0) {
        // Only a transaction pins many pages at once (every page it changes stays pinned until
        // its record is written), so this is a transaction too large for shared_buffers.
        throw new WalshipError(ErrorCode.transactionTooLarge, 'no unpinned buffers available: the transaction changes more pages than shared_buffers holds', {
          detail: `All ${this.nBuffers} buffers are pinned.`,
          hint: 'Split the transaction into smaller ones (for a delete-range, give it a limit and repeat it), or raise shared_buffers.',
        });
      }
    }
  }

  private assignFrame(frame: number, relNode: number, blockNo: number): void {
    this.frameRel[frame] = relNode;
    this.frameBlock[frame] = blockNo;
    this.valid[frame] = 1;
    this.usage[frame] = 0;
    this.pinCount[frame] = 0;
    this.lookup.set(tagKey(relNode, blockNo), frame);
  }

  private invalidateFrame(frame: number): void {
    this.lookup.delete(tagKey(this.frameRel[frame]!, this.frameBlock[frame]!));
    if (this.dirty[frame] === 1) {
      this.dirty[frame] = 0;
      this.dirtyCount--;
    }
    this.valid[frame] = 0;
    this.usage[frame] = 0;
    this.freeFrames.push(frame);
  }

  /** FlushBuffer: WAL first, then the page (with its checksum, on a copy). */
  private writeFrame(frame: number): void {
    const page = this.pages[frame]!;
    const relNode = this.frameRel[frame]!;
    const blockNo = this.frameBlock[frame]!;
    this.flushWal(readLsn(page, 0));
    page.copy(this.writeScratch);
    pageSetChecksum(this.writeScratch, blockNo);
    this.smgr.write(relNode, blockNo, this.writeScratch);
    this.writes++;
    this.dirty[frame] = 0;
    this.dirtyCount--;
  }
}
