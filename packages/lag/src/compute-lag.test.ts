import { describe, expect, it } from 'vitest';
import { appendPosition, catchUpEtaMs, computeLag, EMPTY_HISTORY, hasDiverged, invalidationEtaMs, rateOf, replyDeadlineMs, type LagHistory } from './compute-lag.js';
import type { MemberLag } from './lag-report.js';
import { MB, member, primarySnapshot, row, sampleAt, standbySnapshot } from './test-support.js';

function byName(members: MemberLag[], name: string): MemberLag {
  const found = members.find((m) => m.name === name);
  if (found === undefined) throw new Error(`no member ${name} in ${members.map((m) => m.name).join(', ')}`);
  return found;
}

describe('computeLag: one primary and its standby', () => {
  it('takes bytes from the primary snapshot and times from its lag tracker', () => {
    const primary = primarySnapshot({ flushLsn: 100 * MB, replication: [row('s1', { replayLsn: 100 * MB - 4096, syncState: 'sync', syncPriority: 1 })] });
    // The standby's own replay LSN is further along than the primary heard: rule 2 ignores it.
    const standby = standbySnapshot('s1', { replayLsn: 100 * MB });
    const { report } = computeLag(sampleAt(1_000, member('p', 5433, primary), member('s1', 5434, standby)));
    expect(report.primary).toBe('p');
    expect(report.timeline).toBe(1);
    expect(report.problems).toEqual([]);
    const s1 = byName(report.members, 's1');
    expect(s1).toMatchObject({
      role: 'standby', state: 'streaming', lagBytes: 4096, writeLagMs: 0.2, flushLagMs: 0.5, replayLagMs: 0.8,
      syncState: 'sync', syncPriority: 1, upstream: 'p', depth: 1, lsn: '0/63FF000', address: '127.0.0.1', port: 5434, reachable: true,
    });
    expect(byName(report.members, 'p')).toMatchObject({ role: 'primary', state: 'running', lagBytes: 0, lsn: '0/6400000', depth: 0, metricsPort: 9187 });
    expect(report.members.map((m) => m.name)).toEqual(['p', 's1']);
  });

  it('never reports negative lag when the standby reported more than the primary flushed a moment before', () => {
    const primary = primarySnapshot({ flushLsn: 10 * MB, replication: [row('s1', { replayLsn: 10 * MB + 8 })] });
    const { report } = computeLag(sampleAt(0, member('p', 1, primary), member('s1', 2, standbySnapshot('s1'))));
    expect(byName(report.members, 's1').lagBytes).toBe(0);
  });

  it('keeps lag times null when the tracker has none (an idle standby without heartbeats) and still streaming', () => {
    const primary = primarySnapshot({ replication: [row('s1', { writeLagMs: null, flushLagMs: null, replayLagMs: null })] });
    const { report } = computeLag(sampleAt(0, member('p', 1, primary), member('s1', 2, standbySnapshot('s1'))));
    expect(byName(report.members, 's1')).toMatchObject({ state: 'streaming', lagBytes: 0, replayLagMs: null });
  });
});

describe('computeLag: disconnected standbys', () => {
  it('marks a standby silent for more than twice wal_receiver_status_interval disconnected, with null times and growing bytes', () => {
    const silent = row('s1', { replyAgeMs: 2_500, replayLsn: 90 * MB });
    let { report, history } = computeLag(sampleAt(0, member('p', 1, primarySnapshot({ flushLsn: 100 * MB, replication: [silent] })), member('s1', 2, null, 'timed out after 3 s')));
    let s1 = byName(report.members, 's1');
    expect(s1).toMatchObject({ role: 'standby', state: 'disconnected', reachable: false, error: 'timed out after 3 s', lagBytes: 10 * MB });
    expect(s1.writeLagMs).toBeNull();
    expect(s1.flushLagMs).toBeNull();
    expect(s1.replayLagMs).toBeNull();
    expect(s1.stateDetail).toMatch(/no reply for 2\.50 s/);
    // The primary moves on; the standby does not: the lag in bytes grows.
    ({ report, history } = computeLag(sampleAt(1_000, member('p', 1, primarySnapshot({ flushLsn: 120 * MB, replication: [{ ...silent, replyAgeMs: 3_500 }] })), member('s1', 2, null)), history));
    s1 = byName(report.members, 's1');
    expect(s1.lagBytes).toBe(30 * MB);
    expect(s1.catchUpEtaMs).toBeNull();
    expect(s1.catchUpRateBytesPerSecond).toBe(0);
    // Its walsender timed out: the lag still counts from the last replay LSN known.
    ({ report } = computeLag(sampleAt(2_000, member('p', 1, primarySnapshot({ flushLsn: 130 * MB })), member('s1', 2, null)), history));
    expect(byName(report.members, 's1')).toMatchObject({ role: 'standby', state: 'disconnected', lagBytes: 40 * MB, replayLagMs: null });
  });

  it('a reply within the deadline is streaming; the deadline is the standby\'s own interval doubled', () => {
    const primary = primarySnapshot({ replication: [row('s1', { replyAgeMs: 1_900 })] });
    const { report } = computeLag(sampleAt(0, member('p', 1, primary), member('s1', 2, standbySnapshot('s1', { walReceiverStatusIntervalMs: 1000 }))));
    expect(byName(report.members, 's1').state).toBe('streaming');
    const longer = computeLag(sampleAt(0, member('p', 1, primarySnapshot({ replication: [row('s1', { replyAgeMs: 15_000 })] })), member('s1', 2, standbySnapshot('s1', { walReceiverStatusIntervalMs: 10_000 }))));
    expect(byName(longer.report.members, 's1').state).toBe('streaming');
  });

  it('uses wal_sender_timeout when status replies are off', () => {
    expect(replyDeadlineMs(0, 30_000)).toBe(30_000);
    expect(replyDeadlineMs(null, null)).toBe(20_000);
    expect(replyDeadlineMs(500, null)).toBe(1_000);
  });

  it('falls back to the standby\'s reply time when the row has no reply age (an older node)', () => {
    const primary = primarySnapshot({ replication: [row('s1', { replyAgeMs: null, replyTimeMs: 5_000 })] });
    const { report } = computeLag(sampleAt(10_000, member('p', 1, primary), member('s1', 2, standbySnapshot('s1'))));
    expect(byName(report.members, 's1')).toMatchObject({ state: 'disconnected', lastReplyAgeMs: 5_000 });
  });

  it('a standby whose walreceiver is not streaming is disconnected even while a stale walsender row remains', () => {
    const primary = primarySnapshot({ replication: [row('s1')] });
    const standby = standbySnapshot('s1', { walReceiver: { status: 'waiting', receivedLsn: MB, upstream: null } });
    const { report } = computeLag(sampleAt(0, member('p', 1, primary), member('s1', 2, standby)));
    expect(byName(report.members, 's1')).toMatchObject({ state: 'disconnected', stateDetail: 'its walreceiver is waiting', replayLagMs: null });
  });

  it('a standby that answers but has no walsender measures from its own replay LSN', () => {
    const standby = standbySnapshot('s1', { replayLsn: 60 * MB, walReceiver: { status: 'stopped', receivedLsn: null, upstream: null } });
    const { report } = computeLag(sampleAt(0, member('p', 1, primarySnapshot({ flushLsn: 100 * MB })), member('s1', 2, standby)));
    expect(byName(report.members, 's1')).toMatchObject({ state: 'disconnected', lagBytes: 40 * MB, reachable: true });
  });
});

describe('computeLag: cascading standbys and members found in rows', () => {
  it('measures a cascading standby from its upstream\'s row and puts it under its upstream', () => {
    const primary = primarySnapshot({ flushLsn: 100 * MB, replication: [row('a', { replayLsn: 99 * MB })] });
    const a = standbySnapshot('a', { replication: [row('b', { replayLsn: 97 * MB, replayLagMs: 3.5 })] });
    const b = standbySnapshot('b', { walReceiver: { status: 'streaming', receivedLsn: 97 * MB, upstream: '127.0.0.1:5434' } });
    const { report } = computeLag(sampleAt(0, member('b', 5435, b), member('p', 5433, primary), member('a', 5434, a)));
    expect(report.members.map((m) => [m.name, m.depth, m.upstream])).toEqual([['p', 0, null], ['a', 1, 'p'], ['b', 2, 'a']]);
    expect(byName(report.members, 'b')).toMatchObject({ lagBytes: 3 * MB, replayLagMs: 3.5, state: 'streaming' });
  });

  it('shows standbys found in the primary\'s rows when only the primary is given', () => {
    const primary = primarySnapshot({ replication: [row('s2', { clientAddr: '10.0.0.2', replayLsn: 99 * MB }), row('s1')] });
    const { report } = computeLag(sampleAt(0, { address: { host: 'localhost', port: 5433 }, snapshot: primary, error: null }));
    expect(report.members.map((m) => m.name)).toEqual(['p', 's1', 's2']);
    expect(byName(report.members, 's2')).toMatchObject({ address: '10.0.0.2', port: null, reachable: null, state: 'streaming', lagBytes: MB, metricsPort: null });
  });

  it('gives a member that never answered the name of the one unmatched walsender row from its host', () => {
    const primary = primarySnapshot({ flushLsn: 100 * MB, replication: [row('s1', { clientAddr: '::ffff:127.0.0.1', replyAgeMs: 9_000, replayLsn: 99 * MB })] });
    const unnamed = { address: { host: 'localhost', port: 5434 }, snapshot: null, error: 'no answer within 1000 ms' };
    const { report, history } = computeLag(sampleAt(0, { address: { host: '127.0.0.1', port: 5433 }, snapshot: primary, error: null }, unnamed));
    expect(report.members.map((m) => [m.name, m.port, m.state, m.reachable])).toEqual([['p', 5433, 'running', true], ['s1', 5434, 'disconnected', false]]);
    expect(history.known['127.0.0.1:5434']?.name).toBe('s1');
    // Two of each on one host: which is which cannot be told, so nothing is paired.
    const two = primarySnapshot({ replication: [row('s1'), row('s2')] });
    const ambiguous = computeLag(sampleAt(0, member('p', 1, two), { ...unnamed }, { ...unnamed, address: { host: '127.0.0.1', port: 5435 } }));
    expect(ambiguous.report.members.map((m) => m.name)).toEqual(['p', 's1', 's2', 'localhost:5434', '127.0.0.1:5435']);
  });

  it('places a standby by its walreceiver\'s upstream when the upstream\'s rows do not list it yet', () => {
    const a = standbySnapshot('a');
    const b = standbySnapshot('b', { walReceiver: { status: 'streaming', receivedLsn: MB, upstream: 'localhost:5434' } });
    const { report } = computeLag(sampleAt(0, member('p', 5433, primarySnapshot({ replication: [row('a')] })), member('a', 5434, a), member('b', 5435, b)));
    expect(byName(report.members, 'b')).toMatchObject({ upstream: 'a', depth: 2, state: 'disconnected', stateDetail: 'no upstream has a walsender for it' });
    // Its upstream stopped: that is what it says.
    const silent = computeLag(sampleAt(0, member('p', 5433, primarySnapshot({ replication: [row('a')] })), member('a', 5434, null), member('b', 5435, b)));
    expect(byName(silent.report.members, 'b')).toMatchObject({ upstream: 'a', depth: 2, state: 'disconnected', stateDetail: 'its upstream a does not answer' });
  });
});

describe('computeLag: the primary, timelines and failover', () => {
  it('picks the highest timeline\'s primary and shows the old one stale', () => {
    const old = primarySnapshot({ member: 'p', timeline: 1, flushLsn: 200 * MB });
    const promoted = primarySnapshot({ member: 's1', timeline: 2, flushLsn: 150 * MB, timelineHistory: [{ timeline: 1, switchLsn: 140 * MB }] });
    const { report } = computeLag(sampleAt(0, member('p', 1, old), member('s1', 2, promoted)));
    expect(report.primary).toBe('s1');
    expect(report.timeline).toBe(2);
    expect(byName(report.members, 'p')).toMatchObject({ role: 'primary', state: 'stale', lagBytes: null });
    expect(report.problems[0]).toMatch(/p is still a primary, on timeline 1/);
  });

  it('calls two primaries on one timeline a conflict', () => {
    const { report } = computeLag(sampleAt(0, member('p', 1, primarySnapshot({ flushLsn: 5 * MB })), member('q', 2, primarySnapshot({ member: 'q', flushLsn: 6 * MB }))));
    expect(report.primary).toBe('q');
    expect(byName(report.members, 'p').state).toBe('conflict');
    expect(report.problems).toEqual(['two primaries on timeline 1: q and p']);
  });

  it('records a failover as a timeline change and restarts the WAL rate', () => {
    let history: LagHistory = EMPTY_HISTORY;
    const first = computeLag(sampleAt(0, member('p', 1, primarySnapshot({ flushLsn: 100 * MB, replication: [row('s1')] })), member('s1', 2, standbySnapshot('s1'))), history);
    history = first.history;
    const second = computeLag(sampleAt(1_000, member('p', 1, primarySnapshot({ flushLsn: 110 * MB, replication: [row('s1', { replayLsn: 110 * MB })] })), member('s1', 2, standbySnapshot('s1'))), history);
    expect(second.report.walRateBytesPerSecond).toBe(10 * MB);
    history = second.history;
    // The primary is killed; the standby is promoted onto timeline 2.
    const during = computeLag(sampleAt(2_000, member('p', 1, null), member('s1', 2, standbySnapshot('s1', { walReceiver: { status: 'starting', receivedLsn: null, upstream: null } }))), history);
    expect(during.report.primary).toBeNull();
    expect(during.report.problems).toEqual(['no primary answers: lag cannot be measured']);
    expect(byName(during.report.members, 'p')).toMatchObject({ role: 'primary', state: 'unreachable', reachable: false });
    expect(byName(during.report.members, 's1')).toMatchObject({ state: 'disconnected', lagBytes: null });
    const after = computeLag(sampleAt(3_000, member('p', 1, null), member('s1', 2, primarySnapshot({ member: 's1', timeline: 2, flushLsn: 111 * MB }))), during.history);
    expect(after.report.primary).toBe('s1');
    expect(after.report.timelineChanges).toEqual([{ timeMs: 3_000, time: new Date(3_000).toISOString(), fromTimeline: 1, toTimeline: 2, fromPrimary: 'p', toPrimary: 's1' }]);
    expect(after.report.walRateBytesPerSecond).toBeNull();
    expect(after.report.members.map((m) => [m.name, m.role, m.state])).toEqual([['s1', 'primary', 'running'], ['p', 'primary', 'unreachable']]);
  });

  it('measures across timelines while a standby is still on the old one, up to the switch point', () => {
    const primary = primarySnapshot({ timeline: 2, flushLsn: 50 * MB, timelineHistory: [{ timeline: 1, switchLsn: 40 * MB }], replication: [row('s2', { replayLsn: 30 * MB })] });
    const behind = standbySnapshot('s2', { timeline: 1, replayLsn: 30 * MB });
    const { report } = computeLag(sampleAt(0, member('p', 1, primary), member('s2', 2, behind)));
    // LSNs number the WAL continuously across the switch: 20 MB to replay, 10 of them on timeline 1.
    expect(byName(report.members, 's2')).toMatchObject({ state: 'streaming', lagBytes: 20 * MB, timeline: 1 });
  });

  it('calls a standby that replayed past the switch point on its old timeline diverged, with no byte lag', () => {
    const primary = primarySnapshot({ timeline: 2, flushLsn: 50 * MB, timelineHistory: [{ timeline: 1, switchLsn: 40 * MB }] });
    const ahead = standbySnapshot('old', { timeline: 1, replayLsn: 45 * MB, walReceiver: { status: 'stopped', receivedLsn: null, upstream: null } });
    const { report } = computeLag(sampleAt(0, member('p', 1, primary), member('old', 2, ahead)));
    expect(byName(report.members, 'old')).toMatchObject({ state: 'diverged', lagBytes: null });
    expect(hasDiverged(1, 40 * MB, primary)).toBe(false);
    expect(hasDiverged(2, 45 * MB, primary)).toBe(false);
  });

  it('marks a member that never answered unreachable, with its error', () => {
    const { report } = computeLag(sampleAt(0, member('p', 1, primarySnapshot()), member('x', 9, null, 'connection refused')));
    expect(byName(report.members, 'x')).toMatchObject({ role: 'unknown', state: 'unreachable', stateDetail: 'connection refused', reachable: false });
    expect(computeLag(sampleAt(0)).report.problems).toEqual(['no member answers']);
  });
});

describe('rates, catch-up and slots', () => {
  it('measures WAL and replay rates over successive samples and estimates the catch-up', () => {
    let history: LagHistory = EMPTY_HISTORY;
    let report;
    // The primary writes 1 MB/s; the standby, behind by 10 MB, replays 3 MB/s.
    for (let second = 0; second <= 2; second++) {
      const flush = (100 + second) * MB;
      const replay = (90 + 3 * second) * MB;
      ({ report, history } = computeLag(sampleAt(second * 1000,
        member('p', 1, primarySnapshot({ flushLsn: flush, replication: [row('s1', { replayLsn: replay })] })),
        member('s1', 2, standbySnapshot('s1'))), history));
    }
    const s1 = byName(report!.members, 's1');
    expect(report!.walRateBytesPerSecond).toBe(MB);
    expect(s1.catchUpRateBytesPerSecond).toBe(3 * MB);
    expect(s1.lagBytes).toBe(6 * MB);
    expect(s1.catchUpEtaMs).toBe(3_000);
  });

  it('keeps positions within the window and restarts after the LSN goes backwards', () => {
    let positions = appendPosition([], { timeMs: 0, lsn: 0 });
    positions = appendPosition(positions, { timeMs: 5_000, lsn: 5 });
    positions = appendPosition(positions, { timeMs: 12_000, lsn: 12 });
    expect(positions.map((p) => p.timeMs)).toEqual([5_000, 12_000]);
    expect(rateOf(positions)).toBeCloseTo(1, 6);
    expect(appendPosition(positions, { timeMs: 13_000, lsn: 1 })).toEqual([{ timeMs: 13_000, lsn: 1 }]);
    expect(rateOf([{ timeMs: 0, lsn: 0 }, { timeMs: 100, lsn: 1000 }])).toBeNull();
  });

  it('estimates catch-up and invalidation times', () => {
    expect(catchUpEtaMs(0, null, null)).toBe(0);
    expect(catchUpEtaMs(1000, 500, 500)).toBeNull();
    expect(catchUpEtaMs(1000, 1500, 500)).toBe(1000);
    expect(catchUpEtaMs(null, 1, 0)).toBeNull();
    expect(invalidationEtaMs(null, 100)).toBeNull();
    expect(invalidationEtaMs(-5, 100)).toBe(0);
    expect(invalidationEtaMs(1000, 0)).toBeNull();
    expect(invalidationEtaMs(1000, 500)).toBe(2000);
  });

  it('reports each slot\'s retained WAL and when max_slot_wal_keep_size would invalidate it', () => {
    const slot = (flush: number) => primarySnapshot({
      flushLsn: flush,
      slots: [
        { name: 'away', active: false, restartLsn: 80 * MB, walStatus: 'extended', safeWalSizeBytes: 16 * MB - (flush - 100 * MB) },
        { name: 'nocap', active: true, restartLsn: 99 * MB, walStatus: 'reserved', safeWalSizeBytes: null },
      ],
    });
    const first = computeLag(sampleAt(0, member('p', 1, slot(100 * MB))));
    const second = computeLag(sampleAt(2_000, member('p', 1, slot(104 * MB))), first.history);
    expect(second.report.slots).toEqual([
      { name: 'away', active: false, walStatus: 'extended', restartLsn: '0/5000000', retainedBytes: 24 * MB, safeWalSizeBytes: 12 * MB, invalidationEtaMs: 6_000 },
      { name: 'nocap', active: true, walStatus: 'reserved', restartLsn: '0/6300000', retainedBytes: 5 * MB, safeWalSizeBytes: null, invalidationEtaMs: null },
    ]);
  });
});
