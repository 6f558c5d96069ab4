/**
 * The monitor's synchronous mode (Patroni's `synchronous_mode`), its pure core: which standbys
 * count as gone, and what the primary's synchronous_standby_names should then be.
 *
 * With `FIRST 1 (s1)` and s1 down, every commit waits (PostgreSQL's behaviour, kept by
 * `failover.synchronous_mode: strict`). `relaxed` (the default) lets the monitor repoint the
 * setting while a synchronous standby is gone:
 *
 *   1. A standby the primary could wait for (a standby of the state, streaming from the primary,
 *      not cascading) counts as gone once the primary has not shown it `streaming` in
 *      `missedChecks` checks in a row, and as back once it has shown it streaming in as many:
 *      the same hysteresis both ways, so a standby that reconnects does not make the setting
 *      flap.
 *   2. The setting is then what synchronousStandbyNamesFor gives with the gone standbys counted
 *      unavailable: a gone standby keeps its place in the list and a streaming one is added to
 *      meet the count (`FIRST 1 (s1)` -> `FIRST 1 (s1, s2)`: s2 is synchronous while s1 is away,
 *      s1 again once it is back, by FIRST's priority), and it is empty when no standby is left.
 *      Once the gone standbys are back, it is the config's again.
 *   3. Rule 2 of the failover decision stays right across the change (synchronous-change.ts
 *      applies it): before the primary is reloaded, the state records the union of the old and
 *      new names (synchronous-record.ts) and its observation is replaced by one that names the
 *      new setting, reports no synchronous states (so the decision
 *      falls back to the configured rule, which needs enough listed standbys to answer to be sure
 *      one has every acknowledged commit), and keeps as released position the highest of what
 *      was released and, when synchronous replication is turned on again after being off, the
 *      primary's flush position (commits acknowledged meanwhile are below it). An empty setting
 *      is recorded as synchronous replication turned off: no standby is then known to hold every
 *      acknowledged commit, and a failover needs --force.
 *
 * Pure: the checks' outcomes in, the counts and the gone standbys out.
 */
import type { ClusterConfig } from './config.js';
import { effectiveUpstream, synchronousNamesInput, type ClusterState } from './state.js';
import { synchronousStandbyNamesFor } from './synchronous-names.js';

export interface SynchronousModeCore {
  /** Per standby: consecutive checks it streamed (positive) or did not (negative). */
  readonly streaks: Readonly<Record<string, number>>;
  /** The standbys counted gone now. */
  readonly gone: readonly string[];
}

export function initialSynchronousModeCore(): SynchronousModeCore {
  return { streaks: {}, gone: [] };
}

/** The standbys that could be synchronous for the primary the state names: standbys streaming from it. */
export function synchronousCandidates(config: ClusterConfig, state: ClusterState): string[] {
  return config.members
    .filter((member) => member.name !== state.primary && state.members[member.name]?.role === 'standby' && effectiveUpstream(config, state, member) === state.primary)
    .map((member) => member.name);
}

/**
 * One health check's view of the primary's walsenders: `streaming` names the standbys it showed
 * streaming. Returns the new core; `gone` changes only after `missedChecks` checks in a row.
 */
export function synchronousModeStep(core: SynchronousModeCore, candidates: readonly string[], streaming: ReadonlySet<string>, missedChecks: number): SynchronousModeCore {
  const streaks: Record<string, number> = {};
  const gone: string[] = [];
  for (const name of candidates) {
    const previous = core.streaks[name] ?? 0;
    const streak = streaming.has(name) ? Math.max(previous, 0) + 1 : Math.min(previous, 0) - 1;
    streaks[name] = streak;
    const wasGone = core.gone.includes(name);
    if (wasGone ? streak < missedChecks : streak <= -missedChecks) gone.push(name);
  }
  return { streaks, gone };
}

/** The synchronous_standby_names the primary should run with, the gone standbys counted unavailable. */
export function relaxedSynchronousNames(config: ClusterConfig, state: ClusterState, gone: readonly string[]): string {
  const input = synchronousNamesInput(state, state.primary);
  return synchronousStandbyNamesFor(config, { ...input, unavailable: [...input.unavailable, ...gone] });
}
