/**
 * What the cluster reads and writes in a member's data directory without going through a node
 * command: whether a server runs there (postmaster.pid), its control file (the shutdown
 * checkpoint a switchover waits for, the timeline), killing its server (a rehearsed crash, or
 * fencing an old primary that still runs), the fence itself (standby.signal), and the slots left
 * behind by a change of roles.
 */
import { closeSync, existsSync, fsyncSync, openSync, readdirSync, rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DbState, readControlFile } from '@walship/engine/control-file';
import { processIsAlive, readPidFile } from '@walship/server/pidfile';
import { fsyncDirectory } from './state.js';

/** How long a SIGKILLed server may take to be gone: the kernel frees it at once, this only bounds a wait on /proc. */
const KILL_WAIT_MS = 10_000;
const POLL_MS = 20;

export function isDataDirectory(dataDir: string): boolean {
  return existsSync(join(dataDir, 'global', 'control'));
}

/** The running server of a data directory: its pid and postmaster.pid status; null when none runs. */
export function runningServer(dataDir: string): { pid: number; status: string } | null {
  let pidFile;
  try {
    pidFile = readPidFile(dataDir);
  } catch {
    return null;
  }
  if (pidFile === null || !processIsAlive(pidFile.pid)) return null;
  return { pid: pidFile.pid, status: pidFile.status };
}

export interface ControlSummary {
  /** Shut down cleanly (as a primary or in recovery). */
  readonly cleanShutdown: boolean;
  readonly inProduction: boolean;
  readonly timeline: number;
  readonly checkpointLsn: number;
  readonly systemId: string;
}

/** The control file's facts the cluster needs; null when there is no data directory. */
export function readControlSummary(dataDir: string): ControlSummary | null {
  if (!isDataDirectory(dataDir)) return null;
  const control = readControlFile(dataDir);
  return {
    cleanShutdown: control.state === DbState.shutdowned || control.state === DbState.shutdownedInRecovery,
    inProduction: control.state === DbState.inProduction,
    timeline: control.timeline,
    checkpointLsn: control.checkpointLsn,
    systemId: control.systemId.toString(),
  };
}

/**
 * The timeline the state's primary is on: the state's, or higher when the primary's own crash
 * recovery ended on a new timeline, which no cluster command recorded (an encrypted primary
 * whose crash left a torn WAL tail: engine torn-wal-tail.ts). Its standbys follow it there. Read
 * from its control file; never below the state's.
 */
export function primaryTimeline(state: { readonly timeline: number }, primaryDataDir: string): number {
  let control: ControlSummary | null = null;
  try {
    control = readControlSummary(primaryDataDir);
  } catch {
    // An unreadable control file says nothing here; the commands that need it report it.
  }
  return Math.max(state.timeline, control?.timeline ?? 0);
}

/** SIGKILLs the server of a data directory and waits until it is gone. Returns its pid, or null when none ran. */
export async function killServer(dataDir: string): Promise<number | null> {
  const server = runningServer(dataDir);
  if (server === null) return null;
  try {
    process.kill(server.pid, 'SIGKILL');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
  const deadline = Date.now() + KILL_WAIT_MS;
  while (processIsAlive(server.pid)) {
    if (Date.now() > deadline) throw new Error(`process ${server.pid} is still alive ${KILL_WAIT_MS / 1000} s after SIGKILL`);
    await sleep(POLL_MS);
  }
  return server.pid;
}

/**
 * Fences an old primary's data directory: with standby.signal, a server started on it runs in
 * recovery and refuses writes, whoever starts it. Rejoin removes it again before the rewind,
 * whose crash recovery must run as the primary the directory last was.
 */
export function writeFence(dataDir: string): void {
  if (!isDataDirectory(dataDir)) return;
  const fd = openSync(join(dataDir, 'standby.signal'), 'w', 0o600);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  fsyncDirectory(dataDir);
}

export function removeFence(dataDir: string): void {
  const path = join(dataDir, 'standby.signal');
  if (!existsSync(path)) return;
  unlinkSync(path);
  fsyncDirectory(dataDir);
}

/**
 * Removes the replication slots of a stopped member except `keep`: slots it held as a primary
 * for standbys that now stream from someone else would hold its WAL forever (base backups drop
 * the source's slots for the same reason). Returns the names removed.
 */
export function pruneSlots(dataDir: string, keep: readonly string[]): string[] {
  const directory = join(dataDir, 'pg_replslot');
  if (!existsSync(directory)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(directory)) {
    if (keep.includes(name)) continue;
    rmSync(join(directory, name), { recursive: true, force: true });
    removed.push(name);
  }
  if (removed.length > 0) fsyncDirectory(directory);
  return removed;
}
