/**
 * `cluster status`: one row per member (members.ts), read without the lock. When no other
 * command holds the lock, the primary's report is kept in the state as the last observation, so
 * that a failover after the primary dies knows its last position and its synchronous standbys.
 */
import type { ClusterContext } from './context.js';
import { withClusterLockIfFree } from './lock.js';
import { memberRows, probeMembers, type MemberRow } from './members.js';
import { initialClusterState, readClusterStateFor, type ClusterState } from './state.js';
import { recordNamesInForce } from './synchronous-change.js';

export interface StatusResult {
  readonly state: ClusterState;
  /** False before the first `cluster up`. */
  readonly created: boolean;
  readonly rows: MemberRow[];
}

export async function clusterStatus(ctx: ClusterContext): Promise<StatusResult> {
  const existing = readClusterStateFor(ctx.config);
  let state = existing ?? initialClusterState(ctx.config);
  const probes = await probeMembers(ctx.control, ctx.config);
  if (existing !== null) {
    state = (await withClusterLockIfFree(ctx.config.dataRoot, 'walship cluster status', false, false, () => recordNamesInForce(ctx, readClusterStateFor(ctx.config) ?? state, probes))) ?? state;
  }
  return { state, created: existing !== null, rows: memberRows(ctx.config, state, probes) };
}
