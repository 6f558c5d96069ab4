/**
 * The client library's own logic — timeouts, indeterminate writes, lost connections, reconnects,
 * pipelining bounds — against a small in-test WebSocket server. The fake server is a STAND-IN
 * speaking the real protocol codec, not a node: the real listener with the real client is tested
 * in packages/server/src/listener.test.ts.
 */
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { decodeClientMessage, encodeMessage, MAX_IN_FLIGHT_REQUESTS, MAX_REQUEST_TIMEOUT_MS } from '@walship/protocol';
import type { ClientMessage, ClientRequest, ServerMessage } from '@walship/protocol';
import { MAX_KEY_BYTES } from '@walship/engine';
import { WalshipClient } from './client.js';
import { WalshipClientError } from './client-error.js';

type Answer = ServerMessage | 'hang' | 'drop' | Promise<ServerMessage | 'hang' | 'drop'>;

interface FakeServer {
  port: number;
  connections: number;
  received: ClientMessage[];
  sockets: Set<WebSocket>;
  /** How the fake answers `startup` (default authOk). */
  onStartup: (message: ClientMessage, socket: WebSocket) => ServerMessage | ServerMessage[] | 'hang';
  /** How the fake answers each request (default: a small key-value store). */
  onRequest: (request: ClientRequest) => Answer;
  close(): Promise<void>;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function authOk(): ServerMessage {
  return { type: 'authOk', serverVersion: 'fake', member: 'fake1', role: 'primary' };
}

/** A stand-in for a node: the real codec, a Map for data, and hooks to misbehave on purpose. */
async function startFakeServer(port = 0): Promise<FakeServer> {
  const store = new Map<string, Buffer>();
  let lsn = 0x100;
  const wss = new WebSocketServer({ port, host: '127.0.0.1', path: '/client' });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const fake: FakeServer = {
    port: (wss.address() as AddressInfo).port,
    connections: 0,
    received: [],
    sockets: new Set(),
    onStartup: () => authOk(),
    onRequest: (request) => {
      const id = request.id;
      switch (request.type) {
        case 'get': {
          const value = store.get(request.key.toString('hex'));
          return { type: 'result', id, request: 'get', entry: value === undefined ? null : { key: request.key, value, revision: '0/100' } };
        }
        case 'txn': {
          const counts = (request.onSuccess ?? []).map((operation) => {
            if (operation.kind === 'put') store.set(operation.key.toString('hex'), operation.value);
            if (operation.kind === 'delete') return store.delete(operation.key.toString('hex')) ? 1 : 0;
            return 1;
          });
          lsn += 0x10;
          return { type: 'result', id, request: 'txn', succeeded: true, lsn: `0/${lsn.toString(16).toUpperCase()}`, timeline: 1, member: 'fake1', counts };
        }
        case 'ping':
          return { type: 'result', id, request: 'ping' };
        default:
          return { type: 'error', id, code: 'feature_not_supported', message: `fake cannot ${request.type}`, severity: 'ERROR' };
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of fake.sockets) socket.terminate();
        wss.close(() => resolve());
      }),
  };
  wss.on('connection', (socket) => {
    fake.connections++;
    fake.sockets.add(socket);
    socket.on('close', () => fake.sockets.delete(socket));
    let authenticated = false;
    socket.on('message', (data) => {
      const message = decodeClientMessage(data);
      fake.received.push(message);
      if (!authenticated) {
        const answer = fake.onStartup(message, socket);
        if (answer === 'hang') return;
        for (const reply of Array.isArray(answer) ? answer : [answer]) {
          socket.send(encodeMessage(reply));
          if (reply.type === 'authOk') authenticated = true;
          if (reply.type === 'error') socket.close();
        }
        return;
      }
      void Promise.resolve(fake.onRequest(message as ClientRequest)).then((answer) => {
        if (answer === 'hang') return;
        if (answer === 'drop') socket.terminate();
        else if (socket.readyState === socket.OPEN) socket.send(encodeMessage(answer));
      });
    });
  });
  cleanups.push(() => fake.close());
  return fake;
}

async function connect(fake: FakeServer, options: Partial<Parameters<typeof WalshipClient.connect>[0]> = {}): Promise<WalshipClient> {
  const client = await WalshipClient.connect({ host: '127.0.0.1', port: fake.port, ...options });
  cleanups.push(() => client.close());
  return client;
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

async function freePort(): Promise<number> {
  const fake = await startFakeServer();
  const port = fake.port;
  await fake.close();
  return port;
}

describe('WalshipClient against a stand-in server', () => {
  it('round-trips puts and gets with strings and Buffers', async () => {
    const fake = await startFakeServer();
    const client = await connect(fake, { applicationName: 'test-app', user: 'alice' });
    expect(client.serverInfo).toEqual({ serverVersion: 'fake', member: 'fake1', role: 'primary' });
    expect(fake.received[0]).toEqual({ type: 'startup', protocolVersion: 1, user: 'alice', applicationName: 'test-app' });
    const put = await client.put('k', Buffer.from([0, 1, 2]));
    expect(put).toMatchObject({ succeeded: true, timeline: 1, member: 'fake1', counts: [1] });
    expect(typeof put.lsn).toBe('number');
    const entry = await client.get(Buffer.from('k'));
    expect(entry?.value).toEqual(Buffer.from([0, 1, 2]));
    expect(entry?.revision).toBe(0x100);
    expect(await client.get('missing')).toBeNull();
    expect((await client.del('k')).deleted).toBe(1);
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
  });

  it('turns server errors into WalshipClientErrors with their code, detail and hint', async () => {
    const fake = await startFakeServer();
    fake.onRequest = (request) => ({
      type: 'error',
      id: request.id,
      code: 'read_only_transaction',
      message: 'cannot execute put in a read-only transaction',
      detail: 'This node is a standby.',
      hint: 'Send writes to the primary.',
      severity: 'ERROR',
    });
    const client = await connect(fake);
    const error = await rejection(client.put('a', 'b'));
    expect(error).toMatchObject({ code: 'read_only_transaction', detail: 'This node is a standby.', hint: 'Send writes to the primary.' });
    expect(error.describe()).toContain('HINT:  Send writes to the primary.');
  });

  it('times out a read with code timeout and a write with code indeterminate, then keeps working', async () => {
    const fake = await startFakeServer();
    const original = fake.onRequest;
    let hang = true;
    fake.onRequest = (request) => (hang ? 'hang' : original(request));
    const client = await connect(fake);
    const read = await rejection(client.get('k', { timeoutMs: 50 }));
    expect(read.code).toBe('timeout');
    const write = await rejection(client.put('k', 'v', { timeoutMs: 50 }));
    expect(write.code).toBe('indeterminate');
    expect(write.message).toContain('may or may not have been committed');
    expect(write.indeterminate).toBe(true);
    hang = false;
    expect(await client.get('k')).toBeNull();
  });

  it('fails sent writes as indeterminate and reads as connection_lost when the connection drops', async () => {
    const fake = await startFakeServer();
    const client = await connect(fake);
    fake.onRequest = (request) => (request.type === 'get' ? 'hang' : 'drop');
    const read = client.get('k');
    const write = client.put('k', 'v');
    expect((await rejection(write)).code).toBe('indeterminate');
    expect((await rejection(read)).code).toBe('connection_lost');
    // Without reconnect, the client stays down and says so at once.
    const after = await rejection(client.get('k'));
    expect(after.code).toBe('connection_lost');
    expect(client.state).toBe('disconnected');
  });

  it('reconnects with backoff and sends queued requests once back', async () => {
    const fake = await startFakeServer();
    const client = await connect(fake, { reconnect: true, reconnectMaxDelayMs: 50 });
    for (const socket of fake.sockets) socket.terminate();
    for (let i = 0; i < 100 && client.state === 'ready'; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(client.state).toBe('reconnecting');
    // Queued while reconnecting; sent on the new connection.
    expect(await client.put('k', 'v', { timeoutMs: 5000 })).toMatchObject({ succeeded: true });
    expect(client.state).toBe('ready');
    expect(fake.connections).toBe(2);
  });

  it('waits for a node that is not up yet when reconnect is on', async () => {
    const port = await freePort();
    const connecting = WalshipClient.connect({ host: '127.0.0.1', port, reconnect: true, timeoutMs: 10_000, reconnectMaxDelayMs: 100 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await startFakeServer(port);
    const client = await connecting;
    cleanups.push(() => client.close());
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
  });

  it('reports a refused connection as connection_failure', async () => {
    const port = await freePort();
    const error = await rejection(WalshipClient.connect({ host: 'localhost', port, timeoutMs: 2000 }));
    expect(error.code).toBe('connection_failure');
    expect(error.message).toContain('connection refused');
    expect(error.hint).toBeDefined();
  });

  it('reports an authentication error from the server and does not retry it', async () => {
    const fake = await startFakeServer();
    fake.onStartup = () => ({
      type: 'error',
      code: 'invalid_password',
      message: 'password authentication failed for user "walship"',
      severity: 'FATAL',
    });
    const error = await rejection(WalshipClient.connect({ port: fake.port, password: 'nope', reconnect: true, timeoutMs: 5000 }));
    expect(error).toMatchObject({ code: 'invalid_password', message: 'password authentication failed for user "walship"' });
    expect(fake.connections).toBe(1);
  });

  it('answers a password request with the password callback, or fails without one', async () => {
    const fake = await startFakeServer();
    fake.onStartup = (message) => (message.type === 'password' ? authOk() : { type: 'authRequest', method: 'password' });
    const error = await rejection(WalshipClient.connect({ port: fake.port }));
    expect(error).toMatchObject({ code: 'invalid_password', message: 'no password supplied' });
    const client = await connect(fake, { password: async () => 'typed' });
    expect(fake.received.at(-1)).toEqual({ type: 'password', password: 'typed' });
    expect(client.state).toBe('ready');
  });

  it('refuses bad arguments before sending anything', async () => {
    const fake = await startFakeServer();
    const client = await connect(fake);
    const sent = fake.received.length;
    expect((await rejection(client.get(Buffer.alloc(MAX_KEY_BYTES + 1)))).code).toBe('key_too_large');
    expect((await rejection(client.get('k', { minLsn: 'not-an-lsn' }))).code).toBe('invalid_parameter_value');
    expect((await rejection(client.get('k', { table: 'x'.repeat(100) }))).code).toBe('invalid_parameter_value');
    expect(fake.received.length).toBe(sent);
  });

  it('sends minLsn as X/X with a server wait below the call timeout', async () => {
    const fake = await startFakeServer();
    const client = await connect(fake);
    await client.get('k', { minLsn: 0x16b3748, timeoutMs: 2000 });
    expect(fake.received.at(-1)).toMatchObject({ type: 'get', minLsn: '0/16B3748', timeoutMs: 1750 });
    // "Wait as long as it takes" (the CLI without --timeout): no client timer, a bounded server wait.
    await client.get('k', { minLsn: '0/10', timeoutMs: Infinity });
    expect(fake.received.at(-1)).toMatchObject({ type: 'get', minLsn: '0/10', timeoutMs: MAX_REQUEST_TIMEOUT_MS });
  });

  it('asks the node to end a wait for synchronous standbys before the call times out, and keeps the LSN of its error', async () => {
    const fake = await startFakeServer();
    const client = await connect(fake);
    await client.put('k', 'v', { timeoutMs: 2000 });
    expect(fake.received.at(-1)).toMatchObject({ type: 'txn', timeoutMs: 1750 });
    await client.put('k', 'v', { timeoutMs: Infinity });
    expect(fake.received.at(-1)).not.toHaveProperty('timeoutMs');
    fake.onRequest = (request) => ({
      type: 'error', id: request.id, code: 'indeterminate', message: 'canceling wait for synchronous replication due to user request',
      detail: 'The transaction has already committed locally at 0/3000060, but might not have been replicated to the standby.', severity: 'ERROR', lsn: '0/3000060',
    });
    const error = await rejection(client.put('k', 'v'));
    expect(error).toBeInstanceOf(WalshipClientError);
    expect(error.indeterminate).toBe(true);
    expect(error.lsn).toBe(0x3000060);
  });

  it('waitForLsn sends WAIT FOR LSN with its mode and a node wait below the call timeout', async () => {
    const fake = await startFakeServer();
    const client = await connect(fake);
    fake.onRequest = (request) => (request.type === 'waitLsn'
      ? { type: 'result', id: request.id, request: 'waitLsn', status: 'success', lsn: '0/200' }
      : { type: 'error', id: request.id, code: 'x', message: 'x', severity: 'ERROR' });
    expect(await client.waitForLsn('0/180', { mode: 'standby_flush', timeoutMs: 1000 })).toEqual({ status: 'success', lsn: 0x200 });
    expect(fake.received.at(-1)).toMatchObject({ type: 'waitLsn', lsn: '0/180', mode: 'standby_flush', timeoutMs: 1000 });
    await client.waitForLsn(0x10, { timeoutMs: Infinity, noThrow: true });
    expect(fake.received.at(-1)).toEqual({ type: 'waitLsn', id: expect.any(Number), lsn: '0/10', noThrow: true });
  });

  it('keeps at most MAX_IN_FLIGHT_REQUESTS unanswered on the wire', async () => {
    const fake = await startFakeServer();
    const client = await connect(fake);
    const waiting: (() => void)[] = [];
    let outstanding = 0;
    let most = 0;
    fake.onRequest = (request) => {
      outstanding++;
      most = Math.max(most, outstanding);
      return new Promise((resolve) => {
        waiting.push(() => {
          outstanding--;
          resolve({ type: 'result', id: request.id, request: 'ping' });
        });
        if (waiting.length >= MAX_IN_FLIGHT_REQUESTS) for (const release of waiting.splice(0)) release();
      });
    };
    const total = MAX_IN_FLIGHT_REQUESTS * 2 + 10;
    const pings = Array.from({ length: total }, () => client.ping({ timeoutMs: 10_000 }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const release of waiting.splice(0)) release();
    await Promise.all(pings);
    expect(most).toBe(MAX_IN_FLIGHT_REQUESTS);
  });

  it('loads an async iterable with bounded concurrency', async () => {
    const fake = await startFakeServer();
    const original = fake.onRequest;
    let running = 0;
    let most = 0;
    fake.onRequest = async (request) => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 1));
      running--;
      return original(request);
    };
    const client = await connect(fake);
    async function* entries(): AsyncGenerator<[string, string]> {
      for (let i = 0; i < 100; i++) yield [`key${i}`, `value${i}`];
    }
    let progress = 0;
    const result = await client.load(entries(), { concurrency: 4, onProgress: (count) => (progress = count) });
    expect(result.count).toBe(100);
    expect(progress).toBe(100);
    expect(result.lastLsn).toBe(0x100 + 100 * 0x10);
    expect(most).toBeLessThanOrEqual(4);
    expect((await client.get('key99'))?.value.toString()).toBe('value99');
  });

  it('fails calls after close() and does not hang', async () => {
    const fake = await startFakeServer();
    fake.onRequest = () => 'hang';
    const client = await connect(fake);
    const write = rejection(client.put('k', 'v'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await client.close();
    expect((await write).code).toBe('indeterminate');
    expect((await rejection(client.ping())).code).toBe('connection_lost');
    expect(client.state).toBe('closed');
  });
});
