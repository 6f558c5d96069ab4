/**
 * Hand-made snapshots for the tests of the lag arithmetic and its outputs (not part of the
 * package: excluded from the build in tsconfig.json).
 */
import { computeLag, EMPTY_HISTORY, type ClusterSample, type LagHistory, type MemberSample } from './compute-lag.js';
import type { LagReport } from './lag-report.js';
import type { NodeSnapshot, ReplicationRowSnapshot } from './snapshot.js';

export const MB = 1024 * 1024;

export function primarySnapshot(overrides: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return {
    member: 'p', role: 'primary', systemId: '1', timeline: 1,
    insertLsn: 100 * MB, flushLsn: 100 * MB, receiveLsn: null, replayLsn: null,
    metricsPort: 9187, walReceiverStatusIntervalMs: 1000, walSenderTimeoutMs: 60_000, heartbeatIntervalMs: 1000,
    lastReplayedCommitTimeMs: null, lastReplayedTimestampMs: null, timelineHistory: [],
    replication: [], walReceiver: null, slots: [],
    ...overrides,
  };
}

export function standbySnapshot(name: string, overrides: Partial<NodeSnapshot> = {}): NodeSnapshot {
  return {
    member: name, role: 'standby', systemId: '1', timeline: 1,
    insertLsn: 99 * MB, flushLsn: 99 * MB, receiveLsn: 99 * MB, replayLsn: 99 * MB,
    metricsPort: null, walReceiverStatusIntervalMs: 1000, walSenderTimeoutMs: 60_000, heartbeatIntervalMs: 1000,
    lastReplayedCommitTimeMs: null, lastReplayedTimestampMs: null, timelineHistory: [],
    replication: [], walReceiver: { status: 'streaming', receivedLsn: 99 * MB, upstream: '127.0.0.1:5433' }, slots: [],
    ...overrides,
  };
}

export function row(applicationName: string, overrides: Partial<ReplicationRowSnapshot> = {}): ReplicationRowSnapshot {
  return {
    applicationName, clientAddr: '127.0.0.1', state: 'streaming',
    sentLsn: 100 * MB, writeLsn: 100 * MB, flushLsn: 100 * MB, replayLsn: 100 * MB,
    writeLagMs: 0.2, flushLagMs: 0.5, replayLagMs: 0.8, syncState: 'async', syncPriority: 0,
    replyAgeMs: 100, replyTimeMs: null, slotName: null,
    ...overrides,
  };
}

export function member(name: string, port: number, snapshot: NodeSnapshot | null, error: string | null = null): MemberSample {
  return { address: { name, host: '127.0.0.1', port }, snapshot, error: snapshot === null ? (error ?? 'connection refused') : null };
}

export function sampleAt(timeMs: number, ...members: MemberSample[]): ClusterSample {
  return { timeMs, members };
}

/** Reports of a primary and s1 (and, from the third sample, s2) with the given s1 replay lags. */
export function recordedReports(lags: Array<number | 'stopped'>): LagReport[] {
  let history: LagHistory = EMPTY_HISTORY;
  return lags.map((lag, i) => {
    const s1 = lag === 'stopped'
      ? row('s1', { replyAgeMs: 10_000, replayLsn: 90 * MB })
      : row('s1', { replayLagMs: lag, replayLsn: 100 * MB + i * MB - lag * 1000 });
    const rows = i >= 2 ? [s1, row('s2', { replayLagMs: 1, replayLsn: 100 * MB + i * MB })] : [s1];
    const result = computeLag(sampleAt(1_000_000 + i * 1000,
      member('p', 1, primarySnapshot({ flushLsn: 100 * MB + i * MB, replication: rows })),
      member('s1', 2, lag === 'stopped' ? null : standbySnapshot('s1'))), history);
    history = result.history;
    return result.report;
  });
}
