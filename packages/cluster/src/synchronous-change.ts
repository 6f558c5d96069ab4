/**
 * The relaxed synchronous mode's change of the primary's synchronous_standby_names (the rules
 * are synchronous-mode.ts's), done by the monitor under the data root's lock so that no command
 * interleaves:
 *
 *   1. The state is written first (the intent, state.ts invariant 5): the record of the names
 *      becomes the union of what it held, the names in force and the new ones (a commit
 *      acknowledged just before the reload may be on a standby only the old names list), and the
 *      observation is replaced: no synchronous states (the failover decision falls back to the
 *      configured rule until the primary reports them under the new names), the released
 *      position kept as the highest known, and synchronous replication counted off while it is
 *      off or being turned back on (commits the primary acknowledged alone are not known to be
 *      on any standby until the new setting is in force and the floor covers them).
 *   2. The primary is reloaded with the new setting.
 *   3. Its status is read again and, if it runs with the new names, the observation and the
 *      record are written with them in one write: the released position it reports now (every
 *      commit acknowledged under the old names is below it), and when synchronous replication
 *      was off, the primary's flush position as the floor (every commit acknowledged while it was
 *      off is below it).
 *   4. The change goes to the history (event `synchronous`, initiator monitor).
 *
 * If the primary dies between 1 and 3, the state says no more than is sure: a failover then needs
 * enough of the standbys either list names to answer, or --force.
 */
import { formatLsn, parseLsn } from '@walship/engine/lsn';
import { findMember, memberAddress } from './config.js';
import { onMember, type ClusterContext } from './context.js';
import { appendHistory } from './history.js';
import { withClusterLockIfFree } from './lock.js';
import { probeUnfenced, recordObservation } from './member-ops.js';
import type { MemberProbe } from './members.js';
import type { NodeStatusView } from './node-control.js';
import { readClusterStateFor, writeClusterState, type ClusterState, type PrimaryObservation } from './state.js';
import { unionSynchronousNames, withRecordOfNamesInForce } from './synchronous-record.js';

const lsnOf = (text: unknown): number => (typeof text === 'string' ? (parseLsn(text) ?? 0) : 0);

export interface SynchronousChange {
  readonly primary: string;
  readonly from: string;
  readonly to: string;
  /** The standbys counted gone, which made the change. */
  readonly gone: readonly string[];
  /** The released position the state keeps after the change (rule 2's floor). */
  readonly releasedLsn: string;
}

/**
 * Changes the primary's synchronous_standby_names from `from` to `to` as the relaxed mode asks.
 * Returns null (nothing done) when another command holds the lock or the primary changed.
 */
export async function changeSynchronousNames(ctx: ClusterContext, primary: string, status: NodeStatusView, from: string, to: string, gone: readonly string[]): Promise<SynchronousChange | null> {
  const { config } = ctx;
  return withClusterLockIfFree(config.dataRoot, 'walship cluster monitor (synchronous mode)', true, false, async () => {
    const started = Date.now();
    const state = readClusterStateFor(config);
    if (state === null || state.primary !== primary) return null;
    const member = findMember(config, primary);
    const previous = state.observation?.primary === primary && state.observation.timeline === status.timeline ? state.observation : null;
    const wanted = config.synchronous !== null;
    const turningOn = from === '' && to !== '';
    let released = Math.max(lsnOf(previous?.releasedLsn), lsnOf(status.syncReleasedLsn), from === '' ? lsnOf(status.flushLsn) : 0);
    const observation = (names: string, disabled: boolean): PrimaryObservation => ({
      at: new Date().toISOString(),
      primary,
      timeline: status.timeline,
      flushLsn: status.flushLsn,
      releasedLsn: formatLsn(released),
      synchronousStandbyNames: names,
      synchronousDisabled: disabled,
      standbys: (status.replication ?? []).map((row) => ({ name: row.applicationName ?? '', flushLsn: row.flushLsn ?? null, syncState: null, syncPriority: null })),
    });

    // 1. The intent, before the primary changes anything.
    const recorded = state.synchronousNames?.primary === primary ? state.synchronousNames.names : from;
    const during = { primary, names: unionSynchronousNames(unionSynchronousNames(recorded, from), to) };
    writeClusterState(config.dataRoot, { ...state, observation: observation(to, wanted && (to === '' || turningOn)), synchronousNames: during });
    // 2. The primary, reloaded.
    await onMember(member, 'setting synchronous_standby_names', () => ctx.control.setSettings({ dataDir: member.dataDir, settings: [['synchronous_standby_names', to]] }));
    // 3. What it reports now.
    const after = await ctx.control.status({ address: memberAddress(config, member), timeoutMs: config.failover.healthCheckIntervalMs * 3 });
    if (after !== null && after.role === 'primary' && after.synchronousStandbyNames === to) {
      released = Math.max(released, lsnOf(after.syncReleasedLsn), turningOn ? lsnOf(after.flushLsn) : 0);
      const fresh = readClusterStateFor(config) ?? state;
      writeClusterState(config.dataRoot, { ...fresh, observation: observation(to, wanted && to === ''), synchronousNames: { primary, names: to } });
    }
    const releasedLsn = formatLsn(released);
    appendHistory(config.dataRoot, {
      at: new Date().toISOString(), event: 'synchronous', member: primary, from: null, timeline: status.timeline, lsn: releasedLsn, durationMs: Date.now() - started,
      summary: `relaxed synchronous mode: synchronous_standby_names '${from}' -> '${to}'${gone.length > 0 ? ` (${gone.join(', ')} not streaming)` : ' (the standbys are back)'}; released to synchronous commits up to ${releasedLsn}`,
      decision: null,
      initiator: 'monitor',
    });
    return { primary, from, to, gone, releasedLsn };
  });
}

/**
 * recordObservation, then the record of the synchronous names brought to what the primary
 * reports in force (withRecordOfNamesInForce: after the observation, whose released position
 * was read with them). For the end of a switchover or failover, and each observation the
 * monitor or a command keeps. The caller holds the lock.
 */
export async function recordNamesInForce(ctx: ClusterContext, state: ClusterState, probes?: readonly MemberProbe[]): Promise<ClusterState> {
  // Probed once, for the observation and for the names the primary reports.
  const seen = probes ?? (await probeUnfenced(ctx, state));
  const observed = await recordObservation(ctx, state, seen);
  // Only names the primary itself reported: without them the observation holds the config's rule.
  const status = seen.find((probe) => probe.member.name === observed.primary)?.status;
  if (typeof status?.synchronousStandbyNames !== 'string') return observed;
  const next = withRecordOfNamesInForce(observed);
  return next === null ? observed : writeClusterState(ctx.config.dataRoot, next);
}
