/**
 * The live cluster state: `DATA_ROOT/cluster-state.json`. Who is primary now, each member's role
 * and timeline, which old primary is fenced, and the last thing seen of the primary (its WAL
 * position and its standbys' synchronous states, which the failover decision needs once the
 * primary is gone). Every cluster command acts on this, not on the roles the YAML started with:
 * after a failover, `cluster up` starts the old primary as a standby to rejoin, never as a
 * primary (DESIGN.md section 8).
 *
 * Invariants:
 *   1. Exactly one member is `primary`, and `state.primary` names it.
 *   2. A `fenced` member is an old primary that must not run as a primary again: before it runs
 *      at all it is rewound from the current primary (cluster rejoin).
 *   3. The file is replaced atomically: written to a temporary file, fsynced, renamed over the
 *      old one, and the directory fsynced, so a crash leaves the old state or the new one, never
 *      a mix. `generation` grows by one with each write.
 *   4. A change of primary is recorded before it is made: `transition` names the old primary,
 *      the member being promoted and the fence the old one gets, and is written (with the old
 *      primary's directory fenced) before the promotion is asked for; the state that names the
 *      new primary clears it. A transition still there was interrupted: it is settled from
 *      what the members say (transition.ts) before anyone gets a lease or fails over again.
 *   5. The primary's synchronous_standby_names are recorded before they take effect
 *      (`synchronousNames`; the names a promotion gives go into `transition` first): a failover
 *      decided at any moment judges who may hold every acknowledged commit by names that cover
 *      the ones in force (synchronous-record.ts says how each change keeps this).
 *
 * Who writes it: the cluster commands, under the data root's lock (lock.ts).
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterError, ClusterErrorCode } from './cluster-error.js';
import type { ClusterConfig, MemberConfig } from './config.js';
import { STATE_FILE_NAME, STATE_FILE_VERSION } from './constants.js';

export const MEMBER_ROLES = ['primary', 'standby', 'fenced', 'uninitialized'] as const;
export type MemberRole = (typeof MEMBER_ROLES)[number];

export interface FenceRecord {
  /** ISO time of the fencing. */
  readonly at: string;
  readonly reason: string;
  /** The timeline the member was primary on. */
  readonly timeline: number;
  /** Who was promoted in its place. */
  readonly newPrimary: string;
}

export interface MemberState {
  readonly role: MemberRole;
  /** The timeline it was last seen on; null before it exists. */
  readonly timeline: number | null;
  readonly fence: FenceRecord | null;
  /**
   * Stopped on purpose by `cluster stop`: the monitor does not start it again (it restarts
   * members that died). Cleared when a command starts it. Absent: false.
   */
  readonly stoppedByCommand?: boolean;
}

/** A standby as its primary last reported it (pg_stat_replication). */
export interface ObservedStandby {
  readonly name: string;
  readonly flushLsn: string | null;
  /** `sync`, `quorum`, `potential`, `async`, or null when not reported. */
  readonly syncState: string | null;
  readonly syncPriority: number | null;
}

/** The last status read from the primary. */
export interface PrimaryObservation {
  readonly at: string;
  readonly primary: string;
  readonly timeline: number;
  readonly flushLsn: string;
  /** The synchronous_standby_names in force on the primary. */
  readonly synchronousStandbyNames: string;
  readonly standbys: readonly ObservedStandby[];
  /**
   * The highest position released to synchronous commits the primary has reported on this
   * timeline (its `syncReleasedLsn`, kept as the highest seen): no standby behind it may be
   * promoted (failover rule 2). Null (or absent, in a state written before it existed) when
   * unknown or with asynchronous replication.
   */
  readonly releasedLsn?: string | null;
  /**
   * The config asks for synchronous replication, but the primary runs without (the relaxed
   * synchronous mode emptied synchronous_standby_names, or is about to change it): no standby is
   * known to hold every acknowledged commit. Absent: false.
   */
  readonly synchronousDisabled?: boolean;
}

/** The synchronous_standby_names recorded for a primary (invariant 5). */
export interface SynchronousNamesRecord {
  /** The primary they are for: a record for another member is out of date. */
  readonly primary: string;
  /**
   * The names in force on it, or while they change the union of the names before and after:
   * every standby that may have acknowledged a commit above the recorded released position.
   */
  readonly names: string;
}

/** A change of primary under way (invariant 4). */
export interface PrimaryTransition {
  readonly kind: 'failover' | 'switchover';
  /** The primary being replaced: its directory is fenced before the promotion is asked for. */
  readonly from: string;
  /** The member being promoted. */
  readonly to: string;
  /** The timeline `from` was primary on: `to`, once promoted, is on a higher one. */
  readonly fromTimeline: number;
  /** ISO time the transition was recorded. */
  readonly startedAt: string;
  /** The fence record `from` gets in the state once `to` is the primary. */
  readonly fence: FenceRecord;
  /**
   * The synchronous_standby_names `to` is given as it is promoted (invariant 5): recorded here
   * before it gets them, and the record of the state that names it primary. Absent in a state
   * written before it existed.
   */
  readonly synchronousStandbyNames?: string;
}

export interface ClusterState {
  readonly version: number;
  readonly cluster: string;
  readonly systemId: string | null;
  readonly primary: string;
  /** The member that was primary before the current one; null until the first change. */
  readonly previousPrimary: string | null;
  /** The primary's timeline as last seen. */
  readonly timeline: number;
  readonly generation: number;
  readonly updatedAt: string;
  readonly members: Readonly<Record<string, MemberState>>;
  readonly observation: PrimaryObservation | null;
  /** A change of primary recorded and not yet done or settled (invariant 4). Absent: none. */
  readonly transition?: PrimaryTransition | null;
  /**
   * The synchronous_standby_names recorded for the primary (invariant 5). Null or absent: none
   * recorded (a cluster just created runs with the config's rule).
   */
  readonly synchronousNames?: SynchronousNamesRecord | null;
}

export function stateFilePath(dataRoot: string): string {
  return join(dataRoot, STATE_FILE_NAME);
}

/** The state of a cluster nothing has been created for yet: the initial primary, all members uninitialized. */
export function initialClusterState(config: ClusterConfig, now: Date = new Date()): ClusterState {
  return {
    version: STATE_FILE_VERSION,
    cluster: config.name,
    systemId: null,
    primary: config.initialPrimary,
    previousPrimary: null,
    timeline: 1,
    generation: 0,
    updatedAt: now.toISOString(),
    members: Object.fromEntries(config.members.map((member) => [member.name, { role: 'uninitialized', timeline: null, fence: null } satisfies MemberState])),
    observation: null,
  };
}

/**
 * The state with every member of the config present (a member added to the YAML later starts
 * uninitialized) and the names of members the state has but the config no longer lists.
 */
export function reconcileWithConfig(state: ClusterState, config: ClusterConfig): { state: ClusterState; unknownMembers: string[] } {
  const members: Record<string, MemberState> = { ...state.members };
  for (const member of config.members) {
    if (members[member.name] === undefined) members[member.name] = { role: 'uninitialized', timeline: null, fence: null };
  }
  const unknownMembers = Object.keys(state.members).filter((name) => !config.members.some((member) => member.name === name));
  return { state: { ...state, members }, unknownMembers };
}

/** A copy with one member's state replaced. */
export function withMember(state: ClusterState, name: string, member: Partial<MemberState>): ClusterState {
  const current = state.members[name] ?? { role: 'uninitialized', timeline: null, fence: null };
  return { ...state, members: { ...state.members, [name]: { ...current, ...member } } };
}

/**
 * The state after `promoted` became the primary on `timeline`: the old primary becomes a standby
 * (a switchover, it was shut down cleanly and follows) or is fenced (a failover). The
 * synchronous names the transition gave `promoted` are its record (invariant 5).
 */
export function withNewPrimary(
  state: ClusterState,
  promoted: string,
  timeline: number,
  oldPrimary: { fence: FenceRecord | null },
): ClusterState {
  const old = state.primary;
  const given = state.transition?.to === promoted ? state.transition.synchronousStandbyNames : undefined;
  const synchronousNames = given === undefined ? null : { primary: promoted, names: given };
  let next: ClusterState = { ...state, primary: promoted, previousPrimary: old, timeline, observation: null, transition: null, synchronousNames };
  next = withMember(next, promoted, { role: 'primary', timeline, fence: null });
  if (old !== promoted) {
    next = withMember(next, old, oldPrimary.fence === null ? { role: 'standby', fence: null } : { role: 'fenced', fence: oldPrimary.fence });
  }
  return next;
}

/**
 * The member a standby streams from now: its configured upstream while that member is running
 * the cluster's history (a primary or a standby), else the current primary. So a cascading
 * standby keeps its place in the tree, and one whose upstream was fenced or is not created yet
 * follows the primary instead of nothing.
 */
export function effectiveUpstream(config: ClusterConfig, state: ClusterState, member: MemberConfig): string | null {
  if (member.name === state.primary) return null;
  const configured = member.upstream;
  if (configured !== null && configured !== member.name) {
    const role = state.members[configured]?.role;
    if (role === 'primary' || role === 'standby') return configured;
  }
  return state.primary;
}

/**
 * The members in the order they can be started (or created, or rejoined): the primary, then each
 * other member after the member it streams from, breadth first over that tree, config order
 * within a level.
 */
export function startOrder(config: ClusterConfig, state: ClusterState): MemberConfig[] {
  const ordered: MemberConfig[] = [];
  const placed = new Set<string>();
  const primary = config.members.find((member) => member.name === state.primary);
  if (primary !== undefined) {
    ordered.push(primary);
    placed.add(primary.name);
  }
  for (let progress = true; progress; ) {
    progress = false;
    for (const member of config.members) {
      if (placed.has(member.name)) continue;
      const upstream = effectiveUpstream(config, state, member);
      if (upstream !== null && placed.has(upstream)) {
        ordered.push(member);
        placed.add(member.name);
        progress = true;
      }
    }
  }
  // Every chain ends at the primary (configs with cycles are refused), so all are placed; this
  // keeps a member from being dropped if a state file ever names a primary the config lacks.
  for (const member of config.members) if (!placed.has(member.name)) ordered.push(member);
  return ordered;
}

/**
 * What synchronousStandbyNamesFor needs to know of the state for `primary`: who was primary
 * before it (the current primary, when `primary` is about to take over), and which members
 * cannot acknowledge (fenced, not created).
 */
export function synchronousNamesInput(state: ClusterState, primary: string): { primary: string; previousPrimary: string | null; unavailable: string[] } {
  return {
    primary,
    previousPrimary: primary === state.primary ? state.previousPrimary : state.primary,
    unavailable: Object.entries(state.members).filter(([, member]) => member.role === 'fenced' || member.role === 'uninitialized').map(([name]) => name),
  };
}

/** Reads the state file; null when there is none (nothing created yet). */
export function readClusterState(dataRoot: string): ClusterState | null {
  const path = stateFilePath(dataRoot);
  if (!existsSync(path)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw invalidState(path, `it is not valid JSON (${(error as Error).message})`);
  }
  return checkState(parsed, path);
}

/** The state as read, or a ClusterError for a state that belongs to another cluster. */
export function readClusterStateFor(config: ClusterConfig): ClusterState | null {
  const state = readClusterState(config.dataRoot);
  if (state !== null && state.cluster !== config.name) {
    throw new ClusterError(ClusterErrorCode.invalidState, `data root "${config.dataRoot}" holds cluster "${state.cluster}", not "${config.name}"`, {
      detail: `${stateFilePath(config.dataRoot)} was written for a cluster of another name.`,
      hint: 'Give this cluster a data root of its own (data_root in the config, or --data-root).',
    });
  }
  return state;
}

/** Writes the state atomically (temporary file, fsync, rename, directory fsync); returns what was written. */
export function writeClusterState(dataRoot: string, state: ClusterState, now: Date = new Date()): ClusterState {
  const written: ClusterState = { ...state, version: STATE_FILE_VERSION, generation: state.generation + 1, updatedAt: now.toISOString() };
  mkdirSync(dataRoot, { recursive: true });
  const path = stateFilePath(dataRoot);
  const temporary = `${path}.tmp`;
  const fd = openSync(temporary, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(written, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
  fsyncDirectory(dataRoot);
  return written;
}

export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function invalidState(path: string, problem: string): ClusterError {
  return new ClusterError(ClusterErrorCode.invalidState, `cluster state file "${path}" is damaged: ${problem}`, {
    hint: 'Restore it from the members (walship status on each tells its role and timeline), or start over with walship cluster up --reset (which deletes the data).',
  });
}

const isRecord = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

/** Checks the shape of a parsed state file, so that a hand-edited or truncated file is refused, not misread. */
function checkState(value: unknown, path: string): ClusterState {
  if (!isRecord(value)) throw invalidState(path, 'it is not a JSON object');
  if (value.version !== STATE_FILE_VERSION) {
    throw invalidState(path, `its version is ${JSON.stringify(value.version)}, this walship reads version ${STATE_FILE_VERSION}`);
  }
  const text = (key: string, nullable = false): void => {
    const field = value[key];
    if (!(typeof field === 'string' || (nullable && field === null))) throw invalidState(path, `"${key}" must be a string${nullable ? ' or null' : ''}`);
  };
  const whole = (key: string): void => {
    if (!Number.isSafeInteger(value[key])) throw invalidState(path, `"${key}" must be a whole number`);
  };
  text('cluster');
  text('systemId', true);
  text('primary');
  text('previousPrimary', true);
  text('updatedAt');
  whole('timeline');
  whole('generation');
  if (!isRecord(value.members)) throw invalidState(path, '"members" must be an object');
  let primaries = 0;
  for (const [name, member] of Object.entries(value.members)) {
    if (!isRecord(member)) throw invalidState(path, `member "${name}" must be an object`);
    if (!MEMBER_ROLES.includes(member.role as MemberRole)) throw invalidState(path, `member "${name}" has role ${JSON.stringify(member.role)}`);
    if (member.role === 'primary') primaries++;
    if (!(member.timeline === null || Number.isSafeInteger(member.timeline))) throw invalidState(path, `member "${name}" has a bad timeline`);
    if (member.fence !== null && !isRecord(member.fence)) throw invalidState(path, `member "${name}" has a bad fence record`);
  }
  const primaryRole = (value.members as Record<string, { role: string }>)[value.primary as string]?.role;
  // Before the first `up` finishes, the primary may still be uninitialized.
  if (primaryRole !== 'primary' && primaryRole !== 'uninitialized') throw invalidState(path, `"primary" names ${String(value.primary)}, whose role is ${String(primaryRole)}`);
  if (primaries > 1) throw invalidState(path, `${primaries} members have the role primary`);
  if (!(value.observation === null || isRecord(value.observation))) throw invalidState(path, '"observation" must be an object or null');
  const transition = value.transition;
  if (transition !== undefined && transition !== null) {
    if (!isRecord(transition)) throw invalidState(path, '"transition" must be an object or null');
    const names = value.members as Record<string, unknown>;
    if (transition.kind !== 'failover' && transition.kind !== 'switchover') throw invalidState(path, `"transition.kind" is ${JSON.stringify(transition.kind)}`);
    for (const key of ['from', 'to'] as const) {
      if (typeof transition[key] !== 'string' || names[transition[key] as string] === undefined) throw invalidState(path, `"transition.${key}" must name a member`);
    }
    if (transition.from !== value.primary) throw invalidState(path, `"transition.from" is ${String(transition.from)}, but the primary is ${String(value.primary)}`);
    if (!Number.isSafeInteger(transition.fromTimeline)) throw invalidState(path, '"transition.fromTimeline" must be a whole number');
    if (!isRecord(transition.fence)) throw invalidState(path, '"transition.fence" must be an object');
    if (transition.synchronousStandbyNames !== undefined && typeof transition.synchronousStandbyNames !== 'string') {
      throw invalidState(path, '"transition.synchronousStandbyNames" must be a string');
    }
  }
  const record = value.synchronousNames;
  if (record !== undefined && record !== null) {
    if (!isRecord(record) || typeof record.primary !== 'string' || typeof record.names !== 'string') {
      throw invalidState(path, '"synchronousNames" must be null or an object with the strings "primary" and "names"');
    }
  }
  return value as unknown as ClusterState;
}
