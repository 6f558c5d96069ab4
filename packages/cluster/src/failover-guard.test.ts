import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseClusterConfig } from './config.js';
import type { ClusterContext } from './context.js';
import { clusterFailover } from './failover.js';
import { oldPrimaryTreatment, staleFailoverReason } from './failover-guard.js';
import type { NodeControl } from './node-control.js';
import { initialClusterState, stateFilePath, withNewPrimary, writeClusterState, type ClusterState } from './state.js';
import { running, tempDataRoot } from './test-support.js';

const CONFIG = `
name: guard
base_port: 6100
data_root: /unused
failover: {mode: automatic}
nodes:
  - {name: n1, port_offset: 0}
  - {name: s1, port_offset: 1}
  - {name: s2, port_offset: 2}
`;

let dataRoot: string;
tempDataRoot('walship-guard-', (path) => (dataRoot = path));

const config = () => parseClusterConfig(CONFIG, '/configs/guard.yaml', { dataRoot });

describe('staleFailoverReason', () => {
  const state = { ...running(initialClusterState(config())), generation: 7 };

  it('lets a failover go ahead on the primary and the generation it was decided on', () => {
    expect(staleFailoverReason(state, { primary: 'n1', generation: 7 })).toBeNull();
    expect(staleFailoverReason(state, null)).toBeNull();
  });

  it('abandons it when another primary is named, or when the state changed at all', () => {
    const promoted = { ...withNewPrimary(state, 's1', 2, { fence: null }), generation: 8 };
    expect(staleFailoverReason(promoted, { primary: 'n1', generation: 7 })).toMatch(/names s1 as the primary now, not n1/);
    expect(staleFailoverReason({ ...state, generation: 8 }, { primary: 'n1', generation: 7 })).toMatch(/generation 7 when n1 was judged gone, 8 now/);
  });
});

describe('oldPrimaryTreatment', () => {
  it('leaves running only the primary whose lease was timed; any other running one is killed', () => {
    expect(oldPrimaryTreatment({ oldPrimary: 'n1', running: true, enforceLease: true, leaseTimedFor: 'n1' })).toBe('lease');
    // The state names s1 now (promoted by hand): its lease was renewed, nobody timed it.
    expect(oldPrimaryTreatment({ oldPrimary: 's1', running: true, enforceLease: true, leaseTimedFor: 'n1' })).toBe('kill');
    expect(oldPrimaryTreatment({ oldPrimary: 'n1', running: true, enforceLease: true, leaseTimedFor: null })).toBe('kill');
    expect(oldPrimaryTreatment({ oldPrimary: 'n1', running: true, enforceLease: false, leaseTimedFor: 'n1' })).toBe('kill');
    expect(oldPrimaryTreatment({ oldPrimary: 'n1', running: false, enforceLease: true, leaseTimedFor: 'n1' })).toBe('dead');
  });
});

describe('clusterFailover on an expectation', () => {
  // No node runs in this test: a control that fails on any call shows the failover touched none.
  const untouchable = new Proxy({} as NodeControl, {
    get: (_target, name) => () => Promise.reject(new Error(`the failover asked a node for ${String(name)}`)),
  });
  const ctx = (): ClusterContext => ({ config: config(), control: untouchable, progress: () => undefined });

  it('does nothing when a person promoted another member while the monitor waited for the lock', async () => {
    const judged = writeClusterState(dataRoot, running(initialClusterState(config())));
    // `cluster failover` made s1 the primary meanwhile.
    const now = writeClusterState(dataRoot, withNewPrimary(judged, 's1', 2, { fence: { at: 'then', reason: 'failover to s1', timeline: 1, newPrimary: 's1' } }));
    for (const name of ['n1', 's1', 's2']) mkdirSync(join(dataRoot, name), { recursive: true });
    const before = readFileSync(stateFilePath(dataRoot), 'utf8');
    await expect(clusterFailover(ctx(), { initiator: 'monitor', expected: { primary: 'n1', generation: judged.generation }, leaseTimedFor: 'n1' })).rejects.toMatchObject({
      code: 'cluster_state_changed',
      message: expect.stringMatching(/failover abandoned: the state names s1 as the primary now, not n1/),
    });
    expect(readFileSync(stateFilePath(dataRoot), 'utf8')).toBe(before);
    expect(existsSync(join(dataRoot, 's1', 'standby.signal'))).toBe(false);
    expect(now.primary).toBe('s1');
  });

  it('does nothing when the state changed under the same primary', async () => {
    const judged = writeClusterState(dataRoot, running(initialClusterState(config())));
    writeClusterState(dataRoot, judged);
    await expect(clusterFailover(ctx(), { initiator: 'monitor', expected: { primary: 'n1', generation: judged.generation }, leaseTimedFor: 'n1' })).rejects.toMatchObject({
      code: 'cluster_state_changed',
    });
  });
});
