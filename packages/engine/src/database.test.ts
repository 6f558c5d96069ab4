import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bootstrapDataDirectory } from './bootstrap.js';
import { CheckpointFlags } from './checkpoint.js';
import { readControlFile, controlFilePath } from './control-file.js';
import { Database, type DatabaseOptions } from './database.js';
import { WalshipError } from './errors.js';
import type { Lsn } from './lsn.js';
import { listSegments, segmentPath } from './wal/wal-files.js';
import { XLOG_BLCKSZ } from './constants.js';
import { dumpWal, type DumpedRecord } from './waldump.js';
import { WalRecovery } from './wal-recovery.js';

const SEGMENT = 1024 * 1024;
let dir: string;
const logs: string[] = [];

function options(): DatabaseOptions {
  return {
    dataDir: dir, sharedBuffersBytes: 64 * 8192, walBuffersBytes: 64 * 8192, fsync: true, fullPageWrites: true,
    synchronousCommit: 'on', memberName: 'test', walKeepBytes: 0, log: (level, message) => logs.push(`${level}: ${message}`),
  };
}

beforeEach(async () => {
  dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'walship-db-')), 'data');
  logs.length = 0;
  await bootstrapDataDirectory(dir, { walSegmentSize: SEGMENT });
});
afterEach(() => fs.rmSync(path.dirname(dir), { recursive: true, force: true }));

const key = (i: number) => Buffer.from(`key-${String(i).padStart(6, '0')}`);
const value = (i: number) => Buffer.from(`value-${i}-`.padEnd(100 + (i % 50), 'x'));

async function writeKeys(db: Database, from: number, to: number): Promise<Lsn[]> {
  const lsns: Lsn[] = [];
  for (let i = from; i < to; i++) lsns.push((await db.txn({ onSuccess: [{ kind: 'put', key: key(i), value: value(i) }] })).lsn);
  return lsns;
}

/** Simulates a crash: nothing more is written, no checkpoint. */
async function crash(db: Database): Promise<void> {
  await db.abort();
}

function flipByte(lsn: number): void {
  const control = readControlFile(dir);
  const file = segmentPath(dir, control.timeline, Math.floor(lsn / SEGMENT), SEGMENT);
  const bytes = fs.readFileSync(file);
  bytes[lsn % SEGMENT] ^= 0x40;
  fs.writeFileSync(file, bytes);
}

describe('Database', () => {
  it('writes heartbeats as unimportant NOOP records: described by waldump, stamped for replay, and no reason for a timed checkpoint', async () => {
    const db = await Database.open(options());
    await writeKeys(db, 0, 3);
    expect((await db.checkpoint(CheckpointFlags.immediate)).skipped).toBe(false);
    // Far ahead of any commit's time, so that the replayed timestamp can only be the heartbeat's.
    const beatTime = Date.UTC(2100, 0, 2, 3, 4, 5, 678);
    const end = db.logHeartbeat(beatTime);
    await db.xlog.xlogFlush(end);
    expect(db.xlog.getInsertRecPtr()).toBe(end);
    // Only heartbeats since the last checkpoint: the node is idle, as PostgreSQL's XLOG_MARK_UNIMPORTANT makes it.
    expect((await db.checkpoint(CheckpointFlags.immediate)).skipped).toBe(true);
    await writeKeys(db, 3, 4);
    expect((await db.checkpoint(CheckpointFlags.immediate)).skipped).toBe(false);
    const last = db.logHeartbeat(beatTime + 1000);
    await db.xlog.xlogFlush(last);
    await crash(db);

    const records: DumpedRecord[] = [];
    const dump = dumpWal(dir);
    for (let next = dump.next(); !next.done; next = dump.next()) records.push(next.value);
    const beats = records.filter((r) => r.description.startsWith('NOOP heartbeat'));
    expect(beats.map((r) => [r.rmgr, r.description])).toEqual([
      ['XLOG', 'NOOP heartbeat 2100-01-02 03:04:05.678 UTC'],
      ['XLOG', 'NOOP heartbeat 2100-01-02 03:04:06.678 UTC'],
    ]);

    // Replay changes no page for it, and takes its time as the last replayed timestamp.
    const recovery = WalRecovery.open({ dataDir: dir, sharedBuffersBytes: 64 * 8192, log: () => undefined });
    try {
      while (recovery.replayAvailable(1000).kind === 'budget');
      expect(recovery.endOfReplayedWal).toBe(last);
      expect(recovery.lastReplayedTimestamp).toBe(beatTime + 1000);
      expect(recovery.lastCommitTime).toBeLessThan(beatTime);
    } finally {
      recovery.close();
    }
  });

  it('recovers every committed transaction after a crash, with revisions equal to commit LSNs', async () => {
    const db = await Database.open(options());
    const lsns = await writeKeys(db, 0, 2000);
    await crash(db);
    const again = await Database.open(options());
    expect(logs.some((l) => l.includes('automatic recovery in progress'))).toBe(true);
    for (let i = 0; i < 2000; i += 97) {
      const entry = await again.get(undefined, key(i));
      expect(entry?.value.equals(value(i))).toBe(true);
      expect(entry?.revision).toBe(lsns[i]);
    }
    expect((await again.range({ limit: 5000 })).entries.length).toBe(2000);
    await again.shutdown();
    expect(readControlFile(dir).state).toBe(1);
  });

  it('applies a transaction atomically: compares, then all operations or none', async () => {
    const db = await Database.open(options());
    await writeKeys(db, 0, 10);
    const first = await db.get(undefined, key(1));
    const ok = await db.txn({
      compares: [{ kind: 'revision', key: key(1), op: 'eq', revision: first!.revision }],
      onSuccess: [{ kind: 'put', key: key(1), value: Buffer.from('new') }, { kind: 'delete', key: key(2) }],
      onFailure: [{ kind: 'put', key: Buffer.from('failed'), value: Buffer.from('1') }],
    });
    expect(ok.succeeded).toBe(true);
    expect(ok.counts).toEqual([1, 1]);
    const stale = await db.txn({
      compares: [{ kind: 'revision', key: key(1), op: 'eq', revision: first!.revision }],
      onSuccess: [{ kind: 'put', key: key(1), value: Buffer.from('lost') }],
      onFailure: [{ kind: 'put', key: Buffer.from('failed'), value: Buffer.from('1') }],
    });
    expect(stale.succeeded).toBe(false);
    expect((await db.get(undefined, key(1)))?.value.toString()).toBe('new');
    expect(await db.get(undefined, key(2))).toBeNull();
    // A transaction that fails half-way (key too large in its second operation) changes nothing.
    await expect(db.txn({ onSuccess: [{ kind: 'put', key: key(3), value: Buffer.from('half') }, { kind: 'put', key: Buffer.alloc(2000), value: Buffer.from('x') }] }))
      .rejects.toThrow(/key/);
    expect((await db.get(undefined, key(3)))?.value.equals(value(3))).toBe(true);
    await crash(db);
    const again = await Database.open(options());
    expect((await again.get(undefined, key(1)))?.value.toString()).toBe('new');
    expect((await again.get(undefined, key(3)))?.value.equals(value(3))).toBe(true);
    expect(await again.get(undefined, Buffer.from('failed'))).not.toBeNull();
    await again.shutdown();
  });

  it('leaves no table behind when the transaction that created it fails, though it had looked the new table up', async () => {
    const db = await Database.open(options());
    const table = 'orders';
    await expect(db.txn({ onSuccess: [
      { kind: 'put', table, key: key(1), value: value(1) },
      { kind: 'put', table, key: key(2), value: value(2) },
      { kind: 'put', table, key: Buffer.alloc(2000), value: Buffer.from('x') },
    ] })).rejects.toThrow(/key/);
    expect(db.listTables()).toEqual(['default']);
    expect(await db.get(table, key(1))).toBeNull();
    expect((await db.range({ table })).entries).toEqual([]);
    await db.txn({ onSuccess: [{ kind: 'put', table, key: key(3), value: value(3) }] });
    expect(db.listTables()).toEqual(['default', table]);
    expect((await db.range({ table })).entries.map((e) => e.key)).toEqual([key(3)]);
    await crash(db);
    const again = await Database.open(options());
    expect((await again.range({ table })).entries.map((e) => e.key)).toEqual([key(3)]);
    await again.shutdown();
  });

  it('recovers a torn tail quietly: garbage after the last record is not valid WAL', async () => {
    const db = await Database.open(options());
    await writeKeys(db, 0, 300);
    const end = db.xlog.getInsertRecPtr();
    await crash(db);
    // A half-written record after the end: random bytes in the rest of the page.
    const control = readControlFile(dir);
    const file = segmentPath(dir, control.timeline, Math.floor(end / SEGMENT), SEGMENT);
    const bytes = fs.readFileSync(file);
    const offset = end % SEGMENT;
    for (let i = offset; i < offset - (offset % XLOG_BLCKSZ) + XLOG_BLCKSZ; i++) bytes[i] = (i * 7919) & 0xff;
    fs.writeFileSync(file, bytes);
    const again = await Database.open(options());
    expect((await again.range({ limit: 1000 })).entries.length).toBe(300);
    // New WAL is written over the torn tail, and survives another crash.
    await writeKeys(again, 300, 400);
    await crash(again);
    const third = await Database.open(options());
    expect((await third.range({ limit: 1000 })).entries.length).toBe(400);
    await third.shutdown();
  });

  it('refuses to start when a record in the middle of the WAL is corrupt, and says where', async () => {
    const db = await Database.open(options());
    const lsns = await writeKeys(db, 0, 3000);
    await crash(db);
    const victim = lsns[1000]! - 40; // inside the record that ends at lsns[1000]
    flipByte(victim);
    const error = await Database.open(options()).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(WalshipError);
    expect((error as WalshipError).message).toMatch(/^WAL is corrupt at 0\/[0-9A-F]+/);
    expect((error as WalshipError).detail).toMatch(/Valid WAL follows at/);
    // Nothing was changed: undoing the flip makes the node start with everything.
    flipByte(victim);
    const again = await Database.open(options());
    expect((await again.range({ limit: 5000 })).entries.length).toBe(3000);
    await again.shutdown();
  });

  it('refuses to start when the checkpoint record is corrupt', async () => {
    const db = await Database.open(options());
    await writeKeys(db, 0, 50);
    await db.checkpoint(CheckpointFlags.force | CheckpointFlags.immediate);
    await crash(db);
    flipByte(readControlFile(dir).checkpointLsn + 30);
    await expect(Database.open(options())).rejects.toThrow(/could not locate a valid checkpoint record/);
  });

  it('refuses a corrupt control file, saying why', async () => {
    const bytes = fs.readFileSync(controlFilePath(dir));
    bytes[20] ^= 1;
    fs.writeFileSync(controlFilePath(dir), bytes);
    await expect(Database.open(options())).rejects.toThrow(/could not read control file .* the file is corrupt/);
  });

  it('paces a spread checkpoint through its write delay: told the share written, waited for between batches', async () => {
    const db = await Database.open({ ...options(), sharedBuffersBytes: 1024 * 8192 });
    for (let t = 0; t < 5; t++) {
      await db.txn({ onSuccess: Array.from({ length: 500 }, (_, i) => ({ kind: 'put' as const, key: key(t * 500 + i), value: Buffer.alloc(1000, t) })) });
    }
    const dirty = db.pool.stats().dirty;
    expect(dirty).toBeGreaterThan(128);
    const before = readControlFile(dir).checkpointLsn;
    const progress: number[] = [];
    let release: () => void = () => undefined;
    let held = true;
    const running = db.checkpoint(CheckpointFlags.causeTime, async (share) => {
      progress.push(share);
      // The first batch's delay holds the checkpoint until the test lets it go.
      if (held) await new Promise<void>((resolve) => { release = resolve; });
    });
    for (let i = 0; i < 1000 && progress.length === 0; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(progress).toEqual([64 / dirty]);
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(progress).toHaveLength(1);
    expect(readControlFile(dir).checkpointLsn).toBe(before);
    held = false;
    release();
    const result = await running;
    expect(result.buffersWritten).toBe(dirty);
    expect(progress).toEqual(Array.from({ length: Math.floor(dirty / 64) }, (_, i) => ((i + 1) * 64) / dirty));
    expect(readControlFile(dir).checkpointLsn).toBe(result.lsn);
    await db.shutdown();
  });

  it('checkpoints remove WAL segments that recovery no longer needs', async () => {
    const db = await Database.open(options());
    // Enough WAL for a few segments (the next one is no longer made ahead before it is due).
    let rounds = 0;
    while (listSegments(dir, SEGMENT).length <= 3) {
      await writeKeys(db, rounds * 2000, rounds * 2000 + 2000);
      rounds++;
    }
    const result = await db.checkpoint(CheckpointFlags.force | CheckpointFlags.immediate);
    expect(result.segmentsRemoved).toBeGreaterThan(0);
    const control = readControlFile(dir);
    expect(control.checkpointLsn).toBe(result.lsn);
    expect(control.redoLsn).toBe(result.redo);
    // The oldest segment left holds the redo point.
    expect(listSegments(dir, SEGMENT)[0]!.segNo).toBe(Math.floor(result.redo / SEGMENT));
    await crash(db);
    const again = await Database.open(options());
    expect((await again.range({ limit: 100_000 })).entries.length).toBe(rounds * 2000);
    await again.shutdown();
  });
});

describe('Database recovery on the last written page', () => {
  it('refuses to start when a damaged record is followed by valid ones on the same page', async () => {
    const db = await Database.open(options());
    const lsns = await writeKeys(db, 0, 200);
    await crash(db);
    // A record on the last written page with two more records after it: no later page exists,
    // so only a look within the page can tell this from a torn tail.
    const lastPage = Math.floor((lsns[199]! - 1) / XLOG_BLCKSZ);
    let victim = -1;
    for (let i = 197; i > 0; i--) {
      const start = lsns[i - 1]!;
      if (Math.floor(start / XLOG_BLCKSZ) !== lastPage) break;
      if (start % XLOG_BLCKSZ !== 0) victim = start + 30;
    }
    expect(victim).toBeGreaterThan(0);
    flipByte(victim);
    await expect(Database.open(options())).rejects.toThrow(/WAL is corrupt at/);
  });
});
