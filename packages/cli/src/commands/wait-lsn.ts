/**
 * `walship wait-lsn --node HOST:PORT LSN [--mode standby_replay|standby_write|standby_flush|primary_flush]
 * [--timeout S] [--json]` (PostgreSQL 19's WAIT FOR LSN): returns once the node's position for the
 * mode has reached LSN, the commit LSN `put` printed. On a standby, `standby_replay` (the default)
 * means a read there now sees that commit. Without --timeout it waits as long as it takes; a
 * timeout, or a standby mode asked of a primary, exits 1 with PostgreSQL's message.
 */
import { ExitCode } from '../cli-error.js';
import { withSession } from '../connect.js';
import type { CliIo } from '../io.js';
import { resolveNodes, type NodeAddress, type WaitLsnMode } from '../options.js';
import { formatLsn, printJson } from '../output.js';

export interface WaitLsnOptions {
  node?: NodeAddress[];
  lsn: number;
  mode?: WaitLsnMode;
  timeout?: number;
  json?: boolean;
}

export async function run(options: WaitLsnOptions, io: CliIo): Promise<number> {
  const nodes = resolveNodes(options.node, io.env);
  const mode = options.mode ?? 'standby_replay';
  return withSession(nodes, io, { purpose: 'read', timeoutMs: options.timeout }, async (client, node) => {
    const result = await client.waitForLsn(options.lsn, { mode, ...(options.timeout === undefined ? {} : { timeoutMs: options.timeout }) });
    if (options.json === true) {
      printJson(io.stdout, { status: result.status, mode, targetLsn: formatLsn(options.lsn), lsn: formatLsn(result.lsn), node: `${node.host}:${node.port}` });
    } else {
      io.stdout.write(`${result.status}\n`);
    }
    return ExitCode.ok;
  });
}
