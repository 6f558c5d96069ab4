/**
 * An interrupted change of primary, settled (pure). A failover or a switchover records its
 * intent in the state (`transition`, state.ts invariant 4) and fences the old primary's
 * directory before it asks for the promotion, and clears it in the state that names the new
 * primary. If the process doing it dies in between, the state still names the old primary while
 * the target may already be one: whoever comes next (the monitor, on start and at each check;
 * `cluster up`; `cluster failover` or `switchover`) settles it first, under the lock, from what
 * the target says:
 *
 *   1. The target answers as a primary on a timeline past the old primary's (or, stopped, its
 *      control file says so): the promotion happened. The transition is completed: the target
 *      is the primary, the old primary fenced.
 *   2. The target is a standby still on the old primary's timeline, and cannot promote any more:
 *      it is stopped (a stopped standby never promotes by itself), or it answers as a standby.
 *      The transition is dropped; the old primary stays fenced (its directory has the fence, and
 *      it is stopped if it runs), so it is never unfenced on a guess: the monitor sees it gone and
 *      fails over as usual, deciding again.
 *   3. Otherwise (it runs and does not answer): nothing can be known yet; the transition stays,
 *      and nobody gets a lease meanwhile.
 *
 * The lease rule that goes with it (leaseWithheldReason): the monitor grants no lease while a
 * transition is pending, nor to a primary whose timeline is below the highest timeline any member
 * reports (a member promoted past it, however that happened).
 */
import type { ClusterState, PrimaryTransition } from './state.js';
import { withNewPrimary } from './state.js';

/** What is known of the transition's target now. */
export interface TransitionTargetView {
  /** Its server process runs. */
  readonly running: boolean;
  /** Its answer to a status request; null when it did not answer (or does not run). */
  readonly status: { readonly role: string; readonly timeline: number } | null;
  /** Its control file's timeline; null without a data directory. */
  readonly controlTimeline: number | null;
}

export type TransitionVerdict =
  | { readonly kind: 'complete'; readonly timeline: number; readonly why: string }
  | { readonly kind: 'abandon'; readonly why: string }
  | { readonly kind: 'wait'; readonly why: string };

export function judgeTransition(transition: PrimaryTransition, target: TransitionTargetView): TransitionVerdict {
  const { to, fromTimeline } = transition;
  if (target.running) {
    if (target.status === null) return { kind: 'wait', why: `${to} runs but does not answer: whether it was promoted cannot be told yet` };
    if (target.status.role === 'primary' && target.status.timeline > fromTimeline) {
      return { kind: 'complete', timeline: target.status.timeline, why: `${to} answers as the primary of timeline ${target.status.timeline}` };
    }
    if (target.status.role === 'standby' && target.status.timeline <= fromTimeline) {
      return { kind: 'abandon', why: `${to} still answers as a standby on timeline ${target.status.timeline}: it was not promoted` };
    }
    return { kind: 'wait', why: `${to} answers as a ${target.status.role} on timeline ${target.status.timeline}` };
  }
  if (target.controlTimeline !== null && target.controlTimeline > fromTimeline) {
    return { kind: 'complete', timeline: target.controlTimeline, why: `${to} is stopped, and its control file is on timeline ${target.controlTimeline}: it was promoted` };
  }
  return {
    kind: 'abandon',
    why: target.controlTimeline === null ? `${to} has no data directory: it was not promoted` : `${to} is stopped on timeline ${target.controlTimeline}: it was not promoted, and cannot be while stopped`,
  };
}

/** The state once the promotion is known to have happened: the target the primary, the old one fenced. */
export function completeTransition(state: ClusterState, timeline: number): ClusterState {
  const transition = state.transition;
  if (transition === null || transition === undefined) throw new Error('completeTransition: no transition is pending');
  return withNewPrimary(state, transition.to, timeline, { fence: transition.fence });
}

/** The state once the promotion is known not to have happened: the transition dropped, nothing else changed. */
export function abandonTransition(state: ClusterState): ClusterState {
  return { ...state, transition: null };
}

/** Why the primary must get no lease now, or null when it may have one. */
export function leaseWithheldReason(input: {
  readonly transition: PrimaryTransition | null | undefined;
  readonly primary: string;
  readonly primaryTimeline: number;
  /** The highest timeline another member reports, and who; null when none answered. */
  readonly highest: { readonly member: string; readonly timeline: number } | null;
}): string | null {
  const transition = input.transition;
  if (transition !== null && transition !== undefined) {
    return `a ${transition.kind} from ${transition.from} to ${transition.to} (started ${transition.startedAt}) is not settled`;
  }
  if (input.highest !== null && input.highest.timeline > input.primaryTimeline) {
    return `${input.highest.member} reports timeline ${input.highest.timeline}, past ${input.primary}'s timeline ${input.primaryTimeline}`;
  }
  return null;
}

/** One line for people about a pending transition (cluster up, cluster status). */
export function describeTransition(transition: PrimaryTransition): string {
  return `a ${transition.kind} from ${transition.from} to ${transition.to} (timeline ${transition.fromTimeline}), started ${transition.startedAt}, was interrupted and is not settled yet`;
}
