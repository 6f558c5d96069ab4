/**
 * `walship promote -D DIR [--timeout S]` (pg_ctl promote): asks a standby to end recovery and
 * become a primary on a new timeline — writes the `promote` signal file and sends the postmaster
 * SIGUSR1 — then waits until the control file says "in production" and the node accepts writes.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processIsAlive, readPidFile } from '@walship/server/pidfile';
// The control-file module alone: loading the whole engine would cost this command most of its time.
import { DbState, readControlFile } from '@walship/engine/control-file';
import { CliError, ExitCode } from '../cli-error.js';
import type { CliIo } from '../io.js';

export interface PromoteOptions {
  dataDir: string;
  timeout?: number;
}

/** pg_ctl's default wait (PGCTLTIMEOUT). */
const DEFAULT_PROMOTE_TIMEOUT_MS = 60_000;
const POLL_INTERVAL_MS = 20;

export async function run(options: PromoteOptions, io: CliIo): Promise<number> {
  const { dataDir } = options;
  const pidFile = readPidFile(dataDir);
  if (pidFile === null || !processIsAlive(pidFile.pid)) {
    throw new CliError(ExitCode.failed, `no server running in data directory "${dataDir}"`, {
      hint: `Start the standby first: walship start -D ${dataDir}.`,
    });
  }
  if (!existsSync(join(dataDir, 'standby.signal'))) {
    throw new CliError(ExitCode.failed, 'cannot promote server; server is not in standby mode', {
      hint: 'Only a standby (a data directory with standby.signal) can be promoted.',
    });
  }
  const before = readControlFile(dataDir).timeline;
  writeFileSync(join(dataDir, 'promote'), '');
  try {
    process.kill(pidFile.pid, 'SIGUSR1');
  } catch (error) {
    throw new CliError(ExitCode.failed, `could not send promote signal (PID: ${pidFile.pid}): ${(error as Error).message}`);
  }
  const timeoutMs = options.timeout ?? DEFAULT_PROMOTE_TIMEOUT_MS;
  const startedAt = Date.now();
  io.stdout.write('waiting for server to promote...');
  for (;;) {
    const control = readControlFile(dataDir);
    const status = readPidFile(dataDir)?.status;
    if (control.state === DbState.inProduction && control.timeline > before && status === 'ready') break;
    if (!processIsAlive(pidFile.pid)) {
      io.stdout.write(' failed\n');
      throw new CliError(ExitCode.failed, 'the server exited while promoting', { hint: `See the log in ${join(dataDir, 'log')}.` });
    }
    if (Date.now() - startedAt > timeoutMs) {
      io.stdout.write(' stopped waiting\n');
      throw new CliError(ExitCode.failed, 'server did not promote in time', { hint: `See the log in ${join(dataDir, 'log')}.` });
    }
    io.stdout.write('.');
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  io.stdout.write(' done\nserver promoted\n');
  return ExitCode.ok;
}
