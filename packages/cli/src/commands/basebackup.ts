/**
 * `walship basebackup --from HOST:PORT -D DIR [--standby] [--slot NAME] [--port N] [--set NAME=VALUE]...
 * [--progress] [--json]` (pg_basebackup): copies a running node's data directory into DIR, with
 * the WAL that makes the copy consistent. The copy keeps its own identity — the source's port,
 * application_name and connection settings are not carried over; `--port` and `--set` give the
 * new node its own. With `--standby` it also writes `standby.signal` and `primary_conninfo`
 * (as pg_basebackup -R does), so that `walship start -D DIR` starts a streaming standby.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { CliError, ExitCode } from '../cli-error.js';
import { resolveCredentials } from '../credentials.js';
import type { CliIo } from '../io.js';
import { formatNodeAddress, type NodeAddress } from '../options.js';
import { Progress } from '../progress.js';

export interface BasebackupOptions {
  from: NodeAddress;
  dataDir: string;
  standby?: boolean;
  slot?: string;
  port?: number;
  set?: Array<[string, string]>;
  progress?: boolean;
  quiet?: boolean;
  json?: boolean;
  timeout?: number;
}

/** Settings that belong to a node, not to its data: never copied from the source. */
const IDENTITY_SETTINGS = ['port', 'application_name', 'primary_conninfo', 'primary_slot_name', 'metrics_port'];

export async function run(options: BasebackupOptions, io: CliIo): Promise<number> {
  const dataDir = resolve(options.dataDir);
  if (options.slot !== undefined) {
    throw new CliError(ExitCode.usage, 'replication slots are not supported yet', { hint: 'Leave out --slot, and keep WAL for the standby with wal_keep_size on the primary.' });
  }
  const [{ ReplicationConnection, receiveBaseBackup, quoteConninfoValue }, settings] = await Promise.all([
    import('@walship/replication'),
    import('@walship/server/settings/index'),
  ]);
  for (const [name, value] of options.set ?? []) settings.parseSettingValue(settings.lookupSetting(name), value);
  const credentials = resolveCredentials(io, options.from);
  const password = typeof credentials.password === 'function' ? await credentials.password() : credentials.password;
  const applicationName = (options.set ?? []).find(([name]) => name === 'application_name')?.[1] ?? basename(dataDir);
  let connection;
  try {
    connection = await ReplicationConnection.connect({
      host: options.from.host, port: options.from.port, applicationName: `walship basebackup`, timeoutMs: options.timeout ?? 30_000,
      ...(credentials.user !== undefined ? { user: credentials.user } : {}),
      ...(password !== undefined ? { password } : {}),
    });
  } catch (error) {
    throw new CliError(ExitCode.unreachable, (error as Error).message, { hint: `Is a node running at ${formatNodeAddress(options.from)}?` });
  }
  const progress = new Progress(io, options);
  const started = performance.now();
  let backup;
  try {
    backup = await receiveBaseBackup(connection, dataDir, {
      label: `walship basebackup to ${basename(dataDir)}`,
      fast: true,
      onProgress: (done, total) => progress.update(`${Math.round(done / 1024)}/${Math.round(total / 1024)} kB (${total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 100}%)`),
    });
  } catch (error) {
    progress.done();
    throw new CliError(ExitCode.failed, `base backup failed: ${(error as Error).message}`, {
      hint: existsSync(dataDir) ? `Remove the partial copy in "${dataDir}" before trying again.` : undefined,
    });
  }
  const seconds = (performance.now() - started) / 1000;

  // The copy's own identity: drop the source's, then apply --port/--set (and the standby's conninfo).
  for (const name of IDENTITY_SETTINGS) settings.resetConfigValue(dataDir, name);
  const own: Array<[string, string]> = [];
  if (options.port !== undefined) own.push(['port', String(options.port)]);
  own.push(...(options.set ?? []));
  if (options.standby === true) {
    const conninfo = [
      `host=${quoteConninfoValue(options.from.host)}`, `port=${options.from.port}`, `application_name=${quoteConninfoValue(applicationName)}`,
      ...(credentials.user !== undefined ? [`user=${quoteConninfoValue(credentials.user)}`] : []),
      ...(password !== undefined ? [`password=${quoteConninfoValue(password)}`] : []),
    ].join(' ');
    own.push(['primary_conninfo', conninfo]);
    if (!own.some(([name]) => name === 'application_name')) own.push(['application_name', applicationName]);
  }
  if (own.length > 0) settings.setConfigValues(dataDir, own);
  if (options.standby === true) writeFileSync(join(dataDir, 'standby.signal'), '', { mode: 0o600 });
  progress.done();

  const megabytes = backup.bytes / 1048576;
  const summary = {
    dataDir, from: formatNodeAddress(options.from), bytes: backup.bytes, files: backup.files,
    startLsn: formatLsnText(backup.startLsn), endLsn: formatLsnText(backup.endLsn), timeline: backup.timeline,
    elapsedMs: Math.round(seconds * 1000), megabytesPerSecond: Number((megabytes / Math.max(seconds, 0.001)).toFixed(1)),
    standby: options.standby === true,
  };
  if (options.json === true) {
    io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    io.stdout.write(`base backup completed: ${megabytes.toFixed(1)} MB in ${seconds.toFixed(2)} s (${summary.megabytesPerSecond} MB/s), WAL ${summary.startLsn} to ${summary.endLsn} on timeline ${backup.timeline}\n`);
    io.stdout.write(options.standby === true
      ? `standby.signal and primary_conninfo written; start the standby with: walship start -D ${dataDir}\n`
      : `start the copy with: walship start -D ${dataDir}\n`);
  }
  return ExitCode.ok;
}

function formatLsnText(lsn: number): string {
  const hi = Math.floor(lsn / 0x1_0000_0000);
  return `${hi.toString(16).toUpperCase()}/${(lsn - hi * 0x1_0000_0000).toString(16).toUpperCase()}`;
}
