/**
 * WalshipClient: the client library's connection to one node.
 *
 * Requests are pipelined over one WebSocket, each tagged with an id; at most
 * MAX_IN_FLIGHT_REQUESTS are sent and unanswered at once, the rest wait in a bounded queue. Every
 * call has a timeout (30 s by default). What a failure means depends on whether the request was
 * sent and whether it writes:
 *
 * - a write (`txn`, `put`, `del`, `deleteRange`, `createTable`, `setSetting`) that was sent and
 *   then timed out or lost its connection fails with code `indeterminate`: it may or may not have
 *   been committed, and only reading the data back can tell;
 * - a read that was sent fails with `timeout` or `connection_lost`;
 * - a request that never left the client (no connection) fails with `timeout` or
 *   `connection_lost` whatever it is: it was certainly not executed.
 *
 * With `reconnect: true` a lost connection is reopened with capped exponential backoff (and the
 * first connect retries until `timeoutMs`); requests made meanwhile wait in the queue until the
 * connection is back or their timeout passes. Authentication failures are final.
 */
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from '@walship/engine/constants';
import { formatLsn, parseLsn } from '@walship/engine/lsn';
import type { Entry, Lsn, RangeResult, SyncCommitLevel, TxnResult } from '@walship/engine';
import {
  defined,
  isSslMode,
  SSL_MODES,
  type SslMode,
  encodeMessage,
  entryFromWire,
  lsnFromWire,
  MAX_IN_FLIGHT_REQUESTS,
  MAX_REQUEST_TIMEOUT_MS,
  rangeResultFromWire,
  txnResultFromWire,
} from '@walship/protocol';
import type {
  AnyResultMessage,
  ClientRequest,
  RequestPayloads,
  RequestType,
  ResultPayloads,
  ServerMessage,
  WaitLsnMode,
  WaitLsnStatus,
  WireCompare,
  WireNodeStatus,
  WireOperation,
} from '@walship/protocol';
import { ClientErrorCode, toClientError, WalshipClientError } from './client-error.js';
import { Connection, serverErrorToClientError } from './connection.js';
import type { PasswordSource, ServerInfo } from './connection.js';
import {
  DEFAULT_LOAD_CONCURRENCY,
  DEFAULT_TIMEOUT_MS,
  MAX_QUEUED_REQUESTS,
  MAX_TIMER_MS,
  RECONNECT_INITIAL_DELAY_MS,
  RECONNECT_MAX_DELAY_MS,
  SERVER_WAIT_MARGIN_MS,
} from './constants.js';

/** Keys and values: bytes, or text (encoded as UTF-8). */
export type KeyLike = string | Uint8Array;
/** An LSN as a number or as `'X/X'` text. */
export type LsnLike = Lsn | number | string;

export interface ConnectOptions {
  /**
   * Default 127.0.0.1 (`localhost` means 127.0.0.1, as the node binds it; sslmode verify-full
   * still checks the certificate against `localhost`).
   */
  host?: string;
  port: number;
  user?: string;
  /** Sent only when the server asks for it (in the clear, or proven with SCRAM-SHA-256); a function is called then. */
  password?: PasswordSource;
  applicationName?: string;
  /** Default timeout of connecting and of every call, in ms (default 30 000; Infinity: none). */
  timeoutMs?: number;
  /** Reopen a lost connection with exponential backoff (default false). */
  reconnect?: boolean;
  /** Cap of the backoff between reconnect attempts (default RECONNECT_MAX_DELAY_MS). */
  reconnectMaxDelayMs?: number;
  /** TLS as libpq's sslmode (default `prefer`): disable, allow, prefer, require, verify-ca, verify-full. */
  sslmode?: SslMode;
  /** PEM file of the CAs trusted to sign the node's certificate (verify-ca, verify-full), or `system`. */
  sslrootcert?: string;
  /** A client certificate (PEM file) to present, with its key in `sslkey` (checked by a node's ssl_ca_file). */
  sslcert?: string;
  sslkey?: string;
}

export interface CallOptions {
  timeoutMs?: number;
}

export interface ReadOptions extends CallOptions {
  table?: string;
  /** Read-your-writes: the node answers only once it has replayed this far. */
  minLsn?: LsnLike;
  /**
   * The timeline `minLsn` was written on (a write's `timeline`): a node whose history left that
   * timeline before `minLsn` fails at once (`lsn_not_on_timeline`) instead of waiting for WAL
   * that would be another branch's.
   */
  minLsnTimeline?: number;
}

export interface RangeOptions extends ReadOptions {
  start?: KeyLike;
  end?: KeyLike;
  prefix?: KeyLike;
  limit?: number;
}

export interface WriteOptions extends CallOptions {
  table?: string;
  syncCommit?: SyncCommitLevel;
}

export interface WaitForLsnOptions extends CallOptions {
  /** What to wait for (default `standby_replay`: what reads on that standby see). */
  mode?: WaitLsnMode;
  /** Resolve with the `status` instead of throwing on a timeout or a node not in recovery. */
  noThrow?: boolean;
}

export interface WaitForLsnResult {
  status: WaitLsnStatus;
  /** The node's position for the mode when the wait ended. */
  lsn: Lsn;
}

export type ClientCompare =
  | { kind: 'exists'; table?: string; key: KeyLike; exists: boolean }
  | { kind: 'value'; table?: string; key: KeyLike; op: 'eq' | 'ne'; value: KeyLike }
  | { kind: 'revision'; table?: string; key: KeyLike; op: 'eq' | 'ne' | 'lt' | 'gt'; revision: LsnLike };

export type ClientOperation =
  | { kind: 'put'; table?: string; key: KeyLike; value: KeyLike }
  | { kind: 'delete'; table?: string; key: KeyLike }
  | { kind: 'deleteRange'; table?: string; start: KeyLike; end: KeyLike; limit?: number };

/** The engine's TxnRequest, with keys, values and revisions in any of their accepted forms. */
export interface ClientTxnRequest {
  compares?: ClientCompare[];
  onSuccess?: ClientOperation[];
  onFailure?: ClientOperation[];
  syncCommit?: SyncCommitLevel;
}

export interface LoadOptions extends WriteOptions {
  /** Puts in flight at once (default 16). */
  concurrency?: number;
  /** Called after each acknowledged put with the count so far. */
  onProgress?: (count: number) => void;
}

export type NodeStatus = WireNodeStatus;

export type ClientState = 'ready' | 'reconnecting' | 'disconnected' | 'closed';

/** Requests whose loss after sending leaves the node's state unknown. */
const WRITE_REQUESTS: ReadonlySet<RequestType> = new Set<RequestType>(['txn', 'createTable', 'setSetting']);

interface Pending {
  readonly id: number;
  readonly type: RequestType;
  readonly frame: Buffer;
  readonly timeoutMs: number;
  readonly write: boolean;
  sent: boolean;
  done: boolean;
  timer: NodeJS.Timeout | undefined;
  resolve(message: AnyResultMessage): void;
  reject(error: WalshipClientError): void;
}

function invalid(message: string, hint?: string): WalshipClientError {
  return new WalshipClientError(ClientErrorCode.invalidParameter, message, { hint });
}

function toBytes(value: KeyLike, what: string): Buffer {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (value instanceof Uint8Array) return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw invalid(`${what} must be a string or a Buffer`);
}

function toKey(value: KeyLike, what = 'key'): Buffer {
  const key = toBytes(value, what);
  if (key.length > MAX_KEY_BYTES) {
    throw new WalshipClientError(ClientErrorCode.keyTooLarge, `${what} is ${key.length} bytes, more than the maximum of ${MAX_KEY_BYTES}`, {
      hint: 'Use shorter keys; store large data in values.',
    });
  }
  return key;
}

function toValue(value: KeyLike): Buffer {
  const bytes = toBytes(value, 'value');
  if (bytes.length > MAX_VALUE_BYTES) {
    throw new WalshipClientError(ClientErrorCode.valueTooLarge, `value is ${bytes.length} bytes, more than the maximum of ${MAX_VALUE_BYTES}`, {
      hint: 'Split large values over several keys.',
    });
  }
  return bytes;
}

function toWireLsn(value: LsnLike, what: string): string {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw invalid(`${what} ${value} is not an LSN`);
    return formatLsn(value);
  }
  const lsn = typeof value === 'string' ? parseLsn(value) : null;
  if (lsn === null) throw invalid(`invalid ${what} "${String(value)}"`, "An LSN is written 'X/X' in hex, e.g. 0/16B3748.");
  return formatLsn(lsn);
}

function compareToWire(compare: ClientCompare): WireCompare {
  const table = compare.table === undefined ? {} : { table: compare.table };
  switch (compare.kind) {
    case 'exists':
      return { kind: 'exists', ...table, key: toKey(compare.key), exists: compare.exists };
    case 'value':
      return { kind: 'value', ...table, key: toKey(compare.key), op: compare.op, value: toValue(compare.value) };
    case 'revision':
      return { kind: 'revision', ...table, key: toKey(compare.key), op: compare.op, revision: toWireLsn(compare.revision, 'revision') };
    default:
      throw invalid(`unknown compare kind "${String((compare as { kind?: unknown }).kind)}"`);
  }
}

function operationToWire(operation: ClientOperation): WireOperation {
  switch (operation.kind) {
    case 'put': {
      // Every write's operation: built directly, not spread from a table object.
      const key = toKey(operation.key);
      const value = toValue(operation.value);
      return operation.table === undefined ? { kind: 'put', key, value } : { kind: 'put', table: operation.table, key, value };
    }
    case 'delete':
      return defined({ kind: 'delete', table: operation.table, key: toKey(operation.key) });
    case 'deleteRange':
      return defined({ kind: 'deleteRange', table: operation.table, start: toKey(operation.start, 'start'), end: toKey(operation.end, 'end'), limit: operation.limit });
    default:
      throw invalid(`unknown operation kind "${String((operation as { kind?: unknown }).kind)}"`);
  }
}

/** A timeout in ms; Infinity (or anything from MAX_TIMER_MS up) means the call never times out. */
function checkTimeout(timeoutMs: number): number {
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw invalid(`timeoutMs must be a non-negative number of milliseconds (got ${String(timeoutMs)})`);
  }
  return timeoutMs;
}

function isPermanent(error: WalshipClientError): boolean {
  return (
    error.code === ClientErrorCode.authenticationFailed ||
    error.code === ClientErrorCode.protocolViolation ||
    error.code === ClientErrorCode.invalidParameter
  );
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class WalshipClient {
  private connection: Connection | null = null;
  private currentState: ClientState = 'disconnected';
  private nextId = 1;
  /** Sent and not yet answered, by id. */
  private readonly inFlight = new Map<number, Pending>();
  /** Waiting to be sent, oldest first; `queueHead` is the index of the first live one. */
  private queue: Pending[] = [];
  private queueHead = 0;
  private reconnectAttempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private info: ServerInfo | null = null;
  private lastError: WalshipClientError | null = null;

  private readonly options: Required<Pick<ConnectOptions, 'host' | 'port' | 'timeoutMs' | 'reconnect' | 'reconnectMaxDelayMs'>> &
    Pick<ConnectOptions, 'user' | 'password' | 'applicationName' | 'sslmode' | 'sslrootcert' | 'sslcert' | 'sslkey'>;

  private constructor(options: ConnectOptions) {
    this.options = {
      host: options.host ?? '127.0.0.1',
      port: options.port,
      timeoutMs: checkTimeout(options.timeoutMs ?? DEFAULT_TIMEOUT_MS),
      reconnect: options.reconnect ?? false,
      reconnectMaxDelayMs: options.reconnectMaxDelayMs ?? RECONNECT_MAX_DELAY_MS,
      user: options.user,
      password: options.password,
      applicationName: options.applicationName,
      sslmode: options.sslmode,
      sslrootcert: options.sslrootcert,
      sslcert: options.sslcert,
      sslkey: options.sslkey,
    };
    if (options.sslmode !== undefined && !isSslMode(options.sslmode)) {
      throw invalid(`invalid sslmode value: "${String(options.sslmode)}"`, `Use one of ${SSL_MODES.join(', ')}.`);
    }
    if (!Number.isInteger(this.options.port) || this.options.port < 0 || this.options.port > 65535) {
      throw invalid(`invalid port ${String(options.port)}`, 'A port is an integer from 1 to 65535.');
    }
  }

  /**
   * Connects and authenticates. Without `reconnect`, one attempt; with it, transient failures
   * (refused, node starting up) are retried with backoff until `timeoutMs` has passed.
   */
  static async connect(options: ConnectOptions): Promise<WalshipClient> {
    const client = new WalshipClient(options);
    const deadline = Date.now() + client.options.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      const remaining = deadline - Date.now();
      try {
        await client.open(Math.max(1, remaining));
        return client;
      } catch (error) {
        const failure = toClientError(error, ClientErrorCode.connectionFailure);
        const delay = client.backoffDelay(attempt);
        if (!client.options.reconnect || isPermanent(failure) || Date.now() + delay >= deadline) throw failure;
        await sleep(delay);
      }
    }
  }

  /** The server's `authOk`: its version, member name and role when the session began. */
  get serverInfo(): ServerInfo | null {
    return this.info;
  }

  get state(): ClientState {
    return this.currentState;
  }

  // -------------------------------------------------------------------------------------------
  // Data

  async get(key: KeyLike, options: ReadOptions = {}): Promise<Entry | null> {
    const timeoutMs = this.timeoutOf(options);
    const result = await this.request(
      'get',
      defined({ table: options.table, key: toKey(key), ...this.readWait(options.minLsn, options.minLsnTimeline, timeoutMs) }),
      timeoutMs,
    );
    return result.entry === null ? null : entryFromWire(result.entry);
  }

  async range(options: RangeOptions = {}): Promise<RangeResult> {
    const timeoutMs = this.timeoutOf(options);
    const result = await this.request(
      'range',
      defined({
        table: options.table,
        start: options.start === undefined ? undefined : toKey(options.start, 'start'),
        end: options.end === undefined ? undefined : toKey(options.end, 'end'),
        prefix: options.prefix === undefined ? undefined : toKey(options.prefix, 'prefix'),
        limit: options.limit,
        ...this.readWait(options.minLsn, options.minLsnTimeline, timeoutMs),
      }),
      timeoutMs,
    );
    return rangeResultFromWire(result);
  }

  /**
   * A transaction. Acknowledged once its `syncCommit` level is met; the node is asked to end a
   * wait for synchronous standbys a little before the call's timeout, so that the failure is its
   * `indeterminate` error carrying the commit LSN (committed there, not confirmed by the standbys).
   */
  async txn(request: ClientTxnRequest, options: CallOptions = {}): Promise<TxnResult> {
    const timeoutMs = this.timeoutOf(options);
    const payload = defined({
      compares: request.compares?.map(compareToWire),
      onSuccess: request.onSuccess?.map(operationToWire),
      onFailure: request.onFailure?.map(operationToWire),
      syncCommit: request.syncCommit,
      timeoutMs: this.serverWaitMs(timeoutMs),
    });
    return txnResultFromWire(await this.request('txn', payload, timeoutMs));
  }

  /**
   * WAIT FOR LSN on this node: resolves once its position for `mode` reaches `lsn` (on a standby,
   * `standby_replay` by default; `primary_flush` on a primary). `timeoutMs` bounds the wait on the
   * node (the call itself gets a margin on top); a timeout or a node not in recovery throws, or
   * with `noThrow` comes back as the status.
   */
  async waitForLsn(lsn: LsnLike, options: WaitForLsnOptions = {}): Promise<WaitForLsnResult> {
    const waitMs = options.timeoutMs === undefined ? this.options.timeoutMs : checkTimeout(options.timeoutMs);
    const serverWait = waitMs >= MAX_TIMER_MS ? undefined : Math.min(MAX_REQUEST_TIMEOUT_MS, Math.floor(waitMs));
    const callTimeoutMs = serverWait === undefined ? waitMs : serverWait + SERVER_WAIT_MARGIN_MS;
    const result = await this.request(
      'waitLsn',
      defined({ lsn: toWireLsn(lsn, 'lsn'), mode: options.mode, timeoutMs: serverWait, noThrow: options.noThrow }),
      callTimeoutMs,
    );
    return { status: result.status, lsn: lsnFromWire(result.lsn) };
  }

  put(key: KeyLike, value: KeyLike, options: WriteOptions = {}): Promise<TxnResult> {
    return this.txn(
      { onSuccess: [{ kind: 'put', table: options.table, key, value }], syncCommit: options.syncCommit },
      options,
    );
  }

  async del(key: KeyLike, options: WriteOptions = {}): Promise<TxnResult & { deleted: number }> {
    const result = await this.txn(
      { onSuccess: [{ kind: 'delete', table: options.table, key }], syncCommit: options.syncCommit },
      options,
    );
    return { ...result, deleted: result.counts[0] ?? 0 };
  }

  /** Deletes keys in [start, end), at most `limit` of them when given. */
  async deleteRange(
    start: KeyLike,
    end: KeyLike,
    options: WriteOptions & { limit?: number } = {},
  ): Promise<TxnResult & { deleted: number }> {
    const result = await this.txn(
      {
        onSuccess: [{ kind: 'deleteRange', table: options.table, start, end, limit: options.limit }],
        syncCommit: options.syncCommit,
      },
      options,
    );
    return { ...result, deleted: result.counts[0] ?? 0 };
  }

  /**
   * Puts every entry, one transaction each, with `concurrency` in flight. Stops at the first
   * failure (waiting for the puts already sent) and throws it; `onProgress` has counted the
   * acknowledged ones.
   */
  async load(
    entries: AsyncIterable<readonly [KeyLike, KeyLike]> | Iterable<readonly [KeyLike, KeyLike]>,
    options: LoadOptions = {},
  ): Promise<{ count: number; lastLsn: Lsn }> {
    const concurrency = options.concurrency ?? DEFAULT_LOAD_CONCURRENCY;
    if (!Number.isInteger(concurrency) || concurrency < 1) throw invalid(`concurrency must be a positive integer (got ${concurrency})`);
    let count = 0;
    let lastLsn = 0 as Lsn;
    let failure: unknown = null;
    const running = new Set<Promise<void>>();
    for await (const [key, value] of entries) {
      if (failure !== null) break;
      const put = this.put(key, value, options).then(
        (result) => {
          count++;
          if (result.lsn > lastLsn) lastLsn = result.lsn;
          options.onProgress?.(count);
        },
        (error: unknown) => {
          failure ??= error;
        },
      );
      running.add(put);
      void put.then(() => running.delete(put));
      if (running.size >= concurrency) await Promise.race(running);
    }
    await Promise.all(running);
    if (failure !== null) throw failure;
    return { count, lastLsn };
  }

  // -------------------------------------------------------------------------------------------
  // Administration

  async createTable(name: string, options: CallOptions = {}): Promise<{ created: boolean; lsn: Lsn }> {
    const result = await this.request('createTable', { name }, this.timeoutOf(options));
    return { created: result.created, lsn: lsnFromWire(result.lsn) };
  }

  async listTables(options: CallOptions = {}): Promise<string[]> {
    return (await this.request('listTables', {}, this.timeoutOf(options))).tables;
  }

  async status(options: CallOptions = {}): Promise<NodeStatus> {
    return (await this.request('status', {}, this.timeoutOf(options))).status;
  }

  async checkpoint(options: CallOptions = {}): Promise<{ lsn: Lsn; redoLsn: Lsn }> {
    const result = await this.request('checkpoint', {}, this.timeoutOf(options));
    return { lsn: lsnFromWire(result.lsn), redoLsn: lsnFromWire(result.redoLsn) };
  }

  /**
   * pg_promote: ends recovery on a standby. With `wait` (the default) resolves once the node
   * accepts writes; `promoted` is false if it had not finished within `waitMs` (default 60 s).
   */
  async promote(options: CallOptions & { wait?: boolean; waitMs?: number } = {}): Promise<{ promoted: boolean; timeline: number }> {
    const wait = options.wait ?? true;
    const waitMs = options.waitMs ?? 60_000;
    // The request's own timeout covers the wait on the node, plus a margin for the reply.
    const timeoutMs = Math.max(this.timeoutOf(options), wait ? waitMs + 5_000 : 0);
    const result = await this.request('promote', { wait, timeoutMs: waitMs }, timeoutMs);
    return { promoted: result.promoted, timeline: result.timeline };
  }

  /** ALTER SYSTEM SET + reload on the node. */
  async setSetting(name: string, value: string, options: CallOptions = {}): Promise<{ restartRequired: boolean }> {
    const result = await this.request('setSetting', { name, value }, this.timeoutOf(options));
    return { restartRequired: result.restartRequired };
  }

  /**
   * Grants the node the primary's lease (what the failover monitor does with each health check):
   * `holder` may acknowledge commits on `timeline` until `issuedAtUs + durationMs`, counted on
   * this machine's CLOCK_MONOTONIC (`process.hrtime`, in microseconds), read just before the
   * call. The node refuses a grant that does not fit it (a standby, another member or timeline).
   */
  async grantLease(grant: { holder: string; timeline: number; durationMs: number; issuedAtUs: number; grantor: string }, options: CallOptions = {}): Promise<{ holder: string; expiresInMs: number }> {
    const result = await this.request('lease', { ...grant }, this.timeoutOf(options));
    return { holder: result.holder, expiresInMs: result.expiresInMs };
  }

  async showSetting(name: string, options: CallOptions = {}): Promise<string> {
    return (await this.request('showSetting', { name }, this.timeoutOf(options))).value;
  }

  /** Round trip to the node; resolves with the time it took in ms. */
  async ping(options: CallOptions = {}): Promise<number> {
    const started = performance.now();
    await this.request('ping', {}, this.timeoutOf(options));
    return performance.now() - started;
  }

  /**
   * Closes the connection and stops reconnecting. Requests still waiting fail: queued ones with
   * `connection_lost`, sent writes with `indeterminate`, sent reads with `connection_lost`.
   */
  async close(): Promise<void> {
    if (this.currentState === 'closed') return;
    this.currentState = 'closed';
    clearTimeout(this.reconnectTimer);
    const reason = new WalshipClientError(ClientErrorCode.connectionLost, 'the client was closed');
    const connection = this.connection;
    this.connection = null;
    this.failInFlight(reason);
    this.failQueued(reason);
    if (connection !== null) await connection.close(reason);
  }

  // -------------------------------------------------------------------------------------------
  // Requests

  private timeoutOf(options: CallOptions): number {
    return checkTimeout(options.timeoutMs ?? this.options.timeoutMs);
  }

  /** The wait a call of `timeoutMs` asks the node for: a margin less, so its answer comes first; none for no timeout. */
  private serverWaitMs(timeoutMs: number): number | undefined {
    if (timeoutMs >= MAX_TIMER_MS) return undefined;
    return Math.min(MAX_REQUEST_TIMEOUT_MS, Math.floor(Math.max(0, timeoutMs - SERVER_WAIT_MARGIN_MS)));
  }

  private readWait(minLsn: LsnLike | undefined, minLsnTimeline: number | undefined, timeoutMs: number): { minLsn?: string; minLsnTimeline?: number; timeoutMs?: number } {
    if (minLsn === undefined) return {};
    if (minLsnTimeline !== undefined && (!Number.isInteger(minLsnTimeline) || minLsnTimeline < 1 || minLsnTimeline > 0xffffffff)) {
      throw new WalshipClientError(ClientErrorCode.invalidParameter, `invalid minLsnTimeline ${String(minLsnTimeline)}`, { hint: 'A timeline ID is a whole number from 1.' });
    }
    const serverWaitMs = Math.min(MAX_REQUEST_TIMEOUT_MS, Math.floor(Math.max(0, timeoutMs - SERVER_WAIT_MARGIN_MS)));
    return defined({ minLsn: toWireLsn(minLsn, 'minLsn'), minLsnTimeline, timeoutMs: serverWaitMs });
  }

  private request<K extends RequestType>(type: K, payload: RequestPayloads[K], timeoutMs: number): Promise<ResultPayloads[K]> {
    return new Promise<ResultPayloads[K]>((resolve, reject) => {
      if (this.currentState === 'closed') {
        reject(new WalshipClientError(ClientErrorCode.connectionLost, 'the client is closed', { hint: 'Connect again.' }));
        return;
      }
      if (this.currentState === 'disconnected') {
        reject(this.notConnectedError());
        return;
      }
      if (this.queue.length - this.queueHead >= MAX_QUEUED_REQUESTS) {
        reject(
          new WalshipClientError(ClientErrorCode.tooManyRequests, `too many requests waiting: ${MAX_QUEUED_REQUESTS}`, {
            hint: 'Wait for earlier calls before making more.',
          }),
        );
        return;
      }
      const id = this.nextId++;
      let frame: Buffer;
      try {
        frame = encodeMessage({ type, id, ...payload } as ClientRequest);
      } catch (error) {
        // The codec refused the request: an argument out of the protocol's bounds.
        const failure = toClientError(error, ClientErrorCode.invalidParameter);
        reject(new WalshipClientError(ClientErrorCode.invalidParameter, failure.message, { detail: failure.detail, cause: error }));
        return;
      }
      const pending: Pending = {
        id,
        type,
        frame,
        timeoutMs,
        write: WRITE_REQUESTS.has(type),
        sent: false,
        done: false,
        timer: undefined,
        resolve: (message) => resolve(message as unknown as ResultPayloads[K]),
        reject,
      };
      if (timeoutMs < MAX_TIMER_MS) pending.timer = setTimeout(() => this.expire(pending), timeoutMs);
      this.queue.push(pending);
      this.pump();
    });
  }

  private notConnectedError(): WalshipClientError {
    return new WalshipClientError(ClientErrorCode.connectionLost, 'not connected to the server', {
      detail: this.lastError === null ? undefined : `The connection was lost: ${this.lastError.message}`,
      hint: 'Connect again, or connect with reconnect: true to reconnect automatically.',
    });
  }

  /** Sends queued requests while the connection is up and in-flight slots are free. */
  private pump(): void {
    const connection = this.connection;
    if (connection === null || this.currentState !== 'ready') return;
    while (this.queueHead < this.queue.length && this.inFlight.size < MAX_IN_FLIGHT_REQUESTS) {
      const pending = this.queue[this.queueHead]!;
      this.queue[this.queueHead] = undefined as unknown as Pending;
      this.queueHead++;
      if (pending.done) continue;
      if (!connection.send(pending.frame)) {
        // The socket is closing; onClose will come. Put it back in front.
        this.queueHead--;
        this.queue[this.queueHead] = pending;
        break;
      }
      pending.sent = true;
      this.inFlight.set(pending.id, pending);
    }
    this.compactQueue();
  }

  private compactQueue(): void {
    if (this.queueHead === this.queue.length) {
      this.queue = [];
      this.queueHead = 0;
    } else if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
  }

  private settle(pending: Pending): boolean {
    if (pending.done) return false;
    pending.done = true;
    clearTimeout(pending.timer);
    if (pending.sent) this.inFlight.delete(pending.id);
    return true;
  }

  private expire(pending: Pending): void {
    const wasSent = pending.sent;
    if (!this.settle(pending)) return;
    const after = `after ${pending.timeoutMs} ms`;
    if (!wasSent) {
      pending.reject(
        new WalshipClientError(ClientErrorCode.timeout, `${pending.type} timed out ${after} before it could be sent`, {
          detail: pending.write ? 'The request was never sent, so it was not executed.' : undefined,
          hint: 'Is the node reachable? Raise timeoutMs to wait longer for a reconnect.',
        }),
      );
    } else if (pending.write) {
      pending.reject(
        new WalshipClientError(
          ClientErrorCode.indeterminate,
          `${pending.type} timed out ${after}; the write may or may not have been committed`,
          { hint: 'Read the data back to learn the outcome before retrying a write that is not idempotent.' },
        ),
      );
    } else {
      pending.reject(
        new WalshipClientError(ClientErrorCode.timeout, `${pending.type} timed out ${after}`, {
          hint: 'Raise timeoutMs, or check that the node is up and not overloaded.',
        }),
      );
    }
    this.pump();
  }

  private onMessage(message: ServerMessage): void {
    if (message.type === 'result' || (message.type === 'error' && message.id !== undefined)) {
      const pending = this.inFlight.get(message.id as number);
      if (pending === undefined) return; // timed out earlier; the late reply is dropped
      if (message.type === 'result' && message.request !== pending.type) {
        this.connection?.terminate(
          new WalshipClientError(ClientErrorCode.protocolViolation, `server answered ${pending.type} request ${pending.id} with a ${message.request} result`),
        );
        return;
      }
      this.settle(pending);
      if (message.type === 'result') pending.resolve(message);
      else pending.reject(serverErrorToClientError(message));
      this.pump();
      return;
    }
    if (message.type === 'error') return; // about the connection; the close that follows reports it
    this.connection?.terminate(new WalshipClientError(ClientErrorCode.protocolViolation, `server sent "${message.type}" after authentication`));
  }

  private onClose(connection: Connection, reason: WalshipClientError): void {
    if (this.connection !== connection) return;
    this.connection = null;
    this.lastError = reason;
    this.failInFlight(reason);
    if (this.currentState === 'closed') return;
    if (!this.options.reconnect || isPermanent(reason)) {
      this.currentState = 'disconnected';
      this.failQueued(reason);
      return;
    }
    this.currentState = 'reconnecting';
    this.scheduleReconnect();
  }

  private failInFlight(reason: WalshipClientError): void {
    const pendings = [...this.inFlight.values()];
    for (const pending of pendings) {
      this.settle(pending);
      if (pending.write) {
        pending.reject(
          new WalshipClientError(ClientErrorCode.indeterminate, `connection lost before the reply to ${pending.type}; the write may or may not have been committed`, {
            detail: reason.message,
            hint: 'Read the data back to learn the outcome before retrying a write that is not idempotent.',
            cause: reason,
          }),
        );
      } else {
        pending.reject(
          new WalshipClientError(ClientErrorCode.connectionLost, `connection lost before the reply to ${pending.type}`, {
            detail: reason.message,
            cause: reason,
          }),
        );
      }
    }
  }

  private failQueued(reason: WalshipClientError): void {
    const queued = this.queue.slice(this.queueHead);
    this.queue = [];
    this.queueHead = 0;
    for (const pending of queued) {
      if (!this.settle(pending)) continue;
      pending.reject(
        new WalshipClientError(ClientErrorCode.connectionLost, `${pending.type} was not sent: ${reason.message}`, {
          detail: 'The request never left the client, so it was not executed.',
          cause: reason,
        }),
      );
    }
  }

  // -------------------------------------------------------------------------------------------
  // Connecting

  private async open(timeoutMs: number): Promise<void> {
    const connection: Connection = await Connection.open(
      {
        host: this.options.host,
        port: this.options.port,
        user: this.options.user,
        password: this.options.password,
        applicationName: this.options.applicationName,
        ...(this.options.sslmode === undefined ? {} : { sslmode: this.options.sslmode }),
        ...(this.options.sslrootcert === undefined ? {} : { sslrootcert: this.options.sslrootcert }),
        ...(this.options.sslcert === undefined ? {} : { sslcert: this.options.sslcert }),
        ...(this.options.sslkey === undefined ? {} : { sslkey: this.options.sslkey }),
        timeoutMs,
      },
      {
        onMessage: (message) => this.onMessage(message),
        onClose: (reason) => this.onClose(connection, reason),
      },
    );
    if (this.currentState === 'closed') {
      await connection.close(new WalshipClientError(ClientErrorCode.connectionLost, 'the client was closed'));
      return;
    }
    this.connection = connection;
    this.info = connection.info;
    this.currentState = 'ready';
    this.reconnectAttempt = 0;
    this.pump();
  }

  /** Capped exponential backoff with jitter (half to full delay), so clients do not stampede. */
  private backoffDelay(attempt: number): number {
    const ceiling = Math.min(this.options.reconnectMaxDelayMs, RECONNECT_INITIAL_DELAY_MS * 2 ** Math.min(attempt, 30));
    return Math.round(ceiling * (0.5 + Math.random() / 2));
  }

  private scheduleReconnect(): void {
    const delay = this.backoffDelay(this.reconnectAttempt++);
    this.reconnectTimer = setTimeout(() => void this.reconnect(), delay);
    // Queued requests keep the process alive through their own timers; an idle client does not.
    this.reconnectTimer.unref();
  }

  private async reconnect(): Promise<void> {
    if (this.currentState !== 'reconnecting') return;
    try {
      await this.open(this.options.timeoutMs);
    } catch (error) {
      if (this.currentState !== 'reconnecting') return;
      const failure = toClientError(error, ClientErrorCode.connectionFailure);
      this.lastError = failure;
      if (isPermanent(failure)) {
        this.currentState = 'disconnected';
        this.failQueued(failure);
        return;
      }
      this.scheduleReconnect();
    }
  }
}
