/**
 * The four rights a user can hold (walship's small stand-in for PostgreSQL's role attributes and
 * privileges), and which one each request needs:
 *
 * - `read`: get, range (scan), listTables, status, waitLsn, showSetting of a setting that is not
 *   secret (SELECT, pg_stat_*, SHOW);
 * - `write`: txn (put, del, load: INSERT/UPDATE/DELETE) and createTable;
 * - `replication`: a replication connection at all (PostgreSQL's REPLICATION attribute): WAL
 *   streaming, base backups, slots, and what rewind and verify read;
 * - `admin`: promote, checkpoint, setSetting, the failover monitor's lease, and showSetting of a
 *   secret setting (pg_promote, CHECKPOINT and ALTER SYSTEM are superuser-only or granted roles).
 *
 * `ping` needs nothing. Pure: a table and two functions.
 */
import { WalshipError } from '@walship/engine';
import type { RequestType } from '@walship/protocol';

export type Right = 'read' | 'write' | 'replication' | 'admin';

/** In the order listings show them. */
export const RIGHTS: readonly Right[] = ['read', 'write', 'replication', 'admin'];

/** PostgreSQL's 42501. */
export const INSUFFICIENT_PRIVILEGE = 'insufficient_privilege';

/** The right each client request needs (null: none). */
export const REQUEST_RIGHTS: Readonly<Record<RequestType, Right | null>> = {
  get: 'read',
  range: 'read',
  listTables: 'read',
  status: 'read',
  waitLsn: 'read',
  showSetting: 'read',
  txn: 'write',
  createTable: 'write',
  checkpoint: 'admin',
  promote: 'admin',
  setSetting: 'admin',
  lease: 'admin',
  ping: null,
};

/** What a request needs; a secret setting (a password) is shown to admins only. */
export function requiredRight(type: RequestType, options: { secretSetting?: boolean } = {}): Right | null {
  if (type === 'showSetting' && options.secretSetting === true) return 'admin';
  return REQUEST_RIGHTS[type];
}

/** What PostgreSQL would call the action, for the refusal's message. */
const ACTIONS: Readonly<Record<RequestType, string>> = {
  get: 'read keys',
  range: 'read keys',
  listTables: 'list tables',
  status: 'read the node status',
  waitLsn: 'wait for an LSN',
  showSetting: 'show this setting',
  txn: 'write',
  createTable: 'create tables',
  checkpoint: 'checkpoint',
  promote: 'promote',
  setSetting: 'change settings',
  lease: 'grant the primary lease',
  ping: 'ping',
};

/** The refusal of a request the user has no right to (an ERROR: the session goes on). */
export function permissionDenied(type: RequestType, right: Right, user: string): WalshipError {
  return new WalshipError(INSUFFICIENT_PRIVILEGE, `permission denied to ${ACTIONS[type]}`, {
    detail: `Only users with the ${right} right may run "${type}"; user "${user}" does not have it.`,
    hint: `Grant it with "walship user alter -D DIR ${user} --rights ...,${right}" on the node.`,
  });
}

/** The refusal of a replication connection (PostgreSQL's words, a FATAL). */
export function walSenderPermissionDenied(user: string): WalshipError {
  return new WalshipError(INSUFFICIENT_PRIVILEGE, 'permission denied to start WAL sender', {
    detail: `Only users with the replication right may start a WAL sender process; user "${user}" does not have it.`,
    hint: `Connect as a user with the replication right (user=... in primary_conninfo, or WALSHIP_USER), or grant it with "walship user alter -D DIR ${user} --rights ...,replication".`,
  });
}

/**
 * A rights list as typed on the command line (`read,write`, `all`): the rights in RIGHTS order,
 * or a problem to report.
 */
export function parseRights(text: string): { rights: Right[] } | { problem: string } {
  const names = text.split(',').map((name) => name.trim().toLowerCase()).filter((name) => name !== '');
  if (names.length === 0) return { problem: 'no right given' };
  if (names.includes('all')) return { rights: [...RIGHTS] };
  const unknown = names.filter((name) => !(RIGHTS as readonly string[]).includes(name));
  if (unknown.length > 0) return { problem: `unknown right${unknown.length > 1 ? 's' : ''} ${unknown.map((name) => `"${name}"`).join(', ')}` };
  return { rights: RIGHTS.filter((right) => names.includes(right)) };
}
