/**
 * The partition proxy on loopback sockets (no nodes): two tagged echo servers stand for the
 * members n1 (primary) and s1 (standby of n1).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseClusterConfig, proxyPorts, type ClusterConfig } from './config.js';
import { readProxyApplied, setLinkControl } from './proxy-control.js';
import { runProxy } from './proxy.js';
import { initialClusterState, withMember, withNewPrimary, writeClusterState } from './state.js';

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A base port with base .. base + 5 free (two members, two proxies each, offset 2). */
async function freeBase(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const free = await Promise.all(Array.from({ length: 6 }, (_, i) => portFree(base + i)));
    if (free.every(Boolean)) return base;
  }
  throw new Error('no free ports');
}

/** Answers every chunk with `NAME:chunk`. */
function echo(name: string, port: number): Promise<net.Server> {
  const server = net.createServer((socket) => socket.on('data', (chunk) => socket.write(`${name}:${chunk.toString()}`)));
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

/** A connection whose received text can be awaited. */
async function open(port: number): Promise<{ socket: net.Socket; received: () => string; closed: () => boolean }> {
  const socket = net.connect({ host: '127.0.0.1', port });
  let text = '';
  let closed = false;
  socket.on('data', (chunk) => (text += chunk.toString()));
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  return { socket, received: () => text, closed: () => closed };
}

async function until(what: string, condition: () => boolean, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('the partition proxy', () => {
  let dataRoot: string;
  let config: ClusterConfig;
  let servers: net.Server[];
  const controller = new AbortController();
  let running: Promise<void>;
  const applied = async (generation: number | undefined) => until('the proxy to apply the control file', () => readProxyApplied(dataRoot) >= (generation ?? 0));

  beforeAll(async () => {
    dataRoot = mkdtempSync(join(tmpdir(), 'walship-proxy-'));
    const base = await freeBase();
    config = parseClusterConfig(
      `name: p\nbase_port: ${base}\ndata_root: ${dataRoot}\nproxy: { port_offset: 2 }\nnodes:\n  - {name: n1, port_offset: 0}\n  - {name: s1, port_offset: 1}\n`,
      join(dataRoot, 'p.yaml'),
    );
    let state = initialClusterState(config);
    state = withMember(withMember(state, 'n1', { role: 'primary', timeline: 1 }), 's1', { role: 'standby', timeline: 1 });
    writeClusterState(dataRoot, state);
    servers = [await echo('n1', base), await echo('s1', base + 1)];
    running = runProxy(config, { signal: controller.signal, log: () => undefined });
    // Applied once: the listeners are open (they open before the first poll).
    await applied(setLinkControl(dataRoot, null, { cut: false, latencyMs: 0 }).generation);
  });

  afterAll(async () => {
    controller.abort();
    await running;
    for (const server of servers) if (server.listening) server.close();
    rmSync(dataRoot, { recursive: true, force: true });
  });

  const n1 = () => config.members[0]!;
  const s1 = () => config.members[1]!;

  it("forwards a member's inbound port to it, and a standby's outbound port to its upstream's inbound", async () => {
    const inbound = await open(proxyPorts(config, n1())!.inbound);
    inbound.socket.write('a');
    await until('the echo', () => inbound.received() === 'n1:a');
    const outbound = await open(proxyPorts(config, s1())!.outbound);
    outbound.socket.write('b');
    await until('the echo through n1', () => outbound.received() === 'n1:b');
    inbound.socket.destroy();
    outbound.socket.destroy();
  });

  it('holds everything while a member is cut off, both ways and for new connections, and delivers it intact when healed', async () => {
    const before = await open(proxyPorts(config, n1())!.inbound);
    await applied(setLinkControl(dataRoot, 'n1', { cut: true, latencyMs: 0 }).generation);
    before.socket.write('held');
    const during = await open(proxyPorts(config, n1())!.inbound);
    during.socket.write('new');
    // Nothing may come back while cut: a bounded look, then the heal must deliver both.
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect([before.received(), during.received(), before.closed(), during.closed()]).toEqual(['', '', false, false]);
    await applied(setLinkControl(dataRoot, 'n1', { cut: false, latencyMs: 0 }).generation);
    await until('the held bytes', () => before.received() === 'n1:held' && during.received() === 'n1:new');
    before.socket.destroy();
    during.socket.destroy();
  });

  it("slows a member's links by the latency, each way", async () => {
    await applied(setLinkControl(dataRoot, 'n1', { cut: false, latencyMs: 80 }).generation);
    const slow = await open(proxyPorts(config, n1())!.inbound);
    const started = performance.now();
    slow.socket.write('x');
    await until('the slowed echo', () => slow.received() === 'n1:x');
    expect(performance.now() - started).toBeGreaterThanOrEqual(150);
    await applied(setLinkControl(dataRoot, null, { cut: false, latencyMs: 0 }).generation);
    slow.socket.destroy();
  });

  it('closes a standby\'s stream when the state gives it another upstream (here: it became the primary)', async () => {
    const stream = await open(proxyPorts(config, s1())!.outbound);
    stream.socket.write('c');
    await until('the echo through n1', () => stream.received() === 'n1:c');
    writeClusterState(dataRoot, withNewPrimary(withMember(initialClusterState(config), 'n1', { role: 'primary', timeline: 1 }), 's1', 2, { fence: null }));
    await until('the stale stream to be closed', () => stream.closed());
  });

  it('closes a connection at once when its member does not take it (with what was sent to it waiting)', async () => {
    await new Promise((resolve) => servers[1]!.close(resolve));
    const refused = await open(proxyPorts(config, s1())!.inbound);
    refused.socket.write('an upgrade request nobody will read');
    await until('the connection to be closed', () => refused.closed(), 2_000);
  });
});
