import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildScramVerifier, formatScramVerifier } from '@walship/protocol';
import { emptyUsersFile, formatUsersFile, parseUsersFile, readUsersFile, userNameProblem, UsersFileCache, usersFilePath, writeUsersFile } from './users-file.js';

const verifier = formatScramVerifier(buildScramVerifier('pencil', { iterations: 16 }));
const dirs: string[] = [];
function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-users-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('the users file', () => {
  it('formats and parses back; never holds a password', () => {
    const file = emptyUsersFile();
    file.users.set('walship', { rights: ['read', 'write', 'replication', 'admin'], verifier });
    file.users.set('app', { rights: ['read'], verifier });
    const text = formatUsersFile(file);
    expect(text).not.toContain('pencil');
    const back = parseUsersFile(text, 'f');
    expect(back.mockAuthenticationNonce).toEqual(file.mockAuthenticationNonce);
    expect([...back.users]).toEqual([['app', { rights: ['read'], verifier }], ['walship', { rights: ['read', 'write', 'replication', 'admin'], verifier }]]);
  });

  it('refuses a damaged file, saying what is wrong', () => {
    const good = JSON.parse(formatUsersFile(emptyUsersFile())) as Record<string, unknown>;
    const cases: Array<[string, string]> = [
      ['{', 'It is not JSON'],
      ['[]', 'It is not a JSON object'],
      [JSON.stringify({ ...good, version: 2 }), 'Unknown version 2'],
      [JSON.stringify({ ...good, mockAuthenticationNonce: 'abc' }), 'mockAuthenticationNonce'],
      [JSON.stringify({ ...good, users: { x: { rights: ['root'], verifier } } }), '"rights" must be a list'],
      [JSON.stringify({ ...good, users: { x: { rights: ['read'], verifier: 'pencil' } } }), 'is not a SCRAM-SHA-256 verifier'],
      [JSON.stringify({ ...good, users: { '': { rights: [], verifier } } }), 'cannot be empty'],
    ];
    for (const [text, detail] of cases) {
      let error: { message: string; detail?: string } | undefined;
      try {
        parseUsersFile(text, 'DIR/walship_authid.json');
      } catch (caught) {
        error = caught as { message: string; detail?: string };
      }
      expect(error?.message).toBe('invalid users file "DIR/walship_authid.json"');
      expect(error?.detail).toContain(detail);
    }
  });

  it('checks user names', () => {
    expect(userNameProblem('app_user@example')).toBeNull();
    expect(userNameProblem('x'.repeat(64))).toContain('at most 63 bytes');
    expect(userNameProblem('a\nb')).toContain('control characters');
    expect(userNameProblem('-rf')).toContain('cannot start with "-"');
  });

  it('is written with mode 0600, whole, and the cache sees each change', () => {
    const dir = tempDir();
    const cache = new UsersFileCache(dir);
    expect(cache.current()).toBeNull();
    expect(readUsersFile(dir)).toBeNull();
    const file = emptyUsersFile();
    file.users.set('a', { rights: ['read'], verifier });
    writeUsersFile(dir, file);
    expect(fs.statSync(usersFilePath(dir)).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(dir)).toEqual(['walship_authid.json']);
    expect(cache.lookup('a')?.user?.rights).toEqual(['read']);
    expect(cache.lookup('b')?.user).toBeNull();
    file.users.set('b', { rights: ['write'], verifier });
    writeUsersFile(dir, file);
    expect(cache.lookup('b')?.user?.rights).toEqual(['write']);
    expect(cache.lookup('b')?.mockNonce).toEqual(file.mockAuthenticationNonce);
    fs.unlinkSync(usersFilePath(dir));
    expect(cache.lookup('a')).toBeNull();
  });
});
