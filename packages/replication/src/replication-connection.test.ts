import * as net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ReplicationConnection } from './replication-connection.js';

describe('ReplicationConnection.connect', () => {
  // An upstream that takes the TCP connection and never answers (a frozen node, a cut link).
  let silent: net.Server;
  let port: number;
  const sockets: net.Socket[] = [];

  beforeAll(async () => {
    silent = net.createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    port = (silent.address() as net.AddressInfo).port;
  });

  afterAll(() => {
    for (const socket of sockets) socket.destroy();
    silent.close();
  });

  it('gives up an attempt at once when its signal is aborted, not after the connect timeout', async () => {
    const controller = new AbortController();
    const started = performance.now();
    const accepted = sockets.length;
    const attempt = ReplicationConnection.connect({ host: '127.0.0.1', port, applicationName: 's1', timeoutMs: 30_000, signal: controller.signal });
    // Aborted once the upstream has taken the TCP connection (and will never answer the upgrade).
    await vi.waitFor(() => expect(sockets.length).toBeGreaterThan(accepted), { timeout: 5_000, interval: 5 });
    controller.abort();
    await expect(attempt).rejects.toThrow(/connection attempt to the primary server at "127\.0\.0\.1", port \d+ cancelled/);
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it('refuses to start with a signal already aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(ReplicationConnection.connect({ host: '127.0.0.1', port, applicationName: 's1', timeoutMs: 30_000, signal: controller.signal })).rejects.toThrow(/cancelled/);
  });
});
