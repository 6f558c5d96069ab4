import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseClusterConfig } from './config.js';
import type { ClusterContext } from './context.js';
import { acquireClusterLock } from './lock.js';
import { memberAction } from './member-actions.js';
import type { NodeControl, NodeStatusView } from './node-control.js';
import { initialClusterState, writeClusterState } from './state.js';
import { tempDataRoot } from './test-support.js';

const CONFIG = `
name: restarting
base_port: 6500
data_root: /unused
nodes:
  - {name: n1, port_offset: 0}
  - {name: s1, port_offset: 1}
`;

let dataRoot: string;
tempDataRoot('walship-restart-', (path) => (dataRoot = path));

describe("memberAction start for the monitor's restarts (settle: false)", () => {
  // Stand-in nodes: s1 "starts" by writing a postmaster.pid naming this test process, and never
  // streams; a standby that takes its time to catch up cannot be made on demand on real ones.
  function setUp(): { ctx: ClusterContext; calls: string[] } {
    const config = parseClusterConfig(CONFIG, '/configs/restarting.yaml', { dataRoot });
    for (const name of ['n1', 's1']) mkdirSync(join(dataRoot, name, 'global'), { recursive: true });
    const base = initialClusterState(config);
    writeClusterState(dataRoot, { ...base, members: { n1: { role: 'primary', timeline: 1, fence: null }, s1: { role: 'standby', timeline: 1, fence: null } } });
    const calls: string[] = [];
    const standby: NodeStatusView = { role: 'standby', systemId: '1', timeline: 1, flushLsn: '0/0', receiveLsn: null, replayLsn: null, walReceiver: null };
    const control = {
      setSettings: async () => {
        calls.push('setSettings');
        return { reloaded: false };
      },
      start: async ({ dataDir }: { dataDir: string }) => {
        calls.push('start');
        writeFileSync(join(dataDir, 'postmaster.pid'), `${process.pid}\n${dataDir}\n`);
      },
      status: async () => {
        calls.push('status');
        return standby;
      },
    } as unknown as NodeControl;
    return { ctx: { config, control, progress: () => undefined }, calls };
  }

  it('lets go of the lock as soon as the member runs, without waiting for it to stream', async () => {
    const { ctx, calls } = setUp();
    const result = await memberAction(ctx, 'start', 's1', { timeoutMs: 300, settle: false });
    expect(result).toMatchObject({ changed: true, pid: process.pid });
    expect(calls).toEqual(['setSettings', 'start']);
    // A failover could take the lock now.
    (await acquireClusterLock(dataRoot, 'walship cluster failover', 0)).release();
  });

  it('otherwise waits, under the lock, until the member streams', async () => {
    const { ctx, calls } = setUp();
    await expect(memberAction(ctx, 'start', 's1', { timeoutMs: 300 })).rejects.toThrow(/s1 to stream/);
    expect(calls).toContain('status');
  });
});
