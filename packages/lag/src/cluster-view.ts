/**
 * What a cluster's live state says, beside what its members answer: `walship lag -f CLUSTER.yaml`
 * (and drills) watch a cluster whose toolkit keeps, in its data root, who is primary now and
 * which old primary is fenced. The arithmetic never trusts that file for a figure (the primary is
 * still the answering one on the highest timeline, compute-lag.ts rule 1); the state is shown
 * beside the figures, and where the two disagree, for longer than a failover takes, that is a
 * problem worth a line.
 *
 * Pure: the caller reads the state file and hands in a ClusterView.
 */
import type { LagReport, MemberLag } from './lag-report.js';

/** A cluster's live state as the lag report shows it (the caller reads it from the data root). */
export interface ClusterView {
  /** The cluster's name in its config. */
  name: string;
  /** The member the live state names primary; null before the cluster was first brought up. */
  statePrimary: string | null;
  /** The primary's timeline as the state last recorded it; null without a state. */
  stateTimeline: number | null;
  /** Each member's role in the state: `primary`, `standby`, `fenced` (an old primary that must rejoin) or `uninitialized`. */
  roles: Record<string, string>;
  /** Why the state could not be read (it is then left out), or null. */
  stateError: string | null;
}

/** The report with the cluster's view: `cluster` at the top, each member's `clusterRole`, disagreements in `problems`. */
export function withClusterView(report: LagReport, view: ClusterView): LagReport {
  const members: MemberLag[] = report.members.map((member) => ({ ...member, clusterRole: view.roles[member.name] ?? null }));
  const problems = [...report.problems];
  if (view.stateError !== null) problems.push(`the cluster state could not be read: ${view.stateError}`);
  else if (view.statePrimary === null) problems.push(`cluster ${view.name} has no live state yet: was it ever brought up (walship cluster up)?`);
  else if (report.primary !== null && report.primary !== view.statePrimary) {
    // During a failover the promoted standby answers as primary a moment before the state is
    // written, and the state may name a new primary a moment before it answers: shown, not hidden.
    problems.push(`the cluster state names ${view.statePrimary} primary, but ${report.primary} answers as primary on the highest timeline`);
  }
  return { ...report, members, problems, cluster: view };
}
