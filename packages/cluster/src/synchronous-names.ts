/**
 * The synchronous_standby_names a member gets when it is the primary.
 *
 * The config names the synchronous standbys for the cluster as it starts (`FIRST 1 (s1)`). Once
 * roles change, a named member may be the primary itself (it cannot wait for itself), or fenced
 * or not created (it cannot acknowledge anything): taken literally, the rule would then name
 * fewer usable standbys than commits wait for, and every commit would hang until that member
 * came back. So, as Patroni picks a new synchronous standby after a failover, the list is
 * adjusted:
 *
 *   1. The primary's own place in the list goes to the members the list does not name: the
 *      previous primary first (after a switchover the two have traded roles, and it is the
 *      standby the list meant), then the others in config order, leaving out cascading members
 *      (a standby of a standby is never synchronous) and unusable ones.
 *   2. If the list still names fewer usable members than commits wait for (a named standby is
 *      fenced), more unnamed ones are added at its end, so the count can be met; the absent
 *      member keeps its place and is synchronous again once it is back (FIRST's priority order).
 *
 * So `FIRST 1 (s1)` on s1 after n1 failed becomes `FIRST 1 (n1, s2)`: s2 is synchronous while n1
 * is away; and on s2 while s1 is fenced, `FIRST 1 (s1, n1)`. ANY lists are adjusted the same
 * way; `*` is kept as written. If nobody usable can be named, the primary commits alone rather
 * than hanging every commit forever.
 *
 * Pure: the config and the roles in, the setting's text out.
 */
import { formatSyncRepConfig } from '@walship/replication/sync-rep-config';
import type { ClusterConfig } from './config.js';

export interface SynchronousNamesInput {
  /** The member that is (or is about to be) the primary. */
  readonly primary: string;
  /** The member that was primary before it, if any. */
  readonly previousPrimary: string | null;
  /** Members that cannot acknowledge now: fenced, or not created. */
  readonly unavailable: readonly string[];
}

export function synchronousStandbyNamesFor(config: ClusterConfig, input: SynchronousNamesInput): string {
  const synchronous = config.synchronous;
  if (synchronous === null) return '';
  if (synchronous.memberNames.includes('*')) return config.synchronousStandbyNames;
  const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();
  const listed = (name: string) => synchronous.memberNames.some((memberName) => same(memberName, name));
  const usable = (name: string) => !same(name, input.primary) && !input.unavailable.some((other) => same(other, name));
  const replacements: string[] = [];
  const consider = (name: string | null) => {
    if (name === null || listed(name) || !usable(name) || replacements.includes(name)) return;
    const member = config.members.find((candidate) => candidate.name === name);
    if (member === undefined || member.upstream !== null) return;
    replacements.push(name);
  };
  consider(input.previousPrimary);
  for (const member of config.members) consider(member.name);

  const memberNames = synchronous.memberNames.flatMap((memberName) => (same(memberName, input.primary) ? replacements.splice(0) : [memberName]));
  while (memberNames.filter(usable).length < synchronous.numSync && replacements.length > 0) memberNames.push(replacements.shift()!);
  const usableCount = memberNames.filter(usable).length;
  if (usableCount === 0) return '';
  // With too few usable members even so, wait for the ones there are rather than for ever.
  const numSync = Math.min(synchronous.numSync, usableCount);
  if (numSync === synchronous.numSync && memberNames.length === synchronous.memberNames.length && memberNames.every((name, index) => name === synchronous.memberNames[index])) {
    return config.synchronousStandbyNames;
  }
  return formatSyncRepConfig({ method: synchronous.method, numSync, memberNames });
}
