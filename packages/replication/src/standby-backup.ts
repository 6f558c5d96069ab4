/**
 * do_pg_backup_start and do_pg_backup_stop on a standby (xlog.c, with backup_started_in_recovery
 * true): what a base backup taken from a standby — a cascading base backup — starts from, keeps
 * and ends at. The file copying is `sendBaseBackup`'s, as for a primary.
 *
 * Start. A standby cannot write a checkpoint record, so the backup starts from a restartpoint:
 * it asks for one (CHECKPOINT_FORCE | CHECKPOINT_WAIT), then takes the checkpoint record, redo
 * point and timeline the control file names. When no checkpoint record was replayed since the
 * last restartpoint, the restartpoint is skipped and that last one serves: its WAL is still
 * here, because restartpoints only remove WAL before their own redo point. From then on,
 * restartpoints keep the WAL from the backup's start point until the backup ends.
 *
 * End. No backup-end record can be written either. Every page this standby has written is behind
 * its minimum recovery point, which never passes the replay position; so replaying up to the
 * replay position at the end of the copy makes every copied page consistent. The end is that
 * position (PostgreSQL uses the minimum recovery point, which is never past it), the label
 * says `BACKUP FROM: standby`, and the control file is copied before the end is taken, so that
 * its minimum recovery point is never past the end either.
 *
 * Full-page writes. The copy reads pages while this standby writes them, so a copied page may be
 * torn; replay repairs it only with the full-page image the first change after the start point
 * carries. The standby cannot force those images on the primary (a primary's backup does, with
 * forcePageWrites), so it checks what the WAL says: the start point's checkpoint record carries
 * full_page_writes, and the primary logs every change of it (XLOG_FPW_CHANGE, before any record
 * built under it). A backup is refused when the restartpoint's checkpoint had it off, or when a
 * record turning it off was replayed at or after the start point — at the start, and again at the
 * end for what was replayed meanwhile.
 *
 * Also refused: a standby that is not consistent yet (its pages are not yet any state of the
 * primary), and a standby promoted — or whose recovery restarted — while the backup ran.
 */
import { ErrorCode, WalshipError, formatLsn, type Lsn } from '@walship/engine';
import type { BaseBackupSource, StartedBackup } from './base-backup.js';

/** What a standby backup reads of the standby's recovery (WalRecovery has all of it). */
export interface StandbyBackupRecovery {
  readonly control: {
    readonly checkpointLsn: Lsn;
    readonly redoLsn: Lsn;
    readonly timeline: number;
    readonly fullPageWrites: boolean;
    readonly minRecoveryLsn: Lsn;
  };
  readonly consistent: boolean;
  readonly replayEndLsn: Lsn;
  readonly lastFpwDisableLsn: Lsn;
  /** Restartpoints keep the WAL from `startLsn` on until the release is called. */
  holdWalForBackup(startLsn: Lsn): () => void;
  timelineOfSegment(segNo: number): number;
}

export interface StandbyBackupNode {
  dataDir: string;
  segmentSize: number;
  /** The running recovery: null once the standby was promoted, a new one after a crash-restart. */
  recovery(): StandbyBackupRecovery | null;
  /** RequestCheckpoint(CHECKPOINT_FORCE | CHECKPOINT_WAIT [| CHECKPOINT_IMMEDIATE]): a restartpoint, if one can be made. */
  requestRestartPoint(fast: boolean): Promise<unknown>;
}

/** The BaseBackupSource of a standby: see the file comment. */
export function standbyBackupSource(node: StandbyBackupNode): BaseBackupSource {
  let recovery: StandbyBackupRecovery | null = null;
  let startLsn = 0 as Lsn;

  /** The recovery the backup started in must still run: basebackup.c's RecoveryInProgress() test. */
  const checkStillInRecovery = (): StandbyBackupRecovery => {
    const now = node.recovery();
    if (recovery !== null && now === recovery) return recovery;
    if (now === null) {
      throw new WalshipError(ErrorCode.objectNotInPrerequisiteState, 'the standby was promoted during online backup', {
        hint: 'This means that the backup being taken is corrupt and should not be used. Try taking another online backup.',
      });
    }
    throw new WalshipError(ErrorCode.objectNotInPrerequisiteState, 'the standby restarted recovery during online backup', {
      detail: 'A crash-restart of the standby ended the recovery the backup started in.',
      hint: 'This means that the backup being taken is corrupt and should not be used. Try taking another online backup.',
    });
  };

  return {
    dataDir: node.dataDir,
    segmentSize: node.segmentSize,
    backupFrom: 'standby',

    async startBackup(fast: boolean): Promise<StartedBackup> {
      const first = node.recovery();
      if (first === null) {
        throw new WalshipError(ErrorCode.objectNotInPrerequisiteState, 'recovery is not in progress', {
          hint: 'A base backup of a standby is taken while it is in recovery; take it from this node as a primary.',
        });
      }
      if (!first.consistent) throw notConsistent(first);
      recovery = first;
      await node.requestRestartPoint(fast);
      const current = checkStillInRecovery();
      // Read and held with no await in between, so that no restartpoint removes this WAL.
      const { checkpointLsn, redoLsn, timeline, fullPageWrites } = current.control;
      if (!fullPageWrites || current.lastFpwDisableLsn >= redoLsn) {
        throw new WalshipError(ErrorCode.objectNotInPrerequisiteState, 'WAL generated with full_page_writes=off was replayed since last restartpoint', {
          detail: fullPageWrites
            ? `A record turning full_page_writes off was replayed at ${formatLsn(current.lastFpwDisableLsn)}, after the restartpoint's redo point ${formatLsn(redoLsn)}.`
            : `The checkpoint record at ${formatLsn(checkpointLsn)} that the last restartpoint used says full_page_writes was off.`,
          hint: 'This means that the backup being taken on the standby is corrupt and should not be used. Enable full_page_writes and run CHECKPOINT on the primary, and then try an online backup again.',
        });
      }
      startLsn = redoLsn;
      const release = current.holdWalForBackup(redoLsn);
      return { startLsn: redoLsn, checkpointLsn, timeline, release };
    },

    async stopBackup(): Promise<Lsn> {
      const current = checkStillInRecovery();
      if (current.lastFpwDisableLsn >= startLsn) {
        throw new WalshipError(ErrorCode.objectNotInPrerequisiteState, 'WAL generated with full_page_writes=off was replayed during online backup', {
          detail: `A record turning full_page_writes off was replayed at ${formatLsn(current.lastFpwDisableLsn)}, after the backup's start point ${formatLsn(startLsn)}.`,
          hint: 'This means that the backup being taken on the standby is corrupt and should not be used. Enable full_page_writes and run CHECKPOINT on the primary, and then try an online backup again.',
        });
      }
      return Math.max(current.control.minRecoveryLsn, current.replayEndLsn) as Lsn;
    },

    checkBackup(): void {
      checkStillInRecovery();
    },

    timelineOfSegment(segNo: number): number {
      return (recovery ?? checkStillInRecovery()).timelineOfSegment(segNo);
    },
  };
}

/** CAC_NOTCONSISTENT's message: the standby's pages are not yet any state of its primary. */
function notConsistent(recovery: StandbyBackupRecovery): WalshipError {
  return new WalshipError(ErrorCode.cannotConnectNow, 'the database system is not yet accepting connections', {
    detail: `Consistent recovery state has not been yet reached: replay is at ${formatLsn(recovery.replayEndLsn)}, the minimum recovery point is ${formatLsn(recovery.control.minRecoveryLsn)}.`,
    hint: 'Wait until the standby has replayed up to its minimum recovery point ("walship isready" then reports it accepting connections), and try again.',
  });
}
