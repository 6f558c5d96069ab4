/**
 * `walship cluster status -f FILE [--json]`: one row per member in the spirit of `patronictl
 * list` — name, address, role, state, timeline, LSN, lag in bytes and time, sync state — and with
 * --json `members[]` with DESIGN.md section 10's keys. Members that do not answer are shown as
 * stopped, fenced or not answering; the command fails only when the config cannot be read.
 */
import { ExitCode } from '../cli-error.js';
import { openCluster, printMembers, type ClusterFileOptions } from '../cluster-support.js';
import type { CliIo } from '../io.js';

export async function run(options: ClusterFileOptions, io: CliIo): Promise<number> {
  const ctx = await openCluster(options, io);
  const { clusterStatus, runningMonitor } = await import('@walship/cluster');
  const { state, created, rows } = await clusterStatus(ctx);
  const running = runningMonitor(ctx.config.dataRoot);
  const monitor = { mode: ctx.config.failover.mode, running: running !== null, pid: running?.pid ?? null, workerPid: running?.workerPid ?? null, restarts: running?.restarts ?? 0 };
  const monitorLine =
    ctx.config.failover.mode === 'manual'
      ? 'failover: manual (walship cluster failover)\n'
      : running === null
        ? 'failover: automatic, but the monitor is not running: walship cluster up starts it\n'
        : `failover: automatic, monitor pid ${running.pid}${running.restarts > 0 ? `, restarted ${running.restarts} times` : ''}\n`;
  const header = created ? '' : `cluster ${ctx.config.name} has not been created yet: walship cluster up -f ${options.file}\n`;
  await printMembers(io, ctx.config, state, rows, options.json === true ? { created, monitor } : null, header);
  if (options.json !== true && created) io.stdout.write(monitorLine);
  return ExitCode.ok;
}
