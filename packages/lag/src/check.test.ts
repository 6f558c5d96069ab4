import { describe, expect, it } from 'vitest';
import { CheckStatus, evaluateCheck, memberSeverity } from './check.js';
import { computeLag } from './compute-lag.js';
import { MB, member, primarySnapshot, row, sampleAt, standbySnapshot } from './test-support.js';
import { parseThreshold, type Threshold } from './units.js';

function threshold(text: string): Threshold {
  const parsed = parseThreshold(text);
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.value;
}

function reportWith(s1: Partial<Parameters<typeof row>[1]>, standby = standbySnapshot('s1')) {
  return computeLag(sampleAt(0, member('p', 1, primarySnapshot({ flushLsn: 100 * MB, replication: [row('s1', s1)] })), member('s1', 2, standby))).report;
}

describe('evaluateCheck', () => {
  it('is OK below both thresholds, with the largest lags and perfdata', () => {
    const result = evaluateCheck(reportWith({ replayLsn: 100 * MB - 2048, replayLagMs: 0.8 }), { warn: threshold('1MB'), crit: threshold('10s,16MB') });
    expect(result.status).toBe(CheckStatus.ok);
    expect(result.line).toBe(
      'WALSHIP_REPLICATION_LAG OK: 1 standby streaming from p on timeline 1; max lag 2.0 kB (s1), replay lag 0.800 ms (s1)' +
      ` | s1_lag=2048B;${MB};${16 * MB};0 s1_replay_lag=0.0008s;;10;0`,
    );
  });

  it('warns and goes critical past the byte and time thresholds', () => {
    const warn = evaluateCheck(reportWith({ replayLsn: 98 * MB }), { warn: threshold('1MB'), crit: threshold('16MB') });
    expect(warn.status).toBe(CheckStatus.warning);
    expect(warn.line).toMatch(/^WALSHIP_REPLICATION_LAG WARNING: s1 2\.0 MB behind \(warning above 1\.0 MB\) \| /);
    const crit = evaluateCheck(reportWith({ replayLagMs: 12_000 }), { warn: threshold('1s'), crit: threshold('10s') });
    expect(crit.status).toBe(CheckStatus.critical);
    expect(crit.line).toContain('s1 replay lag 12.00 s (critical above 10.00 s)');
  });

  it('is CRITICAL for a disconnected standby whatever the thresholds, saying how far behind it is', () => {
    const result = evaluateCheck(reportWith({ replyAgeMs: 5_000, replayLsn: 90 * MB }), { warn: null, crit: threshold('1TB') });
    expect(result.status).toBe(CheckStatus.critical);
    expect(result.line).toBe('WALSHIP_REPLICATION_LAG CRITICAL: s1 disconnected: no reply for 5.00 s, over twice wal_receiver_status_interval (2.00 s), ' +
      '10.0 MB behind | s1_lag=10485760B;;1099511627776;0');
  });

  it('is CRITICAL for a member that does not answer and for a second primary', () => {
    const { report } = computeLag(sampleAt(0, member('p', 1, primarySnapshot()), member('x', 2, null, 'connection refused'), member('q', 3, primarySnapshot({ member: 'q', flushLsn: 0 }))));
    const result = evaluateCheck(report, { warn: null, crit: null });
    expect(result.status).toBe(CheckStatus.critical);
    expect(result.line).toContain('x does not answer: connection refused');
    expect(result.line).toContain('q is a second primary (conflict, timeline 1)');
  });

  it('is UNKNOWN when no primary answers', () => {
    const { report } = computeLag(sampleAt(0, member('p', 1, null), member('s1', 2, standbySnapshot('s1'))));
    expect(evaluateCheck(report, { warn: null, crit: null })).toEqual({
      status: CheckStatus.unknown,
      line: 'WALSHIP_REPLICATION_LAG UNKNOWN: no primary answers: lag cannot be measured; lag cannot be measured',
    });
  });

  it('is OK for a primary without standbys', () => {
    const { report } = computeLag(sampleAt(0, member('p', 1, primarySnapshot())));
    expect(evaluateCheck(report, { warn: null, crit: null }).line).toBe('WALSHIP_REPLICATION_LAG OK: primary p on timeline 1, no standbys');
  });

  it('judges members one by one for the live view\'s colours', () => {
    const report = reportWith({ replayLsn: 98 * MB });
    const s1 = report.members.find((m) => m.name === 's1')!;
    expect(memberSeverity(s1, { warn: null, crit: null })).toEqual({ severity: 'ok', reason: null });
    expect(memberSeverity(s1, { warn: threshold('1MB'), crit: null }).severity).toBe('warning');
    expect(memberSeverity(report.members[0]!, { warn: threshold('1B'), crit: threshold('1B') }).severity).toBe('ok');
  });
});
