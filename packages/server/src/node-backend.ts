/**
 * The Backend that client sessions call, over the postmaster's current database instance. It
 * answers "starting up" / "shutting down" while there is no instance, and turns a programmer
 * error inside a transaction (an assertion) into a node crash-restart, as a crashed PostgreSQL
 * backend makes the postmaster reinitialize.
 */
import { AssertionFailure, ErrorCode, WalshipError, formatLsn, type Entry, type Lsn, type RangeOptions, type RangeResult, type TxnRequest, type TxnResult } from '@walship/engine';
import type { Backend, NodeStatus, ServerState } from './backend.js';
import type { Postmaster } from './postmaster.js';

export class NodeBackend implements Backend {
  constructor(private readonly postmaster: Postmaster) {}

  state(): ServerState {
    return this.postmaster.state;
  }

  memberName(): string {
    return this.postmaster.memberName;
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

  get(table: string | undefined, key: Buffer): Promise<Entry | null> {
    return this.guard(() => this.db().get(table, key));
  }

  range(options: RangeOptions & { minLsn?: Lsn; timeoutMs?: number }): Promise<RangeResult> {
    return this.guard(() => this.db().range(options));
  }

  txn(request: TxnRequest): Promise<TxnResult> {
    return this.guard(() => this.db().txn(request));
  }

  createTable(name: string): Promise<{ created: boolean; lsn: Lsn }> {
    return this.guard(() => this.db().createTable(name));
  }

  async listTables(): Promise<string[]> {
    return this.db().listTables();
  }

  async status(): Promise<NodeStatus> {
    const db = this.db();
    return {
      ...(db.status() as NodeStatus),
      pid: process.pid,
      member: this.postmaster.memberName,
      serverState: this.postmaster.state,
      replication: [],
      walReceiver: null,
      slots: [],
      syncWaiters: { count: 0, oldestMs: 0 },
      cpuUserMicros: process.cpuUsage().user,
      cpuSystemMicros: process.cpuUsage().system,
      startedAt: new Date(this.postmaster.startedAt).toISOString(),
      crashRestarts: this.postmaster.crashRestarts,
      tables: db.tableSizes(),
      autovacuum: this.postmaster.autovacuumCounts(),
    };
  }

  async checkpoint(): Promise<{ lsn: Lsn; redoLsn: Lsn }> {
    const result = await this.postmaster.requestCheckpoint();
    return { lsn: result.lsn, redoLsn: result.redo };
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
