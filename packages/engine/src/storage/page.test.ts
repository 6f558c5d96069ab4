import { describe, expect, it } from 'vitest';
import { BLCKSZ } from '../constants.js';
import {
  PAGE_HEADER_SIZE,
  PageType,
  pageAddItem,
  pageDeleteItem,
  pageDeleteItems,
  pageGetContiguousFree,
  pageGetDeadBytes,
  pageGetFreeSpace,
  pageGetItemCount,
  pageGetLower,
  pageGetUpper,
  pageGetUsedSpace,
  pageInit,
  pageItemLength,
  pageItemOffset,
  pageRepairFragmentation,
  pageResizeItem,
  pageSetChecksum,
  pageVerifyChecksum,
} from './page.js';

/** Deterministic pseudo-random numbers (mulberry32), so failures reproduce. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function items(page: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < pageGetItemCount(page); i++) {
    const offset = pageItemOffset(page, i);
    out.push(Buffer.from(page.subarray(offset, offset + pageItemLength(page, i))));
  }
  return out;
}

const ZERO = Buffer.alloc(BLCKSZ);

function holeIsZero(page: Buffer): boolean {
  const lower = pageGetLower(page);
  const upper = pageGetUpper(page);
  return page.compare(ZERO, 0, upper - lower, lower, upper) === 0;
}

function sameItems(page: Buffer, reference: Buffer[]): boolean {
  if (pageGetItemCount(page) !== reference.length) return false;
  for (let i = 0; i < reference.length; i++) {
    const offset = pageItemOffset(page, i);
    const t = reference[i]!;
    if (pageItemLength(page, i) !== t.length || page.compare(t, 0, t.length, offset, offset + t.length) !== 0) return false;
  }
  return true;
}

function tuple(size: number, fill: number): Buffer {
  return Buffer.alloc(size, fill);
}

describe('slotted page', () => {
  it('adds items at any index, keeping line pointer order', () => {
    const page = Buffer.alloc(BLCKSZ);
    pageInit(page, PageType.leaf, 8);
    expect(pageGetLower(page)).toBe(PAGE_HEADER_SIZE);
    expect(pageGetUpper(page)).toBe(BLCKSZ - 8);
    for (const [index, fill] of [[0, 1], [1, 3], [1, 2], [0, 0]] as const) {
      const at = pageAddItem(page, index, 10);
      tuple(10, fill).copy(page, at);
    }
    expect(items(page).map((t) => t[0])).toEqual([0, 1, 2, 3]);
    expect(pageGetContiguousFree(page)).toBe(BLCKSZ - 8 - PAGE_HEADER_SIZE - 4 * 14);
    expect(holeIsZero(page)).toBe(true);
  });

  it('refuses an item that cannot fit and leaves the page unchanged', () => {
    const page = Buffer.alloc(BLCKSZ);
    pageInit(page, PageType.leaf, 8);
    while (pageAddItem(page, pageGetItemCount(page), 1000) >= 0);
    const before = Buffer.from(page);
    expect(pageAddItem(page, 0, 1000)).toBe(-1);
    expect(page.equals(before)).toBe(true);
  });

  it('deletes, resizes and compacts, keeping the hole zero and the accounting right', () => {
    const random = rng(7);
    const page = Buffer.alloc(BLCKSZ);
    pageInit(page, PageType.leaf, 8);
    const reference: Buffer[] = [];
    for (let step = 0; step < 5000; step++) {
      const r = random();
      if (r < 0.45 || reference.length === 0) {
        const size = 1 + Math.floor(random() * 300);
        const index = Math.floor(random() * (reference.length + 1));
        const t = tuple(size, 1 + Math.floor(random() * 255));
        const at = pageAddItem(page, index, size);
        if (at >= 0) {
          t.copy(page, at);
          reference.splice(index, 0, t);
        } else {
          expect(pageGetFreeSpace(page)).toBeLessThan(size + 4);
        }
      } else if (r < 0.75) {
        const index = Math.floor(random() * reference.length);
        pageDeleteItem(page, index);
        reference.splice(index, 1);
      } else if (r < 0.8) {
        const from = Math.floor(random() * reference.length);
        const to = from + Math.floor(random() * (reference.length - from + 1));
        pageDeleteItems(page, from, to);
        reference.splice(from, to - from);
      } else if (r < 0.97) {
        const index = Math.floor(random() * reference.length);
        const size = 1 + Math.floor(random() * 300);
        const t = tuple(size, 1 + Math.floor(random() * 255));
        const at = pageResizeItem(page, index, size);
        if (at >= 0) {
          t.copy(page, at);
          reference[index] = t;
        }
      } else {
        pageRepairFragmentation(page);
        expect(pageGetDeadBytes(page)).toBe(0);
      }
      if (!sameItems(page, reference)) expect(items(page)).toEqual(reference);
      if (!holeIsZero(page)) expect.fail(`hole not zero after step ${step}`);
      const used = reference.reduce((sum, t) => sum + t.length + 4, 0);
      if (pageGetUsedSpace(page) !== used) expect(pageGetUsedSpace(page)).toBe(used);
      if (pageGetFreeSpace(page) !== BLCKSZ - 8 - PAGE_HEADER_SIZE - used) {
        expect(pageGetFreeSpace(page)).toBe(BLCKSZ - 8 - PAGE_HEADER_SIZE - used);
      }
    }
  });

  it('compaction is a function of the page alone', () => {
    const a = Buffer.alloc(BLCKSZ);
    pageInit(a, PageType.leaf, 8);
    for (let i = 0; i < 20; i++) tuple(50 + i, i + 1).copy(a, pageAddItem(a, i, 50 + i));
    for (let i = 0; i < 10; i++) pageDeleteItem(a, i);
    const b = Buffer.from(a);
    pageRepairFragmentation(a);
    pageRepairFragmentation(b);
    expect(a.equals(b)).toBe(true);
    expect(pageGetUpper(a)).toBe(BLCKSZ - 8 - items(a).reduce((s, t) => s + t.length, 0));
  });
});

describe('page checksum', () => {
  function samplePage(): Buffer {
    const page = Buffer.alloc(BLCKSZ);
    pageInit(page, PageType.leaf, 8);
    for (let i = 0; i < 10; i++) tuple(100, i + 1).copy(page, pageAddItem(page, i, 100));
    page.writeUInt32LE(0x1234, 0);
    return page;
  }

  it('verifies a page written at its block', () => {
    const page = samplePage();
    pageSetChecksum(page, 42);
    expect(pageVerifyChecksum(page, 42)).toBe(true);
  });

  it('detects any flipped bit', () => {
    const page = samplePage();
    pageSetChecksum(page, 42);
    for (const bit of [0, 8 * 9, 8 * 100 + 3, 8 * (BLCKSZ - 200) + 7, 8 * BLCKSZ - 1]) {
      const copy = Buffer.from(page);
      copy[bit >>> 3]! ^= 1 << (bit & 7);
      expect(pageVerifyChecksum(copy, 42)).toBe(false);
    }
  });

  it('detects a page read from the wrong block', () => {
    const page = samplePage();
    pageSetChecksum(page, 42);
    expect(pageVerifyChecksum(page, 43)).toBe(false);
    expect(pageVerifyChecksum(page, 0)).toBe(false);
  });

  it('accepts an all-zero page and refuses a zero header over non-zero bytes', () => {
    const page = Buffer.alloc(BLCKSZ);
    expect(pageVerifyChecksum(page, 5)).toBe(true);
    pageSetChecksum(page, 5);
    expect(page.every((b) => b === 0)).toBe(true);
    page[4000] = 1;
    expect(pageVerifyChecksum(page, 5)).toBe(false);
  });
});
