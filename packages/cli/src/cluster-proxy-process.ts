/**
 * The partition proxy as a process: `cluster up` starts `walship cluster proxy` detached from the
 * terminal (output in DATA_ROOT/proxy.out) when the config has `proxy:`, before any member needs
 * it; `cluster down` stops it after the members.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClusterConfig } from '@walship/cluster';
import { CliError, ExitCode } from './cli-error.js';
import { clusterFileArguments } from './cluster-monitor-process.js';

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
  mkdirSync(config.dataRoot, { recursive: true });
  const outPath = join(config.dataRoot, 'proxy.out');
  const out = openSync(outPath, 'a', 0o600);
  const program = fileURLToPath(new URL('../bin/walship.js', import.meta.url));
  const child = spawn(process.execPath, [program, 'cluster', 'proxy', ...clusterFileArguments(config, basePort)], { detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  let exited: number | null = null;
  child.once('exit', (code) => {
    exited = code ?? -1;
  });
  child.unref();
  // Ready once the last member's outbound port answers: the listeners open in member order.
  const last = config.members.at(-1)!;
  const lastPort = proxyPorts(config, last)!.outbound;
  const deadline = Date.now() + PROXY_START_TIMEOUT_MS;
  for (;;) {
    if (runningProxy(config.dataRoot)?.pid === child.pid && (await listening(config.host, lastPort))) {
      child.removeAllListeners();
      return { pid: child.pid!, started: true };
    }
    if (exited !== null || Date.now() > deadline) {
      child.removeAllListeners();
      throw new CliError(ExitCode.failed, `the partition proxy did not start${exited === null ? ` within ${PROXY_START_TIMEOUT_MS / 1000} s` : ` (it exited with status ${exited})`}`, {
        hint: `See "${outPath}": a proxy port may be taken (proxy.port_offset in the config moves them).`,
      });
    }
    await sleep(50);
  }
}
