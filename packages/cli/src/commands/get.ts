/**
 * `walship get --node HOST:PORT KEY [--min-lsn LSN] [--table T]`: prints the raw value (bytes as
 * stored, with a newline added only on a terminal); a missing key exits 1. With --min-lsn a
 * standby first waits until it has replayed that far (read your writes).
 */
import { CliError, ExitCode } from '../cli-error.js';
import { withReadSession, type TargetSessionAttrs } from '../connect.js';
import { resolveDataNodes, type ClusterNodesOptions } from '../cluster-nodes.js';
import type { CliIo } from '../io.js';
import type { NodeAddress } from '../options.js';
import { bytesToText, formatLsn, printJson } from '../output.js';

export interface GetOptions extends ClusterNodesOptions {
  node?: NodeAddress[];
  targetSessionAttrs?: TargetSessionAttrs;
  key: string;
  minLsn?: number;
  minLsnTimeline?: number;
  timeout?: number;
  table?: string;
  json?: boolean;
}

export async function run(options: GetOptions, io: CliIo): Promise<number> {
  const { nodes, io: connectIo } = await resolveDataNodes(options, io);
  return withReadSession(nodes, connectIo, { purpose: 'read', timeoutMs: options.timeout, targetSessionAttrs: options.targetSessionAttrs ?? (options.file === undefined ? 'any' : 'read-write') }, async (client) => {
    const entry = await client.get(Buffer.from(options.key, 'utf8'), { table: options.table, minLsn: options.minLsn, minLsnTimeline: options.minLsnTimeline });
    if (entry === null) {
      throw new CliError(ExitCode.failed, `key "${options.key}" not found${options.table === undefined ? '' : ` in table "${options.table}"`}`, {
        hint: 'Check the key (and --table); walship scan --prefix P lists the keys that exist.',
      });
    }
    if (options.json === true) {
      const value = bytesToText(entry.value);
      printJson(io.stdout, {
        key: options.key,
        value: value.text,
        ...(value.encoding === 'base64' ? { valueEncoding: 'base64' } : {}),
        revision: formatLsn(entry.revision),
      });
    } else {
      io.stdout.write(entry.value);
      if (io.stdout.isTTY === true) io.stdout.write('\n');
    }
    return ExitCode.ok;
  });
}
