/**
 * WAL recovery (PostgreSQL's xlogrecovery.c): InitWalRecovery decides where replay starts and
 * whether this is crash recovery or a standby; `replayAvailable` is PerformWalRecovery's loop
 * body, applying records one at a time for as long as WAL is there; the caller (the startup
 * component) waits for more WAL in between, through its WAL-source state machine.
 *
 * The pages are changed only by redo, one record at a time, synchronously: a hot-standby read
 * served between two records sees one transaction boundary.
 *
 * Consistency: a standby may serve reads once replay has passed the minimum recovery point (the
 * end of the base backup, or the highest page LSN flushed before a restart). Every page write
 * during recovery first moves the minimum recovery point to the replay position (WAL before
 * data, as XLogFlush does in recovery), so a restarted standby never trusts pages "from the
 * future" before it has replayed up to them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BLCKSZ } from './constants.js';
import { DB_STATE_NAMES, DbState, readControlFile, writeControlFile, type ControlFileData } from './control-file.js';
import { ErrorCode, WalshipError } from './errors.js';
import { formatLsn, parseLsn, type Lsn } from './lsn.js';
import { redoRecord } from './recovery.js';
import { BufferPool } from './storage/buffer-pool.js';
import { Smgr } from './storage/smgr.js';
import { Store } from './storage/store.js';
import { decodeCheckPoint, decodeFpwChange, decodeHeartbeat } from './wal/record-data.js';
import { SegmentFilePageSource, findSegmentTimelineFinal, fsyncDirectory, removeTempXlogFiles } from './wal/wal-files.js';
import { segmentOf } from './wal/xlog-internal.js';
import { XLogReader } from './wal/xlog-reader.js';
import { RmgrId, XlogInfo, type DecodedRecord } from './wal/xlog-record.js';
import type { LogFunction } from './database.js';
import { readTimeLineHistory, type TimeLineHistoryEntry } from './wal/timeline.js';

export const STANDBY_SIGNAL_FILE = 'standby.signal';
export const BACKUP_LABEL_FILE = 'backup_label';

/** Why replay stopped. */
export type ReplayStop =
  | { kind: 'budget' }
  /** recovery_min_apply_delay: the next commit may be applied at `untilMs` (ms since the epoch). */
  | { kind: 'delay'; untilMs: number }
  /** The next record is not there (yet): wait for WAL up to `neededLsn`, or end crash recovery. */
  | { kind: 'needWal'; lsn: Lsn; neededLsn: Lsn; message: string }
  /** The next record is invalid: on a standby, try another source; in crash recovery, decide torn tail or corruption. */
  | { kind: 'invalid'; lsn: Lsn; message: string };

export interface CheckpointSeen {
  lsn: Lsn;
  redo: Lsn;
  timeline: number;
  fullPageWrites: boolean;
  nextXid: number;
  time: number;
}

export interface BackupLabel {
  startLsn: Lsn;
  checkpointLsn: Lsn;
  timeline: number;
  endLsn: Lsn | null;
  label: string;
  /** BACKUP FROM: a standby's backup starts at a restartpoint and ends at its replay position. */
  backupFrom: 'primary' | 'standby';
}

export interface WalRecoveryOptions {
  dataDir: string;
  sharedBuffersBytes: number;
  log: LogFunction;
}

export class WalRecovery {
  readonly dataDir: string;
  readonly control: ControlFileData;
  readonly smgr: Smgr;
  readonly pool: BufferPool;
  readonly store: Store;
  readonly standbyMode: boolean;
  readonly backupLabel: BackupLabel | null;
  readonly source: SegmentFilePageSource;
  private readonly reader: XLogReader;
  private readonly log: LogFunction;
  /** The history of the timeline being recovered into, newest first (expectedTLEs). */
  expectedTimelines: TimeLineHistoryEntry[];
  /** timelineOfSegment's last final answer, for the expected timelines it was found under. */
  private segmentTimelineCache: { segNo: number; tli: number; history: TimeLineHistoryEntry[] } | null = null;
  /** End of the last replayed record (lastReplayedEndRecPtr): the replay position. */
  replayEndLsn: Lsn;
  /** Start of the last replayed record: the prev-link of the next one. */
  lastRecordLsn: Lsn;
  /** Timeline of the last replayed record. */
  replayTimeline: number;
  /** End of the checkpoint record replay started from; an invalid record before it is corruption. */
  readonly checkpointEndLsn: Lsn;
  /** Commit time (ms since the epoch) of the last replayed transaction, or 0. */
  lastCommitTime = 0;
  /**
   * Time stamped in the last replayed record that carries one (a commit or a heartbeat), or 0:
   * the replay delay is now minus this. Heartbeats keep it fresh while the primary is idle,
   * where the last commit time alone would make the delay grow without end.
   */
  lastReplayedTimestamp = 0;
  nextXid: number;
  recordsReplayed = 0;
  readonly startLsn: Lsn;
  consistent = false;
  /** The newest checkpoint record replayed: what a restartpoint would use. */
  lastCheckpointSeen: CheckpointSeen | null = null;
  /** full_page_writes as the replayed WAL last stated it (a checkpoint or XLOG_FPW_CHANGE record). */
  lastFullPageWrites: boolean;
  /**
   * Start of the last replayed XLOG_FPW_CHANGE record that turned full_page_writes off
   * (lastFpwDisableRecPtr), or 0: WAL after it may lack the full-page images that repair a page
   * copied torn, so a base backup of this standby whose start point is not past it is refused.
   */
  lastFpwDisableLsn: Lsn = 0 as Lsn;
  /** Start points of the base backups running on this standby: restartpoints keep their WAL. */
  private readonly backupStarts: Lsn[] = [];
  /** Runs after each replayed record's end was published (cascading walsenders, read waiters). */
  onReplay: ((endLsn: Lsn, record: DecodedRecord) => void) | null = null;
  /** recovery_min_apply_delay in ms (0: none); promotion sets it to 0 (stop delaying). */
  minApplyDelayMs = 0;

  private constructor(options: WalRecoveryOptions, control: ControlFileData, standbyMode: boolean, backupLabel: BackupLabel | null) {
    this.dataDir = options.dataDir;
    this.log = options.log;
    this.control = control;
    this.standbyMode = standbyMode;
    this.backupLabel = backupLabel;
    this.smgr = new Smgr(options.dataDir);
    this.pool = new BufferPool({
      smgr: this.smgr,
      nBuffers: Math.max(16, Math.floor(options.sharedBuffersBytes / BLCKSZ)),
      flushWal: (lsn: Lsn) => this.updateMinRecoveryPoint(lsn),
    });
    this.store = new Store(this.pool);
    this.expectedTimelines = readTimeLineHistory(options.dataDir, backupLabel?.timeline ?? control.timeline);
    this.source = new SegmentFilePageSource(options.dataDir, (segNo) => this.timelineOfSegment(segNo), control.walSegmentSize);
    this.reader = new XLogReader({ segmentSize: control.walSegmentSize, systemId: control.systemId, source: this.source });

    const checkpointLsn = backupLabel?.checkpointLsn ?? control.checkpointLsn;
    const redoLsn = backupLabel?.startLsn ?? control.redoLsn;
    this.reader.beginRead(checkpointLsn);
    const checkpoint = this.reader.readRecord();
    const isCheckpoint = checkpoint.ok && checkpoint.record.rmid === RmgrId.xlog &&
      ((checkpoint.record.info & 0xf0) === XlogInfo.checkpointOnline || (checkpoint.record.info & 0xf0) === XlogInfo.checkpointShutdown);
    if (!isCheckpoint) {
      throw new WalshipError(ErrorCode.walCorrupted, 'could not locate a valid checkpoint record', {
        severity: 'PANIC',
        detail: checkpoint.ok
          ? `The record at ${formatLsn(checkpointLsn)} is not a checkpoint record.`
          : `Reading the checkpoint record at ${formatLsn(checkpointLsn)} failed: ${checkpoint.message}.`,
        hint: backupLabel !== null
          ? `The base backup is incomplete: "${BACKUP_LABEL_FILE}" points at WAL that is not in pg_wal/. Take a new base backup.`
          : 'The WAL of this data directory is damaged. Restore it from a backup, or take a new base backup from another node.',
      });
    }
    const data = decodeCheckPoint(checkpoint.record)!;
    this.checkpointEndLsn = checkpoint.record.endLsn;
    // The control file describes the checkpoint replay starts from (ControlFile->checkPointCopy),
    // full_page_writes included, which a base backup of this standby checks before a restartpoint.
    control.fullPageWrites = data.fullPageWrites;
    this.lastFullPageWrites = data.fullPageWrites;
    this.nextXid = Math.max(control.nextXid, data.nextXid);
    this.replayTimeline = data.timeline;
    this.startLsn = redoLsn;
    this.reader.beginRead(redoLsn);
    this.replayEndLsn = redoLsn;
    this.lastRecordLsn = checkpointLsn;
    if (backupLabel?.endLsn != null && backupLabel.endLsn > control.minRecoveryLsn) {
      control.minRecoveryLsn = backupLabel.endLsn;
      control.minRecoveryTimeline = backupLabel.timeline;
    }
    this.checkConsistency(false);
  }

  /**
   * InitWalRecovery: reads the control file, `standby.signal` and `backup_label`, marks the
   * control file as in recovery, and positions replay at the redo point.
   */
  static open(options: WalRecoveryOptions): WalRecovery {
    const control = readControlFile(options.dataDir);
    // A segment being created ahead (16 MB) when the node died would otherwise stay for ever.
    const tempFiles = removeTempXlogFiles(options.dataDir);
    if (tempFiles > 0) options.log('DEBUG', `removed ${tempFiles} temporary WAL file(s) left by a crash`);
    const standbyMode = fs.existsSync(path.join(options.dataDir, STANDBY_SIGNAL_FILE));
    const backupLabel = readBackupLabel(options.dataDir);
    const log = options.log;
    // A standby's backup carries its control file as it was during recovery; any other state
    // means the control file is not the one copied with this label.
    if (backupLabel?.backupFrom === 'standby' && control.state !== DbState.inArchiveRecovery && control.state !== DbState.shutdownedInRecovery) {
      throw new WalshipError(ErrorCode.dataCorrupted, 'backup_label contains data inconsistent with control file', {
        severity: 'FATAL',
        detail: `The label says the backup was taken from a standby, but the control file says "${DB_STATE_NAMES[control.state] ?? control.state}".`,
        hint: 'This means that the backup is corrupted and you will have to use another backup for recovery.',
      });
    }
    if (backupLabel !== null) {
      log('LOG', `starting backup recovery with redo LSN ${formatLsn(backupLabel.startLsn)}, checkpoint LSN ${formatLsn(backupLabel.checkpointLsn)}, on timeline ID ${backupLabel.timeline}`);
    } else if (control.state === DbState.shutdowned || control.state === DbState.shutdownedInRecovery) {
      log('LOG', `database system was shut down${control.state === DbState.shutdownedInRecovery ? ' in recovery' : ''} at ${new Date(control.time).toISOString()}`);
    } else {
      log('LOG', `database system was interrupted${control.state === DbState.inArchiveRecovery ? ' while in recovery' : ''}; last known up at ${new Date(control.time).toISOString()}`);
      if (!standbyMode) log('LOG', 'database system was not properly shut down; automatic recovery in progress');
    }
    if (standbyMode) log('LOG', 'entering standby mode');
    const recovery = new WalRecovery(options, control, standbyMode, backupLabel);
    const needsRecovery = standbyMode || backupLabel !== null || control.state !== DbState.shutdowned;
    if (needsRecovery) {
      control.state = standbyMode || backupLabel !== null ? DbState.inArchiveRecovery : DbState.inCrashRecovery;
      if (backupLabel !== null) {
        // The control file takes over what the label said (where replay starts, how far it must
        // get), durably; only then is the label retired, as StartupXLOG does: a restart after
        // a restartpoint must start from the restartpoint, not from the backup's WAL.
        control.checkpointLsn = backupLabel.checkpointLsn;
        control.redoLsn = backupLabel.startLsn;
        control.timeline = backupLabel.timeline;
        control.backupStartLsn = backupLabel.startLsn;
        if (backupLabel.endLsn !== null) control.backupEndLsn = backupLabel.endLsn;
      }
      writeControlFile(options.dataDir, control);
      if (backupLabel !== null) {
        const label = path.join(options.dataDir, BACKUP_LABEL_FILE);
        fs.renameSync(label, `${label}.old`);
        fsyncDirectory(options.dataDir);
      }
      log('LOG', `redo starts at ${formatLsn(recovery.startLsn)}`);
      if (recovery.consistent && (standbyMode || backupLabel !== null)) log('LOG', `consistent recovery state reached at ${formatLsn(recovery.replayEndLsn)}`);
    }
    return recovery;
  }

  get segmentSize(): number {
    return this.control.walSegmentSize;
  }

  /** The timeline whose file holds a segment: the newest expected timeline that covers it and has the file. */
  timelineOfSegment(segNo: number): number {
    const cached = this.segmentTimelineCache;
    if (cached !== null && cached.segNo === segNo && cached.history === this.expectedTimelines) return cached.tli;
    const { tli, final } = findSegmentTimelineFinal(this.dataDir, this.expectedTimelines, segNo, this.segmentSize);
    // A streaming standby refills its reader's window after every flush, each time asking for the
    // same segment: a stat per commit, for an answer that cannot change while the newest timeline
    // covering the segment has its file and the expected timelines stay the same.
    this.segmentTimelineCache = final ? { segNo, tli, history: this.expectedTimelines } : null;
    return tli;
  }

  /**
   * Follows a newer timeline (rescanLatestTimeLine accepted it): segments are then looked for
   * under its history, and records past its switch points are read from its files.
   */
  setExpectedTimelines(history: TimeLineHistoryEntry[]): void {
    this.expectedTimelines = history;
    this.source.setTimelineResolver((segNo) => this.timelineOfSegment(segNo));
  }

  /**
   * PerformWalRecovery's loop body: reads and applies records while they are there, for at most
   * `budgetMs` (so that the event loop keeps serving), and says why it stopped.
   */
  replayAvailable(budgetMs: number): ReplayStop {
    const started = performance.now();
    for (let n = 0; ; n++) {
      const result = this.reader.readRecord();
      if (!result.ok) {
        return result.missing
          ? { kind: 'needWal', lsn: result.lsn, neededLsn: result.neededLsn, get message() { return result.message; } }
          : { kind: 'invalid', lsn: result.lsn, message: result.message };
      }
      const record = result.record;
      if (this.minApplyDelayMs > 0 && record.rmid === RmgrId.transaction && record.mainDataLength >= 8) {
        // recoveryApplyDelay: a commit waits until its commit time plus the delay; read it again then.
        const untilMs = record.buffer.readDoubleLE(record.mainDataOffset) + this.minApplyDelayMs;
        if (untilMs > Date.now()) {
          this.reader.beginRead(record.lsn, this.recordsReplayed > 0 ? this.lastRecordLsn : null);
          return { kind: 'delay', untilMs };
        }
      }
      this.applyRecord(record);
      if ((n & 63) === 63 && performance.now() - started > budgetMs) return { kind: 'budget' };
    }
  }

  /** ApplyWalRecord: redo, then publish the new replay position. */
  private applyRecord(record: DecodedRecord): void {
    redoRecord(this.pool, record);
    this.recordsReplayed++;
    if (record.xid >= this.nextXid) this.nextXid = record.xid + 1;
    if (record.rmid === RmgrId.transaction && record.mainDataLength >= 8) {
      this.lastCommitTime = record.buffer.readDoubleLE(record.mainDataOffset);
      this.lastReplayedTimestamp = this.lastCommitTime;
    } else if (record.rmid === RmgrId.xlog) {
      const info = record.info & 0xf0;
      if (info === XlogInfo.checkpointOnline || info === XlogInfo.checkpointShutdown) {
        const data = decodeCheckPoint(record);
        if (data !== null) {
          this.lastCheckpointSeen = {
            lsn: record.lsn, redo: data.redo, timeline: data.timeline, fullPageWrites: data.fullPageWrites, nextXid: data.nextXid, time: data.time,
          };
          this.lastFullPageWrites = data.fullPageWrites;
          // A checkpoint record of a newer timeline is where replay crosses onto it.
          if (data.timeline > this.replayTimeline) this.replayTimeline = data.timeline;
        }
      } else if (info === XlogInfo.noop) {
        const heartbeat = decodeHeartbeat(record);
        if (heartbeat !== null) this.lastReplayedTimestamp = heartbeat.time;
      } else if (info === XlogInfo.fpwChange) {
        const on = decodeFpwChange(record);
        if (on !== null) {
          this.lastFullPageWrites = on;
          if (!on) this.lastFpwDisableLsn = record.lsn;
        }
      } else if (info === XlogInfo.endOfRecovery && record.mainDataLength >= 16) {
        const timeline = record.buffer.readUInt32LE(record.mainDataOffset + 8);
        if (timeline > this.replayTimeline) {
          this.log('LOG', `replaying end-of-recovery record: switching to timeline ${timeline} at ${formatLsn(record.lsn)}`);
          this.replayTimeline = timeline;
        }
      }
    }
    this.lastRecordLsn = record.lsn;
    this.replayEndLsn = record.endLsn;
    if (!this.consistent) this.checkConsistency();
    this.onReplay?.(record.endLsn, record);
  }

  /** Where the next record would start: the end of valid WAL once replay stops for good. */
  get endOfReplayedWal(): Lsn {
    return this.reader.endOfLastRecord;
  }

  /** Restarts reading at the replay position (after a source failed, or on a new timeline). */
  restartRead(): void {
    this.source.invalidate();
    this.reader.beginRead(this.replayEndLsn, this.recordsReplayed > 0 ? this.lastRecordLsn : null);
  }

  private checkConsistency(announce = true): void {
    const backupEnd = this.backupLabel?.endLsn ?? this.control.backupEndLsn;
    if (this.replayEndLsn >= this.control.minRecoveryLsn && this.replayEndLsn >= backupEnd) {
      this.consistent = true;
      if (this.control.backupEndLsn !== 0 && this.replayEndLsn >= this.control.backupEndLsn) {
        // The end of the backup is reached: from now on the minimum recovery point alone counts.
        this.control.backupStartLsn = 0 as Lsn;
        this.control.backupEndLsn = 0 as Lsn;
      }
      if (announce && (this.standbyMode || this.backupLabel !== null)) {
        this.log('LOG', `consistent recovery state reached at ${formatLsn(this.replayEndLsn)}`);
      }
    }
  }

  /**
   * XLogFlush in recovery: before a page with this LSN is written, the minimum recovery point
   * moves past it (to the replay position), durably, so a crash later cannot make this standby
   * look consistent before replay gets there again.
   */
  private updateMinRecoveryPoint(pageLsn: Lsn): void {
    if (pageLsn <= this.control.minRecoveryLsn) return;
    this.control.minRecoveryLsn = Math.max(this.replayEndLsn, pageLsn) as Lsn;
    this.control.minRecoveryTimeline = this.replayTimeline;
    writeControlFile(this.dataDir, this.control);
  }

  /**
   * do_pg_backup_start's hold on WAL: restartpoints keep the WAL from `startLsn` on until the
   * returned release is called (once), as a running backup's WAL must stay until it is sent.
   */
  holdWalForBackup(startLsn: Lsn): () => void {
    this.backupStarts.push(startLsn);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.backupStarts.splice(this.backupStarts.indexOf(startLsn), 1);
    };
  }

  /** The oldest start point of a running base backup, or null when none runs. */
  oldestBackupStart(): Lsn | null {
    return this.backupStarts.length === 0 ? null : Math.min(...this.backupStarts) as Lsn;
  }

  /** Shuts the recovery down (standby stop or crash-restart): no checkpoint, files closed. */
  close(): void {
    this.source.closeFile();
    this.smgr.close();
  }

  /** The segment number of an LSN. */
  segmentOf(lsn: number): number {
    return segmentOf(lsn, this.segmentSize);
  }
}

/**
 * backup_label, as pg_basebackup writes it (START WAL LOCATION, CHECKPOINT LOCATION, START
 * TIMELINE, LABEL), plus walship's BACKUP END LOCATION: the LSN replay must reach before the
 * copy is consistent (PostgreSQL learns it from the backup-end record or pg_control).
 */
export function readBackupLabel(dataDir: string): BackupLabel | null {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dataDir, BACKUP_LABEL_FILE), 'utf8');
  } catch {
    return null;
  }
  const field = (name: string): string | null => {
    const match = new RegExp(`^${name}: (.*)$`, 'm').exec(text);
    return match === null ? null : match[1]!.trim();
  };
  const lsnField = (name: string): Lsn | null => {
    const value = field(name);
    return value === null ? null : parseLsn(value.split(' ')[0]!);
  };
  const startLsn = lsnField('START WAL LOCATION');
  const checkpointLsn = lsnField('CHECKPOINT LOCATION');
  const timeline = Number(field('START TIMELINE'));
  if (startLsn === null || checkpointLsn === null || !Number.isInteger(timeline) || timeline < 1) {
    throw new WalshipError(ErrorCode.dataCorrupted, `invalid data in file "${BACKUP_LABEL_FILE}"`, {
      severity: 'FATAL',
      hint: 'The base backup is damaged or incomplete. Take a new one with walship basebackup.',
    });
  }
  const backupFrom = field('BACKUP FROM') ?? 'primary';
  if (backupFrom !== 'primary' && backupFrom !== 'standby') {
    throw new WalshipError(ErrorCode.dataCorrupted, `invalid data in file "${BACKUP_LABEL_FILE}"`, {
      severity: 'FATAL',
      detail: `BACKUP FROM is "${backupFrom}", neither "primary" nor "standby".`,
      hint: 'The base backup is damaged or incomplete. Take a new one with walship basebackup.',
    });
  }
  return { startLsn, checkpointLsn, timeline, endLsn: lsnField('BACKUP END LOCATION'), label: field('LABEL') ?? '', backupFrom };
}

export function formatBackupLabel(label: BackupLabel, segmentName: string, startTime: Date): string {
  return [
    `START WAL LOCATION: ${formatLsn(label.startLsn)} (file ${segmentName})`,
    `CHECKPOINT LOCATION: ${formatLsn(label.checkpointLsn)}`,
    'BACKUP METHOD: streamed',
    `BACKUP FROM: ${label.backupFrom}`,
    `START TIME: ${startTime.toISOString()}`,
    `LABEL: ${label.label}`,
    `START TIMELINE: ${label.timeline}`,
    ...(label.endLsn !== null ? [`BACKUP END LOCATION: ${formatLsn(label.endLsn)}`] : []),
    '',
  ].join('\n');
}
