/**
 * The partition proxy: a TCP proxy in front of each member, so that a drill (or a person, with
 * `cluster partition|heal`) can cut a member off the others or slow its links, as a network
 * would, on one machine. A process of its own (`walship cluster proxy -f FILE`), started by
 * `cluster up` when the config has `proxy:`, stopped last by `cluster down`; its pid in
 * DATA_ROOT/proxy.pid, what is cut or slowed in DATA_ROOT/proxy.json (proxy-control.ts), read
 * every PROXY_POLL_MS.
 *
 * Each member M has two listeners:
 *   - inbound, on M.port + port_offset, forwarding to M: the failover monitor's health checks
 *     and lease grants, and its standbys' streams, reach M through it;
 *   - outbound, on M.port + 2 × port_offset, forwarding to the inbound proxy of M's upstream as
 *     the cluster state gives it now (M's primary_conninfo names it): M's own stream. When the
 *     state gives M another upstream (a failover repointed it), the connections to the old one
 *     are closed, and M's walreceiver reconnects to the new one.
 *
 * Cutting M (partition) holds everything on both of M's listeners, both ways: bytes stay in the
 * sockets (TCP pushes back on the senders), closes are not passed on, new connections are taken
 * but not forwarded, exactly as packets that do not arrive; nothing is dropped, so when the link
 * heals the byte streams resume intact (what waited is delivered late, as TCP would retransmit
 * it), unless an end gave up meanwhile (its timeouts). A latency delays every chunk on M's links
 * by that much, in order.
 *
 * Drills and the members do not depend on it for anything but reaching each other: clients,
 * `cluster status` and the cluster commands' probes reach members directly.
 */
import * as net from 'node:net';
import { findMember, proxyPorts, type ClusterConfig, type MemberConfig } from './config.js';
import { linkControl, readProxyControl, writeProxyApplied, type LinkControl } from './proxy-control.js';
import { effectiveUpstream, readClusterStateFor } from './state.js';

/** How often the control file and the cluster state are read: the resolution of a cut or a repoint. */
export const PROXY_POLL_MS = 50;

/**
 * Bytes one direction of one connection may have waiting for their latency: above it the sender
 * is paused until half of it has gone out. A slowed stream of WAL is bounded by it, not by memory.
 */
export const PROXY_QUEUED_BYTES_MAX = 8 * 1024 * 1024;

/** Connections one listener keeps at once: a cluster's members and clients are far fewer. */
export const PROXY_CONNECTIONS_MAX = 1024;

interface Target {
  readonly host: string;
  readonly port: number;
}

const keyOf = (target: Target | null): string | null => (target === null ? null : `${target.host}:${target.port}`);

/** One direction of a connection: chunks waiting for their time, delivered in order. */
class Direction {
  private readonly queue: Array<{ atMs: number; chunk: Buffer }> = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | null = null;
  ended = false;

  constructor(
    private readonly pipe: Pipe,
    private readonly from: net.Socket,
    private readonly to: () => net.Socket | null,
  ) {
    from.on('data', (chunk: Buffer) => this.push(chunk));
  }

  get empty(): boolean {
    return this.queue.length === 0;
  }

  private push(chunk: Buffer): void {
    const latencyMs = this.pipe.link.control.latencyMs;
    const atMs = Math.max(performance.now() + latencyMs, this.queue.at(-1)?.atMs ?? 0);
    this.queue.push({ atMs, chunk });
    this.queuedBytes += chunk.length;
    if (this.queuedBytes > PROXY_QUEUED_BYTES_MAX) this.from.pause();
    this.flush();
  }

  /** Delivers what is due, unless the link is cut or the other end is not connected yet. */
  flush(): void {
    const to = this.to();
    if (this.pipe.link.control.cut || to === null || to.connecting) return;
    const now = performance.now();
    while (this.queue.length > 0 && this.queue[0]!.atMs <= now) {
      const { chunk } = this.queue.shift()!;
      this.queuedBytes -= chunk.length;
      to.write(chunk);
    }
    if (this.queuedBytes <= PROXY_QUEUED_BYTES_MAX / 2 && this.from.isPaused() && !this.pipe.link.control.cut) this.from.resume();
    if (this.queue.length > 0 && this.timer === null) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.flush();
      }, Math.max(0, this.queue[0]!.atMs - now));
    }
    if (this.queue.length === 0) this.pipe.maybeFinish();
  }

  stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Its destination closed: what waits for it can never be delivered. */
  drop(): void {
    this.stop();
    this.queue.length = 0;
    this.queuedBytes = 0;
  }
}

/** A proxied connection: the client's socket and, once connected, the target's. */
class Pipe {
  server: net.Socket | null = null;
  private readonly upstream: Direction;
  private downstream: Direction | null = null;
  /** One side closed: the other is closed once what waits has gone out (and the link is not cut). */
  private closing = false;
  private finished = false;

  constructor(
    readonly link: Link,
    readonly client: net.Socket,
    readonly targetKey: string | null,
  ) {
    client.on('error', () => undefined);
    client.on('close', () => this.close('client'));
    this.upstream = new Direction(this, client, () => this.server);
  }

  connect(target: Target | null): void {
    if (this.finished) return;
    if (target === null) {
      this.destroy();
      return;
    }
    const server = net.connect({ host: target.host, port: target.port });
    server.setNoDelay(true);
    this.server = server;
    server.on('error', () => undefined);
    server.on('close', () => this.close('server'));
    server.on('connect', () => this.upstream.flush());
    this.downstream = new Direction(this, server, () => this.client);
    if (this.link.control.cut) server.pause();
  }

  /** The link was cut or healed. */
  apply(cut: boolean): void {
    for (const socket of [this.client, this.server]) {
      if (socket === null) continue;
      if (cut) socket.pause();
      else socket.resume();
    }
    if (!cut) {
      this.upstream.flush();
      this.downstream?.flush();
      this.maybeFinish();
    }
  }

  /** One side closed: what waits to go to it is dropped; what it sent still goes to the other. */
  private close(side: 'client' | 'server'): void {
    this.closing = true;
    if (side === 'server') this.upstream.drop();
    else this.downstream?.drop();
    this.maybeFinish();
  }

  maybeFinish(): void {
    if (!this.closing || this.finished || this.link.control.cut) return;
    if (!this.upstream.empty || (this.downstream !== null && !this.downstream.empty)) return;
    this.destroy();
  }

  destroy(): void {
    if (this.finished) return;
    this.finished = true;
    this.upstream.stop();
    this.downstream?.stop();
    this.client.destroy();
    this.server?.destroy();
    this.link.pipes.delete(this);
  }
}

/** One listener of the proxy: a member's inbound or outbound link. */
class Link {
  readonly pipes = new Set<Pipe>();
  control: LinkControl = { cut: false, latencyMs: 0 };
  private server: net.Server | null = null;

  constructor(
    readonly member: string,
    readonly kind: 'inbound' | 'outbound',
    readonly port: number,
    /** Where a connection goes now; null: nowhere (an outbound link of the primary). */
    readonly target: () => Target | null,
  ) {}

  listen(host: string): Promise<void> {
    const server = net.createServer({ pauseOnConnect: true }, (client) => this.accept(client));
    server.maxConnections = PROXY_CONNECTIONS_MAX;
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  private accept(client: net.Socket): void {
    client.setNoDelay(true);
    const target = this.target();
    const pipe = new Pipe(this, client, keyOf(target));
    this.pipes.add(pipe);
    // While cut, a new connection is held: it is forwarded once the link heals.
    if (this.control.cut) {
      client.pause();
      return;
    }
    client.resume();
    pipe.connect(target);
  }

  /** The control file's word for this member; a heal forwards what was held. */
  apply(control: LinkControl): void {
    const wasCut = this.control.cut;
    this.control = control;
    if (control.cut === wasCut) return;
    for (const pipe of this.pipes) {
      if (!control.cut && pipe.server === null) {
        pipe.client.resume();
        pipe.connect(this.target());
      } else {
        pipe.apply(control.cut);
      }
    }
  }

  /** Outbound links: connections to an upstream the state no longer gives the member are closed. */
  retarget(): void {
    if (this.kind !== 'outbound' || this.control.cut) return;
    const current = keyOf(this.target());
    for (const pipe of this.pipes) if (pipe.server !== null && pipe.targetKey !== current) pipe.destroy();
  }

  close(): Promise<void> {
    for (const pipe of this.pipes) pipe.destroy();
    const server = this.server;
    this.server = null;
    return new Promise((resolve) => (server === null ? resolve() : server.close(() => resolve())));
  }
}

export interface ProxyOptions {
  readonly signal: AbortSignal;
  /** A line for people (what is listening, what changed). */
  readonly log: (line: string) => void;
}

/** Runs the proxy for every member of `config` until `signal` is aborted. */
export async function runProxy(config: ClusterConfig, options: ProxyOptions): Promise<void> {
  if (config.proxy === null) throw new Error(`cluster ${config.name} has no proxy in ${config.file}`);
  const upstreamTarget = (member: MemberConfig): Target | null => {
    let state;
    try {
      state = readClusterStateFor(config);
    } catch {
      return null;
    }
    if (state === null) return null;
    const upstream = effectiveUpstream(config, state, member);
    if (upstream === null) return null;
    return { host: config.host, port: proxyPorts(config, findMember(config, upstream))!.inbound };
  };
  const links: Link[] = [];
  for (const member of config.members) {
    const ports = proxyPorts(config, member)!;
    links.push(new Link(member.name, 'inbound', ports.inbound, () => ({ host: config.host, port: member.port })));
    links.push(new Link(member.name, 'outbound', ports.outbound, () => upstreamTarget(member)));
  }
  try {
    for (const link of links) await link.listen(config.host);
    options.log(`proxy for cluster ${config.name}: ${config.members.map((member) => `${member.name} in :${proxyPorts(config, member)!.inbound} out :${proxyPorts(config, member)!.outbound}`).join(', ')}`);
    let described = '';
    let applied = -1;
    while (!options.signal.aborted) {
      const control = readProxyControl(config.dataRoot);
      const description = JSON.stringify(control.links);
      if (description !== described) {
        options.log(`links: ${description === '{}' ? 'all open' : description}`);
        described = description;
      }
      for (const link of links) {
        link.apply(linkControl(control, link.member));
        link.retarget();
      }
      if ((control.generation ?? 0) !== applied) {
        applied = control.generation ?? 0;
        writeProxyApplied(config.dataRoot, applied);
      }
      await new Promise<void>((resolve) => {
        const onAbort = (): void => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          options.signal.removeEventListener('abort', onAbort);
          resolve();
        }, PROXY_POLL_MS);
        options.signal.addEventListener('abort', onAbort, { once: true });
      });
    }
  } finally {
    await Promise.all(links.map((link) => link.close()));
  }
}
