/**
 * What a switchover and a failover share: the candidates as the failover decision wants them,
 * the synchronous names the decision judges by (as the state records them), promoting the
 * chosen standby with the synchronous names it needs as a primary, and repointing the other
 * standbys at their new upstreams.
 */
import { parseSynchronousStandbyNames } from '@walship/replication/sync-rep-config';
import { ClusterError, ClusterErrorCode } from './cluster-error.js';
import type { MemberConfig } from './config.js';
import { onMember, type ClusterContext } from './context.js';
import type { FailoverCandidate, FailoverDecision, ObservedSyncState } from './failover-decision.js';
import { runningServer } from './member-files.js';
import { lsnValue, rejoinMember, repointStandby, waitStreaming } from './member-ops.js';
import type { MemberProbe } from './members.js';
import { effectiveUpstream, readClusterStateFor, type ClusterState } from './state.js';
import { recordNamesInForce } from './synchronous-change.js';
import { recordedSynchronousNames } from './synchronous-record.js';

const OBSERVED_SYNC_STATES = new Set(['sync', 'quorum', 'potential', 'async']);

export function observedSyncState(value: string | null | undefined): ObservedSyncState {
  return typeof value === 'string' && OBSERVED_SYNC_STATES.has(value) ? (value as ObservedSyncState) : null;
}

/** Every standby of the state (fenced and uninitialized members never are candidates) as the decision sees it. */
export function failoverCandidates(state: ClusterState, probes: readonly MemberProbe[], syncStates: ReadonlyMap<string, ObservedSyncState>): FailoverCandidate[] {
  return probes
    .filter((probe) => probe.member.name !== state.primary && state.members[probe.member.name]?.role === 'standby')
    .map((probe) => {
      const status = probe.status;
      const answersAsStandby = status !== null && status.role === 'standby';
      const received = lsnValue(status?.receiveLsn);
      const replayed = lsnValue(status?.replayLsn);
      const lsn = received === null && replayed === null ? null : Math.max(received ?? 0, replayed ?? 0);
      return {
        name: probe.member.name,
        reachable: answersAsStandby,
        timeline: status?.timeline ?? null,
        lsn: answersAsStandby ? lsn : null,
        syncState: syncStates.get(probe.member.name) ?? null,
      };
    });
}

/**
 * The synchronous_standby_names the old primary ran with as the state records them (covering a
 * change under way: synchronous-record.ts), parsed (null when asynchronous).
 */
export function synchronousOf(ctx: ClusterContext, state: ClusterState): ReturnType<typeof parseSynchronousStandbyNames> {
  return parseSynchronousStandbyNames(recordedSynchronousNames(ctx.config, state));
}

/** A failover or switchover the decision refused: the error, with the decision as made. */
export class NoCandidateError extends ClusterError {
  readonly decision: FailoverDecision;

  constructor(decision: FailoverDecision, message: string, detail: string, hint: string) {
    super(ClusterErrorCode.noCandidate, message, { detail, hint });
    this.decision = decision;
  }
}

/** The decision's refusal as an error: what was decided and why, every candidate with its reasons. */
export function noCandidateError(decision: FailoverDecision, action: 'switch over' | 'fail over'): NoCandidateError {
  const lines = decision.candidates.map((candidate) => {
    const why = candidate.reasons.map((reason) => `${reason.message}${reason.waived ? ' (waived)' : ''}`).join('; ');
    return `${candidate.name}: ${candidate.eligible ? 'eligible' : 'not eligible'}, WAL to ${candidate.lsn ?? '?'} on timeline ${candidate.timeline ?? '?'}${why === '' ? '' : `: ${why}`}`;
  });
  const reasons = decision.reasons.map((reason) => reason.message).join('; ');
  return new NoCandidateError(
    decision,
    `cannot ${action}: ${reasons}`,
    lines.length === 0 ? 'The cluster has no standby.' : lines.join('\n'),
    'Start or rejoin standbys (walship cluster status -f FILE shows them), name one with --to, or, knowing that acknowledged writes may be lost, add --force.',
  );
}

/**
 * Gives the standby the synchronous names it needs as a primary (promotionSynchronousNames; the
 * caller has recorded them in the state's transition first, state.ts invariant 5), then
 * promotes it. Returns its new timeline.
 */
export async function promoteMember(ctx: ClusterContext, names: string, member: MemberConfig, timeoutMs: number): Promise<number> {
  await onMember(member, 'setting synchronous_standby_names', () => ctx.control.setSettings({ dataDir: member.dataDir, settings: [['synchronous_standby_names', names]] }));
  ctx.progress(`${member.name}: promoting${names === '' ? '' : ` (synchronous_standby_names = '${names}')`}`);
  const { timeline } = await onMember(member, 'walship promote', () => ctx.control.promote({ dataDir: member.dataDir, timeoutMs }));
  ctx.progress(`${member.name}: promoted, timeline ${timeline}; it accepts writes`);
  return timeline;
}

/**
 * Whether a standby's position went past where the promoted member's WAL ends on the same
 * timeline (it holds WAL the new primary never had, and cannot follow it). An unknown position
 * is not past it.
 */
function wentPast(
  seen: { lsn: number | null; timeline: number | null } | undefined,
  divergedBeyond: { lsn: number; timeline: number } | null,
): boolean {
  return divergedBeyond !== null && seen !== undefined && seen.lsn !== null && seen.timeline === divergedBeyond.timeline && seen.lsn > divergedBeyond.lsn;
}

/**
 * Before a promotion: each running standby that will follow the target, and has not gone past
 * it, streams from it at once, as a cascading standby of a standby. Once promoted, the target
 * hands them its new timeline over the live connection (a cascading walsender's end of timeline,
 * as PostgreSQL's does), so its first commits find their synchronous standby streaming rather
 * than reconnecting; and they stop taking WAL from the old primary, which may still send some if
 * it was only frozen or cut off (and would take them past the fork). One whose position is
 * unknown, or that could not be repointed, is left to repointOthers after the promotion.
 * Returns the names repointed.
 */
export async function followTargetEarly(
  ctx: ClusterContext,
  before: ClusterState,
  future: ClusterState,
  skip: readonly string[],
  divergedBeyond: { lsn: number; timeline: number } | null,
  lsnOf: ReadonlyMap<string, { lsn: number | null; timeline: number | null }>,
): Promise<Set<string>> {
  const following = new Set<string>();
  for (const member of ctx.config.members) {
    if (skip.includes(member.name) || member.name === future.primary || future.members[member.name]?.role !== 'standby') continue;
    if (runningServer(member.dataDir) === null) continue;
    // A cascading standby of another standby keeps its upstream; one already on the target needs nothing.
    if (effectiveUpstream(ctx.config, future, member) !== future.primary || effectiveUpstream(ctx.config, before, member) === future.primary) continue;
    const seen = lsnOf.get(member.name);
    if (seen === undefined || seen.lsn === null || wentPast(seen, divergedBeyond)) continue;
    try {
      await repointStandby(ctx, future, member);
      following.add(member.name);
    } catch {
      // Repointed after the promotion, as any other.
    }
  }
  return following;
}

/**
 * After a promotion: every standby whose upstream changed is repointed (a reload); one whose WAL
 * went past where the promoted member's did (it can no longer follow) is rewound instead.
 * Returns the state (a rewind writes it) and the warnings for what could not be done.
 */
export async function repointOthers(
  ctx: ClusterContext,
  before: ClusterState,
  after: ClusterState,
  skip: readonly string[],
  divergedBeyond: { lsn: number; timeline: number } | null,
  lsnOf: ReadonlyMap<string, { lsn: number | null; timeline: number | null }>,
  timeoutMs: number,
  followingEarly: ReadonlySet<string> = new Set(),
): Promise<{ state: ClusterState; warnings: string[] }> {
  let state = after;
  const warnings: string[] = [];
  for (const member of ctx.config.members) {
    if (skip.includes(member.name) || member.name === after.primary || after.members[member.name]?.role !== 'standby') continue;
    try {
      if (wentPast(lsnOf.get(member.name), divergedBeyond)) {
        ctx.progress(`${member.name}: its WAL goes past where ${after.primary} was promoted; rewinding it`);
        state = await rejoinMember(ctx, state, member, timeoutMs);
      } else if (followingEarly.has(member.name) && runningServer(member.dataDir) !== null) {
        // Follows the target since before the promotion (followTargetEarly).
      } else if (effectiveUpstream(ctx.config, before, member) !== effectiveUpstream(ctx.config, after, member) || runningServer(member.dataDir) === null) {
        await repointStandby(ctx, state, member);
      }
    } catch (error) {
      warnings.push(`${member.name}: ${(error as Error).message}; rejoin it with walship cluster rejoin -f FILE ${member.name}`);
      ctx.progress(`${member.name}: warning: ${(error as Error).message}`);
    }
  }
  return { state, warnings };
}

/**
 * The end of a switchover or failover: waits for every standby to stream from its upstream (one
 * that went on streaming from the old primary past where the new one was promoted, repointed a
 * moment late or started from a stop, is rewound rather than waited for; one that does not
 * stream in time is a warning), then records the synchronous names in force.
 */
export async function settleStreaming(ctx: ClusterContext, repointed: ClusterState, timeoutMs: number, warnings: string[]): Promise<ClusterState> {
  const state = await waitStreaming(ctx, repointed, ctx.config.members, timeoutMs, { rewindDiverged: true }).catch((error: Error) => {
    warnings.push(error.message);
    return readClusterStateFor(ctx.config) ?? repointed;
  });
  return recordNamesInForce(ctx, state);
}
