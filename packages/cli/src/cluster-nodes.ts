/**
 * The nodes a data command talks to: `--node` (one, or a list), or every member of a cluster
 * config (`-f CLUSTER.yaml`, with `--base-port` and `--data-root` as the cluster commands take
 * them): writes then go to the member that is the primary now (connect.ts's withWriteSession),
 * reads to the member --target-session-attrs picks (withReadSession).
 */
import { CliError, ExitCode } from './cli-error.js';
import type { CliIo } from './io.js';
import { resolveNodes, type NodeAddress } from './options.js';

export interface ClusterNodesOptions {
  node?: NodeAddress[];
  file?: string;
  basePort?: number;
  dataRoot?: string;
}

/** The nodes, and the io to connect with (a cluster's credentials, a TLS cluster's CA and verify-full: clusterIo). */
export async function resolveDataNodes(options: ClusterNodesOptions, io: CliIo): Promise<{ nodes: NodeAddress[]; io: CliIo }> {
  if (options.file === undefined) return { nodes: resolveNodes(options.node, io.env), io };
  if (options.node !== undefined) throw new CliError(ExitCode.usage, 'give --node or -f, not both', { hint: '-f CLUSTER.yaml names every member of the cluster.' });
  const { clusterIo, loadConfig, useClusterCredentials } = await import('./cluster-options.js');
  const config = await loadConfig({ file: options.file, ...(options.basePort === undefined ? {} : { basePort: options.basePort }), ...(options.dataRoot === undefined ? {} : { dataRoot: options.dataRoot }) });
  const connectIo = clusterIo(config, io);
  await useClusterCredentials(config, connectIo);
  return { nodes: config.members.map((member) => ({ host: config.host, port: member.port })), io: connectIo };
}
