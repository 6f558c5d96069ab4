import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseClusterConfig } from './config.js';
import type { ClusterContext } from './context.js';
import { runMonitor } from './monitor.js';
import { errorBackoffMs } from './monitor-core.js';
import { monitorLogPath, type MonitorLogEntry } from './monitor-files.js';
import type { NodeControl } from './node-control.js';
import { stateFilePath } from './state.js';

const CONFIG = `
name: monitored
base_port: 6300
data_root: /unused
failover: {mode: automatic, health_check_interval: 50ms}
nodes:
  - {name: n1, port_offset: 0}
  - {name: s1, port_offset: 1}
`;

let dataRoot: string;
beforeEach(() => {
  dataRoot = mkdtempSync(join(tmpdir(), 'walship-monitor-'));
});
afterEach(() => {
  rmSync(dataRoot, { recursive: true, force: true });
});

describe('errorBackoffMs', () => {
  it('waits one interval after the first error, doubling, at most 5 s', () => {
    const policy = { healthCheckIntervalMs: 300, missedChecks: 3, primaryLeaseMs: 1000 };
    expect([0, 1, 2, 3, 5, 100].map((errors) => errorBackoffMs(policy, errors))).toEqual([0, 300, 600, 1200, 4800, 5000]);
  });
});

describe('runMonitor', () => {
  it('logs an error in a turn (a damaged state file) and carries on, with backoff, until stopped', async () => {
    // No node runs here: the state cannot be read, so the monitor must ask none.
    const control = new Proxy({} as NodeControl, { get: (_target, name) => () => Promise.reject(new Error(`the monitor asked a node for ${String(name)}`)) });
    const ctx: ClusterContext = { config: parseClusterConfig(CONFIG, '/configs/monitored.yaml', { dataRoot }), control, progress: () => undefined };
    writeFileSync(stateFilePath(dataRoot), '{"version": 1, "cluster": ');
    const entries: MonitorLogEntry[] = [];
    const stop = new AbortController();
    let monitorRun: Promise<void> | null = null;
    const errorsSeen = new Promise<void>((resolve) => {
      const running = runMonitor(ctx, {
        signal: stop.signal,
        onEntry: (entry) => {
          entries.push(entry);
          if (entries.filter((e) => e.event === 'error').length === 3) resolve();
        },
      });
      void running.finally(() => resolve());
      monitorRun = running;
    });
    await errorsSeen;
    stop.abort();
    await expect(monitorRun!).resolves.toBeUndefined();
    const errors = entries.filter((entry) => entry.event === 'error');
    expect(errors.length).toBeGreaterThanOrEqual(3);
    expect(errors[0]).toMatchObject({ code: 'invalid_cluster_state', consecutive: 1, retryInMs: 50 });
    expect(String(errors[0]!.message)).toMatch(/cluster-state\.json" is damaged/);
    expect(errors[2]).toMatchObject({ consecutive: 3, retryInMs: 200 });
    expect(entries.at(-1)!.event).toBe('stopped');
    const logged = readFileSync(monitorLogPath(dataRoot), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { event: string });
    expect(logged.map((entry) => entry.event)).toContain('error');
  });
});
