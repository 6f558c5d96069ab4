/**
 * `cluster switchover [--to NAME]`: a planned change of primary that loses no acknowledged write.
 *
 *   1. Choose the target with the failover decision, from the standbys that stream now (or take
 *      the one named, if the decision allows it).
 *   2. Stop writes: a fast shutdown of the primary. Sessions are cut (a write in flight is
 *      indeterminate, never acknowledged and lost); the shutdown returns only once each
 *      connected standby has flushed the shutdown checkpoint, the last record it writes (its
 *      walsenders stop after that checkpoint, as PostgreSQL's WalSndWaitStopping).
 *   3. Wait until the target has replayed up to that checkpoint: it then holds everything the
 *      old primary ever acknowledged. If it does not within DIRECT_CATCH_UP_MS (it was cut off
 *      as the primary stopped), the switchover is abandoned: the old primary is started again as
 *      the primary, and nothing has changed.
 *   4. Fence the old primary's directory (standby.signal) and record the intent (`transition`,
 *      with the synchronous names the target is given) in the state, so that a crash from here
 *      on is settled by whoever comes next (transition.ts) and a failover judges by the names in
 *      force; promote the target: a new timeline; grant it the lease (failover.enforce_lease).
 *      With the relaxed synchronous mode, the old primary, which restarts until step 6, is left
 *      out of what the target's commits wait for: a streaming standby stands in for it
 *      (`FIRST 1 (s1)` on n1 after s1: `FIRST 1 (s1, s2)`), so writes come back without waiting
 *      for its restart (synchronous-record.ts).
 *   5. Repoint the other standbys at their new upstreams (one that received more of the old
 *      primary's WAL than the target did cannot follow the new timeline: it is rewound).
 *   6. Bring the old primary back as a standby of the new one: a rewind (which finds nothing to
 *      copy, as its WAL ends at the shutdown checkpoint the target replayed) and a start; once it
 *      streams, the new primary is reloaded with the config's rule, and the state records the
 *      names in force. If it cannot rejoin, it is fenced and stopped.
 *
 * Writes are unavailable from step 2 to the end of step 4; `unavailableMs` measures it.
 */
import { formatLsn, parseLsn } from '@walship/engine/lsn';
import { ClusterError, ClusterErrorCode } from './cluster-error.js';
import { findMember, type MemberConfig } from './config.js';
import { DEFAULT_OPERATION_TIMEOUT_MS, onMember, waitUntil, type ClusterContext } from './context.js';
import { decideFailover, type FailoverDecision } from './failover-decision.js';
import { appendHistory } from './history.js';
import { acquireClusterLock } from './lock.js';
import { killServer, primaryTimeline, readControlSummary, runningServer, writeFence } from './member-files.js';
import { grantLeaseAfterCommand, keepLease, type LeaseKeeper } from './lease.js';
import { lsnValue, recordObservation, rejoinMember, startMember } from './member-ops.js';
import { probeMember, probeMembers } from './members.js';
import { failoverCandidates, followTargetEarly, noCandidateError, observedSyncState, promoteMember, repointOthers, settleStreaming, synchronousOf } from './promotion.js';
import { readClusterStateFor, withMember, withNewPrimary, writeClusterState, type ClusterState } from './state.js';
import { promotionSynchronousNames } from './synchronous-record.js';
import { settleInterrupted } from './transition-settle.js';

/**
 * How long the target may take to replay the old primary's last WAL once the old primary has
 * stopped: it has already flushed it all (the shutdown waited for that), so replaying it takes
 * milliseconds; past this, something cut the target off and the switchover is abandoned.
 */
const DIRECT_CATCH_UP_MS = 5_000;

/**
 * The target does not have the old primary's last WAL: the old primary is started again as the
 * primary it was (with its lease), and the switchover fails with what was seen.
 */
async function abandonSwitchover(ctx: ClusterContext, state: ClusterState, oldPrimary: MemberConfig, target: MemberConfig, error: unknown): Promise<never> {
  ctx.progress(`${target.name} did not replay ${oldPrimary.name}'s last WAL; starting ${oldPrimary.name} again as the primary`);
  await startMember(ctx, state, oldPrimary);
  await grantLeaseAfterCommand(ctx, oldPrimary, primaryTimeline(state, oldPrimary.dataDir), 'cluster switchover (abandoned)');
  throw new ClusterError(ClusterErrorCode.memberOperationFailed, `switchover abandoned: ${target.name} did not replay ${oldPrimary.name}'s last WAL`, {
    detail: (error as { detail?: string; message?: string }).detail ?? (error as Error).message,
    hint: `${oldPrimary.name} is the primary again, nothing changed. Check that ${target.name} streams (walship cluster status -f FILE) and try again.`,
    cause: error,
  });
}

export interface PrimaryChangeResult {
  readonly state: ClusterState;
  readonly from: string;
  readonly to: string;
  readonly timeline: number;
  /** Where the old primary's WAL ended (switchover) or the promoted member's WAL (failover). */
  readonly lsn: string | null;
  readonly decision: FailoverDecision;
  readonly durationMs: number;
  /** Switchover: from stopping writes to the new primary accepting them. Failover: promotion alone. */
  readonly unavailableMs: number;
  /** What became of the old primary. */
  readonly oldPrimary: 'standby' | 'fenced';
  /**
   * How the old primary was kept from acknowledging writes: `stopped` (a switchover's shutdown),
   * `killed` (STONITH), `lease` (left running once its lease had run out), `dead` (it was gone).
   */
  readonly oldPrimaryStopped: 'stopped' | 'killed' | 'lease' | 'dead';
  readonly warnings: readonly string[];
}

export async function clusterSwitchover(ctx: ClusterContext, options: { to?: string; timeoutMs?: number } = {}): Promise<PrimaryChangeResult> {
  const { config } = ctx;
  const timeoutMs = options.timeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS;
  if (options.to !== undefined) findMember(config, options.to);
  const lock = await acquireClusterLock(config.dataRoot, 'walship cluster switchover', undefined, true, true);
  let leaseKeeper: LeaseKeeper | null = null;
  try {
    const started = Date.now();
    let state = readClusterStateFor(config);
    if (state === null) throw new ClusterError(ClusterErrorCode.invalidState, `cluster ${config.name} has not been created`, { hint: 'Create it with walship cluster up -f FILE.' });
    // An interrupted change of primary is settled first (transition.ts).
    state = await settleInterrupted(ctx, state, 'command');
    const oldPrimary = findMember(config, state.primary);
    if (options.to === oldPrimary.name) {
      throw new ClusterError(ClusterErrorCode.wrongMemberState, `${oldPrimary.name} is the primary already`, { hint: 'Name a standby with --to, or leave --to out to let the failover rules choose.' });
    }
    const probes = await probeMembers(ctx.control, config);
    const primaryStatus = probes.find((probe) => probe.member.name === oldPrimary.name)?.status ?? null;
    if (primaryStatus === null || primaryStatus.role !== 'primary') {
      throw new ClusterError(ClusterErrorCode.wrongMemberState, `the primary ${oldPrimary.name} ${primaryStatus === null ? 'does not answer' : 'answers as a standby'}: a switchover needs a running primary`, {
        hint: 'Fail over instead: walship cluster failover -f FILE.',
      });
    }
    // Only standbys that stream now can catch up with the old primary's last record.
    const streaming = probes.map((probe) => (probe.status?.walReceiver?.status === 'streaming' ? probe : { ...probe, status: null }));
    const syncStates = new Map((primaryStatus.replication ?? []).map((row) => [row.applicationName ?? '', observedSyncState(row.syncState)]));
    const decision = decideFailover({
      candidates: failoverCandidates(state, streaming, syncStates),
      promotable: config.failover.candidates,
      maximumLagOnFailoverBytes: config.failover.maximumLagOnFailoverBytes,
      synchronous: synchronousOf(ctx, state),
      primaryLsn: lsnValue(primaryStatus.flushLsn),
      // Rule 2's released position is for a primary that is gone: here the target replays all
      // the old primary wrote before it is promoted, and the position moves with every commit
      // while the standbys are being asked (a standby asked first would look behind it).
      releasedLsn: null,
      requested: options.to ?? null,
      force: false,
    });
    if (decision.winner === null) throw noCandidateError(decision, 'switch over');
    const target = findMember(config, decision.winner);
    ctx.progress(`switchover: ${oldPrimary.name} -> ${target.name} (${decision.reasons.map((reason) => reason.message).join('; ')})`);

    // 2. Stop writes.
    const writesStopped = Date.now();
    ctx.progress(`${oldPrimary.name}: stopping writes (fast shutdown; its standbys flush its last record before it exits)`);
    await onMember(oldPrimary, 'walship stop', () => ctx.control.stop({ dataDir: oldPrimary.dataDir, mode: 'fast' }));
    const shutdown = readControlSummary(oldPrimary.dataDir);
    if (shutdown === null || !shutdown.cleanShutdown) {
      throw new ClusterError(ClusterErrorCode.memberOperationFailed, `${oldPrimary.name} did not shut down cleanly; the switchover stops here`, {
        hint: `Start it again (walship cluster start -f FILE ${oldPrimary.name}), or fail over (walship cluster failover -f FILE).`,
      });
    }
    const endLsn = shutdown.checkpointLsn;

    // 3. Wait for the target to replay everything.
    let lastReplay = '?';
    const caughtUp = (waitMs: number) =>
      waitUntil(
        `${target.name} to replay ${oldPrimary.name}'s WAL up to its shutdown checkpoint`,
        waitMs,
        async () => {
          const status = (await probeMember(ctx.control, config, target)).status;
          lastReplay = status?.replayLsn ?? '?';
          const replayed = status === null || status.replayLsn === null ? null : parseLsn(status.replayLsn);
          // Up to the start of the shutdown checkpoint is every record the old primary wrote but
          // the checkpoint itself, which holds no commit; a target that lacks only the checkpoint
          // leaves the old primary one record past the fork, which its rewind copies back.
          return replayed !== null && replayed >= endLsn;
        },
        () => `${target.name} has replayed to ${lastReplay}; ${oldPrimary.name}'s shutdown checkpoint is at ${formatLsn(endLsn)}.`,
      );
    try {
      await caughtUp(DIRECT_CATCH_UP_MS);
    } catch (error) {
      await abandonSwitchover(ctx, state, oldPrimary, target, error);
    }

    // Where every standby's WAL ends now that the old primary wrote its last record. One that
    // got further than the target (the shutdown checkpoint reached it but not the target) cannot
    // follow the target's new timeline, which forks where the target's WAL ends: it is rewound.
    const settled = await probeMembers(ctx.control, config);
    const positionOf = (name: string) => {
      const status = settled.find((probe) => probe.member.name === name)?.status ?? null;
      const received = lsnValue(status?.receiveLsn);
      const replayed = lsnValue(status?.replayLsn);
      return { lsn: received === null && replayed === null ? null : Math.max(received ?? 0, replayed ?? 0), timeline: status?.timeline ?? null };
    };
    const targetEnd = positionOf(target.name);

    // 4. Promote. First the old primary's fence and the intent, durable: a crash from here on
    // leaves a transition the next command or the monitor settles (state.ts invariant 4), and an
    // old primary that comes back read-only whoever starts it.
    // The old primary's timeline: above the state's if its own crash recovery moved it (primaryTimeline).
    const fromTimeline = primaryTimeline(state, oldPrimary.dataDir);
    const fence = { at: new Date().toISOString(), reason: `switchover to ${target.name}`, timeline: fromTimeline, newPrimary: target.name };
    // The target's synchronous names, recorded with the intent (state.ts invariant 5): while the
    // old primary restarts, a streaming standby stands in for it (promotionSynchronousNames).
    const synchronousStandbyNames = promotionSynchronousNames(config, state, target.name, { kind: 'switchover', unavailable: [] });
    writeFence(oldPrimary.dataDir);
    state = writeClusterState(config.dataRoot, {
      ...state,
      transition: { kind: 'switchover', from: oldPrimary.name, to: target.name, fromTimeline, startedAt: fence.at, fence, synchronousStandbyNames },
    });
    // The others stream from the target already, so that its first commits need no reconnection.
    const positions = new Map(config.members.map((member) => [member.name, positionOf(member.name)]));
    const divergedBeyond = targetEnd.lsn === null || targetEnd.timeline === null ? null : { lsn: targetEnd.lsn, timeline: targetEnd.timeline };
    const followingEarly = await followTargetEarly(ctx, state, withNewPrimary(state, target.name, fromTimeline + 1, { fence: null }), [oldPrimary.name], divergedBeyond, positions);
    const timeline = await promoteMember(ctx, synchronousStandbyNames, target, timeoutMs);
    leaseKeeper = await keepLease(ctx, target, timeline, 'cluster switchover');
    const unavailableMs = Date.now() - writesStopped;
    const before = state;
    state = writeClusterState(config.dataRoot, withNewPrimary(state, target.name, timeline, { fence: null }));

    // 5. Repoint the others (the rest).
    const repointed = await repointOthers(ctx, before, state, [oldPrimary.name], divergedBeyond, positions, timeoutMs, followingEarly);
    state = repointed.state;
    const warnings = [...repointed.warnings];

    // 6. The old primary, as a standby.
    let oldPrimaryRole: 'standby' | 'fenced' = 'standby';
    try {
      state = await rejoinMember(ctx, state, oldPrimary, timeoutMs);
    } catch (error) {
      // It must not come back as a primary: fence it until someone rejoins it. And stop it (it
      // may have got as far as streaming): a fenced member is no failover candidate, so it must
      // not acknowledge commits the new primary's synchronous names may wait for.
      writeFence(oldPrimary.dataDir);
      if (runningServer(oldPrimary.dataDir) !== null) {
        await ctx.control.stop({ dataDir: oldPrimary.dataDir, mode: 'fast' }).catch(() => killServer(oldPrimary.dataDir));
      }
      const fenced = withMember(state, oldPrimary.name, {
        role: 'fenced',
        fence: { at: new Date().toISOString(), reason: `switchover to ${target.name}: rejoin failed: ${(error as Error).message}`, timeline: before.timeline, newPrimary: target.name },
      });
      // Written with the new primary's report when it answers: what it has released by now
      // covers every commit the stopped member may have acknowledged, so that a failover that
      // leaves it out still wants a standby that holds them (rule 2's floor).
      const observed = await recordObservation(ctx, fenced);
      state = observed.generation > fenced.generation ? observed : writeClusterState(config.dataRoot, fenced);
      oldPrimaryRole = 'fenced';
      warnings.push(`${oldPrimary.name} could not rejoin as a standby (${(error as Error).message}); it is fenced: walship cluster rejoin -f FILE ${oldPrimary.name}`);
    }
    state = await settleStreaming(ctx, state, timeoutMs, warnings);
    const durationMs = Date.now() - started;
    const lsn = formatLsn(endLsn);
    appendHistory(config.dataRoot, {
      at: new Date().toISOString(), event: 'switchover', member: target.name, from: oldPrimary.name, timeline, lsn, durationMs,
      summary: `switchover from ${oldPrimary.name} to ${target.name}: writes unavailable for ${unavailableMs} ms; ${oldPrimary.name} ${oldPrimaryRole === 'standby' ? 'rejoined as a standby' : 'is fenced'}`,
      decision,
    });
    return { state, from: oldPrimary.name, to: target.name, timeline, lsn, decision, durationMs, unavailableMs, oldPrimary: oldPrimaryRole, oldPrimaryStopped: 'stopped', warnings };
  } finally {
    leaseKeeper?.stop();
    lock.release();
  }
}

