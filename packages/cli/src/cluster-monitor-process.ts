/**
 * The failover monitor as processes: `cluster up` starts a supervisor (`walship cluster monitor
 * --supervise`) detached from the terminal, with its output in DATA_ROOT/monitor.out; the
 * supervisor writes monitor.pid and runs the monitor itself as a child (`--worker`), starting it
 * again when it dies; `cluster down` stops the supervisor (SIGTERM), which stops its child
 * first. DESIGN.md section 10: "The monitor writes monitor.pid in the data root".
 */
import { join } from 'node:path';
import type { ClusterConfig, MonitorPidFile } from '@walship/cluster';
import { startDetached } from './detached-process.js';

/** How long starting the monitor may take before `cluster up` reports it: node start-up plus loading the cluster package. */
const MONITOR_START_TIMEOUT_MS = 15_000;

/** The command line that names this cluster again: its file and its data root (and base port, when moved). */
export function clusterFileArguments(config: ClusterConfig, basePort: number | undefined): string[] {
  return ['-f', config.file, '--data-root', config.dataRoot, ...(basePort === undefined ? [] : ['--base-port', String(basePort)])];
}

/** Starts the monitor unless one runs; returns its pid file and whether this call started it. */
export async function ensureMonitor(config: ClusterConfig, basePort: number | undefined): Promise<{ monitor: MonitorPidFile; started: boolean }> {
  const { runningMonitor } = await import('@walship/cluster');
  const running = runningMonitor(config.dataRoot);
  if (running !== null) return { monitor: running, started: false };
  const outPath = join(config.dataRoot, 'monitor.out');
  const monitor = await startDetached({
    args: ['cluster', 'monitor', '--supervise', ...clusterFileArguments(config, basePort)],
    outPath,
    what: 'the failover monitor',
    timeoutMs: MONITOR_START_TIMEOUT_MS,
    hint: `See "${outPath}" and "${join(config.dataRoot, 'monitor.log')}". The cluster runs, without automatic failover.`,
    ready: (pid) => {
      const monitor = runningMonitor(config.dataRoot);
      return monitor !== null && monitor.pid === pid && monitor.workerPid !== null ? monitor : null;
    },
  });
  return { monitor, started: true };
}

/** Stops the monitor if one runs and waits until it is gone. Returns its pid, or null. */
export async function stopMonitor(config: ClusterConfig): Promise<number | null> {
  const { stopRunningMonitor } = await import('@walship/cluster');
  return stopRunningMonitor(config.dataRoot);
}
