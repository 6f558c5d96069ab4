/**
 * Autovacuum's work on a B+tree (after PostgreSQL's nbtree page deletion, simplified because
 * nothing runs concurrently): compact fragmented leaves, merge sibling pages that together are
 * underfull, drop the emptied pages onto the relation's free list, and collapse a root left with
 * one child. Deleted and replaced values' overflow chains are freed by the operations themselves.
 *
 * A pass walks the tree in key order one level-1 page (parent of leaves) at a time:
 *  1. descend to the level-1 page P covering the cursor key;
 *  2. for each of P's children from the one before the cursor: compact it if fragmented, then
 *     merge its right siblings under P into it while the result stays at most MERGE_FILL_MAX
 *     full (the right page's items are appended, its separator leaves P, the page is freed);
 *  3. move the cursor to P's upper bound, then merge each page on the path with its right
 *     sibling when both fit in one (internal merges pull the parent's separator down);
 *  4. while the root is internal with a single child, make the child the root.
 * Only siblings under the same parent are merged, so right links are fixed up locally (the left
 * page takes the right page's link). A page left alone under its parent is merged in a later pass
 * once its parent has merged with a neighbour.
 *
 * Each step stops after about `maxPages` leaves; the cursor of an unfinished pass is kept in
 * memory per relation (a hint: if it is lost a pass starts over). Everything a step changes is
 * registered with the PageModifyContext, so a step is one WAL-logged transaction.
 */
import { BLCKSZ } from '../constants.js';
import { assert } from '../errors.js';
import type { BufferHandle, PageModifyContext } from './contracts.js';
import type { BTree } from './btree.js';
import {
  INTERNAL_HEADER_SIZE,
  MAX_TREE_HEIGHT,
  btreeRightLink,
  btreeSetRightLink,
  internalChild,
  internalKeyCopy,
  internalSearch,
  writeInternalTuple,
} from './btree-page.js';
import {
  pageAddItem,
  pageDeleteItem,
  pageGetCapacity,
  pageGetDeadBytes,
  pageGetItemCount,
  pageGetUsedSpace,
  pageItemLength,
  pageItemOffset,
  pageRepairFragmentation,
} from './page.js';
import { beginPageChange, freePage, metaRoot, metaRootLevel, metaSetRoot } from './relation-meta.js';

/**
 * Vacuum merges two sibling pages when the result is at most this full, leaving room for inserts
 * so that a merged page does not split again at once. After a pass, any two neighbours under one
 * parent hold more than this together, so leaves average above 30% full.
 */
export const MERGE_FILL_MAX = 0.6;

/** A leaf with at least this many dead bytes is compacted (below it, inserts do it lazily). */
export const VACUUM_COMPACT_MIN_DEAD_BYTES = BLCKSZ / 16;

export interface VacuumResult {
  /** Pages whose tuples were moved together (PageRepairFragmentation). */
  pagesCompacted: number;
  /** Pages merged into their left sibling. */
  pagesMerged: number;
  /** Pages put on the free list (merged pages and collapsed roots). */
  pagesFreed: number;
  /** True when this step finished a pass over the whole relation (the next starts a new one). */
  done: boolean;
}

export class BTreeVacuum {
  private readonly tree: BTree;
  /** Per relation: the key where the next step of the current pass starts. */
  private readonly cursors = new Map<number, Buffer>();
  private readonly pathBlocks = new Uint32Array(MAX_TREE_HEIGHT);
  private readonly pathIndexes = new Uint32Array(MAX_TREE_HEIGHT);
  /** Leaves the current step may still visit. */
  private budget = 0;

  constructor(tree: BTree) {
    this.tree = tree;
  }

  /** Forgets the relation's cursor (after it is dropped). */
  forget(relNode: number): void {
    this.cursors.delete(relNode);
  }

  step(relNode: number, ctx: PageModifyContext, maxPages: number): VacuumResult {
    assert(Number.isInteger(maxPages) && maxPages >= 1, 'vacuum maxPages >= 1');
    const result: VacuumResult = { pagesCompacted: 0, pagesMerged: 0, pagesFreed: 0, done: false };
    let cursor: Buffer | null = this.cursors.get(relNode) ?? null;
    this.budget = maxPages;
    while (this.budget > 0) {
      const { root, rootLevel } = this.readRoot(relNode);
      if (rootLevel === 0) {
        const leaf = this.tree.readTreePage(relNode, root, 0);
        try {
          this.compactIfFragmented(ctx, leaf, result);
        } finally {
          this.tree.pool.release(leaf);
        }
        return this.finishPass(relNode, result);
      }
      const parent = this.descendToParentOfLeaves(relNode, rootLevel, cursor);
      try {
        const resumeAt = this.processChildren(relNode, ctx, parent, this.pathIndexes[rootLevel - 1]!, result);
        if (resumeAt >= 0) {
          this.cursors.set(relNode, internalKeyCopy(parent.page, resumeAt));
          return result;
        }
      } finally {
        this.tree.pool.release(parent);
      }
      const upper = this.upperBound(relNode, rootLevel);
      this.mergeAlongPath(relNode, ctx, rootLevel, result);
      this.collapseRoot(relNode, ctx, result);
      if (upper === null) return this.finishPass(relNode, result);
      cursor = upper;
    }
    if (cursor !== null) this.cursors.set(relNode, cursor);
    return result;
  }

  private finishPass(relNode: number, result: VacuumResult): VacuumResult {
    result.done = true;
    this.cursors.delete(relNode);
    return result;
  }

  private readRoot(relNode: number): { root: number; rootLevel: number } {
    const meta = this.tree.readMeta(relNode);
    const root = metaRoot(meta.page);
    const rootLevel = metaRootLevel(meta.page);
    this.tree.pool.release(meta);
    assert(rootLevel < MAX_TREE_HEIGHT, 'tree height below MAX_TREE_HEIGHT');
    return { root, rootLevel };
  }

  /** Descends to the level-1 page covering `cursor`, recording the path; returns it pinned. */
  private descendToParentOfLeaves(relNode: number, rootLevel: number, cursor: Buffer | null): BufferHandle {
    let blockNo = this.readRoot(relNode).root;
    for (let depth = 0; ; depth++) {
      const handle = this.tree.readTreePage(relNode, blockNo, rootLevel - depth);
      const index = cursor === null ? 0 : internalSearch(handle.page, cursor);
      this.pathBlocks[depth] = blockNo;
      this.pathIndexes[depth] = index;
      if (depth === rootLevel - 1) return handle;
      blockNo = internalChild(handle.page, index);
      this.tree.pool.release(handle);
    }
  }

  /**
   * Compacts and merges the leaves under `parent` from child `from` - 1 on. Returns -1 when all
   * were done, else the index of the child to resume at (the leaf budget ran out).
   */
  private processChildren(
    relNode: number,
    ctx: PageModifyContext,
    parent: BufferHandle,
    from: number,
    result: VacuumResult,
  ): number {
    const pool = this.tree.pool;
    let processed = 0;
    for (let j = Math.max(0, from - 1); j < pageGetItemCount(parent.page); j++) {
      if (processed > 0 && this.budget <= 0) return j;
      const leaf = this.tree.readTreePage(relNode, internalChild(parent.page, j), 0);
      this.budget--;
      processed++;
      try {
        this.compactIfFragmented(ctx, leaf, result);
        // Stop with the budget: every page merged stays pinned until the step's record is written.
        while (this.budget > 0 && j + 1 < pageGetItemCount(parent.page)) {
          const right = this.tree.readTreePage(relNode, internalChild(parent.page, j + 1), 0);
          this.budget--;
          try {
            const capacity = pageGetCapacity(leaf.page);
            if (pageGetUsedSpace(leaf.page) + pageGetUsedSpace(right.page) > capacity * MERGE_FILL_MAX) break;
            this.mergeInto(ctx, leaf, right, parent, j + 1, null, result);
          } finally {
            pool.release(right);
          }
        }
      } finally {
        pool.release(leaf);
      }
    }
    return -1;
  }

  private compactIfFragmented(ctx: PageModifyContext, handle: BufferHandle, result: VacuumResult): void {
    if (pageGetDeadBytes(handle.page) < VACUUM_COMPACT_MIN_DEAD_BYTES) return;
    beginPageChange(this.tree.pool, ctx, handle);
    pageRepairFragmentation(handle.page);
    result.pagesCompacted++;
  }

  /**
   * Appends `right`'s items to `left` (its left sibling under `parent`, where `right` is item
   * `rightIndex`), takes over its right link, removes it from the parent and frees it. For
   * internal pages `separator` (the parent's key for `right`) becomes the key of right's first
   * child.
   */
  private mergeInto(
    ctx: PageModifyContext,
    left: BufferHandle,
    right: BufferHandle,
    parent: BufferHandle,
    rightIndex: number,
    separator: Buffer | null,
    result: VacuumResult,
  ): void {
    const pool = this.tree.pool;
    beginPageChange(pool, ctx, left);
    beginPageChange(pool, ctx, parent);
    const src = right.page;
    const dst = left.page;
    const count = pageGetItemCount(src);
    let first = 0;
    if (separator !== null && count > 0) {
      const at = pageAddItem(dst, pageGetItemCount(dst), INTERNAL_HEADER_SIZE + separator.length);
      assert(at >= 0, 'merged page holds the separator');
      writeInternalTuple(dst, at, separator, internalChild(src, 0));
      first = 1;
    }
    for (let i = first; i < count; i++) {
      const offset = pageItemOffset(src, i);
      const length = pageItemLength(src, i);
      const at = pageAddItem(dst, pageGetItemCount(dst), length);
      assert(at >= 0, 'merged page holds every tuple');
      src.copy(dst, at, offset, offset + length);
    }
    btreeSetRightLink(dst, btreeRightLink(src));
    pageDeleteItem(parent.page, rightIndex);
    freePage(pool, ctx, right);
    result.pagesMerged++;
    result.pagesFreed++;
  }

  /** The smallest key past the level-1 page on the recorded path, or null when it is the last. */
  private upperBound(relNode: number, rootLevel: number): Buffer | null {
    for (let depth = rootLevel - 2; depth >= 0; depth--) {
      const handle = this.tree.readTreePage(relNode, this.pathBlocks[depth]!, rootLevel - depth);
      try {
        const next = this.pathIndexes[depth]! + 1;
        if (next < pageGetItemCount(handle.page)) return internalKeyCopy(handle.page, next);
      } finally {
        this.tree.pool.release(handle);
      }
    }
    return null;
  }

  /** Merges each internal page on the path with its right sibling when both fit in one. */
  private mergeAlongPath(relNode: number, ctx: PageModifyContext, rootLevel: number, result: VacuumResult): void {
    const pool = this.tree.pool;
    for (let depth = rootLevel - 1; depth >= 1; depth--) {
      const level = rootLevel - depth;
      const parent = this.tree.readTreePage(relNode, this.pathBlocks[depth - 1]!, level + 1);
      try {
        const index = this.pathIndexes[depth - 1]!;
        if (index + 1 >= pageGetItemCount(parent.page)) continue;
        const node = this.tree.readTreePage(relNode, internalChild(parent.page, index), level);
        try {
          const sibling = this.tree.readTreePage(relNode, internalChild(parent.page, index + 1), level);
          try {
            const separator = internalKeyCopy(parent.page, index + 1);
            const bytes =
              pageGetUsedSpace(node.page) + pageGetUsedSpace(sibling.page) + separator.length;
            if (bytes > pageGetCapacity(node.page) * MERGE_FILL_MAX) continue;
            this.mergeInto(ctx, node, sibling, parent, index + 1, separator, result);
          } finally {
            pool.release(sibling);
          }
        } finally {
          pool.release(node);
        }
      } finally {
        pool.release(parent);
      }
    }
  }

  /** While the root is an internal page with one child, the child becomes the root. */
  private collapseRoot(relNode: number, ctx: PageModifyContext, result: VacuumResult): void {
    const pool = this.tree.pool;
    for (;;) {
      const { root, rootLevel } = this.readRoot(relNode);
      if (rootLevel === 0) return;
      const handle = this.tree.readTreePage(relNode, root, rootLevel);
      try {
        if (pageGetItemCount(handle.page) !== 1) return;
        const child = internalChild(handle.page, 0);
        const meta = this.tree.readMeta(relNode);
        try {
          beginPageChange(pool, ctx, meta);
          metaSetRoot(meta.page, child, rootLevel - 1);
        } finally {
          pool.release(meta);
        }
        freePage(pool, ctx, handle);
        result.pagesFreed++;
      } finally {
        pool.release(handle);
      }
    }
  }
}
