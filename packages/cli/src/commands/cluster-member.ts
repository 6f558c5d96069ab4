/**
 * Node actions for rehearsing by hand: `walship cluster stop|start|kill|reinit|rejoin -f FILE
 * NODE` (@walship/cluster's memberAction). They act on the member in the role the cluster state
 * gives it: start repoints a standby at its current upstream first and refuses a fenced old
 * primary (unless auto_rejoin rejoins it); kill is a SIGKILL and changes no role; reinit copies a
 * standby again from its upstream; rejoin rewinds an old primary and starts it as a standby.
 */
import type { MemberAction } from '@walship/cluster';
import { ExitCode } from '../cli-error.js';
import { currentRows, openCluster, printMembers, type ClusterFileOptions } from '../cluster-support.js';
import type { CliIo } from '../io.js';
import { printJson } from '../output.js';

export interface ClusterMemberOptions extends ClusterFileOptions {
  action: MemberAction;
  member: string;
  mode?: 'smart' | 'fast' | 'immediate';
}

const DONE: Record<MemberAction, [string, string]> = {
  stop: ['stopped', 'was not running'],
  start: ['started', 'is running already'],
  kill: ['killed (SIGKILL)', 'was not running'],
  reinit: ['copied again from its upstream and started', ''],
  rejoin: ['rejoined as a standby', ''],
};

export async function run(options: ClusterMemberOptions, io: CliIo): Promise<number> {
  const ctx = await openCluster(options, io);
  const { memberAction } = await import('@walship/cluster');
  const result = await memberAction(ctx, options.action, options.member, {
    ...(options.mode === undefined ? {} : { mode: options.mode }),
    ...(options.timeout === undefined ? {} : { timeoutMs: options.timeout }),
  });
  const line = `${result.member} ${result.changed ? DONE[options.action][0] : DONE[options.action][1]}${result.action === 'kill' && result.pid !== null ? ` (process ${result.pid})` : ''}\n`;
  if (options.action === 'rejoin' || options.action === 'reinit') {
    const rows = await currentRows(ctx, result.state);
    await printMembers(io, ctx.config, result.state, rows, options.json === true ? { member: result.member, action: result.action, changed: result.changed } : null, line);
    return ExitCode.ok;
  }
  if (options.json === true) printJson(io.stdout, { member: result.member, action: result.action, changed: result.changed, pid: result.pid });
  else io.stdout.write(line);
  return ExitCode.ok;
}
