/**
 * Overflow pages for values too large to sit in a leaf (PostgreSQL's TOAST, kept in the same
 * relation). A large value is cut into chunks of OVERFLOW_CHUNK_BYTES, one per page, chained by
 * next-block links; the leaf tuple keeps the first block and the total length.
 *
 * Overflow page, after the page header:
 *   24  u32  next block of the chain, 0 at the end
 *   28  u32  chunk length
 *   32       chunk bytes; pd_lower = 32 + chunk length, the rest of the page is the zero hole
 *
 * A chain belongs to exactly one leaf tuple. It is written before the tuple that points to it and
 * freed (to the relation's free list) when that tuple is replaced or deleted, in the same
 * transaction.
 */
import { BLCKSZ } from '../constants.js';
import type { BufferHandle, PageModifyContext } from './contracts.js';
import type { BufferPool } from './buffer-pool.js';
import { PAGE_HEADER_SIZE, PageType, pageInit, pageSetContentEnd } from './page.js';
import { allocPage, corruptPage, expectPageType, freePage } from './relation-meta.js';

const NEXT_AT = PAGE_HEADER_SIZE;
const CHUNK_LENGTH_AT = PAGE_HEADER_SIZE + 4;
const CHUNK_AT = PAGE_HEADER_SIZE + 8;

/** Value bytes per overflow page. */
export const OVERFLOW_CHUNK_BYTES = BLCKSZ - CHUNK_AT;

/** Pages a value of `length` bytes takes. */
export function overflowPageCount(length: number): number {
  return Math.ceil(length / OVERFLOW_CHUNK_BYTES);
}

/** Writes `value` into a new chain of overflow pages; returns its first block. */
export function writeOverflow(pool: BufferPool, ctx: PageModifyContext, relNode: number, value: Buffer): number {
  let first = 0;
  let previous: BufferHandle | null = null;
  try {
    for (let at = 0; at < value.length; at += OVERFLOW_CHUNK_BYTES) {
      const handle = allocPage(pool, ctx, relNode);
      const page = handle.page;
      const length = Math.min(OVERFLOW_CHUNK_BYTES, value.length - at);
      pageInit(page, PageType.overflow, 0);
      page.writeUInt32LE(length, CHUNK_LENGTH_AT);
      value.copy(page, CHUNK_AT, at, at + length);
      pageSetContentEnd(page, CHUNK_AT + length);
      if (previous === null) {
        first = handle.blockNo;
      } else {
        // Registered when allocated, so it can still be changed.
        previous.page.writeUInt32LE(handle.blockNo, NEXT_AT);
        pool.release(previous);
      }
      previous = handle;
    }
  } finally {
    if (previous !== null) pool.release(previous);
  }
  return first;
}

/** Reads a chain back into a fresh Buffer of `length` bytes, checking it as it goes. */
export function readOverflow(pool: BufferPool, relNode: number, first: number, length: number): Buffer {
  const value = Buffer.allocUnsafe(length);
  let at = 0;
  let blockNo = first;
  const pages = overflowPageCount(length);
  for (let i = 0; i < pages; i++) {
    if (blockNo === 0) throw corruptPage(relNode, first, `Overflow chain ends after ${at} of ${length} bytes.`);
    const handle = pool.readBuffer(relNode, blockNo);
    try {
      expectPageType(handle, PageType.overflow);
      const page = handle.page;
      const chunk = page.readUInt32LE(CHUNK_LENGTH_AT);
      if (chunk === 0 || chunk > OVERFLOW_CHUNK_BYTES || at + chunk > length) {
        throw corruptPage(relNode, blockNo, `Overflow chunk of ${chunk} bytes at ${at} of a ${length}-byte value.`);
      }
      page.copy(value, at, CHUNK_AT, CHUNK_AT + chunk);
      at += chunk;
      blockNo = page.readUInt32LE(NEXT_AT);
    } finally {
      pool.release(handle);
    }
  }
  if (at !== length || blockNo !== 0) {
    throw corruptPage(relNode, first, `Overflow chain holds ${at} bytes where the tuple says ${length}.`);
  }
  return value;
}

/** Puts every page of a chain on the free list. */
export function freeOverflow(pool: BufferPool, ctx: PageModifyContext, relNode: number, first: number, length: number): void {
  let blockNo = first;
  const pages = overflowPageCount(length);
  for (let i = 0; i < pages && blockNo !== 0; i++) {
    const handle = pool.readBuffer(relNode, blockNo);
    try {
      expectPageType(handle, PageType.overflow);
      blockNo = handle.page.readUInt32LE(NEXT_AT);
      freePage(pool, ctx, handle);
    } finally {
      pool.release(handle);
    }
  }
}
