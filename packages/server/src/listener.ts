/**
 * The node's connection listener (the postmaster's ServerLoop accept path): one TCP listener on
 * the node's port that serves
 *
 * - `GET /healthz` and `GET /metrics` as plain HTTP (`metrics-http.ts`);
 * - WebSocket upgrades on `/client`, each becoming a ClientSession (`session.ts`);
 * - nothing else: other upgrade paths get a 404 (`/replication` comes with the walsender).
 *
 * TLS (`ssl = on`), on the same port, as PostgreSQL negotiates SSL on its one port: the first
 * byte of a connection tells a TLS hello (0x16, a handshake record) from plain HTTP. TLS
 * connections go to an `https.Server` and get everything above (wss://). Plain ones still get
 * `/healthz` and `/metrics` (they stay plain and unauthenticated, DESIGN section 6: a load
 * balancer or Prometheus needs no certificate), but a plain WebSocket upgrade is refused with
 * 426 Upgrade Required and a body saying TLS is required, which the clients turn into "server
 * requires SSL". With ssl = off, a TLS hello is answered with a plain HTTP 400 (bytes that are no
 * TLS record), which the clients report as "server does not support SSL".
 *
 * Who starts it: the postmaster, once it accepts connections; `close()` at shutdown (after it has
 * ended the sessions it wants ended with `closeAllSessions`). What its failure means: a bind
 * failure at start is the postmaster's FATAL (`port_in_use`); after that, errors on one
 * connection stay on that connection and nothing a client sends can throw out of here.
 */
import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { ErrorCode, WalshipError } from '@walship/engine';
import type { LogFunction } from '@walship/engine';
import {
  CLIENT_CERTIFICATE_ERROR_HEADER, CLIENT_CERTIFICATE_REFUSED_STATUS, CLIENT_PATH, MAX_FRAME_BYTES, MAX_REPLICATION_FRAME_BYTES, REPLICATION_PATH,
  SSL_REQUIRED_STATUS,
} from '@walship/protocol';
import type { Backend } from './backend.js';
import { bindHttpServer, handleHttpRequest, requestPath } from './metrics-http.js';
import { ClientSession, isLoopbackAddress } from './session.js';
import type { SessionAuth } from './session.js';
import { AuthThrottle } from './auth/auth-throttle.js';

/** The server version announced in `authOk` unless the caller gives one. */
export const DEFAULT_SERVER_VERSION = '0.1.0';

/** PostgreSQL's default max_connections. */
export const DEFAULT_MAX_CONNECTIONS = 100;

/** The message sessions get when the node shuts down (PostgreSQL's admin_shutdown message). */
export const ADMIN_SHUTDOWN_MESSAGE = 'terminating connection due to administrator command';

/** How often `waitForSessionsToEnd` asks whether to stop waiting (a faster shutdown came). */
export const SESSION_WAIT_POLL_MS = 100;

/**
 * How long a new connection may stay silent before its first byte (which says TLS or plain):
 * Node's own headersTimeout, so that a silent connection is held no longer than an HTTP one was.
 */
export const FIRST_BYTE_TIMEOUT_MS = 60_000;

/** The first byte of a TLS connection: a handshake record (ClientHello). */
const TLS_HANDSHAKE_RECORD = 0x16;

/** The certificate, key and CA (PEM) of a TLS listener (`ssl/ssl-files.ts` reads them). */
export interface ListenerTls {
  cert: Buffer;
  key: Buffer;
  /** Client certificates presented must be signed by it (ssl_ca_file); null: none asked for. */
  ca: Buffer | null;
}

export interface ListenerOptions {
  port: number;
  /** An address (`listen_addresses`): `localhost` (the default) is 127.0.0.1, `*` all IPv4. */
  host?: string;
  backend: Backend;
  /** Read at each handshake, so that a reload can change the password in place. */
  auth: SessionAuth;
  log: LogFunction;
  serverVersion?: string;
  /** Client sessions at once (max_connections); beyond it a session is refused. */
  maxConnections?: number;
  /**
   * Serves `/replication` (walsenders, base backups): called with each upgraded socket. Absent:
   * the path is refused like any unknown one.
   */
  replication?: (socket: WebSocket, peer: { address: string; port: number }) => void;
  /** ssl = on: the port serves TLS (and plain /healthz, /metrics). */
  tls?: ListenerTls | null;
}

export interface Listener {
  readonly host: string;
  /** The bound port (the real one when `port` was 0). */
  readonly port: number;
  /** Client sessions open now (authenticated or not). */
  sessionCount(): number;
  /** Ends every client session with a FATAL admin_shutdown error carrying `reason`. */
  closeAllSessions(reason?: string): void;
  /**
   * Resolves once no client session is left (smart shutdown), or once `stopWaiting()` returns
   * true (checked every SESSION_WAIT_POLL_MS), whichever comes first.
   */
  waitForSessionsToEnd(stopWaiting?: () => boolean): Promise<void>;
  /** Whether the port serves TLS. */
  readonly tls: boolean;
  /** New certificate files for connections from now on (a reload); false when the listener is plain. */
  reloadTls(files: ListenerTls): boolean;
  /** Stops accepting, ends every session, and resolves once the port is released. */
  close(): Promise<void>;
}

/**
 * The address to bind for a `listen_addresses` value. One address (or `localhost`, or `*`) for
 * now; a list is refused rather than half-honoured.
 */
export function resolveListenAddress(listenAddresses: string): string {
  const value = listenAddresses.trim();
  if (value === '' || value.includes(',')) {
    throw new WalshipError(ErrorCode.invalidParameter, `invalid value for parameter "listen_addresses": "${listenAddresses}"`, {
      detail: value === '' ? 'An empty list would accept no TCP connections.' : 'Only one address is supported.',
      hint: "Give one address, 'localhost' or '*'.",
    });
  }
  if (value === 'localhost') return '127.0.0.1';
  if (value === '*') return '0.0.0.0';
  return value;
}

function refuseUpgrade(socket: Duplex, status: number, reason: string, text: string = reason, extraHeaders = ''): void {
  const body = `${text}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\n${extraHeaders}Content-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/**
 * Why a TLS connection's client certificate is refused, or null: none was presented (none is
 * required), it verified, or the connection is plain. Only with ssl_ca_file is one asked for.
 */
function clientCertificateProblem(socket: net.Socket): string | null {
  const tls = socket as Partial<TLSSocket>;
  if (tls.encrypted !== true || tls.authorized === true || typeof tls.getPeerCertificate !== 'function') return null;
  const peer = tls.getPeerCertificate();
  if (peer === null || peer === undefined || Object.keys(peer).length === 0) return null;
  return String(tls.authorizationError ?? 'unknown error');
}

/** The https.Server options for a certificate, its key and the CA of client certificates. */
function secureOptions(tls: ListenerTls): https.ServerOptions {
  return {
    cert: tls.cert,
    key: tls.key,
    minVersion: 'TLSv1.2',
    // ssl_ca_file: ask for a client certificate and check one that comes; none is required.
    ...(tls.ca === null ? {} : { ca: tls.ca, requestCert: true, rejectUnauthorized: false }),
  };
}

export async function startListener(options: ListenerOptions): Promise<Listener> {
  const host = resolveListenAddress(options.host ?? 'localhost');
  const { backend, log } = options;
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  // One throttle for every session of this listener, so that failures from an address add up.
  options.auth.throttle ??= new AuthThrottle();
  const context = { backend, auth: options.auth, log, serverVersion: options.serverVersion ?? DEFAULT_SERVER_VERSION };
  const sessions = new Set<ClientSession>();
  const sessionsGone: (() => void)[] = [];
  let closing = false;

  function sessionEnded(session: ClientSession): void {
    sessions.delete(session);
    if (sessions.size === 0) for (const wake of sessionsGone.splice(0)) wake();
  }

  const onRequest = (request: IncomingMessage, response: http.ServerResponse): void => handleHttpRequest(backend, log, request, response);
  const server = http.createServer(onRequest);
  server.on('clientError', (_error, socket) => socket.destroy());
  const tls = options.tls ?? null;
  const secureServer = tls === null ? null : https.createServer(secureOptions(tls), onRequest);
  secureServer?.on('clientError', (_error, socket) => socket.destroy());
  secureServer?.on('tlsClientError', (error, socket) => {
    log('LOG', `could not accept SSL connection from ${socket.remoteAddress ?? 'unknown'}: ${error.message}`);
    socket.destroy();
  });

  // Connections are handed to these servers, which never listen themselves: their connection
  // tracking (closeIdleConnections, the header and request timeouts) starts on 'listening'.
  server.emit('listening');
  secureServer?.emit('listening');
  const front = net.createServer((socket) => dispatch(socket));

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_FRAME_BYTES,
    perMessageDeflate: false,
    clientTracking: false,
  });
  wss.on('error', (error) => log('LOG', `client listener: ${error.message}`));
  // Replication frames are bounded by the replication protocol's own, smaller limit.
  const replicationWss = new WebSocketServer({ noServer: true, maxPayload: MAX_REPLICATION_FRAME_BYTES, perMessageDeflate: false, clientTracking: false });
  replicationWss.on('error', (error) => log('LOG', `replication listener: ${error.message}`));

  function startSession(socket: WebSocket, request: IncomingMessage): void {
    const remote = request.socket;
    const peer = { address: remote.remoteAddress ?? 'unknown', port: remote.remotePort ?? 0 };
    const session = new ClientSession(socket, peer, context, sessionEnded);
    sessions.add(session);
    session.start();
    if (closing) session.terminate(ErrorCode.shuttingDown, ADMIN_SHUTDOWN_MESSAGE);
    else if (sessions.size > maxConnections) session.refuseTooMany(maxConnections);
  }

  /** Reads the first byte, puts it back, and hands the connection to the TLS or the plain server. */
  function dispatch(socket: net.Socket): void {
    socket.on('error', () => socket.destroy());
    const timer = setTimeout(() => socket.destroy(), FIRST_BYTE_TIMEOUT_MS);
    socket.once('close', () => clearTimeout(timer));
    socket.once('readable', () => {
      clearTimeout(timer);
      const first = socket.read(1) as Buffer | null;
      if (first === null) {
        socket.destroy();
        return;
      }
      socket.unshift(first);
      if (first[0] !== TLS_HANDSHAKE_RECORD) {
        server.emit('connection', socket);
      } else if (secureServer !== null) {
        secureServer.emit('connection', socket);
      } else {
        // Plain bytes where the client expects a TLS record: it reports that this node has no TLS.
        socket.resume();
        refuseUpgrade(socket, 400, 'Bad Request', 'This node does not accept SSL connections (ssl = off).');
      }
    });
  }

  function onUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    try {
      const path = requestPath(request.url);
      if (secureServer !== null && (request.socket as Partial<TLSSocket>).encrypted !== true && (path === CLIENT_PATH || path === REPLICATION_PATH)) {
        // hostssl only: a plain session is refused, with the reason the client shows.
        refuseUpgrade(socket, SSL_REQUIRED_STATUS, 'Upgrade Required', 'This node accepts only SSL connections (ssl = on): connect with sslmode=require or stronger.', 'Upgrade: TLS/1.2, HTTP/1.1\r\n');
        return;
      }
      const certificateProblem = clientCertificateProblem(request.socket);
      if (certificateProblem !== null) {
        // ssl_ca_file: a client certificate was presented and did not verify (none is required).
        log('LOG', `could not accept SSL connection from ${request.socket.remoteAddress ?? 'unknown'}: client certificate verify failed: ${certificateProblem}`);
        refuseUpgrade(socket, CLIENT_CERTIFICATE_REFUSED_STATUS, 'Forbidden', `client certificate verify failed: ${certificateProblem}`, `${CLIENT_CERTIFICATE_ERROR_HEADER}: ${certificateProblem.replace(/[\r\n]/g, ' ')}\r\n`);
        return;
      }
      const replication = options.replication;
      if (path === REPLICATION_PATH && replication !== undefined) {
        if (closing) {
          refuseUpgrade(socket, 503, 'Service Unavailable');
          return;
        }
        replicationWss.handleUpgrade(request, socket, head, (ws) => {
          const remote = request.socket;
          try {
            replication(ws, { address: remote.remoteAddress ?? 'unknown', port: remote.remotePort ?? 0 });
          } catch (error) {
            log('ERROR', `could not start replication session: ${error instanceof Error ? error.message : String(error)}`);
            ws.terminate();
          }
        });
        return;
      }
      if (path !== CLIENT_PATH) {
        refuseUpgrade(socket, 404, 'Not Found');
        return;
      }
      if (closing) {
        refuseUpgrade(socket, 503, 'Service Unavailable');
        return;
      }
      wss.handleUpgrade(request, socket, head, (ws) => {
        try {
          startSession(ws, request);
        } catch (error) {
          log('ERROR', `could not start client session: ${error instanceof Error ? error.message : String(error)}`);
          ws.terminate();
        }
      });
    } catch (error) {
      log('ERROR', `could not accept connection: ${error instanceof Error ? error.message : String(error)}`);
      socket.destroy();
    }
  }
  server.on('upgrade', onUpgrade);
  secureServer?.on('upgrade', onUpgrade);

  await bindHttpServer(front, host, options.port);
  front.on('error', (error) => log('LOG', `listener: ${error.message}`));
  const port = (front.address() as net.AddressInfo).port;
  if (options.auth.method !== 'scram-sha-256' && (options.auth.password ?? '') === '' && !isLoopbackAddress(host)) {
    log('WARNING', `no password is set: only loopback clients can connect to ${host}:${port}`);
  }
  log('LOG', `listening on ${host.includes(':') ? `[${host}]` : host}:${port}${secureServer === null ? '' : ' (SSL: wss://, with plain /healthz and /metrics)'}`);

  function closeAllSessions(reason: string = ADMIN_SHUTDOWN_MESSAGE): void {
    for (const session of [...sessions]) session.terminate(ErrorCode.shuttingDown, reason);
  }

  function waitForSessionsToEnd(stopWaiting: () => boolean = () => false): Promise<void> {
    return new Promise<void>((resolve) => {
      if (sessions.size === 0 || stopWaiting()) {
        resolve();
        return;
      }
      const timer = setInterval(() => {
        if (stopWaiting()) done();
      }, SESSION_WAIT_POLL_MS);
      function done(): void {
        clearInterval(timer);
        const index = sessionsGone.indexOf(done);
        if (index !== -1) sessionsGone.splice(index, 1);
        resolve();
      }
      sessionsGone.push(done);
    });
  }

  let closed: Promise<void> | null = null;
  return {
    host,
    port,
    sessionCount: () => sessions.size,
    closeAllSessions,
    waitForSessionsToEnd,
    tls: secureServer !== null,
    reloadTls(files: ListenerTls): boolean {
      if (secureServer === null) return false;
      secureServer.setSecureContext(secureOptions(files));
      return true;
    },
    close(): Promise<void> {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        closeAllSessions();
        front.close(() => {
          wss.close();
          // Never listening, they hold no port; closing stops their connection-tracking timers.
          server.close();
          secureServer?.close();
          resolve();
        });
        server.closeIdleConnections();
        secureServer?.closeIdleConnections();
      });
      return closed;
    },
  };
}
