/**
 * `postmaster.pid`, the data directory lock (miscinit.c's CreateLockFile). Lines as PostgreSQL
 * writes them: 1 pid, 2 data directory, 3 start time (epoch seconds), 4 port, 5 socket
 * directory (empty here), 6 listen address, 7 shared memory key (empty here), 8 status
 * (`starting`, `ready`, `stopping`). Created with O_EXCL, so two nodes never share a directory;
 * a file left by a dead process is recognised and replaced.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
// Only the errors module: the CLI reads pid files, and must not load the whole engine to start.
import { ErrorCode, WalshipError } from '@walship/engine/errors';

export type PidStatus = 'starting' | 'ready' | 'stopping';

export const PID_FILE_NAME = 'postmaster.pid';

export interface PidFileInfo {
  pid: number;
  dataDir: string;
  startTimeSeconds: number | null;
  port: number | null;
  listenAddress: string;
  /** Empty while the server has not written it yet. */
  status: string;
}

export function pidFilePath(dataDir: string): string {
  return path.join(dataDir, PID_FILE_NAME);
}

/** Reads postmaster.pid; null when it does not exist or has no valid pid line (yet). */
export function readPidFile(dataDir: string): PidFileInfo | null {
  let text: string;
  try {
    text = fs.readFileSync(pidFilePath(dataDir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]?.trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) return null;
  const numberOrNull = (line: string | undefined): number | null => {
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

/**
 * Whether a process is running. A zombie (exited, not yet reaped by its parent, which in a
 * container may take a while) answers kill(pid, 0) but is gone: /proc says so.
 */
export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name, which is in parentheses and may contain spaces.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

export class PidFile {
  private readonly file: string;
  private readonly startTime = Math.floor(Date.now() / 1000);
  private held = false;

  constructor(private readonly dataDir: string, private readonly port: number, private readonly listenAddress: string) {
    this.file = pidFilePath(dataDir);
  }

  /** Takes the lock, or throws naming the running postmaster. */
  acquire(): void {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = fs.openSync(this.file, 'wx', 0o600);
        fs.writeSync(fd, this.text('starting'));
        fs.fsyncSync(fd);
        fs.closeSync(fd);
        this.held = true;
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const existing = readPidFile(this.dataDir);
      if (existing !== null && existing.pid !== process.pid && processIsAlive(existing.pid)) {
        throw new WalshipError(ErrorCode.dataDirectoryInUse, `lock file "${this.file}" already exists`, {
          severity: 'FATAL',
          hint: `Is another postmaster (PID ${existing.pid}) running in data directory "${this.dataDir}"?`,
        });
      }
      // Left behind by a process that is gone: take it over.
      fs.rmSync(this.file, { force: true });
    }
    throw new WalshipError(ErrorCode.dataDirectoryInUse, `could not create lock file "${this.file}"`, { severity: 'FATAL' });
  }

  setStatus(status: PidStatus): void {
    if (!this.held) return;
    const temp = `${this.file}.tmp`;
    fs.writeFileSync(temp, this.text(status));
    fs.renameSync(temp, this.file);
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    fs.rmSync(this.file, { force: true });
  }

  private text(status: PidStatus): string {
    return [process.pid, path.resolve(this.dataDir), this.startTime, this.port, '', this.listenAddress, '', status.padEnd(8)].join('\n') + '\n';
  }
}
