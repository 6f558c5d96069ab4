/**
 * Plain HTTP on a node's port (or on `metrics_port`): `GET /healthz` and `GET /metrics`.
 *
 * Both stay plain and unauthenticated (DESIGN section 6): a load balancer or Prometheus must be
 * able to ask without credentials, and neither answer carries data. `/healthz` says whether the
 * node accepts client sessions right now (200 when the backend is `ready`, 503 otherwise, with
 * the state); `/metrics` is the backend's Prometheus text exposition, format version 0.0.4.
 *
 * Also here: binding an http.Server with PostgreSQL's messages for a port that is taken (shared by
 * the node listener and the separate metrics listener).
 */
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { ErrorCode, WalshipError } from '@walship/engine';
import type { LogFunction } from '@walship/engine';
import type { Backend } from './backend.js';

export const HEALTHZ_PATH = '/healthz';
export const METRICS_PATH = '/metrics';

/** Prometheus' text exposition format (what every scraper accepts). */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** The path of a request target, without its query string. */
export function requestPath(url: string | undefined): string {
  if (url === undefined) return '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

function send(response: ServerResponse, status: number, contentType: string, body: string, head: boolean): void {
  response.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  response.end(head ? undefined : body);
}

function sendJson(response: ServerResponse, status: number, body: unknown, head: boolean): void {
  send(response, status, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`, head);
}

/**
 * Answers one plain HTTP request. Never throws: a failing backend gives a 500 with the reason,
 * logged once.
 */
export function handleHttpRequest(backend: Backend, log: LogFunction, request: IncomingMessage, response: ServerResponse): void {
  const head = request.method === 'HEAD';
  const path = requestPath(request.url);
  try {
    if (path !== HEALTHZ_PATH && path !== METRICS_PATH) {
      sendJson(response, 404, { error: `not found: ${path.slice(0, 200)}`, paths: [HEALTHZ_PATH, METRICS_PATH] }, head);
      return;
    }
    if (request.method !== 'GET' && !head) {
      response.setHeader('allow', 'GET, HEAD');
      sendJson(response, 405, { error: `method ${request.method ?? ''} not allowed` }, head);
      return;
    }
    if (path === HEALTHZ_PATH) {
      const state = backend.state();
      if (state === 'ready') sendJson(response, 200, { status: 'ok', state, member: backend.memberName() }, head);
      else sendJson(response, 503, { status: 'unavailable', state }, head);
      return;
    }
    send(response, 200, METRICS_CONTENT_TYPE, backend.metrics(), head);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    log('ERROR', `could not answer HTTP ${request.method ?? '?'} ${path.slice(0, 200)}: ${message}`);
    if (!response.headersSent) sendJson(response, 500, { status: 'error', error: message }, head);
    else response.destroy();
  }
}

/**
 * Starts listening; rejects with a WalshipError whose message follows PostgreSQL's
 * (`could not bind IPv4 address "127.0.0.1": address already in use`).
 */
export function bindHttpServer(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      server.off('listening', onListening);
      reject(bindError(error, host, port));
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen({ port, host, exclusive: true });
  });
}

export function bindError(error: NodeJS.ErrnoException, host: string, port: number): WalshipError {
  const family = net.isIPv6(host) ? 'IPv6' : 'IPv4';
  const what = `could not bind ${family} address "${host}"`;
  switch (error.code) {
    case 'EADDRINUSE':
      return new WalshipError(ErrorCode.portInUse, `${what}: address already in use`, {
        detail: `Port ${port} on ${host} is taken.`,
        hint: `Is another node already running on port ${port}? Choose another port with --port or the port setting.`,
        severity: 'FATAL',
        cause: error,
      });
    case 'EADDRNOTAVAIL':
      return new WalshipError(ErrorCode.invalidParameter, `${what}: cannot assign requested address`, {
        hint: 'Check listen_addresses: it must name an address of this machine.',
        severity: 'FATAL',
        cause: error,
      });
    case 'EACCES':
      return new WalshipError(ErrorCode.ioError, `${what}: permission denied`, {
        detail: `Binding port ${port} needs privileges this process does not have.`,
        hint: 'Choose a port above 1023 with --port or the port setting.',
        severity: 'FATAL',
        cause: error,
      });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new WalshipError(ErrorCode.invalidParameter, `could not translate host name "${host}" to address`, {
        hint: 'Check listen_addresses.',
        severity: 'FATAL',
        cause: error,
      });
    default:
      return new WalshipError(ErrorCode.ioError, `${what}: ${error.message}`, { severity: 'FATAL', cause: error });
  }
}

export interface MetricsServer {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** A separate plain HTTP listener for `/healthz` and `/metrics` (the `metrics_port` setting). */
export async function startMetricsServer(options: {
  port: number;
  host: string;
  backend: Backend;
  log: LogFunction;
}): Promise<MetricsServer> {
  const server = http.createServer((request, response) => handleHttpRequest(options.backend, options.log, request, response));
  server.on('clientError', (_error, socket) => socket.destroy());
  await bindHttpServer(server, options.host, options.port);
  server.on('error', (error) => options.log('LOG', `metrics listener: ${error.message}`));
  const address = server.address() as net.AddressInfo;
  let closing: Promise<void> | null = null;
  return {
    host: options.host,
    port: address.port,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
