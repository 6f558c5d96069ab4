import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { XLOG_BLCKSZ } from '../constants.js';
import { formatLsn, parseLsn, type Lsn } from '../lsn.js';
import { SegmentFilePageSource, SegmentPrecreation, listSegments, preallocationDue, removeTempXlogFiles, segmentPath } from './wal-files.js';
import { CtlIndex } from './wal-shared.js';
import { parseXlogFileName, xlogFileName } from './xlog-internal.js';
import { XLogReader } from './xlog-reader.js';
import { RmgrId, SIZE_OF_XLOG_RECORD, XactInfo } from './xlog-record.js';
import { Xlog } from './xlog.js';
import { generateDataKeys } from '../crypto/key-file.js';
import { registerDataKeys, unregisterDataKeys } from '../crypto/registry.js';
import { WalCipher } from '../crypto/wal-cipher.js';

const SEGMENT = 1024 * 1024;
const SYSTEM_ID = 7300000000000000001n;
let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-xlog-'));
  fs.mkdirSync(path.join(dir, 'pg_wal'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function newXlog(insertLsn = SEGMENT, ringPages = 16): Xlog {
  return new Xlog({
    dataDir: dir, segmentSize: SEGMENT, walBuffersBytes: ringPages * XLOG_BLCKSZ, systemId: SYSTEM_ID, timeline: 1,
    fsync: true, insertLsn: insertLsn as Lsn, prevRecordLsn: 0 as Lsn,
  });
}

/** A record whose body is `size` bytes of a pattern derived from `seed`, no block references. */
function makeRecord(size: number, seed: number): Buffer {
  const record = Buffer.alloc(SIZE_OF_XLOG_RECORD + 2 + size);
  for (let i = 0; i < size; i++) record[SIZE_OF_XLOG_RECORD + 2 + i] = (seed * 31 + i) & 0xff;
  return record;
}

function reader(): XLogReader {
  const source = new SegmentFilePageSource(dir, () => 1, SEGMENT);
  return new XLogReader({ segmentSize: SEGMENT, systemId: SYSTEM_ID, source });
}

describe('LSN', () => {
  it('prints and parses as PostgreSQL does', () => {
    expect(formatLsn(0x16b3748)).toBe('0/16B3748');
    expect(formatLsn(0x1_0000_0000 + 0xff)).toBe('1/FF');
    expect(parseLsn('0/16B3748')).toBe(0x16b3748);
    expect(parseLsn('1/FF')).toBe(0x1_0000_00ff);
    expect(parseLsn('nonsense')).toBeNull();
  });

  it('parses any spelling the pattern accepts, and nothing else, to the same value', () => {
    const pattern = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;
    const reference = (text: string): number | null => {
      const m = pattern.exec(text.trim());
      if (m === null) return null;
      const value = parseInt(m[1]!, 16) * 0x1_0000_0000 + parseInt(m[2]!, 16);
      return Number.isSafeInteger(value) ? value : null;
    };
    const cases = [
      '0/0', 'ff/ffffffff', 'FFFFFFFF/FFFFFFFF', '1FFFFF/FFFFFFFF', '200000/0', 'aBcD/eF01', ' 0/16B3748 ', '\t1/2\n',
      '', '/', '0/', '/0', '0//0', '123456789/0', '0/123456789', '0x1/0', '-1/0', '1/-0', 'g/0', '0/G', '1 /2', '1/ 2', '1/2/3', '٣/1',
    ];
    let seed = 99;
    const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const alphabet = '0123456789abcdefABCDEFgG/ x';
    for (let i = 0; i < 2000; i++) {
      let text = '';
      for (let n = Math.floor(random() * 20); n > 0; n--) text += alphabet[Math.floor(random() * alphabet.length)];
      cases.push(text);
    }
    for (const text of cases) expect(parseLsn(text), JSON.stringify(text)).toBe(reference(text));
  });
});

describe('segment file names', () => {
  it('names segments as XLogFileName does', () => {
    expect(xlogFileName(1, 1, 16 * 1024 * 1024)).toBe('000000010000000000000001');
    expect(xlogFileName(2, 256 + 3, 16 * 1024 * 1024)).toBe('000000020000000100000003');
    expect(parseXlogFileName('000000020000000100000003', 16 * 1024 * 1024)).toEqual({ timeline: 2, segNo: 259 });
  });
});

describe('Xlog insert, flush and read back', () => {
  it('writes records across pages and segments and reads them all back with valid links and CRCs', async () => {
    const xlog = newXlog();
    const written: Array<{ start: Lsn; end: Lsn; size: number }> = [];
    // Sizes chosen to land exactly on, just before and just after page ends, and to span several pages.
    const sizes = [10, 8000, 8130, 8142, 3, 20000, 50000, 100, 7, 300000, 1, 8166, 8167];
    let seed = 0;
    while (xlog.getInsertRecPtr() < SEGMENT * 2.5) {
      for (const size of sizes) {
        const { start, end } = xlog.xlogInsertRecord(makeRecord(size, seed), SIZE_OF_XLOG_RECORD + 2 + size, RmgrId.transaction, XactInfo.commit, seed);
        written.push({ start, end, size });
        seed++;
      }
    }
    await xlog.xlogFlush(xlog.getInsertRecPtr());
    expect(xlog.getFlushRecPtr()).toBe(xlog.getInsertRecPtr());
    await xlog.shutdown();
    expect(listSegments(dir, SEGMENT).length).toBeGreaterThanOrEqual(2);

    const r = reader();
    r.beginRead(written[0]!.start);
    for (let i = 0; i < written.length; i++) {
      const result = r.readRecord();
      if (!result.ok) throw new Error(`record ${i}: ${result.message}`);
      expect(result.record.lsn).toBe(written[i]!.start);
      expect(result.record.endLsn).toBe(written[i]!.end);
      expect(result.record.xid).toBe(i);
      expect(result.record.totalLength).toBe(SIZE_OF_XLOG_RECORD + 2 + written[i]!.size);
      const body = result.record.buffer.subarray(SIZE_OF_XLOG_RECORD + 2, result.record.totalLength);
      expect(body.equals(makeRecord(written[i]!.size, i).subarray(SIZE_OF_XLOG_RECORD + 2))).toBe(true);
    }
    const end = r.readRecord();
    expect(end.ok).toBe(false);
    if (!end.ok) expect(end.message).toMatch(/invalid record length .* got 0/);
  });

  it('predicts the end LSN of a record before inserting it', async () => {
    const xlog = newXlog();
    // A first record that leaves 24 bytes on the page: the next one continues on the following page.
    const first = XLOG_BLCKSZ - 24 - 40 - SIZE_OF_XLOG_RECORD - 2;
    expect(xlog.xlogInsertRecord(makeRecord(first, 0), SIZE_OF_XLOG_RECORD + 2 + first, 1, 0, 0).end).toBe(SEGMENT + XLOG_BLCKSZ - 24);
    for (const size of [10, 20000, 0, 8166]) {
      const total = SIZE_OF_XLOG_RECORD + 2 + size;
      const predicted = xlog.predictEndLsn(total);
      expect(xlog.xlogInsertRecord(makeRecord(size, 1), total, 1, 0, 1).end).toBe(predicted);
    }
    await xlog.abort();
  });

  it('shares one fdatasync among many concurrent committers (group commit)', async () => {
    const xlog = newXlog();
    const before = xlog.stats().fsyncs;
    const flushes: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      const { end } = xlog.xlogInsertRecord(makeRecord(100, i), SIZE_OF_XLOG_RECORD + 102, 1, 0, i);
      flushes.push(xlog.xlogFlush(end));
    }
    await Promise.all(flushes);
    const fsyncs = xlog.stats().fsyncs - before;
    expect(fsyncs).toBeGreaterThanOrEqual(1);
    expect(fsyncs).toBeLessThan(20);
    await xlog.shutdown();
  });

  it('wakes registered walsenders after a write completes, with the flushed position, and only then', async () => {
    const xlog = newXlog();
    const wakeups: number[] = [];
    const unregister = xlog.registerWalSndWakeup((flushed) => wakeups.push(flushed));
    const { end } = xlog.xlogInsertRecord(makeRecord(100, 1), SIZE_OF_XLOG_RECORD + 102, 1, 0, 1);
    // Inserting alone wakes nobody: only XLogWrite's completion does.
    expect(wakeups).toEqual([]);
    await xlog.xlogFlush(end);
    expect(wakeups).toEqual([end]);
    // A flush that finds nothing new to write does not wake anyone again.
    await xlog.xlogFlush(end);
    expect(wakeups).toEqual([end]);
    unregister();
    const second = xlog.xlogInsertRecord(makeRecord(100, 2), SIZE_OF_XLOG_RECORD + 102, 1, 0, 2);
    await xlog.xlogFlush(second.end);
    expect(wakeups).toEqual([end]);
    await xlog.shutdown();
  });

  it('keeps inserting when the WAL buffers are full, writing them out first', async () => {
    const xlog = newXlog(SEGMENT, 4);
    for (let i = 0; i < 100; i++) xlog.xlogInsertRecord(makeRecord(5000, i), SIZE_OF_XLOG_RECORD + 5002, 1, 0, i);
    expect(xlog.getWriteRecPtr()).toBeGreaterThan(SEGMENT + 50 * 5000);
    await xlog.xlogFlush(xlog.getInsertRecPtr());
    await xlog.shutdown();
    const r = reader();
    r.beginRead((SEGMENT + 40) as Lsn);
    let n = 0;
    while (r.readRecord().ok) n++;
    expect(n).toBe(100);
  });
});

describe('Xlog.readFromBuffers', () => {
  it('copies written WAL still in the buffers, the same bytes as the segment file, and declines the rest', async () => {
    const xlog = newXlog(SEGMENT + 100 * XLOG_BLCKSZ, 8);
    // The first page is the disk's (nothing inserted before the start is in the buffers).
    const start = xlog.getInsertRecPtr();
    // About 11 pages through a ring of 8: the oldest pages inserted are no longer there.
    for (let i = 0; i < 120; i++) xlog.xlogInsertRecord(makeRecord(700, i), SIZE_OF_XLOG_RECORD + 702, 1, 0, i);
    await xlog.xlogFlush(xlog.getInsertRecPtr());
    const end = xlog.getFlushRecPtr();
    const from = end - 3 * XLOG_BLCKSZ - 123;
    const copy = Buffer.alloc(end - from + 10, 0xaa);
    expect(xlog.readFromBuffers(copy, 10, from, end - from)).toBe(true);
    // Before the start, past the written position, or in a page whose slot was reused: no.
    expect(xlog.readFromBuffers(Buffer.alloc(100), 0, start - 50, 100)).toBe(false);
    expect(xlog.readFromBuffers(Buffer.alloc(100), 0, end - 50, 100)).toBe(false);
    expect(xlog.readFromBuffers(Buffer.alloc(100), 0, end - 9 * XLOG_BLCKSZ, 100)).toBe(false);
    await xlog.shutdown();
    const file = fs.readFileSync(segmentPath(dir, 1, 1, SEGMENT));
    expect(copy.subarray(10).equals(file.subarray(from - SEGMENT, end - SEGMENT))).toBe(true);
    expect(copy.subarray(0, 10).equals(Buffer.alloc(10, 0xaa))).toBe(true);
  });
});

describe('SegmentPrecreation', () => {
  it('creates a zero-filled segment a chunk per step, and abandon leaves nothing behind', () => {
    const segment = 4 * 1024 * 1024;
    const ahead = new SegmentPrecreation(dir, 1, 3, segment);
    let steps = 1;
    while (!ahead.step()) steps++;
    // Four chunks of 1 MB, then the rename.
    expect(steps).toBe(5);
    const file = fs.readFileSync(segmentPath(dir, 1, 3, segment));
    expect(file.length).toBe(segment);
    expect(file.equals(Buffer.alloc(segment))).toBe(true);
    expect(new SegmentPrecreation(dir, 1, 3, segment).step()).toBe(true);
    const abandoned = new SegmentPrecreation(dir, 1, 4, segment);
    expect(abandoned.step()).toBe(false);
    abandoned.abandon();
    expect(fs.readdirSync(path.join(dir, 'pg_wal')).sort()).toEqual([path.basename(segmentPath(dir, 1, 3, segment))]);
  });

  it('is due once three quarters of the current segment are written, as PreallocXlogFiles has it', () => {
    const segment = 16 * 1024 * 1024;
    expect(preallocationDue(5 * segment, segment)).toBe(false);
    expect(preallocationDue(5 * segment + segment / 2, segment)).toBe(false);
    expect(preallocationDue(5 * segment + 0.75 * segment - 1, segment)).toBe(false);
    expect(preallocationDue(5 * segment + 0.75 * segment, segment)).toBe(true);
    expect(preallocationDue(6 * segment - 1, segment)).toBe(true);
  });

  it('is left to the last quarter of a segment by the WAL I/O worker, which makes the next one while idle there', async () => {
    const xlog = newXlog(SEGMENT);
    // The worker's idle flag: once it sleeps, it found nothing more to do.
    const ctl = (xlog as unknown as { views: { ctl: Int32Array } }).views.ctl;
    const waitFor = async (what: string, condition: () => boolean) => {
      for (const started = Date.now(); !condition();) {
        if (Date.now() - started > 10_000) throw new Error(`${what} within 10 s`);
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    };
    const fillTo = async (lsn: number) => {
      for (let seed = 0; xlog.getInsertRecPtr() < lsn; seed++) xlog.xlogInsertRecord(makeRecord(20000, seed), SIZE_OF_XLOG_RECORD + 2 + 20000, RmgrId.transaction, XactInfo.commit, seed);
      await xlog.xlogFlush(xlog.getInsertRecPtr());
    };
    const next = segmentPath(dir, 1, 2, SEGMENT);
    await fillTo(SEGMENT * 1.5);
    await waitFor('the WAL I/O worker did not go idle', () => Atomics.load(ctl, CtlIndex.workerSleeping) !== 0);
    expect(fs.existsSync(next)).toBe(false);
    expect(fs.readdirSync(path.join(dir, 'pg_wal')).some((name) => name.startsWith('xlogtemp.'))).toBe(false);
    await fillTo(SEGMENT * 1.8);
    await waitFor('the next segment was not made ahead', () => fs.existsSync(next));
    expect(fs.statSync(next).size).toBe(SEGMENT);
    await xlog.shutdown();
  });

  it('leaves a temporary file when the process dies midway, which the next startup removes (RemoveTempXlogFiles)', () => {
    const segment = 4 * 1024 * 1024;
    // Not abandoned: as after a SIGKILL between two steps.
    expect(new SegmentPrecreation(dir, 1, 5, segment).step()).toBe(false);
    const names = () => fs.readdirSync(path.join(dir, 'pg_wal')).sort();
    expect(names().some((name) => name.startsWith('xlogtemp.'))).toBe(true);
    expect(removeTempXlogFiles(dir)).toBe(1);
    expect(names().some((name) => name.startsWith('xlogtemp.'))).toBe(false);
    expect(removeTempXlogFiles(dir)).toBe(0);
  });
});

describe('SegmentFilePageSource', () => {
  it('on a standby reads no further than the page holding the flushed position, and a whole window once it is complete', async () => {
    const xlog = newXlog();
    for (let i = 0; i < 20; i++) xlog.xlogInsertRecord(makeRecord(1000, i), SIZE_OF_XLOG_RECORD + 1002, 1, 0, i);
    await xlog.shutdown();
    const source = new SegmentFilePageSource(dir, () => 1, SEGMENT);
    // The walreceiver has flushed into the second page: two pages are read, not the zero-filled rest.
    source.available = SEGMENT + XLOG_BLCKSZ + 100;
    const r = new XLogReader({ segmentSize: SEGMENT, systemId: SYSTEM_ID, source });
    r.beginRead((SEGMENT + 40) as Lsn);
    let n = 0;
    while (r.readRecord().ok) n++;
    expect(n).toBe(7);
    expect(source.bytesRead).toBe(2 * XLOG_BLCKSZ);
    // The files complete (crash recovery, archive): from the page holding record 8, one window of
    // 1 MB (the whole test segment).
    source.available = Number.POSITIVE_INFINITY;
    source.invalidate();
    while (r.readRecord().ok) n++;
    expect(n).toBe(20);
    expect(source.bytesRead).toBe(2 * XLOG_BLCKSZ + SEGMENT);
  });
});

describe('XLogReader on a standby\'s newest page', () => {
  it('reads a partial page once for all the records it holds up to the flushed position, and again once that moves', async () => {
    const xlog = newXlog();
    for (let i = 0; i < 20; i++) xlog.xlogInsertRecord(makeRecord(100, i), SIZE_OF_XLOG_RECORD + 102, 1, 0, i);
    await xlog.shutdown();
    const ends: number[] = [];
    const all = reader();
    all.beginRead((SEGMENT + 40) as Lsn);
    for (let result = all.readRecord(); result.ok; result = all.readRecord()) ends.push(result.record.endLsn);
    expect(ends).toHaveLength(20);
    expect(ends[19]! < SEGMENT + XLOG_BLCKSZ).toBe(true);

    // The walreceiver has flushed five records, all on the first page: one read of that page.
    const source = new SegmentFilePageSource(dir, () => 1, SEGMENT);
    source.available = ends[4]!;
    const r = new XLogReader({ segmentSize: SEGMENT, systemId: SYSTEM_ID, source });
    r.beginRead((SEGMENT + 40) as Lsn);
    let n = 0;
    while (r.readRecord().ok) n++;
    expect(n).toBe(5);
    expect(source.bytesRead).toBe(XLOG_BLCKSZ);
    // Asked again with nothing new flushed, it reads nothing more, and says what it waits for.
    const waiting = r.readRecord();
    expect(waiting).toMatchObject({ ok: false, missing: true, lsn: ends[4], neededLsn: ends[4]! + 4 });
    expect(waiting.ok ? '' : waiting.message).toBe(`WAL at ${formatLsn(ends[4]!)} has not been received yet`);
    expect(source.bytesRead).toBe(XLOG_BLCKSZ);
    // Three more flushed: the page is read again (its bytes past the old end may not have been
    // there), once for the three.
    source.available = ends[7]!;
    while (r.readRecord().ok) n++;
    expect(n).toBe(8);
    expect(source.bytesRead).toBe(2 * XLOG_BLCKSZ);
  });
});

describe('SegmentFilePageSource in an encrypted data directory', () => {
  it('decrypts each window once into pages that stay as returned, up to the flushed page on a standby, and forgets a window a short read overwrote', async () => {
    const xlog = newXlog();
    for (let i = 0; i < 20; i++) xlog.xlogInsertRecord(makeRecord(1000, i), SIZE_OF_XLOG_RECORD + 1002, 1, 0, i);
    await xlog.shutdown();
    // The same WAL as the WAL I/O worker of an encrypted directory writes it: under timeline 1.
    const file = segmentPath(dir, 1, 1, SEGMENT);
    const plaintext = fs.readFileSync(file);
    const keys = generateDataKeys();
    fs.writeFileSync(file, new WalCipher(keys.walKey).applyToNew(1, SEGMENT, plaintext));
    registerDataKeys(dir, keys);
    try {
      const source = new SegmentFilePageSource(dir, () => 1, SEGMENT);
      source.available = SEGMENT + XLOG_BLCKSZ + 100;
      const first = source.readPage(SEGMENT as Lsn)!;
      expect(first.equals(plaintext.subarray(0, XLOG_BLCKSZ))).toBe(true);
      const r = new XLogReader({ segmentSize: SEGMENT, systemId: SYSTEM_ID, source });
      r.beginRead((SEGMENT + 40) as Lsn);
      let n = 0;
      while (r.readRecord().ok) n++;
      expect(n).toBe(7);
      // The first seven records came from the window read first (two pages); the walreceiver
      // flushed further: from the page holding record 8, one window, decrypted once.
      source.available = Number.POSITIVE_INFINITY;
      source.invalidate();
      while (r.readRecord().ok) n++;
      expect(n).toBe(20);
      expect(source.bytesRead).toBe(2 * XLOG_BLCKSZ + SEGMENT);
      // A page returned before the refills is the cipher's output of its window: unchanged.
      expect(first.equals(plaintext.subarray(0, XLOG_BLCKSZ))).toBe(true);
      expect(source.readPage((SEGMENT + 5 * XLOG_BLCKSZ) as Lsn)!.equals(plaintext.subarray(5 * XLOG_BLCKSZ, 6 * XLOG_BLCKSZ))).toBe(true);

      // A file whose last page is cut short: the window read from the start covers every whole
      // page; the short read of the last one reports no page and leaves the window's pages intact
      // (it once read into the window itself, which then served the cut page's bytes as page 0).
      fs.truncateSync(file, SEGMENT - 100);
      source.closeFile();
      expect(source.readPage(SEGMENT as Lsn)!.equals(plaintext.subarray(0, XLOG_BLCKSZ))).toBe(true);
      expect(source.readPage((2 * SEGMENT - XLOG_BLCKSZ) as Lsn)).toBeNull();
      expect(source.readPage(SEGMENT as Lsn)!.equals(plaintext.subarray(0, XLOG_BLCKSZ))).toBe(true);
    } finally {
      unregisterDataKeys(dir);
    }
  });
});

describe('XLogReader stops at invalid WAL', () => {
  async function writeRecords(count: number, size: number): Promise<Array<{ start: Lsn; end: Lsn }>> {
    const xlog = newXlog();
    const out = [];
    for (let i = 0; i < count; i++) out.push(xlog.xlogInsertRecord(makeRecord(size, i), SIZE_OF_XLOG_RECORD + 2 + size, 1, 0, i));
    await xlog.shutdown();
    return out;
  }

  function corrupt(lsn: number, mutate: (b: Buffer, offset: number) => void): void {
    const file = segmentPath(dir, 1, Math.floor(lsn / SEGMENT), SEGMENT);
    const bytes = fs.readFileSync(file);
    mutate(bytes, lsn % SEGMENT);
    fs.writeFileSync(file, bytes);
  }

  function readAll(from: Lsn): { count: number; error: string } {
    const r = reader();
    r.beginRead(from);
    let count = 0;
    for (;;) {
      const result = r.readRecord();
      if (!result.ok) return { count, error: result.message };
      count++;
    }
  }

  it('at a bad CRC', async () => {
    const records = await writeRecords(20, 200);
    corrupt(records[7]!.start + 100, (b, o) => { b[o] ^= 0x01; });
    expect(readAll(records[0]!.start)).toEqual({ count: 7, error: expect.stringMatching(/incorrect resource manager data checksum/) });
  });

  it('at a wrong prev-link', async () => {
    const records = await writeRecords(20, 200);
    corrupt(records[5]!.start + 8, (b, o) => { b.writeUInt32LE(0x40, o); });
    expect(readAll(records[0]!.start).error).toMatch(/incorrect prev-link/);
  });

  it('at an impossible length', async () => {
    const records = await writeRecords(20, 200);
    corrupt(records[3]!.start, (b, o) => { b.writeUInt32LE(5, o); });
    expect(readAll(records[0]!.start)).toEqual({ count: 3, error: expect.stringMatching(/invalid record length/) });
  });

  it('at a page header with a bad magic number or address', async () => {
    const records = await writeRecords(10, 9000);
    const secondPage = SEGMENT + XLOG_BLCKSZ;
    corrupt(secondPage, (b, o) => { b.writeUInt16LE(0x1234, o); });
    expect(readAll(records[0]!.start).error).toMatch(/invalid magic number 1234/);
    corrupt(secondPage, (b, o) => { b.writeUInt16LE(0xd1a5, o); b.writeUInt32LE(0, o + 8); });
    expect(readAll(records[0]!.start).error).toMatch(/unexpected pageaddr/);
  });

  it('at WAL from another system', async () => {
    const records = await writeRecords(3, 100);
    const source = new SegmentFilePageSource(dir, () => 1, SEGMENT);
    const other = new XLogReader({ segmentSize: SEGMENT, systemId: 42n, source });
    other.beginRead(records[0]!.start);
    const result = other.readRecord();
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toMatch(/different database system/);
  });

  it('at a timeline going back from one page to a later one, but not at a page read again', async () => {
    const records = await writeRecords(12, 3000);
    const page = (n: number): number => SEGMENT + n * XLOG_BLCKSZ;
    // A promotion inside page 1: pages from 2 on were started on timeline 2.
    for (let n = 2; n < 5; n++) corrupt(page(n), (b, o) => { b.writeUInt32LE(2, o + 4); });
    const r = reader();
    // The first record whose last byte is on page 2 or later, then one that starts on page 1:
    // redo starting before the checkpoint record's last page reads page 1 again, after page 2.
    const late = records.findIndex((rec) => rec.end > page(2));
    r.beginRead(records[late]!.start);
    expect(r.readRecord().ok).toBe(true);
    const early = records.findIndex((rec) => rec.start >= page(1) && rec.start < page(2));
    r.beginRead(records[early]!.start);
    const again = r.readRecord();
    expect(again.ok, again.ok ? '' : again.message).toBe(true);
    // Going forward, a later page on an older timeline is out of sequence.
    corrupt(page(4), (b, o) => { b.writeUInt32LE(1, o + 4); });
    expect(readAll(records[0]!.start).error).toMatch(/out-of-sequence timeline ID 1 \(after 2\)/);
  });

  it('at a missing continuation', async () => {
    const records = await writeRecords(4, 20000);
    // Zero the page where record 1 continues: a torn tail.
    const page = records[1]!.start - (records[1]!.start % XLOG_BLCKSZ) + XLOG_BLCKSZ;
    corrupt(page, (b, o) => { b.fill(0, o, o + XLOG_BLCKSZ); });
    const result = readAll(records[0]!.start);
    expect(result.count).toBe(1);
    expect(result.error).toMatch(/invalid magic number 0000/);
  });
});
