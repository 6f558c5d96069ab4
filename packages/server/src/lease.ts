/**
 * The primary's lease: the nodes' half of the failover monitor's safety rule 1, "no two members
 * acknowledge writes at the same time" (walship's own; DESIGN.md section 8, packages/cluster's
 * README). The monitor grants the primary a lease with each health check that the primary
 * answers; the primary acknowledges a commit only while its lease holds, and the monitor promotes
 * another member only once the last lease it granted has run out (plus a margin). A primary that
 * is dead, frozen (SIGSTOP) or cut off therefore stops acknowledging before anyone else starts,
 * and one that wakes up later finds its lease expired.
 *
 * Only with `require_primary_lease = on` (the cluster toolkit sets it for members watched by a
 * monitor); off, the default, a node behaves as if the lease did not exist: it still accepts
 * grants and shows them, and never refuses a commit for want of one.
 *
 * The clock is CLOCK_MONOTONIC (process.hrtime), which every process of one machine shares and
 * which runs on while a process is stopped. A grant carries the time it was issued on that clock
 * (read by the granter just before sending it), and runs out `durationMs` after that, not after
 * it arrived: a grant that reaches a node late — queued in the socket of a node frozen by
 * SIGSTOP — lasts no longer than the granter counts. Nodes on other machines would need the lease
 * in a distributed store (DESIGN.md section 8), not this.
 *
 * Who calls what:
 * - a client session's `lease` request (the monitor with each health check; `cluster up`,
 *   `failover` and `switchover` for the primary they start or promote): `grant()`.
 * - NodeBackend around each commit: `checkBeforeCommit()` before anything is written (an expired
 *   lease refuses the transaction: `primary_lease_expired`, nothing written) and
 *   `checkAcknowledge(lsn)` once the commit is durable and its synchronous standbys confirmed it,
 *   right before the reply goes out (an expired lease turns the acknowledgement into an
 *   `indeterminate` error carrying the LSN: committed here, never acknowledged).
 * - the postmaster: `required` from require_primary_lease at start and on every reload;
 *   `reset()` when a standby is promoted (it held no lease as a standby, and gets one from whoever
 *   promoted it).
 */
import { ErrorCode, WalshipError, formatLsn, type LogFunction, type Lsn } from '@walship/engine';

/** CLOCK_MONOTONIC in whole microseconds: the clock of every lease on this machine. */
export function monotonicClockUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/**
 * How often refused commits are logged while the lease stays expired: each refusal is the
 * client's to see; the log needs to say it goes on, not to repeat it hundreds of times a second.
 */
export const LEASE_REFUSAL_LOG_INTERVAL_MS = 5_000;

export interface LeaseGrant {
  /** The member the lease is for (its application_name). */
  readonly holder: string;
  /** The timeline it is primary on. */
  readonly timeline: number;
  readonly durationMs: number;
  /** CLOCK_MONOTONIC microseconds when the granter sent it. */
  readonly issuedAtUs: number;
  /** Who grants it, for the status view and the log. */
  readonly grantor: string;
}

/** What this node is when a grant arrives. */
export interface LeaseNode {
  readonly member: string;
  readonly role: 'primary' | 'standby';
  /** Its timeline; null while no instance runs. */
  readonly timeline: number | null;
}

/** The lease as the status view shows it (`lease` in `walship status --json`). */
export interface LeaseView {
  readonly required: boolean;
  /** Whether a lease holds now. */
  readonly held: boolean;
  readonly holder: string | null;
  readonly timeline: number | null;
  readonly grantor: string | null;
  /** Until it runs out (negative: since it ran out); null when none was ever granted. */
  readonly expiresInMs: number | null;
}

interface Held {
  readonly holder: string;
  readonly timeline: number;
  readonly grantor: string;
  readonly expiresAtUs: number;
}

export class PrimaryLease {
  /** require_primary_lease. */
  required = false;
  private held: Held | null = null;
  private lastRefusalLoggedUs: number | null = null;
  private refusedSinceLog = 0;

  constructor(
    private readonly log: LogFunction,
    private readonly now: () => number = monotonicClockUs,
  ) {}

  /**
   * A `lease` request. Refused (a WalshipError, nothing changed) for a standby, another member,
   * another timeline, a grant issued in this machine's future, or one that had run out before it
   * arrived. A grant never shortens the lease held: grants may arrive out of order.
   */
  grant(grant: LeaseGrant, node: LeaseNode): { holder: string; expiresInMs: number } {
    const now = this.now();
    if (node.role !== 'primary' || node.timeline === null) {
      throw new WalshipError(ErrorCode.objectNotInPrerequisiteState, 'cannot grant a lease to a standby', {
        detail: `A lease lets a primary acknowledge commits; ${node.member} is ${node.timeline === null ? 'not running an instance' : 'in recovery'}.`,
        hint: 'Grant the lease to the current primary.',
      });
    }
    if (grant.holder !== node.member) {
      throw new WalshipError(ErrorCode.invalidParameter, `the lease is for "${grant.holder}", not for this node ("${node.member}")`, {
        hint: 'The cluster state may name another member at this address: check the config\'s ports.',
      });
    }
    if (grant.timeline !== node.timeline) {
      throw new WalshipError(ErrorCode.objectNotInPrerequisiteState, `the lease is for timeline ${grant.timeline}, but this primary is on timeline ${node.timeline}`, {
        hint: 'A lease is granted for the timeline the granter saw this node on; ask again with the current one.',
      });
    }
    if (grant.issuedAtUs > now) {
      throw new WalshipError(ErrorCode.invalidParameter, 'the lease was issued in the future of this machine\'s monotonic clock', {
        detail: `Issued at ${grant.issuedAtUs} µs; this node's clock reads ${now} µs.`,
        hint: 'Leases are counted on CLOCK_MONOTONIC, which only processes of one machine share: grant them from this machine.',
      });
    }
    const expiresAtUs = grant.issuedAtUs + grant.durationMs * 1000;
    if (expiresAtUs <= now) {
      throw new WalshipError(ErrorCode.objectNotInPrerequisiteState, 'the lease had expired before it arrived', {
        detail: `It was issued ${((now - grant.issuedAtUs) / 1000).toFixed(0)} ms ago for ${grant.durationMs} ms.`,
        hint: 'The node was stopped or very slow while the grant waited in its socket; the next health check grants a new one.',
      });
    }
    const current = this.held;
    const keep = current !== null && current.holder === grant.holder && current.timeline === grant.timeline && current.expiresAtUs >= expiresAtUs;
    if (!keep) {
      if (current === null || current.expiresAtUs <= now || current.timeline !== grant.timeline) {
        this.log('LOG', `primary lease granted by ${grant.grantor} for ${grant.durationMs} ms on timeline ${grant.timeline}`);
      }
      this.held = { holder: grant.holder, timeline: grant.timeline, grantor: grant.grantor, expiresAtUs };
    }
    // The next lapse is reported at once.
    this.lastRefusalLoggedUs = null;
    this.refusedSinceLog = 0;
    return { holder: grant.holder, expiresInMs: Math.round((this.held!.expiresAtUs - now) / 1000) };
  }

  /** Whether a lease holds now (on any timeline: the node checks its own at grant time). */
  holds(): boolean {
    return this.held !== null && this.now() < this.held.expiresAtUs;
  }

  /**
   * Before a commit writes anything: with require_primary_lease and no lease holding, the
   * transaction is refused (`primary_lease_expired`): nothing was written, it may be retried on
   * the current primary.
   */
  checkBeforeCommit(): void {
    if (!this.required || this.holds()) return;
    const error = new WalshipError(ErrorCode.primaryLeaseExpired, this.held === null ? 'cannot commit: this primary holds no lease' : 'cannot commit: this primary\'s lease has expired', {
      detail: `${this.describeExpiry()} Nothing was written.`,
      hint: 'Another member may have been promoted: send the write to the current primary. If this node is still the primary, check that its failover monitor runs (walship cluster status -f FILE).',
    });
    this.logRefusal(error);
    throw error;
  }

  /**
   * Right before a commit is acknowledged: with require_primary_lease and no lease holding (it
   * ran out while the commit waited for its standbys, or while the node was stopped), the commit
   * is not acknowledged: an `indeterminate` error carrying its LSN, logged as a WARNING.
   */
  checkAcknowledge(lsn: Lsn): void {
    if (!this.required || this.holds()) return;
    const message = 'could not acknowledge the commit: this primary\'s lease has expired';
    const detail = `The transaction has already committed locally at ${formatLsn(lsn)}, but ${this.describeExpiry().replace(/^./, (c) => c.toLowerCase())} Another member may have been promoted since, and the write may be lost.`;
    this.log('WARNING', message);
    this.log('DETAIL', detail);
    throw new WalshipError(ErrorCode.indeterminate, message, {
      detail,
      hint: 'The write is indeterminate: read it back from the current primary.',
      lsn,
    });
  }

  /** The instance becomes a primary by promotion: whatever it held before does not carry over. */
  reset(): void {
    this.held = null;
  }

  view(): LeaseView {
    const held = this.held;
    return {
      required: this.required,
      held: this.holds(),
      holder: held?.holder ?? null,
      timeline: held?.timeline ?? null,
      grantor: held?.grantor ?? null,
      expiresInMs: held === null ? null : Math.round((held.expiresAtUs - this.now()) / 1000),
    };
  }

  private describeExpiry(): string {
    const held = this.held;
    if (held === null) return 'No lease has been granted to it since it started or was promoted (require_primary_lease is on).';
    return `Its lease from ${held.grantor} ran out ${((this.now() - held.expiresAtUs) / 1000).toFixed(0)} ms ago.`;
  }

  private logRefusal(error: WalshipError): void {
    const now = this.now();
    this.refusedSinceLog++;
    if (this.lastRefusalLoggedUs !== null && now - this.lastRefusalLoggedUs < LEASE_REFUSAL_LOG_INTERVAL_MS * 1000) return;
    this.log('LOG', `${error.message}${this.refusedSinceLog > 1 ? ` (${this.refusedSinceLog} commits refused since the last report)` : ''}`);
    if (error.detail !== undefined) this.log('DETAIL', error.detail);
    this.lastRefusalLoggedUs = now;
    this.refusedSinceLog = 0;
  }
}
