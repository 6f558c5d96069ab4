/**
 * The data root's lock: `DATA_ROOT/cluster.lock`, so that two commands changing one cluster
 * (say a switchover and a failover, or later the monitor and a person) never interleave their
 * steps. It holds the owner's pid and command. Created with O_EXCL; a lock whose owner process
 * is gone (killed half-way) is stale and taken over. A live owner is waited for up to
 * LOCK_WAIT_MS, then reported.
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClusterError, ClusterErrorCode } from './cluster-error.js';
import { LOCK_FILE_NAME, LOCK_WAIT_MS } from './constants.js';

/** How often a held lock is looked at again while waiting. */
const LOCK_POLL_MS = 50;

export interface ClusterLock {
  release(): void;
}

interface LockOwner {
  pid: number;
  command: string;
  since: string;
  /**
   * False for a holder that only records what it saw (cluster status, the monitor's
   * observations): the monitor keeps counting its checks while such a holder has the lock, and
   * pauses for any other.
   */
  changes?: boolean;
  /**
   * True for a holder that may change who the primary is (switchover, failover): the monitor
   * neither counts its checks nor renews the primary's lease while one holds the lock, and the
   * holder grants the lease to the primary it leaves behind. For any other holder the monitor
   * keeps renewing the lease of the primary that answers, so that a long `cluster up` (a base
   * backup) does not leave the primary without one.
   */
  changesPrimary?: boolean;
}

function readOwner(path: string): LockOwner | null {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as LockOwner;
    return Number.isSafeInteger(parsed.pid) ? parsed : null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tryCreate(path: string, command: string, changes: boolean, changesPrimary: boolean): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    writeSync(fd, JSON.stringify({ pid: process.pid, command, since: new Date().toISOString(), changes, changesPrimary } satisfies LockOwner));
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Who holds the data root's lock now, if a live process does (the monitor does not count its
 * checks while another command holds it).
 */
export function clusterLockOwner(dataRoot: string): { pid: number; command: string; changes: boolean; changesPrimary: boolean } | null {
  const owner = readOwner(join(dataRoot, LOCK_FILE_NAME));
  // A lock file without the field (an older walship) may change anything.
  return owner !== null && isAlive(owner.pid)
    ? { pid: owner.pid, command: owner.command, changes: owner.changes !== false, changesPrimary: owner.changes !== false && owner.changesPrimary !== false }
    : null;
}

/**
 * Takes the lock, waiting up to `waitMs` for a holder to let go. `changes` is false for a holder
 * that only records observations (see LockOwner.changes), `changesPrimary` true for a switchover
 * or a failover (see LockOwner.changesPrimary).
 */
export async function acquireClusterLock(dataRoot: string, command: string, waitMs: number = LOCK_WAIT_MS, changes = true, changesPrimary = false): Promise<ClusterLock> {
  mkdirSync(dataRoot, { recursive: true });
  const path = join(dataRoot, LOCK_FILE_NAME);
  const deadline = Date.now() + waitMs;
  for (;;) {
    if (tryCreate(path, command, changes, changesPrimary)) {
      let released = false;
      return {
        release: () => {
          if (released) return;
          released = true;
          try {
            unlinkSync(path);
          } catch {
            // Already gone: nothing to release.
          }
        },
      };
    }
    const owner = readOwner(path);
    // A lock file being written right now has no owner yet: wait for it rather than steal it.
    if (owner !== null && !isAlive(owner.pid)) {
      try {
        unlinkSync(path);
      } catch {
        // Another waiter took it over first.
      }
      continue;
    }
    if (Date.now() >= deadline) {
      throw new ClusterError(ClusterErrorCode.locked, `another cluster command is running on "${dataRoot}"`, {
        detail: owner === null ? `The lock file "${path}" exists.` : `Process ${owner.pid} ("${owner.command}") has held the lock since ${owner.since}.`,
        hint: 'Wait for it to finish and try again. If no such command is running, remove the lock file.',
      });
    }
    await sleep(LOCK_POLL_MS);
  }
}

/**
 * Runs `body` under the lock when it can be had at once; null, without running it, when anyone
 * holds it (or it cannot be taken). For steps that may be skipped and done on a later turn:
 * recording an observation, the monitor's settling and its synchronous-mode changes.
 */
export async function withClusterLockIfFree<T>(dataRoot: string, command: string, changes: boolean, changesPrimary: boolean, body: () => Promise<T>): Promise<T | null> {
  const lock = await acquireClusterLock(dataRoot, command, 0, changes, changesPrimary).catch(() => null);
  if (lock === null) return null;
  try {
    return await body();
  } finally {
    lock.release();
  }
}
