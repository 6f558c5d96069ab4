/**
 * Node actions for rehearsing by hand: `cluster stop|start|kill|reinit -f FILE NODE` and
 * `cluster rejoin -f FILE NODE`. Each acts on one member in the role the cluster state gives it:
 * start points a standby at its current upstream first, and refuses a fenced old primary unless
 * auto_rejoin lets it rejoin; kill is a SIGKILL, a crash as the drills make one, and changes no
 * role (a killed primary is still the primary until a failover).
 */
import { findMember } from './config.js';
import { DEFAULT_OPERATION_TIMEOUT_MS, onMember, type ClusterContext } from './context.js';
import { acquireClusterLock } from './lock.js';
import { killServer, runningServer } from './member-files.js';
import { reinitMember, rejoinMember, startMember, waitStreaming } from './member-ops.js';
import type { StopMode } from './node-control.js';
import { ClusterError, ClusterErrorCode } from './cluster-error.js';
import { readClusterStateFor, withMember, writeClusterState, type ClusterState } from './state.js';
import { recordNamesInForce } from './synchronous-change.js';

export type MemberAction = 'stop' | 'start' | 'kill' | 'reinit' | 'rejoin';

export interface MemberActionResult {
  readonly member: string;
  readonly action: MemberAction;
  /** False when there was nothing to do (already stopped, already running). */
  readonly changed: boolean;
  readonly pid: number | null;
  readonly state: ClusterState;
}

function requireState(ctx: ClusterContext): ClusterState {
  const state = readClusterStateFor(ctx.config);
  if (state === null) {
    throw new ClusterError(ClusterErrorCode.invalidState, `cluster ${ctx.config.name} has not been created in "${ctx.config.dataRoot}"`, {
      hint: 'Create it with walship cluster up -f FILE (with the same --base-port and --data-root, if you gave them).',
    });
  }
  return state;
}

export async function memberAction(
  ctx: ClusterContext,
  action: MemberAction,
  name: string,
  options: {
    mode?: StopMode;
    timeoutMs?: number;
    /**
     * `start` of a member that is not fenced: wait until it streams and record the primary's
     * report, under the lock (the default). The monitor's own restarts pass false: the lock is
     * let go once the member runs, so that a failover the monitor may need meanwhile does not
     * wait out a standby's catching up (the monitor's checks see it stream, or die again).
     */
    settle?: boolean;
  } = {},
): Promise<MemberActionResult> {
  const member = findMember(ctx.config, name);
  const timeoutMs = options.timeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS;
  const lock = await acquireClusterLock(ctx.config.dataRoot, `walship cluster ${action} ${name}`);
  try {
    let state = requireState(ctx);
    if (action !== 'stop' && action !== 'kill' && state.members[name]?.stoppedByCommand === true) {
      state = writeClusterState(ctx.config.dataRoot, withMember(state, name, { stoppedByCommand: false }));
    }
    const done = (changed: boolean, pid: number | null = runningServer(member.dataDir)?.pid ?? null): MemberActionResult => ({ member: name, action, changed, pid, state });
    switch (action) {
      case 'stop': {
        if (runningServer(member.dataDir) === null) return done(false);
        ctx.progress(`${name}: stopping (${options.mode ?? 'fast'})`);
        // The monitor restarts members that die, not one a person stopped.
        state = writeClusterState(ctx.config.dataRoot, withMember(state, name, { stoppedByCommand: true }));
        await onMember(member, 'walship stop', () => ctx.control.stop({ dataDir: member.dataDir, mode: options.mode ?? 'fast' }));
        return { ...done(true), state };
      }
      case 'kill': {
        const pid = await killServer(member.dataDir);
        if (pid !== null) ctx.progress(`${name}: killed process ${pid} (SIGKILL)`);
        return done(pid !== null, pid);
      }
      case 'start': {
        const fencedRejoins = state.members[name]?.role === 'fenced' && ctx.config.failover.autoRejoin;
        // A fenced old primary may still run (the monitor's failover leaves one whose lease ran out): it rejoins all the same.
        if (runningServer(member.dataDir) !== null && !fencedRejoins) return done(false);
        if (fencedRejoins) {
          state = await rejoinMember(ctx, state, member, timeoutMs);
        } else {
          await startMember(ctx, state, member, timeoutMs);
          if (options.settle === false) return { ...done(true), state };
          state = await waitStreaming(ctx, state, [member], timeoutMs, { rewindDiverged: true });
        }
        state = await recordNamesInForce(ctx, state);
        return { ...done(true), state };
      }
      case 'rejoin': {
        state = await rejoinMember(ctx, state, member, timeoutMs);
        state = await recordNamesInForce(ctx, state);
        return { ...done(true), state };
      }
      case 'reinit': {
        state = await reinitMember(ctx, state, member);
        state = await waitStreaming(ctx, state, [member], timeoutMs);
        state = await recordNamesInForce(ctx, state);
        return { ...done(true), state };
      }
    }
  } finally {
    lock.release();
  }
}
