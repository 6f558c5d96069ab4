/**
 * `walship drill SCENARIO -f FILE [--duration S] [--rate R] [--clients N] [--json]`: a failover
 * drill on the cluster of FILE (@walship/cluster's runDrill): the cluster is brought up (and its
 * monitor, when the policy is automatic), a write load runs, the fault is injected, the cluster
 * settles, and every acknowledged write is checked on every member. Prints the report (DESIGN.md
 * section 10's drill keys with --json) and exits 1 when a guarantee was broken.
 */
import type { DrillReport, DrillScenario } from '@walship/cluster';
import { ExitCode } from '../cli-error.js';
import { ensureMonitor } from '../cluster-monitor-process.js';
import { ensureProxy } from '../cluster-proxy-process.js';
import { openCluster, type ClusterFileOptions } from '../cluster-support.js';
import type { CliIo } from '../io.js';
import { printJson } from '../output.js';

export interface DrillCommandOptions extends ClusterFileOptions {
  scenario: DrillScenario;
  duration?: number;
  rate?: number;
  clients?: number;
}

const ms = (value: number | null) => (value === null ? '-' : `${value} ms`);

function formatReport(report: DrillReport): string {
  const lines = [
    `drill ${report.scenario}: ${report.verdict.toUpperCase()}`,
    `  fault on ${report.faultedMember}; primary ${report.primaryBefore} -> ${report.primaryAfter}; timelines ${report.timelines.join(', ') || '-'}; failover ${report.failoverMode}`,
    `  writes: ${report.ackedWrites} acknowledged, ${report.ackedWritesLost} of them lost, ${report.indeterminateWrites} indeterminate, ${report.failedWrites} refused`,
    `  split brain: ${report.splitBrainMs} ms${report.conflictingAcks > 0 ? ` (${report.conflictingAcks} acknowledgements in the window)` : ''}; detection ${ms(report.detectionMs)}, promotion ${ms(report.promotionMs)}, writes unavailable ${report.unavailableMs} ms`,
    `  synchronous replication in force: ${report.synchronousEnforced ? 'yes' : 'no'}; old primary rejoined: ${report.oldPrimaryRejoined === null ? '-' : report.oldPrimaryRejoined ? 'yes' : 'no'}`,
    ...report.reasons.map((reason) => `  ${report.verdict === 'fail' ? 'why' : 'note'}: ${reason}`),
    ...report.lost.slice(0, 5).map((lost) => `  lost: ${lost.key} on ${lost.member}${lost.found === null ? '' : ` (found ${lost.found})`}`),
    `  artifacts: ${report.artifacts}`,
  ];
  return `${lines.join('\n')}\n`;
}

export async function run(options: DrillCommandOptions, io: CliIo): Promise<number> {
  const ctx = await openCluster(options, io);
  const cluster = await import('@walship/cluster');
  // Up first, so that the monitor runs before the fault: the drill's own up then finds it all running.
  if (ctx.config.proxy !== null) await ensureProxy(ctx.config, options.basePort);
  await cluster.clusterUp(ctx, options.timeout === undefined ? {} : { timeoutMs: options.timeout });
  if (ctx.config.failover.mode === 'automatic') await ensureMonitor(ctx.config, options.basePort);
  // The drill's lag, recorded as walship lag -f --record would: lag.jsonl, lag.html and `lag` in its report.
  const { formatDrillLag, recordDrillLag } = await import('../lag/drill-recording.js');
  const report = await recordDrillLag(ctx.config, io, () => cluster.runDrill(ctx, {
    scenario: options.scenario,
    ...(options.duration === undefined ? {} : { durationMs: options.duration }),
    ...(options.rate === undefined ? {} : { rate: options.rate }),
    ...(options.clients === undefined ? {} : { clients: options.clients }),
    ...(options.timeout === undefined ? {} : { settleTimeoutMs: options.timeout }),
  }));
  if (options.json === true) printJson(io.stdout, report);
  else io.stdout.write(formatReport(report) + formatDrillLag(report.lag));
  return report.verdict === 'pass' ? ExitCode.ok : ExitCode.failed;
}
