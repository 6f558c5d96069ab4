import { describe, expect, it } from 'vitest';
import { parseClusterConfig } from './config.js';
import type { ClusterContext } from './context.js';
import type { NodeControl, NodeStatusView } from './node-control.js';
import { initialClusterState, readClusterState, writeClusterState, type SynchronousNamesRecord } from './state.js';
import { changeSynchronousNames } from './synchronous-change.js';
import { recordedSynchronousNames } from './synchronous-record.js';
import { running, tempDataRoot } from './test-support.js';

const CONFIG = `
name: relaxed
base_port: 6600
data_root: /unused
synchronous_standby_names: FIRST 1 (s1)
nodes:
  - {name: n1, port_offset: 0}
  - {name: s1, port_offset: 1}
  - {name: s2, port_offset: 2}
`;

let dataRoot: string;
tempDataRoot('walship-synchronous-change-', (path) => (dataRoot = path));

const primaryStatus = (names: string, released: string): NodeStatusView => ({
  role: 'primary', systemId: '1', timeline: 1, flushLsn: '0/6000', receiveLsn: null, replayLsn: null, syncReleasedLsn: released, synchronousStandbyNames: names, replication: [],
});

/**
 * A stand-in primary: the moment between the state's intent and the reload cannot be looked at
 * on a real node, so its setSettings notes what the state file said when it was asked, and its
 * status reports `inForce` afterwards (what a reload that took, or did not, leaves).
 */
function setUp(record: SynchronousNamesRecord | null, inForce: (asked: string) => string) {
  const config = parseClusterConfig(CONFIG, '/configs/relaxed.yaml', { dataRoot });
  writeClusterState(dataRoot, { ...running(initialClusterState(config)), synchronousNames: record });
  // What a failover decided at the moment of the reload would judge by.
  const seenAtReload: string[] = [];
  let asked = '';
  const control = {
    setSettings: async ({ settings }: { settings: Array<[string, string]> }) => {
      seenAtReload.push(recordedSynchronousNames(config, readClusterState(dataRoot)!));
      asked = settings[0]![1];
      return { reloaded: true };
    },
    status: async () => primaryStatus(inForce(asked), '0/5000'),
  } as unknown as NodeControl;
  const ctx: ClusterContext = { config, control, progress: () => undefined };
  return { ctx, seenAtReload };
}

describe("the relaxed mode's change of synchronous_standby_names", () => {
  it('records the union of the names before and after it first, then the new names with the floor read once they are in force', async () => {
    const { ctx, seenAtReload } = setUp({ primary: 'n1', names: 'FIRST 1 (s1)' }, (asked) => asked);
    const change = await changeSynchronousNames(ctx, 'n1', primaryStatus('FIRST 1 (s1)', '0/4000'), 'FIRST 1 (s1)', 'FIRST 1 (s1, s2)', ['s1']);
    expect(change).toMatchObject({ from: 'FIRST 1 (s1)', to: 'FIRST 1 (s1, s2)', releasedLsn: '0/5000' });
    expect(seenAtReload).toEqual(['FIRST 1 (s1, s2)']);
    const after = readClusterState(dataRoot)!;
    expect(after.synchronousNames).toEqual({ primary: 'n1', names: 'FIRST 1 (s1, s2)' });
    expect(after.observation).toMatchObject({ synchronousStandbyNames: 'FIRST 1 (s1, s2)', releasedLsn: '0/5000' });
  });

  it('back to the config: s2 stays in the record until the primary runs without it, so a commit only s2 confirmed is not forgotten', async () => {
    const { ctx, seenAtReload } = setUp({ primary: 'n1', names: 'FIRST 1 (s1, s2)' }, (asked) => asked);
    await changeSynchronousNames(ctx, 'n1', primaryStatus('FIRST 1 (s1, s2)', '0/4000'), 'FIRST 1 (s1, s2)', 'FIRST 1 (s1)', []);
    expect(seenAtReload).toEqual(['FIRST 1 (s1, s2)']);
    expect(readClusterState(dataRoot)!.synchronousNames).toEqual({ primary: 'n1', names: 'FIRST 1 (s1)' });
  });

  it('keeps the union when the primary does not report the new names (the reload did not take)', async () => {
    const { ctx } = setUp(null, () => 'FIRST 1 (s1, s2)');
    await changeSynchronousNames(ctx, 'n1', primaryStatus('FIRST 1 (s1, s2)', '0/4000'), 'FIRST 1 (s1, s2)', 'FIRST 1 (s1)', []);
    expect(readClusterState(dataRoot)!.synchronousNames).toEqual({ primary: 'n1', names: 'FIRST 1 (s1, s2)' });
  });
});
