/**
 * WalshipFailoverClient against stand-in nodes speaking the real protocol codec: each answers
 * `status` with a role and a timeline, and writes as the test says (acknowledge, refuse as a
 * standby or as a primary without a lease, or drop the connection after receiving the write).
 */
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { decodeClientMessage, encodeMessage, type ClientRequest, type ServerMessage } from '@walship/protocol';
import { WalshipFailoverClient } from './failover-client.js';

interface FakeNode {
  port: number;
  name: string;
  role: 'primary' | 'standby';
  timeline: number;
  writes: 'ack' | 'read_only' | 'lease_expired' | 'drop';
  writesSeen: number;
  close(): Promise<void>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function fakeNode(name: string, role: FakeNode['role'], timeline = 1): Promise<FakeNode> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', path: '/client' });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const node: FakeNode = {
    port: (wss.address() as AddressInfo).port, name, role, timeline, writes: role === 'primary' ? 'ack' : 'read_only', writesSeen: 0,
    close: () => new Promise((resolve) => {
      for (const client of wss.clients) client.terminate();
      wss.close(() => resolve());
    }),
  };
  const answer = (request: ClientRequest): ServerMessage | 'drop' => {
    const id = request.id;
    if (request.type === 'status') {
      return { type: 'result', id, request: 'status', status: { role: node.role, systemId: '1', timeline: node.timeline, insertLsn: '0/1', flushLsn: '0/1', receiveLsn: null, replayLsn: null, lastCheckpointLsn: '0/1' } };
    }
    if (request.type !== 'txn') return { type: 'error', id, code: 'feature_not_supported', message: 'fake', severity: 'ERROR' };
    node.writesSeen++;
    switch (node.writes) {
      case 'ack':
        return { type: 'result', id, request: 'txn', succeeded: true, lsn: '0/100', timeline: node.timeline, member: node.name, counts: [1] };
      case 'read_only':
        return { type: 'error', id, code: 'read_only_transaction', message: 'cannot write to a read-only standby', severity: 'ERROR' };
      case 'lease_expired':
        return { type: 'error', id, code: 'primary_lease_expired', message: "cannot commit: this primary's lease has expired", severity: 'ERROR' };
      case 'drop':
        return 'drop';
    }
  };
  wss.on('connection', (socket) => {
    let started = false;
    socket.on('message', (data) => {
      const message = decodeClientMessage(data);
      if (!started) {
        started = true;
        socket.send(encodeMessage({ type: 'authOk', serverVersion: 'fake', member: node.name, role: node.role }));
        return;
      }
      const reply = answer(message as ClientRequest);
      if (reply === 'drop') socket.terminate();
      else socket.send(encodeMessage(reply));
    });
  });
  cleanups.push(() => node.close());
  return node;
}

async function connect(nodes: FakeNode[], failoverTimeoutMs = 3_000): Promise<WalshipFailoverClient> {
  const client = await WalshipFailoverClient.connect({ members: nodes.map((node) => ({ port: node.port })), timeoutMs: 2_000, failoverTimeoutMs });
  cleanups.push(() => client.close());
  return client;
}

describe('WalshipFailoverClient', () => {
  it('sends writes to the member that answers as the primary, wherever it is in the list', async () => {
    const nodes = [await fakeNode('s1', 'standby'), await fakeNode('n1', 'primary'), await fakeNode('s2', 'standby')];
    const client = await connect(nodes);
    expect(client.primaryAddress).toBe(`127.0.0.1:${nodes[1]!.port}`);
    expect((await client.put('k', 'v')).member).toBe('n1');
    expect(nodes.map((node) => node.writesSeen)).toEqual([0, 1, 0]);
  });

  it('prefers the primary on the highest timeline (an old primary left running after a failover is on an older one)', async () => {
    const nodes = [await fakeNode('n1', 'primary', 3), await fakeNode('s1', 'primary', 4)];
    const client = await connect(nodes);
    expect((await client.put('k', 'v')).member).toBe('s1');
  });

  it('follows a failover: a write refused by the old primary (lease expired, or a standby now) goes to the new one', async () => {
    const nodes = [await fakeNode('n1', 'primary', 1), await fakeNode('s1', 'standby', 1)];
    const client = await connect(nodes);
    expect((await client.put('a', '1')).member).toBe('n1');
    // The failover: n1's lease ran out, s1 was promoted on timeline 2.
    nodes[0]!.writes = 'lease_expired';
    nodes[1]!.role = 'primary';
    nodes[1]!.timeline = 2;
    nodes[1]!.writes = 'ack';
    const ack = await client.put('b', '2');
    expect(ack).toMatchObject({ member: 's1', timeline: 2 });
    expect(client.primariesFound).toBe(2);
  });

  it('waits for a primary while none answers, up to failoverTimeoutMs', async () => {
    const nodes = [await fakeNode('n1', 'primary'), await fakeNode('s1', 'standby')];
    const client = await connect(nodes, 5_000);
    nodes[0]!.role = 'standby';
    nodes[0]!.writes = 'read_only';
    const pending = client.put('c', '3');
    setTimeout(() => {
      nodes[1]!.role = 'primary';
      nodes[1]!.writes = 'ack';
    }, 300);
    expect((await pending).member).toBe('s1');
    nodes[1]!.role = 'standby';
    nodes[1]!.writes = 'read_only';
    const gaveUp = await connect(nodes, 300).catch((error: Error) => error);
    expect(gaveUp).toBeInstanceOf(Error);
    expect((gaveUp as Error).message).toMatch(/no primary among/);
  });

  it('never sends again a write whose connection dropped after it was sent: it is indeterminate', async () => {
    const nodes = [await fakeNode('n1', 'primary'), await fakeNode('s1', 'primary', 0)];
    const client = await connect(nodes);
    nodes[0]!.writes = 'drop';
    await expect(client.put('d', '4')).rejects.toMatchObject({ code: 'indeterminate' });
    expect(nodes.map((node) => node.writesSeen)).toEqual([1, 0]);
  });
});
