/**
 * A replication connection's session (the walsender backend before and around WalSndLoop): the
 * startup handshake, checked against `replication_password` (trust for loopback peers when none
 * is set, as for client sessions), then the replication commands. START_REPLICATION hands the
 * socket to a walsender for as long as it streams; BASE_BACKUP streams a copy of the data
 * directory. A malformed frame ends this connection with a protocol error; the node goes on.
 */
import type { WebSocket } from 'ws';
import { ErrorCode, WalshipError, type LogFunction } from '@walship/engine';
import {
  PROTOCOL_VERSION, decodeReplicationFrame, encodeReplicationMessage,
  type ReplicationRequest, type ReplicationResultPayloads, type ReplicationResultType, type WalReceiverMessage,
} from '@walship/protocol';
import { isLoopbackAddress } from './session.js';

/** How long a replication peer may take to authenticate (authentication_timeout). */
const AUTHENTICATION_TIMEOUT_MS = 60_000;

/** What a replication session asks of the node (the postmaster implements it). */
export interface ReplicationBackend {
  /** Whether replication connections are accepted now, and if not why (canAcceptConnections). */
  refusal(): { message: string; detail?: string; hint?: string } | null;
  replicationPassword(): string;
  memberName(): string;
  role(): 'primary' | 'standby';
  identifySystem(): ReplicationResultPayloads['identifySystem'];
  timelineHistory(timeline: number): ReplicationResultPayloads['timelineHistory'];
  createSlot(name: string, reserveWal: boolean): ReplicationResultPayloads['createReplicationSlot'];
  dropSlot(name: string): void;
  listSlots(): ReplicationResultPayloads['listReplicationSlots'];
  /** Validates the request (throws its error), then streams until the walsender ends. */
  startReplication(socket: WebSocket, request: { slot?: string; startLsn: string; timeline: number }, who: { applicationName: string; clientAddress: string }, begin: () => void): Promise<void>;
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
  let busy = false;
  const log = backend.log;
  const where = `${peer.address}:${peer.port}`;
  const timer = setTimeout(() => {
    if (!authenticated) fatal(ErrorCode.protocolViolation, 'canceling authentication due to timeout');
  }, AUTHENTICATION_TIMEOUT_MS);
  socket.on('close', () => clearTimeout(timer));
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

  function authenticate(password: string | undefined, user: string): boolean {
    const required = backend.replicationPassword();
    if (required === '') {
      if (isLoopbackAddress(peer.address)) return true;
      log('LOG', `replication connection from ${where} refused: no replication_password is set, so only loopback peers may connect`);
      fatal(ErrorCode.authenticationFailed, `no replication_password is set: replication connections are only accepted from this machine`, 'Set replication_password on the upstream and put password=... in primary_conninfo.');
      return false;
    }
    if (password === required) return true;
    log('LOG', `replication connection from ${where}: password authentication failed for user "${user}"`);
    fatal(ErrorCode.authenticationFailed, `password authentication failed for user "${user}"`, 'Check the password in primary_conninfo (or WALSHIP_PASSWORD) against replication_password on the upstream.');
    return false;
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
    if (!authenticate(message.password, message.user ?? 'replication')) return;
    authenticated = true;
    clearTimeout(timer);
    send({ type: 'authOk', serverVersion: '1', member: backend.memberName(), role: backend.role() });
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
    if (!authenticated) {
      if (message.type === 'startup') onStartup(message);
      else fatal(ErrorCode.protocolViolation, `expected a startup message, got "${message.type}"`);
      return;
    }
    if (busy) {
      fatal(ErrorCode.protocolViolation, `unexpected "${message.type}" message while a command is running`);
      return;
    }
    if (message.type === 'startup' || message.type === 'password' || message.type === 'standbyStatusUpdate' || message.type === 'copyDone') {
      fatal(ErrorCode.protocolViolation, `unexpected "${message.type}" message outside of streaming`);
      return;
    }
    void onRequest(message);
  }

  socket.on('message', onMessage);
}
