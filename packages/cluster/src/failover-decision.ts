/**
 * The failover decision: which standby to promote when the primary is gone, and why. A pure
 * function of what the caller saw (each standby's WAL position, timeline and synchronous state,
 * the old primary's last known position, the policy); the caller does the probing, promoting and
 * logging. The decision is returned as structured data (every candidate with its verdict and
 * reasons, the thresholds used, the winner's reasons) so that `cluster history` can show it and
 * tests can assert on it.
 *
 * The rules, in the order they are applied:
 *   1. A candidate must answer (reachable), have a WAL position, and be allowed by the policy
 *      (`failover.candidates`).
 *   2. With synchronous replication, only a standby that may hold every commit acknowledged to a
 *      client is eligible (Patroni's synchronous-mode rule): one the old primary reported as
 *      `sync` (FIRST) or `quorum` (ANY) when it last reported states, otherwise one named by
 *      synchronous_standby_names; and, when the last position released to synchronous commits
 *      is known, one whose WAL reaches it. Enough of those must answer that at least one of them
 *      is sure to hold every acknowledged commit: 1 of the reported synchronous standbys under
 *      FIRST, and N - k + 1 of N under ANY k (or when no states were reported), so that any k
 *      which acknowledged overlap the ones that answer. Otherwise nobody is promoted. And the
 *      winner must be as advanced as every synchronous standby that answers, promotable or not
 *      (Patroni's rule): under ANY k an acknowledged commit may be on one member of the set only,
 *      maybe one the policy will not promote, and promoting another that lacks it loses it. Under
 *      FIRST k with more than k names the same goes for every listed standby that answers: the
 *      primary may have made one of them synchronous after its last report, and a listed standby
 *      as advanced as all of them is eligible, reported sync or not. When the
 *      relaxed synchronous mode had turned synchronous replication off (no standby streamed),
 *      no standby is known to hold every acknowledged commit: nobody is promoted.
 *   3. A standby further behind the old primary's last known position than
 *      maximum_lag_on_failover is not promoted (without a known position, behind the most
 *      advanced candidate).
 *   4. The most advanced eligible standby wins (higher timeline, then more WAL); ties go to the
 *      one the old primary reported synchronous, then to the earlier member in the policy's
 *      candidate list.
 *   5. A requested standby (`--to NAME`) wins only if it is eligible and as advanced as the one
 *      rule 4 would pick: promoting a standby that is behind another would throw away WAL the
 *      other holds, acknowledged commits included.
 *
 * `force` waives rules 2, 3 and 5's "as advanced" (each waived rule is still listed, marked
 * waived); it never promotes a standby that does not answer or that the policy forbids.
 */
import { formatLsn } from '@walship/engine/lsn';
import type { SyncRepConfig } from '@walship/replication/sync-rep-config';

/** A standby's synchronous state as pg_stat_replication shows it; null when not reported. */
export type ObservedSyncState = 'sync' | 'quorum' | 'potential' | 'async' | null;

export interface FailoverCandidate {
  readonly name: string;
  /** It answered a status request as a standby just now. */
  readonly reachable: boolean;
  /** The timeline of its WAL; null when unknown. */
  readonly timeline: number | null;
  /** How far its flushed WAL goes: promotion replays up to here. Null when unknown. */
  readonly lsn: number | null;
  /** As the old primary last reported it. */
  readonly syncState: ObservedSyncState;
}

export interface FailoverDecisionInput {
  readonly candidates: readonly FailoverCandidate[];
  /** The policy's candidates, in order of preference; a member not listed is never promoted. */
  readonly promotable: readonly string[];
  readonly maximumLagOnFailoverBytes: number;
  /** The old primary's synchronous_standby_names, parsed; null when replication was asynchronous. */
  readonly synchronous: SyncRepConfig | null;
  /** The old primary's last known flush position; null when never observed. */
  readonly primaryLsn: number | null;
  /** The last position known to have been released to synchronous commits; null when unknown. */
  readonly releasedLsn: number | null;
  /**
   * The relaxed synchronous mode had emptied synchronous_standby_names (synchronous-mode.ts):
   * commits were acknowledged by the primary alone. Absent: false.
   */
  readonly synchronousDisabled?: boolean;
  /** `--to NAME`, or null to let the rules choose. */
  readonly requested: string | null;
  readonly force: boolean;
}

export type CandidateReasonCode =
  | 'unreachable'
  | 'no_wal_position'
  | 'not_promotable'
  | 'not_synchronous'
  | 'behind_released_position'
  | 'behind_synchronous_standby'
  | 'synchronous_disabled'
  | 'lag_exceeds_maximum';

export type DecisionReasonCode =
  | 'most_advanced'
  | 'tie_broken_by_priority'
  | 'tie_broken_by_synchronous_state'
  | 'requested'
  | 'requested_unknown'
  | 'requested_not_eligible'
  | 'requested_behind'
  | 'not_enough_synchronous_standbys'
  | 'no_eligible_candidate'
  | 'forced';

export interface Reason<C extends string> {
  readonly code: C;
  readonly message: string;
  /** True when `force` set this rule aside. */
  readonly waived: boolean;
}

export interface CandidateVerdict {
  readonly name: string;
  readonly reachable: boolean;
  readonly timeline: number | null;
  readonly lsn: string | null;
  /** Behind the reference position (the old primary's, else the most advanced candidate's). */
  readonly lagBytes: number | null;
  readonly syncState: ObservedSyncState;
  /** Counts as a synchronous standby for rule 2 (always true when replication was asynchronous). */
  readonly synchronousEligible: boolean;
  /** Position in the policy's candidate list (0 first); null when not listed. */
  readonly priority: number | null;
  readonly eligible: boolean;
  readonly reasons: ReadonlyArray<Reason<CandidateReasonCode>>;
}

export interface FailoverThresholds {
  readonly maximumLagOnFailoverBytes: number;
  /** What lag is measured against, and where it came from. */
  readonly referenceLsn: string | null;
  readonly referenceSource: 'old_primary' | 'most_advanced_candidate' | 'none';
  readonly releasedLsn: string | null;
  readonly synchronous: string | null;
  /** How the synchronous standbys were known: from the old primary's report, or from the config. */
  readonly synchronousSource: 'reported' | 'configured' | null;
  readonly synchronousReachable: number;
  readonly synchronousRequired: number;
  /** The most advanced synchronous standby that answers, and its WAL: the winner must reach it. */
  readonly synchronousMostAdvanced: { readonly name: string; readonly timeline: number | null; readonly lsn: string | null } | null;
  /** Synchronous replication had been turned off by the relaxed synchronous mode. */
  readonly synchronousDisabled: boolean;
}

export interface FailoverDecision {
  readonly winner: string | null;
  readonly forced: boolean;
  readonly reasons: ReadonlyArray<Reason<DecisionReasonCode>>;
  /** Best first: eligible ones in rank order, then the others in input order. */
  readonly candidates: readonly CandidateVerdict[];
  readonly thresholds: FailoverThresholds;
}

interface Working {
  candidate: FailoverCandidate;
  reasons: Array<Reason<CandidateReasonCode>>;
  synchronousEligible: boolean;
  /** Reported synchronous by the old primary: preferred over an equally advanced listed one. */
  reportedSynchronous: boolean;
  priority: number | null;
  lagBytes: number | null;
}

const lsnText = (lsn: number | null): string | null => (lsn === null ? null : formatLsn(lsn));

function formatSynchronous(config: SyncRepConfig): string {
  return `${config.method === 'priority' ? 'FIRST' : 'ANY'} ${config.numSync} (${config.memberNames.join(', ')})`;
}

/**
 * Orders two eligible candidates: higher timeline, more WAL, the one the old primary reported
 * synchronous (what a PostgreSQL user expects to see promoted), earlier in the policy, smaller name.
 */
function compareRank(a: Working, b: Working): number {
  const timeline = (b.candidate.timeline ?? 0) - (a.candidate.timeline ?? 0);
  if (timeline !== 0) return timeline;
  const lsn = (b.candidate.lsn ?? 0) - (a.candidate.lsn ?? 0);
  if (lsn !== 0) return lsn;
  const reported = Number(b.reportedSynchronous) - Number(a.reportedSynchronous);
  if (reported !== 0) return reported;
  const priority = (a.priority ?? Number.MAX_SAFE_INTEGER) - (b.priority ?? Number.MAX_SAFE_INTEGER);
  if (priority !== 0) return priority;
  return a.candidate.name < b.candidate.name ? -1 : a.candidate.name > b.candidate.name ? 1 : 0;
}

const sameProgress = (a: Working, b: Working) => a.candidate.timeline === b.candidate.timeline && a.candidate.lsn === b.candidate.lsn;

export function decideFailover(input: FailoverDecisionInput): FailoverDecision {
  const force = input.force;
  const reachableLsns = input.candidates.filter((c) => c.reachable && c.lsn !== null).map((c) => c.lsn!);
  const referenceLsn = input.primaryLsn ?? (reachableLsns.length > 0 ? Math.max(...reachableLsns) : null);
  const referenceSource = input.primaryLsn !== null ? 'old_primary' : referenceLsn !== null ? 'most_advanced_candidate' : 'none';

  // Rule 2's set: who may hold every acknowledged commit.
  const synchronous = input.synchronous;
  const listed = (name: string) =>
    synchronous !== null && synchronous.memberNames.some((memberName) => memberName === '*' || memberName.toLowerCase() === name.toLowerCase());
  const reported = input.candidates.some((c) => c.syncState === 'sync' || c.syncState === 'quorum' || c.syncState === 'potential');
  let synchronousSet = new Set<string>();
  let synchronousRequired = 0;
  let synchronousSource: FailoverThresholds['synchronousSource'] = null;
  if (synchronous !== null) {
    if (reported) {
      synchronousSource = 'reported';
      const state = synchronous.method === 'priority' ? 'sync' : 'quorum';
      synchronousSet = new Set(input.candidates.filter((c) => c.syncState === state && listed(c.name)).map((c) => c.name));
      synchronousRequired = synchronous.method === 'priority' ? 1 : Math.max(1, synchronousSet.size - synchronous.numSync + 1);
    } else {
      synchronousSource = 'configured';
      synchronousSet = new Set(input.candidates.filter((c) => listed(c.name)).map((c) => c.name));
      synchronousRequired = Math.max(1, synchronousSet.size - synchronous.numSync + 1);
    }
  }

  // Under FIRST with more names than it needs, the primary picks its synchronous standbys among
  // the listed ones that stream, and may have picked another since it last reported (a listed
  // standby of higher priority that caught up takes its place back at once): any listed standby
  // may hold commits acknowledged after that report. So each of them that answers counts for the
  // "as advanced as" rule below, and one at least as advanced as all of them holds all they hold.
  const firstChooses = synchronous !== null && reported && synchronous.method === 'priority' &&
    (synchronous.memberNames.length > synchronous.numSync || synchronous.memberNames.includes('*'));
  const mayBeSynchronous = (c: FailoverCandidate) => synchronousSet.has(c.name) || (firstChooses && listed(c.name));

  // The most advanced standby that may be synchronous and answers: it alone may hold a commit that
  // was acknowledged (under ANY k; under FIRST choosing, since the report), so nobody behind it is
  // promoted, whether or not it is promotable itself.
  const byProgress = (a: FailoverCandidate, b: FailoverCandidate) => (b.timeline ?? 0) - (a.timeline ?? 0) || (b.lsn ?? 0) - (a.lsn ?? 0);
  const synchronousMost = input.candidates.filter((c) => mayBeSynchronous(c) && c.reachable && c.lsn !== null).sort(byProgress)[0] ?? null;

  const working: Working[] = input.candidates.map((candidate) => {
    const reasons: Array<Reason<CandidateReasonCode>> = [];
    const hard = (code: CandidateReasonCode, message: string) => reasons.push({ code, message, waived: false });
    const soft = (code: CandidateReasonCode, message: string) => reasons.push({ code, message, waived: force });
    const priorityIndex = input.promotable.indexOf(candidate.name);
    const lagBytes = referenceLsn !== null && candidate.lsn !== null ? Math.max(0, referenceLsn - candidate.lsn) : null;
    if (!candidate.reachable) hard('unreachable', `${candidate.name} does not answer as a standby`);
    else if (candidate.lsn === null) hard('no_wal_position', `${candidate.name} reports no WAL position`);
    if (priorityIndex < 0) hard('not_promotable', `${candidate.name} is not in the policy's failover candidates`);
    // A listed standby the primary did not report as sync, but at least as advanced as every one
    // that may be: it holds every commit they hold.
    const asAdvancedAsAny = firstChooses && listed(candidate.name) && candidate.reachable && candidate.lsn !== null &&
      synchronousMost !== null && byProgress(candidate, synchronousMost) <= 0;
    const synchronousEligible = synchronous === null || synchronousSet.has(candidate.name) || asAdvancedAsAny;
    if (!synchronousEligible) {
      soft(
        'not_synchronous',
        synchronousSource === 'reported'
          ? `${candidate.name} was ${candidate.syncState ?? 'not reported'}, not a synchronous standby, when the primary last reported: it may miss acknowledged commits`
          : `${candidate.name} is not named in synchronous_standby_names (${formatSynchronous(synchronous!)}): it may miss acknowledged commits`,
      );
    }
    if (input.synchronousDisabled === true) {
      soft('synchronous_disabled', 'synchronous replication was off (the relaxed synchronous mode emptied synchronous_standby_names): no standby is known to hold every acknowledged commit');
    }
    if (synchronousMost !== null && candidate.reachable && candidate.lsn !== null && candidate.name !== synchronousMost.name && byProgress(candidate, synchronousMost) > 0) {
      soft(
        'behind_synchronous_standby',
        `${candidate.name} has WAL to ${formatLsn(candidate.lsn)} on timeline ${candidate.timeline ?? '?'}, short of the ` +
          `${synchronousSet.has(synchronousMost.name) ? 'synchronous standby' : 'listed standby (FIRST may have made it synchronous since the last report)'} ${synchronousMost.name} ` +
          `(${formatLsn(synchronousMost.lsn!)} on timeline ${synchronousMost.timeline ?? '?'}), which may hold acknowledged commits it lacks`,
      );
    }
    if (input.releasedLsn !== null && candidate.lsn !== null && candidate.lsn < input.releasedLsn) {
      soft('behind_released_position', `${candidate.name} has WAL to ${formatLsn(candidate.lsn)}, short of ${formatLsn(input.releasedLsn)} already acknowledged to synchronous commits`);
    }
    if (lagBytes !== null && lagBytes > input.maximumLagOnFailoverBytes) {
      soft('lag_exceeds_maximum', `${candidate.name} is ${lagBytes} bytes behind, more than maximum_lag_on_failover (${input.maximumLagOnFailoverBytes} bytes)`);
    }
    return { candidate, reasons, synchronousEligible, reportedSynchronous: synchronousSource === 'reported' && synchronousSet.has(candidate.name), priority: priorityIndex < 0 ? null : priorityIndex, lagBytes };
  });

  const eligibleOf = (w: Working) => w.reasons.every((reason) => reason.waived);
  const ranked = working.filter(eligibleOf).sort(compareRank);
  const synchronousReachable = working.filter((w) => synchronousSet.has(w.candidate.name) && w.candidate.reachable && w.candidate.lsn !== null).length;

  const reasons: Array<Reason<DecisionReasonCode>> = [];
  let winner: Working | null = null;
  const decide = (): void => {
    if (synchronous !== null && synchronousReachable < synchronousRequired) {
      const message =
        `${synchronousReachable} of the synchronous standbys (${[...synchronousSet].join(', ') || 'none'}) answer; ${synchronousRequired} must, ` +
        'to be sure the promoted one holds every acknowledged commit';
      reasons.push({ code: 'not_enough_synchronous_standbys', message, waived: force });
      if (!force) return;
    }
    if (ranked.length === 0) {
      reasons.push({ code: 'no_eligible_candidate', message: 'no standby may be promoted', waived: false });
      return;
    }
    const best = ranked[0]!;
    if (input.requested !== null) {
      const requested = working.find((w) => w.candidate.name === input.requested);
      if (requested === undefined) {
        reasons.push({ code: 'requested_unknown', message: `${input.requested} is not a standby that can be considered`, waived: false });
        return;
      }
      if (!eligibleOf(requested)) {
        const why = requested.reasons.filter((reason) => !reason.waived).map((reason) => reason.message).join('; ');
        reasons.push({ code: 'requested_not_eligible', message: `${input.requested} may not be promoted: ${why}`, waived: false });
        return;
      }
      if (compareRank(requested, best) > 0 && !sameProgress(requested, best)) {
        const behind = (best.candidate.lsn ?? 0) - (requested.candidate.lsn ?? 0);
        reasons.push({
          code: 'requested_behind',
          message: `${input.requested} is behind ${best.candidate.name} (${behind} bytes${best.candidate.timeline !== requested.candidate.timeline ? ', or on an older timeline' : ''}): promoting it would discard WAL ${best.candidate.name} holds`,
          waived: force,
        });
        if (!force) return;
      }
      winner = requested;
      reasons.push({ code: 'requested', message: `${input.requested} was asked for`, waived: false });
      return;
    }
    winner = best;
    reasons.push({
      code: 'most_advanced',
      message: `${best.candidate.name} is the most advanced eligible standby: WAL to ${lsnText(best.candidate.lsn)} on timeline ${best.candidate.timeline ?? '?'}`,
      waived: false,
    });
    const next = ranked[1];
    // Eligible candidates are all in the policy's list, so their priorities differ.
    if (next !== undefined && sameProgress(best, next)) {
      if (best.reportedSynchronous !== next.reportedSynchronous) {
        reasons.push({ code: 'tie_broken_by_synchronous_state', message: `${best.candidate.name} was the synchronous standby when the primary last reported, ${next.candidate.name} was not`, waived: false });
      } else {
        reasons.push({ code: 'tie_broken_by_priority', message: `${best.candidate.name} comes before ${next.candidate.name} in the policy's candidates`, waived: false });
      }
    }
  };
  decide();
  if (force && winner !== null) {
    const waived = [...reasons, ...(winner as Working).reasons].filter((reason) => reason.waived).map((reason) => reason.code);
    if (waived.length > 0) reasons.push({ code: 'forced', message: `forced: ${[...new Set(waived)].join(', ')} set aside`, waived: false });
  }

  const rankedNames = new Set(ranked.map((w) => w.candidate.name));
  const ordered = [...ranked, ...working.filter((w) => !rankedNames.has(w.candidate.name))];
  return {
    winner: winner === null ? null : (winner as Working).candidate.name,
    forced: force,
    reasons,
    candidates: ordered.map((w) => ({
      name: w.candidate.name,
      reachable: w.candidate.reachable,
      timeline: w.candidate.timeline,
      lsn: lsnText(w.candidate.lsn),
      lagBytes: w.lagBytes,
      syncState: w.candidate.syncState,
      synchronousEligible: w.synchronousEligible,
      priority: w.priority,
      eligible: eligibleOf(w),
      reasons: w.reasons,
    })),
    thresholds: {
      maximumLagOnFailoverBytes: input.maximumLagOnFailoverBytes,
      referenceLsn: lsnText(referenceLsn),
      referenceSource,
      releasedLsn: lsnText(input.releasedLsn),
      synchronous: synchronous === null ? null : formatSynchronous(synchronous),
      synchronousSource,
      synchronousReachable,
      synchronousRequired,
      synchronousMostAdvanced: synchronousMost === null ? null : { name: synchronousMost.name, timeline: synchronousMost.timeline, lsn: lsnText(synchronousMost.lsn) },
      synchronousDisabled: input.synchronousDisabled === true,
    },
  };
}
