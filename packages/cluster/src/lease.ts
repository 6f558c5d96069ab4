/**
 * The primary's lease, the cluster's side (failover rule 1; the nodes' side is the server's
 * lease.ts). With `failover.enforce_lease` (the default in automatic mode) every member runs with
 * `require_primary_lease = on`: a primary acknowledges commits only while a lease holds. Who
 * grants it:
 *
 *   - the failover monitor, after every health check the primary answers (monitor.ts), for
 *     `primary_lease`; it promotes another member only once the last lease it granted, counted
 *     from the moment it sent it, has run out plus one check interval (monitor-core.ts);
 *   - the commands that leave a new or restarted primary behind — `cluster up`, `switchover`,
 *     `failover` — while they still hold the data root's lock: the monitor pauses while a
 *     switchover or failover holds it and starts counting anew afterwards, so such a grant is
 *     always covered by its count. A switchover or failover keeps renewing the new primary's
 *     lease from its promotion until it lets go of the lock (`keepLease`): what it does after the
 *     promotion (repointing, rewinding, waiting for the standbys) may outlast one lease, and
 *     the new primary must not refuse writes meanwhile.
 *
 * A grant's time is read on CLOCK_MONOTONIC just before it is sent (the server's
 * monotonicClockUs), so that a grant delivered late gives no more than the granter counted.
 */
import { monotonicClockUs } from '@walship/server/lease';
import { memberAddress, type MemberConfig } from './config.js';
import type { ClusterContext } from './context.js';
import type { LeaseGrantOutcome, LeaseGrantRequest } from './node-control.js';

export { monotonicClockUs };

/** A grant to `member` as primary of `timeline`, issued now. */
export function leaseGrant(ctx: ClusterContext, member: MemberConfig, timeline: number, grantor: string): LeaseGrantRequest {
  return { holder: member.name, timeline, durationMs: ctx.config.failover.primaryLeaseMs, issuedAtUs: monotonicClockUs(), grantor };
}

/** How long a command waits for a grant to be answered: a healthy node answers in milliseconds. */
const GRANT_TIMEOUT_MS = 2_000;

/**
 * A command's grant to the primary it leaves behind, when the cluster enforces the lease. A
 * refusal is reported as a warning, not thrown: the primary then refuses writes until the
 * monitor's next check grants it one.
 */
export async function grantLeaseAfterCommand(ctx: ClusterContext, member: MemberConfig, timeline: number, grantor: string): Promise<LeaseGrantOutcome | null> {
  if (!ctx.config.failover.enforceLease) return null;
  const outcome = await ctx.control.grantLease({ address: memberAddress(ctx.config, member), grant: leaseGrant(ctx, member, timeline, grantor), timeoutMs: GRANT_TIMEOUT_MS });
  if (!outcome.granted) {
    ctx.progress(`${member.name}: warning: could not grant it the primary's lease (${outcome.refused ?? 'it did not answer'}); it accepts writes once the failover monitor grants one`);
  }
  return outcome;
}

/** A lease kept renewed in the background until `stop()`. */
export interface LeaseKeeper {
  stop(): void;
}

/**
 * Grants `member` its lease now (awaited) and again every health-check interval until `stop()`,
 * when the cluster enforces the lease; each renewal is fire-and-forget, its failure only a
 * progress line (the next one tries again).
 */
export async function keepLease(ctx: ClusterContext, member: MemberConfig, timeline: number, grantor: string): Promise<LeaseKeeper> {
  if (!ctx.config.failover.enforceLease) return { stop: () => undefined };
  await grantLeaseAfterCommand(ctx, member, timeline, grantor);
  let stopped = false;
  const timer = setInterval(() => {
    if (stopped) return;
    void ctx.control
      .grantLease({ address: memberAddress(ctx.config, member), grant: leaseGrant(ctx, member, timeline, grantor), timeoutMs: ctx.config.failover.healthCheckIntervalMs })
      .catch(() => undefined);
  }, ctx.config.failover.healthCheckIntervalMs);
  timer.unref();
  return {
    stop: () => {
      stopped = true;
      clearInterval(timer);
    },
  };
}
