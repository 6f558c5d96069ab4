/**
 * `walship status --node HOST:PORT [--json]`: a node's role, timeline and WAL positions, its
 * standbys (pg_stat_replication), its walreceiver (pg_stat_wal_receiver), its slots and the
 * commits waiting for synchronous standbys. --json prints the node's status document as it
 * comes (keys as DESIGN.md section 10 lists them).
 */
import { ExitCode } from '../cli-error.js';
import { withSession } from '../connect.js';
import type { CliIo } from '../io.js';
import { resolveNodes, type NodeAddress } from '../options.js';
import { formatPairs, formatTable, lsnText, printJson } from '../output.js';

export interface StatusOptions {
  node?: NodeAddress[];
  timeout?: number;
  json?: boolean;
}

type Json = Record<string, unknown>;

function text(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  if (typeof value === 'number' && !Number.isInteger(value)) return value.toFixed(1);
  return String(value);
}

/**
 * A duration in ms with three decimals (`0.412 ms`): lags come to the microsecond, and a
 * loopback standby's lag is well under a millisecond, so whole milliseconds would show 0 or 1.
 */
function lag(value: unknown): string {
  return typeof value === 'number' && Number.isFinite(value) ? `${value.toFixed(3)} ms` : '-';
}

function records(value: unknown): Json[] {
  return Array.isArray(value) ? value.filter((item): item is Json => item !== null && typeof item === 'object') : [];
}

/** The status document as text, for people. */
export function formatStatus(status: Json): string {
  const pairs: Array<[string, string]> = [
    ['role', text(status.role)],
    ['system identifier', text(status.systemId)],
    ['timeline', text(status.timeline)],
    ['insert LSN', text(lsnText(status.insertLsn))],
    ['flush LSN', text(lsnText(status.flushLsn))],
  ];
  if (status.role !== 'primary') {
    pairs.push(['receive LSN', text(lsnText(status.receiveLsn))], ['replay LSN', text(lsnText(status.replayLsn))]);
  }
  pairs.push(['last checkpoint', text(lsnText(status.lastCheckpointLsn))]);
  if (status.role === 'primary' && typeof status.synchronousStandbyNames === 'string') {
    pairs.push(['synchronous standbys', status.synchronousStandbyNames === '' ? '(none: asynchronous)' : status.synchronousStandbyNames]);
  }
  let output = formatPairs(pairs);

  const replication = records(status.replication);
  if (replication.length > 0) {
    output += `\nreplication (${replication.length} standby${replication.length === 1 ? '' : 's'}):\n`;
    output += formatTable(
      ['application_name', 'client_addr', 'state', 'sent', 'write', 'flush', 'replay', 'write lag', 'flush lag', 'replay lag', 'sync', 'slot'],
      replication.map((standby) => [
        text(standby.applicationName),
        text(standby.clientAddr),
        text(standby.state),
        text(lsnText(standby.sentLsn)),
        text(lsnText(standby.writeLsn)),
        text(lsnText(standby.flushLsn)),
        text(lsnText(standby.replayLsn)),
        lag(standby.writeLagMs),
        lag(standby.flushLagMs),
        lag(standby.replayLagMs),
        standby.syncState === undefined ? '-' : `${text(standby.syncState)}${typeof standby.syncPriority === 'number' && standby.syncPriority > 0 ? ` (${standby.syncPriority})` : ''}`,
        text(standby.slotName),
      ]),
    );
  }

  const receiver = status.walReceiver;
  if (receiver !== null && typeof receiver === 'object') {
    const fields = receiver as Json;
    output += `\nWAL receiver: ${text(fields.status)} from ${text(fields.upstream)}, received ${text(lsnText(fields.receivedLsn))}, upstream at ${text(lsnText(fields.latestEndLsn))}\n`;
  }

  const slots = records(status.slots);
  if (slots.length > 0) {
    output += `\nreplication slots:\n`;
    output += formatTable(
      ['name', 'restart LSN', 'WAL status', 'active'],
      slots.map((slot) => [text(slot.name), text(lsnText(slot.restartLsn)), text(slot.walStatus), slot.active === true ? 'yes' : 'no']),
    );
  }

  const waiters = status.syncWaiters;
  if (waiters !== null && typeof waiters === 'object') {
    const { count, oldestMs } = waiters as Json;
    output += `\ncommits waiting for synchronous standbys: ${text(count)}${typeof count === 'number' && count > 0 ? ` (oldest ${lag(oldestMs)})` : ''}\n`;
  }
  return output;
}

export async function run(options: StatusOptions, io: CliIo): Promise<number> {
  const nodes = resolveNodes(options.node, io.env);
  return withSession(nodes, io, { purpose: 'admin', timeoutMs: options.timeout }, async (client) => {
    const status = await client.status();
    if (options.json === true) printJson(io.stdout, status);
    else io.stdout.write(formatStatus(status));
    return ExitCode.ok;
  });
}
