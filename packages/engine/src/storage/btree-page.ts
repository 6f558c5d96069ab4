/**
 * Layout of B+tree pages (after PostgreSQL's nbtree.h): leaf and internal pages are slotted
 * pages (page.ts) with their line pointers in key order and an 8-byte special space.
 *
 * Special space (last 8 bytes of the page):
 *   BLCKSZ-8  u32  right sibling on the same level, 0 for the rightmost page
 *   BLCKSZ-4  u16  level: 0 for leaves, parent = child + 1
 *   BLCKSZ-2  u16  reserved, zero
 *
 * Leaf tuple:
 *   0   u64  revision (LSN, LE) at a FIXED offset: PENDING_REVISION until the WAL layer stamps
 *            the commit LSN (pendingRevisionOffsets)
 *   8   u16  key length
 *   10  u8   flags: LEAF_FLAG_EXTERNAL when the value lives in overflow pages
 *   11  u8   reserved, zero
 *   12  u32  value length (the whole value, also when external)
 *   16       key bytes, then the value bytes, or for an external value the u32 first overflow
 *            block
 *
 * Internal tuple:
 *   0   u32  child block
 *   4   u16  key length
 *   6   u16  reserved, zero
 *   8        key bytes
 * Item 0 of an internal page has an empty key standing for minus infinity; child i holds the keys
 * k with key(i) <= k < key(i+1).
 */
import { BLCKSZ, MAX_KEY_BYTES, PENDING_REVISION } from '../constants.js';
import {
  PageType,
  pageGetItemCount,
  pageGetType,
  pageItemOffset,
} from './page.js';

export const BTREE_SPECIAL_SIZE = 8;
const RIGHT_LINK_AT = BLCKSZ - BTREE_SPECIAL_SIZE;
const LEVEL_AT = BLCKSZ - BTREE_SPECIAL_SIZE + 4;

export const LEAF_REVISION_AT = 0;
export const LEAF_KEY_LENGTH_AT = 8;
export const LEAF_FLAGS_AT = 10;
export const LEAF_VALUE_LENGTH_AT = 12;
export const LEAF_HEADER_SIZE = 16;
export const LEAF_FLAG_EXTERNAL = 1;

export const INTERNAL_CHILD_AT = 0;
export const INTERNAL_KEY_LENGTH_AT = 4;
export const INTERNAL_HEADER_SIZE = 8;

/**
 * Largest leaf tuple. A value is stored inline when its tuple fits, else in overflow pages. 2000
 * bytes keeps at least four tuples on a leaf (as PostgreSQL's TOAST_TUPLE_THRESHOLD does), so a
 * split always leaves both halves with room for the tuple being inserted.
 */
export const LEAF_TUPLE_MAX_BYTES = 2000;

/** Largest internal tuple: a full-length key (leaf separators are usually much shorter). */
export const INTERNAL_TUPLE_MAX_BYTES = INTERNAL_HEADER_SIZE + MAX_KEY_BYTES;

/** Height limit of the descent stack: with at least 7 children per internal page, unreachable. */
export const MAX_TREE_HEIGHT = 32;

/** The two halves of PENDING_REVISION as written by writeLsn. */
const PENDING_LOW = PENDING_REVISION % 0x1_0000_0000;
const PENDING_HIGH = Math.floor(PENDING_REVISION / 0x1_0000_0000);
const PENDING_BYTE_6 = (PENDING_HIGH >>> 16) & 0xff;

export function u16(page: Buffer, offset: number): number {
  return page[offset]! | (page[offset + 1]! << 8);
}

export function btreeRightLink(page: Buffer): number {
  return page.readUInt32LE(RIGHT_LINK_AT);
}
export function btreeSetRightLink(page: Buffer, blockNo: number): void {
  page.writeUInt32LE(blockNo, RIGHT_LINK_AT);
}
export function btreeLevel(page: Buffer): number {
  return u16(page, LEVEL_AT);
}
export function btreeSetLevel(page: Buffer, level: number): void {
  page.writeUInt16LE(level, LEVEL_AT);
}

export function leafTupleSize(keyLength: number, valueLength: number, external: boolean): number {
  return LEAF_HEADER_SIZE + keyLength + (external ? 4 : valueLength);
}

/** Whether a value of this size goes to overflow pages with this key. */
export function leafValueIsExternal(keyLength: number, valueLength: number): boolean {
  return LEAF_HEADER_SIZE + keyLength + valueLength > LEAF_TUPLE_MAX_BYTES;
}

/**
 * Writes a leaf tuple at `offset` with revision PENDING_REVISION. For an external value,
 * `overflowBlock` is the first block of its chain and `value` only gives the length.
 */
export function writeLeafTuple(
  dst: Buffer,
  offset: number,
  key: Buffer,
  value: Buffer,
  external: boolean,
  overflowBlock: number,
): number {
  dst.writeUInt32LE(PENDING_LOW, offset);
  dst.writeUInt32LE(PENDING_HIGH, offset + 4);
  dst.writeUInt16LE(key.length, offset + LEAF_KEY_LENGTH_AT);
  dst[offset + LEAF_FLAGS_AT] = external ? LEAF_FLAG_EXTERNAL : 0;
  dst[offset + LEAF_FLAGS_AT + 1] = 0;
  dst.writeUInt32LE(value.length, offset + LEAF_VALUE_LENGTH_AT);
  const keyAt = offset + LEAF_HEADER_SIZE;
  key.copy(dst, keyAt);
  if (external) {
    dst.writeUInt32LE(overflowBlock, keyAt + key.length);
    return LEAF_HEADER_SIZE + key.length + 4;
  }
  value.copy(dst, keyAt + key.length);
  return LEAF_HEADER_SIZE + key.length + value.length;
}

/** Writes an internal tuple; an empty key for item 0. Returns its size. */
export function writeInternalTuple(dst: Buffer, offset: number, key: Buffer | null, child: number): number {
  const keyLength = key === null ? 0 : key.length;
  dst.writeUInt32LE(child, offset + INTERNAL_CHILD_AT);
  dst.writeUInt16LE(keyLength, offset + INTERNAL_KEY_LENGTH_AT);
  dst.writeUInt16LE(0, offset + INTERNAL_KEY_LENGTH_AT + 2);
  if (key !== null) key.copy(dst, offset + INTERNAL_HEADER_SIZE);
  return INTERNAL_HEADER_SIZE + keyLength;
}

export function internalChild(page: Buffer, index: number): number {
  return page.readUInt32LE(pageItemOffset(page, index) + INTERNAL_CHILD_AT);
}

/** Offset of the key of the tuple at `tupleOffset`, for a leaf or an internal page. */
export function tupleKeyStart(isLeaf: boolean, tupleOffset: number): number {
  return tupleOffset + (isLeaf ? LEAF_HEADER_SIZE : INTERNAL_HEADER_SIZE);
}

export function tupleKeyLength(src: Buffer, isLeaf: boolean, tupleOffset: number): number {
  return u16(src, tupleOffset + (isLeaf ? LEAF_KEY_LENGTH_AT : INTERNAL_KEY_LENGTH_AT));
}

/**
 * Keys up to this long are compared with a loop in JavaScript: for short keys that is about four
 * times faster than Buffer.compare, whose argument checks and native call dominate. Longer ones
 * go to Buffer.compare (memcmp).
 */
const INLINE_COMPARE_MAX_BYTES = 48;

/**
 * Sign of `key` - page[start, end), bytewise (memcmp order, shorter first on a common prefix),
 * compared in place.
 */
export function compareKeyAt(key: Buffer, page: Buffer, start: number, end: number): number {
  const keyLength = key.length;
  const length = end - start;
  const common = keyLength < length ? keyLength : length;
  if (common > INLINE_COMPARE_MAX_BYTES) return key.compare(page, start, end);
  for (let i = 0; i < common; i++) {
    const difference = key[i]! - page[start + i]!;
    if (difference !== 0) return difference;
  }
  return keyLength - length;
}

/**
 * Binary search of a leaf: the item index holding `key`, or -(insertion point) - 1 when absent.
 * Keys are compared in place.
 */
export function leafSearch(page: Buffer, key: Buffer): number {
  let low = 0;
  let high = pageGetItemCount(page) - 1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    const offset = pageItemOffset(page, middle);
    const keyAt = offset + LEAF_HEADER_SIZE;
    const c = compareKeyAt(key, page, keyAt, keyAt + u16(page, offset + LEAF_KEY_LENGTH_AT));
    if (c === 0) return middle;
    if (c < 0) high = middle - 1;
    else low = middle + 1;
  }
  return -low - 1;
}

/** Index of the first leaf item with a key >= `key`. */
export function leafLowerBound(page: Buffer, key: Buffer): number {
  const found = leafSearch(page, key);
  return found >= 0 ? found : -found - 1;
}

/** The child of an internal page whose key range holds `key`: last i >= 1 with key(i) <= key, else 0. */
export function internalSearch(page: Buffer, key: Buffer): number {
  let low = 1;
  let high = pageGetItemCount(page) - 1;
  let result = 0;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    const offset = pageItemOffset(page, middle);
    const keyAt = offset + INTERNAL_HEADER_SIZE;
    const c = compareKeyAt(key, page, keyAt, keyAt + u16(page, offset + INTERNAL_KEY_LENGTH_AT));
    if (c >= 0) {
      result = middle;
      low = middle + 1;
    } else {
      high = middle - 1;
    }
  }
  return result;
}

/** Copy of the key of internal item `index`. */
export function internalKeyCopy(page: Buffer, index: number): Buffer {
  const offset = pageItemOffset(page, index);
  const keyAt = offset + INTERNAL_HEADER_SIZE;
  return Buffer.from(page.subarray(keyAt, keyAt + u16(page, offset + INTERNAL_KEY_LENGTH_AT)));
}

/**
 * Byte offsets of the revision field of every leaf tuple still carrying PENDING_REVISION, found
 * by walking the line pointers (never by scanning raw bytes). [] for any other page type.
 */
export function pendingRevisionOffsets(page: Buffer): number[] {
  const offsets: number[] = [];
  if (pageGetType(page) !== PageType.leaf) return offsets;
  const count = pageGetItemCount(page);
  for (let i = 0; i < count; i++) {
    const at = pageItemOffset(page, i) + LEAF_REVISION_AT;
    // Byte 6 is 0x1f only in PENDING_REVISION or an LSN past 2^52: test it before the words.
    if (page[at + 6] === PENDING_BYTE_6 && page.readUInt32LE(at + 4) === PENDING_HIGH && page.readUInt32LE(at) === PENDING_LOW) {
      offsets.push(at);
    }
  }
  return offsets;
}

