/**
 * `cluster failover [--to NAME] [--force]`: the primary is gone; promote a standby now.
 *
 *   0. The monitor's failover names the primary it judged gone and the state generation it
 *      judged it in: once the lock is held, a state that names another primary or has changed
 *      since abandons the failover before any step (failover-guard.ts), so that a primary a
 *      person promoted meanwhile is never fenced nor left running beside another.
 *   1. Make sure the old primary cannot acknowledge anything: if its process still runs (hung,
 *      or cut off), it is killed first (STONITH, which on one machine is a SIGKILL). One that
 *      still answers as a healthy primary is refused without --force: that is a switchover's job.
 *      The monitor's failover with failover.enforce_lease kills nothing: it comes only once the
 *      lease of the primary it timed has run out, and a primary without a lease acknowledges no
 *      commit (the server's lease.ts), whether it is dead, frozen or cut off. It is left running,
 *      fenced, until it rejoins.
 *   2. Ask every standby for its WAL position and timeline; take the synchronous states and the
 *      old primary's last position from the state's last observation; let the failover decision
 *      choose (or check the standby named with --to).
 *   3. Fence the old primary: its data directory gets standby.signal, so that however it is
 *      started again it is read-only until rewound; then the intent (`transition`) goes to the
 *      state, before the promotion is asked for, so that a crash from here on is settled by
 *      whoever comes next (transition.ts). The state that names the winner marks it `fenced`.
 *   4. Promote the winner, with the synchronous names it needs as a primary, and grant it the
 *      lease (failover.enforce_lease).
 *   5. Repoint the other standbys; one whose WAL went past the winner's is rewound.
 *   6. Write the decision to the history: candidates, positions, thresholds, and why.
 *
 * The old primary rejoins later: `cluster rejoin`, or `cluster up`/`cluster start` with
 * auto_rejoin.
 */
import { formatLsn } from '@walship/engine/lsn';
import { ClusterError, ClusterErrorCode } from './cluster-error.js';
import { findMember } from './config.js';
import { DEFAULT_OPERATION_TIMEOUT_MS, type ClusterContext } from './context.js';
import { decideFailover, type ObservedSyncState } from './failover-decision.js';
import { oldPrimaryTreatment, staleFailoverReason, type FailoverExpectation } from './failover-guard.js';
import { appendHistory } from './history.js';
import { acquireClusterLock } from './lock.js';
import { primaryTimeline, killServer, runningServer, writeFence } from './member-files.js';
import { keepLease, type LeaseKeeper } from './lease.js';
import { lsnValue } from './member-ops.js';
import { probeMember, probeMembers } from './members.js';
import { failoverCandidates, followTargetEarly, noCandidateError, observedSyncState, promoteMember, repointOthers, settleStreaming, synchronousOf } from './promotion.js';
import { readClusterStateFor, withNewPrimary, writeClusterState } from './state.js';
import { promotionSynchronousNames } from './synchronous-record.js';
import type { PrimaryChangeResult } from './switchover.js';
import { settleInterrupted } from './transition-settle.js';


/**
 * How long the old primary may take to answer before it counts as not answering (and is
 * killed): a healthy node answers a status request in milliseconds, and a hung one would hold
 * the failover for the whole wait.
 */
const LIVENESS_TIMEOUT_MS = 1_000;

export interface FailoverOptions {
  readonly to?: string;
  readonly force?: boolean;
  readonly timeoutMs?: number;
  /** Who asks: a person's command (the default) or the failover monitor, for the history. */
  readonly initiator?: 'command' | 'monitor';
  /**
   * The primary the caller judged gone and the state generation it judged it in: if the state
   * differs once the lock is held, nothing is done (a ClusterError `cluster_state_changed`).
   */
  readonly expected?: FailoverExpectation;
  /**
   * The primary whose lease the caller counted down to its end (the monitor, with
   * failover.enforce_lease): only that one, if still running, is left to its expired lease
   * rather than killed.
   */
  readonly leaseTimedFor?: string;
}

export async function clusterFailover(ctx: ClusterContext, options: FailoverOptions = {}): Promise<PrimaryChangeResult> {
  const { config } = ctx;
  const timeoutMs = options.timeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS;
  const force = options.force === true;
  if (options.to !== undefined) findMember(config, options.to);
  const lock = await acquireClusterLock(config.dataRoot, options.initiator === 'monitor' ? 'walship cluster monitor (failover)' : 'walship cluster failover', undefined, true, true);
  let leaseKeeper: LeaseKeeper | null = null;
  try {
    const started = Date.now();
    let state = readClusterStateFor(config);
    if (state === null) throw new ClusterError(ClusterErrorCode.invalidState, `cluster ${config.name} has not been created`, { hint: 'Create it with walship cluster up -f FILE.' });
    // 0. Still the failover that was decided?
    const stale = staleFailoverReason(state, options.expected ?? null);
    if (stale !== null) {
      throw new ClusterError(ClusterErrorCode.stateChanged, `failover abandoned: ${stale}`, {
        detail: 'Nothing was done: the primary that was judged gone is no longer the one the state names, or the state changed while the failover waited for the lock.',
        hint: 'Look at the cluster again (walship cluster status -f FILE); the monitor does so by itself at its next check.',
      });
    }
    // An interrupted change of primary is settled first (transition.ts).
    state = await settleInterrupted(ctx, state, options.initiator ?? 'command');
    const oldPrimary = findMember(config, state.primary);
    if (options.to === oldPrimary.name) {
      throw new ClusterError(ClusterErrorCode.wrongMemberState, `${oldPrimary.name} is the primary already`, { hint: 'Name a standby with --to.' });
    }

    // 1. The old primary must not acknowledge anything from here on.
    const treatment = oldPrimaryTreatment({
      oldPrimary: oldPrimary.name,
      running: runningServer(oldPrimary.dataDir) !== null,
      enforceLease: config.failover.enforceLease,
      leaseTimedFor: options.leaseTimedFor ?? null,
    });
    let oldPrimaryStopped: PrimaryChangeResult['oldPrimaryStopped'] = 'dead';
    if (treatment === 'lease') {
      oldPrimaryStopped = 'lease';
      ctx.progress(`${oldPrimary.name}: left running: its lease has run out, so it acknowledges no write; it is fenced until it rejoins`);
    } else if (treatment === 'kill') {
      oldPrimaryStopped = 'killed';
      // The monitor has just seen it miss its checks: asking again would only hold a hung
      // primary's failover for the whole wait.
      const status = options.initiator === 'monitor' ? null : (await probeMember(ctx.control, config, oldPrimary, LIVENESS_TIMEOUT_MS)).status;
      if (status?.role === 'primary' && !force) {
        throw new ClusterError(ClusterErrorCode.wrongMemberState, `the primary ${oldPrimary.name} is running and answers`, {
          hint: 'For a planned change of primary use walship cluster switchover -f FILE (no write lost); --force fails over anyway, killing it.',
        });
      }
      const pid = await killServer(oldPrimary.dataDir);
      ctx.progress(`${oldPrimary.name}: killed its process ${pid ?? '?'} (SIGKILL), so that it cannot accept writes once another member is promoted`);
    }

    // 2. Decide.
    // The old primary is not a candidate: a frozen one would only hold the decision for the probe's timeout.
    const probes = await probeMembers(ctx.control, config, undefined, [oldPrimary.name]);
    // A member already promoted past the state's timeline (however that happened): promoting
    // another would make two primaries.
    const promoted = probes.find((probe) => probe.status?.role === 'primary' && probe.status.timeline > state!.timeline);
    if (promoted !== undefined) {
      throw new ClusterError(ClusterErrorCode.wrongMemberState, `${promoted.member.name} already answers as a primary, on timeline ${promoted.status!.timeline}`, {
        detail: `The cluster state names ${oldPrimary.name} the primary of timeline ${state.timeline}; promoting another member would make two primaries.`,
        hint: `Look at the members (walship cluster status -f FILE) and stop ${promoted.member.name} or make the state name it before failing over.`,
      });
    }
    const observation = state.observation?.primary === oldPrimary.name ? state.observation : null;
    const syncStates = new Map<string, ObservedSyncState>((observation?.standbys ?? []).map((standby) => [standby.name, observedSyncState(standby.syncState)]));
    const decision = decideFailover({
      candidates: failoverCandidates(state, probes, syncStates),
      promotable: config.failover.candidates,
      maximumLagOnFailoverBytes: config.failover.maximumLagOnFailoverBytes,
      synchronous: synchronousOf(ctx, state),
      primaryLsn: lsnValue(observation?.flushLsn),
      // Rule 2: no standby behind what the old primary last reported released to synchronous commits.
      releasedLsn: lsnValue(observation?.releasedLsn),
      synchronousDisabled: observation?.synchronousDisabled === true,
      requested: options.to ?? null,
      force,
    });
    if (decision.winner === null) throw noCandidateError(decision, 'fail over');
    const target = findMember(config, decision.winner);
    const winner = decision.candidates.find((candidate) => candidate.name === target.name)!;
    ctx.progress(`failover: ${oldPrimary.name} -> ${target.name} (${decision.reasons.map((reason) => reason.message).join('; ')})`);

    // 3. Fence.
    writeFence(oldPrimary.dataDir);
    // The old primary's timeline: above the state's if its own crash recovery moved it (primaryTimeline).
    const fromTimeline = primaryTimeline(state, oldPrimary.dataDir);
    const fence = { at: new Date().toISOString(), reason: `failover to ${target.name}`, timeline: fromTimeline, newPrimary: target.name };
    ctx.progress(`${oldPrimary.name}: fenced (standby.signal written; it rejoins as a standby only after a rewind)`);
    // The intent, durable before the promotion is asked for: a crash from here on leaves a
    // transition the next command or the monitor settles (state.ts invariant 4), with the
    // synchronous names the target is given (invariant 5).
    const synchronousStandbyNames = promotionSynchronousNames(config, state, target.name, { kind: 'failover', unavailable: [oldPrimary.name] });
    state = writeClusterState(config.dataRoot, {
      ...state,
      transition: { kind: 'failover', from: oldPrimary.name, to: target.name, fromTimeline, startedAt: new Date().toISOString(), fence, synchronousStandbyNames },
    });

    // The others stream from the target already, so that its first commits need no reconnection.
    const positions = new Map(decision.candidates.map((candidate) => [candidate.name, { lsn: lsnValue(candidate.lsn), timeline: candidate.timeline }]));
    const winnerLsn = lsnValue(winner.lsn);
    const divergedBeyond = winnerLsn === null || winner.timeline === null ? null : { lsn: winnerLsn, timeline: winner.timeline };
    const followingEarly = await followTargetEarly(ctx, state, withNewPrimary(state, target.name, fromTimeline + 1, { fence }), [oldPrimary.name], divergedBeyond, positions);

    // 4. Promote.
    const promotionStarted = Date.now();
    const timeline = await promoteMember(ctx, synchronousStandbyNames, target, timeoutMs);
    leaseKeeper = await keepLease(ctx, target, timeline, options.initiator === 'monitor' ? 'monitor (failover)' : 'cluster failover');
    const unavailableMs = Date.now() - promotionStarted;
    const before = state;
    state = writeClusterState(config.dataRoot, withNewPrimary(state, target.name, timeline, { fence }));

    // 5. Repoint (the rest).
    const repointed = await repointOthers(ctx, before, state, [oldPrimary.name], divergedBeyond, positions, timeoutMs, followingEarly);
    state = repointed.state;
    const warnings = [...repointed.warnings];
    state = await settleStreaming(ctx, state, timeoutMs, warnings);

    // 6. History.
    const durationMs = Date.now() - started;
    const lsn = winnerLsn === null ? null : formatLsn(winnerLsn);
    appendHistory(config.dataRoot, {
      at: new Date().toISOString(), event: 'failover', member: target.name, from: oldPrimary.name, timeline, lsn, durationMs,
      summary: `${options.initiator === 'monitor' ? 'automatic ' : ''}failover from ${oldPrimary.name} to ${target.name}${force ? ' (forced)' : ''}: ${decision.reasons.map((reason) => reason.message).join('; ')}; ${oldPrimary.name} fenced`,
      decision,
      initiator: options.initiator ?? 'command',
    });
    return { state, from: oldPrimary.name, to: target.name, timeline, lsn, decision, durationMs, unavailableMs, oldPrimary: 'fenced', oldPrimaryStopped, warnings };
  } finally {
    leaseKeeper?.stop();
    lock.release();
  }
}
