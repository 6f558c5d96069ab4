/**
 * The Backend that client sessions call, over the postmaster's current database instance. It
 * answers "starting up" / "shutting down" while there is no instance, and turns a programmer
 * error inside a transaction (an assertion) into a node crash-restart, as a crashed PostgreSQL
 * backend makes the postmaster reinitialize.
 */
import {
  AssertionFailure, DEFAULT_TABLE, DB_STATE_NAMES, ErrorCode, WalshipError, formatLsn,
  type CommitWaitOptions, type Entry, type Lsn, type RangeOptions, type RangeResult, type TxnRequest, type TxnResult,
} from '@walship/engine';
import type { WaitLsnMode, WaitLsnStatus } from '@walship/protocol';
import { LsnWaiters } from './wait-lsn.js';
import type { WalRecovery } from '@walship/engine/wal-recovery';
import { timestampTzToIsoString } from '@walship/protocol';
import { readTimeLineHistory } from '@walship/engine/wal/timeline';
import type { Backend, NodeStatus, ReadWait, ServerState } from './backend.js';
import type { Postmaster } from './postmaster.js';
import type { LeaseGrant } from './lease.js';
import type { SyncRep } from './sync-rep.js';

export class NodeBackend implements Backend {
  constructor(private readonly postmaster: Postmaster) {}

  state(): ServerState {
    return this.postmaster.state;
  }

  memberName(): string {
    return this.postmaster.memberName;
  }

  /** A standby's replayed state, for hot-standby reads; null on a primary. */
  private standby(): WalRecovery | null {
    if (this.postmaster.role !== 'standby') return null;
    const recovery = this.postmaster.recovery;
    if (recovery === null || !this.postmaster.servesOpenSessions) {
      throw new WalshipError(ErrorCode.cannotConnectNow, cannotConnectMessage(this.postmaster.state), { severity: 'FATAL' });
    }
    return recovery;
  }

  private refuseWriteOnStandby(): void {
    if (this.postmaster.role === 'standby') {
      throw new WalshipError(ErrorCode.readOnly, 'cannot write to a read-only standby', {
        detail: 'This node replays its primary\'s WAL; it accepts reads only.',
        hint: 'Send writes to the primary (walship status shows each node\'s role), or promote this standby.',
      });
    }
  }

  /**
   * Read-your-writes: a standby waits until it has replayed `minLsn` (default wait 30 s). With the
   * timeline it was written on, a position this node's history can never show fails at once, on
   * a primary too (a write lost in a failover), and again after the wait (the standby may have
   * followed another timeline meanwhile).
   */
  private async waitForMinLsn(options: ReadWait): Promise<void> {
    if (options.minLsn === undefined) return;
    if (options.minLsnTimeline !== undefined) this.postmaster.checkLsnInHistory(options.minLsn, options.minLsnTimeline);
    if (this.standby() === null) return;
    await this.postmaster.waitForReplay(options.minLsn, options.timeoutMs ?? 30_000);
    if (options.minLsnTimeline !== undefined) this.postmaster.checkLsnInHistory(options.minLsn, options.minLsnTimeline);
  }

  private db() {
    const db = this.postmaster.database;
    // Open sessions keep working during a smart shutdown (see Postmaster.servesOpenSessions).
    if (db === null || !this.postmaster.servesOpenSessions) {
      throw new WalshipError(ErrorCode.cannotConnectNow, cannotConnectMessage(this.postmaster.state), { severity: 'FATAL' });
    }
    return db;
  }

  private async guard<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (error) {
      // A programmer error, or an error after which the node cannot go on (an fsync or write
      // failure is PANIC): the node crash-restarts, as PostgreSQL's postmaster does.
      if (error instanceof AssertionFailure || (error instanceof WalshipError && error.severity === 'PANIC')) {
        this.postmaster.crash('client session', error);
      }
      throw error;
    }
  }

  get(table: string | undefined, key: Buffer, options: ReadWait = {}): Promise<Entry | null> {
    return this.guard(async () => {
      await this.waitForMinLsn(options);
      if (this.standby() !== null) {
        // A read between two replayed records sees one transaction boundary.
        const store = this.standby()!.store;
        const relNode = store.lookupTable(table ?? DEFAULT_TABLE);
        return relNode === null ? null : store.get(relNode, key);
      }
      return this.db().get(table, key);
    });
  }

  range(options: RangeOptions & ReadWait): Promise<RangeResult> {
    return this.guard(async () => {
      await this.waitForMinLsn(options);
      if (this.standby() !== null) {
        const store = this.standby()!.store;
        const relNode = store.lookupTable(options.table ?? DEFAULT_TABLE);
        if (relNode === null) return { entries: [], more: false };
        const scan: { start?: Buffer; end?: Buffer; prefix?: Buffer; limit?: number } = {};
        if (options.start !== undefined) scan.start = options.start;
        if (options.end !== undefined) scan.end = options.end;
        if (options.prefix !== undefined) scan.prefix = options.prefix;
        if (options.limit !== undefined) scan.limit = options.limit;
        return store.scan(relNode, scan);
      }
      return this.db().range(options);
    });
  }

  /**
   * A transaction. With require_primary_lease, the lease is checked before it writes anything
   * and again right before it is acknowledged (lease.ts): a primary whose lease ran out while the
   * commit waited, or while the node was stopped, does not acknowledge it.
   */
  txn(request: TxnRequest, wait: CommitWaitOptions = {}): Promise<TxnResult> {
    return this.guard(async () => {
      this.refuseWriteOnStandby();
      const lease = this.postmaster.lease;
      lease.checkBeforeCommit();
      const result = await this.db().txn(request, wait);
      lease.checkAcknowledge(result.lsn);
      return result;
    });
  }

  async waitLsn(lsn: Lsn, mode: WaitLsnMode, options: { timeoutMs?: number; noThrow?: boolean }): Promise<{ status: WaitLsnStatus; lsn: Lsn }> {
    if (this.postmaster.role === 'standby') this.standby();
    const waiters = this.postmaster.lsnWaiters;
    const outcome = await waiters.waitFor(lsn, mode, options.timeoutMs);
    if (outcome.status !== 'success' && options.noThrow !== true) throw LsnWaiters.outcomeError(lsn, mode, outcome, waiters.wasStandby);
    return outcome;
  }

  createTable(name: string, wait: CommitWaitOptions = {}): Promise<{ created: boolean; lsn: Lsn }> {
    return this.guard(async () => {
      this.refuseWriteOnStandby();
      const lease = this.postmaster.lease;
      lease.checkBeforeCommit();
      const result = await this.db().createTable(name, wait);
      lease.checkAcknowledge(result.lsn);
      return result;
    });
  }

  async grantLease(grant: LeaseGrant): Promise<{ holder: string; expiresInMs: number }> {
    const db = this.postmaster.database;
    return this.postmaster.lease.grant(grant, { member: this.postmaster.memberName, role: this.postmaster.role, timeline: db === null ? null : db.timeline });
  }

  async listTables(): Promise<string[]> {
    const standby = this.standby();
    if (standby !== null) return standby.store.listTables().map((t) => t.name);
    return this.db().listTables();
  }

  role(): 'primary' | 'standby' {
    if (this.standby() !== null) return 'standby';
    this.db(); // throws cannot_connect_now when the primary serves no sessions, as status() does
    return 'primary';
  }

  async status(): Promise<NodeStatus> {
    const standby = this.standby();
    const common = {
      pid: process.pid,
      member: this.postmaster.memberName,
      serverState: this.postmaster.state,
      replication: this.postmaster.walSenders.rows(),
      slots: this.postmaster.role === 'primary' ? (this.postmaster.walSenders.slots?.rows() ?? []) : [],
      syncWaiters: this.postmaster.syncRep?.stats() ?? { count: 0, oldestMs: 0, byMode: { write: 0, flush: 0, apply: 0 } },
      cpuUserMicros: process.cpuUsage().user,
      cpuSystemMicros: process.cpuUsage().system,
      startedAt: new Date(this.postmaster.startedAt).toISOString(),
      crashRestarts: this.postmaster.crashRestarts,
      archiver: this.postmaster.archiverStatus(),
      lease: this.postmaster.lease.view(),
      ...this.monitoringFields(),
    };
    if (standby !== null) {
      const w = this.postmaster.walRcv;
      const active = w.status !== 'stopped';
      return {
        role: 'standby',
        systemId: standby.control.systemId.toString(),
        timeline: standby.replayTimeline,
        insertLsn: formatLsn(standby.replayEndLsn),
        flushLsn: formatLsn(Math.max(w.flushedUpto, standby.replayEndLsn)),
        receiveLsn: active || w.flushedUpto > 0 ? formatLsn(w.flushedUpto) : null,
        replayLsn: formatLsn(standby.replayEndLsn),
        lastCheckpointLsn: formatLsn(standby.control.checkpointLsn),
        redoLsn: formatLsn(standby.control.redoLsn),
        state: DB_STATE_NAMES[standby.control.state],
        consistent: standby.consistent,
        minRecoveryLsn: formatLsn(standby.control.minRecoveryLsn),
        lastReplayedCommitTime: standby.lastCommitTime > 0 ? new Date(standby.lastCommitTime).toISOString() : null,
        // A commit's or a heartbeat's time: `now - this` is the replay delay, kept small by heartbeats.
        lastReplayedTimestamp: standby.lastReplayedTimestamp > 0 ? new Date(standby.lastReplayedTimestamp).toISOString() : null,
        recordsReplayed: standby.recordsReplayed,
        walReceiverStarts: this.postmaster.walReceiverStarts,
        walReceiver: {
          status: w.status,
          receivedLsn: formatLsn(w.flushedUpto),
          writtenLsn: formatLsn(w.writtenUpto),
          receivedTli: w.receivedTli,
          latestEndLsn: formatLsn(w.latestWalEnd),
          latestEndTime: w.latestWalEndTime > 0 ? timestampTzToIsoString(w.latestWalEndTime) : null,
          lastMsgSendTime: w.lastMsgSendTime > 0 ? timestampTzToIsoString(w.lastMsgSendTime) : null,
          lastMsgReceiptTime: w.lastMsgReceiptTime > 0 ? timestampTzToIsoString(w.lastMsgReceiptTime) : null,
          slotName: w.slotName || null,
          upstream: w.upstream || null,
          lastError: w.lastError,
          // Of the WAL received since the start, what came as stored (encrypted, no cipher run here).
          walBytesReceived: w.walBytesReceived,
          walBytesReceivedAsStored: w.walBytesReceivedAsStored,
        },
        ...common,
      };
    }
    const db = this.db();
    return {
      ...(db.status() as NodeStatus),
      ...common,
      walReceiver: null,
      synchronousStandbyNames: this.postmaster.settings.get('synchronous_standby_names'),
      // Rule 2 of the failover decision: what was released to synchronous commits (sync-rep.ts).
      ...this.syncRepView(),
      cpuUserMicros: process.cpuUsage().user,
      cpuSystemMicros: process.cpuUsage().system,
      startedAt: new Date(this.postmaster.startedAt).toISOString(),
      crashRestarts: this.postmaster.crashRestarts,
      tables: db.tableSizes(),
      autovacuum: this.postmaster.autovacuumCounts(),
    };
  }

  /**
   * A primary's synchronous replication as the failover decision needs it: `syncRep` with the
   * rule in force and the positions released per wait mode, and `syncReleasedLsn`, the highest of
   * the flush and apply positions (what commits at `on` and `remote_apply` were released at);
   * null without synchronous replication.
   */
  private syncRepView(): { syncRep: ReturnType<SyncRep['released']> | null; syncReleasedLsn: string | null } {
    const syncRep = this.postmaster.syncRep;
    if (syncRep === null || syncRep.rule === null) return { syncRep: null, syncReleasedLsn: null };
    return { syncRep: syncRep.released(), syncReleasedLsn: formatLsn(syncRep.releasedCommitLsn()) };
  }

  /**
   * What the lag monitor needs besides positions: where /metrics answers, the intervals that
   * tell a silent standby from a disconnected one, and this node's timeline history (ancestor
   * timelines and their switch points, to tell a standby behind on an old timeline from one
   * that diverged).
   */
  private monitoringFields(): Record<string, unknown> {
    const settings = this.postmaster.settings;
    const metricsPort = settings.get('metrics_port');
    const timeline = this.postmaster.database?.timeline ?? this.postmaster.recovery?.replayTimeline ?? null;
    let timelineHistory: Array<{ timeline: number; switchLsn: string }> = [];
    if (timeline !== null) {
      try {
        timelineHistory = readTimeLineHistory(this.postmaster.dataDir, timeline)
          .filter((entry) => entry.tli !== timeline)
          .map((entry) => ({ timeline: entry.tli, switchLsn: formatLsn(entry.end) }));
      } catch {
        // A missing or unreadable history file is the startup process's business; the monitor does without.
      }
    }
    return {
      metricsPort: metricsPort > 0 ? metricsPort : settings.get('port'),
      // Whether the port serves TLS (ssl needs a restart: the running value is the setting's).
      ssl: settings.get('ssl'),
      heartbeatIntervalMs: settings.get('heartbeat_interval'),
      walReceiverStatusIntervalMs: settings.get('wal_receiver_status_interval'),
      walSenderTimeoutMs: settings.get('wal_sender_timeout'),
      timelineHistory,
    };
  }

  async checkpoint(): Promise<{ lsn: Lsn; redoLsn: Lsn }> {
    const result = await this.postmaster.requestCheckpoint();
    return { lsn: result.lsn, redoLsn: result.redo };
  }

  promote(options: { wait: boolean; timeoutMs: number }): Promise<{ promoted: boolean; timeline: number }> {
    return this.postmaster.promote(options);
  }

  setSetting(name: string, value: string): Promise<{ restartRequired: boolean }> {
    return this.postmaster.setSetting(name, value);
  }

  async showSetting(name: string): Promise<string> {
    return this.postmaster.showSetting(name);
  }

  metrics(): string {
    return this.postmaster.metrics();
  }
}

export function cannotConnectMessage(state: ServerState): string {
  switch (state) {
    case 'starting': return 'the database system is starting up';
    case 'recovery': return 'the database system is in recovery mode';
    case 'stopping': return 'the database system is shutting down';
    case 'crashed': return 'the database system is in recovery mode';
    default: return 'the database system is not accepting connections';
  }
}

export { formatLsn };
