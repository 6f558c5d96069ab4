import { describe, expect, it } from 'vitest';
import { parseSynchronousStandbyNames } from '@walship/replication/sync-rep-config';
import { decideFailover, type FailoverCandidate, type FailoverDecisionInput } from './failover-decision.js';

const MB = 1024 * 1024;

function candidate(name: string, lsn: number | null, extra: Partial<FailoverCandidate> = {}): FailoverCandidate {
  return { name, reachable: true, timeline: 1, lsn, syncState: null, ...extra };
}

function input(candidates: FailoverCandidate[], extra: Partial<FailoverDecisionInput> = {}): FailoverDecisionInput {
  return {
    candidates,
    promotable: candidates.map((c) => c.name),
    maximumLagOnFailoverBytes: MB,
    synchronous: null,
    primaryLsn: null,
    releasedLsn: null,
    requested: null,
    force: false,
    ...extra,
  };
}

const codes = (reasons: ReadonlyArray<{ code: string }>) => reasons.map((reason) => reason.code);

describe('asynchronous replication', () => {
  it('promotes the most advanced standby and says why', () => {
    const decision = decideFailover(input([candidate('s1', 0x3000), candidate('s2', 0x5000), candidate('s3', 0x4000)]));
    expect(decision.winner).toBe('s2');
    expect(codes(decision.reasons)).toEqual(['most_advanced']);
    expect(decision.reasons[0]!.message).toMatch(/s2 is the most advanced eligible standby: WAL to 0\/5000 on timeline 1/);
    expect(decision.candidates.map((c) => c.name)).toEqual(['s2', 's3', 's1']);
    expect(decision.candidates.every((c) => c.eligible)).toBe(true);
    expect(decision.thresholds).toMatchObject({ referenceLsn: '0/5000', referenceSource: 'most_advanced_candidate', synchronous: null, synchronousSource: null });
  });

  it('ranks a higher timeline above more WAL on an older one', () => {
    const decision = decideFailover(input([candidate('s1', 0x9000, { timeline: 1 }), candidate('s2', 0x5000, { timeline: 2 })]));
    expect(decision.winner).toBe('s2');
  });

  it('breaks ties by the policy order', () => {
    const tie = [candidate('s2', 0x5000), candidate('s1', 0x5000)];
    const byPriority = decideFailover(input(tie, { promotable: ['s2', 's1'] }));
    expect(byPriority.winner).toBe('s2');
    expect(codes(byPriority.reasons)).toEqual(['most_advanced', 'tie_broken_by_priority']);
    expect(decideFailover(input(tie, { promotable: ['s1', 's2'] })).winner).toBe('s1');
    const sameRank = decideFailover(input(tie, { promotable: [] }));
    expect(sameRank.winner).toBeNull();
  });

  it('leaves out standbys that do not answer, report no position, or the policy forbids', () => {
    const decision = decideFailover(
      input([candidate('s1', 0x9000, { reachable: false }), candidate('s2', null), candidate('s3', 0x8000), candidate('s4', 0x7000)], { promotable: ['s1', 's2', 's4'] }),
    );
    expect(decision.winner).toBe('s4');
    const verdict = Object.fromEntries(decision.candidates.map((c) => [c.name, codes(c.reasons)]));
    expect(verdict).toEqual({ s1: ['unreachable'], s2: ['no_wal_position'], s3: ['not_promotable'], s4: [] });
  });

  it('never promotes a standby lagging more than maximum_lag_on_failover, unless forced', () => {
    const candidates = [candidate('s1', 0x100000)];
    const decision = decideFailover(input(candidates, { primaryLsn: 0x100000 + 2 * MB }));
    expect(decision.winner).toBeNull();
    expect(codes(decision.reasons)).toEqual(['no_eligible_candidate']);
    expect(decision.candidates[0]).toMatchObject({ lagBytes: 2 * MB, eligible: false });
    expect(decision.candidates[0]!.reasons[0]).toMatchObject({ code: 'lag_exceeds_maximum', waived: false });
    expect(decision.thresholds).toMatchObject({ referenceSource: 'old_primary', maximumLagOnFailoverBytes: MB });

    const forced = decideFailover(input(candidates, { primaryLsn: 0x100000 + 2 * MB, force: true }));
    expect(forced.winner).toBe('s1');
    expect(forced.candidates[0]!.reasons[0]).toMatchObject({ code: 'lag_exceeds_maximum', waived: true });
    expect(codes(forced.reasons)).toEqual(['most_advanced', 'forced']);
    expect(forced.reasons[1]!.message).toMatch(/lag_exceeds_maximum set aside/);
  });

  it('measures lag from the most advanced candidate when the primary was never seen', () => {
    const decision = decideFailover(input([candidate('s1', 10 * MB), candidate('s2', 8 * MB)], { promotable: ['s2', 's1'] }));
    expect(decision.candidates.find((c) => c.name === 's2')).toMatchObject({ lagBytes: 2 * MB, eligible: false });
    expect(decision.winner).toBe('s1');
  });

  it('finds nobody when no standby answers, and force does not change that', () => {
    const candidates = [candidate('s1', 0x10, { reachable: false })];
    expect(decideFailover(input(candidates)).winner).toBeNull();
    expect(decideFailover(input(candidates, { force: true })).winner).toBeNull();
  });
});

describe('synchronous replication', () => {
  const first1 = parseSynchronousStandbyNames('FIRST 1 (s1)');

  it('never chooses the asynchronous standby over the synchronous one, even when it is ahead', () => {
    const decision = decideFailover(input([candidate('s1', 0x4000), candidate('s2', 0x5000)], { synchronous: first1 }));
    expect(decision.winner).toBe('s1');
    expect(decision.thresholds).toMatchObject({ synchronous: 'FIRST 1 (s1)', synchronousSource: 'configured', synchronousReachable: 1, synchronousRequired: 1 });
    const s2 = decision.candidates.find((c) => c.name === 's2')!;
    expect(s2).toMatchObject({ eligible: false, synchronousEligible: false });
    expect(s2.reasons[0]!.code).toBe('not_synchronous');
  });

  it('promotes nobody when the synchronous standby is gone too, unless forced', () => {
    const candidates = [candidate('s1', 0x4000, { reachable: false }), candidate('s2', 0x5000)];
    const decision = decideFailover(input(candidates, { synchronous: first1 }));
    expect(decision.winner).toBeNull();
    expect(codes(decision.reasons)).toEqual(['not_enough_synchronous_standbys']);
    expect(decision.reasons[0]!.message).toMatch(/0 of the synchronous standbys \(s1\) answer; 1 must/);
    const forced = decideFailover(input(candidates, { synchronous: first1, force: true }));
    expect(forced.winner).toBe('s2');
    expect(codes(forced.reasons)).toEqual(['not_enough_synchronous_standbys', 'most_advanced', 'forced']);
  });

  it('follows the states the primary reported under FIRST: the sync one, unless a listed one is further (it may have become sync since)', () => {
    const first1of2 = parseSynchronousStandbyNames('FIRST 1 (s1, s2)');
    // s1 potential and behind: only s2, reported sync, may hold every acknowledged commit.
    const behind = decideFailover(input([candidate('s1', 0x3000, { syncState: 'potential' }), candidate('s2', 0x4000, { syncState: 'sync' })], { synchronous: first1of2 }));
    expect(behind.winner).toBe('s2');
    expect(behind.thresholds).toMatchObject({ synchronousSource: 'reported', synchronousRequired: 1 });
    expect(behind.candidates.find((c) => c.name === 's1')!.reasons[0]!.message).toMatch(/was potential, not a synchronous standby/);
    // s1 further than s2: s1, of higher priority, may have caught up and become sync after the
    // report, and had commits acknowledged that s2 lacks; promoting s2 would lose them.
    const further = decideFailover(input([candidate('s1', 0x4000, { syncState: 'potential' }), candidate('s2', 0x3000, { syncState: 'sync' })], { synchronous: first1of2 }));
    expect(further.winner).toBe('s1');
    expect(further.thresholds.synchronousMostAdvanced).toEqual({ name: 's1', timeline: 1, lsn: '0/4000' });
    const s2 = further.candidates.find((c) => c.name === 's2')!;
    expect(codes(s2.reasons)).toEqual(['behind_synchronous_standby']);
    expect(s2.reasons[0]!.message).toMatch(/short of the listed standby \(FIRST may have made it synchronous since the last report\) s1/);
    // As advanced as each other: the one reported sync, though later in the policy's list.
    const tie = decideFailover(input([candidate('s1', 0x4000, { syncState: 'potential' }), candidate('s2', 0x4000, { syncState: 'sync' })], { synchronous: first1of2 }));
    expect(tie.winner).toBe('s2');
    expect(codes(tie.reasons)).toEqual(['most_advanced', 'tie_broken_by_synchronous_state']);
    // The one reported sync does not answer: it may hold commits nobody else has.
    const gone = decideFailover(input([candidate('s1', 0x4000, { syncState: 'potential' }), candidate('s2', 0x3000, { syncState: 'sync', reachable: false })], { synchronous: first1of2 }));
    expect(gone.winner).toBeNull();
    expect(codes(gone.reasons)).toEqual(['not_enough_synchronous_standbys']);
  });

  it('without reported states, needs N - k + 1 of the named standbys to answer, then takes the most advanced', () => {
    const first1of2 = parseSynchronousStandbyNames('FIRST 1 (s1, s2)');
    const both = decideFailover(input([candidate('s1', 0x4000), candidate('s2', 0x3000)], { synchronous: first1of2 }));
    expect(both.winner).toBe('s1');
    expect(both.thresholds.synchronousRequired).toBe(2);
    const one = decideFailover(input([candidate('s1', 0x4000, { reachable: false }), candidate('s2', 0x3000)], { synchronous: first1of2 }));
    expect(one.winner).toBeNull();
    expect(codes(one.reasons)).toEqual(['not_enough_synchronous_standbys']);
  });

  it('ANY 2 of 3: two answering quorum members are enough, and the most advanced of them wins', () => {
    const any2 = parseSynchronousStandbyNames('ANY 2 (s1, s2, s3)');
    const candidates = [
      candidate('s1', 0x4000, { syncState: 'quorum' }),
      candidate('s2', 0x6000, { syncState: 'quorum' }),
      candidate('s3', 0x7000, { syncState: 'quorum', reachable: false }),
    ];
    const decision = decideFailover(input(candidates, { synchronous: any2 }));
    expect(decision.thresholds).toMatchObject({ synchronousReachable: 2, synchronousRequired: 2 });
    expect(decision.winner).toBe('s2');
    const onlyOne = decideFailover(input([candidates[0]!, { ...candidates[1]!, reachable: false }, candidates[2]!], { synchronous: any2 }));
    expect(onlyOne.winner).toBeNull();
  });

  it('ANY 1 (s1, s2) with only s2 promotable: s2 behind s1 is not promoted, since s1 alone may hold acknowledged commits', () => {
    const any1 = parseSynchronousStandbyNames('ANY 1 (s1, s2)');
    const candidates = [candidate('s1', 0x9000, { syncState: 'quorum' }), candidate('s2', 0x5000, { syncState: 'quorum' })];
    const decision = decideFailover(input(candidates, { synchronous: any1, promotable: ['s2'] }));
    expect(decision.winner).toBeNull();
    expect(decision.thresholds.synchronousMostAdvanced).toEqual({ name: 's1', timeline: 1, lsn: '0/9000' });
    const s2 = decision.candidates.find((c) => c.name === 's2')!;
    expect(codes(s2.reasons)).toEqual(['behind_synchronous_standby']);
    expect(s2.reasons[0]!.message).toMatch(/s2 has WAL to 0\/5000 on timeline 1, short of the synchronous standby s1 \(0\/9000 on timeline 1\)/);
    // Caught up with s1, it may be promoted; and force sets the rule aside.
    expect(decideFailover(input([candidates[0]!, { ...candidates[1]!, lsn: 0x9000 }], { synchronous: any1, promotable: ['s2'] })).winner).toBe('s2');
    const forced = decideFailover(input(candidates, { synchronous: any1, promotable: ['s2'], force: true }));
    expect(forced.winner).toBe('s2');
    expect(forced.reasons.at(-1)!.message).toMatch(/behind_synchronous_standby set aside/);
  });

  it('refuses a standby short of the position released to synchronous commits', () => {
    const star = parseSynchronousStandbyNames('FIRST 1 (*)');
    const decision = decideFailover(input([candidate('s1', 0x3000), candidate('s2', 0x2000)], { synchronous: star, releasedLsn: 0x3000, requested: 's2' }));
    expect(decision.winner).toBeNull();
    expect(codes(decision.reasons)).toEqual(['requested_not_eligible']);
    expect(decision.reasons[0]!.message).toMatch(/short of 0\/3000 already acknowledged/);
  });
});

describe('a requested standby', () => {
  it('wins when it is eligible and as advanced as the best', () => {
    const decision = decideFailover(input([candidate('s1', 0x5000), candidate('s2', 0x5000)], { requested: 's2' }));
    expect(decision.winner).toBe('s2');
    expect(codes(decision.reasons)).toEqual(['requested']);
  });

  it('is refused when behind another standby, unless forced', () => {
    const candidates = [candidate('s1', 0x5000), candidate('s2', 0x4000)];
    const decision = decideFailover(input(candidates, { requested: 's2' }));
    expect(decision.winner).toBeNull();
    expect(decision.reasons[0]).toMatchObject({ code: 'requested_behind', waived: false });
    expect(decision.reasons[0]!.message).toMatch(/s2 is behind s1 \(4096 bytes\)/);
    const forced = decideFailover(input(candidates, { requested: 's2', force: true }));
    expect(forced.winner).toBe('s2');
    expect(codes(forced.reasons)).toEqual(['requested_behind', 'requested', 'forced']);
  });

  it('is refused when unknown or not eligible, even when forced', () => {
    expect(codes(decideFailover(input([candidate('s1', 1)], { requested: 'zz', force: true })).reasons)).toEqual(['requested_unknown']);
    const unreachable = decideFailover(input([candidate('s1', 5), candidate('s2', 5, { reachable: false })], { requested: 's2', force: true }));
    expect(unreachable.winner).toBeNull();
    expect(unreachable.reasons[0]!.message).toMatch(/s2 may not be promoted: s2 does not answer/);
  });
});

describe('the relaxed synchronous mode', () => {
  const first1 = parseSynchronousStandbyNames('FIRST 1 (s1, s2)');

  it('after a change of synchronous_standby_names (no states reported yet), needs enough listed standbys to answer, and the winner past the released position', () => {
    // s1 is down; the monitor named s2 too. Until the primary reports states again, both must answer.
    const oneAnswers = decideFailover(input([candidate('s1', null, { reachable: false }), candidate('s2', 0x5000)], { synchronous: first1, releasedLsn: 0x4000 }));
    expect(oneAnswers.winner).toBeNull();
    expect(codes(oneAnswers.reasons)).toEqual(['not_enough_synchronous_standbys']);
    const both = decideFailover(input([candidate('s1', 0x4000), candidate('s2', 0x5000)], { synchronous: first1, releasedLsn: 0x4000 }));
    expect(both.winner).toBe('s2');
    // The standby that took over is behind what s1 had confirmed: it may miss acknowledged commits.
    const behind = decideFailover(input([candidate('s1', null, { reachable: false }), candidate('s2', 0x3000, { syncState: 'sync' })], { synchronous: first1, releasedLsn: 0x4000 }));
    expect(behind.winner).toBeNull();
    expect(codes(behind.candidates.find((c) => c.name === 's2')!.reasons)).toContain('behind_released_position');
  });

  it('promotes nobody after it turned synchronous replication off, unless forced', () => {
    const decision = decideFailover(input([candidate('s1', 0x5000), candidate('s2', 0x4000)], { synchronousDisabled: true }));
    expect(decision.winner).toBeNull();
    expect(decision.thresholds.synchronousDisabled).toBe(true);
    expect(codes(decision.candidates[0]!.reasons)).toEqual(['synchronous_disabled']);
    const forced = decideFailover(input([candidate('s1', 0x5000), candidate('s2', 0x4000)], { synchronousDisabled: true, force: true }));
    expect(forced.winner).toBe('s1');
    expect(codes(forced.reasons)).toContain('forced');
  });
});
