import { describe, expect, it } from 'vitest';
import { RESTART_DELAY_INITIAL_MS, RESTART_DELAY_MAX_MS, RESTART_RESET_AFTER_MS, initialRestartCore, restartEnded, restartStep, type MemberSeen, type RestartCore, type RestartPolicy } from './restart-core.js';

const POLICY: RestartPolicy = { primaryFailoverRefused: false };
const seen = (name: string, role: MemberSeen['role'], running: boolean, stoppedByCommand = false): MemberSeen => ({ name, role, running, stoppedByCommand });

/** Looks at the members at each time; every restart ends at once (its outcome is the next look's business). */
function run(looks: Array<[number, MemberSeen[]]>, policy = POLICY, start: RestartCore = initialRestartCore()): Array<string | null> {
  let core = start;
  return looks.map(([atMs, members]) => {
    const step = restartStep(core, members, policy, atMs);
    core = step.restart === null ? step.core : restartEnded(step.core, step.restart.member);
    return step.restart === null ? null : `${step.restart.action} ${step.restart.member} #${step.restart.attempt}`;
  });
}

describe("the monitor's restarts", () => {
  it('starts a dead standby again after the initial delay, and backs off while it keeps dying', () => {
    const dead = [seen('n1', 'primary', true), seen('s1', 'standby', false)];
    const times = [0, 500, 1000, 1500, 2000, 2999, 3000, 6999, 7000];
    expect(run(times.map((t) => [t, dead]))).toEqual([null, null, 'start s1 #1', null, null, null, 'start s1 #2', null, 'start s1 #3']);
  });

  it('never waits longer than the maximum, and starts over once the member has run for a while', () => {
    let core = initialRestartCore();
    let at = 0;
    let delays: number[] = [];
    let last = 0;
    for (let i = 0; i < 10; i++) {
      for (;;) {
        const step = restartStep(core, [seen('s1', 'standby', false)], POLICY, at);
        core = step.restart === null ? step.core : restartEnded(step.core, 's1');
        if (step.restart !== null) break;
        at += 100;
      }
      delays.push(at - last);
      last = at;
    }
    expect(delays.slice(1)).toEqual([2000, 4000, 8000, 16000, RESTART_DELAY_MAX_MS, RESTART_DELAY_MAX_MS, RESTART_DELAY_MAX_MS, RESTART_DELAY_MAX_MS, RESTART_DELAY_MAX_MS]);
    // Healthy for long enough: the next death is handled after the initial delay again.
    core = restartStep(core, [seen('s1', 'standby', true)], POLICY, at).core;
    core = restartStep(core, [seen('s1', 'standby', true)], POLICY, at + RESTART_RESET_AFTER_MS).core;
    delays = [];
    const deathAt = at + RESTART_RESET_AFTER_MS + 100;
    expect(restartStep(core, [seen('s1', 'standby', false)], POLICY, deathAt).restart).toBeNull();
    expect(restartStep(restartStep(core, [seen('s1', 'standby', false)], POLICY, deathAt).core, [seen('s1', 'standby', false)], POLICY, deathAt + RESTART_DELAY_INITIAL_MS).restart).toMatchObject({ member: 's1', attempt: 1 });
  });

  it('leaves a fenced old primary, a stopped member and one not created alone; restarts the primary only after a refused failover', () => {
    const members = [seen('n1', 'fenced', false), seen('s1', 'primary', false), seen('s2', 'standby', false, true), seen('c1', 'uninitialized', false)];
    expect(run([[0, members], [1000, members], [2000, members]])).toEqual([null, null, null]);
    expect(run([[0, members], [1000, members]], { primaryFailoverRefused: true })).toEqual([null, 'start s1 #1']);
  });

  it('brings back one member at a time', () => {
    const members = [seen('n1', 'primary', true), seen('s1', 'standby', false), seen('s2', 'standby', false)];
    const first = restartStep(initialRestartCore(), members, POLICY, 0);
    const second = restartStep(first.core, members, POLICY, 1000);
    expect(second.restart).toMatchObject({ member: 's1' });
    expect(restartStep(second.core, members, POLICY, 1100).restart).toBeNull();
    expect(restartStep(restartEnded(second.core, 's1'), members, POLICY, 1100).restart).toMatchObject({ member: 's2' });
  });
});
