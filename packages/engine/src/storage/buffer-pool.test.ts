import * as fs from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BLCKSZ } from '../constants.js';
import { ErrorCode, WalshipError } from '../errors.js';
import { readLsn, writeLsn, type Lsn } from '../lsn.js';
import { BufferPool } from './buffer-pool.js';
import { PageType, pageInit } from './page.js';
import { Smgr } from './smgr.js';
import { makeTempDir, removeDir } from './test-support.js';

const REL = 16384;

let dir: string;
beforeEach(() => {
  dir = makeTempDir('pool');
});
afterEach(() => {
  removeDir(dir);
});

/** Fills a page as a new empty leaf stamped with `marker` and `lsn`. */
function stamp(page: Buffer, marker: number, lsn: number): void {
  pageInit(page, PageType.leaf, 8);
  page.writeUInt32LE(marker, 100);
  writeLsn(page, lsn, 0);
}

describe('Smgr', () => {
  it('extends with zero pages, reads back, and refuses reads past the end', () => {
    const smgr = new Smgr(dir);
    expect(smgr.exists(REL)).toBe(false);
    expect(smgr.nblocks(REL)).toBe(0);
    const page = Buffer.alloc(BLCKSZ, 7);
    smgr.write(REL, 3, page);
    expect(smgr.nblocks(REL)).toBe(4);
    expect(fs.statSync(smgr.relationPath(REL)).size).toBe(4 * BLCKSZ);
    const into = Buffer.alloc(BLCKSZ, 1);
    smgr.read(REL, 1, into);
    expect(into.every((b) => b === 0)).toBe(true);
    smgr.read(REL, 3, into);
    expect(into.equals(page)).toBe(true);
    expect(() => smgr.read(REL, 4, into)).toThrow(WalshipError);
    smgr.unlink(REL);
    expect(smgr.exists(REL)).toBe(false);
    smgr.close();
  });

  it('syncs written files, and an fsync failure is a PANIC that sticks', async () => {
    const smgr = new Smgr(dir);
    smgr.write(REL, 0, Buffer.alloc(BLCKSZ));
    await smgr.fsyncAll();
    smgr.write(REL, 1, Buffer.alloc(BLCKSZ));
    smgr.faults.failFsync = () => true;
    const failure = await smgr.fsyncAll().catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(WalshipError);
    expect((failure as WalshipError).severity).toBe('PANIC');
    smgr.faults = {};
    expect(() => smgr.write(REL, 2, Buffer.alloc(BLCKSZ))).toThrow(/fsync/);
    smgr.close();
  });

  it('injects write faults', () => {
    const smgr = new Smgr(dir);
    smgr.faults.failWrite = (_rel, block) => block === 1;
    smgr.write(REL, 0, Buffer.alloc(BLCKSZ));
    expect(() => smgr.write(REL, 1, Buffer.alloc(BLCKSZ))).toThrow(/could not write block 1/);
    expect(smgr.nblocks(REL)).toBe(1);
    smgr.close();
  });
});

describe('BufferPool', () => {
  it('keeps far more blocks than frames correct through eviction', () => {
    const smgr = new Smgr(dir);
    const pool = new BufferPool({ smgr, nBuffers: 16, flushWal: () => {} });
    const blocks = 200;
    for (let i = 0; i < blocks; i++) {
      const handle = pool.newBuffer(REL);
      expect(handle.blockNo).toBe(i);
      stamp(handle.page, i * 7 + 1, 100 + i);
      pool.markDirty(handle);
      pool.release(handle);
    }
    expect(pool.stats().evictions).toBeGreaterThan(150);
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < blocks; i++) {
        const handle = pool.readBuffer(REL, (i * 37) % blocks);
        expect(handle.page.readUInt32LE(100)).toBe(((i * 37) % blocks) * 7 + 1);
        pool.release(handle);
      }
    }
    const stats = pool.stats();
    expect(stats.pinned).toBe(0);
    expect(stats.reads).toBeGreaterThan(0);
    expect(stats.dirty).toBeLessThanOrEqual(16);
    smgr.close();
  });

  it('never evicts a pinned page and says so when every frame is pinned', () => {
    const smgr = new Smgr(dir);
    const pool = new BufferPool({ smgr, nBuffers: 16, flushWal: () => {} });
    const held = [];
    for (let i = 0; i < 16; i++) {
      const handle = pool.newBuffer(REL);
      stamp(handle.page, 1000 + i, 1);
      held.push(handle);
    }
    let error: unknown;
    try {
      pool.newBuffer(REL);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WalshipError);
    expect((error as Error).message).toMatch(/^no unpinned buffers available/);
    expect((error as WalshipError).code).toBe('transaction_too_large');
    held.forEach((handle, i) => expect(handle.page.readUInt32LE(100)).toBe(1000 + i));
    // One release makes room for exactly one more page; the others stay put.
    pool.release(held[3]!);
    const extra = pool.newBuffer(REL);
    held.forEach((handle, i) => {
      if (i !== 3) expect(handle.page.readUInt32LE(100)).toBe(1000 + i);
    });
    pool.release(extra);
    held.forEach((handle, i) => {
      if (i !== 3) pool.release(handle);
    });
    expect(pool.stats().pinned).toBe(0);
    smgr.close();
  });

  it('flushes WAL up to the page LSN before writing a dirty page', () => {
    const smgr = new Smgr(dir);
    const events: string[] = [];
    const write = smgr.write.bind(smgr);
    smgr.write = (relNode: number, blockNo: number, page: Buffer) => {
      events.push(`write ${blockNo} lsn=${readLsn(page, 0)}`);
      write(relNode, blockNo, page);
    };
    const pool = new BufferPool({ smgr, nBuffers: 16, flushWal: (lsn: Lsn) => events.push(`flush ${lsn}`) });
    for (let i = 0; i < 40; i++) {
      const handle = pool.newBuffer(REL);
      stamp(handle.page, i, 5000 + i);
      pool.markDirty(handle);
      pool.release(handle);
    }
    const writes = events.filter((e) => e.startsWith('write'));
    expect(writes.length).toBeGreaterThanOrEqual(24);
    events.forEach((event, i) => {
      if (!event.startsWith('write')) return;
      const lsn = Number(event.split('lsn=')[1]);
      expect(events[i - 1]).toBe(`flush ${lsn}`);
    });
    // flushBlock does the same and reports whether it wrote.
    const last = pool.readBuffer(REL, 39);
    pool.release(last);
    events.length = 0;
    expect(pool.flushBlock(REL, 39)).toBe(true);
    expect(events).toEqual(['flush 5039', 'write 39 lsn=5039']);
    expect(pool.flushBlock(REL, 39)).toBe(false);
    expect(pool.dirtyBlocks().some((b) => b.blockNo === 39)).toBe(false);
    smgr.close();
  });

  describe('bgBufferSync (the background writer)', () => {
    /** A pool of 16 frames full of dirty pages 0..15 (page LSN 100 + block), and the blocks written. */
    function fullDirtyPool(): { pool: BufferPool; smgr: Smgr; written: number[] } {
      const smgr = new Smgr(dir);
      const written: number[] = [];
      const write = smgr.write.bind(smgr);
      smgr.write = (relNode: number, blockNo: number, page: Buffer) => {
        written.push(blockNo);
        write(relNode, blockNo, page);
      };
      const pool = new BufferPool({ smgr, nBuffers: 16, flushWal: () => {} });
      for (let i = 0; i < 16; i++) {
        const handle = pool.newBuffer(REL);
        stamp(handle.page, i, 100 + i);
        pool.markDirty(handle);
        pool.release(handle);
      }
      return { pool, smgr, written };
    }

    it('writes nothing while free frames cover the expected allocations', () => {
      const smgr = new Smgr(dir);
      const pool = new BufferPool({ smgr, nBuffers: 64, flushWal: () => {} });
      for (let i = 0; i < 8; i++) {
        const handle = pool.newBuffer(REL);
        stamp(handle.page, i, 100 + i);
        pool.markDirty(handle);
        pool.release(handle);
      }
      // 8 allocations, times 2, is 16 frames: the 56 free ones cover them.
      expect(pool.bgBufferSync(100, 2, 1_000 as Lsn)).toBe(0);
      expect(pool.stats().dirty).toBe(8);
      smgr.close();
    });

    it('leaves pages in use alone: a pool that holds its working set is not rewritten', () => {
      const { pool, smgr, written } = fullDirtyPool();
      // Every frame was used since the sweep last passed (usage count 1): none is about to be reused.
      expect(pool.bgBufferSync(100, 2, 1_000 as Lsn)).toBe(0);
      expect(written).toEqual([]);
      expect(pool.stats().dirty).toBe(16);
      smgr.close();
    });

    it('writes the dirty pages the clock sweep reaches next, up to maxPages, WAL already flushed', () => {
      const { pool, smgr, written } = fullDirtyPool();
      // One more page: the sweep takes every usage count to 0 and evicts block 0 (a backend's write).
      const extra = pool.newBuffer(REL);
      stamp(extra.page, 16, 116);
      pool.release(extra);
      expect(written).toEqual([0]);
      written.length = 0;
      expect(pool.bgBufferSync(4, 2, 1_000 as Lsn)).toBe(4);
      expect(written).toEqual([1, 2, 3, 4]);
      // Pages whose WAL is not flushed yet are the sweep's to write (with a WAL flush), not ours.
      written.length = 0;
      expect(pool.bgBufferSync(100, 2, 108 as Lsn)).toBe(4);
      expect(written).toEqual([5, 6, 7, 8]);
      expect(pool.stats().dirty).toBe(16 - 8);
      // The next eviction finds block 1 clean: no write on the backend's side.
      written.length = 0;
      pool.release(pool.newBuffer(REL));
      expect(written).toEqual([]);
      smgr.close();
    });

    it('writes nothing with bgwriter_lru_multiplier 0 or bgwriter_lru_maxpages 0', () => {
      const { pool, smgr, written } = fullDirtyPool();
      pool.release(pool.newBuffer(REL));
      written.length = 0;
      expect(pool.bgBufferSync(100, 0, 1_000 as Lsn)).toBe(0);
      expect(pool.bgBufferSync(0, 2, 1_000 as Lsn)).toBe(0);
      expect(written).toEqual([]);
      smgr.close();
    });
  });

  it('detects a corrupt page on read, naming relation and block', () => {
    const smgr = new Smgr(dir);
    const pool = new BufferPool({ smgr, nBuffers: 16, flushWal: () => {} });
    for (let i = 0; i < 3; i++) {
      const handle = pool.newBuffer(REL);
      stamp(handle.page, i, 10);
      pool.release(handle);
    }
    expect(pool.flushAll()).toBe(3);
    smgr.close();

    const fd = fs.openSync(`${dir}/base/${REL}`, 'r+');
    const byte = Buffer.alloc(1);
    fs.readSync(fd, byte, 0, 1, BLCKSZ + 500);
    byte[0]! ^= 0x10;
    fs.writeSync(fd, byte, 0, 1, BLCKSZ + 500);
    // Block 0's bytes written where block 2 belongs: a misdirected write.
    const block0 = Buffer.alloc(BLCKSZ);
    fs.readSync(fd, block0, 0, BLCKSZ, 0);
    fs.writeSync(fd, block0, 0, BLCKSZ, 2 * BLCKSZ);
    fs.closeSync(fd);

    const smgr2 = new Smgr(dir);
    const pool2 = new BufferPool({ smgr: smgr2, nBuffers: 16, flushWal: () => {} });
    pool2.release(pool2.readBuffer(REL, 0));
    for (const block of [1, 2]) {
      let error: unknown;
      try {
        pool2.readBuffer(REL, block);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(WalshipError);
      expect((error as WalshipError).code).toBe(ErrorCode.dataCorrupted);
      expect((error as WalshipError).message).toContain(`block ${block} of relation base/${REL}`);
      expect((error as WalshipError).hint).toBeDefined();
    }
    expect(pool2.stats().pinned).toBe(0);
    smgr2.close();
  });

  it('reads for redo: zeroed without reading, past the end as zeros', () => {
    const smgr = new Smgr(dir);
    const pool = new BufferPool({ smgr, nBuffers: 16, flushWal: () => {} });
    const handle = pool.newBuffer(REL);
    stamp(handle.page, 1, 10);
    pool.release(handle);
    pool.flushAll();
    smgr.faults.failRead = () => true;
    pool.dropRelation(REL);
    const zeroed = pool.readBufferForRedo(REL, 0, true);
    expect(zeroed.page.every((b) => b === 0)).toBe(true);
    pool.release(zeroed);
    const past = pool.readBufferForRedo(REL, 9, false);
    expect(past.page.every((b) => b === 0)).toBe(true);
    expect(pool.nblocks(REL)).toBe(10);
    pool.release(past);
    smgr.faults = {};
    pool.dropRelation(REL);
    const read = pool.readBufferForRedo(REL, 0, false);
    expect(read.page.readUInt32LE(100)).toBe(1);
    // The checksum field is cleared in memory once verified.
    expect(read.page.readUInt32LE(8)).toBe(0);
    pool.release(read);
    smgr.close();
  });

  it('catches a stale handle', () => {
    const smgr = new Smgr(dir);
    const pool = new BufferPool({ smgr, nBuffers: 16, flushWal: () => {} });
    const handle = pool.newBuffer(REL);
    pool.release(handle);
    expect(() => pool.release(handle)).toThrow(/assertion failed/);
    smgr.close();
  });
});
