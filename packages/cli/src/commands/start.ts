/**
 * `walship start -D DIR [--foreground] [--timeout S]` (pg_ctl start): starts the server
 * (`node packages/server/dist/main.js -D DIR`) detached from the terminal, its stdout and stderr
 * appended to DIR/log/startup.log, and waits until postmaster.pid says `ready` (or `standby`).
 * If the server exits first, the end of its log is printed and the command exits 1. With
 * --foreground the server runs attached to this terminal, and signals are passed on to it.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CliError, ExitCode } from '../cli-error.js';
import type { CliIo } from '../io.js';
import { processIsAlive, pidFilePath, readPidFile } from '@walship/server/pidfile';
import { shellQuote } from './init.js';

export interface StartOptions {
  dataDir: string;
  foreground?: boolean;
  timeout?: number;
}

/** pg_ctl's default wait (PGCTLTIMEOUT): a node with a long crash recovery may need it. */
const DEFAULT_START_TIMEOUT_MS = 60_000;

/** How often the PID file is read while waiting: fast enough that start returns promptly. */
const POLL_INTERVAL_MS = 50;

/** Lines of startup.log shown when the server dies during start. */
const LOG_TAIL_LINES_MAX = 30;

/** Statuses of postmaster.pid's 8th line that mean "accepting connections" (PM_STATUS_READY/STANDBY). */
const READY_STATUSES = new Set(['ready', 'standby']);

/** The server program: `@walship/server/main`, else the sibling package's build. */
export function resolveServerMain(): string {
  let path: string;
  try {
    path = fileURLToPath(import.meta.resolve('@walship/server/main'));
  } catch {
    path = fileURLToPath(new URL('../../../server/dist/main.js', import.meta.url));
  }
  if (!existsSync(path)) {
    throw new CliError(ExitCode.failed, `the server program "${path}" does not exist`, {
      hint: 'Build walship (npx tsc -b in the repository), then try again.',
    });
  }
  return path;
}

function checkDataDirectory(dataDir: string): void {
  if (!existsSync(dataDir)) {
    throw new CliError(ExitCode.failed, `data directory "${dataDir}" does not exist`, {
      hint: `Create it with "walship init -D ${shellQuote(dataDir)}".`,
    });
  }
  if (!existsSync(join(dataDir, 'global', 'control'))) {
    throw new CliError(ExitCode.failed, `directory "${dataDir}" is not a walship data directory`, {
      detail: `File "${join(dataDir, 'global', 'control')}" is missing.`,
      hint: `Is this the right directory? Create a data directory with "walship init -D DIR".`,
    });
  }
  const pidFile = readPidFile(dataDir);
  if (pidFile !== null && processIsAlive(pidFile.pid)) {
    throw new CliError(ExitCode.failed, 'another server might be running', {
      detail: `PID file "${pidFilePath(dataDir)}" names process ${pidFile.pid}, which is running.`,
      hint: `Stop it with "walship stop -D ${shellQuote(dataDir)}". If no walship server is running on this directory, remove the PID file.`,
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** What the server wrote to startup.log since `offset`: its last lines. */
function logTail(logPath: string, offset: number): string {
  try {
    const text = readFileSync(logPath).subarray(offset).toString('utf8');
    return text.split('\n').filter((line) => line !== '').slice(-LOG_TAIL_LINES_MAX).join('\n');
  } catch {
    return '';
  }
}

async function runForeground(serverMain: string, dataDir: string): Promise<number> {
  const child = spawn(process.execPath, [serverMain, '-D', dataDir], { stdio: 'inherit' });
  const forwarded: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGHUP'];
  const handlers = forwarded.map((signal) => {
    const handler = () => child.kill(signal);
    process.on(signal, handler);
    return [signal, handler] as const;
  });
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve(code ?? (signal === null ? ExitCode.failed : ExitCode.failed)));
    });
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }
}

/**
 * An encrypted data directory: its cluster key must unwrap the data keys before anything is
 * created in it (log/startup.log below), so that a start with the wrong key leaves the directory
 * exactly as it was. The server checks again itself (a start without this command).
 */
async function checkClusterKey(dataDir: string): Promise<void> {
  const [{ isEncryptedDataDir }, { readConfigFile }, { loadEncryptionKeys }] = await Promise.all([
    import('@walship/engine'), import('@walship/server/settings/index'), import('@walship/server/encryption'),
  ]);
  if (!isEncryptedDataDir(dataDir)) return;
  try {
    loadEncryptionKeys(dataDir, readConfigFile(dataDir));
  } catch (error) {
    const { message, detail, hint } = error as { message: string; detail?: string; hint?: string };
    throw new CliError(ExitCode.failed, `could not start server: ${message}`, { detail, hint });
  }
}

export async function run(options: StartOptions, io: CliIo): Promise<number> {
  const dataDir = options.dataDir;
  checkDataDirectory(dataDir);
  await checkClusterKey(dataDir);
  const serverMain = resolveServerMain();
  if (options.foreground === true) return runForeground(serverMain, dataDir);

  const logDir = join(dataDir, 'log');
  mkdirSync(logDir, { recursive: true, mode: 0o700 });
  const logPath = join(logDir, 'startup.log');
  const logFd = openSync(logPath, 'a', 0o600);
  const logOffset = statSync(logPath).size;
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  let spawnError: Error | null = null;
  const child = spawn(process.execPath, [serverMain, '-D', dataDir], { detached: true, stdio: ['ignore', logFd, logFd] });
  closeSync(logFd);
  child.once('exit', (code, signal) => {
    exited = { code, signal };
  });
  child.once('error', (error) => {
    spawnError = error;
  });

  const timeoutMs = options.timeout ?? DEFAULT_START_TIMEOUT_MS;
  const startedAt = Date.now();
  let dots = 0;
  io.stdout.write('waiting for server to start...');
  try {
    for (;;) {
      if (spawnError !== null) {
        throw new CliError(ExitCode.failed, `could not start server: ${(spawnError as Error).message}`, {
          hint: `Check that "${process.execPath}" can run "${serverMain}".`,
        });
      }
      const pidFile = readPidFile(dataDir);
      if (pidFile !== null && pidFile.pid === child.pid && READY_STATUSES.has(pidFile.status)) {
        io.stdout.write(' done\nserver started\n');
        return ExitCode.ok;
      }
      if (exited !== null) {
        const { code, signal } = exited as { code: number | null; signal: NodeJS.Signals | null };
        io.stdout.write(' stopped waiting\n');
        const tail = logTail(logPath, logOffset);
        if (tail !== '') io.stderr.write(`${tail}\n`);
        throw new CliError(ExitCode.failed, 'could not start server', {
          detail: signal === null ? `The server exited with status ${code}.` : `The server was terminated by signal ${signal}.`,
          hint: `Examine the log output in "${logPath}".`,
        });
      }
      const elapsed = Date.now() - startedAt;
      if (elapsed >= timeoutMs) {
        io.stdout.write(' stopped waiting\n');
        throw new CliError(ExitCode.failed, 'server did not start in time', {
          detail: `It did not accept connections within ${timeoutMs / 1000} s; it keeps starting in the background.`,
          hint: `Examine "${logPath}", wait with "walship isready", or stop it with "walship stop -D ${shellQuote(dataDir)}".`,
        });
      }
      // pg_ctl prints a dot a second while it waits.
      if (Math.floor(elapsed / 1000) >= dots) {
        dots++;
        io.stdout.write('.');
      }
      await sleep(POLL_INTERVAL_MS);
    }
  } finally {
    child.removeAllListeners();
    child.unref();
  }
}
