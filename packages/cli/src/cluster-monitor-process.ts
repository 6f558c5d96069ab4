/**
 * The failover monitor as processes: `cluster up` starts a supervisor (`walship cluster monitor
 * --supervise`) detached from the terminal, with its output in DATA_ROOT/monitor.out; the
 * supervisor writes monitor.pid and runs the monitor itself as a child (`--worker`), starting it
 * again when it dies; `cluster down` stops the supervisor (SIGTERM), which stops its child
 * first. DESIGN.md section 10: "The monitor writes monitor.pid in the data root".
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClusterConfig, MonitorPidFile } from '@walship/cluster';
import { CliError, ExitCode } from './cli-error.js';

/** How long starting the monitor may take before `cluster up` reports it: node start-up plus loading the cluster package. */
const MONITOR_START_TIMEOUT_MS = 15_000;
const POLL_MS = 50;


/** The walship program, to start the supervisor with. */
function walshipProgram(): string {
  return fileURLToPath(new URL('../bin/walship.js', import.meta.url));
}

/** The command line that names this cluster again: its file and its data root (and base port, when moved). */
export function clusterFileArguments(config: ClusterConfig, basePort: number | undefined): string[] {
  return ['-f', config.file, '--data-root', config.dataRoot, ...(basePort === undefined ? [] : ['--base-port', String(basePort)])];
}

/** Starts the monitor unless one runs; returns its pid file and whether this call started it. */
export async function ensureMonitor(config: ClusterConfig, basePort: number | undefined): Promise<{ monitor: MonitorPidFile; started: boolean }> {
  const { runningMonitor } = await import('@walship/cluster');
  const running = runningMonitor(config.dataRoot);
  if (running !== null) return { monitor: running, started: false };
  mkdirSync(config.dataRoot, { recursive: true });
  const outPath = join(config.dataRoot, 'monitor.out');
  const out = openSync(outPath, 'a', 0o600);
  const child = spawn(process.execPath, [walshipProgram(), 'cluster', 'monitor', '--supervise', ...clusterFileArguments(config, basePort)], {
    detached: true,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  let exited: number | null = null;
  child.once('exit', (code) => {
    exited = code ?? -1;
  });
  child.unref();
  const deadline = Date.now() + MONITOR_START_TIMEOUT_MS;
  for (;;) {
    const monitor = runningMonitor(config.dataRoot);
    if (monitor !== null && monitor.pid === child.pid && monitor.workerPid !== null) {
      child.removeAllListeners();
      return { monitor, started: true };
    }
    if (exited !== null || Date.now() > deadline) {
      child.removeAllListeners();
      throw new CliError(ExitCode.failed, `the failover monitor did not start${exited === null ? ` within ${MONITOR_START_TIMEOUT_MS / 1000} s` : ` (it exited with status ${exited})`}`, {
        hint: `See "${outPath}" and "${join(config.dataRoot, 'monitor.log')}". The cluster runs, without automatic failover.`,
      });
    }
    await sleep(POLL_MS);
  }
}

/** Stops the monitor if one runs and waits until it is gone. Returns its pid, or null. */
export async function stopMonitor(config: ClusterConfig): Promise<number | null> {
  const { stopRunningMonitor } = await import('@walship/cluster');
  return stopRunningMonitor(config.dataRoot);
}
