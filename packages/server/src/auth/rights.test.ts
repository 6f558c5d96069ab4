import { describe, expect, it } from 'vitest';
import { REQUEST_TYPES } from '@walship/protocol';
import { parseRights, permissionDenied, REQUEST_RIGHTS, requiredRight, walSenderPermissionDenied } from './rights.js';

describe('rights', () => {
  it('every request type has an entry, and the table is the documented one', () => {
    expect(Object.keys(REQUEST_RIGHTS).sort()).toEqual([...REQUEST_TYPES].sort());
    const byRight = (right: string | null) => REQUEST_TYPES.filter((type) => REQUEST_RIGHTS[type] === right).sort();
    expect(byRight('read')).toEqual(['get', 'listTables', 'range', 'showSetting', 'status', 'waitLsn']);
    expect(byRight('write')).toEqual(['createTable', 'txn']);
    expect(byRight('admin')).toEqual(['checkpoint', 'lease', 'promote', 'setSetting']);
    expect(byRight(null)).toEqual(['ping']);
  });

  it('a secret setting is shown to admins only', () => {
    expect(requiredRight('showSetting')).toBe('read');
    expect(requiredRight('showSetting', { secretSetting: true })).toBe('admin');
    expect(requiredRight('txn', { secretSetting: true })).toBe('write');
  });

  it('refusals say what was denied and name the right', () => {
    const error = permissionDenied('txn', 'write', 'reader');
    expect(error.code).toBe('insufficient_privilege');
    expect(error.message).toBe('permission denied to write');
    expect(error.detail).toContain('write right');
    expect(error.hint).toContain('walship user alter -D DIR reader --rights ...,write');
    expect(walSenderPermissionDenied('app').message).toBe('permission denied to start WAL sender');
  });

  it('parses rights lists', () => {
    expect(parseRights('write, read')).toEqual({ rights: ['read', 'write'] });
    expect(parseRights('all')).toEqual({ rights: ['read', 'write', 'replication', 'admin'] });
    expect(parseRights('REPLICATION')).toEqual({ rights: ['replication'] });
    expect(parseRights('')).toEqual({ problem: 'no right given' });
    expect(parseRights('read,superuser,x')).toEqual({ problem: 'unknown rights "superuser", "x"' });
  });
});
