import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeOldSegments } from '../checkpoint.js';
import type { Lsn } from '../lsn.js';
import {
  archiveStatusAtPromotion, archiveStatusInUse, archiveStatusOf, compareArchiveOrder, isArchivableFileName, keepFileRestoredFromArchive, readyXlogFiles,
  statusFilePath, xlogArchiveCheckDone, xlogArchiveCleanup, xlogArchiveDone, xlogArchiveForceDone, xlogArchiveMarkReceived, xlogArchiveNotify,
  xlogArchiveNotifySeg,
} from './archive-status.js';
import { xlogFileName } from './xlog-internal.js';

const SEGMENT = 1024 * 1024;
let dataDir: string;

function seg(segNo: number, tli = 1): string {
  return xlogFileName(tli, segNo, SEGMENT);
}

/** A segment file in pg_wal/ (contents do not matter here). */
function touchSegment(name: string): void {
  fs.writeFileSync(path.join(dataDir, 'pg_wal', name), 'x');
}

function walFiles(): string[] {
  return fs.readdirSync(path.join(dataDir, 'pg_wal')).filter((n) => n !== 'archive_status').sort();
}

function statusFiles(): string[] {
  return fs.readdirSync(path.join(dataDir, 'pg_wal', 'archive_status')).sort();
}

beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-archive-status-'));
  fs.mkdirSync(path.join(dataDir, 'pg_wal', 'archive_status'), { recursive: true });
});
afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

describe('archive status files', () => {
  it('notify, done, force-done and cleanup move a file through .ready and .done', () => {
    const name = xlogArchiveNotifySeg(dataDir, 1, 3, SEGMENT);
    expect(name).toBe('000000010000000000000003');
    expect(archiveStatusOf(dataDir, name)).toBe('ready');
    xlogArchiveDone(dataDir, name);
    expect(archiveStatusOf(dataDir, name)).toBe('done');
    expect(statusFiles()).toEqual([`${name}.done`]);
    expect(() => xlogArchiveDone(dataDir, name)).toThrow();

    // Force-done: renames a .ready, creates a .done from nothing, leaves a .done alone.
    xlogArchiveNotify(dataDir, seg(4));
    xlogArchiveForceDone(dataDir, seg(4));
    xlogArchiveForceDone(dataDir, seg(5));
    xlogArchiveForceDone(dataDir, seg(5));
    expect(statusFiles()).toEqual([`${seg(3)}.done`, `${seg(4)}.done`, `${seg(5)}.done`]);

    xlogArchiveCleanup(dataDir, seg(3));
    xlogArchiveCleanup(dataDir, seg(9)); // nothing there: fine
    expect(archiveStatusOf(dataDir, seg(3))).toBeNull();
  });

  it('a new .ready replaces an old .done, so that a checkpoint cannot remove the file before it is archived again', () => {
    xlogArchiveForceDone(dataDir, seg(1));
    xlogArchiveNotify(dataDir, seg(1));
    expect(statusFiles()).toEqual([`${seg(1)}.ready`]);
    expect(archiveStatusOf(dataDir, seg(1))).toBe('ready');
    expect(xlogArchiveCheckDone(dataDir, seg(1), { mode: 'on', inRecovery: false }).removable).toBe(false);
  });

  it('marks a received file .done whatever archive_mode is, but .ready with always', () => {
    expect(xlogArchiveMarkReceived(dataDir, seg(1), 'off')).toBe('done');
    expect(xlogArchiveMarkReceived(dataDir, seg(2), 'on')).toBe('done');
    // A .ready from before (archive_mode was always) becomes .done: the upstream has it.
    xlogArchiveNotify(dataDir, seg(3));
    expect(xlogArchiveMarkReceived(dataDir, seg(3), 'on')).toBe('done');
    expect(xlogArchiveMarkReceived(dataDir, seg(4), 'always')).toBe('ready');
    // Received again with always (the base backup's last segment, completed by streaming): .ready.
    expect(xlogArchiveMarkReceived(dataDir, seg(1), 'always')).toBe('ready');
    expect(statusFiles()).toEqual([`${seg(1)}.ready`, `${seg(2)}.done`, `${seg(3)}.done`, `${seg(4)}.ready`]);
  });

  it('keeps a restored file in pg_wal/, replacing a local copy, marked as received', () => {
    const restored = path.join(dataDir, 'pg_wal', 'RECOVERYXLOG');
    fs.writeFileSync(restored, 'from the archive');
    touchSegment(seg(5));
    expect(keepFileRestoredFromArchive(dataDir, restored, seg(5), 'on')).toEqual({ status: 'done', error: null });
    expect(fs.readFileSync(path.join(dataDir, 'pg_wal', seg(5)), 'utf8')).toBe('from the archive');
    expect(fs.existsSync(restored)).toBe(false);

    fs.writeFileSync(restored, 'again');
    expect(keepFileRestoredFromArchive(dataDir, restored, seg(6), 'always')).toEqual({ status: 'ready', error: null });
    expect(walFiles()).toEqual([seg(5), seg(6)]);
    expect(statusFiles()).toEqual([`${seg(5)}.done`, `${seg(6)}.ready`]);
    expect(readyXlogFiles(dataDir)).toEqual([seg(6)]);

    // A status that cannot be written is reported; the file is in place all the same.
    fs.rmSync(path.join(dataDir, 'pg_wal', 'archive_status'), { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'pg_wal', 'archive_status'), 'not a directory');
    fs.writeFileSync(restored, 'third');
    const kept = keepFileRestoredFromArchive(dataDir, restored, seg(7), 'always');
    expect(kept.status).toBe('ready');
    expect(kept.error).toBeInstanceOf(Error);
    expect(fs.readFileSync(path.join(dataDir, 'pg_wal', seg(7)), 'utf8')).toBe('third');
  });

  it('creates archive_status/ when it is missing', () => {
    fs.rmSync(path.join(dataDir, 'pg_wal', 'archive_status'), { recursive: true });
    expect(readyXlogFiles(dataDir)).toEqual([]);
    xlogArchiveNotify(dataDir, seg(1));
    expect(readyXlogFiles(dataDir)).toEqual([seg(1)]);
  });

  it('lists .ready files as the archiver takes them: history files first, then oldest first', () => {
    for (const name of [seg(7), seg(2, 2), seg(3), '00000002.history', `${seg(5)}.partial`, '00000003.history', seg(0x100)]) {
      xlogArchiveNotify(dataDir, name);
    }
    xlogArchiveForceDone(dataDir, seg(1));
    // Not archivable names are ignored, whatever their suffix.
    fs.writeFileSync(path.join(dataDir, 'pg_wal', 'archive_status', 'RECOVERYXLOG.ready'), '');
    fs.writeFileSync(path.join(dataDir, 'pg_wal', 'archive_status', `${seg(0xab).toLowerCase()}.ready`), '');
    fs.writeFileSync(path.join(dataDir, 'pg_wal', 'archive_status', `${seg(9)}.tmp`), '');
    expect(readyXlogFiles(dataDir)).toEqual([
      '00000002.history', '00000003.history',
      seg(3), `${seg(5)}.partial`, seg(7), seg(0x100), seg(2, 2),
    ]);
    expect(readyXlogFiles(dataDir, 3)).toEqual(['00000002.history', '00000003.history', seg(3)]);
    expect(compareArchiveOrder('00000009.history', seg(1))).toBeLessThan(0);
    expect(compareArchiveOrder(seg(1), seg(1))).toBe(0);
  });

  it('knows the archivable names', () => {
    for (const ok of [seg(1), `${seg(1)}.partial`, `${seg(1)}.00000028.backup`, '0000000A.history']) expect(isArchivableFileName(ok)).toBe(true);
    for (const bad of ['', 'RECOVERYXLOG', seg(1).slice(1), `${seg(1)}.ready`, '0000000a.history', 'xlogtemp.1.2', `${seg(1)}.partial.x`]) {
      expect(isArchivableFileName(bad)).toBe(false);
    }
  });
});

describe('XLogArchiveCheckDone', () => {
  it('archive_mode off: always removable, nothing created', () => {
    expect(xlogArchiveCheckDone(dataDir, seg(1), { mode: 'off', inRecovery: false })).toEqual({ removable: true, notified: false });
    xlogArchiveNotify(dataDir, seg(2));
    expect(xlogArchiveCheckDone(dataDir, seg(2), { mode: 'off', inRecovery: false }).removable).toBe(true);
    expect(statusFiles()).toEqual([`${seg(2)}.ready`]);
  });

  it('on a primary: .done is removable, .ready is kept, no status is marked .ready and kept', () => {
    const ctx = { mode: 'on' as const, inRecovery: false };
    xlogArchiveForceDone(dataDir, seg(1));
    xlogArchiveNotify(dataDir, seg(2));
    expect(xlogArchiveCheckDone(dataDir, seg(1), ctx)).toEqual({ removable: true, notified: false });
    expect(xlogArchiveCheckDone(dataDir, seg(2), ctx)).toEqual({ removable: false, notified: false });
    expect(xlogArchiveCheckDone(dataDir, seg(3), ctx)).toEqual({ removable: false, notified: true });
    expect(archiveStatusOf(dataDir, seg(3))).toBe('ready');
    expect(xlogArchiveCheckDone(dataDir, seg(3), ctx)).toEqual({ removable: false, notified: false });
  });

  it('in archive recovery: removable unless archive_mode is always', () => {
    xlogArchiveNotify(dataDir, seg(1));
    expect(xlogArchiveCheckDone(dataDir, seg(1), { mode: 'on', inRecovery: true }).removable).toBe(true);
    expect(xlogArchiveCheckDone(dataDir, seg(1), { mode: 'always', inRecovery: true }).removable).toBe(false);
    expect(xlogArchiveCheckDone(dataDir, seg(2), { mode: 'always', inRecovery: true })).toEqual({ removable: false, notified: true });
  });

  it('archive_mode not known yet: .done is removable, .ready is kept, no status as told, and nothing is created', () => {
    xlogArchiveForceDone(dataDir, seg(1));
    xlogArchiveNotify(dataDir, seg(3));
    expect(xlogArchiveCheckDone(dataDir, seg(1), { mode: null, inRecovery: false }).removable).toBe(true);
    expect(xlogArchiveCheckDone(dataDir, seg(3), { mode: null, inRecovery: true, keepUnmarked: false }).removable).toBe(false);
    expect(xlogArchiveCheckDone(dataDir, seg(2), { mode: null, inRecovery: true })).toEqual({ removable: false, notified: false });
    expect(xlogArchiveCheckDone(dataDir, seg(2), { mode: null, inRecovery: false, keepUnmarked: false })).toEqual({ removable: true, notified: false });
    expect(archiveStatusOf(dataDir, seg(2))).toBeNull();
  });
});

describe('removeOldSegments with archiving', () => {
  it('keeps segments not archived yet, removes archived ones with their .done', () => {
    for (let segNo = 1; segNo <= 6; segNo++) touchSegment(seg(segNo));
    xlogArchiveForceDone(dataDir, seg(1));
    xlogArchiveNotify(dataDir, seg(2));
    xlogArchiveForceDone(dataDir, seg(3));
    // seg 4 has no status (a notification lost to a crash); 5 holds the redo point.
    const notified: string[] = [];
    const removed = removeOldSegments(dataDir, SEGMENT, (5 * SEGMENT + 100) as Lsn, 0, {
      mode: 'on', inRecovery: false, onNotify: (name) => notified.push(name),
    });
    expect(removed).toBe(2);
    expect(walFiles()).toEqual([seg(2), seg(4), seg(5), seg(6)]);
    expect(statusFiles()).toEqual([`${seg(2)}.ready`, `${seg(4)}.ready`]);
    expect(notified).toEqual([seg(4)]);

    // Once archived, the next checkpoint removes them.
    xlogArchiveDone(dataDir, seg(2));
    xlogArchiveDone(dataDir, seg(4));
    expect(removeOldSegments(dataDir, SEGMENT, (5 * SEGMENT) as Lsn, 0, { mode: 'on', inRecovery: false })).toBe(2);
    expect(walFiles()).toEqual([seg(5), seg(6)]);
    expect(statusFiles()).toEqual([]);
  });

  it('removes .partial segments by the same rules, with their .done', () => {
    for (const name of [seg(3), `${seg(3)}.partial`, seg(4, 2), `${seg(4)}.partial`, seg(5, 2), seg(6, 2), `${seg(6)}.partial`]) touchSegment(name);
    xlogArchiveForceDone(dataDir, seg(3));
    xlogArchiveNotify(dataDir, `${seg(3)}.partial`);
    xlogArchiveForceDone(dataDir, seg(4, 2));
    xlogArchiveForceDone(dataDir, `${seg(4)}.partial`);
    xlogArchiveForceDone(dataDir, `${seg(6)}.partial`);
    const ctx = { mode: 'on' as const, inRecovery: false };
    // Redo in segment 5: segments 3 and 4 are old; the .partial of 3 is not archived yet.
    expect(removeOldSegments(dataDir, SEGMENT, (5 * SEGMENT + 8) as Lsn, 0, ctx)).toBe(3);
    expect(walFiles()).toEqual([`${seg(3)}.partial`, `${seg(6)}.partial`, seg(5, 2), seg(6, 2)]);
    expect(statusFiles()).toEqual([`${seg(3)}.partial.ready`, `${seg(6)}.partial.done`]);

    xlogArchiveDone(dataDir, `${seg(3)}.partial`);
    expect(removeOldSegments(dataDir, SEGMENT, (5 * SEGMENT + 8) as Lsn, 0, ctx)).toBe(1);
    expect(walFiles()).toEqual([`${seg(6)}.partial`, seg(5, 2), seg(6, 2)]);
    // wal_keep_size keeps a .partial as it keeps a segment; past the cutoff it goes.
    expect(removeOldSegments(dataDir, SEGMENT, (7 * SEGMENT) as Lsn, 2 * SEGMENT, ctx)).toBe(0);
    xlogArchiveForceDone(dataDir, seg(5, 2));
    xlogArchiveForceDone(dataDir, seg(6, 2));
    expect(removeOldSegments(dataDir, SEGMENT, (8 * SEGMENT) as Lsn, 0, ctx)).toBe(3);
    expect(walFiles()).toEqual([]);
    expect(statusFiles()).toEqual([]);
  });

  it('a .partial without a status is marked .ready and kept, as a segment is; with archive_mode off it goes', () => {
    touchSegment(`${seg(2)}.partial`);
    const notified: string[] = [];
    expect(removeOldSegments(dataDir, SEGMENT, (4 * SEGMENT) as Lsn, 0, { mode: 'on', inRecovery: false, onNotify: (name) => notified.push(name) })).toBe(0);
    expect(notified).toEqual([`${seg(2)}.partial`]);
    // Without an archive context, a .ready one is kept too.
    expect(removeOldSegments(dataDir, SEGMENT, (4 * SEGMENT) as Lsn, 0)).toBe(0);
    expect(removeOldSegments(dataDir, SEGMENT, (4 * SEGMENT) as Lsn, 0, { mode: 'off', inRecovery: false })).toBe(1);
    expect(walFiles()).toEqual([]);
    expect(statusFiles()).toEqual([]);
  });

  it('with archive_mode not known, keeps unmarked segments only where archiving is in use', () => {
    for (let segNo = 1; segNo <= 3; segNo++) touchSegment(seg(segNo));
    // An empty archive_status/: archiving was never used here; unmarked segments go.
    expect(archiveStatusInUse(dataDir)).toBe(false);
    expect(removeOldSegments(dataDir, SEGMENT, (2 * SEGMENT) as Lsn, 0, { mode: null, inRecovery: false })).toBe(1);
    expect(walFiles()).toEqual([seg(2), seg(3)]);
    // Archiving in use: an unmarked segment may be a notification lost to a crash; it stays.
    xlogArchiveForceDone(dataDir, seg(9));
    expect(archiveStatusInUse(dataDir)).toBe(true);
    expect(removeOldSegments(dataDir, SEGMENT, (3 * SEGMENT) as Lsn, 0, { mode: null, inRecovery: false })).toBe(0);
    expect(walFiles()).toEqual([seg(2), seg(3)]);
    expect(archiveStatusOf(dataDir, seg(2))).toBeNull();
  });

  it('without an archive context keeps .ready segments only; with archive_mode off removes everything old', () => {
    for (let segNo = 1; segNo <= 3; segNo++) touchSegment(seg(segNo));
    xlogArchiveNotify(dataDir, seg(1));
    expect(removeOldSegments(dataDir, SEGMENT, (3 * SEGMENT) as Lsn, 0)).toBe(1);
    expect(walFiles()).toEqual([seg(1), seg(3)]);
    expect(removeOldSegments(dataDir, SEGMENT, (3 * SEGMENT) as Lsn, 0, { mode: 'off', inRecovery: false })).toBe(1);
    expect(walFiles()).toEqual([seg(3)]);
    expect(statusFiles()).toEqual([]);
  });
});

describe('archive status at promotion', () => {
  it('marks the old segments as archived elsewhere, renames the old timeline\'s switch segment .partial, and the history file .ready', () => {
    for (const name of [seg(1), seg(2), seg(3), seg(4), seg(4, 2)]) touchSegment(name);
    fs.writeFileSync(path.join(dataDir, 'pg_wal', '00000002.history'), '1\t0/4000100\tno recovery target specified\n');
    xlogArchiveNotify(dataDir, seg(2)); // streamed with archive_mode = always, say: left as it is
    const notified = archiveStatusAtPromotion({
      dataDir, segmentSize: SEGMENT, archiveMode: 'on', timeline: 2, parentTimeline: 1, switchPoint: 4 * SEGMENT + 0x100, switchSegNo: 4,
    });
    expect(notified).toEqual([`${seg(4)}.partial`, '00000002.history']);
    expect(walFiles()).toEqual(['00000002.history', seg(1), seg(2), seg(3), `${seg(4)}.partial`, seg(4, 2)].sort());
    expect(statusFiles()).toEqual([
      '00000002.history.ready', `${seg(1)}.done`, `${seg(2)}.ready`, `${seg(3)}.done`, `${seg(4)}.partial.ready`,
    ].sort());
    // Done once: a second call changes nothing.
    expect(archiveStatusAtPromotion({
      dataDir, segmentSize: SEGMENT, archiveMode: 'on', timeline: 2, parentTimeline: 1, switchPoint: 4 * SEGMENT + 0x100, switchSegNo: 4,
    })).toEqual([]);
  });

  it('marks .ready the .partial that startNewTimeline kept, and renames nothing then', () => {
    for (const name of [seg(3), `${seg(4)}.partial`, seg(4, 2)]) touchSegment(name);
    const notified = archiveStatusAtPromotion({
      dataDir, segmentSize: SEGMENT, archiveMode: 'always', timeline: 2, parentTimeline: 1, switchPoint: 4 * SEGMENT + 0x100, switchSegNo: 4,
    });
    expect(notified).toEqual([seg(3), `${seg(4)}.partial`]);
    expect(walFiles()).toEqual([seg(3), `${seg(4)}.partial`, seg(4, 2)].sort());
    expect(readyXlogFiles(dataDir)).toEqual([seg(3), `${seg(4)}.partial`]);
  });

  it('with archive_mode off only marks old segments .done; with always marks them .ready', () => {
    for (const name of [seg(1), seg(2, 2)]) touchSegment(name);
    expect(archiveStatusAtPromotion({
      dataDir, segmentSize: SEGMENT, archiveMode: 'off', timeline: 2, parentTimeline: 1, switchPoint: 2 * SEGMENT + 8, switchSegNo: 2,
    })).toEqual([]);
    expect(statusFiles()).toEqual([`${seg(1)}.done`]);
    xlogArchiveCleanup(dataDir, seg(1));
    expect(archiveStatusAtPromotion({
      dataDir, segmentSize: SEGMENT, archiveMode: 'always', timeline: 2, parentTimeline: 1, switchPoint: 2 * SEGMENT + 8, switchSegNo: 2,
    })).toEqual([seg(1)]);
    expect(fs.existsSync(statusFilePath(dataDir, seg(1), 'ready'))).toBe(true);
  });
});
