import { initialClusterState, parseClusterConfig, withMember, withNewPrimary, type ClusterState } from '@walship/cluster';
import { computeLag, EMPTY_HISTORY, type LagReport } from '@walship/lag';
import { describe, expect, it } from 'vitest';
import { clusterMemberSource, clusterViewOf, membersFromCluster } from './cluster-members.js';

const CONFIG = `
name: lab
host: 127.0.0.1
base_port: 7000
data_root: /tmp/walship-lab-unused
nodes:
  - name: alpha
    port_offset: 0
  - name: beta_2
    port_offset: 1
  - name: c
    port_offset: 5
`;

const config = (basePort?: number) => parseClusterConfig(CONFIG, '/tmp/lab.yaml', basePort === undefined ? {} : { basePort });

/** A state after `cluster up`: every member created, alpha primary. */
function upState(): ClusterState {
  let state = initialClusterState(config());
  for (const name of ['alpha', 'beta_2', 'c']) state = withMember(state, name, { role: name === 'alpha' ? 'primary' : 'standby', timeline: 1 });
  return state;
}

/** A report in which nobody answered (only the annotations matter here). */
function emptyReport(): LagReport {
  return computeLag({ timeMs: 0, members: [] }, EMPTY_HISTORY).report;
}

describe('walship lag -f: the members of a cluster config', () => {
  it('are the config\'s members, names exact, on its host and ports (with --base-port), the state\'s primary first', () => {
    expect(membersFromCluster(config(), null)).toEqual([
      { name: 'alpha', host: '127.0.0.1', port: 7000 },
      { name: 'beta_2', host: '127.0.0.1', port: 7001 },
      { name: 'c', host: '127.0.0.1', port: 7005 },
    ]);
    expect(membersFromCluster(config(9000), null).map((m) => m.port)).toEqual([9000, 9001, 9005]);
    const failedOver = withNewPrimary(upState(), 'c', 2, { fence: { at: '2026-01-01T00:00:00Z', reason: 'test', timeline: 1, newPrimary: 'c' } });
    expect(membersFromCluster(config(), failedOver).map((m) => m.name)).toEqual(['c', 'alpha', 'beta_2']);
  });

  it('follow the live state from one sample to the next, and survive a state that cannot be read', () => {
    let state: ClusterState | null = null;
    let broken = false;
    const source = clusterMemberSource(config(), () => {
      if (broken) throw new Error('it is not valid JSON');
      return state;
    });
    expect(source.members().map((m) => m.name)).toEqual(['alpha', 'beta_2', 'c']);
    expect(source.annotate(emptyReport()).cluster).toEqual({ name: 'lab', statePrimary: null, stateTimeline: null, roles: {}, stateError: null });

    state = upState();
    source.members();
    expect(source.annotate(emptyReport()).cluster).toMatchObject({ statePrimary: 'alpha', stateTimeline: 1, roles: { alpha: 'primary', beta_2: 'standby', c: 'standby' } });

    state = withNewPrimary(state, 'beta_2', 2, { fence: { at: '2026-01-01T00:00:00Z', reason: 'test', timeline: 1, newPrimary: 'beta_2' } });
    expect(source.members().map((m) => m.name)).toEqual(['beta_2', 'alpha', 'c']);
    expect(source.annotate(emptyReport()).cluster).toMatchObject({ statePrimary: 'beta_2', stateTimeline: 2, roles: { alpha: 'fenced', beta_2: 'primary' } });

    broken = true;
    // The members stay as last read; the view says why the state is missing.
    expect(source.members().map((m) => m.name)).toEqual(['beta_2', 'alpha', 'c']);
    const annotated = source.annotate(emptyReport());
    expect(annotated.cluster).toMatchObject({ statePrimary: null, stateError: 'it is not valid JSON' });
    expect(annotated.problems).toContain('the cluster state could not be read: it is not valid JSON');
    expect(source.unreachableHint).toContain('walship cluster up -f /tmp/lab.yaml');
  });

  it('shows a member the state does not know yet as uninitialized', () => {
    const partial = { ...upState(), members: { alpha: { role: 'primary' as const, timeline: 1, fence: null } } };
    expect(clusterViewOf(config(), partial, null).roles).toEqual({ alpha: 'primary', beta_2: 'uninitialized', c: 'uninitialized' });
  });
});
