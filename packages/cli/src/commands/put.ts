/**
 * `walship put --node HOST:PORT KEY VALUE [--sync-commit LEVEL] [--timeout S] [--table T]`: one
 * transaction writing one key. Returns once the commit is acknowledged at its synchronous_commit
 * level, and prints the commit LSN; a write that may or may not have been committed (connection
 * lost, timeout) is reported as such, with exit 1.
 */
import { ExitCode } from '../cli-error.js';
import { withWriteSession } from '../connect.js';
import { resolveDataNodes, type ClusterNodesOptions } from '../cluster-nodes.js';
import type { CliIo } from '../io.js';
import type { NodeAddress, SyncCommitLevel } from '../options.js';
import { formatLsn, printJson } from '../output.js';

export interface PutOptions extends ClusterNodesOptions {
  node?: NodeAddress[];
  key: string;
  value: string;
  syncCommit?: SyncCommitLevel;
  timeout?: number;
  table?: string;
  json?: boolean;
}

export async function run(options: PutOptions, io: CliIo): Promise<number> {
  const { nodes, io: connectIo } = await resolveDataNodes(options, io);
  return withWriteSession(nodes, connectIo, { purpose: 'write', timeoutMs: options.timeout }, async (client) => {
    const result = await client.put(Buffer.from(options.key, 'utf8'), Buffer.from(options.value, 'utf8'), {
      table: options.table,
      syncCommit: options.syncCommit,
    });
    if (options.json === true) {
      printJson(io.stdout, { succeeded: result.succeeded, lsn: formatLsn(result.lsn), timeline: result.timeline, member: result.member });
    } else {
      io.stdout.write(`OK ${formatLsn(result.lsn)}\n`);
    }
    return ExitCode.ok;
  });
}
