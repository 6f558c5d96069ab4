/**
 * Settles an interrupted change of primary (transition.ts decides, this does): looks at the
 * target, and completes the transition in the state (the others repointed at the new primary),
 * drops it (the old primary left fenced and stopped), or leaves it pending. The caller holds the
 * cluster's lock. Each outcome but `pending` goes to the history (event `transition`).
 */
import { ClusterError, ClusterErrorCode } from './cluster-error.js';
import type { ClusterContext } from './context.js';
import { DEFAULT_OPERATION_TIMEOUT_MS } from './context.js';
import { findMember } from './config.js';
import { appendHistory } from './history.js';
import { killServer, readControlSummary, runningServer, writeFence } from './member-files.js';
import { probeMember } from './members.js';
import { repointOthers } from './promotion.js';
import { writeClusterState, type ClusterState } from './state.js';
import { abandonTransition, completeTransition, describeTransition, judgeTransition } from './transition.js';

export interface SettleResult {
  readonly state: ClusterState;
  readonly outcome: 'none' | 'completed' | 'abandoned' | 'pending';
  /** Why, for the logs; empty when there was nothing to settle. */
  readonly why: string;
  readonly warnings: readonly string[];
}

export async function settleTransition(ctx: ClusterContext, state: ClusterState, initiator: 'command' | 'monitor' = 'command'): Promise<SettleResult> {
  const transition = state.transition;
  if (transition === null || transition === undefined) return { state, outcome: 'none', why: '', warnings: [] };
  const { config } = ctx;
  const started = Date.now();
  const target = findMember(config, transition.to);
  const from = findMember(config, transition.from);
  const probe = await probeMember(ctx.control, config, target);
  const control = probe.pid === null ? readControlSummary(target.dataDir) : null;
  const verdict = judgeTransition(transition, {
    running: probe.pid !== null,
    status: probe.status === null ? null : { role: probe.status.role, timeline: probe.status.timeline },
    controlTimeline: control?.timeline ?? null,
  });
  if (verdict.kind === 'wait') {
    ctx.progress(`the interrupted ${transition.kind} from ${from.name} to ${target.name} is not settled: ${verdict.why}`);
    return { state, outcome: 'pending', why: verdict.why, warnings: [] };
  }
  // Either way the old primary stays fenced, and stops if it still runs: it is never unfenced
  // on a guess (a completed transition rejoins it; a dropped one leaves it to a new failover).
  writeFence(from.dataDir);
  const killed = await killServer(from.dataDir);
  if (killed !== null) ctx.progress(`${from.name}: killed its process ${killed} (SIGKILL): it stays fenced`);
  const warnings: string[] = [];
  let next: ClusterState;
  if (verdict.kind === 'complete') {
    next = writeClusterState(config.dataRoot, completeTransition(state, verdict.timeline));
    ctx.progress(`the interrupted ${transition.kind} is completed: ${verdict.why}; ${from.name} is fenced`);
    const repointed = await repointOthers(ctx, state, next, [from.name], null, new Map(), DEFAULT_OPERATION_TIMEOUT_MS);
    next = repointed.state;
    warnings.push(...repointed.warnings);
  } else {
    next = writeClusterState(config.dataRoot, abandonTransition(state));
    ctx.progress(`the interrupted ${transition.kind} is dropped: ${verdict.why}; ${from.name} stays fenced${runningServer(from.dataDir) === null ? ' and stopped' : ''}`);
  }
  appendHistory(config.dataRoot, {
    at: new Date().toISOString(), event: 'transition', member: verdict.kind === 'complete' ? target.name : from.name, from: verdict.kind === 'complete' ? from.name : null,
    timeline: next.timeline, lsn: null, durationMs: Date.now() - started,
    summary: `interrupted ${transition.kind} from ${from.name} to ${target.name} (started ${transition.startedAt}) ${verdict.kind === 'complete' ? 'completed' : 'dropped'}: ${verdict.why}; ${from.name} fenced`,
    decision: null, initiator,
  });
  return { state: next, outcome: verdict.kind === 'complete' ? 'completed' : 'abandoned', why: verdict.why, warnings };
}

/**
 * Settles a change of primary a crashed command left half done, before another starts: a
 * completed one or one still pending ends this command (nothing more is done); a dropped one
 * leaves the old primary fenced and stopped, and this command goes on from there.
 */
export async function settleInterrupted(ctx: ClusterContext, state: ClusterState, initiator: 'command' | 'monitor'): Promise<ClusterState> {
  const transition = state.transition;
  if (transition === null || transition === undefined) return state;
  const settled = await settleTransition(ctx, state, initiator);
  if (settled.outcome === 'pending') {
    throw new ClusterError(ClusterErrorCode.wrongMemberState, describeTransition(transition), {
      detail: settled.why,
      hint: `Find out why ${transition.to} does not answer (walship cluster logs -f FILE ${transition.to}); the next command or the monitor settles it once it does.`,
    });
  }
  if (settled.outcome === 'completed') {
    throw new ClusterError(ClusterErrorCode.wrongMemberState, `an interrupted ${transition.kind} was completed: ${transition.to} is the primary now`, {
      detail: `${settled.why}; ${transition.from} is fenced.${settled.warnings.length > 0 ? ` ${settled.warnings.join(' ')}` : ''}`,
      hint: 'Nothing more was done. Look at the cluster (walship cluster status -f FILE) before changing the primary again.',
    });
  }
  return settled.state;
}
