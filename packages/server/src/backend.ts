/**
 * What a client session asks of the node. The session layer (sockets, framing, authentication)
 * calls these; the postmaster's current instance implements them. Errors are WalshipErrors with
 * stable codes; the session sends them to the client as error replies.
 */
import type { CommitWaitOptions, Entry, Lsn, RangeOptions, RangeResult, TxnRequest, TxnResult } from '@walship/engine';
import type { WaitLsnMode, WaitLsnStatus } from '@walship/protocol';
import type { LeaseGrant } from './lease.js';

export type ServerState = 'starting' | 'recovery' | 'ready' | 'stopping' | 'crashed';

export interface NodeStatus {
  role: 'primary' | 'standby';
  systemId: string;
  timeline: number;
  insertLsn: string;
  flushLsn: string;
  receiveLsn: string | null;
  replayLsn: string | null;
  lastCheckpointLsn: string;
  [key: string]: unknown;
}

/** Read-your-writes: the position a read must see, the timeline it was written on, and how long to wait. */
export interface ReadWait {
  minLsn?: Lsn;
  minLsnTimeline?: number;
  timeoutMs?: number;
}

export interface Backend {
  /** Whether new client sessions are accepted, and if not, why ("the database system is starting up"). */
  state(): ServerState;
  /** The node's application name (the `member` of acknowledgements). */
  memberName(): string;
  get(table: string | undefined, key: Buffer, options: ReadWait): Promise<Entry | null>;
  range(options: RangeOptions & ReadWait): Promise<RangeResult>;
  /**
   * Runs a transaction; `wait` bounds and cancels its wait for synchronous standbys (a cancelled
   * wait rejects with `indeterminate` and the commit LSN: committed locally, not confirmed).
   */
  txn(request: TxnRequest, wait?: CommitWaitOptions): Promise<TxnResult>;
  /**
   * WAIT FOR LSN: resolves once this node's position for `mode` reaches `lsn`. A timeout, or a
   * standby mode on a node not in recovery, is an error unless `noThrow`, when the status says it.
   */
  waitLsn(lsn: Lsn, mode: WaitLsnMode, options: { timeoutMs?: number; noThrow?: boolean }): Promise<{ status: WaitLsnStatus; lsn: Lsn }>;
  /** CREATE TABLE; `wait` as for `txn` (it is a commit like any other). */
  createTable(name: string, wait?: CommitWaitOptions): Promise<{ created: boolean; lsn: Lsn }>;
  listTables(): Promise<string[]>;
  status(): Promise<NodeStatus>;
  /**
   * Primary or standby, for a session's authOk. Cheap, where status() builds the whole
   * monitoring document (table sizes, the timeline history file): asked on every connection, it
   * made connecting to a node with a large table take milliseconds, and a promotion's first
   * write wait for them. Throws cannot_connect_now when the node serves no sessions, as status().
   */
  role(): 'primary' | 'standby';
  checkpoint(): Promise<{ lsn: Lsn; redoLsn: Lsn }>;
  /** pg_promote: ends recovery on a standby; with `wait`, resolves once writes are accepted. */
  promote(options: { wait: boolean; timeoutMs: number }): Promise<{ promoted: boolean; timeline: number }>;
  /** The primary's lease (lease.ts): a grant from the failover monitor, refused when it does not fit this node. */
  grantLease(grant: LeaseGrant): Promise<{ holder: string; expiresInMs: number }>;
  /** Sets a setting in walship.conf and reloads (ALTER SYSTEM + pg_reload_conf). */
  setSetting(name: string, value: string): Promise<{ restartRequired: boolean }>;
  showSetting(name: string): Promise<string>;
  /** Prometheus text exposition for GET /metrics. */
  metrics(): string;
}
