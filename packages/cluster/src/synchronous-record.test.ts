import { describe, expect, it } from 'vitest';
import { parseSynchronousStandbyNames } from '@walship/replication/sync-rep-config';
import { parseClusterConfig } from './config.js';
import { decideFailover, type FailoverCandidate } from './failover-decision.js';
import { initialClusterState, withMember, withNewPrimary, type ClusterState, type PrimaryObservation } from './state.js';
import { promotionSynchronousNames, recordedSynchronousNames, unionSynchronousNames, withRecordOfNamesInForce } from './synchronous-record.js';
import { running } from './test-support.js';

/** local-3node.yaml's shape: n1 primary, s1 synchronous, s2 asynchronous. */
const THREE = `
name: three
base_port: 6000
data_root: /unused
synchronous_standby_names: FIRST 1 (s1)
failover:
  synchronous_mode: relaxed
nodes:
  - {name: n1, port_offset: 0}
  - {name: s1, port_offset: 1}
  - {name: s2, port_offset: 2}
`;
const config = (text = THREE) => parseClusterConfig(text, '/configs/three.yaml');
const strict = () => config(THREE.replace('synchronous_mode: relaxed', 'synchronous_mode: strict'));
const quorum = () => config(THREE.replace('FIRST 1 (s1)', 'ANY 2 (n1, s1, s2)'));

const FENCE = { at: '2026-01-01T00:00:00Z', reason: 'switchover to n1', timeline: 2, newPrimary: 'n1' };

/** The state with `primary` the primary on timeline 2 and the others standbys. */
function primaryIs(primary: string, c = config()): ClusterState {
  const state = running({ ...initialClusterState(c), primary });
  return { ...state, timeline: 2 };
}

/** The state a switchover from `from` to `to` writes once `to` is promoted, with the names the transition gave it. */
function switchedOver(from: string, to: string, c = config()): ClusterState {
  const before = primaryIs(from, c);
  const synchronousStandbyNames = promotionSynchronousNames(c, before, to, { kind: 'switchover', unavailable: [] });
  const transition = { kind: 'switchover' as const, from, to, fromTimeline: 2, startedAt: FENCE.at, fence: FENCE, synchronousStandbyNames };
  return withNewPrimary({ ...before, transition }, to, 3, { fence: null });
}

function observation(primary: string, names: string, timeline = 3): PrimaryObservation {
  return { at: FENCE.at, primary, timeline, flushLsn: '0/5000', releasedLsn: '0/4000', synchronousStandbyNames: names, standbys: [] };
}

const candidate = (name: string, lsn: number | null, extra: Partial<FailoverCandidate> = {}): FailoverCandidate => ({ name, reachable: true, timeline: 3, lsn, syncState: null, ...extra });

/** The decision after the primary the state names is gone, judged by the names the state records. */
function decide(c: ReturnType<typeof config>, state: ClusterState, candidates: FailoverCandidate[]) {
  return decideFailover({
    candidates,
    promotable: ['s1', 's2', 'n1'],
    maximumLagOnFailoverBytes: 16 * 1024 * 1024,
    synchronous: parseSynchronousStandbyNames(recordedSynchronousNames(c, state)),
    primaryLsn: null,
    releasedLsn: null,
    requested: null,
    force: false,
  });
}

describe('the union of two synchronous_standby_names', () => {
  it('names every member of both and waits for the smaller count', () => {
    expect(unionSynchronousNames('FIRST 1 (s1)', 'FIRST 1 (s1, s2)')).toBe('FIRST 1 (s1, s2)');
    expect(unionSynchronousNames('FIRST 1 (s1, s2)', 'FIRST 1 (s1)')).toBe('FIRST 1 (s1, s2)');
    expect(unionSynchronousNames('FIRST 1 (s2)', 'FIRST 1 (S1)')).toBe('FIRST 1 (s2, S1)');
    expect(unionSynchronousNames('ANY 2 (s1, s2)', 'ANY 1 (s2, n1)')).toBe('ANY 1 (s1, s2, n1)');
    expect(unionSynchronousNames('s1', 'FIRST 1 (s1)')).toBe('s1');
  });

  it('is the other one when one is off', () => {
    expect(unionSynchronousNames('', 'FIRST 1 (s1)')).toBe('FIRST 1 (s1)');
    expect(unionSynchronousNames('FIRST 1 (s1)', '')).toBe('FIRST 1 (s1)');
    expect(unionSynchronousNames('', '')).toBe('');
  });
});

describe('the synchronous names a promoted member is given', () => {
  it('after a switchover, a streaming standby stands in for the old primary while it restarts', () => {
    // Back to n1: the config's FIRST 1 (s1) would make n1's first commits wait for s1's restart.
    expect(promotionSynchronousNames(config(), primaryIs('s1'), 'n1', { kind: 'switchover', unavailable: [] })).toBe('FIRST 1 (s1, s2)');
    // To s1: its place goes to the members the list does not name, but not to the restarting n1.
    expect(promotionSynchronousNames(config(), primaryIs('n1'), 's1', { kind: 'switchover', unavailable: [] })).toBe('FIRST 1 (s2)');
  });

  it("with the strict mode, or when a stand-in cannot keep the count, it is the config's rule", () => {
    expect(promotionSynchronousNames(strict(), primaryIs('s1', strict()), 'n1', { kind: 'switchover', unavailable: [] })).toBe('FIRST 1 (s1)');
    expect(promotionSynchronousNames(strict(), primaryIs('n1', strict()), 's1', { kind: 'switchover', unavailable: [] })).toBe('FIRST 1 (n1, s2)');
    // ANY 2 with one other standby: the commits wait for the old primary, never for fewer.
    expect(promotionSynchronousNames(quorum(), primaryIs('s1', quorum()), 'n1', { kind: 'switchover', unavailable: [] })).toBe('ANY 2 (s1, s2)');
  });

  it('after a failover, the fenced old primary is left out', () => {
    expect(promotionSynchronousNames(config(), primaryIs('n1'), 's1', { kind: 'failover', unavailable: ['n1'] })).toBe('FIRST 1 (s2)');
    expect(promotionSynchronousNames(config(), primaryIs('s1'), 'n1', { kind: 'failover', unavailable: ['s1'] })).toBe('FIRST 1 (s1, s2)');
  });
});

describe('the synchronous names the state records', () => {
  it('are the ones the transition gave the new primary, and the decision judges by them', () => {
    const state = switchedOver('s1', 'n1');
    expect(state.synchronousNames).toEqual({ primary: 'n1', names: 'FIRST 1 (s1, s2)' });
    expect(state.members.s1!.role).toBe('standby');
    expect(recordedSynchronousNames(config(), state)).toBe('FIRST 1 (s1, s2)');
  });

  it('keep a failover in the window safe: s2 acknowledged while s1 restarted, so s1 is not promoted over it', () => {
    const c = config();
    const state = switchedOver('s1', 'n1');
    // n1 acknowledged commits up to 0x5000 with s2; s1, back, has only up to 0x4000.
    const both = decide(c, state, [candidate('s1', 0x4000), candidate('s2', 0x5000)]);
    expect(both.winner).toBe('s2');
    expect(both.thresholds).toMatchObject({ synchronous: 'FIRST 1 (s1, s2)', synchronousSource: 'configured', synchronousRequired: 2 });
    // Judged by the config's rule (FIRST 1 (s1)), s1 would have won and lost those commits.
    const byRule = decide(c, { ...state, synchronousNames: null }, [candidate('s1', 0x4000), candidate('s2', 0x5000)]);
    expect(byRule.winner).toBe('s1');
    // s1 still restarting (it does not answer): s2 alone cannot be known to hold every acknowledged commit under FIRST 1 of 2.
    const restarting = decide(c, state, [candidate('s1', null, { reachable: false }), candidate('s2', 0x5000)]);
    expect(restarting.winner).toBeNull();
    expect(restarting.reasons.map((reason) => reason.code)).toEqual(['not_enough_synchronous_standbys']);
  });

  it('with the old primary fenced (its rejoin failed, it was stopped before it could acknowledge), s2 is promoted', () => {
    const c = config();
    const state = withMember(switchedOver('s1', 'n1'), 's1', { role: 'fenced', fence: FENCE });
    // The fenced member is no candidate (failoverCandidates); the list keeps it, the stand-in is enough.
    expect(recordedSynchronousNames(c, state)).toBe('FIRST 1 (s1, s2)');
    const decision = decide(c, state, [candidate('s2', 0x5000)]);
    expect(decision.winner).toBe('s2');
    expect(decision.thresholds).toMatchObject({ synchronousReachable: 1, synchronousRequired: 1 });
  });

  it("are joined with the config's rule for the state, which a reload after a rejoin applies once the state is written", () => {
    const c = config();
    // To s1 with FIRST 1 (s2); n1's rejoin writes the state, then reloads s1 with FIRST 1 (n1, s2).
    const state = switchedOver('n1', 's1');
    expect(state.synchronousNames!.names).toBe('FIRST 1 (s2)');
    expect(recordedSynchronousNames(c, state)).toBe('FIRST 1 (s2, n1)');
  });

  it('fall back to the last observation, then to the rule, without a record for this primary', () => {
    const c = config();
    const state = primaryIs('n1');
    expect(recordedSynchronousNames(c, state)).toBe('FIRST 1 (s1)');
    expect(recordedSynchronousNames(c, { ...state, synchronousNames: { primary: 's1', names: 'FIRST 1 (s2)' } })).toBe('FIRST 1 (s1)');
    expect(recordedSynchronousNames(c, { ...state, observation: observation('n1', 'FIRST 1 (s1, s2)', 2) })).toBe('FIRST 1 (s1, s2)');
  });

  it('come back to the names the primary reports in force once it is observed with them', () => {
    const state = switchedOver('s1', 'n1');
    expect(withRecordOfNamesInForce(state)).toBeNull();
    const observed = { ...state, observation: observation('n1', 'FIRST 1 (s1)') };
    expect(withRecordOfNamesInForce(observed)!.synchronousNames).toEqual({ primary: 'n1', names: 'FIRST 1 (s1)' });
    expect(withRecordOfNamesInForce({ ...observed, synchronousNames: { primary: 'n1', names: 'FIRST 1 (s1)' } })).toBeNull();
    // An observation of another primary or timeline says nothing of this one.
    expect(withRecordOfNamesInForce({ ...state, observation: observation('s1', 'FIRST 1 (n1, s2)') })).toBeNull();
    expect(withRecordOfNamesInForce({ ...state, observation: observation('n1', 'FIRST 1 (s1)', 2) })).toBeNull();
  });
});
