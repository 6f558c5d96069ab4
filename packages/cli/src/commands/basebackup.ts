/**
 * `walship basebackup --from HOST:PORT -D DIR [--standby] [--slot NAME] [--port N] [--set NAME=VALUE]...
 * [--progress] [--json]` (pg_basebackup): copies a running node's data directory into DIR, with
 * the WAL that makes the copy consistent. The node may be a primary or a standby (a cascading
 * base backup: from the standby's restartpoint to its replay position; refused until the standby
 * is consistent, and if it is promoted during the copy). The copy keeps its own identity — the source's port,
 * application_name and connection settings are not carried over; `--port` and `--set` give the
 * new node its own. With `--standby` it also writes `standby.signal` and `primary_conninfo`
 * (as pg_basebackup -R does), so that `walship start -D DIR` starts a streaming standby. With
 * `--slot NAME` the source gets a physical replication slot (created, reserving WAL, before the
 * backup starts, unless it exists) and the copy's walship.conf names it in `primary_slot_name`.
 *
 * An encrypted source is copied as its files are, encrypted, with its wrapped data keys
 * (pg_cryptokeys/): the copy shares the data keys. Its walship.conf keeps the source's
 * cluster_key_file / cluster_key_command (the same key, wherever that path points on this
 * machine) unless --key-file or --key-command names the key here; either way the copy's key is
 * checked against the copied keys before the command reports success.
 */
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { CliError, ExitCode } from '../cli-error.js';
import { loadToolKeys } from '../encryption.js';
import { resolveCredentials } from '../credentials.js';
import { sslConninfoPairs, sslOptions } from '../ssl-env.js';
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
  /** The cluster key of an encrypted source, as this copy will find it (cluster_key_file). */
  keyFile?: string;
  keyCommand?: string;
}

/** Settings that belong to a node, not to its data: never copied from the source. */
const IDENTITY_SETTINGS = ['port', 'application_name', 'primary_conninfo', 'primary_slot_name', 'metrics_port'];

export async function run(options: BasebackupOptions, io: CliIo): Promise<number> {
  const dataDir = resolve(options.dataDir);
  // The modules this command uses, not @walship/replication's index: that would load the
  // walsender, the walreceiver and the whole engine, a tenth of a second of a backup's run.
  const [{ ReplicationConnection }, { receiveBaseBackup }, { quoteConninfoValue }, settings, { validateReplicationSlotName }] = await Promise.all([
    import('@walship/replication/replication-connection'),
    import('@walship/replication/base-backup-receiver'),
    import('@walship/replication/conninfo'),
    import('@walship/server/settings/index'),
    import('@walship/protocol'),
  ]);
  if (options.slot !== undefined) {
    const problem = validateReplicationSlotName(options.slot);
    if (problem !== null) throw new CliError(ExitCode.usage, problem.message, { hint: problem.hint ?? 'Slot names are 1 to 63 characters.' });
  }
  for (const [name, value] of options.set ?? []) settings.parseSettingValue(settings.lookupSetting(name), value);
  const credentials = resolveCredentials(io, options.from);
  const ssl = sslOptions(io);
  const password = typeof credentials.password === 'function' ? await credentials.password() : credentials.password;
  const applicationName = (options.set ?? []).find(([name]) => name === 'application_name')?.[1] ?? basename(dataDir);
  let connection;
  try {
    connection = await ReplicationConnection.connect({
      host: options.from.host, port: options.from.port, applicationName: `walship basebackup`, timeoutMs: options.timeout ?? 30_000,
      ...ssl,
      ...(credentials.user !== undefined ? { user: credentials.user } : {}),
      ...(password !== undefined ? { password } : {}),
    });
  } catch (error) {
    const fields = error as { message: string; severity?: string; detail?: string; hint?: string };
    if (fields.severity === 'FATAL') {
      // The node answered and refused (not consistent yet, shutting down, a wrong password):
      // a failed request with the node's reasons, as isready's "rejecting connections".
      throw new CliError(ExitCode.failed, `connection to node at ${formatNodeAddress(options.from)} failed: ${fields.message}`, {
        detail: fields.detail, hint: fields.hint ?? `Check the node's state with "walship isready --node ${formatNodeAddress(options.from)}", then try again.`,
      });
    }
    throw new CliError(ExitCode.unreachable, fields.message, { hint: `Is a node running at ${formatNodeAddress(options.from)}?` });
  }
  let slotCreated = false;
  if (options.slot !== undefined) {
    // Before the backup starts, so that the WAL from its checkpoint on stays for the standby;
    // after checking the target, so that a refused copy leaves no slot behind.
    if (existsSync(dataDir) && readdirSync(dataDir).length > 0) {
      connection.close();
      throw new CliError(ExitCode.failed, `directory "${dataDir}" exists but is not empty`, { hint: `Remove or empty "${dataDir}", or choose another directory with -D.` });
    }
    try {
      await connection.request('createReplicationSlot', { name: options.slot, reserveWal: true });
      slotCreated = true;
    } catch (error) {
      const fields = error as { code?: string; message: string; detail?: string; hint?: string };
      if (fields.code !== 'duplicate_object') {
        connection.close();
        throw new CliError(ExitCode.failed, `could not create replication slot "${options.slot}": ${fields.message}`, { detail: fields.detail, hint: fields.hint });
      }
    }
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
    const fields = error as { message: string; detail?: string; hint?: string };
    const removeCopy = existsSync(dataDir) ? `Remove the partial copy in "${dataDir}" before trying again.` : undefined;
    throw new CliError(ExitCode.failed, `base backup failed: ${fields.message}`, {
      detail: fields.detail,
      hint: [fields.hint, removeCopy].filter((part) => part !== undefined).join(' ') || undefined,
    });
  }
  const seconds = (performance.now() - started) / 1000;
  // The source's slots are not the copy's (basebackup.c sends pg_replslot/ empty).
  const copiedSlots = join(dataDir, 'pg_replslot');
  if (existsSync(copiedSlots)) for (const name of readdirSync(copiedSlots)) rmSync(join(copiedSlots, name), { recursive: true, force: true });

  // The copy's own identity: drop the source's, then apply --port/--set (and the standby's conninfo).
  for (const name of IDENTITY_SETTINGS) settings.resetConfigValue(dataDir, name);
  const own: Array<[string, string]> = [];
  if (options.port !== undefined) own.push(['port', String(options.port)]);
  own.push(...(options.set ?? []));
  if (options.slot !== undefined) own.push(['primary_slot_name', options.slot]);
  if (options.standby === true) {
    const conninfo = [
      `host=${quoteConninfoValue(options.from.host)}`, `port=${options.from.port}`, `application_name=${quoteConninfoValue(applicationName)}`,
      ...(credentials.user !== undefined ? [`user=${quoteConninfoValue(credentials.user)}`] : []),
      ...(password !== undefined ? [`password=${quoteConninfoValue(password)}`] : []),
      // pg_basebackup -R writes the options it connected with: the standby streams with the same TLS.
      ...sslConninfoPairs(ssl, quoteConninfoValue),
    ].join(' ');
    own.push(['primary_conninfo', conninfo]);
    if (!own.some(([name]) => name === 'application_name')) own.push(['application_name', applicationName]);
  }
  if (options.keyFile !== undefined) {
    settings.resetConfigValue(dataDir, 'cluster_key_command');
    own.push(['cluster_key_file', resolve(options.keyFile)]);
  } else if (options.keyCommand !== undefined) {
    settings.resetConfigValue(dataDir, 'cluster_key_file');
    own.push(['cluster_key_command', options.keyCommand]);
  }
  if (own.length > 0) settings.setConfigValues(dataDir, own);
  if (options.standby === true) writeFileSync(join(dataDir, 'standby.signal'), '', { mode: 0o600 });
  progress.done();
  try {
    await loadToolKeys(dataDir);
  } catch (error) {
    const { message, detail } = error as { message: string; detail?: string };
    throw new CliError(ExitCode.failed, `the copy is encrypted and its cluster key does not open it: ${message}`, {
      detail,
      hint: `Give the source's cluster key with "walship set -D ${dataDir} cluster_key_file FILE" before starting the copy (or run basebackup again with --key-file).`,
    });
  }

  const megabytes = backup.bytes / 1048576;
  const summary = {
    dataDir, from: formatNodeAddress(options.from), bytes: backup.bytes, files: backup.files,
    startLsn: formatLsnText(backup.startLsn), endLsn: formatLsnText(backup.endLsn), timeline: backup.timeline,
    elapsedMs: Math.round(seconds * 1000), megabytesPerSecond: Number((megabytes / Math.max(seconds, 0.001)).toFixed(1)),
    standby: options.standby === true,
    slot: options.slot === undefined ? null : { name: options.slot, created: slotCreated },
  };
  if (options.json === true) {
    io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  } else {
    io.stdout.write(`base backup completed: ${megabytes.toFixed(1)} MB in ${seconds.toFixed(2)} s (${summary.megabytesPerSecond} MB/s), WAL ${summary.startLsn} to ${summary.endLsn} on timeline ${backup.timeline}\n`);
    if (options.slot !== undefined) io.stdout.write(`replication slot "${options.slot}" ${slotCreated ? 'created' : 'already existed'} on ${summary.from}; primary_slot_name written\n`);
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
