/**
 * The real listener and sessions on port 0, driven by the real client library. The Backend here
 * is a STAND-IN (an in-memory Map with hooks to fail on purpose), not the postmaster: it checks
 * what the session layer does with the Backend's answers, not what a node stores.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { asLsn, ErrorCode, WalshipError } from '@walship/engine';
import type { CommitWaitOptions, Entry, Lsn, LogLevel, RangeOptions, RangeResult, TxnRequest, TxnResult } from '@walship/engine';
import { WalshipClient, WalshipClientError } from '@walship/client';
import { buildScramVerifier, decodeServerMessage, encodeMessage, formatScramVerifier } from '@walship/protocol';
import type { ServerMessage, WaitLsnMode, WaitLsnStatus } from '@walship/protocol';
import { AuthThrottle } from './auth/auth-throttle.js';
import { emptyUsersFile, UsersFileCache, writeUsersFile } from './auth/users-file.js';
import type { Backend, NodeStatus, ServerState } from './backend.js';
import { startListener } from './listener.js';
import type { Listener, ListenerOptions } from './listener.js';

/** A stand-in Backend: one Map per table, revisions from a counter. */
class FakeBackend implements Backend {
  currentState: ServerState = 'ready';
  tables = new Map<string, Map<string, Entry>>([['default', new Map()]]);
  settings = new Map<string, string>([['synchronous_commit', 'on']]);
  lsn = 0x1000;
  /** Set to make the next call of that name throw this. */
  failNext: { method: string; error: unknown } | null = null;
  running = 0;
  mostRunning = 0;
  gate: Promise<void> | null = null;
  /** The wait options of the last txn: what the session derived from the request and itself. */
  lastCommitWait: CommitWaitOptions | null = null;

  state(): ServerState {
    return this.currentState;
  }
  memberName(): string {
    return 'fake-node';
  }
  role(): 'primary' | 'standby' {
    if (this.failNext?.method === 'role') {
      const { error } = this.failNext;
      this.failNext = null;
      throw error;
    }
    return 'primary';
  }
  private async enter(method: string): Promise<void> {
    if (this.failNext?.method === method) {
      const { error } = this.failNext;
      this.failNext = null;
      throw error;
    }
    this.running++;
    this.mostRunning = Math.max(this.mostRunning, this.running);
    try {
      if (this.gate !== null) await this.gate;
    } finally {
      this.running--;
    }
  }
  private table(name: string | undefined): Map<string, Entry> {
    const table = this.tables.get(name ?? 'default');
    if (table === undefined) {
      throw new WalshipError(ErrorCode.tableNotFound, `table "${name}" does not exist`, { hint: 'Create it with createTable.' });
    }
    return table;
  }
  async get(table: string | undefined, key: Buffer, options: { minLsn?: Lsn }): Promise<Entry | null> {
    await this.enter('get');
    if (options.minLsn !== undefined && options.minLsn > this.lsn) {
      throw new WalshipError(ErrorCode.timeout, 'timed out waiting for replay', { detail: `minLsn ${options.minLsn}` });
    }
    return this.table(table).get(key.toString('hex')) ?? null;
  }
  async range(options: RangeOptions): Promise<RangeResult> {
    await this.enter('range');
    const start = options.prefix ?? options.start ?? Buffer.alloc(0);
    const entries = [...this.table(options.table).values()]
      .filter((entry) => entry.key.compare(start) >= 0)
      .filter((entry) => (options.end === undefined ? true : entry.key.compare(options.end) < 0))
      .filter((entry) => (options.prefix === undefined ? true : entry.key.subarray(0, options.prefix.length).equals(options.prefix)))
      .sort((a, b) => a.key.compare(b.key));
    const limit = options.limit ?? entries.length;
    return { entries: entries.slice(0, limit), more: entries.length > limit };
  }
  async txn(request: TxnRequest, wait: CommitWaitOptions = {}): Promise<TxnResult> {
    this.lastCommitWait = wait;
    await this.enter('txn');
    this.lsn += 0x40;
    const lsn = asLsn(this.lsn);
    const holds = (request.compares ?? []).every((compare) => {
      const entry = this.table(compare.table).get(compare.key.toString('hex'));
      if (compare.kind === 'exists') return (entry !== undefined) === compare.exists;
      if (compare.kind === 'value') return (entry?.value.equals(compare.value) ?? false) === (compare.op === 'eq');
      return entry !== undefined && compare.op === 'eq' && entry.revision === compare.revision;
    });
    const counts = ((holds ? request.onSuccess : request.onFailure) ?? []).map((operation) => {
      const table = this.table(operation.table);
      if (operation.kind === 'put') {
        table.set(operation.key.toString('hex'), { key: operation.key, value: operation.value, revision: lsn });
        return 1;
      }
      if (operation.kind === 'delete') return table.delete(operation.key.toString('hex')) ? 1 : 0;
      let deleted = 0;
      for (const [hex, entry] of table) {
        if (entry.key.compare(operation.start) >= 0 && entry.key.compare(operation.end) < 0) deleted += table.delete(hex) ? 1 : 0;
      }
      return deleted;
    });
    return { succeeded: holds, lsn, timeline: 1, member: 'fake-node', counts };
  }
  async createTable(name: string): Promise<{ created: boolean; lsn: Lsn }> {
    await this.enter('createTable');
    const created = !this.tables.has(name);
    if (created) this.tables.set(name, new Map());
    return { created, lsn: asLsn(this.lsn) };
  }
  async listTables(): Promise<string[]> {
    await this.enter('listTables');
    return [...this.tables.keys()];
  }
  async status(): Promise<NodeStatus> {
    await this.enter('status');
    return {
      role: 'primary',
      systemId: '7300000000000000001',
      timeline: 1,
      insertLsn: '0/1000',
      flushLsn: '0/1000',
      receiveLsn: null,
      replayLsn: null,
      lastCheckpointLsn: '0/800',
      replication: [],
      walReceiver: null,
    };
  }
  async waitLsn(lsn: Lsn, mode: WaitLsnMode, options: { timeoutMs?: number; noThrow?: boolean }): Promise<{ status: WaitLsnStatus; lsn: Lsn }> {
    await this.enter('waitLsn');
    if (lsn <= this.lsn) return { status: 'success', lsn: asLsn(this.lsn) };
    if (options.noThrow === true) return { status: 'timeout', lsn: asLsn(this.lsn) };
    throw new WalshipError(ErrorCode.timeout, `timed out while waiting for target LSN in ${mode}`);
  }
  async checkpoint(): Promise<{ lsn: Lsn; redoLsn: Lsn }> {
    await this.enter('checkpoint');
    return { lsn: asLsn(0x2000), redoLsn: asLsn(0x1ff0) };
  }
  async promote(): Promise<{ promoted: boolean; timeline: number }> {
    await this.enter('promote');
    return { promoted: true, timeline: 2 };
  }
  async setSetting(name: string, value: string): Promise<{ restartRequired: boolean }> {
    await this.enter('setSetting');
    this.settings.set(name, value);
    return { restartRequired: name === 'port' };
  }
  async showSetting(name: string): Promise<string> {
    await this.enter('showSetting');
    const value = this.settings.get(name);
    if (value === undefined) throw new WalshipError(ErrorCode.unknownSetting, `unrecognized configuration parameter "${name}"`);
    return value;
  }
  metrics(): string {
    return '# HELP walship_up Whether the node is up.\n# TYPE walship_up gauge\nwalship_up 1\n';
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Harness {
  backend: FakeBackend;
  listener: Listener;
  logs: string[];
  connect(options?: Partial<Parameters<typeof WalshipClient.connect>[0]>): Promise<WalshipClient>;
}

async function start(options: Partial<ListenerOptions> = {}): Promise<Harness> {
  const backend = new FakeBackend();
  const logs: string[] = [];
  const listener = await startListener({
    port: 0,
    backend,
    auth: {},
    log: (level: LogLevel, message: string) => logs.push(`${level}: ${message}`),
    ...options,
  });
  cleanups.push(() => listener.close());
  return {
    backend,
    listener,
    logs,
    async connect(connectOptions = {}) {
      const client = await WalshipClient.connect({ port: listener.port, timeoutMs: 5000, ...connectOptions });
      cleanups.push(() => client.close());
      return client;
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<WalshipClientError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(WalshipClientError);
    return error as WalshipClientError;
  }
  throw new Error('expected the call to fail');
}

function httpGet(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, type: String(response.headers['content-type']), body }));
      })
      .on('error', reject);
  });
}

/** A raw WebSocket on /client that collects what the server sends, for protocol abuse tests. */
async function rawSocket(port: number, path = '/client'): Promise<{ socket: WebSocket; messages: ServerMessage[]; closed: Promise<number> }> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  const messages: ServerMessage[] = [];
  socket.on('message', (data) => messages.push(decodeServerMessage(data)));
  const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return { socket, messages, closed };
}

describe('listener and sessions with the real client', () => {
  it('round-trips every request type', async () => {
    const { connect, logs, backend } = await start();
    const client = await connect({ applicationName: 'roundtrip' });
    expect(client.serverInfo).toEqual({ serverVersion: '0.1.0', member: 'fake-node', role: 'primary' });
    expect(logs.some((line) => line.includes('connection authorized') && line.includes('application_name=roundtrip'))).toBe(true);

    const put = await client.put('a', 'one');
    expect(put).toMatchObject({ succeeded: true, timeline: 1, member: 'fake-node', counts: [1] });
    await client.put(Buffer.from('b'), Buffer.from([0xff, 0x00]));
    await client.put('c', 'three');
    const entry = await client.get('a');
    expect(entry?.value.toString()).toBe('one');
    expect(entry?.revision).toBe(put.lsn);
    expect(await client.get('zzz')).toBeNull();

    const range = await client.range({ start: 'a', end: 'c' });
    expect(range.entries.map((e) => e.key.toString())).toEqual(['a', 'b']);
    expect(range.entries[1]?.value).toEqual(Buffer.from([0xff, 0x00]));
    expect((await client.range({ limit: 1 })).more).toBe(true);
    expect((await client.range({ prefix: 'c' })).entries).toHaveLength(1);

    const swapped = await client.txn({
      compares: [{ kind: 'revision', key: 'a', op: 'eq', revision: put.lsn }],
      onSuccess: [{ kind: 'put', key: 'a', value: 'uno' }],
      onFailure: [{ kind: 'delete', key: 'a' }],
    });
    expect(swapped.succeeded).toBe(true);
    expect((await client.get('a'))?.value.toString()).toBe('uno');

    expect((await client.del('a')).deleted).toBe(1);
    expect((await client.deleteRange('a', 'z')).deleted).toBe(2);

    expect(await client.createTable('users')).toMatchObject({ created: true });
    await client.put('u1', 'x', { table: 'users' });
    expect((await client.get('u1', { table: 'users' }))?.value.toString()).toBe('x');
    expect(await client.listTables()).toEqual(['default', 'users']);
    expect(await client.status()).toMatchObject({ role: 'primary', systemId: '7300000000000000001', replayLsn: null, replication: [] });
    expect(await client.checkpoint()).toEqual({ lsn: 0x2000, redoLsn: 0x1ff0 });
    expect(await client.setSetting('synchronous_commit', 'local')).toEqual({ restartRequired: false });
    expect(await client.showSetting('synchronous_commit')).toBe('local');
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
    expect((await client.load([['k1', 'v1'], ['k2', 'v2']], { concurrency: 2 })).count).toBe(2);
    expect(await client.waitForLsn(0x10, { mode: 'standby_flush' })).toEqual({ status: 'success', lsn: backend.lsn });
    expect(await client.waitForLsn('F/0', { noThrow: true, timeoutMs: 100 })).toMatchObject({ status: 'timeout' });
  });

  it('gives a txn the session\'s deadline and lifetime, ends them with the session, and passes a commit LSN in errors', async () => {
    const { connect, backend } = await start();
    const client = await connect();
    const before = Date.now();
    await client.put('k', 'v', { timeoutMs: 10_000 });
    const wait = backend.lastCommitWait!;
    expect(wait.deadlineMs).toBeGreaterThanOrEqual(before + 9_750 - 50);
    expect(wait.deadlineMs).toBeLessThanOrEqual(Date.now() + 9_750);
    expect(wait.signal?.aborted).toBe(false);
    await client.put('k', 'v', { timeoutMs: Infinity });
    expect(backend.lastCommitWait!.deadlineMs).toBeUndefined();
    backend.failNext = { method: 'txn', error: new WalshipError(ErrorCode.indeterminate, 'canceling wait for synchronous replication due to user request', { lsn: 0x3000060 }) };
    const failure = await rejection(client.put('k', 'v'));
    expect(failure).toMatchObject({ code: 'indeterminate', lsn: 0x3000060 });
    const signal = backend.lastCommitWait!.signal!;
    await client.close();
    for (let i = 0; i < 200 && !signal.aborted; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(signal.reason).toBe('client');
  });

  it('sends Backend errors back with their code, detail and hint, and survives unexpected exceptions', async () => {
    const { connect, backend, logs } = await start();
    const client = await connect();
    const missing = await rejection(client.get('k', { table: 'nope' }));
    expect(missing).toMatchObject({ code: 'table_not_found', message: 'table "nope" does not exist', hint: 'Create it with createTable.' });
    expect((await rejection(client.showSetting('bogus'))).code).toBe('unknown_setting');
    expect((await rejection(client.get('k', { minLsn: '9/0', timeoutMs: 2000 }))).code).toBe('timeout');

    backend.failNext = { method: 'get', error: new TypeError('cannot read properties of undefined') };
    const internal = await rejection(client.get('k'));
    expect(internal.code).toBe('internal_error');
    expect(logs.some((line) => line.startsWith('ERROR: get failed: TypeError'))).toBe(true);
    // The session and the node go on.
    expect(await client.get('k')).toBeNull();
  });

  it('refuses a wrong or missing password, and accepts the right one', async () => {
    const { connect, logs, listener } = await start({ auth: { password: 's3cret' } });
    const wrong = await rejection(connect({ user: 'alice', password: 'guess' }));
    expect(wrong).toMatchObject({ code: 'invalid_password', message: 'password authentication failed for user "alice"', severity: 'FATAL' });
    expect(logs.some((line) => line.includes('password authentication failed for user "alice"') && line.includes('host=127.0.0.1'))).toBe(true);

    const none = await rejection(connect({ user: 'alice' }));
    expect(none).toMatchObject({ code: 'invalid_password', message: 'no password supplied' });

    const client = await connect({ user: 'alice', password: 's3cret' });
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
    const prompted = await connect({ password: () => 's3cret' });
    expect(await prompted.listTables()).toEqual(['default']);
    expect(listener.sessionCount()).toBe(2);
  });

  it('SCRAM-SHA-256: users of the users file with their rights; failures slow the address down', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'walship-listener-scram-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const users = emptyUsersFile();
    users.users.set('reader', { rights: ['read'], verifier: formatScramVerifier(buildScramVerifier('r-pw', { iterations: 32 })) });
    writeUsersFile(dir, users);
    const throttle = new AuthThrottle({ baseDelayMs: 200 });
    const { connect, logs } = await start({ auth: { method: 'scram-sha-256', password: 'ignored', users: new UsersFileCache(dir), throttle } });
    const reader = await connect({ user: 'reader', password: 'r-pw' });
    expect(await reader.get('k')).toBeNull();
    expect(await rejection(reader.put('k', 'v'))).toMatchObject({ code: 'insufficient_privilege', message: 'permission denied to write', severity: 'ERROR' });
    expect(await rejection(reader.showSetting('password'))).toMatchObject({ code: 'insufficient_privilege', message: 'permission denied to show this setting' });
    expect(await reader.ping()).toBeGreaterThanOrEqual(0);
    // The legacy password setting is not used, and loopback is not trusted.
    expect(await rejection(connect({ user: 'reader', password: 'ignored' }))).toMatchObject({ code: 'invalid_password' });
    expect(logs.some((line) => line.startsWith('DETAIL: Password does not match for user "reader".'))).toBe(true);
    // One failure so far: the next attempt waits 200 ms, and an open session is served meanwhile.
    const started = Date.now();
    let settled = false;
    const waiting = rejection(connect({ user: 'nobody', password: 'x' })).finally(() => (settled = true));
    expect(await reader.get('k')).toBeNull();
    expect(settled).toBe(false);
    expect(await waiting).toMatchObject({ message: 'password authentication failed for user "nobody"' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(throttle.failures('127.0.0.1', Date.now())).toBe(2);
    expect(await rejection(connect({ user: 'reader' }))).toMatchObject({ message: 'no password supplied' });
  });

  it('refuses sessions while the node is not ready', async () => {
    const { connect, backend } = await start();
    const cases: [ServerState, string][] = [
      ['starting', 'the database system is starting up'],
      ['stopping', 'the database system is shutting down'],
      ['recovery', 'the database system is in recovery mode'],
    ];
    for (const [state, message] of cases) {
      backend.currentState = state;
      expect(await rejection(connect())).toMatchObject({ code: 'cannot_connect_now', message });
    }
  });

  it('refuses a session with the backend\'s error when the node cannot say its role, and takes the next one', async () => {
    const { connect, backend } = await start();
    backend.failNext = { method: 'role', error: new WalshipError(ErrorCode.cannotConnectNow, 'the database system is shutting down', { severity: 'FATAL' }) };
    expect(await rejection(connect())).toMatchObject({ code: 'cannot_connect_now', message: 'the database system is shutting down' });
    const client = await connect();
    expect(await client.status()).toMatchObject({ role: 'primary' });
    await client.close();
  });

  it('answers a malformed frame with protocol_violation, closes that session only', async () => {
    const { connect, listener, logs } = await start();
    const client = await connect();
    await client.put('k', 'v');

    const bad = await rawSocket(listener.port);
    bad.socket.send(Buffer.from([0xde, 0xad, 0xbe, 0xef]));
    expect(await bad.closed).toBe(1002);
    expect(bad.messages).toEqual([expect.objectContaining({ type: 'error', code: 'protocol_violation', severity: 'FATAL' })]);
    expect(logs.some((line) => line.startsWith('FATAL: invalid frame'))).toBe(true);

    // A valid startup, then a request with a key of the wrong type.
    const sneaky = await rawSocket(listener.port);
    sneaky.socket.send(encodeMessage({ type: 'startup', protocolVersion: 1 }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    sneaky.socket.send(Buffer.from([0x83, 0xa4, ...Buffer.from('type'), 0xa3, ...Buffer.from('get'), 0xa2, ...Buffer.from('id'), 0x01, 0xa3, ...Buffer.from('key'), 0x05]));
    expect(await sneaky.closed).toBe(1002);
    expect(sneaky.messages.map((m) => m.type)).toEqual(['authOk', 'error']);
    expect(sneaky.messages[1]).toMatchObject({ code: 'protocol_violation', message: expect.stringContaining('get.key must be binary') });

    // Text frames and requests before startup are violations too.
    const text = await rawSocket(listener.port);
    text.socket.send('{"type":"startup"}');
    expect(await text.closed).toBe(1002);
    const early = await rawSocket(listener.port);
    early.socket.send(encodeMessage({ type: 'ping', id: 1 }));
    expect(await early.closed).toBe(1002);
    expect(early.messages[0]).toMatchObject({ message: 'expected a startup message, got "ping"' });

    // The first client never noticed; new clients are welcome.
    expect((await client.get('k'))?.value.toString()).toBe('v');
    const another = await connect();
    expect((await another.get('k'))?.value.toString()).toBe('v');
  });

  it('refuses sessions beyond maxConnections with too_many_connections', async () => {
    const { connect } = await start({ maxConnections: 1 });
    const first = await connect();
    expect(await rejection(connect())).toMatchObject({ code: 'too_many_connections', message: 'sorry, too many clients already' });
    expect(await first.ping()).toBeGreaterThanOrEqual(0);
  });

  it('refuses an unsupported protocol version and unknown upgrade paths', async () => {
    const { listener } = await start();
    const old = await rawSocket(listener.port);
    old.socket.send(encodeMessage({ type: 'startup', protocolVersion: 99 }));
    await old.closed;
    expect(old.messages[0]).toMatchObject({ code: 'protocol_violation', message: 'unsupported frontend protocol 99: server supports 1 to 1' });
    await expect(rawSocket(listener.port, '/replication')).rejects.toThrow(/404/);
  });

  it('serves /healthz and /metrics as plain HTTP', async () => {
    const { listener, backend } = await start();
    const healthy = await httpGet(listener.port, '/healthz');
    expect(healthy.status).toBe(200);
    expect(JSON.parse(healthy.body)).toMatchObject({ status: 'ok', state: 'ready' });
    backend.currentState = 'starting';
    const starting = await httpGet(listener.port, '/healthz?verbose=1');
    expect(starting.status).toBe(503);
    expect(JSON.parse(starting.body)).toMatchObject({ state: 'starting' });
    const metrics = await httpGet(listener.port, '/metrics');
    expect(metrics.status).toBe(200);
    expect(metrics.type).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(metrics.body).toContain('walship_up 1');
    expect((await httpGet(listener.port, '/nope')).status).toBe(404);
  });

  it('rejects a port in use with port_in_use and a hint', async () => {
    const { listener } = await start();
    try {
      await startListener({ port: listener.port, backend: new FakeBackend(), auth: {}, log: () => {} });
      throw new Error('expected the second listener to fail');
    } catch (error) {
      expect(error).toBeInstanceOf(WalshipError);
      const failure = error as WalshipError;
      expect(failure.code).toBe('port_in_use');
      expect(failure.message).toBe('could not bind IPv4 address "127.0.0.1": address already in use');
      expect(failure.hint).toBe(`Is another node already running on port ${listener.port}? Choose another port with --port or the port setting.`);
    }
  });

  it('bounds the requests a session executes at once', async () => {
    const { connect, backend } = await start();
    const client = await connect();
    let release = (): void => {};
    backend.gate = new Promise<void>((resolve) => (release = resolve));
    const gets = Array.from({ length: 600 }, (_, i) => client.get(`k${i}`, { timeoutMs: 20_000 }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(backend.running).toBeLessThanOrEqual(256);
    backend.gate = null;
    release();
    await Promise.all(gets);
    expect(backend.mostRunning).toBeLessThanOrEqual(256);
  });

  it('bounds the requests a session executes at once even when a client pipelines past the limit', async () => {
    const { listener, backend } = await start();
    const raw = await rawSocket(listener.port);
    raw.socket.send(encodeMessage({ type: 'startup', protocolVersion: 1 }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    let release = (): void => {};
    backend.gate = new Promise<void>((resolve) => (release = resolve));
    const total = 2000;
    for (let id = 1; id <= total; id++) raw.socket.send(encodeMessage({ type: 'get', id, key: Buffer.from(`k${id}`) }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(backend.running).toBe(256);
    backend.gate = null;
    release();
    for (let i = 0; i < 100 && raw.messages.length < total + 1; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(raw.messages.filter((m) => m.type === 'result')).toHaveLength(total);
    expect(backend.mostRunning).toBe(256);
    raw.socket.close();
  });

  it('ends sessions on closeAllSessions and close(), failing in-flight writes as indeterminate', async () => {
    const { connect, listener, backend } = await start();
    const client = await connect();
    let release = (): void => {};
    backend.gate = new Promise<void>((resolve) => (release = resolve));
    const write = rejection(client.put('k', 'v'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const waiting = listener.waitForSessionsToEnd();
    listener.closeAllSessions();
    const error = await write;
    expect(error.code).toBe('indeterminate');
    expect(error.detail).toBe('terminating connection due to administrator command');
    await waiting;
    expect(listener.sessionCount()).toBe(0);
    release();
    await listener.close();
    await expect(httpGet(listener.port, '/healthz')).rejects.toThrow();
  });
});
