/**
 * The node's `GET /metrics`: Prometheus' text exposition (format 0.0.4), hand-written.
 *
 * Two halves: `collectNodeMetrics` reads the postmaster's current instance into a plain
 * `NodeMetricsView` (what the numbers are), and `renderNodeMetrics` turns a view into text (how
 * they are named and written). The second is pure and unit-tested; the names are the contract
 * documented in the README.
 *
 * Conventions (prometheus.io/docs/practices/naming): the `walship_` prefix, base units in the
 * name (`_bytes`, `_seconds`), `_total` for counters, one metric per meaning with labels for the
 * dimension (`application_name` of a standby, `slot_name`), and states as an info-style series
 * whose label carries the state and whose value is 1. A figure that does not exist right now
 * (a lag the tracker has not measured: NULL in pg_stat_replication) has no sample, rather than
 * a 0 that would read as "no lag". Counters belong to the instance: they restart from 0 after a
 * crash-restart or a promotion, which `rate()` takes as a counter reset.
 */
import { assert } from '@walship/engine';
import { parseLsn } from '@walship/engine/lsn';
import type { Component } from './component.js';
import { Checkpointer } from './components/checkpointer.js';
import { Heartbeat } from './components/heartbeat.js';
import type { Postmaster } from './postmaster.js';

type Labels = Readonly<Record<string, string>>;
type MetricType = 'gauge' | 'counter';

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value as the exposition format escapes it: backslash, double quote, newline. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}

/**
 * Metric families in the order declared, each written with its HELP and TYPE once and only when
 * it has a sample (a primary has no walreceiver series, a lone node no standby series).
 */
export class MetricsWriter {
  private readonly families = new Map<string, { type: MetricType; help: string; samples: string[] }>();

  add(name: string, type: MetricType, help: string, value: number, labels: Labels = {}): void {
    assert(METRIC_NAME.test(name), `metric name ${name}`);
    assert(type !== 'counter' || name.endsWith('_total'), `counter ${name} must end in _total`);
    const pairs = Object.entries(labels).map(([key, labelValue]) => {
      assert(LABEL_NAME.test(key) && !key.startsWith('__'), `label name ${key}`);
      return `${key}="${escapeLabelValue(labelValue)}"`;
    });
    let family = this.families.get(name);
    if (family === undefined) {
      family = { type, help, samples: [] };
      this.families.set(name, family);
    }
    assert(family.type === type, `metric ${name} declared as ${family.type} and ${type}`);
    family.samples.push(`${name}${pairs.length === 0 ? '' : `{${pairs.join(',')}}`} ${formatValue(value)}`);
  }

  /** Adds the sample only when there is a figure: absent rather than a misleading 0. */
  addIfKnown(name: string, type: MetricType, help: string, value: number | null | undefined, labels: Labels = {}): void {
    if (value !== null && value !== undefined && Number.isFinite(value)) this.add(name, type, help, value, labels);
  }

  text(): string {
    const lines: string[] = [];
    for (const [name, family] of this.families) {
      // HELP text escapes backslash and newline only.
      lines.push(`# HELP ${name} ${family.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${family.type}`, ...family.samples);
    }
    return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
  }
}

/** One standby as this node's walsender sees it (a pg_stat_replication row, in numbers). */
export interface StandbyMetrics {
  applicationName: string;
  state: string;
  syncState: string;
  syncPriority: number;
  sentLsn: number | null;
  writeLsn: number | null;
  flushLsn: number | null;
  replayLsn: number | null;
  writeLagMs: number | null;
  flushLagMs: number | null;
  replayLagMs: number | null;
  replyAgeMs: number | null;
  /** WAL bytes sent, and of them those sent as stored (encrypted, no cipher run on either side). */
  walBytesSent: number;
  walBytesSentAsStored: number;
}

export interface SlotMetrics {
  name: string;
  active: boolean;
  walStatus: string | null;
  restartLsn: number | null;
  safeWalSizeBytes: number | null;
}

export interface BufferPoolMetrics {
  nBuffers: number;
  hits: number;
  reads: number;
  writes: number;
  evictions: number;
  dirty: number;
}

/** Everything /metrics shows, read from the node at one moment. */
export interface NodeMetricsView {
  up: boolean;
  crashRestarts: number;
  role: 'primary' | 'standby' | null;
  timeline: number | null;
  /** A primary's WAL; null on a standby or between instances. */
  wal: { insertLsn: number; flushLsn: number; commits: number; fsyncs: number; bytesWritten: number; records: number; mainThreadFlushes: number } | null;
  heartbeats: { written: number; skipped: number } | null;
  /** What this node streams to (a primary's standbys, or a cascading standby's). */
  standbys: StandbyMetrics[];
  /** The position standbys are measured against: flushed on a primary, received on a standby. */
  sendLimitLsn: number | null;
  slots: SlotMetrics[];
  syncWaiters: { count: number; oldestMs: number } | null;
  /** A standby's walreceiver and replay; null on a primary. */
  recovery: {
    walReceiverStatus: string;
    receivedLsn: number;
    replayLsn: number;
    lastReplayedTimestampMs: number;
    lastCommitTimeMs: number;
    recordsReplayed: number;
    lastMessageReceiptMs: number | null;
    walBytesReceived: number;
    walBytesReceivedAsStored: number;
  } | null;
  checkpoints: { timed: number; requested: number; durationMs: number; buffersWritten: number; lastDurationMs: number | null } | null;
  buffers: BufferPoolMetrics | null;
  nowMs: number;
}

/** The exposition text of a view. */
export function renderNodeMetrics(view: NodeMetricsView): string {
  const m = new MetricsWriter();
  m.add('walship_up', 'gauge', 'Whether the node accepts connections (1) or not (0).', view.up ? 1 : 0);
  m.add('walship_crash_restarts_total', 'counter', 'Crash-restarts since the postmaster started.', view.crashRestarts);
  if (view.role !== null) m.add('walship_in_recovery', 'gauge', 'Whether the node is a standby replaying WAL (1) or a primary (0), as pg_is_in_recovery().', view.role === 'standby' ? 1 : 0);
  m.addIfKnown('walship_timeline_id', 'gauge', 'The timeline the node is on (a standby: of its last replayed record).', view.timeline);

  const wal = view.wal;
  if (wal !== null) {
    m.add('walship_commits_total', 'counter', 'Transactions committed.', wal.commits);
    m.add('walship_wal_insert_lsn_bytes', 'gauge', 'WAL insert position, in bytes.', wal.insertLsn);
    m.add('walship_wal_flush_lsn_bytes', 'gauge', 'WAL flush position, in bytes.', wal.flushLsn);
    m.add('walship_wal_fsyncs_total', 'counter', 'WAL fdatasync calls.', wal.fsyncs);
    m.add('walship_wal_written_bytes_total', 'counter', 'WAL bytes written.', wal.bytesWritten);
    m.add('walship_wal_records_total', 'counter', 'WAL records inserted.', wal.records);
    m.add('walship_wal_main_thread_flushes_total', 'counter', 'WAL flushes the main thread wrote and fdatasynced itself (a lone commit); the others went to the WAL I/O worker.', wal.mainThreadFlushes);
  }
  if (view.heartbeats !== null) {
    m.add('walship_heartbeats_total', 'counter', 'Heartbeat WAL records written while no other WAL was (heartbeat_interval).', view.heartbeats.written);
    m.add('walship_heartbeats_skipped_total', 'counter', 'Heartbeats skipped because other WAL was written in the interval.', view.heartbeats.skipped);
  }

  m.add('walship_replication_standbys', 'gauge', 'Standbys streaming from this node (walsenders running).', view.standbys.length);
  for (const standby of view.standbys) {
    const labels = { application_name: standby.applicationName };
    m.add('walship_replication_streaming', 'gauge', 'Whether the walsender to the standby is streaming (1) rather than starting up or catching up (0).', standby.state === 'streaming' ? 1 : 0, labels);
    m.add('walship_replication_state', 'gauge', 'The walsender\'s state (startup, catchup, streaming, stopping) as the state label; always 1.', 1, { ...labels, state: standby.state });
    m.add('walship_replication_sync_state', 'gauge', 'The standby\'s synchronous state (async, potential, sync, quorum) as the sync_state label; always 1.', 1, { ...labels, sync_state: standby.syncState });
    m.add('walship_replication_sync_priority', 'gauge', 'The standby\'s priority in synchronous_standby_names (0: not a candidate).', standby.syncPriority, labels);
    m.addIfKnown('walship_replication_sent_lsn_bytes', 'gauge', 'WAL sent to the standby, as a position in bytes.', standby.sentLsn, labels);
    m.addIfKnown('walship_replication_write_lsn_bytes', 'gauge', 'WAL the standby reported written, as a position in bytes.', standby.writeLsn, labels);
    m.addIfKnown('walship_replication_flush_lsn_bytes', 'gauge', 'WAL the standby reported flushed, as a position in bytes.', standby.flushLsn, labels);
    m.addIfKnown('walship_replication_replay_lsn_bytes', 'gauge', 'WAL the standby reported replayed, as a position in bytes.', standby.replayLsn, labels);
    const lagBytes = view.sendLimitLsn === null || standby.replayLsn === null ? null : Math.max(0, view.sendLimitLsn - standby.replayLsn);
    m.addIfKnown('walship_replication_lag_bytes', 'gauge', 'How far the standby\'s replay is behind this node\'s flushed (on a standby: received) WAL, in bytes.', lagBytes, labels);
    const seconds = (ms: number | null) => (ms === null ? null : ms / 1000);
    m.addIfKnown('walship_replication_write_lag_seconds', 'gauge', 'Write lag from the walsender\'s lag tracker (write_lag); absent when it has no figure.', seconds(standby.writeLagMs), labels);
    m.addIfKnown('walship_replication_flush_lag_seconds', 'gauge', 'Flush lag from the walsender\'s lag tracker (flush_lag); absent when it has no figure.', seconds(standby.flushLagMs), labels);
    m.addIfKnown('walship_replication_replay_lag_seconds', 'gauge', 'Replay lag from the walsender\'s lag tracker (replay_lag); absent when it has no figure.', seconds(standby.replayLagMs), labels);
    m.addIfKnown('walship_replication_reply_age_seconds', 'gauge', 'Time since the standby\'s last status reply, on this node\'s clock.', seconds(standby.replyAgeMs), labels);
    m.add('walship_replication_sent_bytes_total', 'counter', 'WAL bytes sent to the standby by this walsender.', standby.walBytesSent, labels);
    m.add('walship_replication_sent_as_stored_bytes_total', 'counter', 'Of the WAL bytes sent, those sent as stored: encrypted, read from the segment files without decrypting (the standby holds the WAL key).', standby.walBytesSentAsStored, labels);
  }

  for (const slot of view.slots) {
    const labels = { slot_name: slot.name };
    m.add('walship_replication_slot_active', 'gauge', 'Whether a walsender streams from the slot (1) or not (0).', slot.active ? 1 : 0, labels);
    if (slot.walStatus !== null) m.add('walship_replication_slot_wal_status', 'gauge', 'The slot\'s wal_status (reserved, extended, unreserved, lost) as the wal_status label; always 1.', 1, { ...labels, wal_status: slot.walStatus });
    const retained = view.sendLimitLsn === null || slot.restartLsn === null ? null : Math.max(0, view.sendLimitLsn - slot.restartLsn);
    m.addIfKnown('walship_replication_slot_retained_bytes', 'gauge', 'WAL the slot keeps: flushed WAL minus the slot\'s restart LSN, in bytes.', retained, labels);
    m.addIfKnown('walship_replication_slot_safe_wal_size_bytes', 'gauge', 'WAL that can still be written before max_slot_wal_keep_size invalidates the slot (safe_wal_size); absent without a cap.', slot.safeWalSizeBytes, labels);
  }

  if (view.syncWaiters !== null) {
    m.add('walship_sync_rep_waiting_commits', 'gauge', 'Commits waiting for synchronous standbys.', view.syncWaiters.count);
    m.add('walship_sync_rep_oldest_wait_seconds', 'gauge', 'How long the oldest commit waiting for synchronous standbys has waited.', view.syncWaiters.count === 0 ? 0 : view.syncWaiters.oldestMs / 1000);
  }

  const recovery = view.recovery;
  if (recovery !== null) {
    m.add('walship_wal_receiver_streaming', 'gauge', 'Whether the walreceiver is streaming from its upstream (1) or not (0).', recovery.walReceiverStatus === 'streaming' ? 1 : 0);
    m.add('walship_wal_receiver_status', 'gauge', 'The walreceiver\'s status (stopped, starting, streaming, waiting, stopping) as the status label; always 1.', 1, { status: recovery.walReceiverStatus });
    m.add('walship_wal_receive_lsn_bytes', 'gauge', 'WAL received and flushed by the walreceiver, as a position in bytes.', recovery.receivedLsn);
    m.add('walship_wal_replay_lsn_bytes', 'gauge', 'WAL replayed, as a position in bytes.', recovery.replayLsn);
    if (recovery.lastMessageReceiptMs !== null) {
      m.add('walship_wal_receiver_last_message_age_seconds', 'gauge', 'Time since the walreceiver last heard from its upstream.', Math.max(0, view.nowMs - recovery.lastMessageReceiptMs) / 1000);
    }
    if (recovery.lastReplayedTimestampMs > 0) {
      m.add('walship_replay_delay_seconds', 'gauge', 'Now minus the primary\'s time in the last replayed commit or heartbeat: kept small on an idle cluster by heartbeats (compares two clocks).', Math.max(0, view.nowMs - recovery.lastReplayedTimestampMs) / 1000);
    }
    if (recovery.lastCommitTimeMs > 0) {
      m.add('walship_last_replayed_commit_timestamp_seconds', 'gauge', 'The primary\'s time of the last replayed commit, in seconds since the epoch.', recovery.lastCommitTimeMs / 1000);
    }
    m.add('walship_recovery_records_replayed_total', 'counter', 'WAL records replayed by this instance.', recovery.recordsReplayed);
    m.add('walship_wal_receiver_received_bytes_total', 'counter', 'WAL bytes the walreceiver received since the node started.', recovery.walBytesReceived);
    m.add('walship_wal_receiver_received_as_stored_bytes_total', 'counter', 'Of the WAL bytes received, those that came as stored (encrypted under this node\'s key) and were written as they came.', recovery.walBytesReceivedAsStored);
  }

  const checkpoints = view.checkpoints;
  if (checkpoints !== null) {
    const help = view.role === 'standby' ? 'Restartpoints done, by cause (timed: checkpoint_timeout; requested: WAL volume or asked for).' : 'Checkpoints done, by cause (timed: checkpoint_timeout; requested: WAL volume or asked for).';
    m.add('walship_checkpoints_total', 'counter', help, checkpoints.timed, { cause: 'timed' });
    m.add('walship_checkpoints_total', 'counter', help, checkpoints.requested, { cause: 'requested' });
    m.add('walship_checkpoint_duration_seconds_total', 'counter', 'Time spent in checkpoints (restartpoints on a standby), writing and syncing.', checkpoints.durationMs / 1000);
    m.add('walship_checkpoint_buffers_written_total', 'counter', 'Buffers written by checkpoints (restartpoints on a standby).', checkpoints.buffersWritten);
    m.addIfKnown('walship_checkpoint_last_duration_seconds', 'gauge', 'How long the last checkpoint (restartpoint) took.', checkpoints.lastDurationMs === null ? null : checkpoints.lastDurationMs / 1000);
  }

  const buffers = view.buffers;
  if (buffers !== null) {
    m.add('walship_buffer_pool_buffers', 'gauge', 'Pages the buffer pool holds (shared_buffers).', buffers.nBuffers);
    m.add('walship_buffer_pool_dirty_buffers', 'gauge', 'Pages in the buffer pool changed and not yet written.', buffers.dirty);
    m.add('walship_buffer_pool_hits_total', 'counter', 'Page requests served from the buffer pool.', buffers.hits);
    m.add('walship_buffer_pool_reads_total', 'counter', 'Pages read from disk into the buffer pool.', buffers.reads);
    m.add('walship_buffer_pool_writes_total', 'counter', 'Pages written from the buffer pool to disk.', buffers.writes);
    m.add('walship_buffer_pool_evictions_total', 'counter', 'Pages evicted from the buffer pool to make room (clock sweep).', buffers.evictions);
  }
  return m.text();
}

function lsnOf(text: string | null): number | null {
  return text === null ? null : parseLsn(text);
}

/** Reads the postmaster's current instance into a view (`components`: its running components). */
export function collectNodeMetrics(postmaster: Postmaster, components: readonly Component[]): NodeMetricsView {
  const db = postmaster.database;
  const recovery = postmaster.recovery;
  const role = db !== null ? 'primary' : recovery !== null ? 'standby' : null;
  const checkpointer = components.find((c): c is Checkpointer => c instanceof Checkpointer) ?? null;
  const heartbeat = components.find((c): c is Heartbeat => c instanceof Heartbeat) ?? null;
  const rows = postmaster.walSenders.rows();
  const walRcv = postmaster.walRcv;
  let sendLimitLsn: number | null = null;
  if (db !== null) sendLimitLsn = db.xlog.getFlushRecPtr();
  else if (recovery !== null) sendLimitLsn = Math.max(recovery.replayEndLsn, walRcv.receivedTli === recovery.replayTimeline ? walRcv.flushedUpto : 0);
  const wal = db === null ? null : (() => {
    const stats = db.xlog.stats();
    return {
      insertLsn: db.xlog.getInsertRecPtr(), flushLsn: db.xlog.getFlushRecPtr(), commits: db.stats.commits, fsyncs: stats.fsyncs, bytesWritten: stats.bytesWritten, records: stats.records,
      mainThreadFlushes: stats.mainThreadFlushes,
    };
  })();
  const pool = db?.pool ?? recovery?.pool ?? null;
  return {
    up: postmaster.state === 'ready',
    crashRestarts: postmaster.crashRestarts,
    role,
    timeline: db?.timeline ?? recovery?.replayTimeline ?? null,
    wal,
    heartbeats: heartbeat === null ? null : { written: heartbeat.beats, skipped: heartbeat.skipped },
    standbys: rows.map((row) => ({
      applicationName: row.applicationName, state: row.state, syncState: row.syncState, syncPriority: row.syncPriority,
      sentLsn: lsnOf(row.sentLsn), writeLsn: lsnOf(row.writeLsn), flushLsn: lsnOf(row.flushLsn), replayLsn: lsnOf(row.replayLsn),
      writeLagMs: row.writeLagMs, flushLagMs: row.flushLagMs, replayLagMs: row.replayLagMs, replyAgeMs: row.replyAgeMs,
      walBytesSent: row.walBytesSent, walBytesSentAsStored: row.walBytesSentAsStored,
    })),
    sendLimitLsn,
    slots: db === null ? [] : (postmaster.walSenders.slots?.rows() ?? []).map((slot) => ({
      name: slot.name, active: slot.active, walStatus: slot.walStatus, restartLsn: lsnOf(slot.restartLsn), safeWalSizeBytes: slot.safeWalSizeBytes,
    })),
    syncWaiters: postmaster.syncRep === null ? null : (() => {
      const stats = postmaster.syncRep.stats();
      return { count: stats.count, oldestMs: stats.oldestMs };
    })(),
    recovery: recovery === null ? null : {
      walReceiverStatus: walRcv.status,
      receivedLsn: walRcv.flushedUpto,
      replayLsn: recovery.replayEndLsn,
      lastReplayedTimestampMs: recovery.lastReplayedTimestamp,
      lastCommitTimeMs: recovery.lastCommitTime,
      recordsReplayed: recovery.recordsReplayed,
      // TimestampTz microseconds to milliseconds.
      lastMessageReceiptMs: walRcv.lastMsgReceiptTime > 0 ? walRcv.lastMsgReceiptTime / 1000 : null,
      walBytesReceived: walRcv.walBytesReceived,
      walBytesReceivedAsStored: walRcv.walBytesReceivedAsStored,
    },
    checkpoints: checkpointer === null ? null : { ...checkpointer.counts, ...checkpointer.totals },
    buffers: pool === null ? null : pool.stats(),
    nowMs: Date.now(),
  };
}
