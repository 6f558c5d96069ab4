/**
 * What a failover checks once it holds the cluster's lock, before it touches anything (pure).
 *
 * The monitor decides that a primary is gone, then runs the failover, which may wait up to
 * LOCK_WAIT_MS for the lock: meanwhile a person's `cluster failover` or `switchover` may have
 * changed who the primary is (and granted the new one its lease). A failover that then acted on
 * whoever the state names now would fence a healthy primary it never judged, leave it running on
 * the assumption that its lease ran out, and promote a third member: two primaries. So:
 *
 *   1. A failover started on an expectation (the primary the monitor judged gone and the state
 *      generation it judged it in) goes ahead only if the state still names that primary at that
 *      generation; otherwise it is abandoned before any step, and the caller looks again.
 *   2. An old primary whose process still runs is left running (its lease will have run out) only
 *      when it is the very primary whose lease the caller timed; any other running one is killed.
 */
import type { ClusterState } from './state.js';

/** The monitor's view when it decided: the primary it judged gone, in the state of this generation. */
export interface FailoverExpectation {
  readonly primary: string;
  readonly generation: number;
}

/** Why the failover no longer applies to the state as it is now, or null when it still does (rule 1). */
export function staleFailoverReason(state: ClusterState, expected: FailoverExpectation | null): string | null {
  if (expected === null) return null;
  if (state.primary !== expected.primary) {
    return `the state names ${state.primary} as the primary now, not ${expected.primary}, which was judged gone`;
  }
  if (state.generation !== expected.generation) {
    return `the state changed (generation ${expected.generation} when ${expected.primary} was judged gone, ${state.generation} now)`;
  }
  return null;
}

/**
 * What to do with the old primary's process (rule 2): `dead` when none runs, `lease` to leave it
 * running because the caller timed its lease to the end, `kill` otherwise.
 */
export function oldPrimaryTreatment(input: {
  readonly oldPrimary: string;
  readonly running: boolean;
  readonly enforceLease: boolean;
  /** The primary whose lease the caller (the monitor) counted down before failing over; null for a person's command. */
  readonly leaseTimedFor: string | null;
}): 'dead' | 'lease' | 'kill' {
  if (!input.running) return 'dead';
  return input.enforceLease && input.leaseTimedFor === input.oldPrimary ? 'lease' : 'kill';
}
