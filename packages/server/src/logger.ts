/**
 * The logging collector (syslogger.c): every log line of the node goes to a file under
 * `DATADIR/log/` (log_directory), rotated by size (log_rotation_size) and age
 * (log_rotation_age), in PostgreSQL's default line format: `%m [%p] LEVEL:  message`.
 * Until the node is ready, and always in the foreground, lines also go to stderr, so that
 * `walship start` can show why a start failed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { LogLevel } from '@walship/engine';

const LEVEL_ORDER: Record<string, number> = {
  debug5: 0, debug4: 0, debug3: 0, debug2: 0, debug1: 0, DEBUG: 0, info: 1, notice: 1, LOG: 2, log: 2, DETAIL: 2, HINT: 2,
  warning: 3, WARNING: 3, error: 4, ERROR: 4, fatal: 5, FATAL: 5, panic: 6, PANIC: 6,
};

export interface LoggerOptions {
  dataDir: string;
  directory: string;
  rotationSizeBytes: number;
  rotationAgeMs: number;
  minLevel: string;
  toStderr: boolean;
}

export class Logger {
  private fd: number | null = null;
  private file = '';
  private bytes = 0;
  private openedAt = 0;
  toStderr: boolean;

  constructor(private options: LoggerOptions) {
    this.toStderr = options.toStderr;
  }

  get currentFile(): string {
    return this.file;
  }

  configure(options: Partial<LoggerOptions>): void {
    this.options = { ...this.options, ...options };
  }

  log = (level: LogLevel, message: string): void => {
    // LOG lines (and the DETAIL/HINT lines that go with a message) are always written, as
    // PostgreSQL's log_min_messages treats LOG above ERROR.
    if (level !== 'LOG' && level !== 'DETAIL' && level !== 'HINT' && (LEVEL_ORDER[level] ?? 2) < (LEVEL_ORDER[this.options.minLevel] ?? 3)) return;
    const line = `${timestamp()} [${process.pid}] ${level}:  ${message}\n`;
    if (this.toStderr) process.stderr.write(line);
    try {
      this.write(line);
    } catch {
      // The log is for people; never let a full disk or a removed directory stop the node.
    }
  };

  private write(line: string): void {
    const now = Date.now();
    if (this.fd === null || this.bytes >= this.options.rotationSizeBytes ||
        (this.options.rotationAgeMs > 0 && now - this.openedAt >= this.options.rotationAgeMs)) {
      this.rotate(now);
    }
    this.bytes += fs.writeSync(this.fd!, line);
  }

  private rotate(now: number): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    const dir = path.resolve(this.options.dataDir, this.options.directory);
    fs.mkdirSync(dir, { recursive: true });
    const stamp = new Date(now).toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
    this.file = path.join(dir, `walship-${stamp}.log`);
    this.fd = fs.openSync(this.file, 'a');
    this.bytes = fs.fstatSync(this.fd).size;
    this.openedAt = now;
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

function timestamp(): string {
  const iso = new Date().toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)} UTC`;
}
