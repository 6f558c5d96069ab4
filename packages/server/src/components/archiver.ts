/**
 * The archiver (pgarch.c): archives finished WAL files with archive_command.
 *
 * It wakes when a file is marked `.ready` (XLogArchiveNotify sets its latch, as
 * PMSIGNAL_WAKEN_ARCHIVER does), on a reload, and at least every 60 s
 * (PGARCH_AUTOWAKE_INTERVAL). Each cycle (pgarch_ArchiverCopyLoop) takes the `.ready` files
 * oldest first, history files before segments, and for each runs archive_command through
 * `/bin/sh -c` in the data directory with `%p` = `pg_wal/<file>` and `%f` = `<file>`; exit 0
 * renames `.ready` to `.done`, and the checkpointer may then remove the segment. A failing
 * command is logged ("archive command failed with exit code N", with the command as DETAIL) and
 * tried again a second later, three times in all (NUM_ARCHIVE_RETRIES); then the cycle gives up
 * with a WARNING and the file waits for the next wake-up. Files are archived in order: a failing
 * file holds back the ones after it, and its segment stays in pg_wal/.
 *
 * A command killed by a signal (or reported so by the shell), one that cannot run (126, 127), or
 * one past walship's timeout is FATAL for the archiver: it exits, and the postmaster starts a new
 * one after PGARCH_RESTART_INTERVAL. An archiver exit is never a node crash.
 *
 * Counters as pg_stat_archiver's live in an ArchiverStats object the postmaster owns, so that
 * they survive archiver restarts.
 *
 * Shutdown: the archiver starts no new command once asked to stop, and waits for the running
 * one up to a grace period (ARCHIVER_STOP_GRACE_MS) before leaving it to finish on its own; its
 * file stays `.ready` and is archived again after the next start. (PostgreSQL's archiver runs a
 * last cycle after the shutdown checkpoint; walship's leaves that cycle to the next start.)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LogFunction } from '@walship/engine';
import { readyXlogFiles, statusFilePath, xlogArchiveDone } from '@walship/engine/wal/archive-status';
import { walDir } from '@walship/engine/wal/wal-files';
import {
  SHELL_COMMAND_TIMEOUT_MS, archiveCommandOutcome, runShellCommand, substituteCommand, type ShellCommandResult,
} from '@walship/replication';
import { Component } from '../component.js';

/** NUM_ARCHIVE_RETRIES: tries of one file per cycle. */
export const NUM_ARCHIVE_RETRIES = 3;
/** The pause between two tries of one file (pg_usleep(1000000L)). */
export const ARCHIVE_RETRY_DELAY_MS = 1000;
/** PGARCH_AUTOWAKE_INTERVAL: a cycle at least this often, woken or not. */
export const PGARCH_AUTOWAKE_INTERVAL_MS = 60_000;
/** PGARCH_RESTART_INTERVAL: an archiver that exited is started again at most this often. */
export const PGARCH_RESTART_INTERVAL_MS = 10_000;
/** How long a stopping archiver waits for its running archive_command. */
export const ARCHIVER_STOP_GRACE_MS = 5_000;
/** NUM_FILES_PER_DIRECTORY_SCAN: `.ready` files taken per scan of archive_status/. */
const FILES_PER_DIRECTORY_SCAN = 64;
/** NUM_ORPHAN_CLEANUP_RETRIES. */
const NUM_ORPHAN_CLEANUP_RETRIES = 3;

/** pg_stat_archiver's counters; times are Date.now() values, 0 for never. */
export interface ArchiverStats {
  archivedCount: number;
  lastArchivedWal: string | null;
  lastArchivedTime: number;
  failedCount: number;
  lastFailedWal: string | null;
  lastFailedTime: number;
}

export function newArchiverStats(): ArchiverStats {
  return { archivedCount: 0, lastArchivedWal: null, lastArchivedTime: 0, failedCount: 0, lastFailedWal: null, lastFailedTime: 0 };
}

/** The `archiver` object of the status JSON (pg_stat_archiver's row). */
export function archiverStatusView(stats: ArchiverStats): {
  archivedCount: number; lastArchivedWal: string | null; lastArchivedTime: string | null;
  failedCount: number; lastFailedWal: string | null; lastFailedTime: string | null;
} {
  return {
    archivedCount: stats.archivedCount,
    lastArchivedWal: stats.lastArchivedWal,
    lastArchivedTime: stats.lastArchivedTime > 0 ? new Date(stats.lastArchivedTime).toISOString() : null,
    failedCount: stats.failedCount,
    lastFailedWal: stats.lastFailedWal,
    lastFailedTime: stats.lastFailedTime > 0 ? new Date(stats.lastFailedTime).toISOString() : null,
  };
}

export interface ArchiverOptions {
  dataDir: string;
  /** archive_command when the archiver starts; a reload sets `archiveCommand`. */
  archiveCommand: string;
  stats: ArchiverStats;
  log: LogFunction;
  /** Overrides for tests. */
  commandTimeoutMs?: number;
  retryDelayMs?: number;
  autowakeMs?: number;
  stopGraceMs?: number;
}

/** The archiver's FATAL exit (proc_exit(1)): the postmaster logs it and starts a new archiver. */
export class ArchiverExit extends Error {
  readonly exitCode = 1;
}

type FileResult = 'archived' | 'next' | 'give-up' | 'stopped';

export class Archiver extends Component {
  readonly kind = 'archiver' as const;
  /** archive_command, re-read before every try (a reload changes it, and wakes the latch). */
  archiveCommand: string;
  /** Run once by stop(): what is waiting (a running command, a pause) hears of it. */
  private readonly stopListeners = new Set<() => void>();

  constructor(private readonly options: ArchiverOptions) {
    super();
    this.archiveCommand = options.archiveCommand;
  }

  override stop(): void {
    super.stop();
    for (const listener of [...this.stopListeners]) listener();
  }

  /** Runs `listener` when stop() is called (at once if it was); returns its unregistration. */
  private onStop(listener: () => void): () => void {
    if (this.stopping) {
      listener();
      return () => undefined;
    }
    this.stopListeners.add(listener);
    return () => this.stopListeners.delete(listener);
  }

  protected async main(): Promise<void> {
    const autowakeMs = this.options.autowakeMs ?? PGARCH_AUTOWAKE_INTERVAL_MS;
    while (!this.stopping) {
      await this.copyLoop();
      if (this.stopping) break;
      // Any wake-up (a new .ready, a reload) or the autowake interval starts a cycle.
      await this.latch.wait(autowakeMs);
    }
  }

  /** pgarch_ArchiverCopyLoop: archives every `.ready` file, oldest first, until none is left or one fails. */
  private async copyLoop(): Promise<void> {
    for (;;) {
      const batch = readyXlogFiles(this.options.dataDir, FILES_PER_DIRECTORY_SCAN);
      if (batch.length === 0) return;
      for (const xlog of batch) {
        const result = await this.archiveFile(xlog);
        if (result === 'give-up' || result === 'stopped') return;
      }
    }
  }

  /** One file with its retries. */
  private async archiveFile(xlog: string): Promise<FileResult> {
    const { dataDir, log, stats } = this.options;
    let failures = 0;
    for (;;) {
      // No new command once asked to stop.
      if (this.stopping) return 'stopped';
      const command = this.archiveCommand;
      if (command === '') {
        log('WARNING', 'archive_mode enabled, yet archive_command is not set');
        return 'give-up';
      }
      // A crash can leave a .ready behind for a file a checkpoint removed already: drop it.
      if (!fs.existsSync(path.join(walDir(dataDir), xlog))) {
        const ready = path.join('pg_wal', 'archive_status', `${xlog}.ready`);
        try {
          fs.unlinkSync(statusFilePath(dataDir, xlog, 'ready'));
          log('WARNING', `removed orphan archive status file "${ready}"`);
          return 'next';
        } catch {
          if (++failures >= NUM_ORPHAN_CLEANUP_RETRIES) {
            log('WARNING', `removal of orphan archive status file "${ready}" failed too many times, will try again later`);
            return 'give-up';
          }
          if (!(await this.pause(this.options.retryDelayMs ?? ARCHIVE_RETRY_DELAY_MS))) return 'stopped';
          continue;
        }
      }
      const archived = await this.archiveXlog(xlog, command);
      if (archived === 'stopped') return 'stopped';
      if (archived) {
        try {
          xlogArchiveDone(dataDir, xlog);
        } catch (error) {
          log('WARNING', `could not rename file "pg_wal/archive_status/${xlog}.ready" to "pg_wal/archive_status/${xlog}.done": ${(error as Error).message}`);
          return 'give-up';
        }
        stats.archivedCount++;
        stats.lastArchivedWal = xlog;
        stats.lastArchivedTime = Date.now();
        return 'archived';
      }
      stats.failedCount++;
      stats.lastFailedWal = xlog;
      stats.lastFailedTime = Date.now();
      if (++failures >= NUM_ARCHIVE_RETRIES) {
        log('WARNING', `archiving write-ahead log file "${xlog}" failed too many times, will try again later`);
        return 'give-up';
      }
      if (!(await this.pause(this.options.retryDelayMs ?? ARCHIVE_RETRY_DELAY_MS))) return 'stopped';
    }
  }

  /**
   * pgarch_archiveXlog: runs archive_command for `xlog`. True when archived, false when it failed
   * (logged), 'stopped' when the archiver was stopped while it ran; throws ArchiverExit on a
   * FATAL outcome.
   */
  private async archiveXlog(xlog: string, template: string): Promise<boolean | 'stopped'> {
    const { dataDir, log } = this.options;
    let command: string;
    try {
      command = substituteCommand(template, { p: path.join('pg_wal', xlog), f: xlog }, 'archive_command');
    } catch (error) {
      // replace_percent_placeholders' ERROR ends the archiver, as in PostgreSQL 16.
      this.reportFatal((error as Error).message, null);
    }
    log('DEBUG', `executing archive command "${command}"`);
    const result = await this.runCommand(command, dataDir);
    if (result === null) return 'stopped';
    const outcome = archiveCommandOutcome(result, command);
    if (outcome.kind === 'archived') {
      log('DEBUG', `archived write-ahead log file "${xlog}"`);
      return true;
    }
    // The command's own words, which PostgreSQL's log collector would have caught from stderr.
    const said = result.stderr.trim();
    if (said !== '') log('LOG', `archive command output: ${said}`);
    if (outcome.kind === 'fatal') this.reportFatal(outcome.message!, outcome.detail);
    log('LOG', outcome.message!);
    if (outcome.detail !== null) log('DETAIL', outcome.detail);
    return false;
  }

  private reportFatal(message: string, detail: string | null): never {
    this.options.log('FATAL', message);
    if (detail !== null) this.options.log('DETAIL', detail);
    throw new ArchiverExit(message);
  }

  /** Runs the command; null when the archiver was stopped and the command outlived the grace period. */
  private async runCommand(command: string, cwd: string): Promise<ShellCommandResult | null> {
    const running = runShellCommand(command, { cwd, timeoutMs: this.options.commandTimeoutMs ?? SHELL_COMMAND_TIMEOUT_MS });
    let timer: NodeJS.Timeout | undefined;
    let unregister = (): void => undefined;
    const abandoned = new Promise<null>((resolve) => {
      unregister = this.onStop(() => {
        timer = setTimeout(() => resolve(null), this.options.stopGraceMs ?? ARCHIVER_STOP_GRACE_MS);
      });
    });
    try {
      return await Promise.race([running, abandoned]);
    } finally {
      unregister();
      clearTimeout(timer);
    }
  }

  /** pg_usleep between tries; false when the archiver was asked to stop meanwhile. */
  private async pause(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    let unregister = (): void => undefined;
    await new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      unregister = this.onStop(resolve);
    });
    unregister();
    clearTimeout(timer);
    return !this.stopping;
  }
}
