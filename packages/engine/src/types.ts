/**
 * The engine's data model: entries, transactions in the shape of etcd's Txn, and their results.
 * Keys and values are bytes; every entry carries its revision, the commit LSN of the transaction
 * that last wrote it.
 */
import type { Lsn } from './lsn.js';

export interface Entry {
  key: Buffer;
  value: Buffer;
  /** Commit LSN (end of the WAL record) of the transaction that last wrote this entry. */
  revision: Lsn;
}

/** `synchronous_commit`, as PostgreSQL spells it. */
export type SyncCommitLevel = 'off' | 'local' | 'remote_write' | 'on' | 'remote_apply';

export const SYNC_COMMIT_LEVELS: readonly SyncCommitLevel[] = ['off', 'local', 'remote_write', 'on', 'remote_apply'];

/** A condition of a transaction (etcd's Compare). All must hold for `onSuccess` to run. */
export type Compare =
  | { kind: 'exists'; table?: string; key: Buffer; exists: boolean }
  | { kind: 'value'; table?: string; key: Buffer; op: 'eq' | 'ne'; value: Buffer }
  | { kind: 'revision'; table?: string; key: Buffer; op: 'eq' | 'ne' | 'lt' | 'gt'; revision: Lsn };

/** A change (etcd's RequestOp, without reads). `end` of deleteRange is exclusive. */
export type Operation =
  | { kind: 'put'; table?: string; key: Buffer; value: Buffer }
  | { kind: 'delete'; table?: string; key: Buffer }
  | { kind: 'deleteRange'; table?: string; start: Buffer; end: Buffer; limit?: number };

export interface TxnRequest {
  compares?: Compare[];
  onSuccess?: Operation[];
  onFailure?: Operation[];
  /** Overrides the node's `synchronous_commit` for this transaction. */
  syncCommit?: SyncCommitLevel;
}

/**
 * How long a commit may wait for its synchronous standbys, and who may end the wait early: the
 * session's statement timeout and its end (PostgreSQL's query cancel and ProcDiePending). Ending
 * the wait does not undo the commit: it is durable locally, becomes visible, and the caller is
 * told it is not confirmed.
 */
export interface CommitWaitOptions {
  /** Date.now() after which the wait for standbys is cancelled. */
  deadlineMs?: number;
  /** Aborted when the session ends. */
  signal?: AbortSignal;
}

export interface TxnResult {
  /** Whether every compare held (and `onSuccess` ran); false when `onFailure` ran. */
  succeeded: boolean;
  /** Commit LSN: the end of the transaction's WAL record; the revision of every entry it wrote. */
  lsn: Lsn;
  timeline: number;
  /** The node that acknowledged the commit (its application name). */
  member: string;
  /** Per operation: entries deleted (delete, deleteRange) or 1 for a put. */
  counts: number[];
}

export interface RangeOptions {
  table?: string;
  /** Inclusive start key. */
  start?: Buffer;
  /** Exclusive end key. */
  end?: Buffer;
  prefix?: Buffer;
  limit?: number;
}

export interface RangeResult {
  entries: Entry[];
  /** True when `limit` cut the result short. */
  more: boolean;
}
