/**
 * `walship cluster proxy -f FILE`: the partition proxy (@walship/cluster's runProxy) in the
 * foreground, until interrupted: a TCP proxy in front of each member that `cluster partition`
 * cuts or slows. `cluster up` starts it by itself, detached, when the config has `proxy:`;
 * `cluster down` stops it last. `--stop` stops a running one.
 */
import { CliError, ExitCode } from '../cli-error.js';
import { loadConfig, type ClusterFileOptions } from '../cluster-options.js';
import type { CliIo } from '../io.js';

export interface ClusterProxyOptions extends ClusterFileOptions {
  stop?: boolean;
}

export async function run(options: ClusterProxyOptions, io: CliIo): Promise<number> {
  const config = await loadConfig(options);
  const cluster = await import('@walship/cluster');
  if (options.stop === true) {
    const pid = await cluster.stopRunningProxy(config.dataRoot);
    io.stdout.write(pid === null ? `no partition proxy runs for cluster ${config.name}\n` : `partition proxy (pid ${pid}) stopped\n`);
    return ExitCode.ok;
  }
  if (config.proxy === null) {
    throw new CliError(ExitCode.usage, `cluster ${config.name} has no partition proxy`, { hint: `Add "proxy: true" to ${config.file}.` });
  }
  if (!cluster.claimProxyPidFile(config.dataRoot, { pid: process.pid, since: new Date().toISOString() })) {
    throw new CliError(ExitCode.failed, `a partition proxy already runs for cluster ${config.name} (pid ${cluster.runningProxy(config.dataRoot)?.pid ?? '?'})`, {
      hint: 'One per cluster: stop it first with walship cluster proxy --stop -f FILE.',
    });
  }
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  try {
    await cluster.runProxy(config, { signal: controller.signal, log: (line) => io.stderr.write(`${new Date().toISOString()} ${line}\n`) });
  } finally {
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
    cluster.removeProxyPidFile(config.dataRoot, process.pid);
  }
  return ExitCode.ok;
}
