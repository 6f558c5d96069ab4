/**
 * The lag arithmetic: from one sample of every member's status (and what earlier samples left
 * in the history), the cluster's lag report. Pure: time is the sample's, nothing here reads a
 * clock or a socket, so every rule below is tested with hand-made snapshots.
 *
 * The rules, and why:
 * 1. The primary is the answering member with role primary on the highest timeline (ties: the
 *    one furthest ahead). After a failover the new primary's timeline is higher, so it wins even
 *    while the old one still answers; the old one is shown `stale`.
 * 2. Lag in bytes is the primary's flush LSN minus the standby's replay LSN, both from the
 *    primary's one snapshot (a cascading standby's replay LSN from its upstream's snapshot), so
 *    no clock or sampling skew between nodes enters it.
 * 3. Lag times come from the upstream's lag tracker, on the upstream's clock only.
 * 4. A standby that is not streaming, has no walsender upstream, or has not replied within
 *    twice wal_receiver_status_interval is `disconnected`: its lag times are null (never 0, the
 *    tracker's last figures are stale), and its lag in bytes counts from the last replay LSN
 *    known, so that it grows while the standby is away.
 * 5. Rates come from successive samples within RATE_WINDOW_MS; the catch-up ETA is the lag
 *    divided by how much faster the standby replays than the primary writes.
 */
import { formatLsn } from '@walship/engine/lsn';
import {
  CASCADE_DEPTH_MAX, DEFAULT_STATUS_INTERVAL_MS, DEFAULT_WAL_SENDER_TIMEOUT_MS, MISSED_REPLIES_MAX,
  RATE_SAMPLES_MAX, RATE_SPAN_MIN_MS, RATE_WINDOW_MS, TIMELINE_CHANGES_MAX,
} from './constants.js';
import type { LagReport, MemberLag, MemberRole, MemberState, SlotLag, TimelineChange } from './lag-report.js';
import type { MemberAddress, NodeSnapshot, ReplicationRowSnapshot } from './snapshot.js';
import { formatDuration } from './units.js';

/** One member's answer to a sample: its snapshot, or why there is none. */
export interface MemberSample {
  address: MemberAddress;
  snapshot: NodeSnapshot | null;
  /** Why there is no snapshot (connection refused, timed out, ...). */
  error: string | null;
}

export interface ClusterSample {
  /** When the sample was taken, ms since the epoch (this machine's clock). */
  timeMs: number;
  members: MemberSample[];
}

export interface PositionSample {
  timeMs: number;
  lsn: number;
}

/** What the arithmetic remembers of a member between samples. */
export interface KnownMember {
  name: string;
  role: MemberRole;
  timeline: number | null;
  metricsPort: number | null;
  statusIntervalMs: number | null;
  replayLsn: number | null;
}

/** What carries over from one sample to the next (plain data: it can be kept in a file). */
export interface LagHistory {
  primary: { key: string; name: string; timeline: number } | null;
  /** The primary's flush positions, for the WAL rate; restarted when the primary changes. */
  walPositions: PositionSample[];
  /** Each standby's replay positions, by member key, for its catch-up rate. */
  replayPositions: Record<string, PositionSample[]>;
  known: Record<string, KnownMember>;
  timelineChanges: TimelineChange[];
}

export const EMPTY_HISTORY: LagHistory = Object.freeze({
  primary: null, walPositions: [], replayPositions: {}, known: {}, timelineChanges: [],
}) as LagHistory;

/** The key of a member given by address, and of a standby found only in a walsender row. */
export function memberKey(address: MemberAddress): string {
  return `${normalizeHost(address.host)}:${address.port}`;
}

function discoveredKey(applicationName: string): string {
  return `~${applicationName}`;
}

/** `localhost` is where nodes bind 127.0.0.1; both spellings name one member. */
function normalizeHost(host: string): string {
  return host === 'localhost' ? '127.0.0.1' : host;
}

// ---- rates ----------------------------------------------------------------------------------

/** Adds a position, dropping those older than the window (or after the LSN went backwards). */
export function appendPosition(positions: readonly PositionSample[], sample: PositionSample): PositionSample[] {
  const last = positions[positions.length - 1];
  // Backwards means another timeline's numbering or a restored node: earlier positions no longer compare.
  const kept = last !== undefined && sample.lsn < last.lsn ? [] : positions.filter((p) => p.timeMs >= sample.timeMs - RATE_WINDOW_MS && p.timeMs < sample.timeMs);
  kept.push(sample);
  return kept.length > RATE_SAMPLES_MAX ? kept.slice(kept.length - RATE_SAMPLES_MAX) : kept;
}

/** Bytes per second from the oldest to the newest position; null below RATE_SPAN_MIN_MS. */
export function rateOf(positions: readonly PositionSample[]): number | null {
  const first = positions[0];
  const last = positions[positions.length - 1];
  if (first === undefined || last === undefined) return null;
  const spanMs = last.timeMs - first.timeMs;
  if (spanMs < RATE_SPAN_MIN_MS) return null;
  return ((last.lsn - first.lsn) * 1000) / spanMs;
}

/**
 * When a standby `lagBytes` behind catches up: 0 when it has; null when it is not gaining on the
 * primary (or a rate is unknown); else the lag over the difference of the rates.
 */
export function catchUpEtaMs(lagBytes: number | null, replayRate: number | null, walRate: number | null): number | null {
  if (lagBytes === null) return null;
  if (lagBytes === 0) return 0;
  if (replayRate === null || walRate === null) return null;
  const gain = replayRate - walRate;
  return gain > 0 ? (lagBytes * 1000) / gain : null;
}

/** When a slot with `safeWalSizeBytes` left is invalidated at `walRate`; 0 when already past. */
export function invalidationEtaMs(safeWalSizeBytes: number | null, walRate: number | null): number | null {
  if (safeWalSizeBytes === null) return null;
  if (safeWalSizeBytes <= 0) return 0;
  if (walRate === null || walRate <= 0) return null;
  return (safeWalSizeBytes * 1000) / walRate;
}

// ---- the primary --------------------------------------------------------------------------

interface Answer {
  key: string;
  address: MemberAddress;
  snapshot: NodeSnapshot;
}

/** Rule 1: the highest timeline's primary; ties go to the one furthest ahead, then the first given. */
export function choosePrimary(answers: readonly Answer[]): Answer | null {
  let best: Answer | null = null;
  for (const answer of answers) {
    if (answer.snapshot.role !== 'primary') continue;
    if (best === null) {
      best = answer;
      continue;
    }
    const a = answer.snapshot;
    const b = best.snapshot;
    if (a.timeline > b.timeline || (a.timeline === b.timeline && (a.flushLsn ?? 0) > (b.flushLsn ?? 0))) best = answer;
  }
  return best;
}

/**
 * Whether a standby on an older timeline replayed past the point where the primary's history
 * left that timeline: then its WAL differs from the primary's from there on, and byte
 * differences mean nothing.
 */
export function hasDiverged(standbyTimeline: number, standbyReplayLsn: number | null, primary: NodeSnapshot): boolean {
  if (standbyTimeline >= primary.timeline || standbyReplayLsn === null) return false;
  const entry = primary.timelineHistory.find((h) => h.timeline === standbyTimeline);
  return entry !== undefined && standbyReplayLsn > entry.switchLsn;
}

// ---- the report ---------------------------------------------------------------------------

interface RowSource {
  row: ReplicationRowSnapshot;
  upstreamKey: string;
  upstreamSnapshot: NodeSnapshot;
}

interface Slot {
  key: string;
  address: MemberAddress | null;
  sample: MemberSample | null;
}

function lsnText(lsn: number | null): string | null {
  return lsn === null ? null : formatLsn(lsn);
}

/** Clamped at 0: figures from two snapshots a moment apart can cross by a few bytes or ms. */
function nonNegative(value: number): number {
  return value < 0 ? 0 : value;
}

function ageOf(timeMs: number | null, nowMs: number): number | null {
  return timeMs === null ? null : nonNegative(nowMs - timeMs);
}

/** How long a standby may stay silent before it counts as disconnected (rule 4). */
export function replyDeadlineMs(statusIntervalMs: number | null, walSenderTimeoutMs: number | null): number {
  const interval = statusIntervalMs ?? DEFAULT_STATUS_INTERVAL_MS;
  // wal_receiver_status_interval = 0 turns timed replies off: then the walsender's pings at half
  // of wal_sender_timeout are what makes a live standby answer.
  if (interval <= 0) return walSenderTimeoutMs ?? DEFAULT_WAL_SENDER_TIMEOUT_MS;
  return MISSED_REPLIES_MAX * interval;
}

/** The row's reply age on the sender's clock, or, from an older node, from the standby's reply time. */
function replyAgeOf(row: ReplicationRowSnapshot, nowMs: number): number | null {
  if (row.replyAgeMs !== null) return row.replyAgeMs;
  return row.replyTimeMs === null ? null : nonNegative(nowMs - row.replyTimeMs);
}

/**
 * Computes the report of `sample`, given what earlier samples left in `history`; returns the
 * report and the history for the next sample.
 */
export function computeLag(sample: ClusterSample, history: LagHistory = EMPTY_HISTORY): { report: LagReport; history: LagHistory } {
  const now = sample.timeMs;
  const known: Record<string, KnownMember> = { ...history.known };
  const answers: Answer[] = [];
  for (const member of sample.members) {
    if (member.snapshot !== null) answers.push({ key: memberKey(member.address), address: member.address, snapshot: member.snapshot });
  }
  const primary = choosePrimary(answers);
  const primarySnapshot = primary?.snapshot ?? null;
  const primaryFlush = primarySnapshot?.flushLsn ?? null;
  const problems: string[] = [];

  // Names: a config's name, else the node's own application name, else what we knew, else host:port.
  const nameOf = new Map<string, string>();
  const slots: Slot[] = [];
  /** Members known only by address so far: given without a name, and never answered. */
  const unnamed = new Set<string>();
  for (const member of sample.members) {
    const key = memberKey(member.address);
    if (nameOf.has(key)) continue;
    const name = member.address.name ?? member.snapshot?.member ?? known[key]?.name ?? null;
    if (name === null) unnamed.add(key);
    nameOf.set(key, name ?? `${member.address.host}:${member.address.port}`);
    slots.push({ key, address: member.address, sample: member });
  }
  const keyByName = new Map<string, string>();
  for (const [key, name] of nameOf) if (!keyByName.has(name)) keyByName.set(name, key);
  const keyByAddress = new Map<string, string>();
  for (const slot of slots) if (slot.address !== null) keyByAddress.set(memberKey(slot.address), slot.key);

  // Walsender rows, by application name: who streams to whom. A row on the primary wins over a
  // row on another node (an old primary's leftover walsender).
  const rows = new Map<string, RowSource>();
  const ordered = primary === null ? answers : [primary, ...answers.filter((a) => a !== primary)];
  for (const answer of ordered) {
    if (answer.snapshot.role === 'primary' && answer !== primary) continue;
    for (const row of answer.snapshot.replication) {
      if (!rows.has(row.applicationName)) rows.set(row.applicationName, { row, upstreamKey: answer.key, upstreamSnapshot: answer.snapshot });
    }
  }
  nameUnnamedMembers(rows, slots, unnamed, nameOf, keyByName);
  // Standbys that stream but were not given as members: found in the rows, shown all the same.
  for (const [applicationName, source] of rows) {
    if (keyByName.has(applicationName)) continue;
    const key = discoveredKey(applicationName);
    nameOf.set(key, applicationName);
    keyByName.set(applicationName, key);
    slots.push({ key, address: source.row.clientAddr === null ? null : { host: source.row.clientAddr, port: 0 }, sample: null });
  }

  const rowFor = (key: string, snapshot: NodeSnapshot | null): RowSource | null => {
    const candidates = [nameOf.get(key), snapshot?.member, known[key]?.name];
    for (const candidate of candidates) {
      if (candidate === undefined || candidate === null) continue;
      const source = rows.get(candidate);
      if (source !== undefined) return source;
    }
    return null;
  };

  // Rule 1's consequences for the other primaries.
  for (const answer of answers) {
    if (answer.snapshot.role !== 'primary' || answer === primary || primarySnapshot === null) continue;
    const name = nameOf.get(answer.key)!;
    problems.push(answer.snapshot.timeline === primarySnapshot.timeline
      ? `two primaries on timeline ${primarySnapshot.timeline}: ${nameOf.get(primary!.key)} and ${name}`
      : `${name} is still a primary, on timeline ${answer.snapshot.timeline} (the current timeline is ${primarySnapshot.timeline}): rewind it or stop it`);
  }
  if (primary === null) problems.push(answers.length === 0 ? 'no member answers' : 'no primary answers: lag cannot be measured');

  const replayPositions: Record<string, PositionSample[]> = {};
  let walPositions: PositionSample[] = [];
  let walRate: number | null = null;
  const samePrimary = primary !== null && history.primary !== null && history.primary.key === primary.key && history.primary.timeline === primarySnapshot!.timeline;
  if (primary !== null && primaryFlush !== null) {
    walPositions = appendPosition(samePrimary ? history.walPositions : [], { timeMs: now, lsn: primaryFlush });
    walRate = rateOf(walPositions);
  }

  const members: MemberLag[] = [];
  const upstreamOf = new Map<string, string | null>();
  for (const slot of slots) {
    const { key } = slot;
    const snapshot = slot.sample?.snapshot ?? null;
    const name = nameOf.get(key)!;
    const previous = known[key];
    // A primary streams to others; a walsender row under its name is a leftover of its past as a standby.
    const source = snapshot?.role === 'primary' ? null : rowFor(key, snapshot);
    const row = source?.row ?? null;
    const member: MemberLag = {
      name,
      address: slot.address?.host ?? null,
      port: slot.sample === null ? null : slot.address?.port ?? null,
      metricsPort: snapshot?.metricsPort ?? previous?.metricsPort ?? null,
      role: snapshot?.role ?? (row !== null ? 'standby' : previous?.role ?? 'unknown'),
      state: 'unreachable',
      stateDetail: null,
      reachable: slot.sample === null ? null : snapshot !== null,
      error: slot.sample?.error ?? null,
      timeline: snapshot?.timeline ?? previous?.timeline ?? null,
      lsn: null,
      upstream: null,
      depth: 0,
      lagBytes: null,
      writeLagMs: null,
      flushLagMs: null,
      replayLagMs: null,
      syncState: row?.syncState ?? null,
      syncPriority: row?.syncPriority ?? null,
      sentLsn: lsnText(row?.sentLsn ?? null),
      writeLsn: lsnText(row?.writeLsn ?? null),
      flushLsn: lsnText(row?.flushLsn ?? null),
      replayLsn: lsnText(row?.replayLsn ?? snapshot?.replayLsn ?? null),
      receiveLsn: lsnText(snapshot?.receiveLsn ?? null),
      lastReplyAgeMs: row === null ? null : replyAgeOf(row, now),
      replayDelayMs: ageOf(snapshot?.lastReplayedTimestampMs ?? null, now),
      lastReplayedCommitAgeMs: ageOf(snapshot?.lastReplayedCommitTimeMs ?? null, now),
      catchUpRateBytesPerSecond: null,
      catchUpEtaMs: null,
      slotName: row?.slotName ?? null,
    };

    if (primary !== null && key === primary.key) {
      member.role = 'primary';
      member.state = 'running';
      member.lsn = lsnText(primaryFlush);
      member.lagBytes = 0;
      member.replayLsn = null;
      upstreamOf.set(key, null);
    } else if (snapshot?.role === 'primary') {
      member.state = primarySnapshot !== null && snapshot.timeline === primarySnapshot.timeline ? 'conflict' : 'stale';
      member.lsn = lsnText(snapshot.flushLsn);
      upstreamOf.set(key, null);
    } else if (member.role === 'standby') {
      const receiverUpstream = upstreamFromReceiver(snapshot, keyByAddress);
      const silentUpstream = source === null && receiverUpstream !== null && !answers.some((a) => a.key === receiverUpstream) ? nameOf.get(receiverUpstream) ?? null : null;
      standbyFigures(member, { snapshot, source, previous, primarySnapshot, primaryFlush, silentUpstream });
      const upstreamKey = source?.upstreamKey ?? receiverUpstream;
      upstreamOf.set(key, upstreamKey);
      const replay = row?.replayLsn ?? snapshot?.replayLsn ?? null;
      if (replay !== null && member.state !== 'diverged') {
        replayPositions[key] = appendPosition(history.replayPositions[key] ?? [], { timeMs: now, lsn: replay });
        member.catchUpRateBytesPerSecond = rateOf(replayPositions[key]!);
        member.catchUpEtaMs = member.state === 'disconnected' ? null : catchUpEtaMs(member.lagBytes, member.catchUpRateBytesPerSecond, walRate);
      }
    } else {
      member.stateDetail = slot.sample?.error ?? 'does not answer';
      upstreamOf.set(key, null);
    }
    if (member.role === 'unknown' || (snapshot === null && member.role === 'primary' && key !== primary?.key)) {
      member.state = 'unreachable';
      member.stateDetail = slot.sample?.error ?? 'does not answer';
    }
    members.push(member);

    const replayKnown = row?.replayLsn ?? snapshot?.replayLsn ?? previous?.replayLsn ?? null;
    known[key] = {
      name,
      role: member.role,
      timeline: member.timeline,
      metricsPort: member.metricsPort,
      statusIntervalMs: snapshot?.walReceiverStatusIntervalMs ?? previous?.statusIntervalMs ?? null,
      replayLsn: member.role === 'standby' ? replayKnown : null,
    };
  }

  // Upstream names and depths (cascading standbys under their upstream).
  const byKey = new Map(slots.map((slot, index) => [slot.key, members[index]!]));
  for (const slot of slots) {
    const member = byKey.get(slot.key)!;
    const upstreamKey = upstreamOf.get(slot.key) ?? null;
    member.upstream = upstreamKey === null ? null : byKey.get(upstreamKey)?.name ?? upstreamKey;
    let depth = 0;
    for (let at = upstreamKey; at !== null && depth < CASCADE_DEPTH_MAX; at = upstreamOf.get(at) ?? null) depth++;
    member.depth = member.role === 'standby' ? Math.max(1, depth) : depth;
  }

  const timelineChanges = [...history.timelineChanges];
  let nextPrimary = history.primary;
  if (primary !== null) {
    const name = nameOf.get(primary.key)!;
    if (history.primary !== null && history.primary.timeline !== primarySnapshot!.timeline) {
      timelineChanges.push({
        timeMs: now, time: new Date(now).toISOString(), fromTimeline: history.primary.timeline, toTimeline: primarySnapshot!.timeline,
        fromPrimary: history.primary.name, toPrimary: name,
      });
      if (timelineChanges.length > TIMELINE_CHANGES_MAX) timelineChanges.splice(0, timelineChanges.length - TIMELINE_CHANGES_MAX);
    }
    nextPrimary = { key: primary.key, name, timeline: primarySnapshot!.timeline };
  }

  const report: LagReport = {
    time: new Date(now).toISOString(),
    timeMs: now,
    primary: primary === null ? null : nameOf.get(primary.key)!,
    timeline: primarySnapshot?.timeline ?? null,
    primaryInsertLsn: lsnText(primarySnapshot?.insertLsn ?? null),
    primaryFlushLsn: lsnText(primaryFlush),
    walRateBytesPerSecond: walRate,
    members: orderMembers(members, primary === null ? null : nameOf.get(primary.key)!),
    slots: primarySnapshot === null ? [] : slotFigures(primarySnapshot, primaryFlush, walRate),
    timelineChanges,
    problems,
  };
  return { report, history: { primary: nextPrimary, walPositions, replayPositions, known, timelineChanges } };
}

/** A client address or host as one loopback spelling (`::ffff:127.0.0.1`, `localhost`). */
function sameHost(host: string): string {
  const bare = host.startsWith('::ffff:') ? host.slice('::ffff:'.length) : host;
  return bare === 'localhost' || bare === '::1' ? '127.0.0.1' : bare;
}

/**
 * A member given by address that has never answered has no name yet, so its walsender row
 * (named by application_name) cannot be matched by name. When, on one host, exactly one such
 * member and exactly one unmatched row remain, they are the same standby: the row's name is
 * given to the member. Anything ambiguous stays apart (names from a cluster config avoid it).
 */
function nameUnnamedMembers(rows: Map<string, RowSource>, slots: readonly Slot[], unnamed: Set<string>, nameOf: Map<string, string>, keyByName: Map<string, string>): void {
  if (unnamed.size === 0) return;
  const rowsByHost = new Map<string, string[]>();
  for (const [applicationName, source] of rows) {
    if (keyByName.has(applicationName) || source.row.clientAddr === null) continue;
    const host = sameHost(source.row.clientAddr);
    rowsByHost.set(host, [...(rowsByHost.get(host) ?? []), applicationName]);
  }
  const membersByHost = new Map<string, string[]>();
  for (const slot of slots) {
    if (!unnamed.has(slot.key) || slot.address === null || (slot.sample?.snapshot ?? null) !== null) continue;
    const host = sameHost(slot.address.host);
    membersByHost.set(host, [...(membersByHost.get(host) ?? []), slot.key]);
  }
  for (const [host, keys] of membersByHost) {
    const names = rowsByHost.get(host) ?? [];
    if (keys.length !== 1 || names.length !== 1) continue;
    nameOf.set(keys[0]!, names[0]!);
    keyByName.set(names[0]!, keys[0]!);
  }
}

/** The walreceiver's `host:port` upstream as a member key, when it names a member. */
function upstreamFromReceiver(snapshot: NodeSnapshot | null, keyByAddress: Map<string, string>): string | null {
  const upstream = snapshot?.walReceiver?.upstream ?? null;
  if (upstream === null) return null;
  const colon = upstream.lastIndexOf(':');
  if (colon <= 0) return null;
  const host = upstream.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(upstream.slice(colon + 1));
  return Number.isInteger(port) ? keyByAddress.get(memberKey({ host, port })) ?? null : null;
}

/** Rules 2 to 4 for one standby. */
function standbyFigures(member: MemberLag, context: {
  snapshot: NodeSnapshot | null;
  source: RowSource | null;
  previous: KnownMember | undefined;
  primarySnapshot: NodeSnapshot | null;
  primaryFlush: number | null;
  /** The member its walreceiver streams from, when that member does not answer (its rows are unknown). */
  silentUpstream: string | null;
}): void {
  const { snapshot, source, previous, primarySnapshot, primaryFlush, silentUpstream } = context;
  const row = source?.row ?? null;
  const statusIntervalMs = snapshot?.walReceiverStatusIntervalMs ?? previous?.statusIntervalMs ?? source?.upstreamSnapshot.walReceiverStatusIntervalMs ?? null;
  const deadlineMs = replyDeadlineMs(statusIntervalMs, source?.upstreamSnapshot.walSenderTimeoutMs ?? null);
  const replyAge = member.lastReplyAgeMs;
  const receiverStatus = snapshot?.walReceiver?.status ?? null;

  let disconnected: string | null = null;
  if (snapshot !== null && receiverStatus !== 'streaming') {
    disconnected = `its walreceiver is ${receiverStatus ?? 'not running'}`;
  } else if (row === null) {
    disconnected = silentUpstream !== null ? `its upstream ${silentUpstream} does not answer`
      : snapshot === null ? 'does not answer, and no upstream has a walsender for it' : 'no upstream has a walsender for it';
  } else if (row.state !== 'streaming' && row.state !== 'catchup' && row.state !== 'startup' && row.state !== 'stopping') {
    disconnected = `its walsender is ${row.state}`;
  } else if (replyAge !== null && replyAge > deadlineMs) {
    disconnected = `no reply for ${formatDuration(replyAge)}, over twice wal_receiver_status_interval (${formatDuration(deadlineMs)})`;
  }

  // The replay LSN to measure from: the upstream's view (rule 2); when there is none, the
  // standby's own, or the last one known, so a disconnected standby's lag keeps growing.
  const replay = row?.replayLsn ?? snapshot?.replayLsn ?? previous?.replayLsn ?? null;
  member.lsn = lsnText(replay);
  member.timeline = snapshot?.timeline ?? (row !== null && source !== null ? source.upstreamSnapshot.timeline : member.timeline);

  if (primarySnapshot !== null && member.timeline !== null && hasDiverged(member.timeline, replay, primarySnapshot)) {
    member.state = 'diverged';
    member.stateDetail = `replayed past the end of timeline ${member.timeline} in the primary's history`;
    return;
  }
  if (primaryFlush !== null && replay !== null) member.lagBytes = nonNegative(primaryFlush - replay);
  if (disconnected !== null) {
    member.state = 'disconnected';
    member.stateDetail = disconnected;
    return;
  }
  member.state = row!.state as MemberState;
  member.writeLagMs = row!.writeLagMs;
  member.flushLagMs = row!.flushLagMs;
  member.replayLagMs = row!.replayLagMs;
}

function slotFigures(primary: NodeSnapshot, primaryFlush: number | null, walRate: number | null): SlotLag[] {
  return primary.slots.map((slot) => ({
    name: slot.name,
    active: slot.active,
    walStatus: slot.walStatus,
    restartLsn: lsnText(slot.restartLsn),
    retainedBytes: slot.restartLsn === null || primaryFlush === null ? null : nonNegative(primaryFlush - slot.restartLsn),
    safeWalSizeBytes: slot.safeWalSizeBytes,
    invalidationEtaMs: slot.walStatus === 'lost' ? null : invalidationEtaMs(slot.safeWalSizeBytes, walRate),
  }));
}

/**
 * The primary first, each standby under its upstream (depth first, by name), then members the
 * tree does not reach (standbys of a missing upstream, stale primaries, unreachable members) in
 * the order given.
 */
function orderMembers(members: MemberLag[], primaryName: string | null): MemberLag[] {
  const children = new Map<string | null, MemberLag[]>();
  for (const member of members) {
    if (member.name === primaryName) continue;
    const list = children.get(member.upstream) ?? [];
    list.push(member);
    children.set(member.upstream, list);
  }
  for (const list of children.values()) list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const out: MemberLag[] = [];
  const seen = new Set<MemberLag>();
  const visit = (member: MemberLag, depth: number): void => {
    if (seen.has(member) || depth > CASCADE_DEPTH_MAX) return;
    seen.add(member);
    out.push(member);
    for (const child of children.get(member.name) ?? []) visit(child, depth + 1);
  };
  const primary = members.find((m) => m.name === primaryName);
  if (primary !== undefined) visit(primary, 0);
  for (const member of members) {
    if (seen.has(member)) continue;
    // A subtree whose root's upstream is not a member: keep its cascade together.
    if (member.upstream !== null && members.some((m) => m.name === member.upstream && !seen.has(m))) continue;
    visit(member, 0);
  }
  for (const member of members) if (!seen.has(member)) out.push(member);
  return out;
}
