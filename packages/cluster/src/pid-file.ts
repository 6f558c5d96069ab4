/**
 * The JSON pid files of the cluster's own long-running processes (`monitor.pid`, `proxy.pid`):
 * one process of each kind per data root, claimed with O_EXCL; a file left by a dead process is
 * recognised and replaced, like the server's postmaster.pid.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { processIsAlive } from '@walship/server/pidfile';

export interface PidRecord {
  readonly pid: number;
}

/** The file's record when its process is alive; null when missing, unreadable or stale. */
export function readLivePidFile<T extends PidRecord>(path: string): T | null {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as T;
    return Number.isSafeInteger(parsed.pid) && processIsAlive(parsed.pid) ? parsed : null;
  } catch {
    return null;
  }
}

/** Claims the file for `record.pid`; false when another live process holds it. A stale file is replaced. */
export function claimPidFile(path: string, record: PidRecord): boolean {
  for (;;) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(fd, JSON.stringify(record));
      } finally {
        closeSync(fd);
      }
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = readLivePidFile(path);
    if (holder !== null && holder.pid !== record.pid) return false;
    try {
      unlinkSync(path);
    } catch {
      // Another claimant removed it first; try again.
    }
  }
}

/** Removes the file when `pid` owns it (or it is unreadable: then it is nobody's). */
export function removePidFile(path: string, pid: number): void {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return; // Gone already.
  }
  try {
    if ((JSON.parse(text) as PidRecord).pid !== pid) return;
  } catch {
    // Unreadable: it is nobody's.
  }
  try {
    unlinkSync(path);
  } catch {
    // Removed by someone else meanwhile.
  }
}

/**
 * Sends SIGTERM to `pid` and waits until it and `alsoWaitFor` are gone; throws `onTimeout()`
 * after `timeoutMs`.
 */
export async function stopPidFileProcess(pid: number, alsoWaitFor: number | null, timeoutMs: number, onTimeout: () => Error): Promise<void> {
  try {
    process.kill(pid, 'SIGTERM');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
  const deadline = Date.now() + timeoutMs;
  while (processIsAlive(pid) || (alsoWaitFor !== null && processIsAlive(alsoWaitFor))) {
    if (Date.now() > deadline) throw onTimeout();
    await sleep(50);
  }
}
