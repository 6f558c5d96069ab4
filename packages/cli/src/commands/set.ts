/**
 * `walship set -D DIR NAME VALUE` and `walship set --node HOST:PORT NAME VALUE` (ALTER SYSTEM
 * plus pg_reload_conf). With -D the value is checked and written into DIR/walship.conf, and a
 * node running on DIR is sent SIGHUP to reload; with --node the node does both. A setting whose
 * context is `postmaster` takes effect at the next start, and the command says so.
 */
import {
  formatSettingValue,
  lookupSetting,
  parseSettingValue,
  setConfigValue,
  SETTING_DEFINITIONS,
} from '@walship/server/settings/index';
import { CliError, ExitCode, formatErrorText, usageError } from '../cli-error.js';
import { withSession } from '../connect.js';
import type { CliIo } from '../io.js';
import { formatNodeAddress, type NodeAddress } from '../options.js';
import { processIsAlive, readPidFile } from '@walship/server/pidfile';

export interface SetOptions {
  dataDir?: string;
  node?: NodeAddress[];
  name: string;
  value: string;
  timeout?: number;
}

/** Settings errors (unknown name, bad value) as a failed command, with the hint pointing at DIR. */
function settingsError(error: unknown, dataDir: string | undefined): never {
  if (error !== null && typeof error === 'object' && (error as { name?: unknown }).name === 'WalshipError') {
    const { message, detail, hint } = error as { message: string; detail?: string; hint?: string };
    throw new CliError(ExitCode.failed, message, { detail, hint: dataDir === undefined ? hint : hint?.replace('-D DIR', `-D ${dataDir}`) });
  }
  throw error;
}

function restartWarning(io: CliIo, name: string, dataDir: string | undefined): void {
  io.stderr.write(
    formatErrorText(
      `parameter "${name}" cannot be changed without restarting the server`,
      undefined,
      dataDir === undefined
        ? 'The new value takes effect when the node is restarted.'
        : `The new value takes effect when the node is restarted: walship stop -D ${dataDir} && walship start -D ${dataDir}.`,
      'warning',
    ),
  );
}

async function setInDataDirectory(dataDir: string, options: SetOptions, io: CliIo): Promise<number> {
  let change;
  try {
    change = setConfigValue(dataDir, options.name, options.value);
  } catch (error) {
    settingsError(error, dataDir);
  }
  io.stdout.write(`${change.name} = ${change.text}\n`);
  const pidFile = readPidFile(dataDir);
  const running = pidFile !== null && processIsAlive(pidFile.pid);
  if (!running) return ExitCode.ok;
  if (change.restartRequired) {
    restartWarning(io, change.name, dataDir);
    return ExitCode.ok;
  }
  try {
    process.kill(pidFile.pid, 'SIGHUP');
    io.stderr.write('server signaled to reload its configuration\n');
  } catch (error) {
    io.stderr.write(
      formatErrorText(
        `could not send reload signal (PID: ${pidFile.pid}): ${(error as Error).message}`,
        undefined,
        `The value is in ${dataDir}/walship.conf; it takes effect at the next reload or start.`,
        'warning',
      ),
    );
  }
  return ExitCode.ok;
}

async function setOnNode(nodes: NodeAddress[], options: SetOptions, io: CliIo): Promise<number> {
  let name;
  let text;
  try {
    name = lookupSetting(options.name);
    text = formatSettingValue(name, parseSettingValue(name, options.value));
  } catch (error) {
    settingsError(error, undefined);
  }
  if (SETTING_DEFINITIONS[name].context === 'init') {
    throw new CliError(ExitCode.failed, `parameter "${name}" cannot be changed`, {
      detail: 'It is fixed when the data directory is created.',
      hint: `Create a new data directory with "walship init -D DIR --set ${name}=VALUE" to use another value.`,
    });
  }
  return withSession(nodes, io, { purpose: 'admin', timeoutMs: options.timeout }, async (client, node) => {
    const result = (await client.setSetting(name, options.value)) as { restartRequired?: unknown } | undefined;
    io.stdout.write(`${name} = ${text}\n`);
    const restartRequired =
      typeof result?.restartRequired === 'boolean' ? result.restartRequired : SETTING_DEFINITIONS[name].context === 'postmaster';
    if (restartRequired) restartWarning(io, name, undefined);
    else io.stderr.write(`node at ${formatNodeAddress(node)} reloaded its configuration\n`);
    return ExitCode.ok;
  });
}

export async function run(options: SetOptions, io: CliIo): Promise<number> {
  if (options.dataDir !== undefined && options.node !== undefined) {
    throw usageError('give either -D DIR or --node HOST:PORT, not both', 'Use -D to edit walship.conf directly, --node to go through a running node.');
  }
  if (options.dataDir !== undefined) return setInDataDirectory(options.dataDir, options, io);
  if (options.node !== undefined) return setOnNode(options.node, options, io);
  throw usageError('no target given', 'Give -D DIR (edits DIR/walship.conf) or --node HOST:PORT (through a running node).');
}
