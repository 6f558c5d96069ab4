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
  const { clusterStatus } = await import('@walship/cluster');
  const { state, created, rows } = await clusterStatus(ctx);
  await printMembers(io, ctx.config, state, rows, options.json === true ? { created } : null, created ? '' : `cluster ${ctx.config.name} has not been created yet: walship cluster up -f ${options.file}\n`);
  return ExitCode.ok;
}
