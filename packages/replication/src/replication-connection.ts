/**
 * The standby's end of a replication connection (libpqwalreceiver's role): a WebSocket to the
 * upstream's `/replication` path, the startup handshake (SCRAM-SHA-256, whose server signature is
 * checked before `authOk` is accepted, or the replication password when the upstream asks for it
 * in the clear; the password is never sent unasked), commands
 * answered by id (IDENTIFY_SYSTEM, TIMELINE_HISTORY, slots), and then, after START_REPLICATION
 * or BASE_BACKUP, a stream of frames handed to the caller as they come. Used by the walreceiver
 * and by `walship basebackup`.
 */
import { WebSocket } from 'ws';
import {
  SCRAM_SHA_256_NAME, ScramClient, ScramError,
  DEFAULT_SSL_MODE, MAX_REPLICATION_FRAME_BYTES, PROTOCOL_VERSION, REPLICATION_PATH,
  connectBySslMode, decodeReplicationFrame, describeSslFailure, encodeReplicationMessage, tlsAttemptFailure, upgradeRefusalFailure,
  type ClientSslOptions, type ReplicationRequestPayloads, type ReplicationRequestType, type ReplicationResultPayloads, type SslFailureReport, type SslProblem,
  type SslRootCerts, type TlsClientSettings, type WalSenderMessage,
} from '@walship/protocol';
import { ErrorCode, WalshipError } from '@walship/engine/errors';

export interface ReplicationConnectOptions extends ClientSslOptions {
  host: string;
  port: number;
  user?: string;
  password?: string;
  applicationName: string;
  /** Connecting and the handshake together (connect_timeout). */
  timeoutMs: number;
  /**
   * Ends a connection attempt at once (the walreceiver is stopped meanwhile: a promotion must
   * not wait out connect_timeout for an upstream that accepted the TCP connection and froze).
   */
  signal?: AbortSignal;
}

type Pending = { resolve: (message: WalSenderMessage) => void; reject: (error: Error) => void };

export class ReplicationConnection {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private streamHandler: ((message: WalSenderMessage) => void) | null = null;
  /**
   * Frames that came before anyone listened: `ws` can emit the first XLogData in the same read
   * as the START_REPLICATION result, before the code awaiting that result has called onStream.
   */
  private readonly early: WalSenderMessage[] = [];
  private closeHandler: ((error: Error | null) => void) | null = null;
  private closedWith: Error | null | undefined = undefined;
  /** The upstream's name and role, from its handshake answer. */
  member = '';
  upstreamRole: 'primary' | 'standby' = 'primary';

  private constructor(private readonly socket: WebSocket, readonly options: ReplicationConnectOptions) {
    socket.on('message', (data: Buffer) => this.onFrame(data));
    socket.on('close', (code: number, reason: Buffer) => {
      const error = code === 1000 ? null : new WalshipError(ErrorCode.cannotConnectNow, `replication connection to ${this.where()} closed: ${reason.toString() || `code ${code}`}`);
      this.finish(error);
    });
    socket.on('error', (error: Error) => this.finish(new WalshipError(ErrorCode.cannotConnectNow, `could not receive data from WAL stream: ${error.message}`)));
  }

  private where(): string {
    return `"${this.options.host}", port ${this.options.port}`;
  }

  /**
   * Connects and authenticates; rejects with the server's error (wrong password, not ready...).
   * TLS as `sslmode` says (libpq's modes, `@walship/protocol`'s ssl-mode.ts): with `prefer` or
   * `allow`, a second attempt of the other kind follows only when the first met a node of the
   * other kind.
   */
  static async connect(options: ReplicationConnectOptions): Promise<ReplicationConnection> {
    return connectBySslMode(
      options,
      sslError,
      (tls, roots) => ReplicationConnection.connectAttempt(options, tls, roots),
      () => options.signal?.aborted !== true,
    );
  }

  private static connectAttempt(options: ReplicationConnectOptions, tls: TlsClientSettings | null, roots: SslRootCerts | null): Promise<ReplicationConnection> {
    return new Promise((resolve, reject) => {
      // `localhost` is 127.0.0.1, as a node's listen_addresses = 'localhost' binds it (verify-full still checks the name).
      const address = options.host === 'localhost' ? '127.0.0.1' : options.host;
      const host = address.includes(':') ? `[${address}]` : address;
      const socket = new WebSocket(`${tls === null ? 'ws' : 'wss'}://${host}:${options.port}${REPLICATION_PATH}`, {
        maxPayload: MAX_REPLICATION_FRAME_BYTES, perMessageDeflate: false,
        // Passed on to tls.connect (ws's own typing of checkServerIdentity is not Node's).
        ...((tls ?? {}) as object),
      });
      const connection = new ReplicationConnection(socket, options);
      const sslFailure = (failure: SslFailureReport['failure'], reason?: string): WalshipError =>
        sslError(describeSslFailure(failure, { mode: options.sslmode ?? DEFAULT_SSL_MODE, endpoint: connection.where(), host: options.host, roots, ...(reason === undefined ? {} : { reason }) }));
      const onAbort = (): void => {
        clearTimeout(timer);
        socket.terminate();
        reject(new WalshipError(ErrorCode.cannotConnectNow, `connection attempt to the primary server at ${connection.where()} cancelled`));
      };
      const timer = setTimeout(() => {
        options.signal?.removeEventListener('abort', onAbort);
        socket.terminate();
        reject(new WalshipError(ErrorCode.cannotConnectNow, `could not connect to the primary server at ${connection.where()}: timeout expired`));
      }, options.timeoutMs);
      const fail = (error: Error) => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        reject(error);
      };
      if (options.signal?.aborted === true) {
        onAbort();
        return;
      }
      options.signal?.addEventListener('abort', onAbort, { once: true });
      socket.once('unexpected-response', (_request, response) => {
        socket.terminate();
        const refusal = upgradeRefusalFailure(response, tls !== null);
        fail(refusal !== null
          ? sslFailure(refusal.failure, refusal.reason)
          : new WalshipError(ErrorCode.cannotConnectNow, `could not connect to the primary server at ${connection.where()}: server answered HTTP ${response.statusCode} instead of a WebSocket upgrade`));
      });
      socket.once('error', (error) => {
        const failure = tlsAttemptFailure(error, tls !== null);
        if (failure !== null) {
          fail(sslFailure(failure.failure, failure.reason));
          return;
        }
        fail(new WalshipError(ErrorCode.cannotConnectNow, `could not connect to the primary server at ${connection.where()}: ${error.message}`, {
          hint: 'Is the upstream node running and accepting connections on that port? Check primary_conninfo.',
        }));
      });
      socket.once('open', () => {
        connection.handshake().then(() => {
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
          resolve(connection);
        }, fail);
      });
    });
  }

  private handshake(): Promise<void> {
    return new Promise((resolve, reject) => {
      let scram: ScramClient | null = null;
      const refuse = (error: Error): void => {
        reject(error);
        this.socket.terminate();
      };
      const scramFailure = (error: unknown): Error =>
        error instanceof ScramError
          ? new WalshipError(ErrorCode.authenticationFailed, error.message, {
            severity: 'FATAL',
            detail: error.detail ?? `During SCRAM-SHA-256 authentication with the upstream at ${this.where()}.`,
            ...(error.message === 'incorrect server signature' ? { hint: 'The upstream does not know this user\'s password verifier: it may not be the node primary_conninfo means.' } : {}),
          })
          : (error as Error);
      this.streamHandler = (message) => {
        if (message.type === 'authOk') {
          if (scram !== null && !scram.verified) {
            refuse(new WalshipError(ErrorCode.authenticationFailed, 'the upstream accepted the connection without completing SCRAM authentication', {
              severity: 'FATAL',
              detail: `The server at ${this.where()} did not prove that it knows the user's password verifier.`,
              hint: 'The server may not be the node primary_conninfo means; check host and port.',
            }));
            return;
          }
          this.member = message.member;
          this.upstreamRole = message.role;
          this.streamHandler = null;
          resolve();
        } else if (message.type === 'authRequest' && message.method === 'scram-sha-256') {
          if (this.options.password === undefined) {
            reject(new WalshipError(ErrorCode.authenticationFailed, 'the upstream requires SCRAM-SHA-256 authentication, and no password was given', {
              hint: 'Put user=... password=... in primary_conninfo (or a passfile), or set WALSHIP_USER and WALSHIP_PASSWORD for walship basebackup.',
            }));
            this.socket.close();
            return;
          }
          try {
            scram = new ScramClient({ password: this.options.password });
            this.socket.send(encodeReplicationMessage({ type: 'saslInitialResponse', mechanism: SCRAM_SHA_256_NAME, data: scram.clientFirstMessage() }));
          } catch (error) {
            refuse(scramFailure(error));
          }
        } else if (message.type === 'saslContinue' || message.type === 'saslFinal') {
          if (scram === null) {
            refuse(new WalshipError(ErrorCode.protocolViolation, `the upstream sent "${message.type}" without a SASL exchange`));
            return;
          }
          try {
            const answer = scram.handleServerMessage(message);
            if (answer !== null) this.socket.send(encodeReplicationMessage({ type: 'saslResponse', data: answer }));
          } catch (error) {
            refuse(scramFailure(error));
          }
        } else if (message.type === 'authRequest') {
          if (this.options.password === undefined) {
            reject(new WalshipError(ErrorCode.authenticationFailed, 'the upstream requires a replication password, and none was given', {
              hint: 'Put password=... in primary_conninfo, or set WALSHIP_PASSWORD for walship basebackup.',
            }));
            this.socket.close();
            return;
          }
          this.socket.send(encodeReplicationMessage({ type: 'password', password: this.options.password }));
        } else if (message.type === 'error') {
          reject(toError(message));
        }
      };
      this.closeHandler = (error) => reject(error ?? new WalshipError(ErrorCode.cannotConnectNow, 'the upstream closed the connection during the handshake'));
      this.socket.send(encodeReplicationMessage({
        type: 'startup', protocolVersion: PROTOCOL_VERSION, applicationName: this.options.applicationName,
        ...(this.options.user !== undefined ? { user: this.options.user } : {}),
      }));
    });
  }

  /** A command and its answer (or its error). */
  request<K extends ReplicationRequestType>(type: K, payload: ReplicationRequestPayloads[K]): Promise<ReplicationResultPayloads[K extends keyof ReplicationResultPayloads ? K : never]> {
    if (this.closedWith !== undefined) return Promise.reject(this.closedWith ?? new WalshipError(ErrorCode.cannotConnectNow, 'replication connection closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, {
        resolve: (message) => resolve(message as never),
        reject,
      });
      this.socket.send(encodeReplicationMessage({ type, id, ...payload } as never));
    });
  }

  /** Sends a command whose answer is a stream (BASE_BACKUP); returns its id. */
  sendRequest<K extends ReplicationRequestType>(type: K, payload: ReplicationRequestPayloads[K]): number {
    const id = this.nextId++;
    this.socket.send(encodeReplicationMessage({ type, id, ...payload } as never));
    return id;
  }

  /** Hands every later frame (the CopyBoth stream, or a base backup's messages) to `handler`. */
  onStream(handler: (message: WalSenderMessage) => void, onClose: (error: Error | null) => void): void {
    this.streamHandler = handler;
    this.closeHandler = onClose;
    for (const message of this.early.splice(0)) handler(message);
    if (this.closedWith !== undefined) onClose(this.closedWith);
  }

  /** Sends a frame already encoded (a standby status update). */
  send(frame: Buffer): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(frame);
  }

  /** Stops reading the socket (the receiver's disk is behind); TCP pushes back on the sender. */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  close(): void {
    this.socket.close(1000);
  }

  /** Ends the connection at once (a walreceiver being stopped or killed). */
  terminate(): void {
    this.socket.terminate();
  }

  private onFrame(data: Buffer): void {
    let message: WalSenderMessage;
    try {
      message = decodeReplicationFrame(data, 'receiver');
    } catch (error) {
      this.finish(error as Error);
      this.socket.terminate();
      return;
    }
    if (message.type === 'result' && this.pending.has(message.id)) {
      const pending = this.pending.get(message.id)!;
      this.pending.delete(message.id);
      pending.resolve(message);
      return;
    }
    if (message.type === 'error' && message.id !== undefined && this.pending.has(message.id)) {
      const pending = this.pending.get(message.id)!;
      this.pending.delete(message.id);
      pending.reject(toError(message));
      return;
    }
    if (this.streamHandler !== null) this.streamHandler(message);
    else this.early.push(message);
  }

  private finish(error: Error | null): void {
    if (this.closedWith !== undefined) return;
    this.closedWith = error;
    for (const pending of this.pending.values()) pending.reject(error ?? new WalshipError(ErrorCode.cannotConnectNow, 'replication connection closed'));
    this.pending.clear();
    this.closeHandler?.(error);
  }
}

function sslError(problem: SslProblem): WalshipError {
  return new WalshipError(problem.code, problem.message, {
    severity: 'FATAL',
    ...(problem.detail !== undefined ? { detail: problem.detail } : {}),
    ...(problem.hint !== undefined ? { hint: problem.hint } : {}),
  });
}

function toError(message: { code: string; message: string; severity?: string; detail?: string; hint?: string }): WalshipError {
  // The server's severity is kept: FATAL says the server itself ended the session (a refusal),
  // which callers tell apart from a connection that never reached a server.
  const severity = message.severity === 'FATAL' || message.severity === 'PANIC' ? message.severity : 'ERROR';
  return new WalshipError(message.code, message.message, {
    severity,
    ...(message.detail !== undefined ? { detail: message.detail } : {}),
    ...(message.hint !== undefined ? { hint: message.hint } : {}),
  });
}
