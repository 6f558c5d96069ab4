/**
 * The synchronous_standby_names a member gets when it is the primary.
 *
 * The config names the synchronous standbys for the cluster as it starts (`FIRST 1 (s1)`). When
 * a member named there becomes the primary, it cannot be its own synchronous standby, and the
 * rule would name fewer standbys than commits wait for: every commit would hang. So, as Patroni
 * picks a new synchronous standby after a failover, its place in the list is taken by the
 * members the list does not name: the previous primary first (after a switchover the two have
 * traded roles, and it is the standby the list meant), then the others in config order, leaving
 * out cascading members (a standby of a standby is never synchronous). Under FIRST the priority
 * order is kept, so `FIRST 1 (s1)` on s1 after n1 failed becomes `FIRST 1 (n1, s2)`: s2 is
 * synchronous while n1 is away, n1 again once it has rejoined. `*` and ANY lists are handled the
 * same way; a list that does not name the primary is kept as written.
 *
 * Pure: the config, the primary and the previous primary in, the setting's text out.
 */
import { formatSyncRepConfig } from '@walship/replication/sync-rep-config';
import type { ClusterConfig } from './config.js';

export function synchronousStandbyNamesFor(config: ClusterConfig, primary: string, previousPrimary: string | null): string {
  const synchronous = config.synchronous;
  if (synchronous === null) return '';
  const listed = (name: string) => synchronous.memberNames.some((memberName) => memberName.toLowerCase() === name.toLowerCase());
  if (!listed(primary)) return config.synchronousStandbyNames;
  const replacements: string[] = [];
  const consider = (name: string | null) => {
    if (name === null || name === primary || listed(name) || replacements.includes(name)) return;
    const member = config.members.find((candidate) => candidate.name === name);
    if (member === undefined || member.upstream !== null) return;
    replacements.push(name);
  };
  consider(previousPrimary);
  for (const member of config.members) consider(member.name);
  const memberNames = synchronous.memberNames.flatMap((memberName) => (memberName.toLowerCase() === primary.toLowerCase() ? replacements : [memberName]));
  if (memberNames.length === 0) {
    // Only the primary was named and no other member can stand in: nobody can acknowledge, so
    // the primary commits alone rather than hanging every commit forever.
    return '';
  }
  return formatSyncRepConfig({ method: synchronous.method, numSync: Math.min(synchronous.numSync, memberNames.length), memberNames });
}

/** Whether `name` is among the standbys a primary with `standbyNames` may wait for. */
export function isSynchronousCandidate(standbyNames: readonly string[], name: string): boolean {
  return standbyNames.some((memberName) => memberName === '*' || memberName.toLowerCase() === name.toLowerCase());
}
