/**
 * B+tree tables (after PostgreSQL's nbtree, single-threaded, so without its concurrency
 * protocol): ordered maps of byte keys to byte values with a revision per entry, on the pages of
 * one relation.
 *
 * Block 0 is the meta page (relation-meta.ts: root, level, free list). Leaves hold the entries
 * and are chained by right links for range scans; internal pages hold separator keys (suffix
 * truncated on leaf splits) and child blocks; large values live in overflow chains
 * (overflow.ts). Page layouts are in btree-page.ts.
 *
 * All operations are synchronous. Changes register every page with the PageModifyContext before
 * changing it; the WAL layer keeps registered pages pinned until the transaction ends. This file
 * releases its own pins as soon as it is done with a page and never keeps a page reference
 * across a read of another page unless it still holds the pin.
 */
import { BLCKSZ, MAX_KEY_BYTES, MAX_VALUE_BYTES } from '../constants.js';
import { ErrorCode, WalshipError, assert } from '../errors.js';
import { readLsn, type Lsn } from '../lsn.js';
import type { Entry, RangeResult } from '../types.js';
import type { BufferHandle, PageModifyContext } from './contracts.js';
import type { BufferPool } from './buffer-pool.js';
import {
  BTREE_SPECIAL_SIZE,
  INTERNAL_HEADER_SIZE,
  LEAF_FLAG_EXTERNAL,
  LEAF_FLAGS_AT,
  LEAF_HEADER_SIZE,
  LEAF_KEY_LENGTH_AT,
  LEAF_REVISION_AT,
  LEAF_VALUE_LENGTH_AT,
  MAX_TREE_HEIGHT,
  btreeLevel,
  btreeRightLink,
  btreeSetLevel,
  btreeSetRightLink,
  compareKeyAt,
  internalChild,
  internalSearch,
  leafLowerBound,
  leafSearch,
  leafTupleSize,
  leafValueIsExternal,
  tupleKeyLength,
  tupleKeyStart,
  u16,
  writeInternalTuple,
  writeLeafTuple,
} from './btree-page.js';
import { freeOverflow, readOverflow, writeOverflow } from './overflow.js';
import {
  PageType,
  pageAddItem,
  pageDeleteItem,
  pageDeleteItems,
  pageGetItemCount,
  pageGetType,
  pageInit,
  pageItemLength,
  pageItemOffset,
  pageResizeItem,
} from './page.js';
import {
  META_BLOCK,
  allocPage,
  beginPageChange,
  checkMeta,
  corruptPage,
  metaFreeCount,
  metaInit,
  metaRoot,
  metaRootLevel,
  metaSetRoot,
} from './relation-meta.js';

export interface ScanOptions {
  /** Inclusive start key. */
  start?: Buffer;
  /** Exclusive end key. */
  end?: Buffer;
  /** Only keys starting with these bytes. */
  prefix?: Buffer;
  /** Most entries to return; 0 or absent for no limit. */
  limit?: number;
}

export interface RelationInfo {
  relNode: number;
  /** Blocks in the relation, including those not yet written. */
  nblocks: number;
  /** Pages on the free list. */
  freePages: number;
  /** Level of the root: 0 when the root is a leaf. */
  rootLevel: number;
  rootBlock: number;
}

export function checkKeySize(key: Buffer): void {
  if (key.length > MAX_KEY_BYTES) {
    throw new WalshipError(ErrorCode.keyTooLarge, 'key too large', {
      detail: `The key is ${key.length} bytes; the limit is ${MAX_KEY_BYTES} bytes.`,
      hint: 'Use a shorter key, for example a hash of the long one.',
    });
  }
}

export function checkValueSize(value: Buffer): void {
  if (value.length > MAX_VALUE_BYTES) {
    throw new WalshipError(ErrorCode.valueTooLarge, 'value too large', {
      detail: `The value is ${value.length} bytes; the limit is ${MAX_VALUE_BYTES} bytes.`,
      hint: 'Split the value across several keys.',
    });
  }
}

/** The smallest key greater than every key starting with `prefix`, or null when none exists. */
export function prefixEnd(prefix: Buffer): Buffer | null {
  let length = prefix.length;
  while (length > 0 && prefix[length - 1] === 0xff) length--;
  if (length === 0) return null;
  const end = Buffer.from(prefix.subarray(0, length));
  end[length - 1]!++;
  return end;
}

export class BTree {
  readonly pool: BufferPool;
  /** Descent stack of the last `descend` with a path: internal blocks from the root down. */
  private readonly pathBlocks = new Uint32Array(MAX_TREE_HEIGHT);
  /** Index of the child taken in each of those pages. */
  private readonly pathIndexes = new Uint32Array(MAX_TREE_HEIGHT);
  private pathDepth = 0;
  /** Copy of a page being split. */
  private readonly splitScratch = Buffer.alloc(BLCKSZ);
  /** The tuple being inserted when it does not fit and a split is needed. */
  private readonly tupleScratch = Buffer.alloc(BLCKSZ);

  constructor(pool: BufferPool) {
    this.pool = pool;
  }

  /** Creates the relation's meta page (block 0) and an empty root leaf (block 1). */
  createRelation(relNode: number, ctx: PageModifyContext, nextRelNode = 0): void {
    assert(this.pool.nblocks(relNode) === 0, `relation ${relNode} is new`);
    const meta = this.pool.newBuffer(relNode);
    const root = this.pool.newBuffer(relNode);
    try {
      assert(meta.blockNo === META_BLOCK && root.blockNo === 1, 'new relation starts at block 0');
      beginPageChange(this.pool, ctx, meta, true);
      beginPageChange(this.pool, ctx, root, true);
      pageInit(root.page, PageType.leaf, BTREE_SPECIAL_SIZE);
      metaInit(meta.page, root.blockNo, nextRelNode);
    } finally {
      this.pool.release(root);
      this.pool.release(meta);
    }
  }

  info(relNode: number): RelationInfo {
    const meta = this.readMeta(relNode);
    try {
      return {
        relNode,
        nblocks: this.pool.nblocks(relNode),
        freePages: metaFreeCount(meta.page),
        rootLevel: metaRootLevel(meta.page),
        rootBlock: metaRoot(meta.page),
      };
    } finally {
      this.pool.release(meta);
    }
  }

  get(relNode: number, key: Buffer): Entry | null {
    const leaf = this.descend(relNode, key, false);
    try {
      const index = leafSearch(leaf.page, key);
      return index < 0 ? null : this.entryAt(relNode, leaf.page, pageItemOffset(leaf.page, index));
    } finally {
      this.pool.release(leaf);
    }
  }

  /** The revision of `key`'s entry, or null; reads no value. */
  getRevision(relNode: number, key: Buffer): Lsn | null {
    const leaf = this.descend(relNode, key, false);
    try {
      const index = leafSearch(leaf.page, key);
      return index < 0 ? null : readLsn(leaf.page, pageItemOffset(leaf.page, index) + LEAF_REVISION_AT);
    } finally {
      this.pool.release(leaf);
    }
  }

  /** Inserts or replaces; the entry's revision is PENDING_REVISION until commit stamps it. */
  put(relNode: number, key: Buffer, value: Buffer, ctx: PageModifyContext): void {
    checkKeySize(key);
    checkValueSize(value);
    const external = leafValueIsExternal(key.length, value.length);
    const size = leafTupleSize(key.length, value.length, external);
    const leaf = this.descend(relNode, key, true);
    try {
      const page = leaf.page;
      const index = leafSearch(page, key);
      if (index >= 0) {
        // Free a replaced value's chain first, so the new chain can reuse its pages (one
        // transaction never holds two chains of the same value).
        const offset = pageItemOffset(page, index);
        if ((page[offset + LEAF_FLAGS_AT]! & LEAF_FLAG_EXTERNAL) !== 0) {
          const chain = page.readUInt32LE(offset + LEAF_HEADER_SIZE + key.length);
          freeOverflow(this.pool, ctx, relNode, chain, page.readUInt32LE(offset + LEAF_VALUE_LENGTH_AT));
        }
      }
      // The leaf stays pinned meanwhile, so `page` stays valid.
      const overflowBlock = external ? writeOverflow(this.pool, ctx, relNode, value) : 0;
      let position: number;
      beginPageChange(this.pool, ctx, leaf);
      if (index >= 0) {
        const at = pageResizeItem(page, index, size);
        if (at >= 0) {
          writeLeafTuple(page, at, key, value, external, overflowBlock);
          position = -1;
        } else {
          pageDeleteItem(page, index);
          position = index;
        }
      } else {
        position = -index - 1;
        const at = pageAddItem(page, position, size);
        if (at >= 0) {
          writeLeafTuple(page, at, key, value, external, overflowBlock);
          position = -1;
        }
      }
      if (position >= 0) {
        writeLeafTuple(this.tupleScratch, 0, key, value, external, overflowBlock);
        this.insertSplitting(relNode, ctx, leaf, position, size);
      }
    } finally {
      this.pool.release(leaf);
    }
  }

  /** Deletes `key`; returns whether it was there. */
  delete(relNode: number, key: Buffer, ctx: PageModifyContext): boolean {
    const leaf = this.descend(relNode, key, false);
    try {
      const page = leaf.page;
      const index = leafSearch(page, key);
      if (index < 0) return false;
      const offset = pageItemOffset(page, index);
      let chain = 0;
      let length = 0;
      if ((page[offset + LEAF_FLAGS_AT]! & LEAF_FLAG_EXTERNAL) !== 0) {
        chain = page.readUInt32LE(offset + LEAF_HEADER_SIZE + key.length);
        length = page.readUInt32LE(offset + LEAF_VALUE_LENGTH_AT);
      }
      beginPageChange(this.pool, ctx, leaf);
      pageDeleteItem(page, index);
      if (chain !== 0) freeOverflow(this.pool, ctx, relNode, chain, length);
      return true;
    } finally {
      this.pool.release(leaf);
    }
  }

  /**
   * Deletes the keys in [start, end), at most `limit` of them when given (> 0); returns how many.
   * Leaves emptied here stay in the tree until vacuum merges them.
   */
  deleteRange(relNode: number, start: Buffer, end: Buffer, ctx: PageModifyContext, limit?: number): number {
    if (start.compare(end) >= 0) return 0;
    const max = limit !== undefined && limit > 0 ? limit : Number.POSITIVE_INFINITY;
    let deleted = 0;
    let leaf: BufferHandle | null = this.descend(relNode, start, false);
    let from = leafLowerBound(leaf.page, start);
    try {
      for (;;) {
        const page: Buffer = leaf.page;
        const count = pageGetItemCount(page);
        let to = from;
        while (to < count && deleted + (to - from) < max && compareItemKey(page, to, end) < 0) to++;
        if (to > from) {
          let chains: number[] | null = null;
          for (let i = from; i < to; i++) {
            const offset = pageItemOffset(page, i);
            if ((page[offset + LEAF_FLAGS_AT]! & LEAF_FLAG_EXTERNAL) !== 0) {
              const keyLength = u16(page, offset + LEAF_KEY_LENGTH_AT);
              chains ??= [];
              chains.push(page.readUInt32LE(offset + LEAF_HEADER_SIZE + keyLength), page.readUInt32LE(offset + LEAF_VALUE_LENGTH_AT));
            }
          }
          beginPageChange(this.pool, ctx, leaf);
          pageDeleteItems(page, from, to);
          deleted += to - from;
          if (chains !== null) {
            for (let i = 0; i < chains.length; i += 2) freeOverflow(this.pool, ctx, relNode, chains[i]!, chains[i + 1]!);
          }
        }
        const next = btreeRightLink(page);
        const finished = to < count || deleted >= max || next === 0;
        this.pool.release(leaf);
        leaf = null;
        if (finished) return deleted;
        leaf = this.readTreePage(relNode, next, 0);
        from = 0;
      }
    } finally {
      if (leaf !== null) this.pool.release(leaf);
    }
  }

  /** Entries in key order within the bounds; values are fresh Buffers, never pool views. */
  scan(relNode: number, options: ScanOptions): RangeResult {
    let start = options.start ?? null;
    let end = options.end ?? null;
    if (options.prefix !== undefined && options.prefix.length > 0) {
      const prefix = options.prefix;
      if (start === null || start.compare(prefix) < 0) start = prefix;
      const upper = prefixEnd(prefix);
      if (upper !== null && (end === null || end.compare(upper) > 0)) end = upper;
    }
    const entries: Entry[] = [];
    if (start !== null && end !== null && start.compare(end) >= 0) return { entries, more: false };
    const limit = options.limit !== undefined && options.limit > 0 ? options.limit : Number.POSITIVE_INFINITY;
    let leaf: BufferHandle | null = this.descend(relNode, start, false);
    let index = start === null ? 0 : leafLowerBound(leaf.page, start);
    try {
      for (;;) {
        const page: Buffer = leaf.page;
        const count = pageGetItemCount(page);
        for (; index < count; index++) {
          if (end !== null && compareItemKey(page, index, end) >= 0) return { entries, more: false };
          if (entries.length >= limit) return { entries, more: true };
          entries.push(this.entryAt(relNode, page, pageItemOffset(page, index)));
        }
        const next = btreeRightLink(page);
        this.pool.release(leaf);
        leaf = null;
        if (next === 0) return { entries, more: false };
        leaf = this.readTreePage(relNode, next, 0);
        index = 0;
      }
    } finally {
      if (leaf !== null) this.pool.release(leaf);
    }
  }

  // -------------------------------------------------------------------------------------------

  readMeta(relNode: number): BufferHandle {
    if (this.pool.nblocks(relNode) === 0) {
      throw new WalshipError(ErrorCode.tableNotFound, `relation ${relNode} does not exist`, {
        hint: 'Look the table up again: it may have been dropped.',
      });
    }
    const meta = this.pool.readBuffer(relNode, META_BLOCK);
    try {
      checkMeta(meta);
    } catch (error) {
      this.pool.release(meta);
      throw error;
    }
    return meta;
  }

  /** Reads a tree page and checks that it is a leaf or internal page of `level`. */
  readTreePage(relNode: number, blockNo: number, level: number): BufferHandle {
    const handle = this.pool.readBuffer(relNode, blockNo);
    const page = handle.page;
    const type = pageGetType(page);
    if ((type !== PageType.leaf && type !== PageType.internal) || btreeLevel(page) !== level || (type === PageType.leaf) !== (level === 0)) {
      this.pool.release(handle);
      throw corruptPage(relNode, blockNo, `Expected a B-tree page of level ${level}, found type ${type} level ${btreeLevel(page)}.`);
    }
    return handle;
  }

  /**
   * Descends from the root to the leaf whose range holds `key` (the leftmost leaf for null).
   * With `recordPath`, remembers the internal pages and child indexes for a split.
   */
  private descend(relNode: number, key: Buffer | null, recordPath: boolean): BufferHandle {
    const meta = this.readMeta(relNode);
    let blockNo = metaRoot(meta.page);
    let level = metaRootLevel(meta.page);
    this.pool.release(meta);
    assert(level < MAX_TREE_HEIGHT, 'tree height below MAX_TREE_HEIGHT');
    let depth = 0;
    for (;;) {
      const handle = this.readTreePage(relNode, blockNo, level);
      if (level === 0) {
        if (recordPath) this.pathDepth = depth;
        return handle;
      }
      const page = handle.page;
      const index = key === null ? 0 : internalSearch(page, key);
      if (recordPath) {
        this.pathBlocks[depth] = blockNo;
        this.pathIndexes[depth] = index;
      }
      blockNo = internalChild(page, index);
      this.pool.release(handle);
      depth++;
      level--;
    }
  }

  private entryAt(relNode: number, page: Buffer, offset: number): Entry {
    const keyLength = u16(page, offset + LEAF_KEY_LENGTH_AT);
    const valueLength = page.readUInt32LE(offset + LEAF_VALUE_LENGTH_AT);
    const keyAt = offset + LEAF_HEADER_SIZE;
    const revision = readLsn(page, offset + LEAF_REVISION_AT);
    if ((page[offset + LEAF_FLAGS_AT]! & LEAF_FLAG_EXTERNAL) !== 0) {
      const key = Buffer.allocUnsafe(keyLength);
      page.copy(key, 0, keyAt, keyAt + keyLength);
      const value = readOverflow(this.pool, relNode, page.readUInt32LE(keyAt + keyLength), valueLength);
      return { key, value, revision };
    }
    // Key and inline value are contiguous: one allocation, one copy.
    const both = Buffer.allocUnsafe(keyLength + valueLength);
    page.copy(both, 0, keyAt, keyAt + keyLength + valueLength);
    return { key: both.subarray(0, keyLength), value: both.subarray(keyLength), revision };
  }

  /**
   * Inserts the tuple in tupleScratch[0, size) as item `position` of `handle`'s page (registered,
   * pinned by the caller, too full for it), splitting it and as many ancestors as needed, up to
   * a new root. Uses the path recorded by the descent that found `handle`.
   */
  private insertSplitting(
    relNode: number,
    ctx: PageModifyContext,
    handle: BufferHandle,
    position: number,
    size: number,
  ): void {
    let current = handle;
    let ownPin = false;
    let depth = this.pathDepth;
    try {
      for (;;) {
        const level = btreeLevel(current.page);
        const separator = this.splitPage(relNode, ctx, current, position, size);
        const left = current.blockNo;
        if (ownPin) this.pool.release(current);
        ownPin = false;
        size = writeInternalTuple(this.tupleScratch, 0, separator.key, separator.right);
        if (depth === 0) {
          this.newRoot(relNode, ctx, left, level + 1, size);
          return;
        }
        depth--;
        current = this.readTreePage(relNode, this.pathBlocks[depth]!, level + 1);
        ownPin = true;
        position = this.pathIndexes[depth]! + 1;
        beginPageChange(this.pool, ctx, current);
        const at = pageAddItem(current.page, position, size);
        if (at >= 0) {
          this.tupleScratch.copy(current.page, at, 0, size);
          return;
        }
      }
    } finally {
      if (ownPin) this.pool.release(current);
    }
  }

  /**
   * Splits a page (registered by the caller) into itself and a new right sibling, inserting the
   * tuple in tupleScratch[0, size) as item `position` of the combined sequence. Returns the
   * separator to insert into the parent for the new right page.
   */
  private splitPage(
    relNode: number,
    ctx: PageModifyContext,
    handle: BufferHandle,
    position: number,
    size: number,
  ): { key: Buffer; right: number } {
    const page = handle.page;
    const scratch = this.splitScratch;
    const tuple = this.tupleScratch;
    page.copy(scratch);
    const level = btreeLevel(scratch);
    const isLeaf = level === 0;
    const type = isLeaf ? PageType.leaf : PageType.internal;
    const count = pageGetItemCount(scratch);
    const oldRightLink = btreeRightLink(scratch);

    // Virtual sequence: the page's items with the new tuple at `position`, count + 1 in all.
    // `split` items go left, at least one on each side.
    let split: number;
    if (position === count && oldRightLink === 0) {
      // Appending at the end of the rightmost page (ascending keys): keep the left page full.
      split = count;
    } else {
      let total = size + 4;
      for (let i = 0; i < count; i++) total += pageItemLength(scratch, i) + 4;
      let sum = 0;
      split = count;
      for (let v = 0; v <= count; v++) {
        sum += (v === position ? size : pageItemLength(scratch, v < position ? v : v - 1)) + 4;
        if (sum * 2 >= total) {
          split = v + 1;
          break;
        }
      }
      if (split > count) split = count;
      if (split < 1) split = 1;
    }

    const right = allocPage(this.pool, ctx, relNode);
    try {
      pageInit(right.page, type, BTREE_SPECIAL_SIZE);
      btreeSetLevel(right.page, level);
      btreeSetRightLink(right.page, oldRightLink);
      pageInit(page, type, BTREE_SPECIAL_SIZE);
      btreeSetLevel(page, level);
      btreeSetRightLink(page, right.blockNo);

      for (let v = 0; v <= count; v++) {
        const src = v === position ? tuple : scratch;
        const srcIndex = v < position ? v : v - 1;
        const srcOffset = v === position ? 0 : pageItemOffset(scratch, srcIndex);
        let length = v === position ? size : pageItemLength(scratch, srcIndex);
        const dst = v < split ? page : right.page;
        if (!isLeaf && v === split) {
          // The first child of an internal page has no key (minus infinity); its key moves up.
          length = INTERNAL_HEADER_SIZE;
        }
        const at = pageAddItem(dst, v < split ? v : v - split, length);
        assert(at >= 0, 'split halves hold their tuples');
        src.copy(dst, at, srcOffset, srcOffset + length);
        if (!isLeaf && v === split) dst.writeUInt16LE(0, at + 4);
      }

      return { key: this.separator(scratch, isLeaf, position, split), right: right.blockNo };
    } finally {
      this.pool.release(right);
    }
  }

  /**
   * The separator between virtual items split-1 and split: for leaves the shortest prefix of the
   * right page's first key that is greater than the left page's last key (suffix truncation);
   * for internal pages the right page's first key itself.
   */
  private separator(scratch: Buffer, isLeaf: boolean, position: number, split: number): Buffer {
    const tuple = this.tupleScratch;
    const rightSrc = split === position ? tuple : scratch;
    const rightOffset = split === position ? 0 : pageItemOffset(scratch, split < position ? split : split - 1);
    const rightKeyAt = tupleKeyStart(isLeaf, rightOffset);
    const rightKeyLength = tupleKeyLength(rightSrc, isLeaf, rightOffset);
    let length = rightKeyLength;
    if (isLeaf) {
      const v = split - 1;
      const leftSrc = v === position ? tuple : scratch;
      const leftOffset = v === position ? 0 : pageItemOffset(scratch, v < position ? v : v - 1);
      const leftKeyAt = tupleKeyStart(true, leftOffset);
      const leftKeyLength = tupleKeyLength(leftSrc, true, leftOffset);
      let common = 0;
      while (
        common < leftKeyLength &&
        common < rightKeyLength &&
        leftSrc[leftKeyAt + common] === rightSrc[rightKeyAt + common]
      ) {
        common++;
      }
      assert(common < rightKeyLength, 'leaf keys strictly increase across a split');
      length = common + 1;
    }
    return Buffer.from(rightSrc.subarray(rightKeyAt, rightKeyAt + length));
  }

  /** A new root above `left` (the old root) holding the tuple in tupleScratch[0, size). */
  private newRoot(relNode: number, ctx: PageModifyContext, left: number, level: number, size: number): void {
    assert(level < MAX_TREE_HEIGHT, 'tree height below MAX_TREE_HEIGHT');
    const root = allocPage(this.pool, ctx, relNode);
    try {
      pageInit(root.page, PageType.internal, BTREE_SPECIAL_SIZE);
      btreeSetLevel(root.page, level);
      const first = pageAddItem(root.page, 0, INTERNAL_HEADER_SIZE);
      writeInternalTuple(root.page, first, null, left);
      const second = pageAddItem(root.page, 1, size);
      this.tupleScratch.copy(root.page, second, 0, size);
      const meta = this.readMeta(relNode);
      try {
        beginPageChange(this.pool, ctx, meta);
        metaSetRoot(meta.page, root.blockNo, level);
      } finally {
        this.pool.release(meta);
      }
    } finally {
      this.pool.release(root);
    }
  }
}

/** Sign of (key of leaf item `index`) - `key`, compared in place. */
function compareItemKey(page: Buffer, index: number, key: Buffer): number {
  const offset = pageItemOffset(page, index);
  const keyAt = offset + LEAF_HEADER_SIZE;
  return -compareKeyAt(key, page, keyAt, keyAt + u16(page, offset + LEAF_KEY_LENGTH_AT));
}

