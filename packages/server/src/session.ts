/**
 * A client session (PostgreSQL's backend process, in one object): one per WebSocket on
 * `/client`.
 *
 * The listener starts it on an accepted socket. It authenticates first: the `startup` message,
 * the node's state (a node that is starting, recovering or stopping refuses with
 * `cannot_connect_now`), a wait when its address failed to authenticate just before
 * (auth/auth-throttle.ts), then auth/client-authentication.ts (SCRAM-SHA-256 against the users
 * file, or under `auth_method = trust` the `password` setting or loopback trust). Then it reads
 * requests, checks each against the user's rights (auth/rights.ts: a missing right is an ERROR
 * reply, the session goes on), executes them against the Backend — several at once, up to
 * MAX_IN_FLIGHT_REQUESTS, replies tagged with the request id in completion order — and answers
 * each with a result or an error.
 *
 * How it stops: the client closes; or the session ends itself with a FATAL error (a malformed
 * frame, failed authentication, the listener's `closeAllSessions` at shutdown), sent as an error
 * without id before the close. What its failure means: nothing beyond this connection. A bad
 * frame ends this session only; an exception in a Backend call becomes an error reply; nothing
 * a client sends can throw out of the session's event handlers, so the node keeps serving the
 * others.
 */
import { setMaxListeners } from 'node:events';
import type { RawData, WebSocket } from 'ws';
import { ErrorCode, WalshipError } from '@walship/engine';
import type { LogFunction } from '@walship/engine';
import {
  DEFAULT_USER,
  decodeClientMessage,
  encodeMessage,
  entryToWire,
  lsnFromWire,
  lsnToWire,
  MAX_FRAME_BYTES,
  MAX_IN_FLIGHT_REQUESTS,
  PROTOCOL_VERSION,
  ProtocolError,
  rangeResultToWire,
  readOptionsFromWire,
  txnRequestFromWire,
  txnResultToWire,
} from '@walship/protocol';
import type { AnyResultMessage, ClientMessage, ClientRequest, ErrorMessage, ServerMessage, StartupMessage } from '@walship/protocol';
import type { Backend, ServerState } from './backend.js';
import { AuthThrottle } from './auth/auth-throttle.js';
import { ClientAuthentication, isAuthMessage, type AuthSettings, type AuthStep } from './auth/client-authentication.js';
import { permissionDenied, requiredRight, type Right } from './auth/rights.js';
import { lookupSetting, settingDefinition } from './settings/index.js';

export { isLoopbackAddress } from './auth/client-authentication.js';

/**
 * How long a client may take to authenticate (PostgreSQL's authentication_timeout, 1 min). A
 * connection that never finishes its handshake would otherwise hold a slot forever.
 */
export const AUTHENTICATION_TIMEOUT_MS = 60_000;

/**
 * Request bytes a session may have in execution at once. The first request is always admitted
 * (one frame is at most MAX_FRAME_BYTES); past this the socket is paused, so a client pipelining
 * large transactions holds at most about one frame's worth of the node's memory.
 */
export const MAX_SESSION_IN_FLIGHT_BYTES = MAX_FRAME_BYTES;

/**
 * Reply bytes buffered for a client that does not read them before the session stops reading its
 * requests (WebSocket backpressure). 16 MiB keeps a fast client streaming and a stuck one cheap.
 */
export const MAX_SESSION_BUFFERED_BYTES = 16 * 1024 * 1024;

/**
 * Requests read but waiting for an execution slot. Reading stops at MAX_IN_FLIGHT_REQUESTS, but
 * frames already in the socket's buffers still arrive (at most a read buffer's worth, a few
 * thousand of the smallest frames); more than this means flow control is not working, and the
 * session ends rather than hoard them.
 */
export const MAX_SESSION_BACKLOG_REQUESTS = 16_384;

/** How long a closing session waits for the client's close frame before dropping the socket. */
export const SESSION_CLOSE_TIMEOUT_MS = 1_000;

/** PostgreSQL's 54000: a reply that cannot be sent in one frame. */
const PROGRAM_LIMIT_EXCEEDED = 'program_limit_exceeded';
/** PostgreSQL's 53300. */
const TOO_MANY_CONNECTIONS = 'too_many_connections';

/** WebSocket close codes (RFC 6455). */
const CLOSE_NORMAL = 1000;
const CLOSE_GOING_AWAY = 1001;
const CLOSE_PROTOCOL_ERROR = 1002;
const CLOSE_POLICY_VIOLATION = 1008;
const CLOSE_TRY_AGAIN_LATER = 1013;
/** pg_promote's default wait_seconds. */
const DEFAULT_PROMOTE_WAIT_MS = 60_000;

/**
 * How sessions authenticate; read at each handshake, so that a reload changes it in place. Absent
 * fields take their defaults: `auth_method = trust`, no password, no users file.
 */
export interface SessionAuth extends Partial<AuthSettings> {
  /** Shared by every session of the node (client and replication), so that failures add up. */
  throttle?: AuthThrottle;
}

/** The settings part of a SessionAuth, with its defaults. */
export function authSettingsOf(auth: SessionAuth): AuthSettings {
  return {
    method: auth.method ?? 'trust',
    password: auth.password ?? '',
    replicationPassword: auth.replicationPassword ?? '',
    ...(auth.users === undefined ? {} : { users: auth.users }),
  };
}

/** Whether showing a setting needs the admin right (a password). */
function isSecretSetting(name: string): boolean {
  try {
    return settingDefinition(lookupSetting(name)).secret === true;
  } catch {
    return false;
  }
}

export interface SessionContext {
  backend: Backend;
  auth: SessionAuth;
  log: LogFunction;
  serverVersion: string;
}

export interface Peer {
  address: string;
  port: number;
}

type SessionPhase = 'startup' | 'throttled' | 'exchange' | 'authenticating' | 'ready' | 'closing';

/** Messages of `the database system is ...`, by state (PostgreSQL's CAC_* answers). */
export function notReadyMessage(state: ServerState): string {
  switch (state) {
    case 'starting':
      return 'the database system is starting up';
    case 'stopping':
      return 'the database system is shutting down';
    case 'recovery':
    case 'crashed':
      return 'the database system is in recovery mode';
    case 'ready':
      return 'the database system is ready';
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class ClientSession {
  private phase: SessionPhase = 'startup';
  private user = DEFAULT_USER;
  private applicationName = '';
  /** The user's rights, once authenticated. */
  private rights: readonly Right[] = [];
  private authentication: ClientAuthentication | null = null;
  private throttleTimer: NodeJS.Timeout | undefined;
  private readonly throttle: AuthThrottle;
  private readonly startedAt = Date.now();
  /** Ids of requests executing or waiting in the backlog. */
  private readonly inFlightIds = new Set<number>();
  private inFlightBytes = 0;
  private executing = 0;
  private readonly backlog: { request: Exclude<ClientRequest, { type: 'ping' }>; bytes: number }[] = [];
  private authTimer: NodeJS.Timeout | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private ended = false;
  /**
   * Aborted when the session ends, with the reason `shutdown` (the server closed it) or `client`:
   * ends the waits of its commits for synchronous standbys (ProcDiePending in SyncRepWaitForLSN).
   */
  private readonly lifetime = new AbortController();

  constructor(
    private readonly socket: WebSocket,
    readonly peer: Peer,
    private readonly context: SessionContext,
    private readonly onEnd: (session: ClientSession) => void,
  ) {
    // Each commit waiting for standbys listens on it, up to MAX_IN_FLIGHT_REQUESTS at once: not a leak.
    setMaxListeners(MAX_IN_FLIGHT_REQUESTS + 1, this.lifetime.signal);
    this.throttle = context.auth.throttle ?? new AuthThrottle();
  }

  /** Attaches the socket's handlers and starts the authentication clock. */
  start(): void {
    const { log } = this.context;
    log('DEBUG', `connection received: host=${this.peer.address} port=${this.peer.port}`);
    this.socket.on('message', (data: RawData, isBinary: boolean) => this.guard(() => this.onFrame(data, isBinary)));
    this.socket.on('error', (error: Error) => {
      // ws reports frames it refuses (too large, bad opcode) here and then closes the socket.
      log('LOG', `could not receive data from client: ${error.message} (host=${this.peer.address} port=${this.peer.port})`);
    });
    this.socket.on('close', () => this.guard(() => this.end()));
    this.authTimer = setTimeout(() => {
      this.fatal(ErrorCode.timeout, 'canceling authentication due to timeout', CLOSE_POLICY_VIOLATION);
    }, AUTHENTICATION_TIMEOUT_MS);
    this.authTimer.unref();
  }

  /** Ends the session with a FATAL error (e.g. at shutdown: admin_shutdown). */
  terminate(code: string, message: string, hint?: string): void {
    if (!this.lifetime.signal.aborted) this.lifetime.abort('shutdown');
    this.fatal(code, message, CLOSE_GOING_AWAY, hint === undefined ? {} : { hint });
  }

  /** Refuses the session at once: the node has no slot for it (max_connections). */
  refuseTooMany(maxConnections: number): void {
    this.fatal(TOO_MANY_CONNECTIONS, 'sorry, too many clients already', CLOSE_TRY_AGAIN_LATER, {
      detail: `The node accepts at most ${maxConnections} client sessions (max_connections).`,
    });
  }

  get isReady(): boolean {
    return this.phase === 'ready';
  }

  // -------------------------------------------------------------------------------------------

  /** Runs a handler; an exception from it ends this session, never the node. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.context.log('ERROR', `client session failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      this.fatal(ErrorCode.internal, 'internal error', CLOSE_PROTOCOL_ERROR);
    }
  }

  private onFrame(data: RawData, isBinary: boolean): void {
    if (this.phase === 'closing') return;
    let message: ClientMessage;
    try {
      if (!isBinary) throw new ProtocolError('invalid frame: text frames are not part of the protocol');
      message = decodeClientMessage(data);
    } catch (error) {
      const violation = error instanceof ProtocolError ? error : new ProtocolError('invalid frame', { cause: error });
      this.context.log(
        'FATAL',
        `${violation.message}${violation.detail === undefined ? '' : ` (${violation.detail})`}: host=${this.peer.address} port=${this.peer.port}`,
      );
      this.fatal(violation.code, violation.message, CLOSE_PROTOCOL_ERROR, { detail: violation.detail });
      return;
    }
    switch (this.phase) {
      case 'startup':
        if (message.type !== 'startup') {
          this.protocolViolation(`expected a startup message, got "${message.type}"`);
          return;
        }
        this.onStartup(message);
        return;
      case 'exchange':
        if (!isAuthMessage(message)) {
          this.protocolViolation(`unexpected "${message.type}" message during authentication`);
          return;
        }
        this.onAuthStep(this.authentication!.onMessage(message));
        return;
      case 'throttled':
      case 'authenticating':
        this.protocolViolation(`unexpected "${message.type}" message during authentication`);
        return;
      case 'ready':
        if (message.type === 'startup' || isAuthMessage(message)) {
          this.protocolViolation(`unexpected "${message.type}" message after authentication`);
          return;
        }
        this.dispatch(message, data);
        return;
    }
  }

  private protocolViolation(message: string): void {
    this.context.log('FATAL', `${message}: host=${this.peer.address} port=${this.peer.port}`);
    this.fatal(ErrorCode.protocolViolation, message, CLOSE_PROTOCOL_ERROR);
  }

  // -------------------------------------------------------------------------------------------
  // Authentication

  private onStartup(message: StartupMessage): void {
    this.user = message.user ?? DEFAULT_USER;
    this.applicationName = message.applicationName ?? '';
    if (message.protocolVersion !== PROTOCOL_VERSION) {
      this.fatal(
        ErrorCode.protocolViolation,
        `unsupported frontend protocol ${message.protocolVersion}: server supports ${PROTOCOL_VERSION} to ${PROTOCOL_VERSION}`,
        CLOSE_PROTOCOL_ERROR,
        { hint: 'Use a client library of the same walship version as the node.' },
      );
      return;
    }
    const state = this.context.backend.state();
    if (state !== 'ready') {
      this.fatal(ErrorCode.cannotConnectNow, notReadyMessage(state), CLOSE_TRY_AGAIN_LATER);
      return;
    }
    // Repeated failures from this address: wait before authenticating (a timer, never blocking).
    const waitMs = this.throttle.admit(this.peer.address, Date.now());
    if (waitMs === 0) {
      this.beginAuthentication(message.password);
      return;
    }
    this.phase = 'throttled';
    this.context.log('DEBUG', `authentication of host=${this.peer.address} port=${this.peer.port} delayed by ${waitMs} ms after failures`);
    this.throttleTimer = setTimeout(() => this.guard(() => {
      if (this.phase === 'throttled') this.beginAuthentication(message.password);
    }), waitMs);
  }

  private beginAuthentication(startupPassword: string | undefined): void {
    this.phase = 'exchange';
    this.authentication = new ClientAuthentication(authSettingsOf(this.context.auth), 'client', this.peer.address, this.user);
    this.onAuthStep(this.authentication.start(startupPassword));
  }

  private onAuthStep(step: AuthStep): void {
    switch (step.step) {
      case 'send':
        this.send(step.message);
        return;
      case 'ok':
        this.throttle.succeeded(this.peer.address);
        if (step.final !== undefined) this.send(step.final);
        this.rights = step.rights;
        this.authorized(step.method);
        return;
      case 'fail': {
        if (step.counts) this.throttle.failed(this.peer.address, Date.now());
        if (step.final !== undefined) this.send(step.final);
        this.context.log('FATAL', `${step.message}: host=${this.peer.address} port=${this.peer.port}`);
        this.context.log('DETAIL', step.logDetail);
        this.fatal(step.code, step.message, step.code === ErrorCode.protocolViolation ? CLOSE_PROTOCOL_ERROR : CLOSE_POLICY_VIOLATION, {
          ...(step.detail === undefined ? {} : { detail: step.detail }),
          ...(step.hint === undefined ? {} : { hint: step.hint }),
        });
        return;
      }
    }
  }

  private authorized(method: string): void {
    this.phase = 'authenticating';
    const { backend, log } = this.context;
    let role: 'primary' | 'standby';
    try {
      role = backend.role();
    } catch (error) {
      const failure = error instanceof WalshipError ? error : new WalshipError(ErrorCode.internal, 'internal error', { detail: errorText(error) });
      log('ERROR', `could not start session: ${errorText(error)}`);
      this.fatal(failure.code, failure.message, CLOSE_TRY_AGAIN_LATER, { detail: failure.detail, hint: failure.hint });
      return;
    }
    clearTimeout(this.authTimer);
    this.phase = 'ready';
    this.send({ type: 'authOk', serverVersion: this.context.serverVersion, member: backend.memberName(), role });
    log(
      'LOG',
      `connection authorized: user=${this.user} method=${method} application_name=${this.applicationName} host=${this.peer.address} port=${this.peer.port}`,
    );
  }

  // -------------------------------------------------------------------------------------------
  // Requests

  private dispatch(request: ClientRequest, data: RawData): void {
    if (this.inFlightIds.has(request.id)) {
      this.protocolViolation(`request id ${request.id} is already in use`);
      return;
    }
    if (request.type === 'ping') {
      this.send({ type: 'result', id: request.id, request: 'ping' });
      return;
    }
    const right = requiredRight(request.type, { secretSetting: request.type === 'showSetting' && isSecretSetting(request.name) });
    if (right !== null && !this.rights.includes(right)) {
      const denied = permissionDenied(request.type, right, this.user);
      this.context.log('ERROR', `${denied.message}: user=${this.user} request=${request.type} host=${this.peer.address} port=${this.peer.port}`);
      this.replyError(request.id, request.type, denied);
      return;
    }
    const bytes = Array.isArray(data) ? data.reduce((sum, part) => sum + part.length, 0) : data.byteLength;
    this.inFlightIds.add(request.id);
    this.inFlightBytes += bytes;
    if (this.executing < MAX_IN_FLIGHT_REQUESTS) {
      void this.run(request, bytes);
    } else {
      // Frames already read when the socket was paused wait here, so that the Backend never
      // sees more than MAX_IN_FLIGHT_REQUESTS of this session's requests at once.
      this.backlog.push({ request, bytes });
      if (this.backlog.length > MAX_SESSION_BACKLOG_REQUESTS) {
        this.protocolViolation(`more than ${MAX_SESSION_BACKLOG_REQUESTS} requests waiting`);
        return;
      }
    }
    this.updateFlow();
  }

  /**
   * One request from execution to reply. An async function, not a then/catch/finally chain: the
   * chain was four more promises and reactions per request, a kilobyte of garbage per commit.
   * Never rejects: a failed reply is logged.
   */
  private async run(request: Exclude<ClientRequest, { type: 'ping' }>, bytes: number): Promise<void> {
    this.executing++;
    try {
      let reply: AnyResultMessage;
      try {
        reply = await this.execute(request);
      } catch (error) {
        this.replyError(request.id, request.type, error);
        return;
      }
      this.reply(reply);
    } catch (error) {
      this.context.log('ERROR', `could not reply to ${request.type}: ${errorText(error)}`);
    } finally {
      this.executing--;
      this.inFlightIds.delete(request.id);
      this.inFlightBytes -= bytes;
      const next = this.phase === 'closing' ? undefined : this.backlog.shift();
      if (next !== undefined) void this.run(next.request, next.bytes);
      this.updateFlow();
    }
  }

  /** Runs one request on the Backend. Async, so that a synchronous throw becomes a rejection. */
  private async execute(request: Exclude<ClientRequest, { type: 'ping' }>): Promise<AnyResultMessage> {
    const { backend } = this.context;
    const { id } = request;
    switch (request.type) {
      case 'get': {
        const entry = await backend.get(request.table, request.key, readOptionsFromWire(request));
        return { type: 'result', id, request: 'get', entry: entry === null ? null : entryToWire(entry) };
      }
      case 'range': {
        const options = { ...readOptionsFromWire(request) } as Parameters<Backend['range']>[0];
        if (request.table !== undefined) options.table = request.table;
        if (request.start !== undefined) options.start = request.start;
        if (request.end !== undefined) options.end = request.end;
        if (request.prefix !== undefined) options.prefix = request.prefix;
        if (request.limit !== undefined) options.limit = request.limit;
        return { type: 'result', id, request: 'range', ...rangeResultToWire(await backend.range(options)) };
      }
      case 'txn': {
        // statement_timeout for the wait for standbys, counted from now, when the client gave one.
        const deadlineMs = request.timeoutMs === undefined ? undefined : Date.now() + request.timeoutMs;
        const result = await backend.txn(txnRequestFromWire(request), { signal: this.lifetime.signal, ...(deadlineMs === undefined ? {} : { deadlineMs }) });
        return { type: 'result', id, request: 'txn', ...txnResultToWire(result) };
      }
      case 'waitLsn': {
        const options = { ...(request.timeoutMs === undefined ? {} : { timeoutMs: request.timeoutMs }), ...(request.noThrow === undefined ? {} : { noThrow: request.noThrow }) };
        const outcome = await backend.waitLsn(lsnFromWire(request.lsn), request.mode ?? 'standby_replay', options);
        return { type: 'result', id, request: 'waitLsn', status: outcome.status, lsn: lsnToWire(outcome.lsn) };
      }
      case 'createTable': {
        const result = await backend.createTable(request.name, { signal: this.lifetime.signal });
        return { type: 'result', id, request: 'createTable', created: result.created, lsn: lsnToWire(result.lsn) };
      }
      case 'listTables':
        return { type: 'result', id, request: 'listTables', tables: await backend.listTables() };
      case 'status':
        return { type: 'result', id, request: 'status', status: await backend.status() };
      case 'checkpoint': {
        const result = await backend.checkpoint();
        return { type: 'result', id, request: 'checkpoint', lsn: lsnToWire(result.lsn), redoLsn: lsnToWire(result.redoLsn) };
      }
      case 'promote': {
        const result = await backend.promote({ wait: request.wait ?? true, timeoutMs: request.timeoutMs ?? DEFAULT_PROMOTE_WAIT_MS });
        return { type: 'result', id, request: 'promote', promoted: result.promoted, timeline: result.timeline };
      }
      case 'setSetting': {
        const result = await backend.setSetting(request.name, request.value);
        return { type: 'result', id, request: 'setSetting', restartRequired: result.restartRequired };
      }
      case 'showSetting':
        return { type: 'result', id, request: 'showSetting', value: await backend.showSetting(request.name) };
      case 'lease': {
        const granted = await backend.grantLease({
          holder: request.holder, timeline: request.timeline, durationMs: request.durationMs, issuedAtUs: request.issuedAtUs, grantor: request.grantor,
        });
        return { type: 'result', id, request: 'lease', holder: granted.holder, expiresInMs: granted.expiresInMs };
      }
    }
  }

  private reply(reply: AnyResultMessage): void {
    if (!this.canSend()) return;
    let frame: Buffer;
    try {
      frame = encodeMessage(reply);
    } catch (error) {
      if (error instanceof ProtocolError && error.message.startsWith('message too large')) {
        this.sendError({
          type: 'error',
          id: reply.id,
          code: PROGRAM_LIMIT_EXCEEDED,
          message: `${reply.request} result too large to send`,
          detail: error.message,
          hint: reply.request === 'range' ? 'Use a limit and fetch the range in parts.' : undefined,
          severity: 'ERROR',
        });
        return;
      }
      // The Backend returned something the protocol cannot carry: a bug, reported, not sent.
      this.context.log('ERROR', `invalid ${reply.request} reply from the backend: ${errorText(error)}`);
      this.sendError({
        type: 'error',
        id: reply.id,
        code: ErrorCode.internal,
        message: 'internal error: the server produced an invalid reply',
        detail: errorText(error),
        severity: 'ERROR',
      });
      return;
    }
    this.sendFrame(frame);
  }

  private replyError(id: number, type: string, error: unknown): void {
    if (error instanceof WalshipError) {
      this.sendError({
        type: 'error',
        id,
        code: error.code,
        message: error.message,
        detail: error.detail,
        hint: error.hint,
        severity: error.severity,
        ...(error.lsn === undefined ? {} : { lsn: lsnToWire(error.lsn) }),
      });
      return;
    }
    this.context.log('ERROR', `${type} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    this.sendError({ type: 'error', id, code: ErrorCode.internal, message: 'internal error', detail: errorText(error), severity: 'ERROR' });
  }

  // -------------------------------------------------------------------------------------------
  // Sending, flow control, closing

  private canSend(): boolean {
    return this.socket.readyState === this.socket.OPEN;
  }

  private send(message: ServerMessage): void {
    if (!this.canSend()) return;
    this.sendFrame(encodeMessage(message));
  }

  /** Sends an error reply; texts are cut to the protocol's limits rather than dropped. */
  private sendError(message: ErrorMessage): void {
    const clean: ErrorMessage = { ...message };
    for (const name of ['message', 'detail', 'hint'] as const) {
      const text = clean[name];
      if (text === undefined) delete clean[name];
      else if (text.length > 4096) clean[name] = `${text.slice(0, 4096)}...`;
    }
    if (clean.code === '' || clean.code.length > 64) clean.code = ErrorCode.internal;
    try {
      this.send(clean);
    } catch (error) {
      this.context.log('ERROR', `could not send error reply: ${errorText(error)}`);
      this.send({ type: 'error', id: message.id, code: ErrorCode.internal, message: 'internal error', severity: 'ERROR' });
    }
  }

  private sendFrame(frame: Buffer): void {
    if (!this.canSend()) return;
    this.socket.send(frame, { binary: true }, () => this.updateFlow());
    this.updateFlow();
  }

  /** Pauses reading requests while too much is in execution or waiting to be sent. */
  private updateFlow(): void {
    if (this.phase === 'closing' || !this.canSend()) return;
    const over =
      this.inFlightIds.size >= MAX_IN_FLIGHT_REQUESTS ||
      this.inFlightBytes >= MAX_SESSION_IN_FLIGHT_BYTES ||
      this.socket.bufferedAmount >= MAX_SESSION_BUFFERED_BYTES;
    if (over && !this.socket.isPaused) this.socket.pause();
    else if (!over && this.socket.isPaused) this.socket.resume();
  }

  /** Sends a FATAL error without id and closes the connection. */
  private fatal(code: string, message: string, closeCode: number, extra: { detail?: string; hint?: string } = {}): void {
    if (this.phase === 'closing' || this.ended) return;
    this.phase = 'closing';
    clearTimeout(this.authTimer);
    clearTimeout(this.throttleTimer);
    try {
      this.sendError({ type: 'error', code, message, detail: extra.detail, hint: extra.hint, severity: 'FATAL' });
    } catch {
      // Nothing more to say to this client.
    }
    if (this.socket.isPaused) this.socket.resume();
    this.socket.close(closeCode === CLOSE_NORMAL ? CLOSE_NORMAL : closeCode, code.slice(0, 100));
    this.closeTimer = setTimeout(() => this.socket.terminate(), SESSION_CLOSE_TIMEOUT_MS);
    this.closeTimer.unref();
  }

  private end(): void {
    if (this.ended) return;
    this.ended = true;
    if (!this.lifetime.signal.aborted) this.lifetime.abort('client');
    this.phase = 'closing';
    clearTimeout(this.authTimer);
    clearTimeout(this.throttleTimer);
    clearTimeout(this.closeTimer);
    const seconds = (Date.now() - this.startedAt) / 1000;
    this.context.log(
      'DEBUG',
      `disconnection: session time: ${seconds.toFixed(3)} s user=${this.user} host=${this.peer.address} port=${this.peer.port}`,
    );
    this.onEnd(this);
  }
}
