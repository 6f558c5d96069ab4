/**
 * BASE_BACKUP (basebackup.c, and pg_basebackup on the receiving end): a consistent copy of a
 * data directory taken while the node keeps working.
 *
 * The sender starts the backup (do_pg_backup_start): on a primary an immediate checkpoint, on a
 * standby a restartpoint (standby-backup.ts); its redo point is where the copy's recovery begins,
 * and that WAL is kept until the backup ends. Then it streams the files as they are — relation
 * pages may change under the copy, which is why replay from the redo point, with its full-page
 * images, repairs them — then reads the control file, asks where the backup ends
 * (do_pg_backup_stop), streams the WAL from the redo point to that end, and the control file
 * last. Never postmaster.pid, log/, signal files or stale WAL. The backup_label it ends with
 * tells the copy where to start, how far replay must get before the copy is consistent, and
 * whether it was taken from a standby. The receiving end is base-backup-receiver.ts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  MAX_BACKUP_CHUNK_BYTES, allocBackupChunkBuffer, backupPathProblem, encodeReplicationMessage, writeBackupChunkHeader,
} from '@walship/protocol';
import { ErrorCode, WalshipError, assert } from '@walship/engine/errors';
import { formatLsn, type Lsn } from '@walship/engine/lsn';
import { XLOG_BLCKSZ } from '@walship/engine/constants';
import { formatBackupLabel } from '@walship/engine/wal-recovery';
import { segmentPath } from '@walship/engine/wal/wal-files';
import { segmentOf, xlogFileName } from '@walship/engine/wal/xlog-internal';

/** Files and directories a backup never carries (basebackup.c's excludeFiles / excludeDirContents). */
const EXCLUDED = new Set([
  'postmaster.pid', 'postmaster.opts', 'standby.signal', 'recovery.signal', 'promote', 'backup_label', 'backup_label.old', 'log',
  // The source's replication slots are its own: a copy starts with none (excludeDirContents).
  'pg_replslot',
]);

/** A started backup: where the copy's recovery begins; WAL from `startLsn` is kept until release(). */
export interface StartedBackup {
  startLsn: Lsn;
  checkpointLsn: Lsn;
  timeline: number;
  release(): void;
}

/** What the sender needs from the node. */
export interface BaseBackupSource {
  dataDir: string;
  segmentSize: number;
  /** The label's BACKUP FROM. */
  backupFrom: 'primary' | 'standby';
  /** do_pg_backup_start: a checkpoint (or on a standby a restartpoint) whose redo point starts the copy. */
  startBackup(fast: boolean): Promise<StartedBackup>;
  /** do_pg_backup_stop: where the copy becomes consistent; WAL up to it is on disk when it returns. */
  stopBackup(): Promise<Lsn>;
  /**
   * Throws when the backup can no longer be trusted (a standby promoted since it started): asked
   * before each file, as basebackup.c's sendDir asks RecoveryInProgress(), so that a doomed
   * backup stops early rather than at do_pg_backup_stop.
   */
  checkBackup?(): void;
  /** Which timeline's file holds a WAL segment. */
  timelineOfSegment(segNo: number): number;
}

interface PlannedFile {
  relative: string;
  absolute: string;
  size: number;
  mode: number;
}

function historyFiles(dataDir: string): PlannedFile[] {
  const out: PlannedFile[] = [];
  const dir = path.join(dataDir, 'pg_wal');
  for (const file of fs.readdirSync(dir)) {
    if (!/^[0-9A-F]{8}\.history$/.test(file)) continue;
    const absolute = path.join(dir, file);
    out.push({ relative: `pg_wal/${file}`, absolute, size: fs.statSync(absolute).size, mode: 0o600 });
  }
  return out;
}

function listFiles(dataDir: string): PlannedFile[] {
  const out: PlannedFile[] = [];
  const walk = (relative: string): void => {
    for (const name of fs.readdirSync(path.join(dataDir, relative))) {
      const childRelative = relative === '' ? name : `${relative}/${name}`;
      if (EXCLUDED.has(childRelative) || name.endsWith('.tmp') || name.startsWith('xlogtemp.')) continue;
      const absolute = path.join(dataDir, childRelative);
      const stat = fs.lstatSync(absolute);
      if (stat.isDirectory()) {
        // WAL is sent separately (only what the backup needs); global/control goes last.
        if (childRelative === 'pg_wal') {
          out.push(...historyFiles(dataDir));
          continue;
        }
        walk(childRelative);
      } else if (stat.isFile() && childRelative !== 'global/control' && backupPathProblem(childRelative) === null) {
        out.push({ relative: childRelative, absolute, size: stat.size, mode: stat.mode & 0o777 });
      }
    }
  };
  walk('');
  return out;
}

/**
 * Chunks a walsender reads ahead of the one it sends. Two keep the pool's read of the next chunk
 * going while this one is written to the socket; more only hold more memory.
 */
const BASE_BACKUP_READS_AHEAD = 2;

interface PendingRead {
  buffer: Buffer;
  header: number;
  want: number;
  read: Promise<number>;
}

/** Reads `want` bytes at `position` into `buffer` from `at`, in the pool; fewer only at the file's end. */
function readFully(fd: number, buffer: Buffer, at: number, want: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const step = (): void => {
      fs.read(fd, buffer, at + got, want - got, position + got, (error, n) => {
        if (error !== null) {
          reject(error);
          return;
        }
        got += n;
        if (n === 0 || got === want) resolve(got);
        else step();
      });
    };
    step();
  });
}

/**
 * Streams a base backup with request `id` through `send`, which resolves when the frame may be
 * followed by the next (backpressure), and calls `onSent`, when given, once the socket no longer
 * needs the frame's memory (the send completed): chunk frames are then reused.
 */
export async function sendBaseBackup(send: (frame: Buffer, onSent?: () => void) => Promise<void>, id: number, source: BaseBackupSource, options: { label: string; fast: boolean; includeWal: boolean }): Promise<{ bytes: number; startLsn: Lsn; endLsn: Lsn }> {
  const started = await source.startBackup(options.fast);
  let bytes = 0;
  try {
    const files = listFiles(source.dataDir);
    const totalBytes = files.reduce((sum, f) => sum + f.size, 0);
    await send(encodeReplicationMessage({
      type: 'backupStart', id, startLsn: formatLsn(started.startLsn), timeline: started.timeline, totalBytes, fileCount: files.length + 1,
    }));
    // Chunk frames are read into straight from the file and handed back once sent: as many as
    // the backpressure lets be in flight (about BASE_BACKUP_BUFFERED_BYTES_MAX / 1 MB), and
    // no fresh megabyte (page faults, garbage collection) per chunk.
    const free: Buffer[] = [];
    const sendContent = async (relative: string, content: Buffer, mode: number): Promise<void> => {
      await send(encodeReplicationMessage({ type: 'backupFile', id, path: relative, size: content.length, mode }));
      for (let offset = 0; offset < content.length; offset += MAX_BACKUP_CHUNK_BYTES) {
        const data = content.subarray(offset, Math.min(content.length, offset + MAX_BACKUP_CHUNK_BYTES));
        await send(encodeReplicationMessage({ type: 'backupChunk', id, path: relative, offset, data }));
        bytes += data.length;
      }
    };
    const sendFile = async (relative: string, absolute: string, size: number, mode: number): Promise<void> => {
      await send(encodeReplicationMessage({ type: 'backupFile', id, path: relative, size, mode }));
      if (size === 0) return;
      const fd = fs.openSync(absolute, 'r');
      // Reads run in libuv's pool, BASE_BACKUP_READS_AHEAD chunks ahead of the one being sent:
      // the disk (or page cache) copy of the next chunks overlaps the socket write of this one,
      // and the node's event loop never waits on the file.
      const reads: PendingRead[] = [];
      let next = 0;
      const readAhead = (): void => {
        if (next >= size) return;
        const want = Math.min(MAX_BACKUP_CHUNK_BYTES, size - next);
        const buffer = free.pop() ?? allocBackupChunkBuffer();
        const header = writeBackupChunkHeader(buffer, id, relative, next, want);
        reads.push({ buffer, header, want, read: readFully(fd, buffer, header, want, next) });
        next += want;
      };
      try {
        for (let i = 0; i < BASE_BACKUP_READS_AHEAD; i++) readAhead();
        while (reads.length > 0) {
          const { buffer, header, want, read } = reads.shift()!;
          const got = await read;
          // A file that shrank while we copied (never expected): pad, so the announced size holds.
          if (got < want) buffer.fill(0, header + got, header + want);
          readAhead();
          await send(buffer.subarray(0, header + want), () => free.push(buffer));
          bytes += want;
        }
      } finally {
        // Never close the descriptor under a read still running in the pool.
        await Promise.allSettled(reads.map((r) => r.read));
        fs.closeSync(fd);
      }
    };
    for (const file of files) {
      source.checkBackup?.();
      await sendFile(file.relative, file.absolute, file.size, file.mode);
    }
    source.checkBackup?.();

    // The control file goes last but is read before do_pg_backup_stop, as basebackup.c sends
    // pg_control before stopping: on a standby, the minimum recovery point it carries is then
    // never past the end the backup reports, so the copy needs no WAL beyond what it is sent.
    const control = fs.readFileSync(path.join(source.dataDir, 'global', 'control'));
    const endLsn = await source.stopBackup();
    assert(endLsn >= started.startLsn, `backup end ${formatLsn(endLsn)} before its start ${formatLsn(started.startLsn)}`);
    if (options.includeWal) {
      const first = segmentOf(started.startLsn, source.segmentSize);
      const last = segmentOf(endLsn - 1, source.segmentSize);
      for (let segNo = first; segNo <= last; segNo++) {
        const timeline = source.timelineOfSegment(segNo);
        const name = xlogFileName(timeline, segNo, source.segmentSize);
        const file = segmentPath(source.dataDir, timeline, segNo, source.segmentSize);
        // Up to the page holding the end: what follows is not part of this backup.
        const size = segNo === last ? Math.min(source.segmentSize, Math.ceil(((endLsn - 1) % source.segmentSize + 1) / XLOG_BLCKSZ) * XLOG_BLCKSZ) : source.segmentSize;
        if (!fs.existsSync(file)) {
          throw new WalshipError(ErrorCode.walRemoved, `requested WAL segment ${name} has already been removed`);
        }
        await sendFile(`pg_wal/${name}`, file, size, 0o600);
      }
      // A standby that followed its upstream onto a new timeline during the copy has a history
      // file the listing did not see; the copy needs it to read the WAL past the switch.
      const sent = new Set(files.map((f) => f.relative));
      for (const history of historyFiles(source.dataDir)) {
        if (!sent.has(history.relative)) await sendFile(history.relative, history.absolute, history.size, history.mode);
      }
    }
    await sendContent('global/control', control, 0o600);
    const label = formatBackupLabel({
      startLsn: started.startLsn, checkpointLsn: started.checkpointLsn, timeline: started.timeline, endLsn, label: options.label, backupFrom: source.backupFrom,
    }, xlogFileName(started.timeline, segmentOf(started.startLsn, source.segmentSize), source.segmentSize), new Date());
    await send(encodeReplicationMessage({ type: 'backupEnd', id, endLsn: formatLsn(endLsn), timeline: started.timeline, backupLabel: label }));
    return { bytes, startLsn: started.startLsn, endLsn };
  } finally {
    started.release();
  }
}
