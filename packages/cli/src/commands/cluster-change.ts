/**
 * `walship cluster switchover -f FILE [--to NAME]` and `walship cluster failover -f FILE [--to
 * NAME] [--force]`: a new primary (@walship/cluster's clusterSwitchover and clusterFailover),
 * then the members table. With --json: `from`, `to`, `timeline`, `lsn`, `unavailableMs`,
 * `durationMs`, `oldPrimary` (`standby` or `fenced`), `warnings`, the `decision` as made
 * (candidates, reasons, thresholds) and `members[]`. Warnings (a standby that could not be
 * repointed) are printed on stderr; the change of primary itself succeeded when the exit status
 * is 0.
 */
import type { PrimaryChangeResult } from '@walship/cluster';
import { ExitCode, formatErrorText } from '../cli-error.js';
import { currentRows, openCluster, printMembers, type ClusterFileOptions } from '../cluster-support.js';
import type { CliIo } from '../io.js';

export interface ClusterChangeOptions extends ClusterFileOptions {
  kind: 'switchover' | 'failover';
  to?: string;
  force?: boolean;
}

export async function run(options: ClusterChangeOptions, io: CliIo): Promise<number> {
  const ctx = await openCluster(options, io);
  const cluster = await import('@walship/cluster');
  const common = { ...(options.to === undefined ? {} : { to: options.to }), ...(options.timeout === undefined ? {} : { timeoutMs: options.timeout }) };
  const result: PrimaryChangeResult =
    options.kind === 'switchover' ? await cluster.clusterSwitchover(ctx, common) : await cluster.clusterFailover(ctx, { ...common, force: options.force === true });
  for (const warning of result.warnings) io.stderr.write(formatErrorText(warning, undefined, undefined, 'warning'));
  const rows = await currentRows(ctx, result.state);
  const line =
    options.kind === 'switchover'
      ? `switchover from ${result.from} to ${result.to}: timeline ${result.timeline}, writes unavailable for ${result.unavailableMs} ms; ${result.from} ${result.oldPrimary === 'standby' ? 'is a standby now' : 'is fenced (walship cluster rejoin)'}\n`
      : `failover from ${result.from} to ${result.to}: timeline ${result.timeline}, promoted in ${result.unavailableMs} ms; ${result.from} is fenced until it rejoins (walship cluster rejoin -f ${options.file} ${result.from})\n` +
        `why ${result.to}: ${result.decision.reasons.map((reason) => reason.message).join('; ')}\n`;
  const extra = {
    from: result.from, to: result.to, lsn: result.lsn, unavailableMs: result.unavailableMs, durationMs: result.durationMs,
    oldPrimary: result.oldPrimary, warnings: result.warnings, decision: result.decision,
  };
  await printMembers(io, ctx.config, result.state, rows, options.json === true ? extra : null, line);
  return ExitCode.ok;
}
