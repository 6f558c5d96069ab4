/**
 * What the `walship cluster ...` commands share: loading the config with the command line's
 * overrides, the context the cluster operations run in (the node-control adapter and a progress
 * writer on stderr), and printing the members table or its JSON.
 */
import type { ClusterConfig, ClusterContext, ClusterState, MemberRow } from '@walship/cluster';
import { createNodeControl } from './cluster-node-control.js';
import { clusterIo, loadConfig, useClusterCredentials, type ClusterFileOptions } from './cluster-options.js';
import type { CliIo } from './io.js';
import { printJson } from './output.js';

export { loadConfig, type ClusterFileOptions };

/**
 * The context of a cluster operation. Progress lines go to stderr when it is a terminal or
 * --progress is given, never with --quiet; warnings always do, as they say something is wrong.
 */
export async function openCluster(options: ClusterFileOptions, commandIo: CliIo): Promise<ClusterContext> {
  const config = await loadConfig(options);
  const io = clusterIo(config, commandIo);
  await useClusterCredentials(config, io);
  const shown = options.quiet !== true && (options.progress === true || io.stderr.isTTY === true);
  return {
    config,
    control: createNodeControl(io, { ...(options.progress === true ? { progress: true } : {}), ...(options.quiet === true ? { quiet: true } : {}) }),
    progress: (line) => {
      if (shown || /(^|: )warning: /.test(line)) io.stderr.write(`${config.name}: ${line}\n`);
    },
  };
}

/** The members document: the section 10 keys, with the cluster's name, primary and timeline. */
export function membersDocument(config: ClusterConfig, state: ClusterState, rows: readonly MemberRow[]): Record<string, unknown> {
  return { cluster: config.name, systemId: state.systemId, primary: state.primary, timeline: state.timeline, dataRoot: config.dataRoot, transition: state.transition ?? null, members: rows };
}

export async function printMembers(io: CliIo, config: ClusterConfig, state: ClusterState, rows: readonly MemberRow[], extra: Record<string, unknown> | null, text: string): Promise<void> {
  if (extra !== null) {
    printJson(io.stdout, { ...extra, ...membersDocument(config, state, rows) });
    return;
  }
  const { formatMembersTable } = await import('@walship/cluster');
  io.stdout.write(`${text}${formatMembersTable(config, state, rows)}`);
}

/** The members as they are now, for the table printed after an operation. */
export async function currentRows(ctx: ClusterContext, state: ClusterState): Promise<MemberRow[]> {
  const { memberRows, probeMembers } = await import('@walship/cluster');
  return memberRows(ctx.config, state, await probeMembers(ctx.control, ctx.config));
}
