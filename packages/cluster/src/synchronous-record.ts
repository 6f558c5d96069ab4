/**
 * The synchronous_standby_names the state records for the primary, and the names a member is
 * given when it is promoted. Pure: the config and the state in, settings' text out.
 *
 * The failover decision's rule 2 judges who may hold every acknowledged commit by the names in
 * force on the primary. So whoever changes them writes the state first (state.ts invariant 5):
 *
 *   1. A promotion: the target's names go into the transition, written before the target is
 *      given them and promoted; the state that names the new primary records them
 *      (withNewPrimary).
 *   2. The relaxed synchronous mode's change (synchronous-change.ts): while it is made, the
 *      record is the union of the names before and after it (any member of either may have
 *      acknowledged a commit the floor does not cover yet); once the primary reports the new
 *      names, the record is them, written with the released position read after the change.
 *   3. The reload after a rejoin or a reinit (member-ops.ts's refreshSynchronousNames) gives the
 *      primary the config's rule for the state it has just written: the names judged by are the
 *      union of the record and that rule, so the state on disk covers the reload before it is made.
 *
 * A union of FIRST/ANY k lists is the members of both with the smaller k: for the decision's
 * configured rule (N - k + 1 of the N listed must answer) a smaller k asks more of them to
 * answer, so every commit acknowledged under either list has a member that answers.
 */
import { formatSyncRepConfig, parseSynchronousStandbyNames, type SyncRepConfig } from '@walship/replication/sync-rep-config';
import type { ClusterConfig } from './config.js';
import { synchronousNamesInput, type ClusterState } from './state.js';
import { synchronousStandbyNamesFor } from './synchronous-names.js';

/** The setting parsed, or null for '' (or a text that does not parse: it cannot be in force). */
function parsed(text: string): SyncRepConfig | null {
  try {
    return parseSynchronousStandbyNames(text);
  } catch {
    return null;
  }
}

/**
 * A setting naming every member either names, waiting for the smaller count: what a failover
 * decision must assume while the primary may run with either. The first one's method is kept
 * (they differ only if the config was edited meanwhile); `*` in either is kept.
 */
export function unionSynchronousNames(first: string, second: string): string {
  const a = parsed(first);
  const b = parsed(second);
  if (a === null) return b === null ? '' : second;
  if (b === null) return first;
  const same = (x: string, y: string) => x.toLowerCase() === y.toLowerCase();
  const memberNames = [...a.memberNames, ...b.memberNames.filter((name) => !a.memberNames.some((other) => same(other, name)))];
  const numSync = Math.min(a.numSync, b.numSync);
  if (memberNames.length === a.memberNames.length && numSync === a.numSync) return first;
  return formatSyncRepConfig({ method: a.method, numSync, memberNames });
}

/**
 * The names a failover decision judges the primary the state names by: the record (or, in a
 * state written before records existed, the last observation's names) joined with the config's
 * rule for the state, which a reload after a rejoin or reinit applies once the state is written.
 */
export function recordedSynchronousNames(config: ClusterConfig, state: ClusterState): string {
  const rule = synchronousStandbyNamesFor(config, synchronousNamesInput(state, state.primary));
  const record = state.synchronousNames;
  if (record !== null && record !== undefined && record.primary === state.primary) return unionSynchronousNames(record.names, rule);
  if (state.observation?.primary === state.primary) return unionSynchronousNames(state.observation.synchronousStandbyNames, rule);
  return rule;
}

/**
 * The names `target` is given as it is promoted in place of the state's primary: the config's
 * rule for the state as it will be (`unavailable`: members that cannot acknowledge then, the
 * fenced old primary of a failover). After a switchover the old primary is restarting as a
 * standby (a fast shutdown, a rewind, a start): with the relaxed synchronous mode it counts as
 * unavailable until it streams, so a streaming standby stands in for it (Patroni picks its
 * synchronous standby among the healthy ones) and the first commits need not wait for its
 * restart — `FIRST 1 (s1)` on n1 after a switchover from s1 becomes `FIRST 1 (s1, s2)`. That only
 * when the stand-in keeps the count the rule asks for (under `ANY 2` with one other standby the
 * commits wait for the old primary, as before), and never with the strict mode, whose commits
 * wait for the named standbys. The reload after its rejoin (refreshSynchronousNames) returns to
 * the config's rule.
 */
export function promotionSynchronousNames(
  config: ClusterConfig,
  state: ClusterState,
  target: string,
  change: { readonly kind: 'failover' | 'switchover'; readonly unavailable: readonly string[] },
): string {
  const input = synchronousNamesInput(state, target);
  const plain = synchronousStandbyNamesFor(config, { ...input, unavailable: [...input.unavailable, ...change.unavailable] });
  if (change.kind !== 'switchover' || config.failover.synchronousMode !== 'relaxed') return plain;
  const standIn = synchronousStandbyNamesFor(config, { ...input, unavailable: [...input.unavailable, ...change.unavailable, state.primary] });
  const wanted = parsed(plain);
  const got = parsed(standIn);
  if (wanted === null || got === null || got.numSync < wanted.numSync) return plain;
  return standIn;
}

/**
 * The state with the record set to the names its observation of the primary reports in force,
 * or null when there is nothing to change (no observation of that primary, or the record says
 * so already). Written after that observation, whose released position was read with those
 * names in force: commits acknowledged before are below it (rule 2's floor), later ones were
 * acknowledged under these names. So a record left wider by a change (a stand-in named during a
 * switchover, the union of a relaxed-mode change, a reload after a rejoin) comes back to what the
 * primary runs with, and names set on the primary by hand are recorded.
 */
export function withRecordOfNamesInForce(state: ClusterState): ClusterState | null {
  const observation = state.observation;
  if (observation === null || observation.primary !== state.primary || observation.timeline !== state.timeline) return null;
  const record = state.synchronousNames;
  if (record !== null && record !== undefined && record.primary === state.primary && record.names === observation.synchronousStandbyNames) return null;
  return { ...state, synchronousNames: { primary: state.primary, names: observation.synchronousStandbyNames } };
}
