import { describe, expect, it } from 'vitest';
import { ErrorCode, WalshipError, type Lsn } from '@walship/engine';
import { LEASE_REFUSAL_LOG_INTERVAL_MS, PrimaryLease, monotonicClockUs, type LeaseGrant } from './lease.js';

function setup(required = true) {
  let nowUs = 1_000_000_000;
  const lines: string[] = [];
  const lease = new PrimaryLease((level, message) => lines.push(`${level}: ${message}`), () => nowUs);
  lease.required = required;
  return {
    lease,
    lines,
    advanceMs: (ms: number) => {
      nowUs += ms * 1000;
    },
    grant: (overrides: Partial<LeaseGrant> = {}): LeaseGrant => ({ holder: 'n1', timeline: 2, durationMs: 1000, issuedAtUs: nowUs, grantor: 'monitor', ...overrides }),
    nowUs: () => nowUs,
  };
}

const primary = { member: 'n1', role: 'primary' as const, timeline: 2 };

function codeOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (error) {
    expect(error).toBeInstanceOf(WalshipError);
    return (error as WalshipError).code;
  }
}

describe('PrimaryLease', () => {
  it('is off by default: commits go on without any lease', () => {
    const { lease } = setup(false);
    expect(() => lease.checkBeforeCommit()).not.toThrow();
    expect(() => lease.checkAcknowledge(100 as Lsn)).not.toThrow();
    expect(lease.view()).toMatchObject({ required: false, held: false, expiresInMs: null });
  });

  it('refuses commits before any grant, with nothing written', () => {
    const { lease, lines } = setup();
    expect(codeOf(() => lease.checkBeforeCommit())).toBe(ErrorCode.primaryLeaseExpired);
    expect(lines[0]).toMatch(/^LOG: cannot commit: this primary holds no lease/);
  });

  it('lets commits through while the lease holds, and not a microsecond after it ran out', () => {
    const { lease, grant, advanceMs } = setup();
    expect(lease.grant(grant(), primary)).toEqual({ holder: 'n1', expiresInMs: 1000 });
    advanceMs(999.999);
    expect(() => lease.checkBeforeCommit()).not.toThrow();
    expect(() => lease.checkAcknowledge(100 as Lsn)).not.toThrow();
    advanceMs(0.001);
    expect(codeOf(() => lease.checkBeforeCommit())).toBe(ErrorCode.primaryLeaseExpired);
  });

  it('turns the acknowledgement of a commit whose lease ran out while it waited into an indeterminate error with its LSN', () => {
    const { lease, grant, advanceMs, lines } = setup();
    lease.grant(grant(), primary);
    lease.checkBeforeCommit();
    // The node is stopped (SIGSTOP) while the commit waits for its standbys; it resumes later.
    advanceMs(5_000);
    let error: WalshipError | null = null;
    try {
      lease.checkAcknowledge(0x3000060 as Lsn);
    } catch (caught) {
      error = caught as WalshipError;
    }
    expect(error?.code).toBe(ErrorCode.indeterminate);
    expect(error?.lsn).toBe(0x3000060);
    expect(error?.message).toBe('could not acknowledge the commit: this primary\'s lease has expired');
    expect(error?.detail).toMatch(/already committed locally at 0\/3000060, but its lease from monitor ran out 4000 ms ago/);
    expect(lines).toContain('WARNING: could not acknowledge the commit: this primary\'s lease has expired');
  });

  it('counts a grant from when it was issued, so a grant delivered late to a frozen node lasts no longer', () => {
    const { lease, grant, advanceMs } = setup();
    const sent = grant();
    advanceMs(800); // queued in the socket of a stopped node
    expect(lease.grant(sent, primary).expiresInMs).toBe(200);
    advanceMs(300);
    expect(lease.holds()).toBe(false);
    const stale = grant({ issuedAtUs: sent.issuedAtUs });
    expect(codeOf(() => lease.grant(stale, primary))).toBe(ErrorCode.objectNotInPrerequisiteState);
    expect(lease.holds()).toBe(false);
  });

  it('refuses grants for a standby, another member, another timeline, or from another clock', () => {
    const { lease, grant, nowUs } = setup();
    expect(codeOf(() => lease.grant(grant(), { ...primary, role: 'standby' }))).toBe(ErrorCode.objectNotInPrerequisiteState);
    expect(codeOf(() => lease.grant(grant({ holder: 's1' }), primary))).toBe(ErrorCode.invalidParameter);
    expect(codeOf(() => lease.grant(grant({ timeline: 1 }), primary))).toBe(ErrorCode.objectNotInPrerequisiteState);
    expect(codeOf(() => lease.grant(grant({ issuedAtUs: nowUs() + 1 }), primary))).toBe(ErrorCode.invalidParameter);
    expect(lease.holds()).toBe(false);
  });

  it('never shortens the lease held when grants arrive out of order', () => {
    const { lease, grant, advanceMs } = setup();
    const older = grant();
    advanceMs(300);
    lease.grant(grant(), primary);
    expect(lease.grant(older, primary).expiresInMs).toBe(1000);
  });

  it('drops the lease at promotion', () => {
    const { lease, grant } = setup();
    lease.grant(grant(), primary);
    lease.reset();
    expect(lease.holds()).toBe(false);
    expect(codeOf(() => lease.checkBeforeCommit())).toBe(ErrorCode.primaryLeaseExpired);
  });

  it('logs refused commits at most every LEASE_REFUSAL_LOG_INTERVAL_MS, with the count in between', () => {
    const { lease, grant, advanceMs, lines } = setup();
    lease.grant(grant(), primary);
    advanceMs(1_000);
    for (let i = 0; i < 50; i++) codeOf(() => lease.checkBeforeCommit());
    advanceMs(LEASE_REFUSAL_LOG_INTERVAL_MS);
    codeOf(() => lease.checkBeforeCommit());
    const refusals = lines.filter((line) => line.startsWith('LOG: cannot commit'));
    expect(refusals).toEqual([
      "LOG: cannot commit: this primary's lease has expired",
      "LOG: cannot commit: this primary's lease has expired (50 commits refused since the last report)",
    ]);
  });

  it('shows the lease in the status view', () => {
    const { lease, grant, advanceMs } = setup();
    lease.grant(grant(), primary);
    advanceMs(250);
    expect(lease.view()).toEqual({ required: true, held: true, holder: 'n1', timeline: 2, grantor: 'monitor', expiresInMs: 750 });
  });

  it('reads CLOCK_MONOTONIC in microseconds', () => {
    const a = monotonicClockUs();
    const b = monotonicClockUs();
    expect(Number.isSafeInteger(a)).toBe(true);
    expect(b).toBeGreaterThanOrEqual(a);
  });
});
