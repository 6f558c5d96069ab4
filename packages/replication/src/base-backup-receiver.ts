/**
 * pg_basebackup's receiving end of BASE_BACKUP (the sending end is base-backup.ts): writes the
 * stream into an empty directory, checks every path (a sender cannot write outside it) and the
 * stream's order (BackupStreamChecker), writes and fsyncs the files while they arrive
 * (BackupFileWriter), zero-fills the last WAL segment, marks the WAL it received `.done` (the
 * source archives it), writes backup_label last, and fsyncs it and the directories.
 *
 * Its imports are kept to what it uses (the engine's leaf modules, not its index), so that
 * `walship basebackup` starts without loading the database code; the control file's reader
 * (and the native CRC-32C it loads) is only needed at the end, and is loaded while the files
 * arrive.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BackupStreamChecker, type WalSenderMessage } from '@walship/protocol';
import { DATA_SUBDIRECTORIES } from '@walship/engine/constants';
import { ErrorCode, WalshipError } from '@walship/engine/errors';
import { parseLsn, type Lsn } from '@walship/engine/lsn';
import { isTimelineHistoryFileName, xlogArchiveForceDone } from '@walship/engine/wal/archive-status';
import { fsyncDirectory, writeZeros } from '@walship/engine/wal/wal-files';
import { isXlogFileName } from '@walship/engine/wal/xlog-internal';
import { BackupFileWriter } from './backup-file-writer.js';
import type { ReplicationConnection } from './replication-connection.js';

export interface ReceivedBackup {
  startLsn: Lsn;
  endLsn: Lsn;
  timeline: number;
  bytes: number;
  files: number;
}

/**
 * pg_basebackup's receiving end: asks for a backup on `connection` and writes it into
 * `targetDir` (which must not exist or be empty), calling `onProgress(bytesDone, bytesTotal)`.
 */
export function receiveBaseBackup(connection: ReplicationConnection, targetDir: string, options: { label: string; fast: boolean; onProgress?: (done: number, total: number) => void }): Promise<ReceivedBackup> {
  if (fs.existsSync(targetDir) && fs.readdirSync(targetDir).length > 0) {
    return Promise.reject(new WalshipError(ErrorCode.invalidParameter, `directory "${targetDir}" exists but is not empty`, {
      hint: `Remove or empty "${targetDir}", or choose another directory with -D.`,
    }));
  }
  fs.mkdirSync(targetDir, { recursive: true, mode: 0o700 });
  const root = fs.realpathSync(targetDir);
  const controlFileModule = import('@walship/engine/control-file');
  // Read at the end; a failure to load it surfaces there, not as an unhandled rejection now.
  controlFileModule.catch(() => undefined);
  return new Promise<ReceivedBackup>((resolve, reject) => {
    const id = connection.sendRequest('baseBackup', { label: options.label, fast: options.fast });
    const checker = new BackupStreamChecker(id);
    const written: string[] = [];
    let startLsn = 0 as Lsn;
    let total = 0;
    let done = 0;
    // Set once the outcome is decided: a failure, or backupEnd accepted (the upstream may close
    // the connection while the last files are still being fsynced).
    let finished = false;
    const fail = (error: Error): void => {
      if (finished) return;
      finished = true;
      writer.abort();
      connection.terminate();
      reject(error);
    };
    // The disk side: writes and fsyncs in the thread pool while frames keep coming; when it
    // falls behind, the socket stops being read and TCP holds the walsender back.
    const writer = new BackupFileWriter((backlogged) => {
      if (finished) return;
      if (backlogged) connection.pause();
      else connection.resume();
    }, fail);
    const open = (relative: string, mode: number): void => {
      const absolute = path.join(root, ...relative.split('/'));
      // backupPathProblem was checked by the decoder; check again against the real directory.
      if (!absolute.startsWith(root + path.sep)) throw new WalshipError(ErrorCode.protocolViolation, `backup path "${relative}" leaves the target directory`);
      fs.mkdirSync(path.dirname(absolute), { recursive: true, mode: 0o700 });
      writer.openFile(absolute, mode);
      written.push(absolute);
    };
    connection.onStream((message: WalSenderMessage) => {
      if (finished) return;
      try {
        if (message.type === 'error') {
          fail(new WalshipError(message.code, message.message, {
            ...(message.detail !== undefined ? { detail: message.detail } : {}),
            ...(message.hint !== undefined ? { hint: message.hint } : {}),
          }));
          return;
        }
        if (message.type !== 'backupStart' && message.type !== 'backupFile' && message.type !== 'backupChunk' && message.type !== 'backupEnd') {
          throw new WalshipError(ErrorCode.protocolViolation, `unexpected "${message.type}" message during a base backup`);
        }
        checker.check(message);
        switch (message.type) {
          case 'backupStart':
            startLsn = parseLsn(message.startLsn)!;
            total = message.totalBytes;
            options.onProgress?.(0, total);
            break;
          case 'backupFile':
            open(message.path, message.mode);
            break;
          case 'backupChunk': {
            // message.data is a view of the frame, which nothing else reuses: written as it is.
            writer.write(message.data, message.offset);
            done += message.data.length;
            options.onProgress?.(done, Math.max(total, done));
            break;
          }
          case 'backupEnd': {
            finished = true;
            connection.close();
            const endLsn = parseLsn(message.endLsn)!;
            const { timeline, backupLabel } = message;
            Promise.all([writer.finish(), controlFileModule]).then(([, { readControlFile }]) => {
              finishCopy(root, written, backupLabel, readControlFile(root).walSegmentSize);
              resolve({ startLsn, endLsn, timeline, bytes: done, files: written.length });
            }).catch((error: unknown) => reject(error instanceof Error ? error : new Error(String(error))));
            break;
          }
        }
      } catch (error) {
        fail(error instanceof Error ? error : new Error(String(error)));
      }
    }, (error) => {
      if (!finished) fail(error ?? new WalshipError(ErrorCode.cannotConnectNow, 'the upstream closed the connection during the base backup'));
    });
  });
}

/**
 * After every received file is fsynced (BackupFileWriter): zero-fills WAL segments to full size
 * (and fsyncs them again), makes the empty directories, marks the WAL files archived, writes
 * backup_label and fsyncs it, then the directories.
 */
function finishCopy(root: string, written: string[], backupLabel: string, walSegmentSize: number): void {
  const toSync: string[] = [];
  for (const file of written) {
    if (!isXlogFileName(path.basename(file)) || path.dirname(file) !== path.join(root, 'pg_wal')) continue;
    const size = fs.statSync(file).size;
    if (size < walSegmentSize) {
      const fd = fs.openSync(file, 'r+');
      writeZeros(fd, size, walSegmentSize);
      fs.closeSync(fd);
      toSync.push(file);
    }
  }
  for (const dir of DATA_SUBDIRECTORIES) fs.mkdirSync(path.join(root, dir), { recursive: true, mode: 0o700 });
  markBackupWalArchived(root, written);
  const labelPath = path.join(root, 'backup_label');
  fs.writeFileSync(labelPath, backupLabel, { mode: 0o600 });
  for (const file of [...toSync, labelPath]) {
    const fd = fs.openSync(file, 'r');
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  }
  for (const dir of ['', ...DATA_SUBDIRECTORIES]) fsyncDirectory(path.join(root, dir));
}

/**
 * The WAL segments and timeline history files a backup brought are the source's to archive (or
 * already in its archive): each is marked `.done` here, as pg_basebackup receives them, so that
 * the new node — a standby with archive_mode = on or always, or a primary once promoted — never
 * archives them again, and its checkpoints may remove them once past them.
 */
export function markBackupWalArchived(root: string, written: readonly string[]): void {
  for (const file of written) {
    const name = path.basename(file);
    if (path.dirname(file) !== path.join(root, 'pg_wal')) continue;
    if (isXlogFileName(name) || isTimelineHistoryFileName(name)) xlogArchiveForceDone(root, name);
  }
}
