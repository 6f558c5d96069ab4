/**
 * The options every `walship cluster ...` command takes (DESIGN.md section 10) and loading the
 * config with the command line's overrides: `--base-port` moves every member's port, and
 * `--data-root` moves the members' data, the state and the history, so that two copies of one
 * config can run side by side.
 */
import type { ClusterConfig } from '@walship/cluster';
import type { CliIo } from './io.js';

export interface ClusterFileOptions {
  file: string;
  basePort?: number;
  dataRoot?: string;
  json?: boolean;
  progress?: boolean;
  quiet?: boolean;
  timeout?: number;
}

export async function loadConfig(options: ClusterFileOptions): Promise<ClusterConfig> {
  const { loadClusterConfig } = await import('@walship/cluster');
  return loadClusterConfig(options.file, {
    ...(options.basePort === undefined ? {} : { basePort: options.basePort }),
    ...(options.dataRoot === undefined ? {} : { dataRoot: options.dataRoot }),
  });
}

/**
 * With the config's auth key, the cluster's own connections (status, the monitor, drills, lag,
 * member commands) go as its superuser, with the password from the data root's passfile (made by
 * the first `cluster up`), unless WALSHIP_USER or WALSHIP_PASSWORD say otherwise. Set in the
 * environment of this run, so that the node commands and the processes it starts see it too.
 */
export async function useClusterCredentials(config: ClusterConfig, io: Pick<CliIo, 'env'>): Promise<void> {
  if ((config.auth ?? null) === null) return;
  if ((io.env.WALSHIP_USER ?? '') !== '' || (io.env.WALSHIP_PASSWORD ?? '') !== '') return;
  const { clusterCredentials } = await import('@walship/cluster');
  const credentials = clusterCredentials(config);
  if (credentials === null) return;
  io.env.WALSHIP_USER = credentials.superuser.name;
  io.env.WALSHIP_PASSWORD = credentials.superuser.password;
}
