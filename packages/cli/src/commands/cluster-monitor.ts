/**
 * `walship cluster monitor -f FILE`: the failover monitor (@walship/cluster's runMonitor), in
 * the foreground, until interrupted: it checks the primary every health_check_interval and fails
 * over when the policy says it is gone, writing each decision to DATA_ROOT/monitor.log and one
 * line for people on stderr. `cluster up` starts it by itself when failover.mode is automatic,
 * as `--supervise`: that process owns monitor.pid and runs the monitor as a child (`--worker`),
 * starting it again if it dies (at most MONITOR_RESTARTS_MAX times within a minute, then it gives
 * up and says so in monitor.log). `--stop` stops a running monitor.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MonitorLogEntry } from '@walship/cluster';
import { CliError, ExitCode } from '../cli-error.js';
import { stopMonitor } from '../cluster-monitor-process.js';
import { openCluster, type ClusterFileOptions } from '../cluster-support.js';
import { walshipProgram } from '../detached-process.js';
import type { CliIo } from '../io.js';

export interface ClusterMonitorOptions extends ClusterFileOptions {
  supervise?: boolean;
  worker?: boolean;
  stop?: boolean;
}

/** Restarts of a dying monitor allowed within RESTART_WINDOW_MS: beyond, something is broken for good and restarting only hides it. */
const MONITOR_RESTARTS_MAX = 5;
const RESTART_WINDOW_MS = 60_000;
/** Between a monitor's death and its restart: long enough not to spin, short enough not to leave the cluster unwatched. */
const RESTART_DELAY_MS = 500;
/** How often a supervised monitor looks whether its supervisor is still there. */
const ORPHAN_CHECK_MS = 1_000;

/** One line for people from a monitor.log entry. */
function describe(entry: MonitorLogEntry): string {
  const { at, event, decision: rawDecision, ...rest } = entry;
  const decision = rawDecision as { reasons?: Array<{ message: string }> } | null | undefined;
  const fields = Object.entries(rest).map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`).join(' ');
  const why = decision?.reasons?.map((reason) => reason.message).join('; ');
  return `${at} ${event}${fields === '' ? '' : ` ${fields}`}${why === undefined || why === '' ? '' : ` why: ${why}`}\n`;
}

export async function run(options: ClusterMonitorOptions, io: CliIo): Promise<number> {
  const ctx = await openCluster({ ...options, quiet: true }, io);
  const cluster = await import('@walship/cluster');
  if (options.stop === true) {
    const pid = await stopMonitor(ctx.config);
    io.stdout.write(pid === null ? `no failover monitor runs for cluster ${ctx.config.name}\n` : `failover monitor (pid ${pid}) stopped\n`);
    return ExitCode.ok;
  }
  if (options.supervise === true) return supervise(options, io, ctx.config.dataRoot, ctx.config.name);

  if (options.worker !== true) {
    const claimed = cluster.claimMonitorPidFile(ctx.config.dataRoot, { pid: process.pid, workerPid: process.pid, since: new Date().toISOString(), restarts: 0 });
    if (!claimed) throw alreadyRunning(ctx.config.dataRoot, cluster.runningMonitor(ctx.config.dataRoot)?.pid);
  }
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  // A monitor whose supervisor died (SIGKILL) would run on unseen beside the one the next
  // `cluster up` starts: it stops when it is orphaned.
  const supervisor = options.worker === true ? process.ppid : null;
  const orphanCheck = supervisor === null ? null : setInterval(() => {
    if (process.ppid !== supervisor) stop();
  }, ORPHAN_CHECK_MS);
  try {
    await cluster.runMonitor(ctx, { signal: controller.signal, onEntry: (entry) => io.stderr.write(describe(entry)) });
  } finally {
    if (orphanCheck !== null) clearInterval(orphanCheck);
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    if (options.worker !== true) cluster.removeMonitorPidFile(ctx.config.dataRoot, process.pid);
  }
  return ExitCode.ok;
}

function alreadyRunning(dataRoot: string, pid: number | undefined): CliError {
  return new CliError(ExitCode.failed, `a failover monitor already runs for this cluster${pid === undefined ? '' : ` (pid ${pid})`}`, {
    detail: `Its pid file is in ${dataRoot}.`,
    hint: 'One monitor per cluster: stop it first with walship cluster monitor --stop -f FILE.',
  });
}

/** The supervisor: owns monitor.pid and keeps one monitor child running until told to stop. */
async function supervise(options: ClusterMonitorOptions, io: CliIo, dataRoot: string, clusterName: string): Promise<number> {
  const cluster = await import('@walship/cluster');
  const since = new Date().toISOString();
  if (!cluster.claimMonitorPidFile(dataRoot, { pid: process.pid, workerPid: null, since, restarts: 0 })) {
    throw alreadyRunning(dataRoot, cluster.runningMonitor(dataRoot)?.pid);
  }
  const args = ['cluster', 'monitor', '--worker', '-f', options.file, ...(options.dataRoot === undefined ? [] : ['--data-root', options.dataRoot]), ...(options.basePort === undefined ? [] : ['--base-port', String(options.basePort)])];
  let stopping = false;
  let child: ChildProcess | null = null;
  const stop = () => {
    stopping = true;
    child?.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  const deaths: number[] = [];
  let restarts = 0;
  try {
    while (!stopping) {
      child = spawn(process.execPath, [walshipProgram(), ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
      cluster.updateMonitorPidFile(dataRoot, { pid: process.pid, workerPid: child.pid ?? null, since, restarts });
      const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child!.once('exit', (code, signal) => resolve({ code, signal })));
      child = null;
      cluster.updateMonitorPidFile(dataRoot, { pid: process.pid, workerPid: null, since, restarts });
      if (stopping) break;
      const now = Date.now();
      deaths.push(now);
      while (deaths.length > 0 && deaths[0]! < now - RESTART_WINDOW_MS) deaths.shift();
      if (deaths.length > MONITOR_RESTARTS_MAX) {
        cluster.appendMonitorLog(dataRoot, { event: 'supervisor_gave_up', deaths: deaths.length, windowMs: RESTART_WINDOW_MS, lastExit: exit });
        io.stderr.write(`walship: error: the failover monitor of cluster ${clusterName} died ${deaths.length} times within a minute; not restarting it\n`);
        return ExitCode.failed;
      }
      restarts++;
      cluster.appendMonitorLog(dataRoot, { event: 'monitor_restarted', lastExit: exit, restarts });
      await sleep(RESTART_DELAY_MS);
    }
    return ExitCode.ok;
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    cluster.removeMonitorPidFile(dataRoot, process.pid);
  }
}
