/**
 * The port through which cluster operations act on single nodes: create one (initdb), copy one
 * (pg_basebackup -R), start, stop, promote, rewind, change its settings, create a slot, ask its
 * status. The walship CLI implements it with its own node commands, run in-process
 * (`packages/cli/src/cluster-node-control.ts`), so that a cluster member is made exactly as
 * `walship init`, `walship basebackup --standby` and `walship rewind` make a node by hand; tests
 * can give a fake.
 *
 * Every method throws on failure with an error carrying `message`, and where known `detail` and
 * `hint`, in the CLI's words; the operations add which member it was.
 */

import type { ClusterCredentials } from './cluster-auth.js';
export type StopMode = 'smart' | 'fast' | 'immediate';

/** A row of pg_stat_replication, as `walship status --json` gives it. */
export interface ReplicationRowView {
  readonly applicationName?: string;
  readonly state?: string;
  readonly sentLsn?: string | null;
  readonly writeLsn?: string | null;
  readonly flushLsn?: string | null;
  readonly replayLsn?: string | null;
  readonly writeLagMs?: number | null;
  readonly flushLagMs?: number | null;
  readonly replayLagMs?: number | null;
  readonly syncPriority?: number | null;
  readonly syncState?: string | null;
}

/** pg_stat_wal_receiver, as `walship status --json` gives it. */
export interface WalReceiverView {
  readonly status?: string;
  readonly receivedLsn?: string | null;
  readonly receivedTli?: number | null;
  readonly upstream?: string | null;
  readonly lastError?: string | null;
}

/** The part of a node's status document (DESIGN.md section 10) the cluster reads. */
export interface NodeStatusView {
  readonly role: 'primary' | 'standby';
  readonly systemId: string;
  readonly timeline: number;
  readonly flushLsn: string;
  readonly receiveLsn: string | null;
  readonly replayLsn: string | null;
  readonly member?: string;
  /** A primary's position released to synchronous commits (null: asynchronous); see the server's sync-rep.ts. */
  readonly syncReleasedLsn?: string | null;
  readonly replication?: readonly ReplicationRowView[];
  readonly walReceiver?: WalReceiverView | null;
  /** A standby's walreceiver starts since its postmaster started (PMSIGNAL_START_WALRECEIVER answered). */
  readonly walReceiverStarts?: number;
  readonly [key: string]: unknown;
}

/**
 * A grant of the primary's lease (the server's lease.ts): `holder` may acknowledge commits on
 * `timeline` until `issuedAtUs + durationMs`, counted on this machine's CLOCK_MONOTONIC in
 * microseconds (`monotonicClockUs()`), which the caller reads just before sending it and keeps:
 * whatever happens to the request, the lease ends then.
 */
export interface LeaseGrantRequest {
  readonly holder: string;
  readonly timeline: number;
  readonly durationMs: number;
  readonly issuedAtUs: number;
  readonly grantor: string;
}

/** What became of a grant: taken (until `expiresInMs` from now), refused by the node (why), or not answered. */
export type LeaseGrantOutcome =
  | { readonly granted: true; readonly expiresInMs: number }
  | { readonly granted: false; readonly refused: string | null };

/** A session kept open to one node, for health checks that should not connect each time. */
export interface NodeSession {
  /** The node's status; null when it does not answer within `timeoutMs` (the session is then unusable). */
  status(timeoutMs: number): Promise<NodeStatusView | null>;
  /** Grants the primary's lease; `refused: null` when the node did not answer within `timeoutMs`. */
  grantLease(grant: LeaseGrantRequest, timeoutMs: number): Promise<LeaseGrantOutcome>;
  close(): Promise<void>;
}

/** Settings for walship.conf, as name and text. */
export type SettingPairs = ReadonlyArray<readonly [string, string]>;

export interface NodeControl {
  /**
   * `walship init`: a new data directory with these settings (the port among them). `users`
   * (the auth key): `init --auth scram-sha-256` with the superuser, and the replication user added.
   */
  init(options: { dataDir: string; port: number; settings: SettingPairs; users?: ClusterCredentials }): Promise<void>;
  /** `walship start`: returns once the node accepts connections. */
  start(options: { dataDir: string; timeoutMs?: number }): Promise<void>;
  /** `walship stop`: returns once the node has exited. */
  stop(options: { dataDir: string; mode: StopMode; timeoutMs?: number }): Promise<void>;
  /**
   * `walship basebackup --standby`: a standby of `from` (HOST:PORT), its slot created there when
   * given. `password`: the source's replication_password, when it has one; `user`: the replication
   * user of the auth key.
   */
  baseBackup(options: { from: string; dataDir: string; port: number; settings: SettingPairs; slot: string | null; user?: string; password?: string }): Promise<{ bytes: number; elapsedMs: number }>;
  /** `walship promote -D`: returns once the node accepts writes. */
  promote(options: { dataDir: string; timeoutMs?: number }): Promise<{ timeline: number }>;
  /** `walship rewind`: a stopped node made a standby of `source` (HOST:PORT). */
  rewind(options: { dataDir: string; source: string; user?: string; password?: string }): Promise<{ rewound: boolean; divergenceLsn: string | null }>;
  /** `walship set -D` for several settings at once: written to walship.conf, a running node reloaded. */
  setSettings(options: { dataDir: string; settings: SettingPairs }): Promise<{ reloaded: boolean }>;
  /** `walship slot create`, succeeding when the slot exists already. */
  createSlot(options: { address: string; name: string; user?: string; password?: string }): Promise<{ created: boolean }>;
  /** `walship status --json`; null when the node cannot be reached within `timeoutMs`. */
  status(options: { address: string; timeoutMs: number }): Promise<NodeStatusView | null>;
  /** Grants the primary's lease to the node at `address` (see LeaseGrantRequest). */
  grantLease(options: { address: string; grant: LeaseGrantRequest; timeoutMs: number }): Promise<LeaseGrantOutcome>;
  /** A session for repeated status requests; null when the node cannot be reached within `timeoutMs`. */
  openSession(options: { address: string; timeoutMs: number }): Promise<NodeSession | null>;
}
