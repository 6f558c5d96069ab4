import * as fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CATALOG_RELNODE, DEFAULT_TABLE, FIRST_USER_RELNODE, MAX_KEY_BYTES, MAX_VALUE_BYTES, PENDING_REVISION } from '../constants.js';
import { ErrorCode, WalshipError } from '../errors.js';
import { readLsn, type Lsn } from '../lsn.js';
import type { Entry } from '../types.js';
import { BufferPool } from './buffer-pool.js';
import {
  LEAF_TUPLE_MAX_BYTES,
  btreeLevel,
  btreeRightLink,
  internalChild,
  pendingRevisionOffsets,
  tupleKeyLength,
  tupleKeyStart,
} from './btree-page.js';
import { PageType, pageGetItemCount, pageGetType, pageItemOffset } from './page.js';
import { metaRoot, metaRootLevel } from './relation-meta.js';
import { Smgr } from './smgr.js';
import { Store } from './store.js';
import { TestTransaction, makeTempDir, removeDir } from './test-support.js';

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

/**
 * The reference: a sorted array of keys as latin1 strings (whose code-unit order is the byte
 * order of the keys) and a map to value and revision.
 */
class ReferenceMap {
  readonly keys: string[] = [];
  readonly values = new Map<string, { value: Buffer; revision: number }>();

  lowerBound(key: string): number {
    let low = 0;
    let high = this.keys.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.keys[middle]! < key) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  put(key: Buffer, value: Buffer, revision: number): void {
    const k = key.toString('latin1');
    if (!this.values.has(k)) this.keys.splice(this.lowerBound(k), 0, k);
    this.values.set(k, { value, revision });
  }

  delete(key: Buffer): boolean {
    const k = key.toString('latin1');
    if (!this.values.delete(k)) return false;
    this.keys.splice(this.lowerBound(k), 1);
    return true;
  }

  deleteRange(start: Buffer, end: Buffer, limit?: number): number {
    const s = start.toString('latin1');
    const e = end.toString('latin1');
    if (s >= e) return 0;
    const from = this.lowerBound(s);
    let to = from;
    const max = limit !== undefined && limit > 0 ? limit : Infinity;
    while (to < this.keys.length && this.keys[to]! < e && to - from < max) to++;
    for (let i = from; i < to; i++) this.values.delete(this.keys[i]!);
    this.keys.splice(from, to - from);
    return to - from;
  }

  scan(options: { start?: Buffer; end?: Buffer; prefix?: Buffer; limit?: number }): { keys: string[]; more: boolean } {
    let start = options.start?.toString('latin1') ?? '';
    const end = options.end?.toString('latin1');
    const prefix = options.prefix?.toString('latin1') ?? '';
    if (prefix > start) start = prefix;
    const limit = options.limit !== undefined && options.limit > 0 ? options.limit : Infinity;
    const keys: string[] = [];
    for (let i = this.lowerBound(start); i < this.keys.length; i++) {
      const key = this.keys[i]!;
      if ((end !== undefined && key >= end) || !key.startsWith(prefix)) break;
      if (keys.length === limit) return { keys, more: true };
      keys.push(key);
    }
    return { keys, more: false };
  }
}

interface Harness {
  dir: string;
  smgr: Smgr;
  pool: BufferPool;
  store: Store;
  nextLsn: number;
  /** Runs `body` as one transaction and commits it with a new LSN; returns that LSN. */
  txn<T>(body: (ctx: TestTransaction) => T): { result: T; lsn: Lsn; ctx: TestTransaction };
}

function openHarness(dir: string, nBuffers: number, nextLsn = 1000): Harness {
  const smgr = new Smgr(dir);
  const pool = new BufferPool({ smgr, nBuffers, flushWal: () => {} });
  const store = new Store(pool);
  const harness: Harness = {
    dir,
    smgr,
    pool,
    store,
    nextLsn,
    txn(body) {
      const ctx = new TestTransaction(pool);
      const result = body(ctx);
      const lsn = harness.nextLsn as Lsn;
      harness.nextLsn += 100;
      ctx.commit(lsn);
      expect(pool.stats().pinned).toBe(0);
      return { result, lsn, ctx };
    },
  };
  return harness;
}

function key(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

function randomValue(random: () => number, size: number): Buffer {
  const value = Buffer.allocUnsafe(size);
  let x = Math.floor(random() * 0xffffffff) >>> 0;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    value[i] = x >>> 24;
  }
  return value;
}

/** Checks an entry against the reference (plain comparisons first: expect() is slow in loops). */
function expectEntry(entry: Entry | null, reference: ReferenceMap, k: string): void {
  const expected = reference.values.get(k);
  if (expected === undefined) {
    if (entry !== null) expect.fail(`${JSON.stringify(k)} should not exist`);
    return;
  }
  if (entry === null) expect.fail(`${JSON.stringify(k)} is missing`);
  if (entry.key.toString('latin1') !== k) expect(entry.key.toString('latin1')).toBe(k);
  if (!entry.value.equals(expected.value)) {
    expect.fail(`value of ${JSON.stringify(k)}: ${entry.value.length} bytes, expected ${expected.value.length}`);
  }
  if (entry.revision !== expected.revision) expect(entry.revision).toBe(expected.revision);
}

function expectFullScan(store: Store, relNode: number, reference: ReferenceMap): void {
  const { entries, more } = store.scan(relNode, {});
  expect(more).toBe(false);
  expect(entries.length).toBe(reference.keys.length);
  entries.forEach((entry, i) => expectEntry(entry, reference, reference.keys[i]!));
}

/**
 * Checks the tree's shape from the pages: each level is one right-linked chain whose pages are,
 * in order, the children of the level above; every key lies within the bounds its parents give
 * it; keys strictly increase within a page. Returns the number of pages per level, root first.
 */
function checkTreeStructure(h: Harness, relNode: number): number[] {
  const meta = h.pool.readBuffer(relNode, 0);
  const root = metaRoot(meta.page);
  const rootLevel = metaRootLevel(meta.page);
  h.pool.release(meta);
  type Bounded = { block: number; low: Buffer | null; high: Buffer | null };
  let current: Bounded[] = [{ block: root, low: null, high: null }];
  const counts: number[] = [];
  for (let level = rootLevel; level >= 0; level--) {
    counts.push(current.length);
    const next: Bounded[] = [];
    current.forEach((node, position) => {
      const handle = h.pool.readBuffer(relNode, node.block);
      const page = Buffer.from(handle.page);
      h.pool.release(handle);
      const isLeaf = level === 0;
      expect(pageGetType(page)).toBe(isLeaf ? PageType.leaf : PageType.internal);
      expect(btreeLevel(page)).toBe(level);
      expect(btreeRightLink(page)).toBe(position + 1 < current.length ? current[position + 1]!.block : 0);
      const count = pageGetItemCount(page);
      if (!isLeaf) expect(count).toBeGreaterThan(0);
      const keys: Buffer[] = [];
      for (let i = 0; i < count; i++) {
        const offset = pageItemOffset(page, i);
        const at = tupleKeyStart(isLeaf, offset);
        keys.push(page.subarray(at, at + tupleKeyLength(page, isLeaf, offset)));
      }
      for (let i = isLeaf ? 0 : 1; i < count; i++) {
        const k = keys[i]!;
        if (node.low !== null && k.compare(node.low) < 0) expect.fail(`key below its bound in block ${node.block}`);
        if (node.high !== null && k.compare(node.high) >= 0) expect.fail(`key above its bound in block ${node.block}`);
        if (i > (isLeaf ? 0 : 1) && keys[i - 1]!.compare(k) >= 0) expect.fail(`keys out of order in block ${node.block}`);
      }
      if (!isLeaf) {
        for (let i = 0; i < count; i++) {
          next.push({
            block: internalChild(page, i),
            low: i === 0 ? node.low : keys[i]!,
            high: i + 1 < count ? keys[i + 1]! : node.high,
          });
        }
      }
    });
    current = next;
  }
  return counts;
}

let dir: string;
beforeEach(() => {
  dir = makeTempDir('store');
});
afterEach(() => {
  removeDir(dir);
});

describe('Store catalog', () => {
  it('bootstraps the catalog and the default table, and creates tables', () => {
    const h = openHarness(dir, 32);
    expect(h.store.isBootstrapped()).toBe(false);
    expect(h.store.lookupTable(DEFAULT_TABLE)).toBeNull();
    const { ctx } = h.txn((ctx) => h.store.bootstrap(ctx));
    expect(ctx.registrations.every((r) => r.isNew || r.relNode === CATALOG_RELNODE)).toBe(true);
    expect(h.store.lookupTable(DEFAULT_TABLE)).toBe(FIRST_USER_RELNODE);
    const { result: users } = h.txn((ctx) => h.store.createTable('users', ctx));
    expect(users).toBe(FIRST_USER_RELNODE + 1);
    expect(h.store.listTables()).toEqual([
      { name: DEFAULT_TABLE, relNode: FIRST_USER_RELNODE },
      { name: 'users', relNode: FIRST_USER_RELNODE + 1 },
    ]);
    expect(() => h.txn((ctx) => h.store.createTable('users', ctx))).toThrow(/already exists/);
    expect(() => h.txn((ctx) => h.store.bootstrap(ctx))).toThrow(/already exists/);
    h.txn((ctx) => h.store.put(users, key('a'), key('1'), ctx));
    expect(h.store.get(users, key('a'))!.value.toString()).toBe('1');
    expect(h.store.get(FIRST_USER_RELNODE, key('a'))).toBeNull();
    expect(() => h.store.get(users + 1, key('a'))).toThrow(expect.objectContaining({ code: ErrorCode.tableNotFound }));
    h.smgr.close();
  });

  it('answers lookups from what the catalog says now: a table dropped or created in a transaction, or by another Store over the same pool', () => {
    const h = openHarness(dir, 32);
    h.txn((ctx) => h.store.bootstrap(ctx));
    const { result: users } = h.txn((ctx) => h.store.createTable('users', ctx));
    expect(h.store.lookupTable('users')).toBe(users);
    h.txn((ctx) => {
      expect(h.store.dropTable('users', ctx)).toBe(users);
      // The same transaction already sees the catalog it changed.
      expect(h.store.lookupTable('users')).toBeNull();
      const again = h.store.createTable('users', ctx);
      expect(again).not.toBe(users);
      expect(h.store.lookupTable('users')).toBe(again);
    });
    const reborn = h.store.lookupTable('users')!;
    // Recovery's Store and the database's share one pool: a change through either is seen by both.
    const other = new Store(h.pool);
    expect(other.lookupTable('users')).toBe(reborn);
    h.txn((ctx) => other.dropTable('users', ctx));
    expect(h.store.lookupTable('users')).toBeNull();
    expect(h.store.lookupTable(DEFAULT_TABLE)).toBe(FIRST_USER_RELNODE);
    h.smgr.close();
  });

  it('refuses oversized keys and values before changing any page', () => {
    const h = openHarness(dir, 32);
    h.txn((ctx) => h.store.bootstrap(ctx));
    const rel = h.store.lookupTable(DEFAULT_TABLE)!;
    const ctx = new TestTransaction(h.pool);
    let error: unknown;
    try {
      h.store.put(rel, Buffer.alloc(MAX_KEY_BYTES + 1), Buffer.alloc(1), ctx);
    } catch (e) {
      error = e;
    }
    expect((error as WalshipError).code).toBe(ErrorCode.keyTooLarge);
    expect((error as WalshipError).detail).toContain(String(MAX_KEY_BYTES));
    try {
      h.store.put(rel, key('k'), Buffer.alloc(MAX_VALUE_BYTES + 1), ctx);
    } catch (e) {
      error = e;
    }
    expect((error as WalshipError).code).toBe(ErrorCode.valueTooLarge);
    expect((error as WalshipError).detail).toContain(String(MAX_VALUE_BYTES));
    expect(ctx.registrations).toEqual([]);
    // The limits themselves are fine.
    h.txn((c) => h.store.put(rel, Buffer.alloc(MAX_KEY_BYTES, 1), Buffer.alloc(10), c));
    expect(h.store.get(rel, Buffer.alloc(MAX_KEY_BYTES, 1))!.value.length).toBe(10);
    h.smgr.close();
  });
});

describe('pendingRevisionOffsets', () => {
  it('finds exactly the tuples written in the open transaction', () => {
    const h = openHarness(dir, 32);
    h.txn((ctx) => h.store.bootstrap(ctx));
    const rel = h.store.lookupTable(DEFAULT_TABLE)!;
    const { lsn: first } = h.txn((ctx) => {
      for (let i = 0; i < 10; i++) h.store.put(rel, key(`k${i}`), key(`v${i}`), ctx);
    });
    const ctx = new TestTransaction(h.pool);
    h.store.put(rel, key('k3'), key('new'), ctx);
    h.store.put(rel, key('k7x'), key('new'), ctx);
    const leaf = h.pool.readBuffer(rel, 1);
    const offsets = pendingRevisionOffsets(leaf.page);
    expect(offsets.length).toBe(2);
    for (const offset of offsets) expect(readLsn(leaf.page, offset)).toBe(PENDING_REVISION);
    const meta = h.pool.readBuffer(rel, 0);
    expect(h.store.pendingRevisionOffsets(meta.page)).toEqual([]);
    h.pool.release(meta);
    h.pool.release(leaf);
    const second = h.nextLsn as Lsn;
    ctx.commit(second);
    const check = h.pool.readBuffer(rel, 1);
    expect(pendingRevisionOffsets(check.page)).toEqual([]);
    h.pool.release(check);
    expect(h.store.get(rel, key('k3'))!.revision).toBe(second);
    expect(h.store.get(rel, key('k7x'))!.revision).toBe(second);
    expect(h.store.get(rel, key('k4'))!.revision).toBe(first);
    expect(h.store.getRevision(rel, key('k4'))).toBe(first);
    expect(h.store.getRevision(rel, key('nope'))).toBeNull();
    h.smgr.close();
  });
});

describe('B+tree against a reference map', () => {
  it('agrees under random put/delete/deleteRange/get/scan with data far larger than the pool', () => {
    const random = rng(20240601);
    // 200 frames (1.6 MiB): enough for one transaction with a 1 MiB value, ~10x less than the data.
    const h = openHarness(dir, 200);
    h.txn((ctx) => h.store.bootstrap(ctx));
    const rel = h.store.lookupTable(DEFAULT_TABLE)!;
    const reference = new ReferenceMap();

    const prefixes = ['user/', 'user/1', 'order/', 'o', '\u0000', '\u00ff\u00ff', 'zz/', ''];
    const randomKey = (): Buffer => {
      const r = random();
      if (r < 0.01) return randomValue(random, 200 + Math.floor(random() * (MAX_KEY_BYTES - 199)));
      if (r < 0.1) return randomValue(random, 1 + Math.floor(random() * 12));
      const prefix = prefixes[Math.floor(random() * prefixes.length)]!;
      return key(`${prefix}${Math.floor(random() * 40000).toString(36)}`);
    };
    const randomSize = (): number => {
      const r = random();
      if (r < 0.8) return Math.floor(random() * 200);
      if (r < 0.985) return 200 + Math.floor(random() * 3000);
      if (r < 0.9995) return 8 * 1024 + Math.floor(random() * 30 * 1024);
      return 1024 * 1024 + Math.floor(random() * 1000);
    };
    const existingKey = (): Buffer =>
      reference.keys.length === 0 ? randomKey() : key(reference.keys[Math.floor(random() * reference.keys.length)]!);

    // Load: ~30k small entries, 20 puts a transaction, plus large values in transactions of
    // their own (the WAL layer pins every page a transaction touches).
    let bigValues = 0;
    for (let t = 0; t < 1500; t++) {
      const batch: Array<[Buffer, Buffer]> = [];
      for (let i = 0; i < 20; i++) {
        let size = randomSize();
        if (size >= 1024 * 1024) {
          if (bigValues >= 3) size = 100;
          else bigValues++;
        }
        const k = randomKey();
        const v = randomValue(random, size);
        if (size < 8192) {
          batch.push([k, v]);
        } else {
          const { lsn } = h.txn((ctx) => h.store.put(rel, k, v, ctx));
          reference.put(k, v, lsn);
        }
      }
      const { lsn } = h.txn((ctx) => {
        for (const [k, v] of batch) h.store.put(rel, k, v, ctx);
      });
      for (const [k, v] of batch) reference.put(k, v, lsn);
    }
    // Make sure there are at least two 1 MiB values and a value of exactly the inline limit.
    for (let i = 0; i < 2; i++) {
      const k = key(`big/${i}`);
      const v = randomValue(random, 1024 * 1024 + i);
      const { lsn } = h.txn((ctx) => h.store.put(rel, k, v, ctx));
      reference.put(k, v, lsn);
    }
    {
      const k = key('edge/inline');
      const v = randomValue(random, LEAF_TUPLE_MAX_BYTES - 16 - k.length);
      const { lsn } = h.txn((ctx) => h.store.put(rel, k, v, ctx));
      reference.put(k, v, lsn);
    }
    const info = h.store.relationInfo(rel);
    expect(info.nblocks).toBeGreaterThan(10 * h.pool.nBuffers);
    console.log(`random test: ${reference.keys.length} entries in ${info.nblocks} blocks, pool ${h.pool.nBuffers}`);
    expect(info.rootLevel).toBeGreaterThanOrEqual(1);
    expectFullScan(h.store, rel, reference);

    let scans = 0;
    let nonEmptyScans = 0;
    for (let op = 0; op < 3000; op++) {
      const r = random();
      if (r < 0.35) {
        const k = random() < 0.5 ? existingKey() : randomKey();
        let size = randomSize();
        if (size >= 1024 * 1024 && random() < 0.7) size = 50;
        const v = randomValue(random, size);
        const { lsn } = h.txn((ctx) => h.store.put(rel, k, v, ctx));
        reference.put(k, v, lsn);
      } else if (r < 0.5) {
        const k = random() < 0.8 ? existingKey() : randomKey();
        const { result } = h.txn((ctx) => h.store.delete(rel, k, ctx));
        expect(result).toBe(reference.delete(k));
      } else if (r < 0.55) {
        const a = existingKey();
        const b = random() < 0.5 ? existingKey() : Buffer.concat([a, key('\u00ff')]);
        const [start, end] = a.compare(b) <= 0 ? [a, b] : [b, a];
        // Bounded: every page a transaction changes stays pinned until it commits.
        const limit = 1 + Math.floor(random() * 40);
        const { result } = h.txn((ctx) => h.store.deleteRange(rel, start, end, ctx, limit));
        expect(result).toBe(reference.deleteRange(start, end, limit));
      } else if (r < 0.8) {
        const k = random() < 0.7 ? existingKey() : randomKey();
        expectEntry(h.store.get(rel, k), reference, k.toString('latin1'));
      } else {
        const options: { start?: Buffer; end?: Buffer; prefix?: Buffer; limit?: number } = {};
        const kind = random();
        if (kind < 0.4) options.prefix = key(prefixes[Math.floor(random() * prefixes.length)]! + (random() < 0.5 ? '1' : ''));
        if (kind >= 0.3) options.start = existingKey();
        if (kind >= 0.6) options.end = Buffer.concat([options.start ?? existingKey(), key(random() < 0.5 ? '\u0001' : 'zz')]);
        if (random() < 0.8) options.limit = 1 + Math.floor(random() * 100);
        const got = h.store.scan(rel, options);
        const expected = reference.scan(options);
        expect(got.entries.map((e) => e.key.toString('latin1'))).toEqual(expected.keys);
        expect(got.more).toBe(expected.more);
        got.entries.forEach((entry) => expectEntry(entry, reference, entry.key.toString('latin1')));
        scans++;
        if (expected.keys.length > 0) nonEmptyScans++;
      }
    }
    expect(nonEmptyScans).toBeGreaterThan(scans / 3);
    expectFullScan(h.store, rel, reference);
    checkTreeStructure(h, rel);
    expect(h.pool.stats().evictions).toBeGreaterThan(1000);
    h.smgr.close();
  });
});

describe('vacuum and space reuse', () => {
  it('merges emptied leaves, frees pages and reuses them so the file stops growing', () => {
    const random = rng(99);
    const h = openHarness(dir, 64);
    h.txn((ctx) => h.store.bootstrap(ctx));
    const rel = h.store.lookupTable(DEFAULT_TABLE)!;
    const reference = new ReferenceMap();
    const keys: Buffer[] = [];
    for (let i = 0; i < 12000; i++) keys.push(key(`key/${String(Math.floor(random() * 1e9)).padStart(9, '0')}/${i}`));

    const insertAll = (list: Buffer[]): void => {
      for (let i = 0; i < list.length; i += 20) {
        const batch = list.slice(i, i + 20).map((k) => [k, randomValue(random, 60 + Math.floor(random() * 80))] as const);
        const { lsn } = h.txn((ctx) => {
          for (const [k, v] of batch) h.store.put(rel, k, v, ctx);
        });
        for (const [k, v] of batch) reference.put(k, v, lsn);
      }
    };
    const vacuumFully = (): { merged: number; freed: number } => {
      let merged = 0;
      let freed = 0;
      for (let pass = 0; pass < 20; pass++) {
        let passMerged = 0;
        for (;;) {
          const { result } = h.txn((ctx) => h.store.vacuumStep(rel, ctx, 16));
          passMerged += result.pagesMerged;
          freed += result.pagesFreed;
          if (result.done) break;
        }
        merged += passMerged;
        if (passMerged === 0) break;
      }
      return { merged, freed };
    };

    insertAll(keys);
    const peak = h.store.relationInfo(rel).nblocks;
    const sizes: number[] = [];
    for (let cycle = 0; cycle < 3; cycle++) {
      // Delete ~90%: most one by one, a stretch by deleteRange.
      const victims = keys.filter(() => random() < 0.85);
      for (let i = 0; i < victims.length; i += 20) {
        const batch = victims.slice(i, i + 20);
        h.txn((ctx) => batch.forEach((k) => h.store.delete(rel, k, ctx)));
        batch.forEach((k) => reference.delete(k));
      }
      const { result: ranged } = h.txn((ctx) => h.store.deleteRange(rel, key('key/2'), key('key/3'), ctx));
      expect(ranged).toBe(reference.deleteRange(key('key/2'), key('key/3')));

      const { merged, freed } = vacuumFully();
      expect(merged).toBeGreaterThan(0);
      const info = h.store.relationInfo(rel);
      expect(freed).toBeGreaterThan(0);
      expect(info.freePages).toBeGreaterThan(info.nblocks / 2);
      expectFullScan(h.store, rel, reference);
      checkTreeStructure(h, rel);

      // Re-insert everything that is gone: freed pages come back into use.
      insertAll(keys.filter((k) => !reference.values.has(k.toString('latin1'))));
      expectFullScan(h.store, rel, reference);
      sizes.push(h.store.relationInfo(rel).nblocks);
    }
    // The file does not grow past the first peak by more than a little, and not from cycle to cycle.
    expect(sizes[0]!).toBeLessThanOrEqual(peak * 1.25);
    expect(sizes[2]!).toBeLessThanOrEqual(sizes[0]! * 1.05);

    // Deleting everything collapses the tree to a single root leaf.
    while (h.txn((ctx) => h.store.deleteRange(rel, key(''), key('\u00ff'), ctx, 500)).result > 0);
    vacuumFully();
    const info = h.store.relationInfo(rel);
    expect(info.rootLevel).toBe(0);
    expect(info.freePages).toBe(info.nblocks - 2);
    expect(h.store.scan(rel, {}).entries).toEqual([]);
    h.smgr.close();
  });

  it('merges internal pages and collapses the root of a deep tree', () => {
    const random = rng(11);
    const h = openHarness(dir, 64);
    h.txn((ctx) => h.store.bootstrap(ctx));
    const rel = h.store.lookupTable(DEFAULT_TABLE)!;
    const reference = new ReferenceMap();
    // Long shared prefixes defeat suffix truncation: separators stay ~500 bytes, fanout ~15.
    const stem = 'p'.repeat(500);
    const keys = Array.from({ length: 6000 }, (_, i) => key(`${stem}${String((i * 7919) % 6000).padStart(5, '0')}`));
    for (let i = 0; i < keys.length; i += 20) {
      const batch = keys.slice(i, i + 20);
      const { lsn } = h.txn((ctx) => batch.forEach((k) => h.store.put(rel, k, key('v'), ctx)));
      batch.forEach((k) => reference.put(k, key('v'), lsn));
    }
    const before = h.store.relationInfo(rel);
    expect(before.rootLevel).toBeGreaterThanOrEqual(3);
    expect(checkTreeStructure(h, rel).length).toBe(before.rootLevel + 1);
    // Keep one key in a thousand.
    for (let i = 0; i < keys.length; i += 20) {
      const batch = keys.slice(i, i + 20).filter(() => random() < 0.999);
      h.txn((ctx) => batch.forEach((k) => h.store.delete(rel, k, ctx)));
      batch.forEach((k) => reference.delete(k));
    }
    for (let pass = 0; pass < 30; pass++) {
      let merged = 0;
      for (;;) {
        const { result } = h.txn((ctx) => h.store.vacuumStep(rel, ctx, 8));
        merged += result.pagesMerged;
        if (result.done) break;
      }
      checkTreeStructure(h, rel);
      if (merged === 0) break;
    }
    const after = h.store.relationInfo(rel);
    expect(after.rootLevel).toBeLessThanOrEqual(1);
    expect(after.nblocks - after.freePages).toBeLessThan(10);
    expectFullScan(h.store, rel, reference);
    h.smgr.close();
  });

  it('frees the overflow chains of replaced and deleted values at once', () => {
    const random = rng(5);
    const h = openHarness(dir, 160);
    h.txn((ctx) => h.store.bootstrap(ctx));
    const rel = h.store.lookupTable(DEFAULT_TABLE)!;
    for (let i = 0; i < 8; i++) {
      const v = randomValue(random, 1024 * 1024);
      h.txn((ctx) => h.store.put(rel, key('blob'), v, ctx));
      expect(h.store.get(rel, key('blob'))!.value.equals(v)).toBe(true);
    }
    const afterReplacements = h.store.relationInfo(rel).nblocks;
    // One chain (a replaced value's chain is freed first and reused), plus meta and root.
    expect(afterReplacements).toBe(129 + 2);
    h.txn((ctx) => h.store.delete(rel, key('blob'), ctx));
    const info = h.store.relationInfo(rel);
    expect(info.freePages).toBe(info.nblocks - 2);
    h.smgr.close();
  });
});

describe('determinism', () => {
  it('gives byte-identical files for the same changes, whatever the pool size', () => {
    const run = (subdir: string, nBuffers: number): Buffer => {
      const random = rng(42);
      const h = openHarness(`${dir}/${subdir}`, nBuffers);
      h.txn((ctx) => h.store.bootstrap(ctx));
      const rel = h.store.lookupTable(DEFAULT_TABLE)!;
      for (let t = 0; t < 300; t++) {
        h.txn((ctx) => {
          for (let i = 0; i < 8; i++) {
            const k = key(`k/${Math.floor(random() * 3000)}`);
            if (random() < 0.3) h.store.delete(rel, k, ctx);
            else h.store.put(rel, k, randomValue(random, random() < 0.02 ? 12000 : Math.floor(random() * 300)), ctx);
          }
        });
        if (t % 50 === 49) h.txn((ctx) => h.store.vacuumStep(rel, ctx, 8));
      }
      h.pool.flushAll();
      h.smgr.close();
      return fs.readFileSync(`${dir}/${subdir}/base/${rel}`);
    };
    const small = run('a', 24);
    const large = run('b', 512);
    expect(small.length).toBeGreaterThan(20 * 8192);
    expect(small.equals(large)).toBe(true);
  });
});

describe('persistence', () => {
  it('reads back the same tables and entries from disk alone', async () => {
    const random = rng(3);
    const h = openHarness(dir, 48);
    h.txn((ctx) => h.store.bootstrap(ctx));
    const { result: other } = h.txn((ctx) => h.store.createTable('other', ctx));
    const rel = h.store.lookupTable(DEFAULT_TABLE)!;
    const reference = new ReferenceMap();
    for (let t = 0; t < 200; t++) {
      const batch = Array.from({ length: 10 }, () => {
        const size = random() < 0.05 ? 20000 : Math.floor(random() * 300);
        return [key(`p/${Math.floor(random() * 1e6)}`), randomValue(random, size)] as const;
      });
      const { lsn } = h.txn((ctx) => batch.forEach(([k, v]) => h.store.put(rel, k, v, ctx)));
      batch.forEach(([k, v]) => reference.put(k, v, lsn));
    }
    h.txn((ctx) => h.store.put(other, key('x'), key('y'), ctx));
    h.txn((ctx) => h.store.vacuumStep(rel, ctx, 4));
    const infoBefore = h.store.relationInfo(rel);
    // What a checkpoint does: write every dirty block, then fsync.
    for (const block of h.pool.dirtyBlocks()) h.pool.flushBlock(block.relNode, block.blockNo);
    expect(h.pool.stats().dirty).toBe(0);
    await h.smgr.fsyncAll();
    h.smgr.close();

    const again = openHarness(dir, 48);
    expect(again.store.listTables()).toEqual([
      { name: DEFAULT_TABLE, relNode: rel },
      { name: 'other', relNode: other },
    ]);
    expect(again.store.relationInfo(rel)).toEqual(infoBefore);
    expectFullScan(again.store, rel, reference);
    expect(again.store.get(other, key('x'))!.value.toString()).toBe('y');
    const { result: third } = again.txn((ctx) => again.store.createTable('third', ctx));
    expect(third).toBe(other + 1);
    again.smgr.close();
  });
});
