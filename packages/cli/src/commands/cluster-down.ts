/**
 * `walship cluster down -f FILE [--mode smart|fast|immediate] [--json]`: every running member
 * stopped, the primary first (its standbys then hold all its WAL), the failover monitor before
 * them and the partition proxy after them. Roles do not change.
 */
import { ExitCode } from '../cli-error.js';
import { stopMonitor } from '../cluster-monitor-process.js';
import { openCluster, type ClusterFileOptions } from '../cluster-support.js';
import type { CliIo } from '../io.js';
import { printJson } from '../output.js';

export interface ClusterDownOptions extends ClusterFileOptions {
  mode: 'smart' | 'fast' | 'immediate';
}

export async function run(options: ClusterDownOptions, io: CliIo): Promise<number> {
  const ctx = await openCluster(options, io);
  const { clusterDown } = await import('@walship/cluster');
  // The monitor first: it would take the primary's shutdown for a failure and fail over.
  const monitorPid = await stopMonitor(ctx.config);
  if (monitorPid !== null) ctx.progress(`failover monitor (pid ${monitorPid}) stopped`);
  const result = await clusterDown(ctx, { mode: options.mode, ...(options.timeout === undefined ? {} : { timeoutMs: options.timeout }) });
  // The proxy last: the members' shutdown hands their last WAL to the standbys through it.
  const { stopRunningProxy } = await import('@walship/cluster');
  const proxyPid = await stopRunningProxy(ctx.config.dataRoot);
  if (proxyPid !== null) ctx.progress(`partition proxy (pid ${proxyPid}) stopped`);
  if (options.json === true) {
    printJson(io.stdout, { cluster: ctx.config.name, stopped: result.stopped, alreadyStopped: result.alreadyStopped, monitorStopped: monitorPid !== null, proxyStopped: proxyPid !== null });
  } else {
    io.stdout.write(
      result.stopped.length === 0
        ? `cluster ${ctx.config.name}: nothing was running\n`
        : `cluster ${ctx.config.name} is down: stopped ${result.stopped.join(', ')}${monitorPid === null ? '' : ' and the failover monitor'}\n`,
    );
  }
  return ExitCode.ok;
}
