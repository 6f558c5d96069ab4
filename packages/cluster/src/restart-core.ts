/**
 * The monitor's restarts of dead members, its pure core: which member to bring back now, with
 * backoff. Events in (what each check saw of the members' processes, the end of an attempt),
 * a new core and at most one restart out; time is the caller's monotonic clock in ms.
 *
 * The rules:
 *   1. A standby whose server process is gone is started again in its role (`cluster start`:
 *      pointed at its current upstream first). The primary the state names is started again
 *      only after a failover away from it found nobody to promote (the monitor's failover comes
 *      first). A fenced old primary is not: it rejoins through `cluster up`, `cluster start` or
 *      `cluster rejoin` (a rewind is a long operation that must not die with the monitor half
 *      way, leaving a data directory that only a new base backup can mend). Members a person
 *      stopped (`cluster stop`), or not created yet, are left alone.
 *   2. A member is first brought back RESTART_DELAY_INITIAL_MS after it was first seen dead
 *      (a crash-restart of its own, or a person's `cluster start`, may be under way), then, if
 *      it dies again, after twice as long each time, up to RESTART_DELAY_MAX_MS: a member that
 *      cannot start is not hammered.
 *   3. One seen running for RESTART_RESET_AFTER_MS starts from the initial delay again.
 *   4. One restart at a time: the caller reports its end before the next is chosen.
 */

/** A first restart soon after the death, but not in the middle of the member's own recovery. */
export const RESTART_DELAY_INITIAL_MS = 1_000;
/** The longest wait between two attempts on a member that keeps dying: it is still tried twice a minute. */
export const RESTART_DELAY_MAX_MS = 30_000;
/** Running this long, a member counts as healthy again, and its backoff starts over. */
export const RESTART_RESET_AFTER_MS = 30_000;

export type RestartAction = 'start';

export interface MemberSeen {
  readonly name: string;
  readonly role: 'primary' | 'standby' | 'fenced' | 'uninitialized';
  readonly running: boolean;
  /** Stopped on purpose by a person (`cluster stop`): not restarted. */
  readonly stoppedByCommand: boolean;
}

interface MemberRestart {
  /** Attempts since it was last healthy. */
  readonly attempts: number;
  /** First seen dead (this time); null while running. */
  readonly deadSinceMs: number | null;
  /** Running since; null while dead. */
  readonly runningSinceMs: number | null;
  /** No attempt before this. */
  readonly notBeforeMs: number;
}

export interface RestartCore {
  readonly members: Readonly<Record<string, MemberRestart>>;
  /** A restart under way: nothing else is started meanwhile. */
  readonly busy: string | null;
}

export interface RestartPolicy {
  /** The last failover away from the primary found nobody to promote. */
  readonly primaryFailoverRefused: boolean;
}

export function initialRestartCore(): RestartCore {
  return { members: {}, busy: null };
}

function delayFor(attempts: number): number {
  return Math.min(RESTART_DELAY_MAX_MS, RESTART_DELAY_INITIAL_MS * 2 ** attempts);
}

function actionFor(member: MemberSeen, policy: RestartPolicy): RestartAction | null {
  if (member.running || member.stoppedByCommand) return null;
  switch (member.role) {
    case 'standby':
      return 'start';
    case 'fenced':
      return null;
    case 'primary':
      return policy.primaryFailoverRefused ? 'start' : null;
    case 'uninitialized':
      return null;
  }
}

/** One look at the members: the new core, and the member to bring back now (if any). */
export function restartStep(core: RestartCore, seen: readonly MemberSeen[], policy: RestartPolicy, nowMs: number): { core: RestartCore; restart: { member: string; action: RestartAction; attempt: number } | null } {
  const members: Record<string, MemberRestart> = {};
  for (const member of seen) {
    const previous = core.members[member.name] ?? { attempts: 0, deadSinceMs: null, runningSinceMs: null, notBeforeMs: 0 };
    if (member.running) {
      const runningSinceMs = previous.runningSinceMs ?? nowMs;
      members[member.name] = {
        attempts: nowMs - runningSinceMs >= RESTART_RESET_AFTER_MS ? 0 : previous.attempts,
        deadSinceMs: null,
        runningSinceMs,
        notBeforeMs: previous.notBeforeMs,
      };
    } else {
      const deadSinceMs = previous.deadSinceMs ?? nowMs;
      const notBeforeMs = previous.deadSinceMs === null ? Math.max(previous.notBeforeMs, nowMs + delayFor(previous.attempts)) : previous.notBeforeMs;
      members[member.name] = { attempts: previous.attempts, deadSinceMs, runningSinceMs: null, notBeforeMs };
    }
  }
  let restart: { member: string; action: RestartAction; attempt: number } | null = null;
  if (core.busy === null) {
    for (const member of seen) {
      const action = actionFor(member, policy);
      const state = members[member.name]!;
      if (action === null || nowMs < state.notBeforeMs) continue;
      restart = { member: member.name, action, attempt: state.attempts + 1 };
      members[member.name] = { ...state, attempts: state.attempts + 1, notBeforeMs: nowMs + delayFor(state.attempts + 1) };
      break;
    }
  }
  return { core: { members, busy: restart?.member ?? core.busy }, restart };
}

/** The restart of `member` ended (whatever its outcome: the next look says whether it runs). */
export function restartEnded(core: RestartCore, member: string): RestartCore {
  return core.busy === member ? { ...core, busy: null } : core;
}
