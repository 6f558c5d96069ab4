/**
 * Authentication and rights on real nodes: `walship init --auth scram-sha-256`, SCRAM-SHA-256
 * logins of the client library and the CLI, refusals (wrong password, unknown user: the same
 * message, told apart only in the node's log, with the peer's address), rights per request and
 * for replication connections, `walship user passwd|del|alter` taking effect on a running node
 * without a reload, failures from one address slowed down, and a standby streaming as a
 * replication user over SCRAM.
 *
 * The one stand-in: a server that does not know the user's verifier (an impostor) cannot be made
 * from a real node, so a small WebSocket server speaking the handshake plays it, and the client
 * library and the walreceiver's connection must refuse it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { WalshipClient } from '@walship/client';
import {
  decodeClientMessage, decodeReplicationFrame, encodeMessage, encodeReplicationMessage, type ClientMessage, type ServerMessage,
} from '@walship/protocol';
import { ReplicationConnection } from '@walship/replication';
import { TestNode, freePort, tempDir, waitFor, walship } from './helpers/node.js';

const SUPERUSER_PASSWORD = 'correct horse battery staple';

async function rejection(promise: Promise<unknown>): Promise<{ code?: string; message: string; detail?: string; hint?: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code?: string; message: string };
  }
  throw new Error('expected a rejection');
}

function connect(port: number, user: string, password: string | undefined): Promise<WalshipClient> {
  return WalshipClient.connect({ port, user, ...(password === undefined ? {} : { password }), timeoutMs: 20_000 });
}

describe('SCRAM-SHA-256 authentication and rights', () => {
  let node: TestNode;
  const address = () => `127.0.0.1:${node.port}`;
  const asUser = (user: string, password: string) => ({ env: { WALSHIP_USER: user, WALSHIP_PASSWORD: password } });

  beforeAll(async () => {
    const dir = path.join(tempDir('auth'), 'data');
    const port = await freePort();
    const init = walship(['init', '-D', dir, '--port', String(port), '--auth', 'scram-sha-256',
      '--set', 'wal_segment_size=1MB', '--set', 'shared_buffers=2MB', '--set', 'heartbeat_interval=0'], { env: { WALSHIP_PASSWORD: SUPERUSER_PASSWORD } });
    expect(init.status, init.stderr).toBe(0);
    node = new TestNode(dir, port);
    await node.start();
  });
  afterAll(async () => {
    await node?.destroy();
  });

  it('init --auth scram-sha-256 stores the superuser as a SCRAM verifier in a 0600 file, never the password', () => {
    const file = path.join(node.dataDir, 'walship_authid.json');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const text = fs.readFileSync(file, 'utf8');
    expect(text).toMatch(/"verifier": "SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+"/);
    for (const name of fs.readdirSync(node.dataDir, { recursive: true }) as string[]) {
      const full = path.join(node.dataDir, name);
      let bytes: Buffer;
      try {
        if (!fs.statSync(full).isFile()) continue;
        bytes = fs.readFileSync(full);
      } catch (error) {
        // The node runs: a temporary file may be gone between the listing and the read.
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw error;
      }
      expect(bytes.includes(SUPERUSER_PASSWORD), name).toBe(false);
    }
    expect(walship(['show', '-D', node.dataDir, 'auth_method']).stdout.trim()).toBe('scram-sha-256');
    const list = walship(['user', 'list', '-D', node.dataDir, '--json']);
    expect(JSON.parse(list.stdout)).toEqual({ users: [{ name: 'walship', rights: ['read', 'write', 'replication', 'admin'] }] });
    // No password and no terminal: refused, nothing created.
    const other = path.join(path.dirname(node.dataDir), 'no-password');
    const refused = walship(['init', '-D', other, '--auth', 'scram-sha-256'], { env: { WALSHIP_PASSWORD: '' } });
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('no password given for new superuser "walship"');
    expect(fs.existsSync(other)).toBe(false);
  });

  it('the right password logs in (client library and CLI); loopback is no longer trusted', async () => {
    const client = await connect(node.port, 'walship', SUPERUSER_PASSWORD);
    await client.put('auth:key', 'v1');
    expect((await client.get('auth:key'))?.value.toString()).toBe('v1');
    await client.close();
    const cli = walship(['get', '--node', address(), 'auth:key'], asUser('walship', SUPERUSER_PASSWORD));
    expect(cli.status, cli.stderr).toBe(0);
    expect(cli.stdout.trim()).toBe('v1');
    expect(node.log).toMatch(/connection authorized: user=walship method=scram-sha-256 .*host=127\.0\.0\.1/);
    const none = await rejection(connect(node.port, 'walship', undefined));
    expect(none.message).toBe('no password supplied');
    const cliNone = walship(['get', '--node', address(), 'auth:key'], { env: { WALSHIP_PASSWORD: '' } });
    expect(cliNone.status).toBe(1);
    expect(cliNone.stderr).toContain('no password supplied');
  });

  it('a wrong password and an unknown user get the same refusal; the log says which, with the peer\'s address', async () => {
    const wrong = await rejection(connect(node.port, 'walship', 'battery staple'));
    expect(wrong).toMatchObject({ code: 'invalid_password', message: 'password authentication failed for user "walship"' });
    const unknown = await rejection(connect(node.port, 'ghost', SUPERUSER_PASSWORD));
    expect(unknown).toMatchObject({ code: 'invalid_password', message: 'password authentication failed for user "ghost"' });
    expect(wrong.detail).toBeUndefined();
    expect(unknown.detail).toBeUndefined();
    await waitFor('both refusals in the log', () => node.log.includes('Role "ghost" does not exist.'));
    expect(node.log).toMatch(/FATAL: {2}password authentication failed for user "walship": host=127\.0\.0\.1 port=\d+\n.*DETAIL: {2}Password does not match for user "walship"\./);
    expect(node.log).toMatch(/FATAL: {2}password authentication failed for user "ghost": host=127\.0\.0\.1 port=\d+\n.*DETAIL: {2}Role "ghost" does not exist\./);
    const cli = walship(['--user', 'ghost', 'get', '--node', address(), 'auth:key'], { env: { WALSHIP_PASSWORD: 'x' } });
    expect(cli.status).toBe(1);
    expect(cli.stderr).toContain('password authentication failed for user "ghost"');
  });

  it('rights: a read-only user reads but is refused writes and admin requests, with the right named', async () => {
    const add = walship(['user', 'add', '-D', node.dataDir, 'reader', '--rights', 'read'], { env: { WALSHIP_PASSWORD: 'reader-pw' } });
    expect(add.status, add.stderr).toBe(0);
    expect(add.stdout).toContain('user "reader" added with rights read');
    // No reload: the node reads the users file at the next connection.
    const reader = await connect(node.port, 'reader', 'reader-pw');
    try {
      expect((await reader.get('auth:key'))?.value.toString()).toBe('v1');
      expect((await reader.status()).role).toBe('primary');
      const put = await rejection(reader.put('auth:key', 'overwritten?'));
      expect(put).toMatchObject({ code: 'insufficient_privilege', message: 'permission denied to write' });
      expect(put.hint).toContain('--rights ...,write');
      expect(await rejection(reader.checkpoint())).toMatchObject({ code: 'insufficient_privilege', message: 'permission denied to checkpoint' });
      // The session goes on after a refusal.
      expect((await reader.get('auth:key'))?.value.toString()).toBe('v1');
    } finally {
      await reader.close();
    }
    const cli = walship(['put', '--node', address(), 'auth:key', 'overwritten?'], asUser('reader', 'reader-pw'));
    expect(cli.status).toBe(1);
    expect(cli.stderr).toContain('permission denied to write');
    expect(cli.stderr).toContain('write right');
    const set = walship(['set', '--node', address(), 'wal_sender_timeout', '30s'], asUser('reader', 'reader-pw'));
    expect(set.status).toBe(1);
    expect(set.stderr).toContain('permission denied to change settings');
    await waitFor('the refusal in the log', () => /ERROR: {2}permission denied to write: user=reader request=txn host=127\.0\.0\.1/.test(node.log));
    const superuser = await connect(node.port, 'walship', SUPERUSER_PASSWORD);
    expect((await superuser.get('auth:key'))?.value.toString()).toBe('v1');
    await superuser.close();
  });

  it('user passwd and user del take effect on the running node at the next connection', async () => {
    const passwd = walship(['user', 'passwd', '-D', node.dataDir, 'reader'], { env: { WALSHIP_PASSWORD: 'new-reader-pw' } });
    expect(passwd.status, passwd.stderr).toBe(0);
    expect(await rejection(connect(node.port, 'reader', 'reader-pw'))).toMatchObject({ message: 'password authentication failed for user "reader"' });
    const reader = await connect(node.port, 'reader', 'new-reader-pw');
    await reader.close();
    const alter = walship(['user', 'alter', '-D', node.dataDir, 'reader', '--rights', 'read,write']);
    expect(alter.status, alter.stderr).toBe(0);
    const writer = await connect(node.port, 'reader', 'new-reader-pw');
    await writer.put('auth:by-reader', 'yes');
    await writer.close();
    const del = walship(['user', 'del', '-D', node.dataDir, 'reader']);
    expect(del.status, del.stderr).toBe(0);
    expect(await rejection(connect(node.port, 'reader', 'new-reader-pw'))).toMatchObject({ message: 'password authentication failed for user "reader"' });
    expect(walship(['user', 'del', '-D', node.dataDir, 'reader']).stderr).toContain('role "reader" does not exist');
    // Never a password from a pipe or a flag.
    const noTty = walship(['user', 'add', '-D', node.dataDir, 'piped'], { input: 'secret\nsecret\n', env: { WALSHIP_PASSWORD: '' } });
    expect(noTty.status).toBe(2);
    expect(noTty.stderr).toContain('Standard input is not a terminal');
  });

  it('repeated failures from one address are slowed down, the delay growing; open sessions are not held', async () => {
    // A success first: the address starts afresh.
    const open = await connect(node.port, 'walship', SUPERUSER_PASSWORD);
    const durations: number[] = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      const started = performance.now();
      await rejection(connect(node.port, 'walship', `wrong-${attempt}`));
      durations.push(performance.now() - started);
    }
    // After n failures the next attempt waits 100 ms * 2^(n-1): 0, 100, 200, 400, 800 ms (the
    // measured time is that wait plus a login's own time, which varies on a loaded machine).
    const shown = durations.map((ms) => ms.toFixed(0)).join(', ');
    [0, 100, 200, 400, 800].forEach((waitMs, i) => expect(durations[i]!, shown).toBeGreaterThanOrEqual(waitMs - 30));
    expect(durations[3]! - durations[1]!, shown).toBeGreaterThan(150);
    expect(durations[4]! - durations[1]!, shown).toBeGreaterThan(500);
    // The next attempt waits 1.6 s; meanwhile a session already open is served at once.
    const slow = connect(node.port, 'walship', SUPERUSER_PASSWORD);
    const started = performance.now();
    expect((await open.get('auth:key'))?.value.toString()).toBe('v1');
    expect(performance.now() - started).toBeLessThan(500);
    const client = await slow;
    expect(performance.now() - started).toBeGreaterThan(1_000);
    await client.close();
    // That success forgot the failures.
    const fresh = performance.now();
    await rejection(connect(node.port, 'walship', 'wrong-again'));
    expect(performance.now() - fresh, shown).toBeLessThan(durations[3]!);
    await open.close();
    const last = await connect(node.port, 'walship', SUPERUSER_PASSWORD); // reset for the tests after
    await last.close();
  });

  it('a replication connection of a user without the replication right is refused', async () => {
    expect(walship(['user', 'add', '-D', node.dataDir, 'app', '--rights', 'read,write'], { env: { WALSHIP_PASSWORD: 'app-pw' } }).status).toBe(0);
    const target = path.join(path.dirname(node.dataDir), 'app-backup');
    const backup = walship(['basebackup', '--from', address(), '-D', target, '--port', '1'], asUser('app', 'app-pw'));
    expect(backup.status).not.toBe(0);
    expect(backup.stderr).toContain('permission denied to start WAL sender');
    expect(fs.existsSync(path.join(target, 'global'))).toBe(false);
    // The node's output is read between the CLI runs (spawnSync holds this process meanwhile).
    await waitFor('the refusal in the log', () => /replication connection from 127\.0\.0\.1:\d+: permission denied to start WAL sender/.test(node.log));
    const slot = walship(['slot', 'list', '--node', address()], asUser('app', 'app-pw'));
    expect(slot.status).toBe(1);
    expect(slot.stderr).toContain('permission denied to start WAL sender');
  });

  it('a standby made by basebackup as a replication user streams over SCRAM', async () => {
    expect(walship(['user', 'add', '-D', node.dataDir, 'replicator', '--rights', 'replication'], { env: { WALSHIP_PASSWORD: 'repl-pw' } }).status).toBe(0);
    const dir = path.join(path.dirname(node.dataDir), 'standby');
    const port = await freePort();
    const backup = walship(['basebackup', '--from', address(), '-D', dir, '--standby', '--port', String(port),
      '--set', 'application_name=scram-standby', '--set', 'wal_retrieve_retry_interval=100ms'], asUser('replicator', 'repl-pw'));
    expect(backup.status, backup.stderr).toBe(0);
    expect(walship(['show', '-D', dir, 'primary_conninfo']).stdout).toMatch(/user=replicator/);
    const standby = new TestNode(dir, port);
    try {
      await standby.start();
      const primary = await connect(node.port, 'walship', SUPERUSER_PASSWORD);
      const { lsn } = await primary.put('auth:streamed', 'over scram');
      await waitFor('the standby to stream as replicator', async () => {
        const status = (await primary.status()) as unknown as { replication: Array<{ applicationName: string; state: string }> };
        return status.replication.some((row) => row.applicationName === 'scram-standby' && row.state === 'streaming');
      });
      await primary.close();
      // The standby got the users with the base backup: the superuser logs in there too.
      const reader = await connect(standby.port, 'walship', SUPERUSER_PASSWORD);
      expect((await reader.get('auth:streamed', { minLsn: lsn }))?.value.toString()).toBe('over scram');
      await reader.close();
      expect(node.log).not.toMatch(/replication connection from .*password authentication failed for user "replicator"/);
    } finally {
      await standby.stop('SIGINT').catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * A stand-in for a node that does not know the user's verifier: it answers the SCRAM messages
 * with a salt of its own, then a server signature it cannot have computed (`final: 'wrong'`), or
 * skips the signature and says authOk (`final: 'none'`).
 */
async function impostor(final: 'wrong' | 'none'): Promise<{ port: number; close: () => Promise<void> }> {
  const port = await freePort();
  const server = new WebSocketServer({ port, host: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  server.on('connection', (socket: WebSocket, request) => {
    const replication = request.url === '/replication';
    const send = (message: ServerMessage) => socket.send(replication ? encodeReplicationMessage(message as never) : encodeMessage(message));
    socket.on('message', (data: Buffer) => {
      const message = (replication ? decodeReplicationFrame(data, 'sender') : decodeClientMessage(data)) as ClientMessage;
      if (message.type === 'startup') send({ type: 'authRequest', method: 'scram-sha-256' });
      else if (message.type === 'saslInitialResponse') {
        const clientNonce = /r=([^,]+)/.exec(message.data)![1]!;
        send({ type: 'saslContinue', data: `r=${clientNonce}${randomBytes(18).toString('base64')},s=${randomBytes(16).toString('base64')},i=4096` });
      } else if (message.type === 'saslResponse') {
        if (final === 'wrong') send({ type: 'saslFinal', data: `v=${randomBytes(32).toString('base64')}` });
        send({ type: 'authOk', serverVersion: '1', member: 'impostor', role: 'primary' });
      }
    });
  });
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('the client checks the server\'s SCRAM signature (stand-in server: an impostor cannot be made from a real node)', () => {
  it('refuses a wrong server signature, and an authOk without one, on client and replication connections', async () => {
    for (const final of ['wrong', 'none'] as const) {
      const fake = await impostor(final);
      try {
        const client = await rejection(WalshipClient.connect({ port: fake.port, user: 'walship', password: 'whatever', timeoutMs: 10_000 }));
        const replication = await rejection(ReplicationConnection.connect({ host: '127.0.0.1', port: fake.port, user: 'walship', password: 'whatever', applicationName: 't', timeoutMs: 10_000 }));
        if (final === 'wrong') {
          expect(client).toMatchObject({ code: 'invalid_password', message: 'incorrect server signature' });
          expect(replication.message).toBe('incorrect server signature');
        } else {
          expect(client.message).toBe('server accepted the connection without completing SCRAM authentication');
          expect(replication.message).toBe('the upstream accepted the connection without completing SCRAM authentication');
        }
      } finally {
        await fake.close();
      }
    }
  });
});
