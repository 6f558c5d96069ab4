/**
 * `walship promote -D DIR [--no-wait] [--timeout S]` (pg_ctl promote): asks a standby to end
 * recovery and become a primary on a new timeline — writes the `promote` signal file and sends the
 * postmaster SIGUSR1 — then waits until the control file says "in production" and the node
 * accepts writes.
 *
 * `walship promote --node HOST:PORT` (pg_promote()): the same request over a session, for a node
 * on another machine or when the data directory is not at hand; the node replies once it accepts
 * writes.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processIsAlive, readPidFile } from '@walship/server/pidfile';
// The control-file module alone: loading the whole engine would cost this command most of its time.
import { DbState, readControlFile } from '@walship/engine/control-file';
import { CliError, ExitCode } from '../cli-error.js';
import { withSession } from '../connect.js';
import type { CliIo } from '../io.js';
import { formatNodeAddress, type NodeAddress } from '../options.js';
import { printJson } from '../output.js';

export interface PromoteOptions {
  dataDir?: string;
  node?: NodeAddress[];
  /** false with --no-wait. */
  wait?: boolean;
  timeout?: number;
  json?: boolean;
}

/** pg_ctl's default wait (PGCTLTIMEOUT). */
const DEFAULT_PROMOTE_TIMEOUT_MS = 60_000;
const POLL_INTERVAL_MS = 20;

export async function run(options: PromoteOptions, io: CliIo): Promise<number> {
  if (options.node !== undefined) return promoteNode(options.node, options, io);
  const { dataDir } = options;
  if (dataDir === undefined) {
    throw new CliError(ExitCode.usage, 'no standby to promote', {
      hint: 'Give the standby\'s data directory with -D DIR, or its address with --node HOST:PORT.',
    });
  }
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
  if (options.wait === false) {
    report(io, options, { promoted: false, timeline: before, elapsedMs: 0 }, 'server promoting\n');
    return ExitCode.ok;
  }
  if (options.json !== true) io.stdout.write('waiting for server to promote...');
  for (;;) {
    const control = readControlFile(dataDir);
    const status = readPidFile(dataDir)?.status;
    if (control.state === DbState.inProduction && control.timeline > before && status === 'ready') {
      if (options.json !== true) io.stdout.write(' done\nserver promoted\n');
      else report(io, options, { promoted: true, timeline: control.timeline, elapsedMs: Date.now() - startedAt }, '');
      return ExitCode.ok;
    }
    if (!processIsAlive(pidFile.pid)) {
      if (options.json !== true) io.stdout.write(' failed\n');
      throw new CliError(ExitCode.failed, 'the server exited while promoting', { hint: `See the log in ${join(dataDir, 'log')}.` });
    }
    if (Date.now() - startedAt > timeoutMs) {
      if (options.json !== true) io.stdout.write(' stopped waiting\n');
      throw new CliError(ExitCode.failed, 'server did not promote in time', { hint: `See the log in ${join(dataDir, 'log')}.` });
    }
    if (options.json !== true) io.stdout.write('.');
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

interface PromoteResult {
  promoted: boolean;
  timeline: number;
  elapsedMs: number;
}

function report(io: CliIo, options: PromoteOptions, result: PromoteResult, text: string): void {
  if (options.json === true) printJson(io.stdout, result);
  else io.stdout.write(text);
}

async function promoteNode(nodes: NodeAddress[], options: PromoteOptions, io: CliIo): Promise<number> {
  if (nodes.length !== 1) {
    throw new CliError(ExitCode.usage, `--node names ${nodes.length} nodes; promote one standby at a time`, {
      hint: 'Give the address of the one standby to promote.',
    });
  }
  const waitMs = options.timeout ?? DEFAULT_PROMOTE_TIMEOUT_MS;
  const wait = options.wait !== false;
  return withSession(nodes, io, { purpose: 'admin' }, async (client, node) => {
    const startedAt = Date.now();
    if (wait && options.json !== true) io.stdout.write('waiting for server to promote...');
    const result = await client.promote({ wait, waitMs });
    const elapsedMs = Date.now() - startedAt;
    if (wait && !result.promoted) {
      if (options.json !== true) io.stdout.write(' stopped waiting\n');
      throw new CliError(ExitCode.failed, 'server did not promote in time', {
        detail: `${formatNodeAddress(node)} was asked to promote but did not accept writes within ${waitMs / 1000} s.`,
        hint: 'The promotion goes on; check the node with walship status, and its log.',
      });
    }
    report(io, options, { promoted: result.promoted, timeline: result.timeline, elapsedMs }, wait ? ' done\nserver promoted\n' : 'server promoting\n');
    return ExitCode.ok;
  });
}
