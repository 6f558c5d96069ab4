/**
 * Block 0 of every relation: the meta page (after PostgreSQL's BTMetaPageData), and the
 * relation's free list of pages, and the one place pages of a relation are allocated and freed.
 *
 * Meta page, after the page header:
 *   24  u32  magic            META_MAGIC
 *   28  u32  version          META_VERSION
 *   32  u32  root             block of the B-tree root
 *   36  u32  root level       0 when the root is a leaf
 *   40  u32  free list head   first free page, 0 when none (block 0 is never free)
 *   44  u32  free pages       length of the free list
 *   48  u32  next relNode     catalog only: the relation number createTable hands out next
 *   52  u32  reserved, zero
 * The rest of the page is the zero hole (pd_lower = 56, pd_upper = BLCKSZ).
 *
 * Free page: page type `free`, u32 next free block at 24 (pd_lower = 28).
 *
 * Every change goes through the PageModifyContext: a page is registered before its first change
 * in a transaction and marked dirty.
 */
import { BLCKSZ } from '../constants.js';
import { ErrorCode, WalshipError } from '../errors.js';
import type { BufferHandle, PageModifyContext } from './contracts.js';
import type { BufferPool } from './buffer-pool.js';
import { PAGE_HEADER_SIZE, PageType, pageGetType, pageInit, pageSetContentEnd, type PageTypeValue } from './page.js';

export const META_BLOCK = 0;
/** 'WSBT' read as a little-endian u32. */
export const META_MAGIC = 0x54425357;
export const META_VERSION = 1;

const META_MAGIC_AT = PAGE_HEADER_SIZE;
const META_VERSION_AT = PAGE_HEADER_SIZE + 4;
const META_ROOT_AT = PAGE_HEADER_SIZE + 8;
const META_LEVEL_AT = PAGE_HEADER_SIZE + 12;
const META_FREE_HEAD_AT = PAGE_HEADER_SIZE + 16;
const META_FREE_COUNT_AT = PAGE_HEADER_SIZE + 20;
const META_NEXT_RELNODE_AT = PAGE_HEADER_SIZE + 24;
const META_END = PAGE_HEADER_SIZE + 32;

const FREE_NEXT_AT = PAGE_HEADER_SIZE;
const FREE_END = PAGE_HEADER_SIZE + 4;

/** Registers a page with the transaction and marks it dirty: call before changing it. */
export function beginPageChange(pool: BufferPool, ctx: PageModifyContext, handle: BufferHandle, isNew = false): void {
  ctx.registerBuffer(handle, isNew);
  pool.markDirty(handle);
}

export function corruptPage(relNode: number, blockNo: number, what: string): WalshipError {
  return new WalshipError(ErrorCode.dataCorrupted, `corrupt page in block ${blockNo} of relation base/${relNode}`, {
    detail: what,
    hint: 'The relation is damaged. Restore the node from a base backup or rebuild it from a standby.',
  });
}

/** Checks a page's type, throwing data_corrupted otherwise. */
export function expectPageType(handle: BufferHandle, type: PageTypeValue): void {
  const actual = pageGetType(handle.page);
  if (actual !== type) {
    throw corruptPage(handle.relNode, handle.blockNo, `Expected a page of type ${type}, found type ${actual}.`);
  }
}

export function metaInit(page: Buffer, root: number, nextRelNode: number): void {
  pageInit(page, PageType.meta, 0);
  page.writeUInt32LE(META_MAGIC, META_MAGIC_AT);
  page.writeUInt32LE(META_VERSION, META_VERSION_AT);
  page.writeUInt32LE(root, META_ROOT_AT);
  page.writeUInt32LE(0, META_LEVEL_AT);
  page.writeUInt32LE(nextRelNode, META_NEXT_RELNODE_AT);
  pageSetContentEnd(page, META_END);
}

/** Checks that a handle on block 0 holds a meta page of this version. */
export function checkMeta(handle: BufferHandle): void {
  const page = handle.page;
  if (
    pageGetType(page) !== PageType.meta ||
    page.readUInt32LE(META_MAGIC_AT) !== META_MAGIC ||
    page.readUInt32LE(META_VERSION_AT) !== META_VERSION
  ) {
    throw corruptPage(handle.relNode, handle.blockNo, 'Block 0 is not a relation meta page of this version.');
  }
}

export function metaRoot(page: Buffer): number {
  return page.readUInt32LE(META_ROOT_AT);
}
export function metaRootLevel(page: Buffer): number {
  return page.readUInt32LE(META_LEVEL_AT);
}
export function metaSetRoot(page: Buffer, root: number, level: number): void {
  page.writeUInt32LE(root, META_ROOT_AT);
  page.writeUInt32LE(level, META_LEVEL_AT);
}
export function metaFreeHead(page: Buffer): number {
  return page.readUInt32LE(META_FREE_HEAD_AT);
}
export function metaFreeCount(page: Buffer): number {
  return page.readUInt32LE(META_FREE_COUNT_AT);
}
export function metaNextRelNode(page: Buffer): number {
  return page.readUInt32LE(META_NEXT_RELNODE_AT);
}
export function metaSetNextRelNode(page: Buffer, relNode: number): void {
  page.writeUInt32LE(relNode, META_NEXT_RELNODE_AT);
}

/**
 * A page for the relation: the head of the free list if there is one, else a new block at the
 * end. Returned pinned, registered as new, zeroed but for its LSN, for the caller to pageInit.
 */
export function allocPage(pool: BufferPool, ctx: PageModifyContext, relNode: number): BufferHandle {
  const meta = pool.readBuffer(relNode, META_BLOCK);
  try {
    checkMeta(meta);
    const head = metaFreeHead(meta.page);
    if (head === 0) {
      const handle = pool.newBuffer(relNode);
      beginPageChange(pool, ctx, handle, true);
      return handle;
    }
    const handle = pool.readBuffer(relNode, head);
    try {
      expectPageType(handle, PageType.free);
    } catch (error) {
      pool.release(handle);
      throw error;
    }
    const next = handle.page.readUInt32LE(FREE_NEXT_AT);
    beginPageChange(pool, ctx, meta);
    meta.page.writeUInt32LE(next, META_FREE_HEAD_AT);
    meta.page.writeUInt32LE(metaFreeCount(meta.page) - 1, META_FREE_COUNT_AT);
    beginPageChange(pool, ctx, handle, true);
    handle.page.fill(0, 8, BLCKSZ);
    return handle;
  } finally {
    pool.release(meta);
  }
}

/**
 * Puts a page on the relation's free list. The caller keeps its own pin (and releases it); the
 * page's content is gone. The page is registered as new: it is rewritten whole and its old
 * content does not matter to redo, so the WAL layer can log the small free page as an image
 * instead of a delta that zeroes every old byte.
 */
export function freePage(pool: BufferPool, ctx: PageModifyContext, handle: BufferHandle): void {
  const meta = pool.readBuffer(handle.relNode, META_BLOCK);
  try {
    checkMeta(meta);
    beginPageChange(pool, ctx, handle, true);
    pageInit(handle.page, PageType.free, 0);
    handle.page.writeUInt32LE(metaFreeHead(meta.page), FREE_NEXT_AT);
    pageSetContentEnd(handle.page, FREE_END);
    beginPageChange(pool, ctx, meta);
    meta.page.writeUInt32LE(handle.blockNo, META_FREE_HEAD_AT);
    meta.page.writeUInt32LE(metaFreeCount(meta.page) + 1, META_FREE_COUNT_AT);
  } finally {
    pool.release(meta);
  }
}
