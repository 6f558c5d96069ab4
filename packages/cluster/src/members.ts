/**
 * The cluster's members as they are now: each one's process and status (probeMembers, the only
 * I/O here), turned into rows (memberRows, pure) for `cluster status` and the table printed by
 * `cluster up`, switchover and failover, in the spirit of `patronictl list`. The JSON keys of a
 * row are DESIGN.md section 10's `members[]` keys; more are added, none renamed.
 */
import { formatLsn, parseLsn } from '@walship/engine/lsn';
import type { ClusterConfig, MemberConfig } from './config.js';
import { memberAddress } from './config.js';
import { isDataDirectory, runningServer } from './member-files.js';
import type { NodeControl, NodeStatusView, ReplicationRowView } from './node-control.js';
import { describeTransition } from './transition.js';
import { effectiveUpstream, type ClusterState, type MemberRole, type PrimaryObservation } from './state.js';

/** How long one status request may take while probing: a member slower than this counts as not answering. */
export const PROBE_TIMEOUT_MS = 2_000;

export interface MemberProbe {
  readonly member: MemberConfig;
  /** The server process running on its data directory, if any. */
  readonly pid: number | null;
  readonly dataDirectoryExists: boolean;
  /** Its answer to a status request; null when it did not answer. */
  readonly status: NodeStatusView | null;
}

export type MemberRunState =
  | 'running'
  | 'streaming'
  | 'catching up'
  | 'starting'
  | 'not answering'
  | 'stopped'
  | 'fenced'
  | 'not created';

export interface MemberRow {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly metricsPort: number;
  /** What the member answered as; while it does not answer, its role in the state. */
  readonly role: 'primary' | 'standby' | MemberRole;
  /** Its role in the cluster state. */
  readonly stateRole: MemberRole;
  readonly state: MemberRunState;
  readonly timeline: number | null;
  /** A primary's flush position; a standby's replay position. */
  readonly lsn: string | null;
  readonly receiveLsn: string | null;
  /** Behind the primary's flush position (by replay). */
  readonly lagBytes: number | null;
  readonly writeLagMs: number | null;
  readonly flushLagMs: number | null;
  readonly replayLagMs: number | null;
  readonly syncState: string | null;
  /** The member it streams from (by the state); null for the primary. */
  readonly upstream: string | null;
  /** True when it answers in a role other than the state's: a sign of a split brain or a stale state. */
  readonly roleMismatch: boolean;
  readonly pid: number | null;
  readonly dataDir: string;
}

export async function probeMember(control: NodeControl, config: ClusterConfig, member: MemberConfig, timeoutMs = PROBE_TIMEOUT_MS): Promise<MemberProbe> {
  const server = runningServer(member.dataDir);
  const status = server === null ? null : await control.status({ address: memberAddress(config, member), timeoutMs }).catch(() => null);
  return { member, pid: server?.pid ?? null, dataDirectoryExists: isDataDirectory(member.dataDir), status };
}

/**
 * Probes every member at once; those named in `skip` are not asked (their status is null): a
 * failover need not wait out the timeout of an old primary that is frozen.
 */
export function probeMembers(control: NodeControl, config: ClusterConfig, timeoutMs = PROBE_TIMEOUT_MS, skip: readonly string[] = []): Promise<MemberProbe[]> {
  return Promise.all(
    config.members.map((member) =>
      skip.includes(member.name)
        ? { member, pid: runningServer(member.dataDir)?.pid ?? null, dataDirectoryExists: isDataDirectory(member.dataDir), status: null }
        : probeMember(control, config, member, timeoutMs),
    ),
  );
}

const lsnOf = (text: string | null | undefined): number | null => (typeof text === 'string' ? parseLsn(text) : null);
const numberOrNull = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) ? value : null);

/** The replication row (on its upstream) of a member, matched by application_name. */
function replicationRow(name: string, upstream: MemberProbe | undefined): ReplicationRowView | null {
  const rows = upstream?.status?.replication ?? [];
  return rows.find((row) => row.applicationName?.toLowerCase() === name.toLowerCase()) ?? null;
}

function runState(probe: MemberProbe, stateRole: MemberRole): MemberRunState {
  if (probe.status !== null) {
    if (probe.status.role === 'primary') return 'running';
    const receiver = probe.status.walReceiver?.status;
    if (receiver === 'streaming') return 'streaming';
    return 'catching up';
  }
  if (probe.pid !== null) return 'not answering';
  if (stateRole === 'fenced') return 'fenced';
  if (stateRole === 'uninitialized' || !probe.dataDirectoryExists) return 'not created';
  return 'stopped';
}

export function memberRows(config: ClusterConfig, state: ClusterState, probes: readonly MemberProbe[]): MemberRow[] {
  const byName = new Map(probes.map((probe) => [probe.member.name, probe]));
  const primaryProbe = byName.get(state.primary);
  const primaryLsn = primaryProbe?.status?.role === 'primary' ? lsnOf(primaryProbe.status.flushLsn) : null;
  return probes.map((probe) => {
    const { member, status } = probe;
    const stateRole = state.members[member.name]?.role ?? 'uninitialized';
    const upstream = effectiveUpstream(config, state, member);
    const row = upstream === null ? null : replicationRow(member.name, byName.get(upstream));
    const lsn = status === null ? null : status.role === 'primary' ? status.flushLsn : (status.replayLsn ?? null);
    const lsnValue = lsnOf(lsn);
    const lagBytes = status === null ? null : status.role === 'primary' ? 0 : primaryLsn !== null && lsnValue !== null ? Math.max(0, primaryLsn - lsnValue) : null;
    const observedRole = status?.role ?? null;
    const expectedRole = stateRole === 'primary' ? 'primary' : 'standby';
    return {
      name: member.name,
      address: memberAddress(config, member),
      port: member.port,
      metricsPort: member.metricsPort,
      role: observedRole ?? stateRole,
      stateRole,
      state: runState(probe, stateRole),
      timeline: status?.timeline ?? state.members[member.name]?.timeline ?? null,
      lsn,
      receiveLsn: status?.receiveLsn ?? null,
      lagBytes,
      writeLagMs: numberOrNull(row?.writeLagMs),
      flushLagMs: numberOrNull(row?.flushLagMs),
      replayLagMs: numberOrNull(row?.replayLagMs),
      syncState: row?.syncState ?? null,
      upstream,
      roleMismatch: observedRole !== null && observedRole !== expectedRole,
      pid: probe.pid,
      dataDir: member.dataDir,
    };
  });
}

/** What the primary reports now, for the state file; null when it does not answer as a primary. */
/**
 * What the primary reports, as the state keeps it. `synchronousStandbyNames` is the setting the
 * cluster gives it; the one in force (its status) is kept when it reports one (the relaxed
 * synchronous mode may have changed it), and an empty one where the cluster asks for synchronous
 * replication is recorded as synchronous replication turned off.
 */
export function observePrimary(state: ClusterState, probes: readonly MemberProbe[], synchronousStandbyNames: string, now: Date = new Date()): PrimaryObservation | null {
  const primary = probes.find((probe) => probe.member.name === state.primary);
  const status = primary?.status;
  if (status === null || status === undefined || status.role !== 'primary') return null;
  // The released position only grows on one primary's timeline: a restarted primary reports 0/0
  // again until its standbys confirm, but what it released before is still what rule 2 needs.
  const previous = state.observation;
  const carried = previous !== null && previous.primary === state.primary && previous.timeline === status.timeline ? lsnOf(previous.releasedLsn) : null;
  const reported = lsnOf(typeof status.syncReleasedLsn === 'string' ? status.syncReleasedLsn : null);
  const released = carried === null ? reported : reported === null ? carried : Math.max(carried, reported);
  const inForce = typeof status.synchronousStandbyNames === 'string' ? status.synchronousStandbyNames : null;
  return {
    at: now.toISOString(),
    primary: state.primary,
    timeline: status.timeline,
    flushLsn: status.flushLsn,
    releasedLsn: released === null ? null : formatLsn(released),
    synchronousStandbyNames: inForce ?? synchronousStandbyNames,
    synchronousDisabled: inForce === '' && synchronousStandbyNames !== '',
    standbys: (status.replication ?? []).map((row) => ({
      name: row.applicationName ?? '',
      flushLsn: row.flushLsn ?? null,
      syncState: row.syncState ?? null,
      syncPriority: numberOrNull(row.syncPriority),
    })),
  };
}

function cell(value: string | number | null): string {
  return value === null ? '' : String(value);
}

function lagCell(bytes: number | null, ms: number | null): string {
  if (bytes === null && ms === null) return '';
  const size = bytes === null ? '' : bytes < 1024 ? `${bytes} B` : bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} kB` : `${(bytes / 1048576).toFixed(1)} MB`;
  return ms === null ? size : `${size}${size === '' ? '' : ', '}${ms.toFixed(3)} ms`;
}

/**
 * The members as an aligned table, `patronictl list` style, with a title line naming the cluster
 * and its primary. Rows with a role the state does not expect are marked with `!`.
 */
export function formatMembersTable(config: ClusterConfig, state: ClusterState, rows: readonly MemberRow[]): string {
  const headers = ['Member', 'Address', 'Role', 'State', 'TL', 'LSN', 'Lag (bytes, replay time)', 'Sync', 'Upstream'];
  const cells = rows.map((row) => [
    `${row.roleMismatch ? '!' : ''}${row.name}`,
    row.address,
    row.role === 'primary' ? 'primary' : row.role,
    row.state,
    cell(row.timeline),
    cell(row.lsn),
    row.role === 'primary' ? '' : lagCell(row.lagBytes, row.replayLagMs),
    cell(row.syncState),
    cell(row.upstream),
  ]);
  const widths = headers.map((header, column) => Math.max(header.length, ...cells.map((line) => line[column]!.length)));
  const line = (values: readonly string[]) => `| ${values.map((value, column) => value.padEnd(widths[column]!)).join(' | ')} |`;
  const rule = `+${widths.map((width) => '-'.repeat(width + 2)).join('+')}+`;
  const systemId = state.systemId === null ? '' : ` (system ${state.systemId})`;
  const title = `Cluster: ${config.name}${systemId}, primary ${state.primary}, timeline ${state.timeline}`;
  const notes = rows.filter((row) => row.roleMismatch).map((row) => `! ${row.name} answers as ${row.role}, but the cluster state says ${row.stateRole}\n`);
  if (state.transition !== null && state.transition !== undefined) notes.push(`! ${describeTransition(state.transition)}: no lease is granted until it is\n`);
  return `${title}\n${rule}\n${line(headers)}\n${rule}\n${cells.map(line).join('\n')}\n${rule}\n${notes.join('')}`;
}

