/**
 * `walship lag -f CLUSTER.yaml`: the members to watch come from a cluster config (loaded by
 * @walship/cluster with the --base-port / --data-root overrides, names exactly as the config
 * writes them), and the cluster's live state in the data root is followed from sample to sample:
 *
 * - before each sample the state file is read again, so after a failover or a switchover the
 *   member it names primary is asked first (the arithmetic breaks a tie between two primaries on
 *   one timeline by the order given) and each member's role there (`fenced` for an old primary)
 *   is shown beside what it answers;
 * - the figures never come from the file: the primary is still the answering member with role
 *   primary on the highest timeline, so the view moves to a promoted standby as soon as it
 *   answers, before the toolkit has written its state;
 * - a state that cannot be read (a torn copy by hand, another cluster's data root) is a problem
 *   line, never the end of the view.
 */
import type { ClusterConfig, ClusterState } from '@walship/cluster';
import { withClusterView, type ClusterView, type LagReport, type MemberAddress } from '@walship/lag';

/** Where the members of `walship lag` come from: a fixed list (--node) or a cluster config. */
export interface MemberSource {
  /** The members to ask in the next sample, in order. */
  members(): readonly MemberAddress[];
  /** The report as shown and printed, with what the source knows besides the members' answers. */
  annotate(report: LagReport): LagReport;
  /** What to tell a user none of whose members answered. */
  unreachableHint: string;
}

/** Every member of the config, the state's primary first, the others in config order. */
export function membersFromCluster(config: ClusterConfig, state: ClusterState | null): MemberAddress[] {
  const members = config.members.map((member) => ({ name: member.name, host: config.host, port: member.port }));
  const primary = state === null ? -1 : members.findIndex((member) => member.name === state.primary);
  return primary <= 0 ? members : [members[primary]!, ...members.slice(0, primary), ...members.slice(primary + 1)];
}

/** The ClusterView of a state (or of its absence, or of why it could not be read). */
export function clusterViewOf(config: ClusterConfig, state: ClusterState | null, stateError: string | null): ClusterView {
  return {
    name: config.name,
    statePrimary: state?.primary ?? null,
    stateTimeline: state?.timeline ?? null,
    roles: state === null ? {} : Object.fromEntries(config.members.map((member) => [member.name, state.members[member.name]?.role ?? 'uninitialized'])),
    stateError,
  };
}

/** A MemberSource that follows a cluster's live state; `readState` reads the data root's state file. */
export function clusterMemberSource(config: ClusterConfig, readState: () => ClusterState | null): MemberSource {
  let state: ClusterState | null = null;
  let stateError: string | null = null;
  return {
    members() {
      try {
        state = readState();
        stateError = null;
      } catch (error) {
        // Keep the last state read: the members and their order stay as they were.
        stateError = error instanceof Error ? error.message : String(error);
      }
      return membersFromCluster(config, state);
    },
    annotate: (report) => withClusterView(report, clusterViewOf(config, stateError === null ? state : null, stateError)),
    unreachableHint: `Is the cluster up? Start it with walship cluster up -f ${config.file}, and check --base-port / --data-root.`,
  };
}
