/**
 * The nodes a data command talks to: `--node` (one, or a list), or every member of a cluster
 * config (`-f CLUSTER.yaml`, with `--base-port` and `--data-root` as the cluster commands take
 * them): writes then go to the member that is the primary now (connect.ts's withWriteSession),
 * reads to the member --target-session-attrs picks (withReadSession).
 */
import { CliError, ExitCode } from './cli-error.js';
import { resolveNodes, type NodeAddress } from './options.js';

export interface ClusterNodesOptions {
  node?: NodeAddress[];
  file?: string;
  basePort?: number;
  dataRoot?: string;
}

export async function resolveDataNodes(options: ClusterNodesOptions, env: NodeJS.ProcessEnv): Promise<NodeAddress[]> {
  if (options.file === undefined) return resolveNodes(options.node, env);
  if (options.node !== undefined) throw new CliError(ExitCode.usage, 'give --node or -f, not both', { hint: '-f CLUSTER.yaml names every member of the cluster.' });
  const { loadConfig, useClusterCredentials } = await import('./cluster-options.js');
  const config = await loadConfig({ file: options.file, ...(options.basePort === undefined ? {} : { basePort: options.basePort }), ...(options.dataRoot === undefined ? {} : { dataRoot: options.dataRoot }) });
  await useClusterCredentials(config, { env });
  return config.members.map((member) => ({ host: config.host, port: member.port }));
}
