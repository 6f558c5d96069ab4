/**
 * The options every `walship cluster ...` command takes (DESIGN.md section 10) and loading the
 * config with the command line's overrides: `--base-port` moves every member's port, and
 * `--data-root` moves the members' data, the state and the history, so that two copies of one
 * config can run side by side.
 */
import type { ClusterConfig } from '@walship/cluster';

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
