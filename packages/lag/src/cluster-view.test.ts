import { describe, expect, it } from 'vitest';
import { withClusterView, type ClusterView } from './cluster-view.js';
import { computeLag, EMPTY_HISTORY } from './compute-lag.js';
import { renderLagReport } from './render-text.js';
import { MB, member, primarySnapshot, row, sampleAt, standbySnapshot } from './test-support.js';

const view = (overrides: Partial<ClusterView> = {}): ClusterView => ({
  name: 'local-3node', statePrimary: 'n1', stateTimeline: 1, roles: { n1: 'primary', n2: 'standby', n3: 'standby' }, stateError: null, ...overrides,
});

/** n1 primary on `timeline` with n2 streaming; n3 does not answer. */
function report(primaryName = 'n1', timeline = 1) {
  const primary = primarySnapshot({ member: primaryName, timeline, replication: [row('n2', { replayLsn: 100 * MB })] });
  return computeLag(sampleAt(1_000, member(primaryName, 1, primary), member('n2', 2, standbySnapshot('n2', { timeline })), member('n3', 3, null)), EMPTY_HISTORY).report;
}

describe('withClusterView', () => {
  it('adds the cluster and each member\'s role in the live state, and no problem when they agree', () => {
    const viewed = withClusterView(report(), view());
    expect(viewed.cluster).toEqual(view());
    expect(viewed.members.map((m) => [m.name, m.clusterRole])).toEqual([['n1', 'primary'], ['n2', 'standby'], ['n3', 'standby']]);
    expect(viewed.problems).toEqual(report().problems);
    // The figures are the arithmetic's: the view changes none of them.
    expect(viewed.members.map(({ clusterRole: _, ...rest }) => rest)).toEqual(report().members);
  });

  it('says when the state names another primary than the one answering on the highest timeline', () => {
    const viewed = withClusterView(report('n2', 2), view({ statePrimary: 'n1' }));
    expect(viewed.primary).toBe('n2');
    expect(viewed.problems).toContain('the cluster state names n1 primary, but n2 answers as primary on the highest timeline');
  });

  it('says when there is no state yet, or it cannot be read, and keeps measuring', () => {
    expect(withClusterView(report(), view({ statePrimary: null, stateTimeline: null, roles: {} })).problems)
      .toContain('cluster local-3node has no live state yet: was it ever brought up (walship cluster up)?');
    const broken = withClusterView(report(), view({ stateError: 'it is not valid JSON' }));
    expect(broken.problems).toContain('the cluster state could not be read: it is not valid JSON');
    expect(broken.primary).toBe('n1');
  });

  it('is shown above the table, a fenced member marked in its state', () => {
    // After a failover: n2 is primary on timeline 2, the old primary n1 still answers on timeline 1.
    const n2 = primarySnapshot({ member: 'n2', timeline: 2, replication: [row('n3', { replayLsn: 100 * MB })] });
    const n1 = primarySnapshot({ member: 'n1', timeline: 1, flushLsn: 90 * MB });
    const after = computeLag(sampleAt(1_000, member('n1', 1, n1), member('n2', 2, n2), member('n3', 3, standbySnapshot('n3', { timeline: 2 }))), EMPTY_HISTORY).report;
    const viewed = withClusterView(after, view({ statePrimary: 'n2', stateTimeline: 2, roles: { n1: 'fenced', n2: 'primary', n3: 'standby' } }));
    expect(viewed.problems.some((p) => p.includes('cluster state'))).toBe(false);
    const lines = renderLagReport(viewed, { thresholds: { warn: null, crit: null }, timeZone: 'UTC' });
    expect(lines[1]).toBe('cluster local-3node · state: primary n2 on timeline 2 · fenced: n1');
    expect(lines.find((l) => /^\s*n1\s/.test(l))).toMatch(/^\s*n1\s+primary\s+stale \(fenced\)\s/);
    const stopped = withClusterView(report(), view({ roles: { n1: 'primary', n2: 'standby', n3: 'uninitialized' } }));
    expect(renderLagReport(stopped, { thresholds: { warn: null, crit: null } })[1]).toBe('cluster local-3node · state: primary n1 on timeline 1 · not created: n3');
  });
});
