/**
 * pg_rewind's decisions (src/bin/pg_rewind/: pg_rewind.c, parsexlog.c, filemap.c) and the data
 * file access that `walship rewind` and `walship verify` use at both ends.
 *
 * A rewind brings an old primary (the target) back as a standby of the node that took over (the
 * source), copying only what differs since their histories forked:
 *
 *   1. The divergence point comes from the two timeline histories (findCommonAncestorTimeline).
 *   2. If the target's WAL does not go past it, nothing needs rewinding (targetWalEnd).
 *   3. From the divergence point, the target's WAL is walked back by prev-links to the last
 *      checkpoint before it (findLastCheckpoint); replay of the source's WAL will start at that
 *      checkpoint's redo point.
 *   4. The target's WAL is read forward from that checkpoint to its end, and every block a record
 *      touched is noted (extractPageMap): those blocks may hold changes the source never had.
 *   5. The file map (decideFileActions): relation blocks noted in 4 are fetched from the source;
 *      relation files only the source has are copied whole, only the target has are removed,
 *      that grew are copied from the target's length, that shrank are truncated; WAL the replay
 *      needs is copied from the source; other files are copied whole. The control file goes
 *      last, with a backup label that starts replay at the checkpoint of 3.
 *
 * Why the blocks of 4 are enough: every other block of the target is as it was at that
 * checkpoint (the target was shut down cleanly, so its disk holds its last state, and no record
 * after the checkpoint touched them), which is history both nodes share; replaying the source's
 * WAL from the checkpoint's redo point brings them to the source's state. A block fetched from the
 * source is at most as new as the source's WAL, and redo is idempotent (deltas are skipped on
 * pages already past them, images replace), so replay makes it consistent as well.
 *
 * The decisions are pure (functions of file lists, histories and block maps); the target's WAL is
 * read through the reusable XLogReader. The network and the writes are the CLI's.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BLCKSZ } from './constants.js';
import type { ControlFileData } from './control-file.js';
import { crc32c } from './crc32c.js';
import { ErrorCode, WalshipError, assert } from './errors.js';
import { formatLsn, type Lsn } from './lsn.js';
import { decodeCheckPoint } from './wal/record-data.js';
import { isOpenEnd, type TimeLineHistoryEntry } from './wal/timeline.js';
import { SegmentFilePageSource, findSegmentTimeline } from './wal/wal-files.js';
import { pageStartOf, parseXlogFileName, segmentOf, xlogFileName } from './wal/xlog-internal.js';
import { XLogReader } from './wal/xlog-reader.js';
import { RMGR_NAMES, RmgrId, XlogInfo, type DecodedRecord } from './wal/xlog-record.js';

// ---------------------------------------------------------------------------------------------
// Data files (both ends: the source lists and serves them, the target lists its own)
// ---------------------------------------------------------------------------------------------

/**
 * What a rewind or a verify never reads or touches (basebackup.c's excludeFiles and
 * excludeDirContents, as pg_rewind's filemap.c uses them): the node's process and signal files,
 * its logs, and its own archiving state. Paths relative to the data directory. Also the wrapped
 * data keys (pg_cryptokeys/): the nodes of a cluster share the data keys, but each wraps them
 * with its own cluster key (rotate-key runs per node), so the target keeps its own file.
 */
const EXCLUDED_PATHS: ReadonlySet<string> = new Set([
  'postmaster.pid', 'postmaster.opts', 'standby.signal', 'recovery.signal', 'promote', 'backup_label', 'backup_label.old',
  'log', 'pg_wal/archive_status', 'pg_wal/RECOVERYXLOG', 'pg_replslot', 'pg_cryptokeys',
]);

/**
 * Block checksums one readPageChecksums call computes: 64 Ki pages (512 MiB of relation) in
 * 256 KiB of CRCs (the protocol's MAX_PAGE_CHECKSUMS_PER_REQUEST).
 */
export const MAX_PAGE_CHECKSUMS = 65_536;

/** A regular file of a data directory, relative to it with '/' separators. */
export interface DataFile {
  path: string;
  size: number;
}

/** How a rewind treats a data file. */
export type DataFileKind = 'relation' | 'wal' | 'history' | 'control' | 'config' | 'other';

export const CONTROL_FILE_PATH = 'global/control';
export const CONFIG_FILE_PATH = 'walship.conf';

const RELATION_PATTERN = /^base\/([1-9][0-9]{0,6})$/;
const WAL_PATTERN = /^pg_wal\/([0-9A-F]{24})$/;
const HISTORY_PATTERN = /^pg_wal\/[0-9A-F]{8}\.history$/;

export function dataFileKind(relative: string): DataFileKind {
  if (RELATION_PATTERN.test(relative)) return 'relation';
  if (WAL_PATTERN.test(relative)) return 'wal';
  if (HISTORY_PATTERN.test(relative)) return 'history';
  if (relative === CONTROL_FILE_PATH) return 'control';
  if (relative === CONFIG_FILE_PATH) return 'config';
  return 'other';
}

/** The relation number of `base/<relNode>`, or null for any other path. */
export function relationOfPath(relative: string): number | null {
  const match = RELATION_PATTERN.exec(relative);
  return match === null ? null : Number(match[1]);
}

function isTemporary(name: string): boolean {
  return name.endsWith('.tmp') || name.includes('.tmp.') || name.startsWith('xlogtemp.');
}

/** Whether a path is one a rewind may read or write (not excluded, not temporary). */
export function isRewindablePath(relative: string): boolean {
  const parts = relative.split('/');
  for (let i = 1; i <= parts.length; i++) if (EXCLUDED_PATHS.has(parts.slice(0, i).join('/'))) return false;
  return !isTemporary(parts[parts.length - 1]!);
}

/**
 * The regular files of a data directory a rewind or verify considers, sorted by path. Symbolic
 * links and other special files are skipped (a data directory holds regular files only).
 */
export function listDataFiles(dataDir: string): DataFile[] {
  const out: DataFile[] = [];
  const walk = (relative: string): void => {
    const names = fs.readdirSync(relative === '' ? dataDir : path.join(dataDir, relative));
    for (const name of names) {
      const child = relative === '' ? name : `${relative}/${name}`;
      if (!isRewindablePath(child)) continue;
      let stat: fs.Stats;
      try {
        stat = fs.lstatSync(path.join(dataDir, child));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed while listing
        throw error;
      }
      // pg_wal/ may be a link to another disk (initdb --waldir); no other link is followed.
      if (stat.isSymbolicLink() && child === 'pg_wal') stat = fs.statSync(path.join(dataDir, child));
      if (stat.isDirectory()) walk(child);
      else if (stat.isFile()) out.push({ path: child, size: stat.size });
    }
  };
  walk('');
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return out;
}

/**
 * Reads up to `length` bytes of a data file from `offset` (pg_read_binary_file), and the file's
 * size at that moment. A path outside the data directory, excluded, or not a regular file is an
 * error. On a running node the read is one synchronous call, so it never sees half a page write
 * (those are synchronous too, on the same thread).
 */
export function readDataFileRange(dataDir: string, relative: string, offset: number, length: number): { data: Buffer; size: number } {
  const absolute = resolveDataFile(dataDir, relative);
  let fd: number;
  try {
    fd = fs.openSync(absolute, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (error) {
    throw fileError(relative, error);
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw fileError(relative, new Error('not a regular file'));
    const want = Math.max(0, Math.min(length, stat.size - offset));
    const data = Buffer.alloc(want);
    let done = 0;
    while (done < want) {
      const n = fs.readSync(fd, data, done, want - done, offset + done);
      if (n === 0) break;
      done += n;
    }
    return { data: done === want ? data : data.subarray(0, done), size: stat.size };
  } finally {
    fs.closeSync(fd);
  }
}

/** CRC-32C of an all-zero page: a page that was allocated and never initialized. */
export const ZERO_PAGE_CRC = crc32c(Buffer.alloc(BLCKSZ));

/**
 * The CRC-32C of each page of relation `relNode` as stored on disk, from `startBlock`, at most
 * `maxBlocks` (4 bytes each, little-endian), and the relation's length in whole blocks. The page
 * checksum and LSN fields are part of the page: two nodes that replayed the same WAL and flushed
 * their buffers have the same CRCs.
 */
export function readPageChecksums(dataDir: string, relNode: number, startBlock: number, maxBlocks: number): { nblocks: number; checksums: Buffer } {
  assert(Number.isInteger(maxBlocks) && maxBlocks >= 1 && maxBlocks <= MAX_PAGE_CHECKSUMS, 'page checksum count in range');
  const relative = `base/${relNode}`;
  const absolute = resolveDataFile(dataDir, relative);
  let fd: number;
  try {
    fd = fs.openSync(absolute, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch (error) {
    throw fileError(relative, error);
  }
  try {
    const nblocks = Math.floor(fs.fstatSync(fd).size / BLCKSZ);
    const count = Math.max(0, Math.min(maxBlocks, nblocks - startBlock));
    const checksums = Buffer.alloc(count * 4);
    /** Pages read per call: large sequential reads, bounded memory. */
    const chunkPages = 128;
    const chunk = Buffer.allocUnsafe(chunkPages * BLCKSZ);
    for (let i = 0; i < count; i += chunkPages) {
      const pages = Math.min(chunkPages, count - i);
      const want = pages * BLCKSZ;
      let done = 0;
      while (done < want) {
        const n = fs.readSync(fd, chunk, done, want - done, (startBlock + i) * BLCKSZ + done);
        if (n === 0) break;
        done += n;
      }
      if (done < want) chunk.fill(0, done, want); // shrank under us (never expected)
      for (let p = 0; p < pages; p++) checksums.writeUInt32LE(crc32c(chunk.subarray(p * BLCKSZ, (p + 1) * BLCKSZ)), (i + p) * 4);
    }
    return { nblocks, checksums };
  } finally {
    fs.closeSync(fd);
  }
}

function resolveDataFile(dataDir: string, relative: string): string {
  const parts = relative.split('/');
  if (relative === '' || relative.startsWith('/') || parts.some((part) => part === '' || part === '.' || part === '..') || !isRewindablePath(relative)) {
    throw new WalshipError(ErrorCode.invalidParameter, `"${relative}" is not a data file this node serves`, {
      hint: 'Ask for a path from listDataFiles: relative to the data directory, without "." or ".." components.',
    });
  }
  return path.join(dataDir, ...parts);
}

function fileError(relative: string, error: unknown): WalshipError {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return new WalshipError(code === 'ENOENT' ? ErrorCode.invalidParameter : ErrorCode.ioError,
    `could not read file "${relative}": ${code === 'ENOENT' ? 'No such file or directory' : (error as Error).message}`, { cause: error });
}

// ---------------------------------------------------------------------------------------------
// Timelines (pg_rewind.c: findCommonAncestorTimeline)
// ---------------------------------------------------------------------------------------------

export interface CommonAncestor {
  /** The last timeline both histories share. */
  tli: number;
  /** Where the histories part: the first LSN not common to both (the end of the last common record). */
  divergenceLsn: Lsn;
}

/**
 * Traces two histories (newest first, as parseTimeLineHistory gives them) forward from their
 * oldest timeline while they agree on each timeline and where it began; the divergence point is
 * the earlier end of the last timeline they share. Null when not even the first one is shared.
 * When both end on the same open timeline the divergence point is TIMELINE_OPEN_END: nothing
 * diverged.
 */
export function findCommonAncestorTimeline(source: readonly TimeLineHistoryEntry[], target: readonly TimeLineHistoryEntry[]): CommonAncestor | null {
  const a = [...source].reverse();
  const b = [...target].reverse();
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i]!.tli === b[i]!.tli && a[i]!.begin === b[i]!.begin) i++;
  if (i === 0) return null;
  const last = i - 1;
  return { tli: a[last]!.tli, divergenceLsn: Math.min(a[last]!.end, b[last]!.end) as Lsn };
}

// ---------------------------------------------------------------------------------------------
// The target's WAL (parsexlog.c)
// ---------------------------------------------------------------------------------------------

/** Where the target's WAL is read from: its pg_wal/, under its own history. */
export interface TargetWal {
  dataDir: string;
  control: ControlFileData;
  /** The target's history, newest first. */
  history: readonly TimeLineHistoryEntry[];
}

interface WalCursor {
  source: SegmentFilePageSource;
  newReader(): XLogReader;
}

function openWal(wal: TargetWal): WalCursor {
  const segmentSize = wal.control.walSegmentSize;
  const source = new SegmentFilePageSource(wal.dataDir, (segNo) => findSegmentTimeline(wal.dataDir, wal.history, segNo, segmentSize), segmentSize);
  return { source, newReader: () => new XLogReader({ segmentSize, systemId: wal.control.systemId, source }) };
}

function missingWal(wal: TargetWal, lsn: Lsn, message: string): WalshipError {
  const segmentSize = wal.control.walSegmentSize;
  const segNo = segmentOf(lsn, segmentSize);
  const name = xlogFileName(findSegmentTimeline(wal.dataDir, wal.history, segNo, segmentSize), segNo, segmentSize);
  return new WalshipError(ErrorCode.walRemoved, `could not read the target's WAL at ${formatLsn(lsn)}: ${message}`, {
    detail: `A rewind reads the target's WAL from the last checkpoint before the divergence point to its end; segment ${name} is missing or damaged in "${path.join(wal.dataDir, 'pg_wal')}".`,
    hint: 'Keep WAL on every node with wal_keep_size (or archive it and restore the segment into pg_wal/), or rebuild the target with walship basebackup.',
  });
}

function isCheckpointRecord(record: DecodedRecord): boolean {
  const info = record.info & 0xf0;
  return record.rmid === RmgrId.xlog && (info === XlogInfo.checkpointOnline || info === XlogInfo.checkpointShutdown);
}

/**
 * Where the target's WAL ends (pg_rewind.c's target_wal_endrec): at the end of its latest
 * checkpoint record (a cleanly shut down primary's shutdown checkpoint is its last record), or
 * at the minimum recovery point of a standby shut down in recovery, if that is later: pages on
 * its disk may carry changes up to there.
 */
export function targetWalEnd(wal: TargetWal): Lsn {
  const { source, newReader } = openWal(wal);
  try {
    const reader = newReader();
    reader.beginRead(wal.control.checkpointLsn);
    const result = reader.readRecord();
    if (!result.ok) throw missingWal(wal, result.lsn, result.message);
    if (!isCheckpointRecord(result.record)) {
      throw new WalshipError(ErrorCode.walCorrupted, `the record at ${formatLsn(wal.control.checkpointLsn)} is not a checkpoint record`, {
        detail: "The target's control file points at it as its latest checkpoint.",
        hint: 'The target data directory is damaged; rebuild it with walship basebackup.',
      });
    }
    return Math.max(result.record.endLsn, wal.control.minRecoveryLsn) as Lsn;
  } finally {
    source.closeFile();
  }
}

export interface CheckpointLocation {
  /** Start of the checkpoint record. */
  lsn: Lsn;
  /** Its redo point: where replay starts. */
  redo: Lsn;
  /** The timeline it was written on. */
  timeline: number;
}

/**
 * findLastCheckpoint: the last checkpoint record that starts before `forkLsn`, found by reading
 * the target's record at the divergence point and following prev-links backwards. Every step
 * reads one record; the walk ends at most one checkpoint interval back.
 */
export function findLastCheckpoint(wal: TargetWal, forkLsn: Lsn): CheckpointLocation {
  const { source, newReader } = openWal(wal);
  try {
    let reader = newReader();
    let searchLsn = forkLsn;
    for (;;) {
      // The reader refuses a page of an older timeline than one it has seen (it reads forward);
      // walking backwards across a timeline switch takes a fresh reader.
      const page = source.readPage(pageStartOf(searchLsn) as Lsn);
      if (page !== null && page.readUInt32LE(4) < reader.timeline) reader = newReader();
      reader.beginRead(searchLsn);
      const result = reader.readRecord();
      if (!result.ok) {
        throw result.missing || searchLsn === forkLsn
          ? missingWal(wal, result.lsn, result.message)
          : new WalshipError(ErrorCode.walCorrupted, `could not find previous WAL record at ${formatLsn(searchLsn)}: ${result.message}`, {
            hint: 'The target WAL is damaged; rebuild the target with walship basebackup.',
          });
      }
      const record = result.record;
      if (searchLsn < forkLsn && isCheckpointRecord(record)) {
        const data = decodeCheckPoint(record);
        if (data === null) throw new WalshipError(ErrorCode.walCorrupted, `checkpoint record at ${formatLsn(record.lsn)} is too short`);
        return { lsn: record.lsn, redo: data.redo, timeline: data.timeline };
      }
      if (record.prev === 0 || record.prev >= record.lsn) {
        throw new WalshipError(ErrorCode.walCorrupted, `could not find a checkpoint before the divergence point ${formatLsn(forkLsn)}`, {
          detail: `Following prev-links backwards ended at ${formatLsn(record.lsn)}.`,
          hint: 'The target WAL does not reach back far enough; rebuild the target with walship basebackup.',
        });
      }
      searchLsn = record.prev;
    }
  } finally {
    source.closeFile();
  }
}

/** Blocks touched per relation: relNode -> sorted distinct block numbers. */
export type PageMap = Map<number, number[]>;

export interface PageMapResult {
  pages: PageMap;
  records: number;
  /** Block references seen (before removing duplicates). */
  blockReferences: number;
}

/**
 * extractPageMap: reads the target's WAL from `startLsn` (a record start) until a record reaches
 * `endLsn`, and notes every block each record touches. Every walship record that changes a
 * page names it as a block reference (there are no relation truncations or drops in the WAL),
 * so the map is complete; a record of a resource manager this code does not know is refused
 * rather than skipped.
 */
export function extractPageMap(wal: TargetWal, startLsn: Lsn, endLsn: Lsn): PageMapResult {
  const { source, newReader } = openWal(wal);
  const touched = new Map<number, Set<number>>();
  let records = 0;
  let blockReferences = 0;
  try {
    const reader = newReader();
    reader.beginRead(startLsn);
    while (reader.endOfLastRecord < endLsn) {
      const result = reader.readRecord();
      if (!result.ok) throw missingWal(wal, result.lsn, result.message);
      const record = result.record;
      if (record.lsn >= endLsn) break;
      records++;
      switch (record.rmid) {
        case RmgrId.xlog:
        case RmgrId.transaction:
        case RmgrId.storage:
          break;
        default:
          throw new WalshipError(ErrorCode.walCorrupted, `WAL record at ${formatLsn(record.lsn)} of resource manager ${RMGR_NAMES[record.rmid] ?? record.rmid} is not understood by rewind`);
      }
      for (const block of record.blocks) {
        blockReferences++;
        let set = touched.get(block.relNode);
        if (set === undefined) touched.set(block.relNode, set = new Set());
        set.add(block.blockNo);
      }
    }
  } finally {
    source.closeFile();
  }
  const pages: PageMap = new Map();
  for (const relNode of [...touched.keys()].sort((x, y) => x - y)) pages.set(relNode, [...touched.get(relNode)!].sort((x, y) => x - y));
  return { pages, records, blockReferences };
}

// ---------------------------------------------------------------------------------------------
// The file map (filemap.c)
// ---------------------------------------------------------------------------------------------

/** A run of blocks: [start, start + count). */
export interface BlockRange {
  start: number;
  count: number;
}

export type FileAction =
  /** Copy the source's file whole, replacing the target's if any. */
  | { kind: 'copy'; path: string; size: number; fileKind: DataFileKind }
  /** The source's file is longer: copy its bytes [from, to). */
  | { kind: 'copyTail'; path: string; from: number; to: number }
  /** The source's file is shorter: cut the target's to `size`. */
  | { kind: 'truncate'; path: string; size: number }
  /** Only the target has it (and it is in an area a rewind owns): remove it. */
  | { kind: 'remove'; path: string; fileKind: DataFileKind }
  /** Copy these blocks of a relation file from the source. */
  | { kind: 'copyBlocks'; path: string; relNode: number; ranges: BlockRange[]; blocks: number };

export interface FileMapInput {
  sourceFiles: readonly DataFile[];
  targetFiles: readonly DataFile[];
  /** Blocks the target's WAL touched since the checkpoint replay starts from. */
  pages: PageMap;
  segmentSize: number;
  divergenceLsn: Lsn;
  /** The redo point replay starts from. */
  replayStartLsn: Lsn;
  /**
   * How far the source's WAL went when it was listed: segments after the one holding it are
   * preallocated and empty, and not copied (replay streams whatever comes after from the source).
   */
  sourceWalEndLsn: Lsn;
  /**
   * Other files (not relations, WAL, history, control file or walship.conf) that are the
   * target's own (its TLS and key files) and are kept even when the source has a file of that
   * name. Absent: none.
   */
  isTargetOwnFile?: (path: string) => boolean;
}

export interface FileMap {
  actions: FileAction[];
  /** Bytes the actions copy from the source. */
  bytesToCopy: number;
  /** Relation blocks copied by copyBlocks actions. */
  blocksToCopy: number;
  /** WAL segments replay needs that neither node has (file names); a rewind cannot proceed. */
  missingWal: string[];
}

/**
 * decide_file_action and the WAL rules, over both nodes' file lists:
 * - relation files: both -> the touched blocks below both lengths, then a tail copy or a
 *   truncation to the source's length; source only -> copy; target only -> remove.
 * - WAL segments: replay needs the segments from the one holding the redo point onwards. Those
 *   before the divergence point's segment are common history: the target's own copy is kept,
 *   the source's copied only where the target has none. From that segment on, the source's are
 *   copied, and the target's that the source does not have (its diverged WAL) are removed.
 *   Segments before the redo point's are not needed and left alone.
 * - history files: the source's are copied; the target's own are removed (a timeline the source
 *   does not know would be a wrong turn for recovery_target_timeline = latest).
 * - other files: copied whole from the source unless they are the target's own; target-only
 *   ones are kept (they are not data).
 * The control file and walship.conf are left to the caller (they are merged, not copied).
 */
export function decideFileActions(input: FileMapInput): FileMap {
  const source = new Map(input.sourceFiles.map((f) => [f.path, f]));
  const target = new Map(input.targetFiles.map((f) => [f.path, f]));
  const allPaths = [...new Set([...source.keys(), ...target.keys()])].sort();
  const actions: FileAction[] = [];
  const removals: FileAction[] = [];
  const segmentSize = input.segmentSize;
  const divergenceSeg = isOpenEnd(input.divergenceLsn) ? Number.POSITIVE_INFINITY : segmentOf(input.divergenceLsn, segmentSize);
  const replayStartSeg = segmentOf(input.replayStartLsn, segmentSize);
  const sourceEndSeg = segmentOf(Math.max(input.sourceWalEndLsn - 1, 0), segmentSize);
  const targetSegNos = new Set<number>();
  for (const f of input.targetFiles) {
    const parsed = dataFileKind(f.path) === 'wal' ? parseXlogFileName(f.path.slice('pg_wal/'.length), segmentSize) : null;
    if (parsed !== null) targetSegNos.add(parsed.segNo);
  }
  const sourceSegments = new Map<number, string[]>();
  let bytesToCopy = 0;
  let blocksToCopy = 0;

  for (const p of allPaths) {
    const s = source.get(p);
    const t = target.get(p);
    const kind = dataFileKind(p);
    switch (kind) {
      case 'control':
      case 'config':
        break;
      case 'relation': {
        const relNode = relationOfPath(p)!;
        if (s === undefined) {
          removals.push({ kind: 'remove', path: p, fileKind: kind });
          break;
        }
        if (t === undefined) {
          actions.push({ kind: 'copy', path: p, size: s.size, fileKind: kind });
          bytesToCopy += s.size;
          break;
        }
        const commonBlocks = Math.floor(Math.min(s.size, t.size) / BLCKSZ);
        const touched = (input.pages.get(relNode) ?? []).filter((block) => block < commonBlocks);
        if (touched.length > 0) {
          const ranges = blockRanges(touched);
          actions.push({ kind: 'copyBlocks', path: p, relNode, ranges, blocks: touched.length });
          bytesToCopy += touched.length * BLCKSZ;
          blocksToCopy += touched.length;
        }
        if (s.size > t.size) {
          actions.push({ kind: 'copyTail', path: p, from: t.size, to: s.size });
          bytesToCopy += s.size - t.size;
        } else if (s.size < t.size) {
          actions.push({ kind: 'truncate', path: p, size: s.size });
        }
        break;
      }
      case 'wal': {
        const parsed = parseXlogFileName(p.slice('pg_wal/'.length), segmentSize)!;
        if (s !== undefined && parsed.segNo > sourceEndSeg) {
          // Preallocated on the source, nothing in it yet: not needed; the target's is stale.
          if (t !== undefined && parsed.segNo >= divergenceSeg) removals.push({ kind: 'remove', path: p, fileKind: kind });
          break;
        }
        if (s !== undefined) {
          const list = sourceSegments.get(parsed.segNo) ?? [];
          list.push(p);
          sourceSegments.set(parsed.segNo, list);
        }
        if (parsed.segNo >= divergenceSeg) {
          if (s !== undefined) {
            actions.push({ kind: 'copy', path: p, size: s.size, fileKind: kind });
            bytesToCopy += s.size;
          } else {
            removals.push({ kind: 'remove', path: p, fileKind: kind });
          }
        } else if (s !== undefined && t === undefined && parsed.segNo >= replayStartSeg && !targetSegNos.has(parsed.segNo)) {
          actions.push({ kind: 'copy', path: p, size: s.size, fileKind: kind });
          bytesToCopy += s.size;
        }
        break;
      }
      case 'history':
        if (s !== undefined) {
          actions.push({ kind: 'copy', path: p, size: s.size, fileKind: kind });
          bytesToCopy += s.size;
        } else {
          removals.push({ kind: 'remove', path: p, fileKind: kind });
        }
        break;
      case 'other':
        if (s !== undefined && !(t !== undefined && input.isTargetOwnFile?.(p) === true)) {
          actions.push({ kind: 'copy', path: p, size: s.size, fileKind: kind });
          bytesToCopy += s.size;
        }
        break;
    }
  }

  // Every segment from the redo point's to the source's end of WAL must be somewhere.
  const missingWal: string[] = [];
  for (let segNo = replayStartSeg; segNo <= sourceEndSeg; segNo++) {
    const fromSource = sourceSegments.has(segNo);
    const fromTarget = segNo < divergenceSeg && targetSegNos.has(segNo);
    if (!fromSource && !fromTarget) missingWal.push(`segment ${segNo} (${formatLsn(segNo * segmentSize)} to ${formatLsn((segNo + 1) * segmentSize)})`);
  }
  return { actions: [...actions, ...removals], bytesToCopy, blocksToCopy, missingWal };
}

/** Sorted distinct block numbers as runs of consecutive blocks. */
export function blockRanges(blocks: readonly number[]): BlockRange[] {
  const ranges: BlockRange[] = [];
  for (const block of blocks) {
    const last = ranges[ranges.length - 1];
    if (last !== undefined && block === last.start + last.count) last.count++;
    else {
      assert(last === undefined || block > last.start + last.count, 'blocks sorted and distinct');
      ranges.push({ start: block, count: 1 });
    }
  }
  return ranges;
}
