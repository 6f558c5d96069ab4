/**
 * full_page_writes as the WAL states it, which is all a standby knows of it: a changed setting is
 * logged (XLOG_FPW_CHANGE) before the first record built under it, a checkpoint record carries the
 * value at its redo point, and replay remembers the last record that turned it off. Also the
 * restartpoint's side of a base backup taken on a standby: the WAL a running backup holds stays.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bootstrapDataDirectory } from './bootstrap.js';
import { CheckpointFlags, createRestartPoint } from './checkpoint.js';
import { readControlFile } from './control-file.js';
import { Database, type DatabaseOptions } from './database.js';
import type { Lsn } from './lsn.js';
import { dumpWal, type DumpedRecord } from './waldump.js';
import { BACKUP_LABEL_FILE, STANDBY_SIGNAL_FILE, WalRecovery, formatBackupLabel, readBackupLabel } from './wal-recovery.js';
import { listSegments } from './wal/wal-files.js';

const SEGMENT = 1024 * 1024;
let root: string;

function options(dataDir: string): DatabaseOptions {
  return {
    dataDir, sharedBuffersBytes: 64 * 8192, walBuffersBytes: 64 * 8192, fsync: true, fullPageWrites: true,
    synchronousCommit: 'on', memberName: path.basename(dataDir), walKeepBytes: 0, log: () => undefined,
  };
}

/** Puts keys `from` to `to`, up to `perTransaction` in one transaction; returns the last commit LSN. */
async function put(db: Database, from: number, to: number, tag: string, perTransaction = 1): Promise<Lsn> {
  let last = 0 as Lsn;
  for (let i = from; i < to; i += perTransaction) {
    const keys = Array.from({ length: Math.min(perTransaction, to - i) }, (_, n) => i + n);
    last = (await db.txn({ onSuccess: keys.map((k) => ({ kind: 'put' as const, key: Buffer.from(`k${String(k).padStart(5, '0')}`), value: Buffer.from(`${tag}-${k}`.padEnd(200, '.')) })) })).lsn;
  }
  return last;
}

function shipWal(from: string, to: string): void {
  for (const name of fs.readdirSync(path.join(from, 'pg_wal'))) {
    if (/^[0-9A-F]{24}$/.test(name)) fs.copyFileSync(path.join(from, 'pg_wal', name), path.join(to, 'pg_wal', name));
  }
}

function records(dataDir: string): DumpedRecord[] {
  return [...dumpWal(dataDir)];
}

function replayAll(recovery: WalRecovery): void {
  let stop = recovery.replayAvailable(1000);
  while (stop.kind === 'budget') stop = recovery.replayAvailable(1000);
}

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-fpw-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('full_page_writes in the WAL', () => {
  it('logs each change before the first record built under it, and a checkpoint states the value at its redo point', async () => {
    const dir = path.join(root, 'primary');
    await bootstrapDataDirectory(dir, { walSegmentSize: SEGMENT });
    const db = await Database.open(options(dir));
    await put(db, 0, 50, 'a');
    await db.checkpoint(CheckpointFlags.force | CheckpointFlags.wait);
    const insertBefore = db.xlog.getInsertRecPtr();
    db.xlog.fullPageWrites = false;
    // Nothing is logged until a record depends on the setting.
    expect(db.xlog.getInsertRecPtr()).toBe(insertBefore);
    const offCommit = await put(db, 0, 1, 'b');
    await db.checkpoint(CheckpointFlags.force | CheckpointFlags.wait);
    db.xlog.fullPageWrites = true;
    const onCommit = await put(db, 1, 2, 'c');
    await db.shutdown();

    const all = records(dir);
    const fpw = all.filter((r) => r.description.startsWith('FPW_CHANGE'));
    expect(fpw.map((r) => r.description)).toEqual(['FPW_CHANGE false', 'FPW_CHANGE true']);
    // The off record comes right before the commit built without images, which has none even
    // though its page was last changed before the checkpoint's redo point.
    const offIndex = all.indexOf(fpw[0]!);
    expect(all[offIndex + 1]!.endLsn).toBe(offCommit);
    expect(all[offIndex + 1]!.fullPageImages).toBe(0);
    const onIndex = all.indexOf(fpw[1]!);
    expect(all[onIndex + 1]!.endLsn).toBe(onCommit);
    expect(all[onIndex + 1]!.fullPageImages).toBeGreaterThan(0);
    const checkpoints = all.filter((r) => r.description.startsWith('CHECKPOINT_ONLINE'));
    expect(checkpoints.map((r) => /fpw (true|false)/.exec(r.description)![1])).toEqual(['true', 'false']);
    expect(all.filter((r) => r.description.startsWith('CHECKPOINT_SHUTDOWN')).at(-1)!.description).toContain('fpw true');
    expect(readControlFile(dir).fullPageWrites).toBe(true);
  });

  it('a restart with another full_page_writes logs the change before the first record', async () => {
    const dir = path.join(root, 'primary');
    await bootstrapDataDirectory(dir, { walSegmentSize: SEGMENT });
    let db = await Database.open(options(dir));
    await put(db, 0, 10, 'a');
    await db.shutdown();
    db = await Database.open({ ...options(dir), fullPageWrites: false });
    await put(db, 10, 11, 'b');
    await db.shutdown();
    const descriptions = records(dir).map((r) => r.description);
    expect(descriptions.filter((d) => d.startsWith('FPW_CHANGE'))).toEqual(['FPW_CHANGE false']);
    expect(descriptions.at(-1)).toMatch(/^CHECKPOINT_SHUTDOWN .*fpw false/);
  });

  it('replay remembers the last record that turned it off, and a restartpoint records its checkpoint\'s value', async () => {
    const primaryDir = path.join(root, 'primary');
    const standbyDir = path.join(root, 'standby');
    await bootstrapDataDirectory(primaryDir, { walSegmentSize: SEGMENT });
    let primary = await Database.open(options(primaryDir));
    await put(primary, 0, 100, 'a');
    await primary.shutdown();
    fs.cpSync(primaryDir, standbyDir, { recursive: true });
    fs.writeFileSync(path.join(standbyDir, STANDBY_SIGNAL_FILE), '');

    primary = await Database.open(options(primaryDir));
    primary.xlog.fullPageWrites = false;
    await put(primary, 100, 150, 'b');
    await primary.checkpoint(CheckpointFlags.force | CheckpointFlags.wait);
    await primary.abort();
    shipWal(primaryDir, standbyDir);
    const off = records(primaryDir).find((r) => r.description === 'FPW_CHANGE false')!;

    const recovery = WalRecovery.open({ dataDir: standbyDir, sharedBuffersBytes: 64 * 8192, log: () => undefined });
    expect(recovery.lastFpwDisableLsn).toBe(0);
    expect(recovery.control.fullPageWrites).toBe(true);
    replayAll(recovery);
    expect(recovery.lastFpwDisableLsn).toBe(off.lsn);
    expect(recovery.lastFullPageWrites).toBe(false);
    expect(recovery.lastCheckpointSeen?.fullPageWrites).toBe(false);
    await createRestartPoint({
      dataDir: standbyDir, control: recovery.control, pool: recovery.pool, smgr: recovery.smgr,
      lastCheckpointSeen: recovery.lastCheckpointSeen, segmentSize: recovery.segmentSize, walKeepBytes: 0, log: () => undefined,
    });
    expect(readControlFile(standbyDir).fullPageWrites).toBe(false);
    recovery.close();
  });
});

describe('a base backup running on a standby', () => {
  it('keeps the WAL from its start point through restartpoints until it is released', async () => {
    const primaryDir = path.join(root, 'primary');
    const standbyDir = path.join(root, 'standby');
    await bootstrapDataDirectory(primaryDir, { walSegmentSize: SEGMENT });
    let primary = await Database.open(options(primaryDir));
    await primary.shutdown();
    fs.cpSync(primaryDir, standbyDir, { recursive: true });
    fs.writeFileSync(path.join(standbyDir, STANDBY_SIGNAL_FILE), '');

    // Several segments of WAL with a checkpoint in the last one, for a restartpoint to use; the
    // primary keeps them all for the standby (wal_keep_size).
    primary = await Database.open({ ...options(primaryDir), walKeepBytes: 64 * SEGMENT });
    await put(primary, 0, 12_000, 'a', 200);
    await primary.checkpoint(CheckpointFlags.force | CheckpointFlags.wait);
    await put(primary, 12_000, 12_010, 'b');
    await primary.abort();
    shipWal(primaryDir, standbyDir);

    const recovery = WalRecovery.open({ dataDir: standbyDir, sharedBuffersBytes: 64 * 8192, log: () => undefined });
    const backupStart = recovery.control.redoLsn;
    const release = recovery.holdWalForBackup(backupStart);
    const second = recovery.holdWalForBackup(backupStart);
    expect(recovery.oldestBackupStart()).toBe(backupStart);
    replayAll(recovery);
    const segmentsBefore = listSegments(standbyDir, SEGMENT).map((s) => s.segNo);
    expect(segmentsBefore.length).toBeGreaterThanOrEqual(3);
    const context = {
      dataDir: standbyDir, control: recovery.control, pool: recovery.pool, smgr: recovery.smgr,
      lastCheckpointSeen: recovery.lastCheckpointSeen, segmentSize: recovery.segmentSize, walKeepBytes: 0,
      keepWalFrom: () => recovery.oldestBackupStart(), log: () => undefined,
    };
    const restartPoint = await createRestartPoint(context);
    expect(restartPoint.skipped).toBe(false);
    expect(restartPoint.redo).toBeGreaterThan(backupStart + 2 * SEGMENT);
    expect(restartPoint.segmentsRemoved).toBe(0);
    expect(listSegments(standbyDir, SEGMENT).map((s) => s.segNo)).toEqual(segmentsBefore);

    // Released twice over (each release counts once): the next restartpoint removes it.
    release();
    release();
    expect(recovery.oldestBackupStart()).toBe(backupStart);
    second();
    expect(recovery.oldestBackupStart()).toBeNull();
    recovery.control.checkpointLsn = 0 as Lsn; // let the same checkpoint record serve again
    const next = await createRestartPoint(context);
    expect(next.segmentsRemoved).toBeGreaterThan(0);
    expect(listSegments(standbyDir, SEGMENT)[0]!.segNo).toBe(Math.floor(restartPoint.redo / SEGMENT));
    recovery.close();
  });
});

describe('backup_label', () => {
  it('says where the backup was taken from, and a standby\'s label with a control file not in recovery is refused', async () => {
    const dir = path.join(root, 'copy');
    await bootstrapDataDirectory(dir, { walSegmentSize: SEGMENT });
    const control = readControlFile(dir);
    const label = { startLsn: control.redoLsn, checkpointLsn: control.checkpointLsn, timeline: 1, endLsn: control.redoLsn, label: 't', backupFrom: 'standby' as const };
    fs.writeFileSync(path.join(dir, BACKUP_LABEL_FILE), formatBackupLabel(label, '000000010000000000000001', new Date()));
    expect(fs.readFileSync(path.join(dir, BACKUP_LABEL_FILE), 'utf8')).toContain('BACKUP FROM: standby\n');
    expect(readBackupLabel(dir)).toEqual(label);
    // bootstrap leaves the control file "shut down", which no standby's copy can carry.
    expect(() => WalRecovery.open({ dataDir: dir, sharedBuffersBytes: 64 * 8192, log: () => undefined }))
      .toThrow('backup_label contains data inconsistent with control file');

    fs.writeFileSync(path.join(dir, BACKUP_LABEL_FILE), formatBackupLabel({ ...label, backupFrom: 'primary' }, '000000010000000000000001', new Date()));
    expect(readBackupLabel(dir)?.backupFrom).toBe('primary');
    fs.writeFileSync(path.join(dir, BACKUP_LABEL_FILE), fs.readFileSync(path.join(dir, BACKUP_LABEL_FILE), 'utf8').replace('BACKUP FROM: primary', 'BACKUP FROM: elsewhere'));
    expect(() => readBackupLabel(dir)).toThrow(`invalid data in file "${BACKUP_LABEL_FILE}"`);
  });
});
