/**
 * `walship stop -D DIR [--mode smart|fast|immediate]` (pg_ctl stop): sends the postmaster SIGTERM
 * (smart: wait for clients to leave), SIGINT (fast, the default: disconnect them) or SIGQUIT
 * (immediate: exit without a shutdown checkpoint; the next start runs crash recovery), then waits
 * until the process has exited.
 */
import { existsSync } from 'node:fs';
import { CliError, ExitCode } from '../cli-error.js';
import type { CliIo } from '../io.js';
import { processIsAlive, pidFilePath, readPidFile } from '@walship/server/pidfile';
import { shellQuote } from './init.js';

export interface StopOptions {
  dataDir: string;
  mode: 'smart' | 'fast' | 'immediate';
  timeout?: number;
}

const SIGNAL_OF_MODE = { smart: 'SIGTERM', fast: 'SIGINT', immediate: 'SIGQUIT' } as const;

/** pg_ctl's default wait (PGCTLTIMEOUT). */
const DEFAULT_STOP_TIMEOUT_MS = 60_000;

const POLL_INTERVAL_MS = 50;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function run(options: StopOptions, io: CliIo): Promise<number> {
  const path = pidFilePath(options.dataDir);
  const pidFile = readPidFile(options.dataDir);
  if (pidFile === null) {
    if (existsSync(path)) {
      throw new CliError(ExitCode.failed, `invalid data in PID file "${path}"`, {
        hint: 'The server may be starting; try again in a moment. If no server is running, remove the file.',
      });
    }
    throw new CliError(ExitCode.failed, `PID file "${path}" does not exist`, {
      hint: `Is the server running? Start it with "walship start -D ${shellQuote(options.dataDir)}".`,
    });
  }
  const signal = SIGNAL_OF_MODE[options.mode];
  try {
    process.kill(pidFile.pid, signal);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CliError(ExitCode.failed, `could not send stop signal (PID: ${pidFile.pid}): ${code === 'ESRCH' ? 'No such process' : (error as Error).message}`, {
      hint: code === 'ESRCH' ? `No server is running on this directory; the PID file "${path}" is stale and can be removed.` : 'Run walship stop as the user that owns the server.',
    });
  }
  const timeoutMs = options.timeout ?? DEFAULT_STOP_TIMEOUT_MS;
  const startedAt = Date.now();
  let dots = 0;
  io.stdout.write('waiting for server to shut down...');
  while (processIsAlive(pidFile.pid)) {
    const elapsed = Date.now() - startedAt;
    if (elapsed >= timeoutMs) {
      io.stdout.write(' failed\n');
      throw new CliError(ExitCode.failed, 'server does not shut down', {
        detail: `Process ${pidFile.pid} is still running after ${timeoutMs / 1000} s.`,
        hint:
          options.mode === 'smart'
            ? 'The "--mode fast" option disconnects sessions rather than waiting for them to end.'
            : `Try "--mode immediate", and examine the log in "${options.dataDir}/log".`,
      });
    }
    if (Math.floor(elapsed / 1000) >= dots) {
      dots++;
      io.stdout.write('.');
    }
    await sleep(POLL_INTERVAL_MS);
  }
  io.stdout.write(' done\nserver stopped\n');
  return ExitCode.ok;
}
