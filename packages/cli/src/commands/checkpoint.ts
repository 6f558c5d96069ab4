/**
 * `walship checkpoint --node HOST:PORT` (CHECKPOINT): asks the node for an immediate checkpoint
 * and waits for it (a restartpoint on a standby).
 */
import { ExitCode } from '../cli-error.js';
import { withSession } from '../connect.js';
import type { CliIo } from '../io.js';
import { resolveNodes, type NodeAddress } from '../options.js';
import { lsnText, printJson } from '../output.js';

export interface CheckpointOptions {
  node?: NodeAddress[];
  timeout?: number;
  json?: boolean;
}

export async function run(options: CheckpointOptions, io: CliIo): Promise<number> {
  const nodes = resolveNodes(options.node, io.env);
  return withSession(nodes, io, { purpose: 'admin', timeoutMs: options.timeout }, async (client) => {
    const result = (await client.checkpoint()) as { lsn?: unknown; redoLsn?: unknown } | undefined;
    const lsn = lsnText(result?.lsn);
    const redoLsn = lsnText(result?.redoLsn);
    if (options.json === true) {
      printJson(io.stdout, { lsn: lsn === '' ? null : lsn, redoLsn: redoLsn === '' ? null : redoLsn });
    } else {
      io.stdout.write(lsn === '' ? 'CHECKPOINT\n' : `CHECKPOINT ${lsn}${redoLsn === '' ? '' : ` (redo ${redoLsn})`}\n`);
    }
    return ExitCode.ok;
  });
}
