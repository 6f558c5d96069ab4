/**
 * `walship del --node HOST:PORT KEY [--table T]`: one transaction deleting one key; prints how
 * many entries it deleted (0 or 1) and the commit LSN. Deleting a missing key is not an error.
 */
import { ExitCode } from '../cli-error.js';
import { withWriteSession } from '../connect.js';
import { resolveDataNodes, type ClusterNodesOptions } from '../cluster-nodes.js';
import type { CliIo } from '../io.js';
import type { NodeAddress, SyncCommitLevel } from '../options.js';
import { formatLsn, printJson } from '../output.js';

export interface DelOptions extends ClusterNodesOptions {
  node?: NodeAddress[];
  key: string;
  syncCommit?: SyncCommitLevel;
  timeout?: number;
  table?: string;
  json?: boolean;
}

export async function run(options: DelOptions, io: CliIo): Promise<number> {
  const { nodes, io: connectIo } = await resolveDataNodes(options, io);
  return withWriteSession(nodes, connectIo, { purpose: 'write', timeoutMs: options.timeout }, async (client) => {
    const result = await client.del(Buffer.from(options.key, 'utf8'), { table: options.table, syncCommit: options.syncCommit });
    const deleted = result.deleted;
    if (options.json === true) {
      printJson(io.stdout, { deleted, lsn: formatLsn(result.lsn), timeline: result.timeline, member: result.member });
    } else {
      io.stdout.write(`deleted ${deleted} (${formatLsn(result.lsn)})\n`);
    }
    return ExitCode.ok;
  });
}
