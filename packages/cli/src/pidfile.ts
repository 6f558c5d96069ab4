/**
 * postmaster.pid, as PostgreSQL lays it out (pidfile.h): line 1 the pid, 2 the data directory,
 * 3 the start time (epoch seconds), 4 the port, 5 the socket directory (empty), 6 the listen
 * address, 7 the shared memory key (empty), 8 the status (`starting`, `ready`, `standby`,
 * `stopping`). The server writes it; `start` and `stop` only read it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const PID_FILE_NAME = 'postmaster.pid';

export interface PidFile {
  pid: number;
  dataDir: string;
  startTimeSeconds: number | null;
  port: number | null;
  listenAddress: string;
  /** Empty while the server has not written it yet. */
  status: string;
}

export function pidFilePath(dataDir: string): string {
  return join(dataDir, PID_FILE_NAME);
}

/** Reads the PID file; null when it does not exist or has no valid pid line (yet). */
export function readPidFile(dataDir: string): PidFile | null {
  let text: string;
  try {
    text = readFileSync(pidFilePath(dataDir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]?.trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  const numberOrNull = (line: string | undefined) => {
    const value = Number(line?.trim());
    return line === undefined || line.trim() === '' || !Number.isFinite(value) ? null : value;
  };
  return {
    pid,
    dataDir: lines[1]?.trim() ?? '',
    startTimeSeconds: numberOrNull(lines[2]),
    port: numberOrNull(lines[3]),
    listenAddress: lines[5]?.trim() ?? '',
    status: lines[7]?.trim() ?? '',
  };
}

/** Whether a process with this pid exists (signal 0; EPERM means it exists but is not ours). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
