/** Processes a `walship cluster` data root runs: whether they live, and killing what a failed test left. */
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Whether pid names a live process. A zombie counts as gone: the cluster's detached processes
 * are not this test's children, and whoever reaps them may not have done so yet.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z');
  } catch {
    return false;
  }
}

/**
 * SIGKILLs whatever runs for a cluster data root: the monitor (and its worker) and the proxy
 * named in monitor.pid and proxy.pid, and each member's server named in its postmaster.pid.
 * Only this data root's processes; a missing or unreadable pid file means nothing runs there.
 */
export function killClusterLeftovers(dataRoot: string, members: readonly string[]): void {
  for (const file of ['monitor.pid', 'proxy.pid']) {
    try {
      const { pid, workerPid } = JSON.parse(fs.readFileSync(path.join(dataRoot, file), 'utf8')) as { pid: number; workerPid?: number | null };
      for (const p of [pid, workerPid ?? null]) if (p !== null && processAlive(p)) process.kill(p, 'SIGKILL');
    } catch {
      // Not there: nothing runs.
    }
  }
  for (const name of members) {
    try {
      const pid = Number(fs.readFileSync(path.join(dataRoot, name, 'postmaster.pid'), 'utf8').split('\n')[0]);
      if (pid > 0 && processAlive(pid)) process.kill(pid, 'SIGKILL');
    } catch {
      // No pid file: nothing runs there.
    }
  }
}
