/**
 * `cluster down`: every running member stopped, the primary first. A primary's fast or smart
 * shutdown waits until its connected standbys have received its shutdown checkpoint (DESIGN.md
 * section 7), so stopping it first leaves the standbys with all of its WAL, and the next `up`
 * finds them caught up. Roles do not change; members already stopped are skipped.
 */
import { onMember, type ClusterContext } from './context.js';
import { acquireClusterLock } from './lock.js';
import { runningServer } from './member-files.js';
import type { StopMode } from './node-control.js';
import { initialClusterState, readClusterStateFor, startOrder } from './state.js';

export interface DownResult {
  readonly stopped: string[];
  readonly alreadyStopped: string[];
}

export async function clusterDown(ctx: ClusterContext, options: { mode?: StopMode; timeoutMs?: number } = {}): Promise<DownResult> {
  const { config } = ctx;
  const lock = await acquireClusterLock(config.dataRoot, 'walship cluster down');
  try {
    const state = readClusterStateFor(config) ?? initialClusterState(config);
    const result: DownResult = { stopped: [], alreadyStopped: [] };
    for (const member of startOrder(config, state)) {
      if (runningServer(member.dataDir) === null) {
        result.alreadyStopped.push(member.name);
        continue;
      }
      ctx.progress(`${member.name}: stopping (${options.mode ?? 'fast'})`);
      await onMember(member, 'walship stop', () => ctx.control.stop({ dataDir: member.dataDir, mode: options.mode ?? 'fast', ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }) }));
      result.stopped.push(member.name);
    }
    return result;
  } finally {
    lock.release();
  }
}
