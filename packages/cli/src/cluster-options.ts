/**
 * The options every `walship cluster ...` command takes (DESIGN.md section 10) and loading the
 * config with the command line's overrides: `--base-port` moves every member's port, and
 * `--data-root` moves the members' data, the state and the history, so that two copies of one
 * config can run side by side.
 */
import type { ClusterConfig } from '@walship/cluster';
import { clusterClientSsl } from '@walship/cluster/tls';
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

/**
 * The io a cluster's commands run with: for a cluster with `tls: true`, WALSHIP_SSLMODE=verify-full
 * and WALSHIP_SSLROOTCERT=DATA_ROOT/tls/root.crt (the cluster's CA) unless the environment sets
 * them, so that every connection — node control, the monitor, lag, put -f — verifies the members.
 */
export function clusterIo(config: ClusterConfig, io: CliIo): CliIo {
  const ssl = clusterClientSsl(config);
  if (ssl.sslmode === undefined) return io;
  const env = { ...io.env };
  if (env.WALSHIP_SSLMODE === undefined || env.WALSHIP_SSLMODE === '') env.WALSHIP_SSLMODE = ssl.sslmode;
  if ((env.WALSHIP_SSLROOTCERT === undefined || env.WALSHIP_SSLROOTCERT === '') && ssl.sslrootcert !== undefined) env.WALSHIP_SSLROOTCERT = ssl.sslrootcert;
  return { ...io, env };
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
