/**
 * Helpers shared by the replication tests: a node's status, a whole table's contents for
 * comparing nodes, waiting until a standby has replayed an LSN, and a standby made with
 * `walship basebackup --standby` beside its primary.
 */
import * as path from 'node:path';
import { parseLsn } from '@walship/engine';
import { TestNode, freePort, waitFor, walship } from './node.js';

/** `walship status --json`'s document, typed as the caller needs it. */
export async function nodeStatus<T>(node: TestNode): Promise<T> {
  const client = await node.client();
  try {
    return (await client.status()) as unknown as T;
  } finally {
    await client.close();
  }
}

/** Every entry of a table, as key -> "value@revision", for comparing two nodes. */
export async function scanAll(node: TestNode, table?: string): Promise<Map<string, string>> {
  const client = await node.client();
  try {
    const { entries } = await client.range({ limit: 1_000_000, ...(table !== undefined ? { table } : {}) });
    return new Map(entries.map((e) => [e.key.toString(), `${e.value.toString()}@${e.revision}`]));
  } finally {
    await client.close();
  }
}

/** Waits until `standby` has replayed `lsn`; on a timeout, says how its log ends. */
export async function caughtUp(standby: TestNode, lsn: number, timeoutMs = 60_000): Promise<void> {
  try {
    await waitFor(`${path.basename(standby.dataDir)} to replay ${lsn}`, async () => {
      const s = await nodeStatus<{ replayLsn: string | null }>(standby).catch(() => null);
      return s !== null && s.replayLsn !== null && parseLsn(s.replayLsn)! >= lsn;
    }, timeoutMs);
  } catch (error) {
    throw new Error(`${(error as Error).message}; the standby's log ends with:\n${standby.log.split('\n').slice(-25).join('\n')}`);
  }
}

/** `walship basebackup --standby` of `from` into a folder beside it, on a free port. */
export async function basebackup(from: TestNode, name: string, settings: string[], extra: string[] = []): Promise<TestNode> {
  const dir = path.join(path.dirname(from.dataDir), name);
  const port = await freePort();
  const result = walship(['basebackup', '--from', `127.0.0.1:${from.port}`, '-D', dir, '--standby', '--port', String(port), '--set', `application_name=${name}`, ...settings, ...extra]);
  if (result.status !== 0) throw new Error(`basebackup failed: ${result.stderr}`);
  return new TestNode(dir, port);
}
