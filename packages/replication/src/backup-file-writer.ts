/**
 * BackupFileWriter: the disk side of `walship basebackup` (pg_basebackup writing a plain-format
 * copy, then fsync_pgdata), arranged so that the disk work overlaps the network instead of
 * following it:
 *
 * - Chunks are written with positional writes in libuv's thread pool, so the event loop goes on
 *   reading the socket and checking frames while the kernel copies the previous chunks. At most
 *   about `maxPendingBytes` are in flight: above that `onBacklog(true)` asks the caller to stop
 *   reading the socket (TCP then pushes back on the walsender); `onBacklog(false)` comes once the
 *   writes have drained to half of it.
 * - A file is fsynced as soon as it is complete (all its writes done), in the pool, then closed.
 *   A long file also gets an fdatasync each `syncEveryBytes` written, which starts its writeback
 *   early, as PostgreSQL's pg_flush_data (sync_file_range) does before fsync_pgdata's fsyncs: the
 *   disk writes while the rest arrives, and the final fsync finds little left. At most
 *   `maxConcurrentSyncs` syncs run at once, so that writes keep threads of the pool; at most
 *   `maxOpenFiles` complete files wait for theirs (each holds its descriptor), above that the
 *   caller is asked to stop reading as for bytes.
 *
 * Durability is what the one fsync pass at the end gave: `finish()` resolves once every file is
 * written, fsynced and closed, and rejects with the first I/O error (after which nothing more is
 * started). The caller still fsyncs the directories and whatever it writes afterwards.
 */
import * as fs from 'node:fs';

export interface BackupFileWriterOptions {
  /** Bytes of writes in flight above which the caller should stop reading. */
  maxPendingBytes: number;
  /** Bytes written to one file between two fdatasyncs that start its writeback. */
  syncEveryBytes: number;
  /** Syncs (fdatasync or fsync) running in the thread pool at once. */
  maxConcurrentSyncs: number;
  /** Complete files waiting for their fsync above which the caller should stop reading. */
  maxOpenFiles: number;
}

/** The receiver's values (see BackupFileWriter's comment). */
export const BACKUP_FILE_WRITER_DEFAULTS: Readonly<BackupFileWriterOptions> = Object.freeze({
  // Sixteen 1 MB chunks: enough to keep the pool's threads busy, bounded memory.
  maxPendingBytes: 16 * 1024 * 1024,
  // 32 MB: a fraction of a second of disk; a few dozen syncs for a gigabyte.
  syncEveryBytes: 32 * 1024 * 1024,
  // libuv's pool has 4 threads by default: two for syncs, the others for writes.
  maxConcurrentSyncs: 2,
  maxOpenFiles: 64,
});

interface OpenFile {
  readonly path: string;
  readonly fd: number;
  pendingWrites: number;
  /** Bytes written since the last sync started. */
  sinceSync: number;
  syncing: boolean;
  /** No more writes will come (endFile was called). */
  complete: boolean;
  /** Its final fsync is queued or running. */
  finalQueued: boolean;
}

export class BackupFileWriter {
  private readonly options: BackupFileWriterOptions;
  private current: OpenFile | null = null;
  /** Files opened and not yet closed (the current one included). */
  private readonly open = new Set<OpenFile>();
  private readonly syncQueue: OpenFile[] = [];
  private syncsRunning = 0;
  private pending = 0;
  private backlogged = false;
  private failure: Error | null = null;
  private waiter: { resolve: () => void; reject: (error: Error) => void } | null = null;
  /** Files fsynced and closed (their paths). */
  readonly synced: string[] = [];
  private datasyncs = 0;

  constructor(private readonly onBacklog: (backlogged: boolean) => void, private readonly onError: (error: Error) => void, options: Partial<BackupFileWriterOptions> = {}) {
    this.options = { ...BACKUP_FILE_WRITER_DEFAULTS, ...options };
  }

  /** fdatasyncs started to get a growing file's writeback going. */
  get writebackSyncs(): number {
    return this.datasyncs;
  }

  /** Bytes of writes in flight. */
  get pendingBytes(): number {
    return this.pending;
  }

  /** The first I/O error, if any. */
  get error(): Error | null {
    return this.failure;
  }

  /**
   * Starts a new file, which must not exist (`wx`); the previous one is complete. Synchronous:
   * an open is cheap and its error (the file exists) belongs to this message.
   */
  openFile(path: string, mode: number): void {
    this.throwIfFailed();
    this.endFile();
    const fd = fs.openSync(path, 'wx', mode);
    const file: OpenFile = { path, fd, pendingWrites: 0, sinceSync: 0, syncing: false, complete: false, finalQueued: false };
    this.open.add(file);
    this.current = file;
  }

  /** Writes `data` at `position` of the current file. `data` must stay unchanged until written. */
  write(data: Buffer, position: number): void {
    this.throwIfFailed();
    const file = this.current;
    if (file === null) throw new Error('BackupFileWriter.write without an open file');
    if (data.length === 0) return;
    this.pending += data.length;
    file.pendingWrites++;
    this.writeSome(file, data, position, data.length);
    this.updateBacklog();
  }

  /** The current file is complete: fsync and close it once its writes are done. */
  endFile(): void {
    const file = this.current;
    if (file === null) return;
    this.current = null;
    file.complete = true;
    this.maybeQueueFinal(file);
    this.updateBacklog();
  }

  /** Resolves when every file is written, fsynced and closed; rejects with the first error. */
  finish(): Promise<void> {
    this.endFile();
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.open.size === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /**
   * Gives up (the backup failed elsewhere): nothing more is started, and each file is closed
   * once the operations already running on it are done. The files stay as they are.
   */
  abort(): void {
    if (this.failure === null) this.failure = new Error('base backup aborted');
    this.syncQueue.length = 0;
    for (const file of [...this.open]) this.closeIfIdle(file);
  }

  private writeSome(file: OpenFile, data: Buffer, position: number, total: number): void {
    fs.write(file.fd, data, 0, data.length, position, (error, written) => {
      if (error === null && written < data.length && this.failure === null) {
        // A short write (a full disk shows as ENOSPC on the next one): write the rest.
        this.writeSome(file, data.subarray(written), position + written, total);
        return;
      }
      file.pendingWrites--;
      this.pending -= total;
      if (error !== null) {
        this.fail(file, 'write', error);
        return;
      }
      if (this.failure !== null) {
        this.closeIfIdle(file);
        return;
      }
      file.sinceSync += total;
      if (!file.complete && !file.syncing && file.sinceSync >= this.options.syncEveryBytes && this.syncsRunning < this.options.maxConcurrentSyncs) {
        this.startSync(file, false);
      }
      this.maybeQueueFinal(file);
      this.updateBacklog();
    });
  }

  private maybeQueueFinal(file: OpenFile): void {
    if (!file.complete || file.finalQueued || file.pendingWrites > 0 || this.failure !== null) return;
    file.finalQueued = true;
    this.syncQueue.push(file);
    this.runSyncs();
  }

  private runSyncs(): void {
    for (let i = 0; i < this.syncQueue.length && this.syncsRunning < this.options.maxConcurrentSyncs; ) {
      const file = this.syncQueue[i]!;
      if (file.syncing) {
        // Its writeback fdatasync is still running; the final fsync follows it.
        i++;
        continue;
      }
      this.syncQueue.splice(i, 1);
      this.startSync(file, true);
    }
  }

  /** fdatasync (writeback while the file grows) or, once complete, fsync and close. */
  private startSync(file: OpenFile, final: boolean): void {
    file.syncing = true;
    file.sinceSync = 0;
    this.syncsRunning++;
    const done = (error: NodeJS.ErrnoException | null): void => {
      file.syncing = false;
      this.syncsRunning--;
      if (error !== null) {
        this.fail(file, final ? 'fsync' : 'fdatasync', error);
        return;
      }
      if (this.failure !== null) {
        this.closeIfIdle(file);
        return;
      }
      if (final) {
        fs.close(file.fd, (closeError) => {
          this.open.delete(file);
          if (closeError !== null) {
            this.fail(file, 'close', closeError);
            return;
          }
          this.synced.push(file.path);
          this.runSyncs();
          this.updateBacklog();
          this.checkFinished();
        });
        return;
      }
      this.runSyncs();
    };
    if (final) {
      fs.fsync(file.fd, done);
    } else {
      this.datasyncs++;
      fs.fdatasync(file.fd, done);
    }
  }

  /** PostgreSQL's wording: 'could not write file "..."', 'could not fsync file "..."'. */
  private fail(file: OpenFile, operation: 'write' | 'fsync' | 'fdatasync' | 'close', error: NodeJS.ErrnoException): void {
    const first = this.failure === null;
    if (first) this.failure = Object.assign(new Error(`could not ${operation} file "${file.path}": ${error.message}`), { code: error.code, cause: error });
    this.abort();
    if (first) {
      this.onError(this.failure!);
      this.waiter?.reject(this.failure!);
      this.waiter = null;
    }
  }

  private closeIfIdle(file: OpenFile): void {
    if (file.pendingWrites > 0 || file.syncing || !this.open.has(file)) return;
    this.open.delete(file);
    fs.close(file.fd, () => { /* aborting: the backup has already failed */ });
  }

  private updateBacklog(): void {
    const completeOpen = this.open.size - (this.current === null ? 0 : 1);
    const over = this.pending > this.options.maxPendingBytes || completeOpen > this.options.maxOpenFiles;
    const under = this.pending <= this.options.maxPendingBytes / 2 && completeOpen <= this.options.maxOpenFiles / 2;
    if (!this.backlogged && over) {
      this.backlogged = true;
      this.onBacklog(true);
    } else if (this.backlogged && (under || this.failure !== null)) {
      this.backlogged = false;
      this.onBacklog(false);
    }
  }

  private checkFinished(): void {
    if (this.open.size > 0 || this.waiter === null) return;
    const waiter = this.waiter;
    this.waiter = null;
    waiter.resolve();
  }

  private throwIfFailed(): void {
    if (this.failure !== null) throw this.failure;
  }
}
