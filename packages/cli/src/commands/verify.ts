/**
 * `walship verify --node A --node B [--timeout S] [--json]`: compares the pages of two nodes of
 * one cluster, relation file by relation file, block by block.
 *
 * Redo is physical and deterministic (DESIGN.md section 4): a standby that replayed the WAL its
 * primary wrote holds the same bytes in every page, page LSN and checksum included, once both
 * have written their dirty buffers. So each node is first asked to flush them (`flushBuffers`: a
 * checkpoint on a primary; on a standby, once it has replayed up to the primary's position, a
 * restartpoint and a write of every dirty buffer), then for the CRC-32C of each page of each
 * relation file as stored on disk (`pageChecksums`), which are compared here. Only CRCs cross the
 * network: 4 bytes per 8 KiB page.
 *
 * Exit status 0 when every relation is identical, 1 when not (a failed check), 3 when a node
 * cannot be reached. Pages compared while a node keeps taking writes may differ for that reason
 * alone: the output shows each node's WAL position at the flush, so a reader can tell.
 */
import type { ReplicationConnection } from '@walship/replication';
import { CliError, ExitCode, usageError } from '../cli-error.js';
import { resolveCredentials } from '../credentials.js';
import { sslOptions } from '../ssl-env.js';
import type { CliIo } from '../io.js';
import { formatNodeAddress, type NodeAddress } from '../options.js';
import { printJson } from '../output.js';

export interface VerifyOptions {
  node?: NodeAddress[];
  timeout?: number;
  json?: boolean;
}

/** How long a standby may take to replay up to its primary's position (without --timeout). */
const DEFAULT_REPLAY_WAIT_MS = 60_000;

/** How long connecting may take (without --timeout). */
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/** Block numbers listed per differing relation; the count is always exact. */
const MAX_REPORTED_BLOCKS = 1000;

interface NodeState {
  address: string;
  connection: ReplicationConnection;
  systemId: string;
  role: 'primary' | 'standby';
  timeline: number;
  lsn: string;
  relations: Map<number, number>;
}

export interface RelationReport {
  relNode: number;
  path: string;
  /** Length in blocks on each node, in --node order; null where the file does not exist. */
  blocks: Array<number | null>;
  identical: boolean;
  /** Blocks both nodes have whose pages differ (at most MAX_REPORTED_BLOCKS listed). */
  differingBlocks: number[];
  differingBlockCount: number;
  /** Blocks only the longer file has, and whether they are all-zero pages. */
  extraBlocks: { node: string; from: number; to: number; allZero: boolean } | null;
}

export async function run(options: VerifyOptions, io: CliIo): Promise<number> {
  const addresses = options.node ?? [];
  if (addresses.length !== 2) {
    throw usageError(`verify compares two nodes; ${addresses.length} given`, 'Name them with --node A --node B (or --node A,B).');
  }
  const [{ ReplicationConnection }, { ZERO_PAGE_CRC }, { BLCKSZ }, { MAX_PAGE_CHECKSUMS_PER_REQUEST }] = await Promise.all([
    import('@walship/replication'), import('@walship/engine/rewind'), import('@walship/engine/constants'), import('@walship/protocol'),
  ]);
  const nodes: NodeState[] = [];
  try {
    for (const address of addresses) {
      const credentials = resolveCredentials(io, address);
      const password = typeof credentials.password === 'function' ? await credentials.password() : credentials.password;
      let connection: ReplicationConnection;
      try {
        connection = await ReplicationConnection.connect({
          host: address.host, port: address.port, applicationName: 'walship verify', timeoutMs: options.timeout ?? DEFAULT_CONNECT_TIMEOUT_MS,
          ...sslOptions(io),
          ...(credentials.user !== undefined ? { user: credentials.user } : {}),
          ...(password !== undefined ? { password } : {}),
        });
      } catch (error) {
        const fields = error as { message: string; severity?: string; detail?: string; hint?: string };
        // The node answered and refused (TLS, a password, not ready): its reasons, exit 1.
        if (fields.severity === 'FATAL') throw new CliError(ExitCode.failed, fields.message, { detail: fields.detail, hint: fields.hint });
        throw new CliError(ExitCode.unreachable, fields.message, { hint: `Is a node running at ${formatNodeAddress(address)}?` });
      }
      const identity = await connection.request('identifySystem', {});
      nodes.push({
        address: formatNodeAddress(address), connection, systemId: identity.systemId, role: connection.upstreamRole,
        timeline: identity.timeline, lsn: identity.xlogPos, relations: new Map(),
      });
    }
    const [a, b] = nodes as [NodeState, NodeState];
    if (a.systemId !== b.systemId) {
      return report(io, options, nodes, [], `the nodes belong to different clusters: system identifiers ${a.systemId} and ${b.systemId}`);
    }
    await flushBoth(nodes, options.timeout ?? DEFAULT_REPLAY_WAIT_MS);
    for (const node of nodes) {
      const { files } = await node.connection.request('listDataFiles', {});
      for (const file of files) {
        const match = /^base\/([1-9][0-9]*)$/.exec(file.path);
        if (match !== null) node.relations.set(Number(match[1]), Math.floor(file.size / BLCKSZ));
      }
    }
    const relNodes = [...new Set([...a.relations.keys(), ...b.relations.keys()])].sort((x, y) => x - y);
    const reports: RelationReport[] = [];
    for (const relNode of relNodes) reports.push(await compareRelation(relNode, a, b, { zeroPageCrc: ZERO_PAGE_CRC, perRequest: MAX_PAGE_CHECKSUMS_PER_REQUEST }));
    return report(io, options, nodes, reports, null);
  } catch (error) {
    if (error instanceof CliError) throw error;
    const known = error as { message?: string; hint?: string; detail?: string };
    throw new CliError(ExitCode.failed, `verify failed: ${known.message ?? String(error)}`, {
      ...(known.detail !== undefined ? { detail: known.detail } : {}),
      ...(known.hint !== undefined ? { hint: known.hint } : {}),
    });
  } finally {
    for (const node of nodes) node.connection.close();
  }
}

/**
 * Primaries first (a checkpoint: its end is where the standbys must get to), then standbys, each
 * once it has replayed that far. Two standbys wait for the furthest position either reported.
 */
async function flushBoth(nodes: NodeState[], replayWaitMs: number): Promise<void> {
  let target = '0/0';
  const later = (x: string, y: string): string => (lsnValue(x) >= lsnValue(y) ? x : y);
  for (const node of nodes.filter((n) => n.role === 'primary')) {
    const flushed = await node.connection.request('flushBuffers', {});
    Object.assign(node, { lsn: flushed.lsn, timeline: flushed.timeline });
    target = later(target, flushed.lsn);
  }
  if (nodes.every((n) => n.role === 'standby')) for (const node of nodes) target = later(target, node.lsn);
  for (const node of nodes.filter((n) => n.role === 'standby')) {
    const flushed = await node.connection.request('flushBuffers', { waitForLsn: target, timeoutMs: replayWaitMs });
    Object.assign(node, { lsn: flushed.lsn, timeline: flushed.timeline });
  }
}

/** Compares one relation's pages, `perRequest` CRCs at a time from each node (both asked at once). */
async function compareRelation(relNode: number, a: NodeState, b: NodeState, limits: { zeroPageCrc: number; perRequest: number }): Promise<RelationReport> {
  const path = `base/${relNode}`;
  const blocksA = a.relations.get(relNode);
  const blocksB = b.relations.get(relNode);
  const result: RelationReport = {
    relNode, path, blocks: [blocksA ?? null, blocksB ?? null], identical: true, differingBlocks: [], differingBlockCount: 0, extraBlocks: null,
  };
  if (blocksA === undefined || blocksB === undefined) {
    result.identical = false;
    return result;
  }
  const longer = Math.max(blocksA, blocksB);
  const common = Math.min(blocksA, blocksB);
  let allZero = true;
  for (let start = 0; start < longer; start += limits.perRequest) {
    const maxBlocks = Math.min(limits.perRequest, longer - start);
    const ask = (node: NodeState, blocks: number) => (start < blocks
      ? node.connection.request('pageChecksums', { relNode, startBlock: start, maxBlocks: Math.min(maxBlocks, blocks - start) })
      : Promise.resolve(null));
    const [ca, cb] = await Promise.all([ask(a, blocksA), ask(b, blocksB)]);
    for (let i = 0; i < maxBlocks; i++) {
      const block = start + i;
      const crcA = ca !== null && (i + 1) * 4 <= ca.checksums.length ? ca.checksums.readUInt32LE(i * 4) : null;
      const crcB = cb !== null && (i + 1) * 4 <= cb.checksums.length ? cb.checksums.readUInt32LE(i * 4) : null;
      if (block < common) {
        if (crcA !== crcB) {
          result.identical = false;
          result.differingBlockCount++;
          if (result.differingBlocks.length < MAX_REPORTED_BLOCKS) result.differingBlocks.push(block);
        }
      } else {
        const extra = crcA ?? crcB;
        if (extra !== limits.zeroPageCrc) allZero = false;
      }
    }
  }
  if (blocksA !== blocksB) {
    result.identical = false;
    result.extraBlocks = { node: blocksA > blocksB ? a.address : b.address, from: common, to: longer, allZero };
  }
  return result;
}

function report(io: CliIo, options: VerifyOptions, nodes: NodeState[], relations: RelationReport[], mismatch: string | null): number {
  const identical = mismatch === null && relations.every((r) => r.identical);
  const differing = relations.filter((r) => !r.identical);
  const blocksCompared = relations.reduce((sum, r) => sum + Math.min(r.blocks[0] ?? 0, r.blocks[1] ?? 0), 0);
  if (options.json === true) {
    printJson(io.stdout, {
      identical,
      ...(mismatch !== null ? { error: mismatch } : {}),
      nodes: nodes.map((n) => ({ address: n.address, role: n.role, systemId: n.systemId, timeline: n.timeline, lsn: n.lsn, relations: n.relations.size })),
      relationsCompared: relations.length,
      blocksCompared,
      differingRelations: differing.length,
      differingBlocks: differing.reduce((sum, r) => sum + r.differingBlockCount, 0),
      relations,
    });
    return identical ? ExitCode.ok : ExitCode.failed;
  }
  const describeNode = (n: NodeState) => `${n.address} (${n.role}, timeline ${n.timeline}, ${n.role === 'primary' ? 'flushed' : 'replayed'} to ${n.lsn})`;
  io.stdout.write(`comparing ${describeNode(nodes[0]!)}\n     with ${describeNode(nodes[1]!)}\n`);
  if (mismatch !== null) {
    io.stdout.write(`not comparable: ${mismatch}\n`);
    return ExitCode.failed;
  }
  for (const r of relations) io.stdout.write(`${describeRelation(r, nodes)}\n`);
  if (identical) {
    io.stdout.write(`identical: ${relations.length} relations, ${blocksCompared} blocks\n`);
    return ExitCode.ok;
  }
  const blocks = differing.reduce((sum, r) => sum + r.differingBlockCount, 0);
  io.stdout.write(`pages differ: ${differing.length} of ${relations.length} relations (${blocks} differing blocks)\n`);
  return ExitCode.failed;
}

function describeRelation(r: RelationReport, nodes: NodeState[]): string {
  if (r.blocks[0] === null || r.blocks[1] === null) {
    const on = r.blocks[0] === null ? nodes[1]! : nodes[0]!;
    return `${r.path}: only on ${on.address} (${r.blocks[0] ?? r.blocks[1]} blocks)`;
  }
  if (r.identical) return `${r.path}: identical (${r.blocks[0]} blocks)`;
  const parts: string[] = [];
  if (r.differingBlockCount > 0) {
    const listed = r.differingBlocks.join(', ');
    parts.push(`${r.differingBlockCount} ${r.differingBlockCount === 1 ? 'block differs' : 'blocks differ'}: ${listed}${r.differingBlockCount > r.differingBlocks.length ? ', ...' : ''}`);
  }
  if (r.extraBlocks !== null) {
    const e = r.extraBlocks;
    parts.push(`blocks ${e.from}..${e.to - 1} only on ${e.node}${e.allZero ? ' (all-zero pages)' : ''}`);
  }
  return `${r.path}: ${parts.join('; ')}`;
}

function lsnValue(text: string): number {
  const [hi, lo] = text.split('/');
  return parseInt(hi ?? '0', 16) * 0x1_0000_0000 + parseInt(lo ?? '0', 16);
}
