import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bootstrapDataDirectory } from './bootstrap.js';
import { readControlFile } from './control-file.js';
import { Database, type DatabaseOptions } from './database.js';
import type { Lsn } from './lsn.js';
import { prepareSwitchSpare, startNewTimeline } from './promote.js';
import { STANDBY_SIGNAL_FILE, WalRecovery } from './wal-recovery.js';
import { xlogArchiveForceDone } from './wal/archive-status.js';
import { historyFilePath, readTimeLineHistory } from './wal/timeline.js';
import { xlogFileName } from './wal/xlog-internal.js';
import { generateDataKeys } from './crypto/key-file.js';
import { registerDataKeys, unregisterDataKeys } from './crypto/registry.js';
import { WalCipher } from './crypto/wal-cipher.js';

const SEGMENT = 1024 * 1024;
let root: string;

function options(dataDir: string): DatabaseOptions {
  return {
    dataDir, sharedBuffersBytes: 64 * 8192, walBuffersBytes: 64 * 8192, fsync: true, fullPageWrites: true,
    synchronousCommit: 'on', memberName: path.basename(dataDir), walKeepBytes: 0, log: () => undefined,
  };
}

async function put(db: Database, from: number, to: number, tag: string): Promise<void> {
  for (let i = from; i < to; i++) {
    await db.txn({ onSuccess: [{ kind: 'put', key: Buffer.from(`k${String(i).padStart(5, '0')}`), value: Buffer.from(`${tag}-${i}`) }] });
  }
}

/** Ships the primary's WAL segments to the standby's pg_wal (what streaming or the archive would do). */
function shipWal(from: string, to: string): void {
  for (const name of fs.readdirSync(path.join(from, 'pg_wal'))) {
    if (/^[0-9A-F]{24}$/.test(name)) fs.copyFileSync(path.join(from, 'pg_wal', name), path.join(to, 'pg_wal', name));
  }
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-promote-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('standby replay and promotion', () => {
  it('replays a primary\'s WAL as a standby, serves consistent reads, then promotes to a new timeline that survives a crash', async () => {
    const primaryDir = path.join(root, 'primary');
    const standbyDir = path.join(root, 'standby');
    await bootstrapDataDirectory(primaryDir, { walSegmentSize: SEGMENT });
    let primary = await Database.open(options(primaryDir));
    await put(primary, 0, 500, 'a');
    await primary.shutdown();
    fs.cpSync(primaryDir, standbyDir, { recursive: true });
    fs.writeFileSync(path.join(standbyDir, STANDBY_SIGNAL_FILE), '');

    primary = await Database.open(options(primaryDir));
    await put(primary, 500, 3000, 'b');
    await primary.abort();
    shipWal(primaryDir, standbyDir);

    const recovery = WalRecovery.open({ dataDir: standbyDir, sharedBuffersBytes: 64 * 8192, log: () => undefined });
    expect(recovery.standbyMode).toBe(true);
    let stop = recovery.replayAvailable(1000);
    while (stop.kind === 'budget') stop = recovery.replayAvailable(1000);
    // The rest of the segment is zero: for a standby that is "wait for more WAL", not an error.
    expect(recovery.consistent).toBe(true);
    const relNode = recovery.store.lookupTable('default')!;
    expect(recovery.store.scan(relNode, { limit: 10000 }).entries.length).toBe(3000);
    expect(recovery.store.get(relNode, Buffer.from('k02999'))?.value.toString()).toBe('b-2999');
    expect(readControlFile(standbyDir).state).toBe(5); // in archive recovery

    const promoted = await Database.finishRecovery(recovery, options(standbyDir), { promote: true });
    expect(promoted.timeline).toBe(2);
    expect(fs.existsSync(path.join(standbyDir, STANDBY_SIGNAL_FILE))).toBe(false);
    const history = readTimeLineHistory(standbyDir, 2);
    expect(history.map((h) => h.tli)).toEqual([2, 1]);
    expect(history[1]!.end).toBe(recovery.replayEndLsn);
    expect(fs.readFileSync(historyFilePath(standbyDir, 2), 'utf8')).toMatch(/^1\t0\/[0-9A-F]+\tno recovery target specified/m);
    await put(promoted, 3000, 3500, 'c');
    const result = await promoted.txn({ onSuccess: [{ kind: 'put', key: Buffer.from('after'), value: Buffer.from('promotion') }] });
    expect(result.timeline).toBe(2);
    await promoted.abort();

    const again = await Database.open(options(standbyDir));
    expect(again.timeline).toBe(2);
    expect((await again.range({ limit: 10000 })).entries.length).toBe(3501);
    expect((await again.get(undefined, Buffer.from('k03499')))?.value.toString()).toBe('c-3499');
    await again.shutdown();
    expect(readControlFile(standbyDir).timeline).toBe(2);
  });
});

describe('startNewTimeline', () => {
  it('keeps the old timeline\'s switch segment whole as .partial when archiving, and only renames it otherwise', async () => {
    const dir = path.join(root, 'node');
    await bootstrapDataDirectory(dir, { walSegmentSize: SEGMENT });
    const control = readControlFile(dir);
    const walFile = (tli: number, segNo: number) => path.join(dir, 'pg_wal', xlogFileName(tli, segNo, SEGMENT));
    const oldContent = Buffer.alloc(SEGMENT, 0xab);
    // WAL received past the switch point stays in the .partial, as PostgreSQL's rename leaves it.
    oldContent.fill(0xcd, 0x2345);
    fs.writeFileSync(walFile(1, 3), oldContent);

    expect(startNewTimeline(dir, control, 1, (3 * SEGMENT + 0x2345) as Lsn, () => undefined, { keepPartialSegment: true })).toBe(2);
    expect(fs.existsSync(walFile(1, 3))).toBe(false);
    expect(fs.readFileSync(`${walFile(1, 3)}.partial`).equals(oldContent)).toBe(true);
    expect(fs.readFileSync(walFile(2, 3)).equals(oldContent)).toBe(true);
    expect(fs.readdirSync(path.join(dir, 'pg_wal')).filter((n) => n.startsWith('xlogtemp'))).toEqual([]);

    // Archiving off: renamed, no copy.
    fs.writeFileSync(walFile(2, 5), oldContent);
    expect(startNewTimeline(dir, control, 2, (5 * SEGMENT + 8) as Lsn, () => undefined)).toBe(3);
    expect(fs.existsSync(`${walFile(2, 5)}.partial`)).toBe(false);
    expect(fs.existsSync(walFile(3, 5))).toBe(true);

    // A switch segment that already has a status was complete (restored from the archive): no .partial.
    fs.writeFileSync(walFile(3, 6), oldContent);
    xlogArchiveForceDone(dir, xlogFileName(3, 6, SEGMENT));
    expect(startNewTimeline(dir, control, 3, (6 * SEGMENT + 8) as Lsn, () => undefined, { keepPartialSegment: true })).toBe(4);
    expect(fs.existsSync(`${walFile(3, 6)}.partial`)).toBe(false);
  });

  it('re-encrypts only the bytes before the switch point under the new timeline; the rest of the new file is clear zeros', async () => {
    const dir = path.join(root, 'encrypted');
    await bootstrapDataDirectory(dir, { walSegmentSize: SEGMENT });
    const control = readControlFile(dir);
    const keys = generateDataKeys();
    registerDataKeys(dir, keys);
    try {
      const cipher = new WalCipher(keys.walKey);
      const walFile = (tli: number, segNo: number) => path.join(dir, 'pg_wal', xlogFileName(tli, segNo, SEGMENT));
      const switchOffset = 0x12345; // mid page, mid CTR block
      const plaintext = Buffer.from(Array.from({ length: switchOffset }, (_, i) => (i * 7 + 3) & 0xff));
      const segmentLsn = 3 * SEGMENT;
      const old = Buffer.alloc(SEGMENT, 0xcd); // received past the switch point: never carried over
      cipher.applyToNew(1, segmentLsn, plaintext).copy(old, 0);
      fs.writeFileSync(walFile(1, 3), old);

      expect(startNewTimeline(dir, control, 1, (segmentLsn + switchOffset) as Lsn, () => undefined)).toBe(2);
      const switched = fs.readFileSync(walFile(2, 3));
      expect(switched.length).toBe(SEGMENT);
      expect(switched.subarray(0, switchOffset).equals(cipher.applyToNew(2, segmentLsn, plaintext))).toBe(true);
      expect(switched.subarray(0, switchOffset).equals(old.subarray(0, switchOffset))).toBe(false);
      expect(switched.subarray(switchOffset).equals(Buffer.alloc(SEGMENT - switchOffset))).toBe(true);
      expect(fs.existsSync(walFile(1, 3))).toBe(false);
      expect(fs.readdirSync(path.join(dir, 'pg_wal')).filter((n) => n.startsWith('xlogtemp'))).toEqual([]);

      // Crash recovery's switch (a torn tail) keeps the old file as it was.
      fs.writeFileSync(walFile(2, 4), old);
      const oldOn2 = Buffer.from(old);
      expect(startNewTimeline(dir, control, 2, (4 * SEGMENT + 8192) as Lsn, () => undefined, { crashRecoveryReason: 'test' })).toBe(3);
      expect(fs.readFileSync(walFile(2, 4)).equals(oldOn2)).toBe(true);
      expect(fs.readFileSync(walFile(3, 4)).subarray(8192).equals(Buffer.alloc(SEGMENT - 8192))).toBe(true);

      // A standby's spare, made in the background: promotion writes into it and renames it.
      const spare = path.join(dir, 'pg_wal', 'xlogtemp.switch-spare');
      expect(await prepareSwitchSpare(dir, SEGMENT)).toBe(false); // not a standby (no standby.signal): none left
      expect(fs.readdirSync(path.join(dir, 'pg_wal')).filter((n) => n.startsWith('xlogtemp'))).toEqual([]);
      fs.writeFileSync(path.join(dir, STANDBY_SIGNAL_FILE), '');
      expect(await prepareSwitchSpare(dir, SEGMENT)).toBe(true);
      expect(fs.readFileSync(spare).equals(Buffer.alloc(SEGMENT))).toBe(true);
      const oldOn3 = Buffer.alloc(SEGMENT, 0xcd);
      cipher.applyToNew(3, 7 * SEGMENT, plaintext).copy(oldOn3, 0);
      fs.writeFileSync(walFile(3, 7), oldOn3);
      expect(startNewTimeline(dir, control, 3, (7 * SEGMENT + switchOffset) as Lsn, () => undefined)).toBe(4);
      expect(fs.existsSync(spare)).toBe(false);
      const fromSpare = fs.readFileSync(walFile(4, 7));
      expect(fromSpare.subarray(0, switchOffset).equals(cipher.applyToNew(4, 7 * SEGMENT, plaintext))).toBe(true);
      expect(fromSpare.subarray(switchOffset).equals(Buffer.alloc(SEGMENT - switchOffset))).toBe(true);

      // A segment that ends before its switch point is damaged: refused, nothing written.
      fs.writeFileSync(walFile(4, 5), old.subarray(0, 4096));
      expect(() => startNewTimeline(dir, control, 4, (5 * SEGMENT + 8192) as Lsn, () => undefined)).toThrow(/ends at byte 4096, before the switch point at byte 8192/);
      expect(fs.existsSync(walFile(5, 5))).toBe(false);
    } finally {
      unregisterDataKeys(dir);
    }
  });
});
