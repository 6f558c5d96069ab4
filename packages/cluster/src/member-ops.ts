/**
 * Steps on one member that the cluster operations share: create the primary, create a standby
 * from its upstream, start a member in its current role, repoint a standby, rejoin a fenced old
 * primary, and wait until standbys stream. Each returns the new state; the caller writes it.
 */
import { rmSync } from 'node:fs';
import { parseLsn } from '@walship/engine/lsn';
import { ClusterError, ClusterErrorCode } from './cluster-error.js';
import { findMember, streamAddress, type MemberConfig } from './config.js';
import { clusterCredentials } from './cluster-auth.js';
import { addressOf, initSettings, memberSettings, normalizedSetting, onMember, replicationCredentialsOf, standbySettings, waitUntil, type ClusterContext } from './context.js';
import { appendHistory } from './history.js';
import { isDataDirectory, primaryTimeline, pruneSlots, readControlSummary, removeFence, runningServer, writeFence } from './member-files.js';
import type { NodeControl } from './node-control.js';
import { probeMember, probeMembers, observePrimary, type MemberProbe } from './members.js';
import { effectiveUpstream, synchronousNamesInput, withMember, writeClusterState, type ClusterState } from './state.js';
import { synchronousStandbyNamesFor } from './synchronous-names.js';
import { clusterCaDir, ensureMemberCertificate } from './tls.js';
import { divergedFromPrimary, timelineHistoryOf } from './divergence.js';

/** initdb and start for the member the state names primary, on a cluster not created yet. */
export async function createPrimary(ctx: ClusterContext, state: ClusterState, member: MemberConfig): Promise<ClusterState> {
  ctx.progress(`${member.name}: creating the primary in ${member.dataDir}`);
  // With the auth key: the superuser and the replication user are created with the data
  // directory; standbys get them with their base backups.
  const users = clusterCredentials(ctx.config);
  await onMember(member, 'walship init', () => ctx.control.init({ dataDir: member.dataDir, port: member.port, settings: initSettings(ctx.config, state, member), ...(users === null ? {} : { users }) }));
  const systemId = readControlSummary(member.dataDir)?.systemId ?? null;
  let next: ClusterState = { ...state, systemId };
  next = withMember(next, member.name, { role: 'primary', timeline: 1, fence: null });
  next = writeClusterState(ctx.config.dataRoot, next);
  appendHistory(ctx.config.dataRoot, {
    at: new Date().toISOString(), event: 'bootstrap', member: member.name, from: null, timeline: 1, lsn: null, durationMs: 0,
    summary: `${member.name} created as the primary (system ${systemId ?? '?'})`, decision: null,
  });
  await startMember(ctx, next, member);
  return next;
}

/** A standby copied from its upstream (which must be running), then started. */
export async function createStandby(ctx: ClusterContext, state: ClusterState, member: MemberConfig): Promise<ClusterState> {
  const { upstream, settings: replicationSettings } = standbySettings(ctx.config, state, member);
  const settings = [...memberSettings(ctx.config, state, member, upstream), ...replicationSettings.filter(([name]) => name !== 'primary_conninfo' && name !== 'primary_slot_name')];
  ctx.progress(`${member.name}: base backup from ${upstream.name} (${addressOf(ctx, upstream)}) into ${member.dataDir}`);
  const backup = await onMember(member, `base backup from ${upstream.name}`, () =>
    ctx.control.baseBackup({ from: addressOf(ctx, upstream), dataDir: member.dataDir, port: member.port, settings, slot: member.slot, ...passwordFor(ctx, upstream) }),
  );
  ctx.progress(`${member.name}: copied ${(backup.bytes / 1048576).toFixed(1)} MB in ${(backup.elapsedMs / 1000).toFixed(2)} s`);
  let next = withMember(state, member.name, { role: 'standby', timeline: readControlSummary(member.dataDir)?.timeline ?? null, fence: null });
  next = writeClusterState(ctx.config.dataRoot, next);
  await startMember(ctx, next, member);
  return next;
}

/**
 * Starts a stopped member in the role the state gives it. A standby is first pointed at the
 * upstream the state gives it now (the cluster may have changed primary while it was down), its
 * slot made sure of there, and slots of its own that nobody streams from any more removed.
 */
export async function startMember(ctx: ClusterContext, state: ClusterState, member: MemberConfig, timeoutMs?: number): Promise<void> {
  const role = state.members[member.name]?.role;
  if (role === 'fenced' || role === 'uninitialized') {
    throw new ClusterError(ClusterErrorCode.wrongMemberState, `${member.name} cannot be started: it is ${role === 'fenced' ? 'fenced' : 'not created yet'}`, {
      hint: role === 'fenced' ? `Rejoin it as a standby: walship cluster rejoin -f FILE ${member.name}.` : 'Create it with walship cluster up -f FILE.',
    });
  }
  if (runningServer(member.dataDir) !== null) return;
  if (role === 'standby') {
    const { upstream, settings } = standbySettings(ctx.config, state, member);
    await ensureSlot(ctx, member, upstream);
    await onMember(member, 'writing primary_conninfo', () => ctx.control.setSettings({ dataDir: member.dataDir, settings }));
  }
  const removed = pruneSlots(member.dataDir, slotsServedBy(ctx, state, member));
  if (removed.length > 0) ctx.progress(`${member.name}: removed replication slots nobody streams from any more: ${removed.join(', ')}`);
  if (await onMember(member, 'writing its certificate', () => ensureMemberCertificate(ctx.config, member))) {
    ctx.progress(`${member.name}: wrote its certificate, signed by the cluster CA (${clusterCaDir(ctx.config)})`);
  }
  ctx.progress(`${member.name}: starting as ${role}`);
  await onMember(member, 'walship start', () => ctx.control.start({ dataDir: member.dataDir, ...(timeoutMs === undefined ? {} : { timeoutMs }) }));
}

/** The slots standbys that stream from `member` use on it. */
function slotsServedBy(ctx: ClusterContext, state: ClusterState, member: MemberConfig): string[] {
  return ctx.config.members
    .filter((other) => other.slot !== null && state.members[other.name]?.role === 'standby' && effectiveUpstream(ctx.config, state, other) === member.name)
    .map((other) => other.slot!);
}

/** Creates a standby's slot on its upstream when the upstream is running; a failure is reported, not fatal (the standby streams without it). */
async function ensureSlot(ctx: ClusterContext, member: MemberConfig, upstream: MemberConfig): Promise<void> {
  if (member.slot === null || runningServer(upstream.dataDir) === null) return;
  try {
    const { created } = await ctx.control.createSlot({ address: addressOf(ctx, upstream), name: member.slot, ...passwordFor(ctx, upstream) });
    if (created) ctx.progress(`${member.name}: created replication slot "${member.slot}" on ${upstream.name}`);
  } catch (error) {
    ctx.progress(`${member.name}: warning: could not create replication slot "${member.slot}" on ${upstream.name}: ${(error as Error).message}`);
  }
}

/**
 * Points a standby at the upstream the state gives it. A running one is reloaded (its
 * walreceiver reconnects, and follows the new timeline); a stopped one gets the setting for its
 * next start.
 */
export async function repointStandby(ctx: ClusterContext, state: ClusterState, member: MemberConfig): Promise<void> {
  const { upstream, settings } = standbySettings(ctx.config, state, member);
  await ensureSlot(ctx, member, upstream);
  const { reloaded } = await onMember(member, 'repointing primary_conninfo', () => ctx.control.setSettings({ dataDir: member.dataDir, settings }));
  ctx.progress(`${member.name}: now follows ${upstream.name}${reloaded ? '' : ' (at its next start)'}`);
}

/**
 * Brings a member back as a standby of the upstream the state gives it: stop it, lift the
 * fence, rewind it (pg_rewind -R: only what changed since the histories forked is copied), give
 * it its own settings again (the rewind brought the source's walship.conf), start it.
 */
export async function rejoinMember(ctx: ClusterContext, state: ClusterState, member: MemberConfig, timeoutMs: number): Promise<ClusterState> {
  const started = Date.now();
  const role = state.members[member.name]?.role;
  if (role === 'primary') {
    throw new ClusterError(ClusterErrorCode.wrongMemberState, `${member.name} is the primary: there is nothing for it to rejoin`, {
      hint: 'Rejoin an old primary or a standby that can no longer follow; walship cluster status -f FILE shows the roles.',
    });
  }
  if (role === 'uninitialized' || !isDataDirectory(member.dataDir)) {
    throw new ClusterError(ClusterErrorCode.wrongMemberState, `${member.name} has no data directory to rewind`, { hint: `Create it with walship cluster reinit -f FILE ${member.name}.` });
  }
  // The state as it will be: the member a standby, so that its upstream is the one it will follow.
  const target = withMember(state, member.name, { role: 'standby', fence: null });
  const upstreamName = effectiveUpstream(ctx.config, target, member)!;
  const upstream = findMember(ctx.config, upstreamName);
  const upstreamProbe = await probeMember(ctx.control, ctx.config, upstream);
  if (upstreamProbe.status === null) {
    throw new ClusterError(ClusterErrorCode.wrongMemberState, `${member.name} cannot rejoin: its upstream ${upstream.name} does not answer`, {
      hint: `Start ${upstream.name} first (walship cluster start -f FILE ${upstream.name}).`,
    });
  }
  if (runningServer(member.dataDir) !== null) {
    ctx.progress(`${member.name}: stopping it for the rewind`);
    await onMember(member, 'walship stop', () => ctx.control.stop({ dataDir: member.dataDir, mode: 'fast' }));
  }
  const control = readControlSummary(member.dataDir);
  let fenceLifted = false;
  if (role === 'fenced' && control !== null && !control.cleanShutdown) {
    // The crash recovery the rewind runs first must run as the primary this directory last was.
    removeFence(member.dataDir);
    fenceLifted = true;
  }
  ctx.progress(`${member.name}: rewinding from ${upstream.name} (${addressOf(ctx, upstream)})`);
  let rewind: Awaited<ReturnType<NodeControl['rewind']>>;
  try {
    rewind = await onMember(member, `walship rewind from ${upstream.name}`, () => ctx.control.rewind({ dataDir: member.dataDir, source: addressOf(ctx, upstream), ...passwordFor(ctx, upstream) }));
  } catch (error) {
    // A failed rewind leaves the old primary's directory as it was: fenced again, so that
    // whoever starts it gets a read-only server, never a second primary.
    if (fenceLifted) writeFence(member.dataDir);
    throw error;
  }
  ctx.progress(`${member.name}: ${rewind.rewound ? `rewound (histories forked at ${rewind.divergenceLsn ?? '?'})` : 'nothing to rewind: it never went past the fork'}`);
  await onMember(member, 'writing its settings', () =>
    ctx.control.setSettings({ dataDir: member.dataDir, settings: memberSettings(ctx.config, target, member, upstream) }),
  );
  let next = writeClusterState(ctx.config.dataRoot, target);
  await startMember(ctx, next, member, timeoutMs);
  await waitStreaming(ctx, next, [member], timeoutMs);
  // It can acknowledge again: the primary may wait for it once more.
  await refreshSynchronousNames(ctx, next);
  const status = (await probeMember(ctx.control, ctx.config, member)).status;
  next = writeClusterState(ctx.config.dataRoot, withMember(next, member.name, { timeline: status?.timeline ?? null }));
  appendHistory(ctx.config.dataRoot, {
    at: new Date().toISOString(), event: 'rejoin', member: member.name, from: null, timeline: next.timeline, lsn: status?.replayLsn ?? null,
    durationMs: Date.now() - started, summary: `${member.name} rejoined as a standby of ${upstream.name}${rewind.rewound ? ` (rewound from ${rewind.divergenceLsn ?? '?'})` : ''}`, decision: null,
  });
  return next;
}

/** Removes a member's data directory and copies it again from its upstream. */
export async function reinitMember(ctx: ClusterContext, state: ClusterState, member: MemberConfig): Promise<ClusterState> {
  if (state.primary === member.name) {
    throw new ClusterError(ClusterErrorCode.wrongMemberState, `${member.name} is the primary and cannot be reinitialized`, {
      hint: `Switch over to another member first (walship cluster switchover -f FILE), then reinit ${member.name}.`,
    });
  }
  const started = Date.now();
  if (runningServer(member.dataDir) !== null) {
    ctx.progress(`${member.name}: stopping it`);
    await onMember(member, 'walship stop', () => ctx.control.stop({ dataDir: member.dataDir, mode: 'immediate' }));
  }
  ctx.progress(`${member.name}: removing ${member.dataDir}`);
  rmSync(member.dataDir, { recursive: true, force: true });
  let next = withMember(state, member.name, { role: 'uninitialized', timeline: null, fence: null });
  next = writeClusterState(ctx.config.dataRoot, next);
  next = await createStandby(ctx, next, member);
  await refreshSynchronousNames(ctx, next);
  appendHistory(ctx.config.dataRoot, {
    at: new Date().toISOString(), event: 'reinit', member: member.name, from: null, timeline: next.timeline, lsn: null,
    durationMs: Date.now() - started, summary: `${member.name} copied again from ${effectiveUpstream(ctx.config, next, member) ?? '?'}`, decision: null,
  });
  return next;
}

/**
 * Waits until each of `members` that runs as a standby streams from the upstream the state gives
 * it, on the primary's timeline (primaryTimeline: the state's, or the one the primary's own crash
 * recovery moved it to). With `rewindDiverged`, a standby that can never get there, having
 * replayed past where the primary's timeline forked (divergence.ts), is rewound and started
 * again (rejoinMember) instead of waited for; the state returned says so.
 */
export async function waitStreaming(
  ctx: ClusterContext,
  state: ClusterState,
  members: readonly MemberConfig[],
  timeoutMs: number,
  options: { readonly rewindDiverged?: boolean; readonly reconnecting?: ReadonlyMap<string, number> } = {},
): Promise<ClusterState> {
  const pending = new Map<string, string>();
  for (const member of members) {
    if (state.members[member.name]?.role !== 'standby' || runningServer(member.dataDir) === null) continue;
    const upstream = findMember(ctx.config, effectiveUpstream(ctx.config, state, member)!);
    // What its walreceiver reports as upstream: what its primary_conninfo names.
    pending.set(member.name, streamAddress(ctx.config, member, upstream));
  }
  if (pending.size === 0) return state;
  const last = new Map<string, string>();
  let timeline = state.timeline;
  let current = state;
  await waitUntil(
    `${[...pending.keys()].join(', ')} to stream`,
    timeoutMs,
    async () => {
      const primary = findMember(ctx.config, current.primary);
      timeline = primaryTimeline(current, primary.dataDir);
      const primaryStatus = options.rewindDiverged === true ? (await probeMember(ctx.control, ctx.config, primary)).status : null;
      const history = primaryStatus === null ? null : timelineHistoryOf(primaryStatus);
      for (const [name, upstreamAddress] of pending) {
        const member = findMember(ctx.config, name);
        const probe = await probeMember(ctx.control, ctx.config, member);
        const receiver = probe.status?.walReceiver;
        // A member reconnecting for new settings counts once a walreceiver started since (walReceiverStarts past the count before).
        const startsBefore = options.reconnecting?.get(name);
        const streaming =
          probe.status?.role === 'standby' && receiver?.status === 'streaming' && receiver.upstream === upstreamAddress && probe.status.timeline === timeline &&
          (startsBefore === undefined || (probe.status.walReceiverStarts ?? 0) > startsBefore);
        if (streaming) {
          pending.delete(name);
          continue;
        }
        const diverged = probe.status?.role !== 'standby' || primaryStatus === null || history === null
          ? null
          : divergedFromPrimary({ timeline: probe.status.timeline, replayLsn: lsnValue(probe.status.replayLsn) }, { timeline: primaryStatus.timeline, history });
        if (diverged !== null) {
          ctx.progress(`${name}: cannot follow ${primary.name}: ${diverged}; rewinding it`);
          current = await rejoinMember(ctx, current, member, timeoutMs);
          pending.delete(name);
          continue;
        }
        last.set(
          name,
          probe.status === null
            ? 'does not answer'
            : `walreceiver ${receiver?.status ?? 'absent'}${receiver?.upstream ? ` from ${receiver.upstream}` : ''}${receiver?.lastError ? `: ${receiver.lastError}` : ''}, on timeline ${probe.status.timeline}`,
        );
      }
      return pending.size === 0;
    },
    () => [...pending.keys()].map((name) => `${name}: ${last.get(name) ?? 'not seen yet'}; it should stream from ${pending.get(name)} on timeline ${timeline}`).join('; '),
  );
  return current;
}

/**
 * Probes every member but the fenced ones: those are neither observed nor updated by an
 * observation; one may be frozen (the monitor's failover leaves it running).
 */
export async function probeUnfenced(ctx: ClusterContext, state: ClusterState): Promise<MemberProbe[]> {
  const fenced = Object.entries(state.members).filter(([, member]) => member.role === 'fenced').map(([name]) => name);
  return probeMembers(ctx.control, ctx.config, undefined, fenced);
}

/** Reads the primary's status and keeps it in the state (for a failover decision after it is gone). */
export async function recordObservation(ctx: ClusterContext, state: ClusterState, probes?: readonly MemberProbe[]): Promise<ClusterState> {
  const seen = probes ?? (await probeUnfenced(ctx, state));
  const names = synchronousStandbyNamesFor(ctx.config, synchronousNamesInput(state, state.primary));
  const observation = observePrimary(state, seen, names);
  if (observation === null) return state;
  const members = { ...state.members };
  for (const probe of seen) {
    const current = members[probe.member.name];
    if (probe.status !== null && current !== undefined && current.role !== 'fenced') members[probe.member.name] = { ...current, timeline: probe.status.timeline };
  }
  return writeClusterState(ctx.config.dataRoot, { ...state, timeline: observation.timeline, observation, members });
}

/**
 * Gives the running primary the synchronous_standby_names the state calls for now (a reload):
 * after a member was fenced, rejoined or created, the standbys that can acknowledge changed.
 */
export async function refreshSynchronousNames(ctx: ClusterContext, state: ClusterState): Promise<void> {
  if (ctx.config.synchronous === null) return;
  const primary = findMember(ctx.config, state.primary);
  if (runningServer(primary.dataDir) === null) return;
  const names = synchronousStandbyNamesFor(ctx.config, synchronousNamesInput(state, primary.name));
  await onMember(primary, 'setting synchronous_standby_names', () => ctx.control.setSettings({ dataDir: primary.dataDir, settings: [['synchronous_standby_names', names]] }));
}

/** A status LSN as a number (null when absent or not an LSN). */
export function lsnValue(text: string | null | undefined): number | null {
  return typeof text === 'string' ? parseLsn(text) : null;
}

/** The `user` and `password` options of a replication connection to `upstream`, when it requires them. */
function passwordFor(ctx: ClusterContext, upstream: MemberConfig): { user?: string; password?: string } {
  const credentials = replicationCredentialsOf(ctx.config, upstream);
  return credentials === null ? {} : { ...(credentials.user === undefined ? {} : { user: credentials.user }), password: credentials.password };
}

/** A setting `cluster up` changed on a member that already existed. */
export interface SettingChange {
  readonly member: string;
  readonly name: string;
  readonly from: string;
  readonly to: string;
  /** Its context is postmaster: written, but in force only after a restart. */
  readonly restartRequired: boolean;
}

/**
 * The settings the config gives an existing member (the cluster-wide and its own, its name, the
 * lease, the synchronous level; a standby's primary_conninfo and slot), compared with its
 * walship.conf: what differs is written and a running member reloaded (a standby whose
 * primary_conninfo changed reconnects). Settings that need a restart are reported as such. The
 * primary's synchronous_standby_names is left to refreshSynchronousNames and the monitor (the
 * relaxed mode may have changed it on purpose); a setting removed from the config keeps its
 * value (walship.conf may hold settings set by hand).
 */
export async function reapplySettings(ctx: ClusterContext, state: ClusterState, member: MemberConfig): Promise<SettingChange[]> {
  const role = state.members[member.name]?.role;
  if ((role !== 'primary' && role !== 'standby') || !isDataDirectory(member.dataDir)) return [];
  const { readConfigFile, lookupSetting, SETTING_DEFINITIONS } = await import('@walship/server/settings/index');
  const wanted = new Map<string, string>();
  for (const [name, value] of memberSettings(ctx.config, state, member, null)) wanted.set(lookupSetting(name), value);
  wanted.delete('synchronous_standby_names');
  if (role === 'standby') for (const [name, value] of standbySettings(ctx.config, state, member).settings) wanted.set(lookupSetting(name), value);
  let current;
  try {
    current = readConfigFile(member.dataDir);
  } catch (error) {
    ctx.progress(`${member.name}: warning: could not read its walship.conf to compare its settings: ${(error as Error).message}`);
    return [];
  }
  const changes: SettingChange[] = [];
  for (const [settingName, value] of wanted) {
    const from = current.text(settingName as Parameters<typeof current.text>[0]);
    if (normalizedSetting(settingName, value) === from) continue;
    const definition = SETTING_DEFINITIONS[settingName as keyof typeof SETTING_DEFINITIONS] as { context: string; secret?: boolean };
    // Passwords stay out of the output (primary_conninfo may carry one).
    const hidden = definition.secret === true || settingName === 'primary_conninfo';
    changes.push({ member: member.name, name: settingName, from: hidden ? '(hidden)' : from, to: hidden ? '(hidden)' : value, restartRequired: definition.context === 'postmaster' });
  }
  if (changes.length === 0) return [];
  const pairs = changes.map((change) => [change.name, wanted.get(change.name)!] as const);
  const { reloaded } = await onMember(member, 'writing its settings', () => ctx.control.setSettings({ dataDir: member.dataDir, settings: pairs }));
  for (const change of changes) {
    ctx.progress(`${member.name}: ${change.name} ${change.from} -> ${change.to}${change.restartRequired ? ' (in force after a restart: walship cluster stop/start)' : reloaded ? ' (reloaded)' : ''}`);
  }
  return changes;
}
