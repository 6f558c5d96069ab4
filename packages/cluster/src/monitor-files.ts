/**
 * The monitor's files in the data root: `monitor.pid` (DESIGN.md section 10), written by the
 * process that keeps the monitor running (the supervisor, which restarts the monitor if it
 * dies) with the pid to signal to stop it and the pid of the monitor it runs now; and
 * `monitor.log`, one JSON object a line for each of the monitor's decisions, which `cluster
 * history` and people read.
 */
import { appendFileSync, closeSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterError, ClusterErrorCode } from './cluster-error.js';
import { MONITOR_LOG_FILE_NAME, MONITOR_PID_FILE_NAME } from './constants.js';
import { claimPidFile, readLivePidFile, removePidFile, stopPidFileProcess } from './pid-file.js';

/** How long a stopping monitor may take: it finishes a failover in progress first. */
const MONITOR_STOP_TIMEOUT_MS = 60_000;

export interface MonitorPidFile {
  /** The supervisor: SIGTERM stops the monitor for good. */
  readonly pid: number;
  /** The monitor process it runs now; null between two runs. */
  readonly workerPid: number | null;
  readonly since: string;
  /** How many times the monitor was restarted after dying. */
  readonly restarts: number;
}

export function monitorPidPath(dataRoot: string): string {
  return join(dataRoot, MONITOR_PID_FILE_NAME);
}

export function monitorLogPath(dataRoot: string): string {
  return join(dataRoot, MONITOR_LOG_FILE_NAME);
}

/** The pid file, when its supervisor is alive; null when no monitor runs (a stale file is ignored). */
export function runningMonitor(dataRoot: string): MonitorPidFile | null {
  return readLivePidFile<MonitorPidFile>(monitorPidPath(dataRoot));
}

/**
 * Claims the pid file for this process. Returns false when a live monitor holds it already (one
 * monitor per cluster). A stale file is replaced.
 */
export function claimMonitorPidFile(dataRoot: string, record: MonitorPidFile): boolean {
  mkdirSync(dataRoot, { recursive: true });
  return claimPidFile(monitorPidPath(dataRoot), record);
}

/** Rewrites the pid file (a new worker pid); only its owner calls it. */
export function updateMonitorPidFile(dataRoot: string, record: MonitorPidFile): void {
  const path = monitorPidPath(dataRoot);
  const temporary = `${path}.tmp`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    writeSync(fd, JSON.stringify(record));
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}

export function removeMonitorPidFile(dataRoot: string, pid: number): void {
  removePidFile(monitorPidPath(dataRoot), pid);
}

/** One line of monitor.log. */
export interface MonitorLogEntry {
  readonly at: string;
  readonly event: string;
  readonly [key: string]: unknown;
}

export function appendMonitorLog(dataRoot: string, entry: { readonly event: string; readonly [key: string]: unknown }): MonitorLogEntry {
  const line: MonitorLogEntry = { at: new Date().toISOString(), ...entry };
  appendFileSync(monitorLogPath(dataRoot), `${JSON.stringify(line)}\n`, { mode: 0o600 });
  return line;
}

/**
 * Stops the cluster's monitor if one runs (SIGTERM to its supervisor, which stops its child) and
 * waits until both are gone. Returns the supervisor's pid, or null when none ran.
 */
export async function stopRunningMonitor(dataRoot: string, timeoutMs: number = MONITOR_STOP_TIMEOUT_MS): Promise<number | null> {
  const running = runningMonitor(dataRoot);
  if (running === null) return null;
  await stopPidFileProcess(running.pid, running.workerPid, timeoutMs, () => new ClusterError(ClusterErrorCode.timeout, `the failover monitor (pid ${running.pid}) did not stop within ${timeoutMs / 1000} s`, {
    hint: `See "${monitorLogPath(dataRoot)}"; stop it with kill ${running.pid}.`,
  }));
  return running.pid;
}
