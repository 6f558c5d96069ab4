/**
 * What the lag arithmetic reads of a node: the fields of its status document (`walship status
 * --json`, `WalshipClient.status()`) that lag is computed from, as numbers. The document comes
 * over the wire from nodes that may be older or newer than this code, so parsing checks each
 * field and falls back to null for the optional ones rather than trusting a cast.
 */
import { parseLsn } from '@walship/engine/lsn';

/** A member to watch: from `--node HOST:PORT,...`, or a cluster config's members (`walship lag -f`). */
export interface MemberAddress {
  /** The member's name in a cluster config; without one, the node's own application name is used. */
  name?: string;
  host: string;
  port: number;
}

/** One pg_stat_replication row of a node, as the lag arithmetic uses it. */
export interface ReplicationRowSnapshot {
  applicationName: string;
  clientAddr: string | null;
  /** The walsender's state: startup, catchup, streaming, stopping. */
  state: string;
  sentLsn: number | null;
  writeLsn: number | null;
  flushLsn: number | null;
  replayLsn: number | null;
  /** From the sender's lag tracker, fractional ms; null when the tracker has nothing (NULL). */
  writeLagMs: number | null;
  flushLagMs: number | null;
  replayLagMs: number | null;
  syncState: string | null;
  syncPriority: number | null;
  /** Milliseconds since the sender received the standby's last reply, on the sender's clock. */
  replyAgeMs: number | null;
  /** The standby's clock in its last reply (ms since the epoch): a fallback for replyAgeMs. */
  replyTimeMs: number | null;
  slotName: string | null;
}

export interface SlotSnapshot {
  name: string;
  active: boolean;
  restartLsn: number | null;
  /** reserved, extended, unreserved, lost. */
  walStatus: string | null;
  /** pg_replication_slots.safe_wal_size: WAL that can still be written before the slot is invalidated; null without a cap. */
  safeWalSizeBytes: number | null;
}

export interface WalReceiverSnapshot {
  /** stopped, starting, streaming, waiting, stopping. */
  status: string;
  receivedLsn: number | null;
  /** `host:port` of the node it streams from. */
  upstream: string | null;
}

/** A timeline this node's history passed through, and where its WAL ended (the switch point). */
export interface TimelineHistoryEntry {
  timeline: number;
  switchLsn: number;
}

export interface NodeSnapshot {
  /** The node's application name (`member` of the status document). */
  member: string | null;
  role: 'primary' | 'standby';
  systemId: string | null;
  /** On a standby, the timeline of the last replayed record. */
  timeline: number;
  insertLsn: number | null;
  flushLsn: number | null;
  receiveLsn: number | null;
  replayLsn: number | null;
  /** Where this node's /metrics answers (its port unless metrics_port is set). */
  metricsPort: number | null;
  /** wal_receiver_status_interval, ms: a standby silent for twice this is disconnected. */
  walReceiverStatusIntervalMs: number | null;
  walSenderTimeoutMs: number | null;
  heartbeatIntervalMs: number | null;
  /** Time (ms since the epoch, the primary's clock) of the last replayed commit. */
  lastReplayedCommitTimeMs: number | null;
  /** Time of the last replayed record that carries one: a commit or a heartbeat. */
  lastReplayedTimestampMs: number | null;
  /** Ancestor timelines and their switch points; the current timeline is not in it. */
  timelineHistory: TimelineHistoryEntry[];
  replication: ReplicationRowSnapshot[];
  walReceiver: WalReceiverSnapshot | null;
  slots: SlotSnapshot[];
}

type Json = Record<string, unknown>;

/** A status document that lacks what the lag arithmetic cannot do without. */
export class SnapshotError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotError';
  }
}

function isRecord(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function lsnOf(value: unknown): number | null {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === 'string') return parseLsn(value);
  return null;
}

function numberOf(value: unknown): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

function stringOf(value: unknown): string | null {
  return typeof value === 'string' && value !== '' ? value : null;
}

function timeOf(value: unknown): number | null {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value !== 'string') return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : ms;
}

function recordsOf(value: unknown): Json[] {
  return Array.isArray(value) ? value.filter(isRecord) : [];
}

function parseRow(row: Json): ReplicationRowSnapshot | null {
  const applicationName = stringOf(row.applicationName);
  if (applicationName === null) return null;
  return {
    applicationName,
    clientAddr: stringOf(row.clientAddr),
    state: stringOf(row.state) ?? 'unknown',
    sentLsn: lsnOf(row.sentLsn),
    writeLsn: lsnOf(row.writeLsn),
    flushLsn: lsnOf(row.flushLsn),
    replayLsn: lsnOf(row.replayLsn),
    writeLagMs: numberOf(row.writeLagMs),
    flushLagMs: numberOf(row.flushLagMs),
    replayLagMs: numberOf(row.replayLagMs),
    syncState: stringOf(row.syncState),
    syncPriority: numberOf(row.syncPriority),
    replyAgeMs: numberOf(row.replyAgeMs),
    replyTimeMs: timeOf(row.replyTime),
    slotName: stringOf(row.slotName),
  };
}

function parseSlot(slot: Json): SlotSnapshot | null {
  const name = stringOf(slot.name);
  if (name === null) return null;
  return {
    name,
    active: slot.active === true,
    restartLsn: lsnOf(slot.restartLsn),
    walStatus: stringOf(slot.walStatus),
    safeWalSizeBytes: numberOf(slot.safeWalSizeBytes),
  };
}

/**
 * A node's status document as a NodeSnapshot. Throws SnapshotError when the role or the
 * timeline is missing: without them a node cannot be placed in the cluster at all.
 */
export function parseNodeStatus(document: unknown): NodeSnapshot {
  if (!isRecord(document)) throw new SnapshotError('the status document is not an object');
  const role = document.role;
  if (role !== 'primary' && role !== 'standby') {
    throw new SnapshotError(`the status document has no role (got ${JSON.stringify(role)}); is this node older than the lag monitor?`);
  }
  const timeline = numberOf(document.timeline);
  if (timeline === null || !Number.isInteger(timeline) || timeline < 1) {
    throw new SnapshotError(`the status document has no valid timeline (got ${JSON.stringify(document.timeline)})`);
  }
  const receiver = isRecord(document.walReceiver) ? document.walReceiver : null;
  return {
    member: stringOf(document.member),
    role,
    systemId: stringOf(document.systemId),
    timeline,
    insertLsn: lsnOf(document.insertLsn),
    flushLsn: lsnOf(document.flushLsn),
    receiveLsn: lsnOf(document.receiveLsn),
    replayLsn: lsnOf(document.replayLsn),
    metricsPort: numberOf(document.metricsPort),
    walReceiverStatusIntervalMs: numberOf(document.walReceiverStatusIntervalMs),
    walSenderTimeoutMs: numberOf(document.walSenderTimeoutMs),
    heartbeatIntervalMs: numberOf(document.heartbeatIntervalMs),
    lastReplayedCommitTimeMs: timeOf(document.lastReplayedCommitTime),
    lastReplayedTimestampMs: timeOf(document.lastReplayedTimestamp),
    timelineHistory: recordsOf(document.timelineHistory).flatMap((entry) => {
      const tli = numberOf(entry.timeline);
      const switchLsn = lsnOf(entry.switchLsn);
      return tli === null || switchLsn === null ? [] : [{ timeline: tli, switchLsn }];
    }),
    replication: recordsOf(document.replication).flatMap((row) => parseRow(row) ?? []),
    walReceiver: receiver === null ? null : {
      status: stringOf(receiver.status) ?? 'unknown',
      receivedLsn: lsnOf(receiver.receivedLsn),
      upstream: stringOf(receiver.upstream),
    },
    slots: recordsOf(document.slots).flatMap((slot) => parseSlot(slot) ?? []),
  };
}
