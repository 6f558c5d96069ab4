/**
 * Timeline history files (PostgreSQL's `timeline.c`).
 *
 * Every promotion starts a new timeline, so that WAL written after the fork can never be confused
 * with WAL an old primary wrote past the same LSN. A timeline's history file,
 * `pg_wal/%08X.history`, lists its ancestors, one line per fork, oldest first:
 *
 *     parentTLI <tab> switchpoint X/X <tab> reason
 *
 * `#` lines and blank lines are ignored, and so is everything after the switch point. Timeline 1
 * has no file. A new file is the parent's file copied verbatim plus one line, so the newest
 * timeline's file holds the whole ancestry.
 *
 * The parsed form is PostgreSQL's `List *` of `TimeLineHistoryEntry`, newest first: the timeline
 * itself (the "tip", from its fork point to no end), then its parent, and so on down to the oldest
 * ancestor, which begins at 0. Each entry covers the LSNs `[begin, end)`.
 *
 * Walship's one difference in representation: PostgreSQL marks the open end of the tip with
 * `InvalidXLogRecPtr` (0) and special-cases it in every comparison; here the tip's `end` is
 * `TIMELINE_OPEN_END` (positive infinity), so `lsn < entry.end` holds for every LSN without a
 * special case. It is never written to disk or the wire; test it with `isOpenEnd`. The oldest
 * entry's `begin` is `INVALID_LSN` (0), as in PostgreSQL, which is at or below every LSN anyway.
 *
 * The parser and the queries are pure; the I/O helpers below them read and write `pg_wal/`
 * synchronously (callers are the startup component, promotion, and the walreceiver).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, WalshipError, assert } from '../errors.js';
import { INVALID_LSN, formatLsn, type Lsn } from '../lsn.js';
import { fsyncDirectory, walDir } from './wal-files.js';
import { hex8 } from './xlog-internal.js';

/** The open end of the newest timeline in a history (PostgreSQL: InvalidXLogRecPtr as `end`). */
export const TIMELINE_OPEN_END = Number.POSITIVE_INFINITY as Lsn;

/** Timeline IDs are uint32 on disk, in WAL page headers and on the wire; 0 is invalid. */
export const MAX_TIMELINE_ID = 0xffff_ffff;

/**
 * A history file is a few lines per promotion; 16 MiB is thousands of promotions beyond any real
 * cluster, and bounds what a corrupt or hostile file (one fetched from a primary) can make us hold.
 */
export const MAX_HISTORY_FILE_BYTES = 16 * 1024 * 1024;

/** One timeline of a history: it covers `[begin, end)`. */
export interface TimeLineHistoryEntry {
  tli: number;
  /** First LSN on this timeline; INVALID_LSN (0) for the oldest ancestor. */
  begin: Lsn;
  /** The switch point to the next timeline; TIMELINE_OPEN_END for the newest one. */
  end: Lsn;
  /** The reason text of the line that ended this timeline, when it was read from a file. */
  reason?: string;
}

export function isOpenEnd(lsn: number): boolean {
  return lsn === TIMELINE_OPEN_END;
}

/** `%08X.history` (TLHistoryFileName). */
export function historyFileName(tli: number): string {
  assertTimelineId(tli);
  return `${hex8(tli)}.history`;
}

/** `DATADIR/pg_wal/%08X.history` (TLHistoryFilePath). */
export function historyFilePath(dataDir: string, tli: number): string {
  return path.join(walDir(dataDir), historyFileName(tli));
}

/** The history of a timeline without a file: itself alone, from the beginning of WAL. */
export function singleTimelineHistory(tli: number): TimeLineHistoryEntry[] {
  assertTimelineId(tli);
  return [{ tli, begin: INVALID_LSN, end: TIMELINE_OPEN_END }];
}

// ---------------------------------------------------------------------------------------------
// Parsing and formatting (pure)
// ---------------------------------------------------------------------------------------------

/**
 * The fields of one line, as `sscanf(line, "%u\t%X/%X")` reads them: a decimal timeline ID, then
 * (after whitespace) a switch point `X/X`; the rest of the line, past whitespace, is the reason.
 */
const LINE_PATTERN = /^(\d+)(?:\s+([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)(?:\s+(.*))?)?/;

/**
 * Parses a history file's text (readTimeLineHistory without the file access). Returns the entries
 * newest first: `tli` itself from its fork point to TIMELINE_OPEN_END, then its ancestors.
 * Empty text gives the single-timeline history, as a missing file does.
 *
 * Throws a WalshipError (`wal_corrupted`) naming the file and the line, with PostgreSQL's
 * messages: "syntax error in history file: ..." for a line without a timeline ID or switch point,
 * "invalid data in history file: ..." when timeline IDs do not increase, and "invalid data in
 * history file "..."" when an ancestor's ID is not below `tli`. Walship also refuses a switch
 * point lower than the previous line's (PostgreSQL does not check it; no real history has one).
 */
export function parseTimeLineHistory(text: string, tli: number, fileName = historyFileName(tli)): TimeLineHistoryEntry[] {
  assertTimelineId(tli);
  const ancestors: TimeLineHistoryEntry[] = [];
  let previousEnd = INVALID_LSN;
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index]!.replace(/\r$/, '');
    const trimmed = line.replace(/^\s+/, '');
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const entry = parseHistoryLine(trimmed, fileName, index + 1);
    const last = ancestors[ancestors.length - 1];
    if (last !== undefined && entry.tli <= last.tli) {
      throw historyError(`invalid data in history file: ${line}`, fileName, index + 1, 'Timeline IDs must be in increasing sequence.');
    }
    if (entry.end < previousEnd) {
      throw historyError(`invalid data in history file: ${line}`, fileName, index + 1, 'Switch points must not decrease.');
    }
    ancestors.push({ tli: entry.tli, begin: previousEnd, end: entry.end, reason: entry.reason });
    previousEnd = entry.end;
  }
  const newestAncestor = ancestors[ancestors.length - 1];
  if (newestAncestor !== undefined && tli <= newestAncestor.tli) {
    throw new WalshipError(ErrorCode.walCorrupted, `invalid data in history file "${fileName}"`, {
      detail: `The file lists timeline ${newestAncestor.tli} as an ancestor of timeline ${tli}.`,
      hint: "Timeline IDs must be less than child timeline's ID.",
    });
  }
  const history: TimeLineHistoryEntry[] = [{ tli, begin: previousEnd, end: TIMELINE_OPEN_END }];
  for (let i = ancestors.length - 1; i >= 0; i--) history.push(ancestors[i]!);
  return history;
}

function parseHistoryLine(line: string, fileName: string, lineNumber: number): { tli: number; end: Lsn; reason: string } {
  const match = LINE_PATTERN.exec(line);
  if (match === null) {
    throw historyError(`syntax error in history file: ${line}`, fileName, lineNumber, 'Expected a numeric timeline ID.');
  }
  if (match[2] === undefined || match[3] === undefined) {
    throw historyError(`syntax error in history file: ${line}`, fileName, lineNumber, 'Expected a write-ahead log switchpoint location.');
  }
  const tli = Number(match[1]);
  const hi = parseInt(match[2], 16);
  const lo = parseInt(match[3], 16);
  const end = hi * 0x1_0000_0000 + lo;
  if (tli < 1 || tli > MAX_TIMELINE_ID || match[2].length > 8 || match[3].length > 8 || !Number.isSafeInteger(end)) {
    throw historyError(`invalid data in history file: ${line}`, fileName, lineNumber, 'Timeline ID or switch point out of range.');
  }
  return { tli, end: end as Lsn, reason: match[4] ?? '' };
}

function historyError(message: string, fileName: string, lineNumber: number, hint: string): WalshipError {
  return new WalshipError(ErrorCode.walCorrupted, message, { detail: `File "${fileName}", line ${lineNumber}.`, hint });
}

/** One history line, as writeTimeLineHistory appends it: `parentTLI\tX/X\treason\n`. */
export function formatTimeLineHistoryLine(parentTli: number, switchPoint: Lsn, reason: string): string {
  assertTimelineId(parentTli);
  assert(Number.isSafeInteger(switchPoint) && switchPoint >= 0, `switch point ${switchPoint} is not an LSN`);
  assert(!reason.includes('\n'), 'a timeline switch reason must be one line');
  return `${parentTli}\t${formatLsn(switchPoint)}\t${reason}\n`;
}

/**
 * Formats a parsed history (newest first, as parseTimeLineHistory returns it) back into a file's
 * text: one line per ancestor, oldest first; the newest entry, which has no switch point yet, has
 * no line. Round-trips with parseTimeLineHistory (PostgreSQL's blank separator lines aside).
 */
export function formatTimeLineHistory(history: readonly TimeLineHistoryEntry[]): string {
  assertHistory(history);
  let text = '';
  for (let i = history.length - 1; i >= 1; i--) {
    const entry = history[i]!;
    text += formatTimeLineHistoryLine(entry.tli, entry.end, entry.reason ?? '');
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// Queries (pure)
// ---------------------------------------------------------------------------------------------

/** Whether `tli` is the history's timeline or one of its ancestors (tliInHistory). */
export function tliInHistory(tli: number, history: readonly TimeLineHistoryEntry[]): boolean {
  return history.some((entry) => entry.tli === tli);
}

/**
 * The timeline in use at `lsn` in this history (tliOfPointInHistory): the entry whose
 * `[begin, end)` holds it. A switch point belongs to the newer timeline.
 */
export function tliOfPointInHistory(lsn: Lsn, history: readonly TimeLineHistoryEntry[]): number {
  for (const entry of history) {
    if (entry.begin <= lsn && lsn < entry.end) return entry.tli;
  }
  // PostgreSQL: elog(ERROR, "timeline history was not contiguous"); parsed histories always are.
  throw new WalshipError(ErrorCode.walCorrupted, 'timeline history was not contiguous', {
    detail: `No timeline of the history covers ${formatLsn(lsn)}.`,
  });
}

/**
 * Where the history left timeline `tli`, and for which timeline (tliSwitchPoint). The newest
 * timeline has not been left: its switch point is TIMELINE_OPEN_END and `nextTli` is null.
 * A timeline that is not in the history is an error, as in PostgreSQL ("requested timeline %u is
 * not in this server's history"), which the walsender reports to a standby asking for it.
 */
export function tliSwitchPoint(tli: number, history: readonly TimeLineHistoryEntry[]): { switchPoint: Lsn; nextTli: number | null } {
  let nextTli: number | null = null;
  for (const entry of history) {
    if (entry.tli === tli) return { switchPoint: entry.end, nextTli };
    nextTli = entry.tli;
  }
  throw new WalshipError(ErrorCode.invalidParameter, `requested timeline ${tli} is not in this server's history`, {
    detail: `The history holds timelines ${history.map((entry) => entry.tli).join(', ')}.`,
  });
}

/**
 * The acceptance rule of rescanLatestTimeLine: recovery replaying timeline `currentTli`, at
 * `replayLsn`, may switch its target to the timeline whose history is `newestHistory` only when
 * `currentTli` is an ancestor in that history (or the timeline itself) and the new timeline forked
 * off it at or after `replayLsn`. A fork before the replay position means this node has already
 * replayed WAL the new timeline does not have: following it would corrupt the node, which then
 * needs a rewind.
 */
export function canFollowTimeline(newestHistory: readonly TimeLineHistoryEntry[], currentTli: number, replayLsn: Lsn): boolean {
  const current = newestHistory.find((entry) => entry.tli === currentTli);
  if (current === undefined) return false;
  return current.end >= replayLsn;
}

function assertTimelineId(tli: number): void {
  assert(Number.isInteger(tli) && tli >= 1 && tli <= MAX_TIMELINE_ID, `timeline ID ${tli} out of range`);
}

function assertHistory(history: readonly TimeLineHistoryEntry[]): void {
  assert(history.length >= 1, 'a timeline history has at least its own timeline');
  assert(isOpenEnd(history[0]!.end), 'the newest entry of a history has no end');
  for (let i = 1; i < history.length; i++) {
    assert(history[i]!.tli < history[i - 1]!.tli, 'timeline IDs increase towards the newest entry');
    assert(history[i]!.end === history[i - 1]!.begin, 'a timeline begins where its parent ends');
  }
}

// ---------------------------------------------------------------------------------------------
// Files in pg_wal/ (synchronous I/O)
// ---------------------------------------------------------------------------------------------

/**
 * Reads timeline `tli`'s history from `pg_wal/` (readTimeLineHistory). Timeline 1 has no file,
 * and a missing file means no ancestors, as in PostgreSQL: both give the single-entry history.
 * A file that cannot be read, or is malformed, is an error.
 */
export function readTimeLineHistory(dataDir: string, tli: number): TimeLineHistoryEntry[] {
  if (tli === 1) return singleTimelineHistory(tli);
  const file = historyFilePath(dataDir, tli);
  let text: string;
  try {
    text = readBoundedFile(file);
  } catch (error) {
    if (isNotFound(error)) return singleTimelineHistory(tli);
    throw fileError('could not read file', file, error);
  }
  return parseTimeLineHistory(text, tli, file);
}

/** Whether a history file exists for `tli` in `pg_wal/` (existsTimeLineHistory); never for 1. */
export function existsTimeLineHistory(dataDir: string, tli: number): boolean {
  if (tli === 1) return false;
  const file = historyFilePath(dataDir, tli);
  try {
    fs.statSync(file);
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw fileError('could not open file', file, error);
  }
}

/**
 * The newest timeline with a history file, probing upward from `startTli`, which is assumed to
 * exist (findNewestTimeLine). The result + 1 is guaranteed not to be a known timeline, so
 * promotion may take it. Gaps end the probe, as in PostgreSQL.
 */
export function findNewestTimeLine(dataDir: string, startTli: number): number {
  assertTimelineId(startTli);
  let newest = startTli;
  for (let probe = startTli + 1; probe <= MAX_TIMELINE_ID; probe++) {
    if (!existsTimeLineHistory(dataDir, probe)) break;
    newest = probe;
  }
  return newest;
}

/**
 * Writes the history file of a new timeline (writeTimeLineHistory): the parent's file copied
 * verbatim (none for timeline 1, or when it is missing), a newline in case it did not end with
 * one, and the line for this switch. The content is parsed back before it is put in place, then
 * written under a temporary name, fsynced, renamed and the directory fsynced, so a crash leaves
 * either no file or the whole file. Returns the file name; the caller notifies the archiver
 * (XLogArchiveNotify), which owns `archive_status/`.
 */
export function writeTimeLineHistory(dataDir: string, newTli: number, parentTli: number, switchPoint: Lsn, reason: string): string {
  assertTimelineId(newTli);
  assertTimelineId(parentTli);
  assert(newTli > parentTli, `new timeline ${newTli} must be above its parent ${parentTli}`);
  let content = '';
  if (parentTli !== 1) {
    const parentFile = historyFilePath(dataDir, parentTli);
    try {
      content = readBoundedFile(parentFile) + '\n';
    } catch (error) {
      if (!isNotFound(error)) throw fileError('could not read file', parentFile, error);
    }
  }
  content += formatTimeLineHistoryLine(parentTli, switchPoint, reason);
  const history = parseTimeLineHistory(content, newTli);
  assert(history[1]?.tli === parentTli && history[1].end === switchPoint, 'the written history ends with this switch');
  writeFileDurably(dataDir, historyFileName(newTli), content);
  return historyFileName(newTli);
}

/**
 * Writes a history file with the given content (writeTimeLineHistoryFile): the walreceiver's copy
 * of a file fetched from the primary with TIMELINE_HISTORY. The content is validated first; the
 * write is durable as in writeTimeLineHistory.
 */
export function writeTimeLineHistoryFile(dataDir: string, tli: number, content: string): void {
  assert(tli !== 1, 'timeline 1 has no history file');
  if (Buffer.byteLength(content) > MAX_HISTORY_FILE_BYTES) {
    throw new WalshipError(ErrorCode.walCorrupted, `history file "${historyFileName(tli)}" is too large`, {
      detail: `It has ${Buffer.byteLength(content)} bytes; the limit is ${MAX_HISTORY_FILE_BYTES}.`,
    });
  }
  parseTimeLineHistory(content, tli);
  writeFileDurably(dataDir, historyFileName(tli), content);
}

function writeFileDurably(dataDir: string, name: string, content: string): void {
  const dir = walDir(dataDir);
  const temp = path.join(dir, `xlogtemp.${process.pid}.history`);
  fs.rmSync(temp, { force: true });
  const bytes = Buffer.from(content, 'utf8');
  const fd = fs.openSync(temp, 'wx', 0o600);
  try {
    for (let written = 0; written < bytes.length; ) written += fs.writeSync(fd, bytes, written, bytes.length - written);
    fs.fsyncSync(fd);
  } catch (error) {
    fs.closeSync(fd);
    fs.rmSync(temp, { force: true });
    throw fileError('could not write to file', temp, error);
  }
  fs.closeSync(fd);
  fs.renameSync(temp, path.join(dir, name));
  fsyncDirectory(dir);
}

function readBoundedFile(file: string): string {
  const size = fs.statSync(file).size;
  if (size > MAX_HISTORY_FILE_BYTES) {
    throw new WalshipError(ErrorCode.walCorrupted, `history file "${file}" is too large`, {
      detail: `It has ${size} bytes; the limit is ${MAX_HISTORY_FILE_BYTES}.`,
    });
  }
  return fs.readFileSync(file, 'utf8');
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | null)?.code === 'ENOENT';
}

function fileError(what: string, file: string, error: unknown): unknown {
  if (error instanceof WalshipError) return error;
  return new WalshipError(ErrorCode.ioError, `${what} "${file}": ${(error as Error).message}`, { cause: error });
}
