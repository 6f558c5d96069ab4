import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildScramVerifier, formatScramVerifier, ScramClient } from '@walship/protocol';
import { ClientAuthentication, type AuthSettings, type AuthStep } from './client-authentication.js';
import { emptyUsersFile, UsersFileCache, writeUsersFile } from './users-file.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-clientauth-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = emptyUsersFile();
file.users.set('app', { rights: ['read', 'write'], verifier: formatScramVerifier(buildScramVerifier('app-pw', { iterations: 64 })) });
file.users.set('repl', { rights: ['replication'], verifier: formatScramVerifier(buildScramVerifier('repl-pw', { iterations: 64 })) });
writeUsersFile(dir, file);
const scram: AuthSettings = { method: 'scram-sha-256', password: 'ignored', replicationPassword: '', users: new UsersFileCache(dir) };

/** Runs a whole SCRAM exchange with `password`; returns the last step and the client. */
function scramLogin(kind: 'client' | 'replication', user: string, password: string): { last: AuthStep; client: ScramClient } {
  const auth = new ClientAuthentication(scram, kind, '127.0.0.1', user);
  expect(auth.start('ignored')).toEqual({ step: 'send', message: { type: 'authRequest', method: 'scram-sha-256' } });
  const client = new ScramClient({ password });
  const first = auth.onMessage({ type: 'saslInitialResponse', mechanism: 'SCRAM-SHA-256', data: client.clientFirstMessage() });
  if (first.step !== 'send' || first.message.type !== 'saslContinue') throw new Error(`unexpected ${JSON.stringify(first)}`);
  const last = auth.onMessage({ type: 'saslResponse', data: client.handleServerFirst(first.message.data) });
  return { last, client };
}

describe('ClientAuthentication under scram-sha-256', () => {
  it('lets a user in with its rights, and the client can check the server signature', () => {
    const { last, client } = scramLogin('client', 'app', 'app-pw');
    expect(last).toMatchObject({ step: 'ok', user: 'app', rights: ['read', 'write'], method: 'scram-sha-256' });
    if (last.step === 'ok') client.verifyServerFinal(last.final!.data);
    expect(client.verified).toBe(true);
  });

  it('refuses a wrong password and an unknown user with the same message; the log tells them apart', () => {
    const wrong = scramLogin('client', 'app', 'nope').last;
    const unknown = scramLogin('client', 'ghost', 'nope').last;
    expect(wrong).toMatchObject({ step: 'fail', code: 'invalid_password', message: 'password authentication failed for user "app"', counts: true, logDetail: 'Password does not match for user "app".' });
    expect(unknown).toMatchObject({ step: 'fail', code: 'invalid_password', message: 'password authentication failed for user "ghost"', counts: true, logDetail: 'Role "ghost" does not exist.' });
  });

  it('refuses a replication connection of a user without the replication right, after a good proof', () => {
    expect(scramLogin('replication', 'app', 'app-pw').last).toMatchObject({ step: 'fail', code: 'insufficient_privilege', message: 'permission denied to start WAL sender', counts: false });
    expect(scramLogin('replication', 'repl', 'repl-pw').last).toMatchObject({ step: 'ok', rights: ['replication'] });
  });

  it('refuses a cleartext password and another mechanism as protocol violations', () => {
    const auth = new ClientAuthentication(scram, 'client', '127.0.0.1', 'app');
    auth.start(undefined);
    expect(auth.onMessage({ type: 'password', password: 'app-pw' })).toMatchObject({ step: 'fail', code: 'protocol_violation' });
    const other = new ClientAuthentication(scram, 'client', '127.0.0.1', 'app');
    other.start(undefined);
    expect(other.onMessage({ type: 'saslInitialResponse', mechanism: 'SCRAM-SHA-1', data: 'n,,n=,r=x' })).toMatchObject({
      step: 'fail', message: 'client selected an invalid SASL authentication mechanism',
    });
  });
});

describe('ClientAuthentication under trust (the password settings)', () => {
  const trust = (password: string, replicationPassword = ''): AuthSettings => ({ method: 'trust', password, replicationPassword });
  it('trusts loopback without a password, refuses other hosts', () => {
    expect(new ClientAuthentication(trust(''), 'client', '127.0.0.1', 'x').start(undefined)).toMatchObject({ step: 'ok', method: 'trust', rights: ['read', 'write', 'replication', 'admin'] });
    expect(new ClientAuthentication(trust(''), 'client', '10.1.2.3', 'x').start(undefined)).toMatchObject({ step: 'fail', counts: false });
    expect(new ClientAuthentication(trust(''), 'replication', '10.1.2.3', 'x').start(undefined)).toMatchObject({ step: 'fail', message: 'no replication_password is set: replication connections are only accepted from this machine' });
  });
  it('asks for the password setting and compares it', () => {
    const auth = new ClientAuthentication(trust('pw'), 'client', '127.0.0.1', 'x');
    expect(auth.start(undefined)).toEqual({ step: 'send', message: { type: 'authRequest', method: 'password' } });
    expect(auth.onMessage({ type: 'password', password: 'pw' })).toMatchObject({ step: 'ok', method: 'password' });
    expect(new ClientAuthentication(trust('pw'), 'client', '127.0.0.1', 'x').start('bad')).toMatchObject({ step: 'fail', message: 'password authentication failed for user "x"', counts: true });
    expect(new ClientAuthentication(trust('', 'rp'), 'replication', '127.0.0.1', 'x').start('rp')).toMatchObject({ step: 'ok' });
  });
});
