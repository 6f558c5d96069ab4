import { describe, expect, it } from 'vitest';
import { parseNodeStatus, SnapshotError } from './snapshot.js';

describe('parseNodeStatus', () => {
  it('reads a primary\'s status document as walship status --json prints it', () => {
    const snapshot = parseNodeStatus({
      role: 'primary', member: 'n1', systemId: '7300', timeline: 2, insertLsn: '0/3000060', flushLsn: '0/3000060',
      receiveLsn: null, replayLsn: null, lastCheckpointLsn: '0/2000028', metricsPort: 5433,
      walReceiverStatusIntervalMs: 1000, walSenderTimeoutMs: 60000, heartbeatIntervalMs: 1000,
      timelineHistory: [{ timeline: 1, switchLsn: '0/2FFFFF8' }, { timeline: 'x' }],
      replication: [
        { applicationName: 's1', clientAddr: '127.0.0.1', state: 'streaming', sentLsn: '0/3000060', writeLsn: '0/3000060', flushLsn: '0/3000060',
          replayLsn: '0/3000000', writeLagMs: 0.123, flushLagMs: 0.5, replayLagMs: null, syncPriority: 1, syncState: 'sync',
          replyTime: '2025-01-01T00:00:00.000001Z', replyAgeMs: 12.5, slotName: 's1' },
        { clientAddr: 'no name' },
      ],
      walReceiver: null,
      slots: [{ name: 's1', active: true, restartLsn: '0/3000000', walStatus: 'reserved', safeWalSizeBytes: null }],
    });
    expect(snapshot).toMatchObject({ role: 'primary', member: 'n1', timeline: 2, flushLsn: 0x3000060, metricsPort: 5433, walReceiver: null });
    expect(snapshot.timelineHistory).toEqual([{ timeline: 1, switchLsn: 0x2fffff8 }]);
    expect(snapshot.replication).toHaveLength(1);
    expect(snapshot.replication[0]).toMatchObject({ applicationName: 's1', replayLsn: 0x3000000, replayLagMs: null, writeLagMs: 0.123, replyAgeMs: 12.5, replyTimeMs: Date.parse('2025-01-01T00:00:00.000Z'), slotName: 's1' });
    expect(snapshot.slots).toEqual([{ name: 's1', active: true, restartLsn: 0x3000000, walStatus: 'reserved', safeWalSizeBytes: null }]);
  });

  it('reads a standby\'s walreceiver and replay times, and tolerates a document without the new fields', () => {
    const snapshot = parseNodeStatus({
      role: 'standby', timeline: 1, insertLsn: '0/100', flushLsn: '0/100', receiveLsn: '0/100', replayLsn: '0/100',
      lastReplayedCommitTime: '2025-01-01T00:00:01.000Z', lastReplayedTimestamp: '2025-01-01T00:00:02.000Z',
      walReceiver: { status: 'streaming', receivedLsn: '0/100', upstream: '127.0.0.1:5433' },
    });
    expect(snapshot).toMatchObject({
      role: 'standby', member: null, replayLsn: 0x100, metricsPort: null, walReceiverStatusIntervalMs: null,
      lastReplayedCommitTimeMs: Date.parse('2025-01-01T00:00:01.000Z'), lastReplayedTimestampMs: Date.parse('2025-01-01T00:00:02.000Z'),
      walReceiver: { status: 'streaming', receivedLsn: 0x100, upstream: '127.0.0.1:5433' }, replication: [], slots: [], timelineHistory: [],
    });
  });

  it('refuses a document without a role or a timeline, saying which', () => {
    expect(() => parseNodeStatus(null)).toThrow(SnapshotError);
    expect(() => parseNodeStatus({ timeline: 1 })).toThrow(/no role/);
    expect(() => parseNodeStatus({ role: 'standby', timeline: 0 })).toThrow(/no valid timeline/);
  });
});
