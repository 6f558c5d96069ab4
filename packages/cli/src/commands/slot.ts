/**
 * `walship slot create|drop|list --node HOST:PORT [NAME] [--json]`: physical replication slots on
 * a primary, over a replication connection (CREATE_REPLICATION_SLOT ... PHYSICAL RESERVE_WAL,
 * DROP_REPLICATION_SLOT, and pg_replication_slots for the listing). `create` reserves WAL at once,
 * as `pg_create_physical_replication_slot(name, true)` does. With a list of nodes, `create` and
 * `drop` go to the primary among them.
 */
import { CliError, ExitCode } from '../cli-error.js';
import { resolveCredentials } from '../credentials.js';
import { sslOptions } from '../ssl-env.js';
import type { CliIo } from '../io.js';
import { formatNodeAddress, resolveNodes, type NodeAddress } from '../options.js';
import { formatTable, printJson } from '../output.js';

export interface SlotOptions {
  action: 'create' | 'drop' | 'list';
  name?: string;
  node?: NodeAddress[];
  timeout?: number;
  json?: boolean;
}

type Connection = import('@walship/replication').ReplicationConnection;

export async function run(options: SlotOptions, io: CliIo): Promise<number> {
  const { validateReplicationSlotName } = await import('@walship/protocol');
  if (options.action !== 'list') {
    const name = options.name ?? '';
    const problem = validateReplicationSlotName(name);
    if (problem !== null) throw new CliError(ExitCode.usage, problem.message, { hint: problem.hint ?? 'Slot names are 1 to 63 characters.' });
  }
  const nodes = resolveNodes(options.node, io.env);
  const { connection, node } = await connect(nodes, io, options);
  try {
    switch (options.action) {
      case 'create': {
        const result = await command(connection, node, () => connection.request('createReplicationSlot', { name: options.name!, reserveWal: true }));
        if (options.json === true) printJson(io.stdout, { slotName: result.slotName, restartLsn: result.consistentPoint, node: formatNodeAddress(node) });
        else io.stdout.write(`replication slot "${result.slotName}" created on ${formatNodeAddress(node)}${result.consistentPoint === null ? '' : `, reserving WAL from ${result.consistentPoint}`}\n`);
        return ExitCode.ok;
      }
      case 'drop': {
        await command(connection, node, () => connection.request('dropReplicationSlot', { name: options.name! }));
        if (options.json === true) printJson(io.stdout, { slotName: options.name, dropped: true, node: formatNodeAddress(node) });
        else io.stdout.write(`replication slot "${options.name}" dropped on ${formatNodeAddress(node)}\n`);
        return ExitCode.ok;
      }
      case 'list': {
        const { slots } = await command(connection, node, () => connection.request('listReplicationSlots', {}));
        const rows = slots.map((slot) => ({
          name: slot.name, slotType: 'physical', active: slot.active, activePid: slot.activePid ?? null, restartLsn: slot.restartLsn, walStatus: slot.walStatus,
        }));
        if (options.json === true) {
          printJson(io.stdout, { slots: rows });
        } else {
          io.stdout.write(formatTable(
            ['slot_name', 'slot_type', 'active', 'active_pid', 'restart_lsn', 'wal_status'],
            rows.map((row) => [row.name, row.slotType, row.active ? 't' : 'f', row.activePid === null ? '' : String(row.activePid), row.restartLsn ?? '', row.walStatus ?? '']),
          ));
          io.stdout.write(`(${rows.length} row${rows.length === 1 ? '' : 's'})\n`);
        }
        return ExitCode.ok;
      }
    }
  } finally {
    connection.close();
  }
}

/** The node's error, as the CLI reports it (exit 1); a lost connection is exit 3. */
async function command<T>(connection: Connection, node: NodeAddress, send: () => Promise<T>): Promise<T> {
  try {
    return await send();
  } catch (error) {
    const fields = error as { code?: string; message: string; detail?: string; hint?: string };
    if (fields.code === 'cannot_connect_now') {
      throw new CliError(ExitCode.unreachable, fields.message, { hint: `Is the node at ${formatNodeAddress(node)} still running?` });
    }
    throw new CliError(ExitCode.failed, fields.message, { detail: fields.detail, hint: fields.hint });
  }
}

/**
 * A replication connection to the first node that answers, or for `create`/`drop` to the
 * primary among several (a standby answers with its own refusal when it is the only one).
 */
async function connect(nodes: NodeAddress[], io: CliIo, options: SlotOptions): Promise<{ connection: Connection; node: NodeAddress }> {
  const { ReplicationConnection } = await import('@walship/replication');
  let fallback: { connection: Connection; node: NodeAddress } | null = null;
  let lastError: unknown = null;
  for (const node of nodes) {
    const credentials = resolveCredentials(io, node);
    let connection: Connection;
    try {
      const password = typeof credentials.password === 'function' ? await credentials.password() : credentials.password;
      connection = await ReplicationConnection.connect({
        host: node.host, port: node.port, applicationName: `walship slot ${options.action}`, timeoutMs: options.timeout ?? 30_000,
        ...sslOptions(io),
        ...(credentials.user !== undefined ? { user: credentials.user } : {}),
        ...(password !== undefined ? { password } : {}),
      });
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === 'invalid_password' || code === 'insufficient_privilege') {
        throw new CliError(ExitCode.failed, `connection to node at ${formatNodeAddress(node)} failed: ${(error as Error).message}`, {
          detail: (error as { detail?: string }).detail,
          hint: code === 'insufficient_privilege'
            ? 'Connect as a user with the replication right (--user or WALSHIP_USER).'
            : 'Give the replication password in WALSHIP_PASSWORD, or a password file in WALSHIP_PASSFILE (host:port:user:password lines).',
        });
      }
      if (code?.startsWith('ssl_') === true) {
        // TLS refused: sslmode and the node's ssl setting disagree, or its certificate did not verify.
        const fields = error as { message: string; detail?: string; hint?: string };
        throw new CliError(ExitCode.failed, `connection to node at ${formatNodeAddress(node)} failed: ${fields.message}`, { detail: fields.detail, hint: fields.hint });
      }
      lastError = error;
      continue;
    }
    if (options.action === 'list' || connection.upstreamRole === 'primary') {
      fallback?.connection.close();
      return { connection, node };
    }
    if (fallback === null) fallback = { connection, node };
    else connection.close();
  }
  if (fallback !== null) return fallback;
  const where = nodes.map(formatNodeAddress).join(', ');
  throw new CliError(ExitCode.unreachable, `could not connect to ${nodes.length === 1 ? 'node' : 'any node'} at ${where}`, {
    detail: lastError instanceof Error ? lastError.message : undefined,
    hint: 'Is the node running and accepting connections on that address? Check --node and WALSHIP_NODE.',
  });
}
