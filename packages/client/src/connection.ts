/**
 * One WebSocket to a node's `/client` path and its authentication handshake (libpq's
 * PQconnectStart / PQconnectPoll in one promise). The password is sent only when the node asks
 * for it: in the clear for `authRequest` method `password`, or proven without being sent with
 * SCRAM-SHA-256 (`scram-sha-256`), where the node must prove in turn that it knows the user's
 * verifier (its `saslFinal`) before the client accepts `authOk`. The client (`client.ts`) owns what happens on
 * top: requests, timeouts and reconnects. A Connection never reconnects by itself; once closed
 * it reports why through `onClose`, exactly once.
 */
import WebSocket from 'ws';
import type { RawData } from 'ws';
import {
  CLIENT_PATH,
  connectBySslMode,
  decodeServerMessage,
  DEFAULT_SSL_MODE,
  describeSslFailure,
  encodeMessage,
  lsnFromWire,
  MAX_FRAME_BYTES,
  PROTOCOL_VERSION,
  tlsAttemptFailure,
  upgradeRefusalFailure,
} from '@walship/protocol';
import { SCRAM_SHA_256_NAME, ScramClient, ScramError } from '@walship/protocol';
import type { AuthOkMessage, ClientMessage, ClientSslOptions, ErrorMessage, ServerMessage, SslFailureReport, SslProblem, SslRootCerts, TlsClientSettings } from '@walship/protocol';
import { ClientErrorCode, toClientError, WalshipClientError } from './client-error.js';
import { CLOSE_TIMEOUT_MS, MAX_TIMER_MS } from './constants.js';

export type PasswordSource = string | (() => string | Promise<string>);

export interface ConnectionOptions extends ClientSslOptions {
  host: string;
  port: number;
  user?: string;
  password?: PasswordSource;
  applicationName?: string;
  /** Bound on opening the socket and completing the handshake. */
  timeoutMs: number;
}

export interface ServerInfo {
  serverVersion: string;
  member: string;
  role: 'primary' | 'standby';
}

export interface ConnectionHandlers {
  onMessage(message: ServerMessage): void;
  /** Called once, when the connection is gone, with the reason. */
  onClose(reason: WalshipClientError): void;
}

/** `localhost` is 127.0.0.1, as a node's `listen_addresses = 'localhost'` binds it. */
export function resolveHost(host: string): string {
  return host === 'localhost' ? '127.0.0.1' : host;
}

function endpoint(options: ConnectionOptions): string {
  const host = resolveHost(options.host);
  return `"${host}", port ${options.port}`;
}

export function serverErrorToClientError(message: ErrorMessage): WalshipClientError {
  return new WalshipClientError(message.code, message.message, {
    detail: message.detail,
    hint: message.hint,
    severity: message.severity,
    ...(message.lsn === undefined ? {} : { lsn: lsnFromWire(message.lsn) }),
  });
}

function connectFailure(options: ConnectionOptions, what: string, cause?: unknown): WalshipClientError {
  return new WalshipClientError(ClientErrorCode.connectionFailure, `connection to server at ${endpoint(options)} failed: ${what}`, {
    hint: 'Is the node running on that host and accepting connections on that port?',
    cause,
  });
}

function sslError(problem: SslProblem): WalshipClientError {
  return new WalshipClientError(problem.code, problem.message, { detail: problem.detail, hint: problem.hint, severity: 'FATAL' });
}

function describeSocketError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'connection reset by peer';
    case 'EHOSTUNREACH':
      return 'no route to host';
    case 'ENOTFOUND':
      return 'could not translate host name to address';
    case 'ETIMEDOUT':
      return 'connection timed out';
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

export class Connection {
  private closed = false;
  private closeReason: WalshipClientError | null = null;
  private handlers: ConnectionHandlers | null = null;

  private constructor(
    private readonly socket: WebSocket,
    readonly info: ServerInfo,
  ) {}

  /**
   * Opens a socket and authenticates. Resolves once the server has said `authOk`; rejects with a
   * WalshipClientError (the server's own error when it refused the session). TLS as `sslmode`
   * says (`@walship/protocol`'s ssl-mode.ts): with `prefer` or `allow`, a second attempt of the
   * other kind follows only when the first met a node of the other kind.
   */
  static async open(options: ConnectionOptions, handlers: ConnectionHandlers): Promise<Connection> {
    return connectBySslMode(options, sslError, (tls, roots) => Connection.openAttempt(options, handlers, tls, roots));
  }

  private static openAttempt(options: ConnectionOptions, handlers: ConnectionHandlers, tls: TlsClientSettings | null, roots: SslRootCerts | null): Promise<Connection> {
    return new Promise<Connection>((resolve, reject) => {
      const host = resolveHost(options.host);
      const urlHost = host.includes(':') ? `[${host}]` : host;
      const mode = options.sslmode ?? DEFAULT_SSL_MODE;
      const sslFailure = (failure: SslFailureReport['failure'], reason?: string): WalshipClientError =>
        sslError(describeSslFailure(failure, { mode, endpoint: endpoint(options), host: options.host, roots, ...(reason === undefined ? {} : { reason }) }));
      let socket: WebSocket;
      try {
        socket = new WebSocket(`${tls === null ? 'ws' : 'wss'}://${urlHost}:${options.port}${CLIENT_PATH}`, {
          maxPayload: MAX_FRAME_BYTES,
          perMessageDeflate: false,
          handshakeTimeout: Math.min(MAX_TIMER_MS, Math.max(1, options.timeoutMs)),
          // Passed on to tls.connect (ws's own typing of checkServerIdentity is not Node's).
          ...((tls ?? {}) as object),
        });
      } catch (error) {
        reject(connectFailure(options, describeSocketError(error), error));
        return;
      }
      let settled = false;
      let serverError: WalshipClientError | null = null;

      const timer = setTimeout(() => {
        fail(
          new WalshipClientError(ClientErrorCode.timeout, `connection to server at ${endpoint(options)} timed out after ${options.timeoutMs} ms`, {
            hint: 'Is the node overloaded or still starting? Raise timeoutMs to wait longer.',
          }),
        );
      }, Math.min(MAX_TIMER_MS, options.timeoutMs));

      function fail(error: WalshipClientError): void {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.removeAllListeners();
        socket.on('error', () => {});
        socket.terminate();
        reject(error);
      }

      function send(message: ClientMessage): void {
        socket.send(encodeMessage(message));
      }

      socket.on('open', () => {
        try {
          const startup: ClientMessage = { type: 'startup', protocolVersion: PROTOCOL_VERSION };
          if (options.user !== undefined) startup.user = options.user;
          if (options.applicationName !== undefined) startup.applicationName = options.applicationName;
          send(startup);
        } catch (error) {
          fail(toClientError(error, ClientErrorCode.invalidParameter));
        }
      });

      socket.on('message', (data: RawData, isBinary: boolean) => {
        if (settled) return;
        let message: ServerMessage;
        try {
          if (!isBinary) throw new WalshipClientError(ClientErrorCode.protocolViolation, 'server sent a text frame');
          message = decodeServerMessage(data);
        } catch (error) {
          fail(toClientError(error, ClientErrorCode.protocolViolation));
          return;
        }
        switch (message.type) {
          case 'authRequest':
            if (message.method === 'scram-sha-256') void startScram();
            else void answerPassword();
            return;
          case 'saslContinue':
          case 'saslFinal':
            if (scram === null) {
              fail(new WalshipClientError(ClientErrorCode.protocolViolation, `server sent "${message.type}" without a SASL exchange`));
              return;
            }
            try {
              const answer = scram.handleServerMessage(message);
              if (answer !== null) send({ type: 'saslResponse', data: answer });
            } catch (error) {
              fail(scramFailure(error));
            }
            return;
          case 'authOk': {
            if (scram !== null && !scram.verified) {
              // The server never proved it knows the verifier: it may be an impostor.
              fail(
                new WalshipClientError(ClientErrorCode.authenticationFailed, 'server accepted the connection without completing SCRAM authentication', {
                  detail: `The server at ${endpoint(options)} did not prove that it knows the user's password verifier.`,
                  hint: 'The server may not be the node you meant to reach; check the host and port.',
                }),
              );
              return;
            }
            settled = true;
            clearTimeout(timer);
            socket.removeAllListeners();
            const connection = new Connection(socket, infoOf(message));
            connection.attach(handlers);
            resolve(connection);
            return;
          }
          case 'error':
            // The server closes after a handshake error; report its words, not the close.
            serverError = serverErrorToClientError(message);
            fail(serverError);
            return;
          default:
            fail(new WalshipClientError(ClientErrorCode.protocolViolation, `server sent "${message.type}" during authentication`));
        }
      });

      let scram: ScramClient | null = null;

      function scramFailure(error: unknown): WalshipClientError {
        if (error instanceof ScramError) {
          return new WalshipClientError(ClientErrorCode.authenticationFailed, error.message, {
            detail: error.detail ?? `During SCRAM-SHA-256 authentication with the server at ${endpoint(options)}.`,
            hint: error.message === 'incorrect server signature' ? 'The server does not know this user\'s password verifier: it may not be the node you meant to reach.' : undefined,
          });
        }
        return toClientError(error, ClientErrorCode.authenticationFailed);
      }

      async function startScram(): Promise<void> {
        if (options.password === undefined) {
          fail(
            new WalshipClientError(ClientErrorCode.authenticationFailed, 'no password supplied', {
              detail: `The server at ${endpoint(options)} requires SCRAM-SHA-256 authentication.`,
              hint: 'Pass a password to WalshipClient.connect.',
            }),
          );
          return;
        }
        try {
          const password = typeof options.password === 'string' ? options.password : await options.password();
          if (settled) return;
          scram = new ScramClient({ password });
          send({ type: 'saslInitialResponse', mechanism: SCRAM_SHA_256_NAME, data: scram.clientFirstMessage() });
        } catch (error) {
          fail(toClientError(error, ClientErrorCode.authenticationFailed));
        }
      }

      async function answerPassword(): Promise<void> {
        if (options.password === undefined) {
          fail(
            new WalshipClientError(ClientErrorCode.authenticationFailed, 'no password supplied', {
              detail: `The server at ${endpoint(options)} requires a password.`,
              hint: 'Pass a password to WalshipClient.connect.',
            }),
          );
          return;
        }
        try {
          const password = typeof options.password === 'string' ? options.password : await options.password();
          if (!settled) send({ type: 'password', password });
        } catch (error) {
          fail(toClientError(error, ClientErrorCode.authenticationFailed));
        }
      }

      socket.on('unexpected-response', (_request, response) => {
        const refusal = upgradeRefusalFailure(response, tls !== null);
        if (refusal === null) fail(connectFailure(options, `server answered HTTP ${response.statusCode} instead of a WebSocket upgrade`));
        else fail(sslFailure(refusal.failure, refusal.reason));
      });
      socket.on('error', (error: Error) => {
        const failure = tlsAttemptFailure(error, tls !== null);
        if (failure === null) fail(connectFailure(options, describeSocketError(error), error));
        else fail(sslFailure(failure.failure, failure.reason));
      });
      socket.on('close', () => {
        fail(serverError ?? connectFailure(options, 'server closed the connection unexpectedly'));
      });
    });
  }

  private attach(handlers: ConnectionHandlers): void {
    this.handlers = handlers;
    this.socket.on('message', (data: RawData, isBinary: boolean) => this.receive(data, isBinary));
    this.socket.on('error', (error: Error) => {
      this.closeReason ??= new WalshipClientError(ClientErrorCode.connectionLost, `connection to server lost: ${describeSocketError(error)}`, {
        cause: error,
      });
    });
    this.socket.on('close', (code: number, reason: Buffer) => {
      const text = reason.toString('utf8');
      this.finish(
        new WalshipClientError(ClientErrorCode.connectionLost, 'server closed the connection unexpectedly', {
          detail: `WebSocket close code ${code}${text === '' ? '' : `: ${text}`}`,
        }),
      );
    });
  }

  private receive(data: RawData, isBinary: boolean): void {
    if (this.closed) return;
    let message: ServerMessage;
    try {
      if (!isBinary) throw new WalshipClientError(ClientErrorCode.protocolViolation, 'server sent a text frame');
      message = decodeServerMessage(data);
    } catch (error) {
      this.closeReason ??= toClientError(error, ClientErrorCode.protocolViolation);
      this.socket.terminate();
      return;
    }
    if (message.type === 'error' && message.id === undefined) {
      // A FATAL error about the connection: the server closes next; that is the reason.
      this.closeReason ??= new WalshipClientError(ClientErrorCode.connectionLost, message.message, {
        detail: message.detail,
        hint: message.hint,
        severity: message.severity,
      });
    }
    this.handlers?.onMessage(message);
  }

  private finish(fallback: WalshipClientError): void {
    if (this.closed) return;
    this.closed = true;
    const handlers = this.handlers;
    this.handlers = null;
    handlers?.onClose(this.closeReason ?? fallback);
  }

  get isOpen(): boolean {
    return !this.closed && this.socket.readyState === WebSocket.OPEN;
  }

  /** Sends an encoded frame. Returns false when the socket is no longer open. */
  send(frame: Buffer): boolean {
    if (!this.isOpen) return false;
    this.socket.send(frame);
    return true;
  }

  /** Drops the connection at once (used when the server broke the protocol). */
  terminate(reason: WalshipClientError): void {
    this.closeReason ??= reason;
    this.socket.terminate();
  }

  /** Closes politely; resolves once the socket is closed (or after CLOSE_TIMEOUT_MS). */
  close(reason: WalshipClientError): Promise<void> {
    this.closeReason ??= reason;
    if (this.socket.readyState === WebSocket.CLOSED) {
      this.finish(reason);
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => this.socket.terminate(), CLOSE_TIMEOUT_MS);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.socket.close(1000, 'client closed');
    });
  }
}

function infoOf(message: AuthOkMessage): ServerInfo {
  return { serverVersion: message.serverVersion, member: message.member, role: message.role };
}
