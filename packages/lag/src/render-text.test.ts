import { describe, expect, it } from 'vitest';
import { computeLag, EMPTY_HISTORY } from './compute-lag.js';
import { ANSI_PAINT, renderLagReport } from './render-text.js';
import { MB, member, primarySnapshot, row, sampleAt, standbySnapshot } from './test-support.js';

describe('renderLagReport', () => {
  it('prints the primary, each standby under its upstream, slots and thresholds', () => {
    const primary = primarySnapshot({
      flushLsn: 100 * MB,
      replication: [row('a', { replayLsn: 100 * MB - 512, syncState: 'sync' })],
      slots: [{ name: 'a', active: true, restartLsn: 99 * MB, walStatus: 'reserved', safeWalSizeBytes: null }],
    });
    const a = standbySnapshot('a', { replication: [row('b', { replayLsn: 99 * MB, replyAgeMs: 9_000 })], lastReplayedTimestampMs: 1_000 });
    const { report } = computeLag(sampleAt(Date.UTC(2026, 0, 1, 12, 0, 1), member('p', 1, primary), member('a', 2, a), member('b', 3, null)), EMPTY_HISTORY);
    const text = renderLagReport(report, { thresholds: { warn: null, crit: { durationMs: 10_000, bytes: null } }, timeZone: 'UTC' }).join('\n');
    expect(text).toContain('primary p on timeline 1 · flush 0/6400000 · WAL - · 12:00:01');
    const lines = text.split('\n');
    const header = lines.findIndex((l) => l.startsWith('member'));
    expect(lines[header]).toMatch(/^member\s+role\s+state\s+sync\s+lag\s+write lag\s+flush lag\s+replay lag\s+replay delay\s+catch-up\s+LSN$/);
    expect(lines[header + 1]).toMatch(/^p\s+primary\s+running\s+-\s+0 B\s/);
    expect(lines[header + 2]).toMatch(/^ {2}a\s+standby\s+streaming\s+sync\s+512 B\s+0\.200 ms\s+0\.500 ms\s+0\.800 ms\s/);
    expect(lines[header + 3]).toMatch(/^ {4}b\s+standby\s+disconnected \(no answer\)\s+async\s+1\.0 MB\s+-\s+-\s+-\s/);
    expect(text).toMatch(/\nslot\s+active\s+WAL status\s+retained\s+safe left\s+invalidated in\na\s+yes\s+reserved\s+1\.0 MB\s+-\s+-\n/);
    expect(text).toContain('thresholds: warning above -, critical above 10.00 s');
  });

  it('colours rows by severity and keeps the columns aligned', () => {
    const primary = primarySnapshot({ replication: [row('s1', { replyAgeMs: 60_000 })] });
    const { report } = computeLag(sampleAt(0, member('p', 1, primary), member('s1', 2, standbySnapshot('s1'))));
    const sparklines = new Map([['s1', '▁▂!']]);
    const lines = renderLagReport(report, { thresholds: { warn: null, crit: null }, paint: ANSI_PAINT, sparklines });
    const s1 = lines.find((l) => l.includes('s1'))!;
    expect(s1.startsWith('\u001b[31;1m')).toBe(true);
    expect(s1).toContain('▁▂!');
    const plain = (l: string) => l.replace(/\u001b\[[0-9;]*m/g, '');
    const header = plain(lines.find((l) => plain(l).startsWith('member'))!);
    expect(plain(s1).indexOf('disconnected')).toBe(header.indexOf('state'));
  });

  it('says a standby that keeps pace under a steady load is keeping up, and one far behind is not gaining', () => {
    // The primary writes 1 MB/s; s1 replays as fast, 100 kB behind (a tenth of a second of WAL);
    // s2 replays as fast too, but 5 MB behind (five seconds of WAL).
    const sample = (i: number) => {
      const flush = 100 * MB + i * MB;
      const primary = primarySnapshot({ flushLsn: flush, replication: [row('s1', { replayLsn: flush - 100_000 }), row('s2', { replayLsn: flush - 5 * MB })] });
      return sampleAt(1_000_000 + i * 1000, member('p', 1, primary), member('s1', 2, standbySnapshot('s1')), member('s2', 3, standbySnapshot('s2')));
    };
    const first = computeLag(sample(0), EMPTY_HISTORY);
    const { report } = computeLag(sample(1), first.history);
    expect(report.walRateBytesPerSecond).toBe(MB);
    expect(report.members.map((m) => [m.name, m.catchUpEtaMs])).toEqual([['p', null], ['s1', null], ['s2', null]]);
    const text = renderLagReport(report, { thresholds: { warn: null, crit: null } }).join('\n');
    expect(text).toMatch(/\n {2}s1 .*1\.0 MB\/s, keeping up/);
    expect(text).toMatch(/\n {2}s2 .*1\.0 MB\/s, not gaining/);
  });
});
