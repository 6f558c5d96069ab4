/**
 * `walship cluster up -f FILE [--reset] [--timeout S] [--json]`: the cluster running in its
 * current roles (@walship/cluster's clusterUp: created the first time, started after, a fenced
 * old primary rejoined as a standby), then its members table. Progress on stderr.
 */
import { ExitCode } from '../cli-error.js';
import { statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureMonitor, stopMonitor } from '../cluster-monitor-process.js';
import { ensureProxy } from '../cluster-proxy-process.js';
import { currentRows, openCluster, printMembers, type ClusterFileOptions } from '../cluster-support.js';
import type { CliIo } from '../io.js';
import type { ClusterContext } from '@walship/cluster';

export interface ClusterUpOptions extends ClusterFileOptions {
  reset?: boolean;
}

/** How long `up` waits for the monitor to take over the primary's lease: its start-up and first check. */
const MONITOR_LEASE_WAIT_MS = 10_000;

/**
 * Returns once the primary holds a lease granted by the monitor (up's own grant lasts one
 * primary_lease; the monitor renews it from its first check on), so that writes right after `up`
 * are not refused. Only a warning if it does not come: the cluster runs, and the monitor's log
 * says why.
 */
async function waitForMonitorLease(ctx: ClusterContext, primary: string): Promise<void> {
  const { findMember, memberAddress } = await import('@walship/cluster');
  const address = memberAddress(ctx.config, findMember(ctx.config, primary));
  const deadline = Date.now() + MONITOR_LEASE_WAIT_MS;
  while (Date.now() < deadline) {
    const lease = (await ctx.control.status({ address, timeoutMs: 1_000 }))?.lease as { held?: boolean; grantor?: string } | undefined;
    if (lease?.held === true && lease.grantor === 'monitor') return;
    await sleep(50);
  }
  ctx.progress(`warning: ${primary} holds no lease from the failover monitor after ${MONITOR_LEASE_WAIT_MS / 1000} s: it refuses writes until it does; see ${ctx.config.dataRoot}/monitor.log`);
}

export async function run(options: ClusterUpOptions, io: CliIo): Promise<number> {
  const ctx = await openCluster(options, io);
  const { clusterUp, stopRunningProxy, runningProxy, runningMonitor } = await import('@walship/cluster');
  // The monitor and the proxy read the config when they start: after an edit, they start again.
  const editedMs = statSync(ctx.config.file).mtimeMs;
  const staleMonitor = runningMonitor(ctx.config.dataRoot);
  if (staleMonitor !== null && editedMs > Date.parse(staleMonitor.since)) {
    await stopMonitor(ctx.config);
    ctx.progress('failover monitor stopped: the config changed since it started (it starts again below)');
  }
  const staleProxy = runningProxy(ctx.config.dataRoot);
  if (staleProxy !== null && editedMs > Date.parse(staleProxy.since)) await stopRunningProxy(ctx.config.dataRoot);
  // The proxy first: the standbys' primary_conninfo goes through it.
  let proxy: { pid: number; started: boolean } | null = null;
  if (ctx.config.proxy !== null) {
    proxy = await ensureProxy(ctx.config, options.basePort);
    if (proxy.started) ctx.progress(`partition proxy started (pid ${proxy.pid})`);
  } else if ((await stopRunningProxy(ctx.config.dataRoot)) !== null) {
    ctx.progress('partition proxy stopped: the config no longer has one');
  }
  const result = await clusterUp(ctx, { ...(options.reset === true ? { reset: true } : {}), ...(options.timeout === undefined ? {} : { timeoutMs: options.timeout }) });
  let monitor: { pid: number; started: boolean } | null = null;
  if (ctx.config.failover.mode === 'automatic') {
    const ensured = await ensureMonitor(ctx.config, options.basePort);
    monitor = { pid: ensured.monitor.pid, started: ensured.started };
    if (ensured.started) ctx.progress(`failover monitor started (pid ${ensured.monitor.pid}); its decisions go to ${ctx.config.dataRoot}/monitor.log`);
    if (ctx.config.failover.enforceLease) await waitForMonitorLease(ctx, result.state.primary);
  }
  const rows = await currentRows(ctx, result.state);
  const changed = [
    result.created.length > 0 ? `created ${result.created.join(', ')}` : '',
    result.started.length > 0 ? `started ${result.started.join(', ')}` : '',
    result.rejoined.length > 0 ? `rejoined ${result.rejoined.join(', ')}` : '',
    result.fenced.length > 0 ? `left fenced ${result.fenced.join(', ')} (walship cluster rejoin)` : '',
    monitor?.started === true ? `started the failover monitor (pid ${monitor.pid})` : '',
    result.settingsChanged.length > 0
      ? `changed ${result.settingsChanged.length} setting(s) from the config${result.settingsChanged.some((change) => change.restartRequired) ? `; in force after a restart: ${result.settingsChanged.filter((change) => change.restartRequired).map((change) => `${change.member}.${change.name}`).join(', ')}` : ''}`
      : '',
  ].filter((part) => part !== '');
  const summary = `cluster ${ctx.config.name} is up${changed.length === 0 ? ' (it was already running)' : `: ${changed.join('; ')}`}\n`;
  await printMembers(
    io, ctx.config, result.state, rows,
    options.json === true ? { created: result.created, started: result.started, rejoined: result.rejoined, fenced: result.fenced, settingsChanged: result.settingsChanged, monitor, proxy } : null,
    summary,
  );
  return ExitCode.ok;
}
