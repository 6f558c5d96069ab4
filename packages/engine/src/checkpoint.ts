/**
 * CreateCheckPoint, in the seed's order: fix the redo point; flush everything (CheckPointGuts:
 * every dirty buffer through bufferSync, WAL first, then fsync the relation files); write the
 * checkpoint record and flush it; update the control file; then remove the WAL segments that
 * recovery no longer needs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeControlFile, DbState, type ControlFileData } from './control-file.js';
import { formatLsn, type Lsn } from './lsn.js';
import { encodeCheckPoint } from './wal/record-data.js';
import { archiveStatusInUse, statusFilePath, xlogArchiveCheckDone, xlogArchiveCleanup, type ArchiveCheckContext, type ArchiveMode } from './wal/archive-status.js';
import { fsyncDirectory, listSegments, walDir } from './wal/wal-files.js';
import { segmentOf } from './wal/xlog-internal.js';
import { RmgrId, SIZE_OF_XLOG_RECORD, XlogInfo } from './wal/xlog-record.js';
import type { Xlog } from './wal/xlog.js';

/** Checkpoint flags (PostgreSQL's CHECKPOINT_* bits). */
export const CheckpointFlags = {
  isShutdown: 0x0001,
  endOfRecovery: 0x0002,
  immediate: 0x0004,
  force: 0x0008,
  flushAll: 0x0010,
  wait: 0x0020,
  causeXlog: 0x0040,
  causeTime: 0x0080,
} as const;

export interface CheckpointBufferPool {
  dirtyBlocks(): Array<{ relNode: number; blockNo: number }>;
  flushBlock(relNode: number, blockNo: number): boolean;
}

export interface CheckpointSmgr {
  fsyncAll(): Promise<void>;
}

/**
 * CheckpointWriteDelay: called between batches of a checkpoint's buffer writes with the fraction
 * of them written so far; the next batch is written when it resolves. The checkpointer gives one
 * to a timed or WAL-volume checkpoint to spread its writes (checkpoint_completion_target); without
 * one, a checkpoint only lets the event loop run between batches.
 */
export type CheckpointWriteDelay = (progress: number) => Promise<void>;

/** Where a spread checkpoint stands against its two clocks (IsCheckpointOnSchedule's inputs). */
export interface CheckpointSchedule {
  /** checkpoint_completion_target: the share of the interval the writes are spread over. */
  completionTarget: number;
  /** Since the checkpoint started, and checkpoint_timeout; a timeout of 0 leaves time out. */
  elapsedMs: number;
  timeoutMs: number;
  /**
   * WAL written (on a standby, replayed) since the checkpoint started, and the volume that asks
   * for the next checkpoint (max_wal_size / (1 + completion target)); 0 leaves WAL out.
   */
  walSinceStart: number;
  walTriggerBytes: number;
}

/**
 * IsCheckpointOnSchedule: whether a spread checkpoint that has written `progress` (0 to 1) of its
 * buffers is ahead of both the time and the WAL that will ask for the next one, scaled by the
 * completion target, so that it ends at that fraction of the interval. Ahead, the checkpointer
 * naps; behind, it writes.
 */
export function isCheckpointOnSchedule(progress: number, schedule: CheckpointSchedule): boolean {
  const target = progress * schedule.completionTarget;
  if (schedule.walTriggerBytes > 0 && target < schedule.walSinceStart / schedule.walTriggerBytes) return false;
  if (schedule.timeoutMs > 0 && target < schedule.elapsedMs / schedule.timeoutMs) return false;
  return true;
}

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export interface CheckpointContext {
  dataDir: string;
  xlog: Xlog;
  pool: CheckpointBufferPool;
  smgr: CheckpointSmgr;
  control: ControlFileData;
  nextXid: () => number;
  /** WAL to keep behind the redo pointer (wal_keep_size), in bytes. */
  walKeepBytes: number;
  /**
   * The oldest WAL something besides recovery still needs — running base backups, replication
   * slots — if anything. `end` is where this checkpoint's WAL ends (max_slot_wal_keep_size is
   * measured back from it); slots past that cap are invalidated in here, before any removal.
   */
  keepWalFrom?: (at: { redo: Lsn; end: Lsn }) => Lsn | null;
  /** Paces the buffer writes of a spread checkpoint (never of a shutdown or end-of-recovery one). */
  writeDelay?: CheckpointWriteDelay;
  log: (level: 'LOG' | 'WARNING', message: string) => void;
}

export interface CheckpointResult {
  skipped: boolean;
  lsn: Lsn;
  redo: Lsn;
  buffersWritten: number;
  segmentsRemoved: number;
  elapsedMs: number;
}

/** A checkpoint writes this many buffers between yields, so that clients keep being served. */
const BUFFERS_PER_YIELD = 64;

export async function createCheckPoint(ctx: CheckpointContext, flags: number): Promise<CheckpointResult> {
  const started = performance.now();
  const { xlog, control } = ctx;
  const shutdown = (flags & (CheckpointFlags.isShutdown | CheckpointFlags.endOfRecovery)) !== 0;

  // Nothing happened since the last checkpoint: skip, unless forced (CreateCheckPoint's test
  // for an idle system: the last important record is the last checkpoint record; heartbeats
  // after it do not count).
  if ((flags & (CheckpointFlags.force | CheckpointFlags.isShutdown | CheckpointFlags.endOfRecovery)) === 0 &&
      xlog.getLastImportantRecPtr() === control.checkpointLsn) {
    return { skipped: true, lsn: control.checkpointLsn, redo: control.redoLsn, buffersWritten: 0, segmentsRemoved: 0, elapsedMs: 0 };
  }

  ctx.log('LOG', `checkpoint starting: ${describeCheckpointFlags(flags)}`);

  // 1. The redo point: from here on, the first change to each page logs a full image. The
  // record says whether full_page_writes was on at this point, as CheckPoint.fullPageWrites
  // does: a standby's base backup starting from it relies on that.
  const fullPageWrites = xlog.updateFullPageWrites();
  const redo = xlog.nextRecordStart();
  xlog.redoRecPtr = redo;

  // 2. CheckPointGuts: write every dirty buffer, WAL first; then fsync the relation files.
  await xlog.xlogFlush(xlog.getInsertRecPtr());
  let buffersWritten = 0;
  const dirty = ctx.pool.dirtyBlocks();
  for (let i = 0; i < dirty.length; i++) {
    const block = dirty[i]!;
    if (ctx.pool.flushBlock(block.relNode, block.blockNo)) buffersWritten++;
    if (!shutdown && i % BUFFERS_PER_YIELD === BUFFERS_PER_YIELD - 1) await (ctx.writeDelay?.((i + 1) / dirty.length) ?? yieldToEventLoop());
  }
  await ctx.smgr.fsyncAll();

  // 3. The checkpoint record, flushed.
  const time = Date.now();
  const nextXid = ctx.nextXid();
  const data = encodeCheckPoint({
    redo, timeline: xlog.timeline, prevTimeline: control.prevTimeline || xlog.timeline, fullPageWrites, nextXid, time,
  });
  const record = Buffer.alloc(SIZE_OF_XLOG_RECORD + 2 + data.length);
  record.writeUInt16LE(0, SIZE_OF_XLOG_RECORD);
  data.copy(record, SIZE_OF_XLOG_RECORD + 2);
  const info = shutdown ? XlogInfo.checkpointShutdown : XlogInfo.checkpointOnline;
  const { start, end } = xlog.xlogInsertRecord(record, record.length, RmgrId.xlog, info, 0);
  await xlog.xlogFlush(end);

  // 4. The control file.
  control.checkpointLsn = start;
  control.redoLsn = redo;
  control.timeline = xlog.timeline;
  control.nextXid = nextXid;
  control.checkpointTime = time;
  control.fullPageWrites = fullPageWrites;
  control.state = (flags & CheckpointFlags.isShutdown) !== 0 ? DbState.shutdowned : DbState.inProduction;
  writeControlFile(ctx.dataDir, control);

  // 5. Segments before the redo point (less what wal_keep_size keeps) are no longer needed.
  const keepFrom = ctx.keepWalFrom?.({ redo, end }) ?? null;
  const segmentsRemoved = removeOldSegments(ctx.dataDir, xlog.segmentSize, keepFrom !== null && keepFrom < redo ? keepFrom : redo, ctx.walKeepBytes, {
    mode: xlog.archiveMode, inRecovery: false, onNotify: (name) => xlog.onArchiveNotify?.(name, null),
  });

  const elapsedMs = performance.now() - started;
  const result = { skipped: false, lsn: start, redo, buffersWritten, segmentsRemoved, elapsedMs };
  ctx.log('LOG', describeCheckpoint(result, 'checkpoint'));
  return result;
}

/** The reasons PostgreSQL's log_checkpoints prints: "shutdown immediate", "time", "wal", ... */
export function describeCheckpointFlags(flags: number): string {
  const words: string[] = [];
  if (flags & CheckpointFlags.isShutdown) words.push('shutdown');
  if (flags & CheckpointFlags.endOfRecovery) words.push('end-of-recovery');
  if (flags & CheckpointFlags.immediate) words.push('immediate');
  if (flags & CheckpointFlags.force) words.push('force');
  if (flags & CheckpointFlags.wait) words.push('wait');
  if (flags & CheckpointFlags.causeXlog) words.push('wal');
  if (flags & CheckpointFlags.causeTime) words.push('time');
  return words.join(' ');
}

/**
 * Archiving's say in segment removal (XLogArchiveCheckDone): archive_mode (null when not known:
 * keep whatever is not `.done`), whether in archive recovery, and who to tell when a lost `.ready`
 * was recreated (the archiver's wake-up).
 */
export interface RemoveSegmentsArchiveContext extends ArchiveCheckContext {
  onNotify?: (fileName: string) => void;
}

/**
 * RemoveOldXlogFiles: deletes segments wholly before the one holding `redo`, keeping `keepBytes`
 * more, and never one the archiver has not archived yet (XLogArchiveCheckDone); the status files
 * of a removed segment go with it (XLogArchiveCleanup). Without `archive`, a segment marked
 * `.ready` is kept and the rest removed; with archive_mode not known, see ArchiveCheckContext.
 *
 * `.partial` segments (IsPartialXLogFileName) are removed by the same rules, by their segment
 * number: nothing reads them, and once archived they would otherwise stay for good. (PostgreSQL
 * compares names as strings, where a `.partial` sorts after its full segment, so it goes once the
 * cutoff is one segment further; the segment number is what says that WAL is no longer needed.)
 */
export function removeOldSegments(dataDir: string, segmentSize: number, redo: Lsn, keepBytes: number, archive?: RemoveSegmentsArchiveContext): number {
  const keepSegments = Math.ceil(keepBytes / segmentSize);
  const cutoff = segmentOf(redo, segmentSize) - keepSegments;
  let removed = 0;
  let context = archive;
  for (const segment of listSegments(dataDir, segmentSize, { includePartial: true })) {
    if (segment.segNo >= cutoff) continue;
    if (context !== undefined && context.mode === null && context.keepUnmarked === undefined) {
      context = { ...context, keepUnmarked: archiveStatusInUse(dataDir) };
    }
    const check = context === undefined
      ? { removable: !fs.existsSync(statusFilePath(dataDir, segment.name, 'ready')), notified: false }
      : xlogArchiveCheckDone(dataDir, segment.name, context);
    if (check.notified) context?.onNotify?.(segment.name);
    if (!check.removable) continue;
    try {
      fs.unlinkSync(path.join(walDir(dataDir), segment.name));
      removed++;
    } catch {
      // Already gone: nothing to do.
    }
    xlogArchiveCleanup(dataDir, segment.name);
  }
  if (removed > 0) fsyncDirectory(walDir(dataDir));
  return removed;
}

export function describeCheckpoint(result: CheckpointResult, kind: string): string {
  return `${kind} complete: wrote ${result.buffersWritten} buffers; ${result.segmentsRemoved} WAL file(s) removed; ` +
    `total=${(result.elapsedMs / 1000).toFixed(3)} s; lsn=${formatLsn(result.lsn)}, redo lsn=${formatLsn(result.redo)}`;
}

export interface RestartPointContext {
  dataDir: string;
  control: ControlFileData;
  pool: CheckpointBufferPool;
  smgr: CheckpointSmgr;
  /** The newest checkpoint record replay has applied (lastCheckPoint in xlogrecovery.c). */
  lastCheckpointSeen: { lsn: Lsn; redo: Lsn; timeline: number; fullPageWrites: boolean; nextXid: number; time: number } | null;
  segmentSize: number;
  walKeepBytes: number;
  /**
   * The oldest WAL something besides this standby's own recovery still needs — base backups
   * running on it (their start point) — if anything: KeepLogSeg's say in a restartpoint.
   */
  keepWalFrom?: () => Lsn | null;
  /** archive_mode: with `always` the standby archives, and keeps what it has not archived yet. */
  archiveMode?: ArchiveMode | null;
  /** Wakes the archiver when a lost `.ready` was recreated. */
  onArchiveNotify?: (fileName: string) => void;
  /** Paces the buffer writes, as a spread checkpoint's (CheckpointContext.writeDelay). */
  writeDelay?: CheckpointWriteDelay;
  log: (level: 'LOG' | 'WARNING', message: string) => void;
}

/**
 * CreateRestartPoint: a standby's checkpoint. It cannot write a checkpoint record of its own,
 * so it uses the newest checkpoint record replay has applied: flush every dirty buffer (each
 * page write first moves the minimum recovery point past it), fsync, then point the control file
 * at that record, so that a restart replays from its redo point instead of from the base backup.
 * WAL before that redo point is no longer needed here.
 */
export async function createRestartPoint(ctx: RestartPointContext): Promise<CheckpointResult> {
  const started = performance.now();
  const seen = ctx.lastCheckpointSeen;
  const { control } = ctx;
  if (seen === null || seen.lsn <= control.checkpointLsn) {
    return { skipped: true, lsn: control.checkpointLsn, redo: control.redoLsn, buffersWritten: 0, segmentsRemoved: 0, elapsedMs: 0 };
  }
  ctx.log('LOG', 'restartpoint starting: time');
  let buffersWritten = 0;
  const dirty = ctx.pool.dirtyBlocks();
  for (let i = 0; i < dirty.length; i++) {
    const block = dirty[i]!;
    if (ctx.pool.flushBlock(block.relNode, block.blockNo)) buffersWritten++;
    if (i % BUFFERS_PER_YIELD === BUFFERS_PER_YIELD - 1) await (ctx.writeDelay?.((i + 1) / dirty.length) ?? yieldToEventLoop());
  }
  await ctx.smgr.fsyncAll();
  control.checkpointLsn = seen.lsn;
  control.redoLsn = seen.redo;
  control.timeline = seen.timeline;
  control.nextXid = Math.max(control.nextXid, seen.nextXid);
  control.checkpointTime = seen.time;
  control.fullPageWrites = seen.fullPageWrites;
  writeControlFile(ctx.dataDir, control);
  // Asked only now, after the awaits above: a base backup that started meanwhile holds its WAL.
  const keepFrom = ctx.keepWalFrom?.() ?? null;
  const removeBefore = keepFrom !== null && keepFrom < seen.redo ? keepFrom : seen.redo;
  const segmentsRemoved = removeOldSegments(ctx.dataDir, ctx.segmentSize, removeBefore, ctx.walKeepBytes, {
    mode: ctx.archiveMode ?? null, inRecovery: true, ...(ctx.onArchiveNotify !== undefined ? { onNotify: ctx.onArchiveNotify } : {}),
  });
  const result = { skipped: false, lsn: seen.lsn, redo: seen.redo, buffersWritten, segmentsRemoved, elapsedMs: performance.now() - started };
  ctx.log('LOG', describeCheckpoint(result, 'restartpoint'));
  ctx.log('LOG', `recovery restart point at ${formatLsn(seen.redo)}`);
  return result;
}
