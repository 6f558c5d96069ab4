/**
 * `walship cluster partition -f FILE NODE [--latency MS]` and `walship cluster heal -f FILE
 * [NODE]`: the partition proxy's links of a member (proxy.ts). `partition` cuts every link to
 * and from NODE (the monitor's checks, its standbys' streams, its own stream), holding what is
 * sent until it heals; with `--latency` it slows them instead. `heal` opens NODE's links again
 * (every member's without NODE). Each returns once the running proxy has applied the change.
 */
import { CliError, ExitCode } from '../cli-error.js';
import { loadConfig, type ClusterFileOptions } from '../cluster-options.js';
import type { CliIo } from '../io.js';
import { printJson } from '../output.js';

export interface ClusterPartitionOptions extends ClusterFileOptions {
  action: 'partition' | 'heal';
  member?: string;
  latency?: number;
}

export async function run(options: ClusterPartitionOptions, io: CliIo): Promise<number> {
  const config = await loadConfig(options);
  const cluster = await import('@walship/cluster');
  if (config.proxy === null) {
    throw new CliError(ExitCode.failed, `cluster ${config.name} has no partition proxy: its links cannot be cut`, {
      hint: `Add "proxy: true" to ${config.file} and run walship cluster up -f FILE (the members' streams then go through it).`,
    });
  }
  if (options.member !== undefined) cluster.findMember(config, options.member);
  if (options.action === 'partition' && options.member === undefined) throw new CliError(ExitCode.usage, 'partition needs a member', { hint: 'Name the member to cut off.' });
  const latencyMs = options.latency ?? 0;
  if (latencyMs > cluster.PROXY_LATENCY_MAX_MS) {
    throw new CliError(ExitCode.usage, `a latency of ${latencyMs} ms is more than ${cluster.PROXY_LATENCY_MAX_MS} ms`, { hint: 'Cut the links instead: leave --latency out.' });
  }
  const link = options.action === 'heal' ? { cut: false, latencyMs: 0 } : latencyMs > 0 ? { cut: false, latencyMs } : { cut: true, latencyMs: 0 };
  const control = cluster.setLinkControl(config.dataRoot, options.member ?? null, link);
  const applied = await cluster.waitProxyApplied(config.dataRoot, control.generation ?? 0);
  const what = options.action === 'heal'
    ? `${options.member ?? 'every member'}: links open`
    : link.cut ? `${options.member}: cut off (its links hold everything until walship cluster heal)` : `${options.member}: links slowed by ${latencyMs} ms`;
  if (!applied) io.stderr.write(`walship: warning: the partition proxy of cluster ${config.name} does not run or did not answer: it applies this when it starts (walship cluster up)\n`);
  if (options.json === true) printJson(io.stdout, { cluster: config.name, member: options.member ?? null, action: options.action, applied, links: control.links });
  else io.stdout.write(`${what}\n`);
  return ExitCode.ok;
}
