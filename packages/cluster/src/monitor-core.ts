/**
 * The failover monitor's decision core: when does a primary that stopped answering count as
 * gone. Pure, in the raft style STYLE.md points at: events in (a health check's outcome, a pause
 * while another cluster command runs, the end of a failover attempt), a new core and an action
 * out; time is the caller's monotonic clock in milliseconds, passed in each event.
 *
 * The rules:
 *   1. A health check that answers as a primary resets the count and records the contact.
 *   2. `missedChecks` checks in a row that do not mean down. Even then, a failover waits until
 *      the primary's lease plus a margin (one check interval) has passed since the last contact,
 *      and since the last lease the monitor sent it ran out (a lease is counted from the moment
 *      it was sent, which may be after the contact): a primary only acknowledges writes while
 *      its lease holds (the server's lease.ts, with failover.enforce_lease), so after that time
 *      it can no longer acknowledge anything, whether it is dead, frozen or cut off.
 *   3. A primary never seen answering (the monitor started while it was down) counts from the
 *      monitor's start, so a cluster whose primary died while nothing watched is still failed
 *      over; a lease a previous monitor granted ran out before that start plus the lease.
 *   4. While another cluster command holds the cluster (a switchover stops the primary on
 *      purpose), checks are not counted; the count starts again afterwards, and the first check
 *      after the pause counts as a contact: the command may have granted the primary a lease
 *      until then.
 *   5. After a failover attempt that did not promote anyone (no eligible standby), the next one
 *      waits `retryAfterMs`, so the monitor does not hammer the members.
 *   6. When the state names another primary (a switchover or a manual failover happened), the
 *      count starts again for it.
 */

export interface MonitorPolicy {
  readonly healthCheckIntervalMs: number;
  readonly missedChecks: number;
  readonly primaryLeaseMs: number;
}

export interface MonitorCore {
  /** The primary being watched. */
  readonly primary: string | null;
  /** Consecutive failed checks. */
  readonly missed: number;
  /** Last time the primary answered (or the monitor started watching it), monotonic ms. */
  readonly lastContactMs: number;
  /** No failover attempt before this (rule 5). */
  readonly notBeforeMs: number;
  /** When the last lease the monitor sent runs out, monotonic ms (rule 2); -Infinity before any. */
  readonly leaseExpiresMs: number;
  /** Checks were paused (rule 4): the next check counts as a contact. */
  readonly paused: boolean;
}

export type MonitorEvent =
  | { readonly kind: 'check'; readonly primary: string; readonly ok: boolean; readonly atMs: number }
  | { readonly kind: 'paused'; readonly atMs: number }
  /** A lease was sent to the primary (whether or not it arrives), running out at `expiresAtMs`. */
  | { readonly kind: 'leaseSent'; readonly expiresAtMs: number }
  | { readonly kind: 'failoverEnded'; readonly promoted: boolean; readonly atMs: number };

export type MonitorAction =
  | { readonly kind: 'none' }
  | {
      readonly kind: 'failover';
      readonly primary: string;
      readonly missed: number;
      /** Since the last contact with the primary. */
      readonly silentMs: number;
      /** What the failover waited for: the checks, or the lease after them. */
      readonly waitedFor: 'missed_checks' | 'lease';
    };

/**
 * The longest wait after turns of the monitor that failed in a row: long enough not to fill
 * monitor.log with one error, short enough that a repaired state file is seen within seconds.
 */
export const ERROR_BACKOFF_MAX_MS = 5_000;

/** The wait before the next turn after `consecutiveErrors` failed turns: one interval, doubling, at most ERROR_BACKOFF_MAX_MS. */
export function errorBackoffMs(policy: MonitorPolicy, consecutiveErrors: number): number {
  if (consecutiveErrors <= 0) return 0;
  return Math.min(ERROR_BACKOFF_MAX_MS, policy.healthCheckIntervalMs * 2 ** Math.min(consecutiveErrors - 1, 20));
}

/** How long after a failover that found no standby to promote the monitor tries again. */
export function retryAfterMs(policy: MonitorPolicy): number {
  return policy.healthCheckIntervalMs * policy.missedChecks;
}

export function initialMonitorCore(nowMs: number): MonitorCore {
  return { primary: null, missed: 0, lastContactMs: nowMs, notBeforeMs: 0, leaseExpiresMs: -Infinity, paused: false };
}

const NONE: MonitorAction = { kind: 'none' };

export function monitorStep(core: MonitorCore, event: MonitorEvent, policy: MonitorPolicy): { core: MonitorCore; action: MonitorAction } {
  switch (event.kind) {
    case 'paused':
      return { core: { ...core, missed: 0, lastContactMs: event.atMs, paused: true }, action: NONE };
    case 'leaseSent':
      return { core: { ...core, leaseExpiresMs: Math.max(core.leaseExpiresMs, event.expiresAtMs) }, action: NONE };
    case 'failoverEnded':
      return {
        core: event.promoted
          ? { primary: null, missed: 0, lastContactMs: event.atMs, notBeforeMs: 0, leaseExpiresMs: -Infinity, paused: false }
          : { ...core, notBeforeMs: event.atMs + retryAfterMs(policy) },
        action: NONE,
      };
    case 'check': {
      // Rule 6: a new primary starts a new count, from now (leases sent to the old one are no longer its concern).
      let base: MonitorCore =
        core.primary === event.primary ? core : { primary: event.primary, missed: 0, lastContactMs: event.atMs, notBeforeMs: 0, leaseExpiresMs: -Infinity, paused: false };
      // Rule 4: the first check after a pause counts from now.
      if (base.paused) base = { ...base, lastContactMs: event.atMs, paused: false };
      if (event.ok) return { core: { ...base, missed: 0, lastContactMs: event.atMs }, action: NONE };
      const next = { ...base, missed: base.missed + 1 };
      if (next.missed < policy.missedChecks || event.atMs < next.notBeforeMs) return { core: next, action: NONE };
      const silentMs = event.atMs - next.lastContactMs;
      const leaseEndsMs = policy.primaryLeaseMs + policy.healthCheckIntervalMs;
      if (silentMs < leaseEndsMs) return { core: next, action: NONE };
      // Rule 2: the last lease sent, counted from its sending, plus the margin.
      if (event.atMs < next.leaseExpiresMs + policy.healthCheckIntervalMs) return { core: next, action: NONE };
      const checksTook = policy.missedChecks * policy.healthCheckIntervalMs;
      return {
        core: next,
        action: { kind: 'failover', primary: event.primary, missed: next.missed, silentMs, waitedFor: leaseEndsMs > checksTook ? 'lease' : 'missed_checks' },
      };
    }
  }
}
