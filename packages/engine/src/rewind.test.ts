import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bootstrapDataDirectory } from './bootstrap.js';
import { CheckpointFlags } from './checkpoint.js';
import { BLCKSZ } from './constants.js';
import { readControlFile } from './control-file.js';
import { crc32c } from './crc32c.js';
import { Database, type DatabaseOptions } from './database.js';
import { WalshipError } from './errors.js';
import { parseLsn, type Lsn } from './lsn.js';
import {
  ZERO_PAGE_CRC, blockRanges, dataFileKind, decideFileActions, extractPageMap, findCommonAncestorTimeline, findLastCheckpoint,
  isRewindablePath, listDataFiles, readDataFileRange, readPageChecksums, relationOfPath, targetWalEnd, type DataFile, type FileMapInput,
} from './rewind.js';
import { TIMELINE_OPEN_END, parseTimeLineHistory, readTimeLineHistory, singleTimelineHistory } from './wal/timeline.js';
import { dumpWal } from './waldump.js';

const lsn = (text: string): Lsn => parseLsn(text)!;
const SEGMENT = 1024 * 1024;

describe('findCommonAncestorTimeline', () => {
  const tl2 = parseTimeLineHistory('1\t0/3000158\tno recovery target specified\n', 2);
  const tl3 = parseTimeLineHistory('1\t0/3000158\tx\n2\t0/5000060\tx\n', 3);

  it('finds where a promoted node left the old primary\'s timeline', () => {
    expect(findCommonAncestorTimeline(tl2, singleTimelineHistory(1))).toEqual({ tli: 1, divergenceLsn: lsn('0/3000158') });
    expect(findCommonAncestorTimeline(singleTimelineHistory(1), tl2)).toEqual({ tli: 1, divergenceLsn: lsn('0/3000158') });
  });

  it('follows shared promotions down to the last shared timeline', () => {
    expect(findCommonAncestorTimeline(tl3, tl2)).toEqual({ tli: 2, divergenceLsn: lsn('0/5000060') });
  });

  it('tells timelines of the same number apart by where they begin (two promotions of the same timeline)', () => {
    const otherTl2 = parseTimeLineHistory('1\t0/4000000\tx\n', 2);
    expect(findCommonAncestorTimeline(tl2, otherTl2)).toEqual({ tli: 1, divergenceLsn: lsn('0/3000158') });
  });

  it('has no divergence point on the same timeline, and no ancestor without a shared first timeline', () => {
    expect(findCommonAncestorTimeline(tl2, tl2)).toEqual({ tli: 2, divergenceLsn: TIMELINE_OPEN_END });
    expect(findCommonAncestorTimeline(singleTimelineHistory(5), singleTimelineHistory(1))).toBeNull();
  });
});

describe('data file kinds', () => {
  it('classifies the paths of a data directory', () => {
    expect(dataFileKind('base/16384')).toBe('relation');
    expect(relationOfPath('base/16384')).toBe(16384);
    expect(relationOfPath('base/016384')).toBeNull();
    expect(dataFileKind('pg_wal/000000010000000000000003')).toBe('wal');
    expect(dataFileKind('pg_wal/00000002.history')).toBe('history');
    expect(dataFileKind('global/control')).toBe('control');
    expect(dataFileKind('walship.conf')).toBe('config');
    expect(dataFileKind('server.key')).toBe('other');
  });

  it('leaves out process, signal, log and temporary files', () => {
    for (const p of ['postmaster.pid', 'standby.signal', 'backup_label', 'log/walship.log', 'pg_wal/archive_status/x.ready', 'global/control.tmp', 'walship.conf.tmp.123', 'pg_wal/xlogtemp.1.2', 'pg_replslot/s1/state']) {
      expect(isRewindablePath(p), p).toBe(false);
    }
    for (const p of ['base/1', 'walship.conf', 'pg_wal/000000010000000000000001', 'global/control']) expect(isRewindablePath(p), p).toBe(true);
  });
});

describe('blockRanges', () => {
  it('groups consecutive blocks', () => {
    expect(blockRanges([0, 1, 2, 5, 7, 8])).toEqual([{ start: 0, count: 3 }, { start: 5, count: 1 }, { start: 7, count: 2 }]);
    expect(blockRanges([])).toEqual([]);
  });
});

describe('decideFileActions', () => {
  const wal = (tli: number, segNo: number): string => `pg_wal/${tli.toString(16).toUpperCase().padStart(8, '0')}00000000${segNo.toString(16).toUpperCase().padStart(8, '0')}`;
  const file = (p: string, size = SEGMENT): DataFile => ({ path: p, size });
  const input = (overrides: Partial<FileMapInput>): FileMapInput => ({
    sourceFiles: [], targetFiles: [], pages: new Map(), segmentSize: SEGMENT,
    divergenceLsn: lsn('0/500100'), replayStartLsn: lsn('0/400028'), sourceWalEndLsn: lsn('0/700200'), ...overrides,
  });

  it('copies the touched blocks of relations both have, and fixes their lengths', () => {
    const map = decideFileActions(input({
      sourceFiles: [file('base/1', 4 * BLCKSZ), file('base/2', 10 * BLCKSZ), file('base/3', 2 * BLCKSZ), file('base/5', BLCKSZ)],
      targetFiles: [file('base/1', 4 * BLCKSZ), file('base/2', 6 * BLCKSZ), file('base/3', 5 * BLCKSZ), file('base/4', BLCKSZ)],
      pages: new Map([[1, [0, 2, 3]], [2, [1, 7]], [3, [0, 4]], [4, [0]], [9, [1]]]),
    }));
    expect(map.actions).toEqual([
      { kind: 'copyBlocks', path: 'base/1', relNode: 1, ranges: [{ start: 0, count: 1 }, { start: 2, count: 2 }], blocks: 3 },
      // Block 7 lies in the tail that is copied whole anyway.
      { kind: 'copyBlocks', path: 'base/2', relNode: 2, ranges: [{ start: 1, count: 1 }], blocks: 1 },
      { kind: 'copyTail', path: 'base/2', from: 6 * BLCKSZ, to: 10 * BLCKSZ },
      // Block 4 is cut off: the source's file is shorter.
      { kind: 'copyBlocks', path: 'base/3', relNode: 3, ranges: [{ start: 0, count: 1 }], blocks: 1 },
      { kind: 'truncate', path: 'base/3', size: 2 * BLCKSZ },
      { kind: 'copy', path: 'base/5', size: BLCKSZ, fileKind: 'relation' },
      { kind: 'remove', path: 'base/4', fileKind: 'relation' },
    ]);
    expect(map.blocksToCopy).toBe(5);
    expect(map.bytesToCopy).toBe(5 * BLCKSZ + 4 * BLCKSZ + BLCKSZ);
  });

  it('keeps the common WAL, copies the source\'s from the divergence on, and removes the target\'s diverged WAL', () => {
    const map = decideFileActions(input({
      sourceFiles: [
        file(wal(1, 3)), file(wal(1, 4)), file(wal(1, 5)), file(wal(2, 5)), file(wal(2, 6)), file(wal(2, 7)), file(wal(2, 8)),
        file('pg_wal/00000002.history', 41),
      ],
      targetFiles: [file(wal(1, 2)), file(wal(1, 4)), file(wal(1, 5)), file(wal(1, 6)), file(wal(1, 7)), file('pg_wal/00000003.history', 80)],
    }));
    // In path order: segment 3 is before the redo point, 4 is common and the target has it, 8 is
    // preallocated past the source's end of WAL; timeline 3 is a history only the target knows.
    expect(map.actions).toEqual([
      { kind: 'copy', path: wal(1, 5), size: SEGMENT, fileKind: 'wal' },
      { kind: 'copy', path: 'pg_wal/00000002.history', size: 41, fileKind: 'history' },
      { kind: 'copy', path: wal(2, 5), size: SEGMENT, fileKind: 'wal' },
      { kind: 'copy', path: wal(2, 6), size: SEGMENT, fileKind: 'wal' },
      { kind: 'copy', path: wal(2, 7), size: SEGMENT, fileKind: 'wal' },
      { kind: 'remove', path: wal(1, 6), fileKind: 'wal' },
      { kind: 'remove', path: wal(1, 7), fileKind: 'wal' },
      { kind: 'remove', path: 'pg_wal/00000003.history', fileKind: 'history' },
    ]);
    expect(map.missingWal).toEqual([]);
  });

  it('copies common WAL the target lacks, and says which WAL neither node has', () => {
    const copies = decideFileActions(input({ sourceFiles: [file(wal(1, 4)), file(wal(2, 5)), file(wal(2, 6)), file(wal(2, 7))], targetFiles: [] }));
    expect(copies.actions.map((a) => a.path)).toEqual([wal(1, 4), wal(2, 5), wal(2, 6), wal(2, 7)]);
    const missing = decideFileActions(input({ sourceFiles: [file(wal(2, 5)), file(wal(2, 7))], targetFiles: [file(wal(1, 5))] }));
    expect(missing.missingWal).toEqual(['segment 4 (0/400000 to 0/500000)', 'segment 6 (0/600000 to 0/700000)']);
  });

  it('copies other files whole, except the target\'s own, and leaves the control file and walship.conf to the caller', () => {
    const map = decideFileActions(input({
      sourceFiles: [file('global/control', 512), file('walship.conf', 100), file('notes.txt', 5), file('server.key', 7), file('extra', 3)],
      targetFiles: [file('global/control', 512), file('walship.conf', 90), file('server.key', 9), file('mine', 1)],
      isTargetOwnFile: (p) => p.endsWith('.key'),
    }));
    expect(map.actions).toEqual([
      { kind: 'copy', path: 'extra', size: 3, fileKind: 'other' },
      { kind: 'copy', path: 'notes.txt', size: 5, fileKind: 'other' },
    ]);
  });
});

describe('reading a data directory', () => {
  let dir: string;
  const options = (): DatabaseOptions => ({
    dataDir: dir, sharedBuffersBytes: 64 * 8192, walBuffersBytes: 64 * 8192, fsync: true, fullPageWrites: true,
    synchronousCommit: 'local', memberName: 'test', walKeepBytes: 16 * SEGMENT, log: () => undefined,
  });
  const put = async (db: Database, prefix: string, count: number): Promise<Lsn> => {
    let last = 0 as Lsn;
    for (let i = 0; i < count; i++) {
      last = (await db.txn({ onSuccess: [{ kind: 'put', key: Buffer.from(`${prefix}-${String(i).padStart(5, '0')}`), value: Buffer.alloc(300, i) }] })).lsn;
    }
    return last;
  };

  beforeEach(async () => {
    dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'walship-rewind-')), 'data');
    await bootstrapDataDirectory(dir, { walSegmentSize: SEGMENT });
  });
  afterEach(() => fs.rmSync(path.dirname(dir), { recursive: true, force: true }));

  it('finds the last checkpoint before a point, and every block changed after it', async () => {
    const db = await Database.open(options());
    await put(db, 'a', 400);
    const checkpoint = await db.checkpoint(CheckpointFlags.force | CheckpointFlags.immediate | CheckpointFlags.wait);
    await put(db, 'b', 50);
    const fork = await put(db, 'c', 10);
    await put(db, 'd', 200);
    await db.shutdown();

    const control = readControlFile(dir);
    const wal = { dataDir: dir, control, history: readTimeLineHistory(dir, control.timeline) };
    const end = targetWalEnd(wal);
    expect(end).toBeGreaterThan(control.checkpointLsn);
    expect(findLastCheckpoint(wal, fork)).toEqual({ lsn: checkpoint.lsn, redo: checkpoint.redo, timeline: 1 });
    // From the shutdown checkpoint itself, the walk goes back past it: it is not before the point.
    expect(findLastCheckpoint(wal, control.checkpointLsn)).toEqual({ lsn: checkpoint.lsn, redo: checkpoint.redo, timeline: 1 });

    const map = extractPageMap(wal, checkpoint.lsn, end);
    let records = 0;
    for (const record of dumpWal(dir, { start: checkpoint.lsn, end })) {
      records++;
      expect(record.lsn).toBeLessThan(end);
    }
    expect(map.records).toBe(records);
    expect(map.pages.size).toBeGreaterThan(0);
    for (const blocks of map.pages.values()) expect(blocks).toEqual([...new Set(blocks)].sort((x, y) => x - y));
    // The default table's file has every touched block.
    const [defaultRelNode, defaultBlocks] = [...map.pages].at(-1)!;
    expect(Math.max(...defaultBlocks)).toBeLessThan(fs.statSync(path.join(dir, 'base', String(defaultRelNode))).size / BLCKSZ);
  });

  it('says which segment is missing when the target\'s WAL is gone', async () => {
    const db = await Database.open(options());
    const fork = await put(db, 'a', 20);
    await put(db, 'b', 20);
    await db.shutdown();
    const control = readControlFile(dir);
    const wal = { dataDir: dir, control, history: readTimeLineHistory(dir, control.timeline) };
    for (const name of fs.readdirSync(path.join(dir, 'pg_wal'))) if (/^[0-9A-F]{24}$/.test(name)) fs.rmSync(path.join(dir, 'pg_wal', name));
    try {
      findLastCheckpoint(wal, fork);
      throw new Error('expected an error');
    } catch (error) {
      expect(error).toBeInstanceOf(WalshipError);
      expect((error as WalshipError).code).toBe('wal_removed');
      expect((error as WalshipError).hint).toContain('wal_keep_size');
    }
  });

  it('lists, reads and checksums data files, and refuses paths outside them', async () => {
    const db = await Database.open(options());
    await put(db, 'a', 100);
    await db.shutdown();
    fs.writeFileSync(path.join(dir, 'postmaster.pid'), '1\n');
    const files = listDataFiles(dir);
    const paths = files.map((f) => f.path);
    expect(paths).toContain('global/control');
    expect(paths).toContain('base/1');
    expect(paths).not.toContain('postmaster.pid');
    expect(paths.some((p) => p.startsWith('log/'))).toBe(false);
    expect(paths).toEqual([...paths].sort());

    const relation = files.filter((f) => dataFileKind(f.path) === 'relation').sort((x, y) => y.size - x.size)[0]!;
    const bytes = fs.readFileSync(path.join(dir, relation.path));
    const read = readDataFileRange(dir, relation.path, BLCKSZ, 2 * BLCKSZ);
    expect(read.size).toBe(bytes.length);
    expect(read.data.equals(bytes.subarray(BLCKSZ, 3 * BLCKSZ))).toBe(true);
    expect(readDataFileRange(dir, relation.path, bytes.length, 10).data.length).toBe(0);

    const relNode = relationOfPath(relation.path)!;
    const { nblocks, checksums } = readPageChecksums(dir, relNode, 1, 1000);
    expect(nblocks).toBe(bytes.length / BLCKSZ);
    expect(checksums.length).toBe((nblocks - 1) * 4);
    for (let block = 1; block < nblocks; block++) {
      expect(checksums.readUInt32LE((block - 1) * 4)).toBe(crc32c(bytes.subarray(block * BLCKSZ, (block + 1) * BLCKSZ)));
    }
    expect(ZERO_PAGE_CRC).toBe(crc32c(Buffer.alloc(BLCKSZ)));

    for (const bad of ['../data/global/control', '/etc/passwd', 'postmaster.pid', 'base/../global/control', 'log/x']) {
      expect(() => readDataFileRange(dir, bad, 0, 1), bad).toThrow(WalshipError);
    }
    expect(() => readDataFileRange(dir, 'base/999999', 0, 1)).toThrow(/No such file/);
  });
});
