/**
 * Slotted pages (PostgreSQL's bufpage.c / bufpage.h).
 *
 * Every relation page is BLCKSZ bytes:
 *
 *   0   u64  page LSN           (owned by the WAL layer; see contracts.ts PageHeader)
 *   8   u32  checksum           (only meaningful on disk; always zero in the buffer pool)
 *   12  u16  pd_lower           end of the line pointer array
 *   14  u16  pd_upper           start of tuple space
 *   16  u16  pd_special         start of the special space (type-specific trailer)
 *   18  u8   page type          PageType
 *   19  u8   flags              reserved, zero
 *   20  u16  dead bytes         tuple-space bytes no line pointer refers to (fragmentation)
 *   22  u8   layout version     PAGE_LAYOUT_VERSION
 *   23  u8   reserved, zero
 *   24       line pointers: {offset u16, length u16} each, in key order
 *   ...      free hole [pd_lower, pd_upper), ALWAYS all zero
 *   ...      tuples
 *   special  special space up to BLCKSZ
 *
 * Invariant: the free hole [pd_lower, pd_upper) is all zero bytes. The WAL layer omits the hole
 * from full-page images and restores it as zeros, so keeping it zero here is what makes a
 * replayed page byte-identical to the page it was logged from.
 *
 * All functions here are pure byte manipulation on one page: no I/O, no allocation on the paths
 * used per operation (compaction uses one module-private scratch page).
 */
import { BLCKSZ } from '../constants.js';
import { crc32c } from '../crc32c.js';
import { PageHeader } from './contracts.js';

/** Version of the layout described above; a page with another version is refused as corrupt. */
export const PAGE_LAYOUT_VERSION = 1;

/** What a page holds. Zero is an all-zero (new, never initialized) page. */
export const PageType = {
  uninitialized: 0,
  meta: 1,
  leaf: 2,
  internal: 3,
  overflow: 4,
  free: 5,
} as const;
export type PageTypeValue = (typeof PageType)[keyof typeof PageType];

export const PAGE_HEADER_SIZE = PageHeader.size;
/** Size of one line pointer (PostgreSQL's ItemIdData, here offset + length as two u16). */
export const ITEM_ID_SIZE = 4;

const LOWER = PageHeader.lowerOffset;
const UPPER = PageHeader.upperOffset;
const CHECKSUM = PageHeader.checksumOffset;
const SPECIAL = 16;
const TYPE = 18;
const DEAD = 20;
const VERSION = 22;

const ZERO_PAGE = Buffer.alloc(BLCKSZ);
/** Scratch for pageRepairFragmentation; sync code only, so one per module is enough. */
const compactScratch = Buffer.alloc(BLCKSZ);

function u16(page: Buffer, offset: number): number {
  return page[offset]! | (page[offset + 1]! << 8);
}

function setU16(page: Buffer, offset: number, value: number): void {
  page[offset] = value & 0xff;
  page[offset + 1] = value >>> 8;
}

// ---------------------------------------------------------------------------------------------
// Header fields

export function pageGetLower(page: Buffer): number {
  return u16(page, LOWER);
}
export function pageGetUpper(page: Buffer): number {
  return u16(page, UPPER);
}
export function pageGetSpecial(page: Buffer): number {
  return u16(page, SPECIAL);
}
export function pageGetType(page: Buffer): number {
  return page[TYPE]!;
}
export function pageGetDeadBytes(page: Buffer): number {
  return u16(page, DEAD);
}
export function pageSetLower(page: Buffer, lower: number): void {
  setU16(page, LOWER, lower);
}
export function pageSetUpper(page: Buffer, upper: number): void {
  setU16(page, UPPER, upper);
}

/** PageIsNew: a page never initialized (all zero when valid). */
export function pageIsNew(page: Buffer): boolean {
  return u16(page, UPPER) === 0;
}

/**
 * PageInit: zeroes everything but the page LSN (the WAL layer owns it) and sets up an empty page
 * of `type` with `specialSize` bytes of special space at the end.
 */
export function pageInit(page: Buffer, type: PageTypeValue, specialSize: number): void {
  page.fill(0, CHECKSUM, BLCKSZ);
  const special = BLCKSZ - specialSize;
  setU16(page, LOWER, PAGE_HEADER_SIZE);
  setU16(page, UPPER, special);
  setU16(page, SPECIAL, special);
  page[TYPE] = type;
  page[VERSION] = PAGE_LAYOUT_VERSION;
}

/**
 * For pages without line pointers (meta, overflow, free): the content ends at `contentEnd`, and
 * [contentEnd, BLCKSZ) is the (zero) hole. Call after writing the content.
 */
export function pageSetContentEnd(page: Buffer, contentEnd: number): void {
  setU16(page, LOWER, contentEnd);
}

// ---------------------------------------------------------------------------------------------
// Checksums (PostgreSQL's pg_checksum_page, with CRC-32C instead of FNV)

function computeChecksum(page: Buffer, blockNo: number): number {
  const saved = page.readUInt32LE(CHECKSUM);
  page.writeUInt32LE(0, CHECKSUM);
  const crc = crc32c(page, blockNo >>> 0);
  page.writeUInt32LE(saved, CHECKSUM);
  return crc;
}

/** Sets the checksum field for writing the page at `blockNo`. All-zero pages stay all zero. */
export function pageSetChecksum(page: Buffer, blockNo: number): void {
  if (pageIsNew(page)) return;
  page.writeUInt32LE(computeChecksum(page, blockNo), CHECKSUM);
}

/**
 * PageIsVerified: true when the page read from `blockNo` is intact: either all zero (a new page)
 * or with a matching checksum (seeded with the block number, so a page written at the wrong
 * place fails) and a sane header.
 */
export function pageVerifyChecksum(page: Buffer, blockNo: number): boolean {
  if (pageIsNew(page)) return page.equals(ZERO_PAGE);
  if (page.readUInt32LE(CHECKSUM) !== computeChecksum(page, blockNo)) return false;
  return pageHeaderIsSane(page);
}

/** The header's own consistency: offsets in order, known type and layout version. */
export function pageHeaderIsSane(page: Buffer): boolean {
  const lower = u16(page, LOWER);
  const upper = u16(page, UPPER);
  const special = u16(page, SPECIAL);
  const type = page[TYPE]!;
  return (
    page[VERSION] === PAGE_LAYOUT_VERSION &&
    type >= PageType.meta &&
    type <= PageType.free &&
    lower >= PAGE_HEADER_SIZE &&
    lower <= upper &&
    upper <= special &&
    special <= BLCKSZ
  );
}

/** Clears the checksum field: the in-memory copy of a page always carries zero there. */
export function pageClearChecksum(page: Buffer): void {
  page.writeUInt32LE(0, CHECKSUM);
}

// ---------------------------------------------------------------------------------------------
// Line pointers and tuples

export function pageGetItemCount(page: Buffer): number {
  return (u16(page, LOWER) - PAGE_HEADER_SIZE) >>> 2;
}

/** Byte offset of item `index`'s tuple. */
export function pageItemOffset(page: Buffer, index: number): number {
  return u16(page, PAGE_HEADER_SIZE + index * ITEM_ID_SIZE);
}

/** Length in bytes of item `index`'s tuple. */
export function pageItemLength(page: Buffer, index: number): number {
  return u16(page, PAGE_HEADER_SIZE + index * ITEM_ID_SIZE + 2);
}

function setItem(page: Buffer, index: number, offset: number, length: number): void {
  const at = PAGE_HEADER_SIZE + index * ITEM_ID_SIZE;
  setU16(page, at, offset);
  setU16(page, at + 2, length);
}

/** Contiguous free bytes (the hole). */
export function pageGetContiguousFree(page: Buffer): number {
  return u16(page, UPPER) - u16(page, LOWER);
}

/** Free bytes after compaction: the hole plus dead tuple bytes. */
export function pageGetFreeSpace(page: Buffer): number {
  return u16(page, UPPER) - u16(page, LOWER) + u16(page, DEAD);
}

/** Bytes in use: line pointers plus live tuples. */
export function pageGetUsedSpace(page: Buffer): number {
  return u16(page, LOWER) - PAGE_HEADER_SIZE + (u16(page, SPECIAL) - u16(page, UPPER)) - u16(page, DEAD);
}

/** Bytes a page of this layout can hold in line pointers and tuples. */
export function pageGetCapacity(page: Buffer): number {
  return u16(page, SPECIAL) - PAGE_HEADER_SIZE;
}

/**
 * PageAddItem: makes room for a tuple of `size` bytes as item `index` (later items shift up by
 * one), compacting the page first when the hole is too small but the dead space makes up for it.
 * Returns the tuple's offset (the caller writes exactly `size` bytes there; they are zero), or
 * -1 when the page cannot hold it, in which case the page is unchanged.
 */
export function pageAddItem(page: Buffer, index: number, size: number): number {
  let lower = u16(page, LOWER);
  let upper = u16(page, UPPER);
  const count = (lower - PAGE_HEADER_SIZE) >>> 2;
  if (index < 0 || index > count || size <= 0) {
    throw new RangeError(`pageAddItem: index ${index} of ${count}, size ${size}`);
  }
  const needed = size + ITEM_ID_SIZE;
  if (upper - lower < needed) {
    if (upper - lower + u16(page, DEAD) < needed) return -1;
    pageRepairFragmentation(page);
    upper = u16(page, UPPER);
  }
  const itemAt = PAGE_HEADER_SIZE + index * ITEM_ID_SIZE;
  if (index < count) page.copyWithin(itemAt + ITEM_ID_SIZE, itemAt, lower);
  const offset = upper - size;
  setItem(page, index, offset, size);
  lower += ITEM_ID_SIZE;
  setU16(page, LOWER, lower);
  setU16(page, UPPER, offset);
  return offset;
}

/** Marks `length` tuple bytes at `offset` free: given back to the hole if at pd_upper, else dead. */
function releaseTupleSpace(page: Buffer, offset: number, length: number): void {
  if (length === 0) return;
  const upper = u16(page, UPPER);
  if (offset === upper) {
    page.fill(0, offset, offset + length);
    setU16(page, UPPER, upper + length);
  } else {
    setU16(page, DEAD, u16(page, DEAD) + length);
  }
}

/** Resets a page whose last item went away: tuple space zeroed, no dead bytes. */
function resetEmptyPage(page: Buffer): void {
  const special = u16(page, SPECIAL);
  page.fill(0, PAGE_HEADER_SIZE, special);
  setU16(page, LOWER, PAGE_HEADER_SIZE);
  setU16(page, UPPER, special);
  setU16(page, DEAD, 0);
}

/** PageIndexTupleDelete, without moving tuples: the tuple's bytes become dead space. */
export function pageDeleteItem(page: Buffer, index: number): void {
  pageDeleteItems(page, index, index + 1);
}

/** Deletes items [from, to) (to exclusive), shifting later line pointers down. */
export function pageDeleteItems(page: Buffer, from: number, to: number): void {
  const lower = u16(page, LOWER);
  const count = (lower - PAGE_HEADER_SIZE) >>> 2;
  if (from < 0 || to > count || from > to) {
    throw new RangeError(`pageDeleteItems: [${from}, ${to}) of ${count}`);
  }
  if (from === to) return;
  if (to - from === count) {
    resetEmptyPage(page);
    return;
  }
  for (let i = from; i < to; i++) releaseTupleSpace(page, pageItemOffset(page, i), pageItemLength(page, i));
  const fromAt = PAGE_HEADER_SIZE + from * ITEM_ID_SIZE;
  const toAt = PAGE_HEADER_SIZE + to * ITEM_ID_SIZE;
  page.copyWithin(fromAt, toAt, lower);
  const newLower = lower - (toAt - fromAt);
  page.fill(0, newLower, lower);
  setU16(page, LOWER, newLower);
}

/**
 * Gives item `index` a tuple of `newSize` bytes in place of its current one, keeping its
 * position. Returns the new tuple's offset, or -1 (page unchanged) when it cannot fit. When the
 * tuple shrinks or keeps its size it stays where it was, so bytes the caller does not rewrite
 * (a leaf tuple's key, say) keep their value; when it grows, the caller rewrites all of it.
 */
export function pageResizeItem(page: Buffer, index: number, newSize: number): number {
  const oldOffset = pageItemOffset(page, index);
  const oldSize = pageItemLength(page, index);
  if (newSize <= oldSize) {
    if (newSize < oldSize) {
      // The tail of the old tuple becomes dead space (it is not at pd_upper).
      setU16(page, DEAD, u16(page, DEAD) + (oldSize - newSize));
      setItem(page, index, oldOffset, newSize);
    }
    return oldOffset;
  }
  const lower = u16(page, LOWER);
  if (u16(page, UPPER) - lower + u16(page, DEAD) + oldSize < newSize) return -1;
  setItem(page, index, 0, 0);
  releaseTupleSpace(page, oldOffset, oldSize);
  if (u16(page, UPPER) - lower < newSize) pageRepairFragmentation(page);
  const offset = u16(page, UPPER) - newSize;
  setU16(page, UPPER, offset);
  page.fill(0, offset, offset + newSize);
  setItem(page, index, offset, newSize);
  return offset;
}

/**
 * PageRepairFragmentation: moves the live tuples together at the end of the tuple space (item 0
 * highest), so that all free space is one zero hole. Deterministic: a function of the page only.
 */
export function pageRepairFragmentation(page: Buffer): void {
  const lower = u16(page, LOWER);
  const special = u16(page, SPECIAL);
  const count = (lower - PAGE_HEADER_SIZE) >>> 2;
  const upper = u16(page, UPPER);
  page.copy(compactScratch, upper, upper, special);
  let cursor = special;
  for (let i = 0; i < count; i++) {
    const offset = pageItemOffset(page, i);
    const length = pageItemLength(page, i);
    cursor -= length;
    if (length > 0) compactScratch.copy(page, cursor, offset, offset + length);
    setItem(page, i, cursor, length);
  }
  page.fill(0, lower, cursor);
  setU16(page, UPPER, cursor);
  setU16(page, DEAD, 0);
}
