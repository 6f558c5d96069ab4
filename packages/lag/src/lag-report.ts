/**
 * The lag report: one sample of a cluster's replication, as `walship lag --json` prints it, as
 * `--record` writes it (one per line) and as the live view draws it. Keys follow DESIGN.md
 * section 10: `members[]` with name, address, port, metricsPort, role, state, timeline, lsn,
 * lagBytes, writeLagMs, flushLagMs, replayLagMs and syncState (keep these; add freely). LSNs are
 * "X/X" strings, times milliseconds, sizes bytes.
 */
import type { ClusterView } from './cluster-view.js';

export type MemberRole = 'primary' | 'standby' | 'unknown';

/**
 * - `running`: the primary the figures are measured against (the highest timeline's).
 * - `stale`: a primary on an older timeline still answering (an old primary after a failover).
 * - `conflict`: another primary on the same timeline as the chosen one (split brain).
 * - `startup`, `catchup`, `streaming`, `stopping`: the walsender's state for a standby that
 *   replied recently.
 * - `disconnected`: a standby that is not streaming, has no walsender, or has not replied within
 *   twice wal_receiver_status_interval. Its lag times are null, never 0.
 * - `diverged`: a standby that replayed past the point where the primary's timeline forked off
 *   its own: its LSNs are not comparable with the primary's (rewind it).
 * - `unreachable`: a member that does not answer and that no upstream knows of.
 */
export type MemberState =
  | 'running' | 'stale' | 'conflict'
  | 'startup' | 'catchup' | 'streaming' | 'stopping'
  | 'disconnected' | 'diverged' | 'unreachable';

export interface MemberLag {
  name: string;
  /** The host it was asked at; for a standby found in a walsender row, its client address. */
  address: string | null;
  /** Null for a standby found in a walsender row but not given as a member. */
  port: number | null;
  metricsPort: number | null;
  role: MemberRole;
  state: MemberState;
  /** Why the state is what it is, for people (`no reply for 4.20 s`), when that is not obvious. */
  stateDetail: string | null;
  /** Whether it answered this sample's status request; null when it was not asked (found in a row). */
  reachable: boolean | null;
  /** What went wrong asking it. */
  error: string | null;
  timeline: number | null;
  /** Primary: its flush LSN; standby: its replay LSN (as its upstream last heard). */
  lsn: string | null;
  /** Name of the node it streams from (a standby's upstream); null for the primary. */
  upstream: string | null;
  /** 0 for the primary, 1 for its standbys, 2 for their cascading standbys, ... */
  depth: number;
  /**
   * The primary's flush LSN minus this member's replay LSN, both as the primary (or, cascading,
   * the upstream) sees them. For a disconnected standby, measured from the last replay LSN
   * known, so it grows while the standby is away.
   */
  lagBytes: number | null;
  /** From the upstream's lag tracker (sender's clock), fractional ms; null when there is no figure. */
  writeLagMs: number | null;
  flushLagMs: number | null;
  replayLagMs: number | null;
  syncState: string | null;
  syncPriority: number | null;
  sentLsn: string | null;
  writeLsn: string | null;
  flushLsn: string | null;
  replayLsn: string | null;
  /** The member's own received (flushed) WAL position. */
  receiveLsn: string | null;
  /** Since the upstream last heard from this standby, on the upstream's clock. */
  lastReplyAgeMs: number | null;
  /**
   * Now minus the time of the last replayed record that carries one (a commit or a heartbeat):
   * the replay delay. With heartbeats it stays small on an idle cluster. Compares the primary's
   * clock with this machine's.
   */
  replayDelayMs: number | null;
  /** Now minus the time of the last replayed commit. */
  lastReplayedCommitAgeMs: number | null;
  /** WAL replayed per second, over the last samples. */
  catchUpRateBytesPerSecond: number | null;
  /** At the current replay and WAL rates, when the lag reaches 0; null when it is not shrinking. */
  catchUpEtaMs: number | null;
  slotName: string | null;
  /**
   * Its role in the cluster's live state (`primary`, `standby`, `fenced`, `uninitialized`), when
   * watched from a cluster config (`walship lag -f`); absent otherwise.
   */
  clusterRole?: string | null;
}

export interface SlotLag {
  name: string;
  active: boolean;
  walStatus: string | null;
  restartLsn: string | null;
  /** WAL the slot keeps: the primary's flush LSN minus the slot's restart LSN. */
  retainedBytes: number | null;
  /** WAL that can still be written before max_slot_wal_keep_size invalidates the slot; null without a cap. */
  safeWalSizeBytes: number | null;
  /** At the current WAL rate, when that happens; 0 when already past; null without a cap or WAL. */
  invalidationEtaMs: number | null;
}

/** The primary changed timeline between two samples: a failover or a switchover. */
export interface TimelineChange {
  timeMs: number;
  time: string;
  fromTimeline: number | null;
  toTimeline: number;
  fromPrimary: string | null;
  toPrimary: string;
}

export interface LagReport {
  /** When the sample was taken (ISO 8601) and the same in ms since the epoch. */
  time: string;
  timeMs: number;
  /** The primary the figures are measured against; null when none answered. */
  primary: string | null;
  timeline: number | null;
  primaryInsertLsn: string | null;
  primaryFlushLsn: string | null;
  /** WAL flushed per second on the primary, over the last samples. */
  walRateBytesPerSecond: number | null;
  members: MemberLag[];
  slots: SlotLag[];
  /** The most recent timeline changes seen by this monitor, oldest first. */
  timelineChanges: TimelineChange[];
  /** What is wrong with the cluster as a whole, for people (no primary, two primaries, ...). */
  problems: string[];
  /** What the cluster's live state says, when watched from a cluster config (`walship lag -f`); absent otherwise. */
  cluster?: ClusterView;
}
