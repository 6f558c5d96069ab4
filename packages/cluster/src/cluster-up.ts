/**
 * `cluster up`: the cluster running in its current roles.
 *
 * The first time, the initial primary is created (initdb) and started, each standby is copied
 * from its upstream (pg_basebackup -R) and started, in upstream order. After that, `up` is safe to
 * run again: members that run are left as they are, stopped ones are started in the roles the
 * state gives them (an old primary fenced by a failover is rewound and rejoins as a standby when
 * `auto_rejoin` is on, and is left stopped otherwise; it never starts as a primary), members new
 * to the config are created, and nothing is created again unless `reset` is given, which stops
 * every member and deletes the data root's members, state and history first. Settings edited in
 * the config are written to the members that already existed (reloaded; those that need a
 * restart are reported, not restarted). With `encryption`, the cluster key is generated (or
 * checked) before the primary is created, and members whose encryption does not match the config
 * are refused before anything starts (cluster-encryption.ts).
 *
 * It returns once every standby streams from its upstream.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { ClusterError, ClusterErrorCode } from './cluster-error.js';
import { checkMemberEncryption, prepareClusterKey } from './cluster-encryption.js';
import { findMember } from './config.js';
import { DEFAULT_OPERATION_TIMEOUT_MS, onMember, type ClusterContext } from './context.js';
import { historyFilePath } from './history.js';
import { stopRunningMonitor } from './monitor-files.js';
import { acquireClusterLock } from './lock.js';
import { isDataDirectory, killServer, primaryTimeline, runningServer } from './member-files.js';
import { grantLeaseAfterCommand } from './lease.js';
import { reapplySettings, type SettingChange } from './member-ops.js';
import { createPrimary, createStandby, refreshSynchronousNames, rejoinMember, startMember, waitStreaming } from './member-ops.js';
import { probeMember } from './members.js';
import { settleTransition } from './transition-settle.js';
import { describeTransition } from './transition.js';
import { initialClusterState, readClusterStateFor, reconcileWithConfig, startOrder, stateFilePath, withMember, writeClusterState, type ClusterState } from './state.js';
import { recordNamesInForce } from './synchronous-change.js';

export interface UpOptions {
  /** Stop everything and delete the members' data, the state and the history first. */
  readonly reset?: boolean;
  readonly timeoutMs?: number;
}

export interface UpResult {
  readonly state: ClusterState;
  /** Members created (init or base backup) by this run. */
  readonly created: string[];
  /** Members started by this run. */
  readonly started: string[];
  readonly rejoined: string[];
  /** Fenced members left stopped (auto_rejoin is off). */
  readonly fenced: string[];
  /** Members the state knows but the config no longer lists (left alone). */
  readonly unknownMembers: string[];
  /** Settings changed in the config since the members were made, now written to them. */
  readonly settingsChanged: SettingChange[];
}

export async function clusterUp(ctx: ClusterContext, options: UpOptions = {}): Promise<UpResult> {
  const { config } = ctx;
  const timeoutMs = options.timeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS;
  const lock = await acquireClusterLock(config.dataRoot, 'walship cluster up');
  try {
    if (options.reset === true) {
      // Refuses a data root that holds another cluster before anything is deleted.
      readClusterStateFor(config);
      await resetCluster(ctx);
    }
    const existing = readClusterStateFor(config);
    const { state: reconciled, unknownMembers } = reconcileWithConfig(existing ?? initialClusterState(config), config);
    for (const name of unknownMembers) ctx.progress(`warning: the cluster state lists member ${name}, which ${config.file} does not; it is left alone`);
    if (existing === null) {
      // A data root new to the cluster: refuse before anything is written, so that what was
      // there is never taken for this cluster's own leftovers later.
      for (const member of config.members) clearLeftovers(ctx, member.dataDir, member.name, false);
    }
    let state = existing === null ? writeClusterState(config.dataRoot, reconciled) : reconciled;
    // A change of primary a crashed command left half done is settled before anything starts
    // (transition.ts): completed, the members start in their new roles; dropped, the old
    // primary stays fenced (a failover is needed); still pending, nothing is started.
    if (state.transition !== null && state.transition !== undefined) {
      const transition = state.transition;
      const settled = await settleTransition(ctx, state);
      if (settled.outcome === 'pending') {
        throw new ClusterError(ClusterErrorCode.invalidState, describeTransition(transition), {
          detail: settled.why,
          hint: `Find out why ${transition.to} does not answer (walship cluster logs -f FILE ${transition.to}), then run walship cluster up again.`,
        });
      }
      state = settled.state;
    }
    // `up` brings every member back, those a person stopped included: the monitor may restart them again if they die.
    if (Object.values(state.members).some((member) => member.stoppedByCommand === true)) {
      let cleared = state;
      for (const [name, member] of Object.entries(state.members)) if (member.stoppedByCommand === true) cleared = withMember(cleared, name, { stoppedByCommand: false });
      state = writeClusterState(config.dataRoot, cleared);
    }
    // encryption: the members that exist are encrypted exactly when the config says so, before
    // any of them is started, repointed or given settings (cluster-encryption.ts).
    for (const member of config.members) checkMemberEncryption(config, member);
    const result = { created: [] as string[], started: [] as string[], rejoined: [] as string[], fenced: [] as string[] };

    for (const member of startOrder(config, state)) {
      const role = state.members[member.name]!.role;
      if (member.name === state.primary) {
        if (role === 'uninitialized') {
          clearLeftovers(ctx, member.dataDir, member.name, true);
          if (prepareClusterKey(config)) ctx.progress(`generated the cluster key for encryption at rest in ${config.dataRoot} (mode 0600; keep a copy: nothing opens the members without it)`);
          state = await createPrimary(ctx, state, member);
          result.created.push(member.name);
          continue;
        }
        requireDataDirectory(member.dataDir, member.name, 'the primary');
        if (runningServer(member.dataDir) === null) {
          await startMember(ctx, state, member, timeoutMs);
          result.started.push(member.name);
        }
        const probe = await probeMember(ctx.control, config, member);
        if (probe.status?.role !== 'primary') {
          throw new ClusterError(ClusterErrorCode.invalidState, `${member.name}, the primary by the cluster state, ${probe.status === null ? 'does not answer' : 'answers as a standby'}`, {
            detail: `${stateFilePath(config.dataRoot)} names ${member.name} the primary of timeline ${state.timeline}.`,
            hint: probe.status === null ? `See its log: walship cluster logs -f FILE ${member.name}.` : 'Promote a member with walship cluster failover -f FILE, or fix the state file.',
          });
        }
        continue;
      }
      switch (role) {
        case 'uninitialized':
          clearLeftovers(ctx, member.dataDir, member.name, true);
          state = await createStandby(ctx, state, member);
          result.created.push(member.name);
          break;
        case 'standby':
          requireDataDirectory(member.dataDir, member.name, 'a standby');
          if (runningServer(member.dataDir) === null) {
            await startMember(ctx, state, member, timeoutMs);
            result.started.push(member.name);
          }
          break;
        case 'fenced':
          if (config.failover.autoRejoin) {
            // Stopped, or still running: an old primary the monitor's failover left alive once
            // its lease ran out (it acknowledges nothing), or one started by hand (read-only).
            state = await rejoinMember(ctx, state, member, timeoutMs);
            result.rejoined.push(member.name);
          } else if (runningServer(member.dataDir) !== null) {
            ctx.progress(`${member.name}: fenced, but running; rejoin it with walship cluster rejoin`);
            result.fenced.push(member.name);
          } else {
            ctx.progress(`${member.name}: fenced old primary, left stopped (auto_rejoin is off): rejoin it with walship cluster rejoin -f FILE ${member.name}`);
            result.fenced.push(member.name);
          }
          break;
        case 'primary':
          // readClusterState refuses a state with two primaries; only state.primary has this role.
          throw new ClusterError(ClusterErrorCode.invalidState, `${member.name} has the role primary but the state names ${state.primary}`);
      }
    }
    // Settings edited in the config since: written to the members that already existed (a reload,
    // or a restart for the few that need one, which is reported, not done).
    const settingsChanged: SettingChange[] = [];
    // A standby whose primary_conninfo or slot changes reconnects after its reload, in its own
    // time: until then its old stream still reads as streaming, so the wait below is for a
    // walreceiver started after the reload (its count of starts, read before it).
    const reconnecting = new Map<string, number>();
    for (const member of startOrder(config, state)) {
      if (result.created.includes(member.name) || result.rejoined.includes(member.name)) continue;
      const before = state.members[member.name]?.role === 'standby' ? (await probeMember(ctx.control, config, member)).status?.walReceiverStarts : undefined;
      const changes = await reapplySettings(ctx, state, member);
      settingsChanged.push(...changes);
      if (before !== undefined && changes.some((change) => change.name === 'primary_conninfo' || change.name === 'primary_slot_name')) reconnecting.set(member.name, before);
    }
    state = await waitStreaming(ctx, state, config.members, timeoutMs, { rewindDiverged: true, reconnecting });
    if (result.created.length > 0 || result.rejoined.length > 0 || settingsChanged.length > 0) await refreshSynchronousNames(ctx, state);
    state = await recordNamesInForce(ctx, state);
    // Until the monitor's next check renews it (failover.enforce_lease): a primary just started has none.
    const primary = findMember(config, state.primary);
    await grantLeaseAfterCommand(ctx, primary, primaryTimeline(state, primary.dataDir), 'cluster up');
    return { state, ...result, unknownMembers, settingsChanged };
  } finally {
    lock.release();
  }
}

function requireDataDirectory(dataDir: string, name: string, what: string): void {
  if (isDataDirectory(dataDir)) return;
  throw new ClusterError(ClusterErrorCode.invalidState, `the data directory of ${name}, ${what}, is missing: "${dataDir}"`, {
    detail: 'The cluster state says it was created, so it is not created again.',
    hint:
      what === 'the primary'
        ? 'Promote a standby in its place (walship cluster failover -f FILE), or start the whole cluster over with walship cluster up --reset (which deletes all its data).'
        : `Copy it again from its upstream: walship cluster reinit -f FILE ${name}.`,
  });
}

/**
 * A member not created yet whose directory is not empty. In a data root this cluster has used
 * before (its state file was there when `up` began), it is what an interrupted creation left (a
 * base backup cut by Ctrl-C), and is removed; in a data root new to the cluster it may be
 * anything, and is not ours to overwrite.
 */
function clearLeftovers(ctx: ClusterContext, dataDir: string, name: string, dataRootIsOurs: boolean): void {
  if (!existsSync(dataDir) || readdirSync(dataDir).length === 0) return;
  if (dataRootIsOurs && runningServer(dataDir) === null) {
    ctx.progress(`${name}: removing what an interrupted creation left in ${dataDir}`);
    rmSync(dataDir, { recursive: true, force: true });
    return;
  }
  throw new ClusterError(ClusterErrorCode.invalidState, `the data directory of ${name}, "${dataDir}", is not empty, and this cluster never created it`, {
    detail: dataRootIsOurs ? 'A server is running in it.' : 'The data root holds no state of this cluster: the directory belongs to something else.',
    hint: `Give the cluster a data root of its own (data_root, or --data-root), or remove "${dataDir}" if nothing in it is needed.`,
  });
}

/** Stops every member at once (immediate: the data is about to go) and deletes the members' data, the state and the history. */
async function resetCluster(ctx: ClusterContext): Promise<void> {
  const { config } = ctx;
  ctx.progress(`reset: stopping every member and deleting the data of cluster ${config.name} in ${config.dataRoot}`);
  // The monitor first: it would fail over while the members go.
  await stopRunningMonitor(config.dataRoot);
  for (const member of config.members) {
    if (runningServer(member.dataDir) !== null) {
      await onMember(member, 'walship stop', () => ctx.control.stop({ dataDir: member.dataDir, mode: 'immediate' })).catch(() => killServer(member.dataDir));
    }
    rmSync(member.dataDir, { recursive: true, force: true });
  }
  rmSync(stateFilePath(config.dataRoot), { force: true });
  rmSync(historyFilePath(config.dataRoot), { force: true });
}
