/**
 * A replication connection's session (the walsender backend before and around WalSndLoop): the
 * startup handshake (auth/client-authentication.ts: SCRAM-SHA-256 as a user with the replication
 * right, or under `auth_method = trust` the `replication_password` setting or loopback trust;
 * failures slowed down per address as for client sessions), then the replication commands. START_REPLICATION hands the
 * socket to a walsender for as long as it streams; BASE_BACKUP streams a copy of the data
 * directory. A malformed frame ends this connection with a protocol error; the node goes on.
 */
import type { WebSocket } from 'ws';
import { ErrorCode, WalshipError, type LogFunction } from '@walship/engine';
import {
  DEFAULT_USER, PROTOCOL_VERSION, decodeReplicationFrame, encodeReplicationMessage,
  type ReplicationRequest, type ReplicationRequestPayloads, type ReplicationResultPayloads, type ReplicationResultType, type WalReceiverMessage,
} from '@walship/protocol';
import { AuthThrottle } from './auth/auth-throttle.js';
import { ClientAuthentication, isAuthMessage, type AuthSettings, type AuthStep } from './auth/client-authentication.js';

/** How long a replication peer may take to authenticate (authentication_timeout). */
const AUTHENTICATION_TIMEOUT_MS = 60_000;

/** What a replication session asks of the node (the postmaster implements it). */
export interface ReplicationBackend {
  /** Whether replication connections are accepted now, and if not why (canAcceptConnections). */
  refusal(): { message: string; detail?: string; hint?: string } | null;
  /** How to authenticate, read at each handshake. */
  authSettings(): AuthSettings;
  /** The node's throttle of authentication failures (shared with client sessions). */
  throttle?: AuthThrottle;
  memberName(): string;
  role(): 'primary' | 'standby';
  identifySystem(): ReplicationResultPayloads['identifySystem'];
  timelineHistory(timeline: number): ReplicationResultPayloads['timelineHistory'];
  createSlot(name: string, reserveWal: boolean): ReplicationResultPayloads['createReplicationSlot'];
  dropSlot(name: string): void;
  listSlots(): ReplicationResultPayloads['listReplicationSlots'];
  /** Validates the request (throws its error), then streams until the walsender ends. */
  startReplication(socket: WebSocket, request: ReplicationRequestPayloads['startReplication'], who: { applicationName: string; clientAddress: string }, begin: () => void): Promise<void>;
  /** Streams a base backup on the socket; resolves when it is sent. */
  baseBackup(socket: WebSocket, request: { id: number; label: string; fast?: boolean; includeWal?: boolean; maxRateBytes?: number }): Promise<void>;
  /** A checkpoint (primary) or a restartpoint and a flush of every dirty buffer (standby), after replaying `waitForLsn`. */
  flushBuffers(request: { waitForLsn?: string; timeoutMs?: number }): Promise<ReplicationResultPayloads['flushBuffers']>;
  /** The data directory's files, as `walship rewind` and `walship verify` see them. */
  listDataFiles(): ReplicationResultPayloads['listDataFiles'];
  readDataFile(request: { path: string; offset: number; length: number }): ReplicationResultPayloads['readDataFile'];
  pageChecksums(request: { relNode: number; startBlock: number; maxBlocks: number }): ReplicationResultPayloads['pageChecksums'];
  log: LogFunction;
}

export function startReplicationSession(socket: WebSocket, peer: { address: string; port: number }, backend: ReplicationBackend): void {
  let authenticated = false;
  let applicationName = '';
  let user = DEFAULT_USER;
  let authentication: ClientAuthentication | null = null;
  let throttled = false;
  /** Refused: whatever the peer sends before the close is ignored (and not counted again). */
  let refused = false;
  let throttleTimer: NodeJS.Timeout | undefined;
  const throttle = backend.throttle ?? new AuthThrottle();
  let busy = false;
  const log = backend.log;
  const where = `${peer.address}:${peer.port}`;
  const timer = setTimeout(() => {
    if (!authenticated) fatal(ErrorCode.protocolViolation, 'canceling authentication due to timeout');
  }, AUTHENTICATION_TIMEOUT_MS);
  socket.on('close', () => {
    clearTimeout(timer);
    clearTimeout(throttleTimer);
  });
  socket.on('error', () => socket.terminate());

  function send(message: Parameters<typeof encodeReplicationMessage>[0]): void {
    socket.send(encodeReplicationMessage(message));
  }

  function fatal(code: string, message: string, hint?: string, detail?: string): void {
    try {
      send({ type: 'error', code, message, severity: 'FATAL', ...(detail !== undefined ? { detail } : {}), ...(hint !== undefined ? { hint } : {}) });
    } finally {
      socket.close(code === ErrorCode.protocolViolation ? 1002 : 1008, message.slice(0, 120));
    }
  }

  function reply<K extends ReplicationResultType>(id: number, request: K, payload: ReplicationResultPayloads[K]): void {
    send({ type: 'result', id, request, ...payload } as never);
  }

  function replyError(id: number, error: unknown): void {
    const known = error instanceof WalshipError ? error : null;
    send({
      type: 'error', id, code: known?.code ?? ErrorCode.internal, severity: known?.severity ?? 'ERROR',
      message: error instanceof Error ? error.message : String(error),
      ...(known?.detail !== undefined ? { detail: known.detail } : {}),
      ...(known?.hint !== undefined ? { hint: known.hint } : {}),
    });
  }

  function onAuthStep(step: AuthStep): void {
    switch (step.step) {
      case 'send':
        send(step.message);
        return;
      case 'ok':
        throttle.succeeded(peer.address);
        if (step.final !== undefined) send(step.final);
        authenticated = true;
        clearTimeout(timer);
        log('DEBUG', `replication connection authorized: user=${user} method=${step.method} application_name=${applicationName} host=${peer.address} port=${peer.port}`);
        send({ type: 'authOk', serverVersion: '1', member: backend.memberName(), role: backend.role() });
        return;
      case 'fail':
        refused = true;
        if (step.counts) throttle.failed(peer.address, Date.now());
        if (step.final !== undefined) send(step.final);
        log('LOG', `replication connection from ${where}: ${step.message}`);
        log('DETAIL', step.logDetail);
        fatal(step.code, step.message, step.hint, step.detail);
        return;
    }
  }

  function onStartup(message: Extract<WalReceiverMessage, { type: 'startup' }>): void {
    if (message.protocolVersion !== PROTOCOL_VERSION) {
      fatal(ErrorCode.protocolViolation, `unsupported frontend protocol ${message.protocolVersion}: server supports ${PROTOCOL_VERSION} to ${PROTOCOL_VERSION}`);
      return;
    }
    const refusal = backend.refusal();
    if (refusal !== null) {
      fatal(ErrorCode.cannotConnectNow, refusal.message, refusal.hint, refusal.detail);
      return;
    }
    applicationName = message.applicationName ?? '';
    user = message.user ?? DEFAULT_USER;
    const begin = (): void => {
      throttled = false;
      authentication = new ClientAuthentication(backend.authSettings(), 'replication', peer.address, user);
      onAuthStep(authentication.start(message.password));
    };
    // Repeated failures from this address: wait before authenticating (a timer, never blocking).
    const waitMs = throttle.admit(peer.address, Date.now());
    if (waitMs === 0) {
      begin();
      return;
    }
    throttled = true;
    throttleTimer = setTimeout(() => {
      if (socket.readyState === socket.OPEN) begin();
    }, waitMs);
  }

  async function onRequest(request: ReplicationRequest): Promise<void> {
    const id = request.id;
    try {
      switch (request.type) {
        case 'identifySystem':
          reply(id, 'identifySystem', backend.identifySystem());
          return;
        case 'timelineHistory':
          reply(id, 'timelineHistory', backend.timelineHistory(request.timeline));
          return;
        case 'createReplicationSlot':
          reply(id, 'createReplicationSlot', backend.createSlot(request.name, request.reserveWal === true));
          return;
        case 'dropReplicationSlot':
          backend.dropSlot(request.name);
          reply(id, 'dropReplicationSlot', {});
          return;
        case 'listReplicationSlots':
          reply(id, 'listReplicationSlots', backend.listSlots());
          return;
        case 'startReplication':
          busy = true;
          socket.off('message', onMessage);
          await backend.startReplication(socket, request, { applicationName, clientAddress: peer.address }, () => reply(id, 'startReplication', {}));
          socket.close(1000);
          return;
        case 'baseBackup':
          busy = true;
          await backend.baseBackup(socket, request);
          busy = false;
          return;
        case 'flushBuffers':
          reply(id, 'flushBuffers', await backend.flushBuffers(request));
          return;
        case 'listDataFiles':
          reply(id, 'listDataFiles', backend.listDataFiles());
          return;
        case 'readDataFile':
          reply(id, 'readDataFile', backend.readDataFile(request));
          return;
        case 'pageChecksums':
          reply(id, 'pageChecksums', backend.pageChecksums(request));
          return;
      }
    } catch (error) {
      busy = false;
      if (request.type === 'startReplication') socket.on('message', onMessage);
      replyError(id, error);
    }
  }

  function onMessage(data: Buffer): void {
    let message: WalReceiverMessage;
    try {
      message = decodeReplicationFrame(data, 'sender');
    } catch (error) {
      fatal(ErrorCode.protocolViolation, error instanceof Error ? error.message : String(error));
      return;
    }
    if (refused) return;
    if (!authenticated) {
      if (authentication === null && !throttled) {
        if (message.type === 'startup') onStartup(message);
        else fatal(ErrorCode.protocolViolation, `expected a startup message, got "${message.type}"`);
      } else if (authentication !== null && isAuthMessage(message)) {
        onAuthStep(authentication.onMessage(message));
      } else {
        fatal(ErrorCode.protocolViolation, `unexpected "${message.type}" message during authentication`);
      }
      return;
    }
    if (busy) {
      fatal(ErrorCode.protocolViolation, `unexpected "${message.type}" message while a command is running`);
      return;
    }
    if (message.type === 'startup' || isAuthMessage(message) || message.type === 'standbyStatusUpdate' || message.type === 'copyDone') {
      fatal(ErrorCode.protocolViolation, `unexpected "${message.type}" message outside of streaming`);
      return;
    }
    void onRequest(message);
  }

  socket.on('message', onMessage);
}
