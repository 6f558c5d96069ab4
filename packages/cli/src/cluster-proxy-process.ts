/**
 * The partition proxy as a process: `cluster up` starts `walship cluster proxy` detached from the
 * terminal (output in DATA_ROOT/proxy.out) when the config has `proxy:`, before any member needs
 * it; `cluster down` stops it after the members.
 */
import * as net from 'node:net';
import { join } from 'node:path';
import type { ClusterConfig } from '@walship/cluster';
import { clusterFileArguments } from './cluster-monitor-process.js';
import { startDetached } from './detached-process.js';

/** Node start-up, loading the cluster package, binding two ports per member. */
const PROXY_START_TIMEOUT_MS = 15_000;

function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Starts the proxy unless one runs; returns its pid and whether this call started it. */
export async function ensureProxy(config: ClusterConfig, basePort: number | undefined): Promise<{ pid: number; started: boolean }> {
  const { runningProxy, proxyPorts } = await import('@walship/cluster');
  const running = runningProxy(config.dataRoot);
  if (running !== null) return { pid: running.pid, started: false };
  const outPath = join(config.dataRoot, 'proxy.out');
  // Ready once the last member's outbound port answers: the listeners open in member order.
  const last = config.members.at(-1)!;
  const lastPort = proxyPorts(config, last)!.outbound;
  const pid = await startDetached({
    args: ['cluster', 'proxy', ...clusterFileArguments(config, basePort)],
    outPath,
    what: 'the partition proxy',
    timeoutMs: PROXY_START_TIMEOUT_MS,
    hint: `See "${outPath}": a proxy port may be taken (proxy.port_offset in the config moves them).`,
    ready: async (pid) => (runningProxy(config.dataRoot)?.pid === pid && (await listening(config.host, lastPort)) ? pid : null),
  });
  return { pid, started: true };
}
