/**
 * The messages of a client session, as they are on the wire (after msgpack decoding).
 *
 * Wire conventions:
 * - Keys and values are binary (`Buffer`); the decoder hands out Buffers, never bare Uint8Arrays.
 * - Every LSN — `minLsn`, an entry's `revision`, a commit `lsn`, a compare's `revision` — is a
 *   `'X/X'` string, as PostgreSQL prints it (`WireLsn`). JSON tools, logs and the CLI all show the
 *   same text, and no 64-bit integer has to survive msgpack's int64/float64 ambiguity. The
 *   helpers in `convert.ts` turn the engine's numeric `Lsn`s into these strings and back.
 * - Optional fields are omitted (a msgpack nil is accepted as "omitted" on decode).
 * - Unknown fields are ignored on decode and not passed on (forward compatibility).
 *
 * A session: the client sends `startup`; the server answers `authOk`, or `authRequest`, or an
 * `error` without `id` and closes. `authRequest` with method `password` (the node's `password`
 * setting, compared in the clear): the client answers with `password`. With method
 * `scram-sha-256` (PostgreSQL's AuthenticationSASL): the client sends `saslInitialResponse`
 * (SCRAM's client-first-message), the server `saslContinue` (server-first), the client
 * `saslResponse` (client-final), the server `saslFinal` (server-final, which the client checks:
 * the server's proof that it knows the user's verifier), then `authOk`. Then the client sends requests, each with a client-chosen `id`, any
 * number at once (pipelined); the server answers each with a `result` or an `error` carrying the
 * same `id`, in any order. An `error` without `id` is about the connection (FATAL) and is
 * followed by the server closing it.
 */
import type { Severity, SyncCommitLevel } from '@walship/engine';

/** An LSN on the wire: `'X/X'` in hex, e.g. `'0/16B3748'`. */
export type WireLsn = string;

// ---------------------------------------------------------------------------------------------
// Handshake

export interface StartupMessage {
  type: 'startup';
  protocolVersion: number;
  user?: string;
  password?: string;
  applicationName?: string;
}

/** The client's answer to `authRequest`. */
export interface PasswordMessage {
  type: 'password';
  password: string;
}

/** How the server wants the client to authenticate. */
export type AuthMethod = 'password' | 'scram-sha-256';

export const AUTH_METHODS: readonly AuthMethod[] = ['password', 'scram-sha-256'];

export interface AuthRequestMessage {
  type: 'authRequest';
  method: AuthMethod;
}

/** SASLInitialResponse: the chosen mechanism (`SCRAM-SHA-256`) and the client-first-message. */
export interface SaslInitialResponseMessage {
  type: 'saslInitialResponse';
  mechanism: string;
  data: string;
}

/** SASLResponse: the client-final-message. */
export interface SaslResponseMessage {
  type: 'saslResponse';
  data: string;
}

/** AuthenticationSASLContinue: the server-first-message. */
export interface SaslContinueMessage {
  type: 'saslContinue';
  data: string;
}

/** AuthenticationSASLFinal: the server-final-message (`v=<ServerSignature>`). */
export interface SaslFinalMessage {
  type: 'saslFinal';
  data: string;
}

export interface AuthOkMessage {
  type: 'authOk';
  serverVersion: string;
  /** The node's application name. */
  member: string;
  role: 'primary' | 'standby';
}

// ---------------------------------------------------------------------------------------------
// Transactions on the wire (the engine's Compare / Operation with LSNs as strings)

export type WireCompare =
  | { kind: 'exists'; table?: string; key: Buffer; exists: boolean }
  | { kind: 'value'; table?: string; key: Buffer; op: 'eq' | 'ne'; value: Buffer }
  | { kind: 'revision'; table?: string; key: Buffer; op: 'eq' | 'ne' | 'lt' | 'gt'; revision: WireLsn };

export type WireOperation =
  | { kind: 'put'; table?: string; key: Buffer; value: Buffer }
  | { kind: 'delete'; table?: string; key: Buffer }
  | { kind: 'deleteRange'; table?: string; start: Buffer; end: Buffer; limit?: number };

export interface WireEntry {
  key: Buffer;
  value: Buffer;
  revision: WireLsn;
}

/** The node's status document: the fields every node has, plus free-form views (plain data). */
/**
 * What `waitLsn` waits for (PostgreSQL 19's WAIT FOR LSN modes): on a standby, the WAL position
 * its walreceiver has written, flushed, or that replay has applied; on a primary, its own flush
 * position.
 */
export type WaitLsnMode = 'standby_write' | 'standby_flush' | 'standby_replay' | 'primary_flush';

export const WAIT_LSN_MODES: readonly WaitLsnMode[] = ['standby_write', 'standby_flush', 'standby_replay', 'primary_flush'];

/** How a `waitLsn` ended: WAIT FOR's `status` column (`timeout` and `not in recovery` only with noThrow). */
export type WaitLsnStatus = 'success' | 'timeout' | 'not in recovery';

export const WAIT_LSN_STATUSES: readonly WaitLsnStatus[] = ['success', 'timeout', 'not in recovery'];

export interface WireNodeStatus {
  role: 'primary' | 'standby';
  systemId: string;
  timeline: number;
  insertLsn: WireLsn;
  flushLsn: WireLsn;
  receiveLsn: WireLsn | null;
  replayLsn: WireLsn | null;
  lastCheckpointLsn: WireLsn;
  [key: string]: unknown;
}

// ---------------------------------------------------------------------------------------------
// Requests: what each request type carries besides `type` and `id`

export interface RequestPayloads {
  /**
   * `minLsnTimeline`: the timeline `minLsn` was written on (a commit's `timeline`). A node whose
   * history left that timeline before `minLsn` can never show it, and says so at once.
   */
  get: { table?: string; key: Buffer; minLsn?: WireLsn; minLsnTimeline?: number; timeoutMs?: number };
  range: {
    table?: string;
    start?: Buffer;
    end?: Buffer;
    prefix?: Buffer;
    limit?: number;
    minLsn?: WireLsn;
    minLsnTimeline?: number;
    timeoutMs?: number;
  };
  txn: {
    compares?: WireCompare[];
    onSuccess?: WireOperation[];
    onFailure?: WireOperation[];
    syncCommit?: SyncCommitLevel;
    /**
     * The longest the commit may wait for its synchronous standbys, from the moment the node
     * received the request (statement_timeout for the wait). When it passes, the node ends the
     * wait and answers with an `indeterminate` error carrying the commit's `lsn`: committed
     * locally, not confirmed by the standbys. Absent: the wait has no limit, as in PostgreSQL.
     */
    timeoutMs?: number;
  };
  createTable: { name: string };
  listTables: Record<never, never>;
  status: Record<never, never>;
  checkpoint: Record<never, never>;
  /**
   * pg_promote(wait, wait_seconds): ends recovery on a standby. With `wait` (the default) the
   * reply comes once the node accepts writes, or an error after `timeoutMs`.
   */
  promote: { wait?: boolean; timeoutMs?: number };
  setSetting: { name: string; value: string };
  showSetting: { name: string };
  ping: Record<never, never>;
  /**
   * WAIT FOR LSN `lsn` WITH (MODE `mode`, TIMEOUT `timeoutMs`, NO_THROW `noThrow`): resolves
   * once the node's position for `mode` (default `standby_replay`) reaches `lsn`. A timeout or a
   * standby mode on a node not in recovery is an error, or with `noThrow` a result whose
   * `status` says so. Without `timeoutMs` it waits as long as it takes.
   */
  waitLsn: { lsn: WireLsn; mode?: WaitLsnMode; timeoutMs?: number; noThrow?: boolean };
  /**
   * The primary's lease (walship's own; the failover monitor's safety rule 1): `holder` (the
   * member name) may acknowledge commits on `timeline` until `issuedAtUs + durationMs`.
   * `issuedAtUs` is CLOCK_MONOTONIC in microseconds on the granter's machine, read just before
   * the request was sent, so that a grant delivered late (to a node frozen by SIGSTOP) runs out
   * when the granter counts it out, not later. A node refuses a grant for another member, another
   * timeline, a standby, or one issued in its future (a clock that is not its machine's).
   * `grantor` names who grants it (the status view shows it).
   */
  lease: { holder: string; timeline: number; durationMs: number; issuedAtUs: number; grantor: string };
}

/** What a `result` carries besides `type`, `id` and `request`, per request type. */
export interface ResultPayloads {
  get: { entry: WireEntry | null };
  range: { entries: WireEntry[]; more: boolean };
  txn: { succeeded: boolean; lsn: WireLsn; timeline: number; member: string; counts: number[] };
  createTable: { created: boolean; lsn: WireLsn };
  listTables: { tables: string[] };
  status: { status: WireNodeStatus };
  checkpoint: { lsn: WireLsn; redoLsn: WireLsn };
  /** `promoted`: false when `wait` was off and the node has not finished yet; `timeline` as of the reply. */
  promote: { promoted: boolean; timeline: number };
  setSetting: { restartRequired: boolean };
  showSetting: { value: string };
  ping: Record<never, never>;
  /** `lsn`: the node's position for the mode when the wait ended. */
  waitLsn: { status: WaitLsnStatus; lsn: WireLsn };
  /** `expiresInMs`: how long the lease now held lasts, on the node's monotonic clock. */
  lease: { holder: string; expiresInMs: number };
}

export type RequestType = keyof RequestPayloads;

export const REQUEST_TYPES: readonly RequestType[] = [
  'get',
  'range',
  'txn',
  'createTable',
  'listTables',
  'status',
  'checkpoint',
  'promote',
  'setSetting',
  'showSetting',
  'ping',
  'waitLsn',
  'lease',
];

export type RequestMessage<K extends RequestType> = { type: K; id: number } & RequestPayloads[K];

/** `request` repeats the request's type, so that a reply can be validated on its own. */
export type ResultMessage<K extends RequestType> = { type: 'result'; id: number; request: K } & ResultPayloads[K];

export type ClientRequest = { [K in RequestType]: RequestMessage<K> }[RequestType];
export type AnyResultMessage = { [K in RequestType]: ResultMessage<K> }[RequestType];

export interface ErrorMessage {
  type: 'error';
  /** The request this answers; absent for an error about the connection (then it closes). */
  id?: number;
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  severity: Severity;
  /**
   * The commit LSN of a transaction that committed locally but whose wait for synchronous
   * standbys ended without confirmation (code `indeterminate`).
   */
  lsn?: WireLsn;
}

/** Everything a client may send. */
export type ClientMessage = StartupMessage | PasswordMessage | SaslInitialResponseMessage | SaslResponseMessage | ClientRequest;

/** Everything a server may send. */
export type ServerMessage = AuthRequestMessage | SaslContinueMessage | SaslFinalMessage | AuthOkMessage | ErrorMessage | AnyResultMessage;
