/**
 * Archive status files (PostgreSQL's xlogarchive.c): `pg_wal/archive_status/<file>.ready` says
 * "archive me", `<file>.done` says "archived (or never to be archived here)". Whoever finishes a
 * WAL file marks it `.ready` (XLogArchiveNotify): XLogWrite for a finished segment, promotion for
 * the new timeline's history file and the old timeline's `.partial` segment. The archiver takes
 * `.ready` files oldest first (history files before anything else), runs archive_command, and
 * renames `.ready` to `.done` (pgarch_archiveDone). A checkpoint removes a segment only once it
 * is `.done` (XLogArchiveCheckDone), and removes the `.done` with it (XLogArchiveCleanup).
 *
 * Unlike PostgreSQL, creating `.ready` and renaming it to `.done` are durable (the file and the
 * directory are fsynced): a crash must not lose the note that a segment still needs archiving.
 * Lost notes are recreated anyway: a segment a checkpoint would remove that has no status file
 * at all is marked `.ready` then, as PostgreSQL does.
 *
 * All synchronous and small: one file per finished segment.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fsyncDirectory, walDir } from './wal-files.js';
import { PARTIAL_SUFFIX, hex8, parseXlogFileName, xlogFileName } from './xlog-internal.js';

/** archive_mode. */
export type ArchiveMode = 'off' | 'on' | 'always';

export type ArchiveStatus = 'ready' | 'done';

/** `DATADIR/pg_wal/archive_status`. */
export function archiveStatusDir(dataDir: string): string {
  return path.join(walDir(dataDir), 'archive_status');
}

/** StatusFilePath: `pg_wal/archive_status/<xlog>.<status>`. */
export function statusFilePath(dataDir: string, xlog: string, status: ArchiveStatus): string {
  return path.join(archiveStatusDir(dataDir), `${xlog}.${status}`);
}

/**
 * The names the archiver handles (pgarch.c's MIN_XFN_CHARS..MAX_XFN_CHARS over VALID_XFN_CHARS,
 * made exact): a segment, a partial segment, a timeline history file, a backup history file.
 */
const ARCHIVABLE_NAME = /^(?:[0-9A-F]{24}(?:\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history)$/;

export function isArchivableFileName(name: string): boolean {
  return ARCHIVABLE_NAME.test(name);
}

/** IsTLHistoryFileName. */
export function isTimelineHistoryFileName(name: string): boolean {
  return /^[0-9A-F]{8}\.history$/.test(name);
}

function exists(file: string): boolean {
  try {
    fs.statSync(file);
    return true;
  } catch {
    return false;
  }
}

/** The file's status, `.done` winning over `.ready` (the archiver renames one into the other). */
export function archiveStatusOf(dataDir: string, xlog: string): ArchiveStatus | null {
  if (exists(statusFilePath(dataDir, xlog, 'done'))) return 'done';
  if (exists(statusFilePath(dataDir, xlog, 'ready'))) return 'ready';
  // Race: the archiver may have renamed .ready to .done between the two looks.
  if (exists(statusFilePath(dataDir, xlog, 'done'))) return 'done';
  return null;
}

/** Creates an empty status file, fsynced with its directory. */
function createStatusFile(dataDir: string, xlog: string, status: ArchiveStatus): void {
  const dir = archiveStatusDir(dataDir);
  fs.mkdirSync(dir, { recursive: true });
  const fd = fs.openSync(statusFilePath(dataDir, xlog, status), 'w', 0o600);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fsyncDirectory(dir);
}

/**
 * XLogArchiveNotify: marks `xlog` (a file name in pg_wal/) `.ready` for the archiver, durably.
 * The caller wakes the archiver. Throws on an I/O error; callers treat that as PostgreSQL does
 * (a LOG line and carry on): the next checkpoint notices the missing status and retries.
 *
 * A `.done` left from before goes first: `.done` wins in archiveStatusOf, so beside a new
 * `.ready` it would let a checkpoint remove the file before the archiver has it. A crash
 * between the two leaves no status at all, which checkpoints turn back into `.ready`.
 */
export function xlogArchiveNotify(dataDir: string, xlog: string): void {
  const done = statusFilePath(dataDir, xlog, 'done');
  if (exists(done)) fs.rmSync(done, { force: true });
  createStatusFile(dataDir, xlog, 'ready');
}

/** XLogArchiveNotifySeg: XLogArchiveNotify for a segment, by number. */
export function xlogArchiveNotifySeg(dataDir: string, timeline: number, segNo: number, segmentSize: number): string {
  const name = xlogFileName(timeline, segNo, segmentSize);
  xlogArchiveNotify(dataDir, name);
  return name;
}

/**
 * XLogArchiveForceDone: marks `xlog` archived whether or not it was `.ready` (a segment that came
 * from the archive, or from an upstream that archives it itself).
 */
export function xlogArchiveForceDone(dataDir: string, xlog: string): void {
  if (exists(statusFilePath(dataDir, xlog, 'done'))) return;
  if (exists(statusFilePath(dataDir, xlog, 'ready'))) {
    xlogArchiveDone(dataDir, xlog);
    return;
  }
  createStatusFile(dataDir, xlog, 'done');
}

/**
 * The status of a WAL file this node received whole instead of writing it: a segment the
 * walreceiver finished (XLogWalRcvClose, and the last one of a timeline in WalReceiverMain), or a
 * file restore_command brought back (KeepFileRestoredFromArchive). Its upstream, or the archive
 * it came from, has it already: `.done` (XLogArchiveForceDone), with archive_mode off as well, so
 * that turning archiving on later does not archive it a second time. Only with archive_mode =
 * always does this node keep an archive of its own: `.ready` (XLogArchiveNotify), and the caller
 * wakes the archiver. Returns the status given. Throws on an I/O error, as xlogArchiveNotify.
 */
export function xlogArchiveMarkReceived(dataDir: string, xlog: string, archiveMode: ArchiveMode): ArchiveStatus {
  if (archiveMode === 'always') {
    xlogArchiveNotify(dataDir, xlog);
    return 'ready';
  }
  xlogArchiveForceDone(dataDir, xlog);
  return 'done';
}

/**
 * KeepFileRestoredFromArchive: moves a file restore_command wrote (`restoredPath`, in the data
 * directory) into pg_wal/ as `xlog`, replacing a local copy, durably (durable_rename: the file
 * fsynced, renamed, the directory fsynced) so that a crash leaves either copy whole. Then marks
 * it as received (xlogArchiveMarkReceived). Returns the status it gave, or meant to give when
 * `error` says why it could not: that is logged, not thrown, since the file is in place and
 * replay can go on, and checkpoints repair a missing status.
 */
export function keepFileRestoredFromArchive(dataDir: string, restoredPath: string, xlog: string, archiveMode: ArchiveMode): {
  status: ArchiveStatus; error: Error | null;
} {
  const fd = fs.openSync(restoredPath, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(restoredPath, path.join(walDir(dataDir), xlog));
  fsyncDirectory(walDir(dataDir));
  try {
    return { status: xlogArchiveMarkReceived(dataDir, xlog, archiveMode), error: null };
  } catch (error) {
    return { status: archiveMode === 'always' ? 'ready' : 'done', error: error as Error };
  }
}

/**
 * pgarch_archiveDone: `.ready` renamed to `.done`, durably (durable_rename: the renamed file and
 * the directory fsynced). Throws when `.ready` is not there.
 */
export function xlogArchiveDone(dataDir: string, xlog: string): void {
  const dir = archiveStatusDir(dataDir);
  const ready = statusFilePath(dataDir, xlog, 'ready');
  const fd = fs.openSync(ready, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(ready, statusFilePath(dataDir, xlog, 'done'));
  fsyncDirectory(dir);
}

/** Where the deleting side stands: archive_mode (null while not known yet), and whether in archive recovery. */
export interface ArchiveCheckContext {
  /**
   * archive_mode, or null when the caller does not know it (the end-of-recovery checkpoint runs
   * before the settings reach the WAL, and the engine's own tools know no settings): then a
   * `.ready` file is kept, no `.ready` is created, and a file without any status is kept when
   * `keepUnmarked` says so; the next checkpoint that knows the mode decides.
   */
  mode: ArchiveMode | null;
  /** A standby's restartpoint (RECOVERY_STATE_ARCHIVE). */
  inRecovery: boolean;
  /**
   * With `mode` null: whether a file with no status is kept (default true). removeOldSegments
   * keeps them when archive_status/ shows that archiving is in use here (archiveStatusInUse),
   * so that a notification lost to a crash is not lost for good before the mode is known.
   */
  keepUnmarked?: boolean;
}

/** Whether archive_status/ holds any `.ready` or `.done` file: archiving is, or was, in use here. */
export function archiveStatusInUse(dataDir: string): boolean {
  try {
    return fs.readdirSync(archiveStatusDir(dataDir)).some((name) => name.endsWith('.ready') || name.endsWith('.done'));
  } catch {
    return false;
  }
}

/**
 * XLogArchiveCheckDone: may the old WAL file `xlog` be removed? With archive_mode off, and during
 * archive recovery unless archive_mode is `always`, yes. Otherwise only when `.done`; with
 * `.ready` it stays; with no status at all (a notification lost to a crash, or a segment from
 * before archiving was on) it is marked `.ready` now, and stays.
 *
 * Returns whether it may be removed, and whether a `.ready` was created (so that the caller
 * wakes the archiver).
 */
export function xlogArchiveCheckDone(dataDir: string, xlog: string, context: ArchiveCheckContext): { removable: boolean; notified: boolean } {
  const { mode, inRecovery } = context;
  if (mode === 'off') return { removable: true, notified: false };
  if (mode !== null && mode !== 'always' && inRecovery) return { removable: true, notified: false };
  const status = archiveStatusOf(dataDir, xlog);
  if (status === 'done') return { removable: true, notified: false };
  if (status === 'ready') return { removable: false, notified: false };
  if (mode === null) return { removable: context.keepUnmarked === false, notified: false };
  // A primary, or a standby with archive_mode = always: retry the lost notification.
  try {
    xlogArchiveNotify(dataDir, xlog);
    return { removable: false, notified: true };
  } catch {
    return { removable: false, notified: false };
  }
}

/** XLogArchiveCleanup: removes the status files of a WAL file that was removed. */
export function xlogArchiveCleanup(dataDir: string, xlog: string): void {
  fs.rmSync(statusFilePath(dataDir, xlog, 'done'), { force: true });
  fs.rmSync(statusFilePath(dataDir, xlog, 'ready'), { force: true });
}

/**
 * pgarch_readyXlog, for up to `max` files: the names marked `.ready`, in the order the archiver
 * takes them: timeline history files first (a standby restored from the archive needs them to
 * follow a timeline), then by name, which is oldest first (a lower timeline before a higher
 * one, then segment order). Names that are not archivable WAL file names are ignored.
 */
export function readyXlogFiles(dataDir: string, max = Number.POSITIVE_INFINITY): string[] {
  let entries: string[];
  try {
    entries = fs.readdirSync(archiveStatusDir(dataDir));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const ready: string[] = [];
  for (const entry of entries) {
    if (!entry.endsWith('.ready')) continue;
    const name = entry.slice(0, -'.ready'.length);
    if (isArchivableFileName(name)) ready.push(name);
  }
  ready.sort(compareArchiveOrder);
  return ready.length > max ? ready.slice(0, max) : ready;
}

/** The archiver's order: history files before the rest, then by name. */
export function compareArchiveOrder(a: string, b: string): number {
  const ha = isTimelineHistoryFileName(a);
  const hb = isTimelineHistoryFileName(b);
  if (ha !== hb) return ha ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export interface PromotionArchiveStatus {
  dataDir: string;
  segmentSize: number;
  archiveMode: ArchiveMode;
  /** The new timeline, and the parent it forked from at `switchPoint`. */
  timeline: number;
  parentTimeline: number;
  switchPoint: number;
  /** The segment that holds the switch point (the new timeline's first). */
  switchSegNo: number;
}

/**
 * The archive status work at the end of archive recovery with promotion, once the new timeline
 * exists (PostgreSQL does it in pieces: KeepFileRestoredFromArchive, the walreceiver's and
 * pg_basebackup's `.done` markers, CleanupAfterArchiveRecovery, writeTimeLineHistory):
 *
 * - every old segment in pg_wal/ before the switch segment that has no status yet came from the
 *   archive, the upstream, or the base backup: the old primary archives those, so they are
 *   `.done` (with archive_mode = always this node archives them itself: `.ready`);
 * - with archiving on: the parent timeline's copy of the switch segment holds WAL only up to the
 *   switch point, so it is archived as `<name>.partial` (never under a full segment's name, where
 *   it could overwrite the old primary's complete copy): startNewTimeline kept that copy, or the
 *   segment is renamed so here, and it is marked `.ready`; so is the new timeline's history file.
 *   Checkpoints remove the `.partial` once it is archived and older than what they keep.
 *
 * Returns the names it marked `.ready` (for the log and to wake the archiver).
 */
export function archiveStatusAtPromotion(p: PromotionArchiveStatus): string[] {
  const notified: string[] = [];
  const archiving = p.archiveMode !== 'off';
  let names: string[];
  try {
    names = fs.readdirSync(walDir(p.dataDir));
  } catch {
    return notified;
  }
  for (const name of names) {
    const parsed = parseXlogFileName(name, p.segmentSize);
    if (parsed === null || parsed.segNo >= p.switchSegNo) continue;
    if (archiveStatusOf(p.dataDir, name) !== null) continue;
    if (p.archiveMode === 'always') {
      xlogArchiveNotify(p.dataDir, name);
      notified.push(name);
    } else {
      xlogArchiveForceDone(p.dataDir, name);
    }
  }
  if (!archiving) return notified;
  const oldName = xlogFileName(p.parentTimeline, p.switchSegNo, p.segmentSize);
  const oldPath = path.join(walDir(p.dataDir), oldName);
  const partialName = `${oldName}${PARTIAL_SUFFIX}`;
  const partialPath = path.join(walDir(p.dataDir), partialName);
  if (p.switchPoint % p.segmentSize !== 0) {
    // startNewTimeline made the .partial already, unless it kept the old segment where it was.
    if (exists(oldPath) && !exists(partialPath) && archiveStatusOf(p.dataDir, oldName) === null) {
      fs.renameSync(oldPath, partialPath);
      fsyncDirectory(walDir(p.dataDir));
    }
    if (exists(partialPath) && archiveStatusOf(p.dataDir, partialName) === null) {
      xlogArchiveNotify(p.dataDir, partialName);
      notified.push(partialName);
    }
  }
  const history = `${hex8(p.timeline)}.history`;
  if (exists(path.join(walDir(p.dataDir), history)) && archiveStatusOf(p.dataDir, history) === null) {
    xlogArchiveNotify(p.dataDir, history);
    notified.push(history);
  }
  return notified;
}
