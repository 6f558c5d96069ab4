import { describe, expect, it } from 'vitest';
import { escapeLabelValue, MetricsWriter, renderNodeMetrics, type NodeMetricsView } from './metrics.js';

/**
 * Checks text against the exposition format: HELP then TYPE once per family, before its samples,
 * each sample `name{label="value",...} number`, counters ending in _total. Returns the samples
 * as "name{labels}" -> value.
 */
function parseExposition(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const typed = new Map<string, string>();
  const lines = text.split('\n');
  expect(lines.pop()).toBe('');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const help = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$/.exec(line);
    if (help !== null) {
      const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (gauge|counter)$/.exec(lines[i + 1] ?? '');
      expect(type?.[1], `TYPE after ${line}`).toBe(help[1]);
      expect(typed.has(help[1]!), `${help[1]} declared twice`).toBe(false);
      typed.set(help[1]!, type![2]!);
      if (type![2] === 'counter') expect(help[1]).toMatch(/_total$/);
      i++;
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\["\\n])*",?)*\})? (-?[0-9.e+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    expect(sample, `not a sample line: ${line}`).not.toBeNull();
    expect(typed.has(sample![1]!), `${sample![1]} has no TYPE before it`).toBe(true);
    samples.set(`${sample![1]}${sample![2] ?? ''}`, Number(sample![3]));
  }
  return samples;
}

const BASE: NodeMetricsView = {
  up: true, crashRestarts: 0, role: 'primary', timeline: 2,
  wal: { insertLsn: 5000, flushLsn: 4096, commits: 7, fsyncs: 3, bytesWritten: 8192, records: 9, mainThreadFlushes: 2 },
  heartbeats: { written: 4, skipped: 1 },
  standbys: [
    { applicationName: 's1', state: 'streaming', syncState: 'sync', syncPriority: 1, sentLsn: 4096, writeLsn: 4096, flushLsn: 4000, replayLsn: 3000,
      writeLagMs: 0.25, flushLagMs: 1.5, replayLagMs: 2, replyAgeMs: 120, walBytesSent: 65536, walBytesSentAsStored: 61440 },
    { applicationName: 'idle "one"', state: 'catchup', syncState: 'async', syncPriority: 0, sentLsn: 4096, writeLsn: 4096, flushLsn: 4096, replayLsn: 4096,
      writeLagMs: null, flushLagMs: null, replayLagMs: null, replyAgeMs: null, walBytesSent: 0, walBytesSentAsStored: 0 },
  ],
  sendLimitLsn: 4096,
  slots: [{ name: 's1', active: true, walStatus: 'reserved', restartLsn: 1024, safeWalSizeBytes: null }],
  syncWaiters: { count: 2, oldestMs: 1500 },
  recovery: null,
  checkpoints: { timed: 1, requested: 2, durationMs: 2500, buffersWritten: 30, lastDurationMs: 500 },
  buffers: { nBuffers: 256, hits: 100, reads: 10, writes: 5, evictions: 3, dirty: 4 },
  nowMs: 10_000,
};

describe('/metrics', () => {
  it('names a primary\'s figures in Prometheus conventions: units in the name, _total counters, standbys by application_name', () => {
    const samples = parseExposition(renderNodeMetrics(BASE));
    expect(Object.fromEntries([...samples].filter(([key]) => key.includes('s1')))).toEqual({
      'walship_replication_streaming{application_name="s1"}': 1,
      'walship_replication_state{application_name="s1",state="streaming"}': 1,
      'walship_replication_sync_state{application_name="s1",sync_state="sync"}': 1,
      'walship_replication_sync_priority{application_name="s1"}': 1,
      'walship_replication_sent_lsn_bytes{application_name="s1"}': 4096,
      'walship_replication_write_lsn_bytes{application_name="s1"}': 4096,
      'walship_replication_flush_lsn_bytes{application_name="s1"}': 4000,
      'walship_replication_replay_lsn_bytes{application_name="s1"}': 3000,
      'walship_replication_lag_bytes{application_name="s1"}': 1096,
      'walship_replication_write_lag_seconds{application_name="s1"}': 0.00025,
      'walship_replication_flush_lag_seconds{application_name="s1"}': 0.0015,
      'walship_replication_replay_lag_seconds{application_name="s1"}': 0.002,
      'walship_replication_reply_age_seconds{application_name="s1"}': 0.12,
      'walship_replication_sent_bytes_total{application_name="s1"}': 65536,
      'walship_replication_sent_as_stored_bytes_total{application_name="s1"}': 61440,
      'walship_replication_slot_active{slot_name="s1"}': 1,
      'walship_replication_slot_wal_status{slot_name="s1",wal_status="reserved"}': 1,
      'walship_replication_slot_retained_bytes{slot_name="s1"}': 3072,
    });
    // No figure, no sample: an idle standby's lags are absent, never 0.
    expect([...samples.keys()].filter((key) => key.includes('idle') && key.includes('lag_seconds'))).toEqual([]);
    expect(samples.get('walship_replication_lag_bytes{application_name="idle \\"one\\""}')).toBe(0);
    expect(samples.get('walship_replication_standbys')).toBe(2);
    expect(samples.get('walship_checkpoints_total{cause="timed"}')).toBe(1);
    expect(samples.get('walship_checkpoints_total{cause="requested"}')).toBe(2);
    expect(samples.get('walship_checkpoint_duration_seconds_total')).toBe(2.5);
    expect(samples.get('walship_checkpoint_last_duration_seconds')).toBe(0.5);
    expect(samples.get('walship_buffer_pool_hits_total')).toBe(100);
    expect(samples.get('walship_buffer_pool_evictions_total')).toBe(3);
    expect(samples.get('walship_heartbeats_total')).toBe(4);
    expect(samples.get('walship_sync_rep_oldest_wait_seconds')).toBe(1.5);
    expect(samples.get('walship_in_recovery')).toBe(0);
    expect(samples.get('walship_commits_total')).toBe(7);
    expect(samples.get('walship_wal_main_thread_flushes_total')).toBe(2);
    expect([...samples.keys()].some((key) => key.startsWith('walship_wal_receiver'))).toBe(false);
  });

  it('shows a standby\'s walreceiver, replay position and replay delay', () => {
    const samples = parseExposition(renderNodeMetrics({
      ...BASE, role: 'standby', wal: null, heartbeats: null, standbys: [], slots: [], syncWaiters: null, sendLimitLsn: 9000,
      recovery: { walReceiverStatus: 'streaming', receivedLsn: 9000, replayLsn: 8000, lastReplayedTimestampMs: 9_750, lastCommitTimeMs: 4_000, recordsReplayed: 12, lastMessageReceiptMs: 9_900,
        walBytesReceived: 4_000_000, walBytesReceivedAsStored: 3_500_000 },
    }));
    expect(samples.get('walship_in_recovery')).toBe(1);
    expect(samples.get('walship_wal_receiver_streaming')).toBe(1);
    expect(samples.get('walship_wal_receiver_status{status="streaming"}')).toBe(1);
    expect(samples.get('walship_wal_receive_lsn_bytes')).toBe(9000);
    expect(samples.get('walship_wal_replay_lsn_bytes')).toBe(8000);
    expect(samples.get('walship_replay_delay_seconds')).toBe(0.25);
    expect(samples.get('walship_last_replayed_commit_timestamp_seconds')).toBe(4);
    expect(samples.get('walship_wal_receiver_last_message_age_seconds')).toBeCloseTo(0.1, 6);
    expect(samples.get('walship_replication_standbys')).toBe(0);
    expect(samples.get('walship_wal_receiver_received_bytes_total')).toBe(4_000_000);
    expect(samples.get('walship_wal_receiver_received_as_stored_bytes_total')).toBe(3_500_000);
  });

  it('escapes label values and refuses bad names', () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    const writer = new MetricsWriter();
    expect(() => writer.add('bad name', 'gauge', 'x', 1)).toThrow();
    expect(() => writer.add('walship_things', 'counter', 'x', 1)).toThrow(/_total/);
    expect(() => writer.add('walship_x', 'gauge', 'x', 1, { __reserved: 'y' })).toThrow();
    writer.addIfKnown('walship_absent', 'gauge', 'never written', null);
    expect(writer.text()).toBe('');
  });
});
