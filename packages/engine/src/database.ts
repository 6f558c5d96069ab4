/**
 * A node's database: the WAL, the buffer pool and tables, crash recovery at open, transactions,
 * reads and checkpoints. The server's components (the WAL writer, checkpointer, background
 * writer, autovacuum) drive its periodic work; the postmaster builds a new Database from scratch
 * on every start and after every crash, so nothing here outlives an instance.
 *
 * Transactions: the apply step (compares, then every operation, then the WAL record) is one
 * synchronous block with no await, so no reader ever sees half a transaction. Then the commit
 * waits for its synchronous_commit level; a reader sees the transaction only once that level is
 * met: a read waits until everything it could have seen is flushed locally and, for a commit that
 * waits for synchronous standbys, until that wait is over (pending-commits.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatLsn, type Lsn } from './lsn.js';
import { BLCKSZ, DEFAULT_TABLE } from './constants.js';
import { DbState, writeControlFile, DB_STATE_NAMES, type ControlFileData } from './control-file.js';
import { ErrorCode, WalshipError } from './errors.js';
import { PageChangeSet } from './access/generic-xlog.js';
import { PendingCommits, type PendingCommit, type PendingDelete } from './pending-commits.js';
import { prefixEnd } from './storage/btree.js';
import { CheckpointFlags, createCheckPoint, type CheckpointResult, type CheckpointWriteDelay } from './checkpoint.js';
import { checkEndOfWal, truncateWalAfter } from './recovery.js';
import { BACKUP_LABEL_FILE, WalRecovery } from './wal-recovery.js';
import { startNewTimeline } from './promote.js';
import { walCipherFor } from './crypto/registry.js';
import { findBytesPastEndOfWal, retireOldTimelineTail } from './torn-wal-tail.js';
import { BufferPool } from './storage/buffer-pool.js';
import { Smgr } from './storage/smgr.js';
import { Store } from './storage/store.js';
import { encodeCommit, encodeEndOfRecovery, encodeHeartbeat, encodeVacuum, XACT_FLAG_DDL, XACT_FLAG_REMOTE_APPLY } from './wal/record-data.js';
import { RmgrId, SIZE_OF_XLOG_RECORD, StorageInfo, XactInfo, XLOG_MARK_UNIMPORTANT, XlogInfo } from './wal/xlog-record.js';
import { PreparedWalIo, Xlog } from './wal/xlog.js';
import type { CommitWaitOptions, Compare, Entry, Operation, RangeOptions, RangeResult, SyncCommitLevel, TxnRequest, TxnResult } from './types.js';

export type LogLevel = 'DEBUG' | 'LOG' | 'DETAIL' | 'HINT' | 'WARNING' | 'ERROR' | 'FATAL' | 'PANIC';
export type LogFunction = (level: LogLevel, message: string) => void;

export interface DatabaseOptions {
  dataDir: string;
  /** shared_buffers, in bytes. */
  sharedBuffersBytes: number;
  /** wal_buffers, in bytes. */
  walBuffersBytes: number;
  fsync: boolean;
  fullPageWrites: boolean;
  synchronousCommit: SyncCommitLevel;
  /** application_name: the member named in acknowledgements. */
  memberName: string;
  walKeepBytes: number;
  log: LogFunction;
  /** Runs after each asynchronous commit (synchronous_commit = off): wakes a hibernating WAL writer. */
  onAsyncCommit?: () => void;
  /**
   * Waits for the synchronous standbys (SyncRepWaitForLSN), after the local flush; resolves at
   * once when none are configured, and rejects when the wait is cancelled (`wait`'s deadline or
   * signal), the commit staying durable locally. Absent: `on`, `remote_write` and `remote_apply`
   * act as `local`.
   */
  syncRepWait?: (lsn: Lsn, level: SyncCommitLevel, wait: CommitWaitOptions) => Promise<void>;
  /**
   * A timeline that a switch at the end of crash recovery (an encrypted torn tail) must not take,
   * nor any below it: `walship rewind` passes its source's, since the source already writes other
   * WAL under that timeline with the same key.
   */
  newTimelineAbove?: number;
  /** A WAL I/O worker spawned ahead of time: a standby's, so that its promotion does not wait for a thread to start. */
  preparedWalIo?: PreparedWalIo;
}

export interface DatabaseStats {
  commits: number;
  aborts: number;
  reads: number;
  recoveryRecords: number;
  recoveryBytes: number;
  recoveryMs: number;
}


export class Database {
  readonly dataDir: string;
  readonly control: ControlFileData;
  readonly smgr: Smgr;
  readonly pool: BufferPool;
  readonly xlog: Xlog;
  readonly store: Store;
  private readonly options: DatabaseOptions;
  private nextXid: number;
  /** Highest commit LSN that readers must not see before it is durable (see waitForVisibility). */
  private visibilityWaitLsn = 0;
  /** Commits waiting for synchronous standbys: readers that would see them wait (pending-commits.ts). */
  private readonly pendingCommits = new PendingCommits();
  private checkpointRunning: Promise<CheckpointResult> | null = null;
  private readonly tablesWithDeletes = new Set<number>();
  private closed = false;
  synchronousCommit: SyncCommitLevel;
  /** Start LSNs of running base backups: their WAL must stay until they end. */
  readonly backupsRunning = new Set<number>();
  /**
   * Replication slots' hold on WAL at a checkpoint, set by the server once it has loaded the
   * slots (it invalidates slots past max_slot_wal_keep_size, then returns the oldest LSN the
   * others need). Until then (the end-of-recovery checkpoint runs first), a checkpoint removes no
   * WAL at all while pg_replslot/ holds a slot.
   */
  replicationSlotsKeep: ((at: { redo: Lsn; end: Lsn }) => Lsn | null) | null = null;
  /** wal_keep_size, in bytes; changes on reload. */
  walKeepBytes: number;
  readonly stats: DatabaseStats;
  lastCommitTime = 0;
  /** Crash recovery ended on a new timeline because of an encrypted torn tail (torn-wal-tail.ts): from which, where. */
  timelineSwitchedAfterCrash: { previousTimeline: number; switchPoint: Lsn } | null = null;

  private constructor(options: DatabaseOptions, control: ControlFileData, smgr: Smgr, pool: BufferPool, xlog: Xlog, nextXid: number, stats: DatabaseStats) {
    this.options = options;
    this.dataDir = options.dataDir;
    this.control = control;
    this.smgr = smgr;
    this.pool = pool;
    this.xlog = xlog;
    this.store = new Store(pool);
    this.nextXid = nextXid;
    this.synchronousCommit = options.synchronousCommit;
    this.walKeepBytes = options.walKeepBytes;
    this.stats = stats;
  }

  /**
   * StartupXLOG for a node that is not a standby: crash recovery from the latest checkpoint's
   * redo point to the end of valid WAL (refusing to start on corruption), then writable.
   */
  static async open(options: DatabaseOptions): Promise<Database> {
    const recovery = WalRecovery.open({ dataDir: options.dataDir, sharedBuffersBytes: options.sharedBuffersBytes, log: options.log });
    if (recovery.standbyMode) {
      recovery.close();
      throw new WalshipError(ErrorCode.internal, 'a standby is started by the startup component, not Database.open', { severity: 'FATAL' });
    }
    const started = performance.now();
    for (;;) {
      const stop = recovery.replayAvailable(10);
      if (stop.kind === 'budget') {
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      try {
        checkEndOfWal(recovery, stop);
      } catch (error) {
        recovery.close();
        throw error;
      }
      break;
    }
    return Database.finishRecovery(recovery, options, { promote: false, recoveryMs: performance.now() - started });
  }

  /**
   * FinishWalRecovery and the end of StartupXLOG: makes the end of replayed WAL the end of the
   * WAL, starts the WAL writer there, and opens for writes. After crash recovery it writes an
   * end-of-recovery checkpoint; when promoting a standby it picks the next timeline, writes its
   * history file, starts the new timeline's first segment, and writes an end-of-recovery record
   * (the checkpoint follows in the background, as PostgreSQL's fast promotion does).
   */
  static async finishRecovery(recovery: WalRecovery, options: DatabaseOptions, mode: {
    promote: boolean; recoveryMs?: number; walReceivedUpTo?: number;
    /** archive_mode is not off: the old timeline's switch segment is kept as `.partial`. */
    keepPartialSegment?: boolean;
  }): Promise<Database> {
    const { dataDir, log } = options;
    const control = recovery.control;
    const endOfWal = recovery.endOfReplayedWal;
    const replayed = recovery.recordsReplayed;
    const bytesReplayed = endOfWal - recovery.startLsn;
    if (replayed > 0) {
      log('LOG', `redo done at ${formatLsn(recovery.lastRecordLsn)}: ${replayed} records, ${(bytesReplayed / 1048576).toFixed(1)} MB in ${((mode.recoveryMs ?? 0) / 1000).toFixed(2)} s`);
    }
    recovery.source.closeFile();
    const previousTimeline = recovery.replayTimeline;
    let timeline = previousTimeline;
    const cleanShutdown = control.state === DbState.shutdowned && replayed <= 1;
    if (mode.promote) {
      timeline = startNewTimeline(dataDir, control, previousTimeline, endOfWal, log, { keepPartialSegment: mode.keepPartialSegment === true });
    }
    // Crash recovery of an encrypted cluster that ends before bytes the WAL I/O worker wrote on
    // this timeline: writing new records over them would encrypt other plaintext under the same
    // (timeline, LSN) counters, so the new records go to a new timeline (torn-wal-tail.ts).
    let tornTailSwitch = false;
    if (!mode.promote && !cleanShutdown && walCipherFor(dataDir) !== null) {
      const written = findBytesPastEndOfWal(dataDir, previousTimeline, endOfWal, control.walSegmentSize);
      if (written !== null) {
        timeline = startNewTimeline(dataDir, control, previousTimeline, endOfWal, log, {
          ...(options.newTimelineAbove !== undefined ? { above: options.newTimelineAbove } : {}),
          crashRecoveryReason: `Bytes of an unfinished write follow the end of WAL at ${formatLsn(endOfWal)} on timeline ${previousTimeline} (the first at ${formatLsn(written)}); ` +
            `new WAL written there on the same timeline would be encrypted twice under one counter.`,
        });
        tornTailSwitch = true;
      }
    }
    const switchedAfterCrash = tornTailSwitch ? { previousTimeline, switchPoint: endOfWal } : null;
    control.timeline = timeline;
    control.prevTimeline = previousTimeline;
    const partialPage = truncateWalAfter(dataDir, control, endOfWal, mode.promote ? Math.max(mode.walReceivedUpTo ?? 0, endOfWal) : undefined);
    const backupLabel = path.join(dataDir, BACKUP_LABEL_FILE);
    if (fs.existsSync(backupLabel)) fs.renameSync(backupLabel, `${backupLabel}.old`);
    const stats: DatabaseStats = {
      commits: 0, aborts: 0, reads: 0, recoveryRecords: replayed, recoveryBytes: bytesReplayed, recoveryMs: mode.recoveryMs ?? 0,
    };
    const xlog = new Xlog({
      dataDir,
      segmentSize: control.walSegmentSize,
      walBuffersBytes: options.walBuffersBytes,
      systemId: control.systemId,
      timeline,
      fsync: options.fsync,
      insertLsn: endOfWal,
      prevRecordLsn: recovery.lastRecordLsn,
      ...(partialPage !== undefined ? { partialPage } : {}),
      ...(options.preparedWalIo !== undefined ? { prepared: options.preparedWalIo } : {}),
      // A setting changed since (a restart with another full_page_writes) is logged before use.
      fullPageWritesInWal: recovery.lastFullPageWrites,
    });
    xlog.redoRecPtr = control.redoLsn;
    xlog.fullPageWrites = options.fullPageWrites;
    recovery.pool.setFlushWal((lsn: Lsn) => xlog.xlogFlushSync(lsn));
    const db = new Database(options, control, recovery.smgr, recovery.pool, xlog, recovery.nextXid, stats);
    db.lastCommitTime = recovery.lastCommitTime;
    db.timelineSwitchedAfterCrash = switchedAfterCrash;
    control.minRecoveryLsn = 0 as Lsn;
    control.minRecoveryTimeline = 0;
    if (mode.promote) {
      const record = encodeEndOfRecovery({ time: Date.now(), timeline, prevTimeline: previousTimeline });
      const buffer = Buffer.alloc(SIZE_OF_XLOG_RECORD + 2 + record.length);
      record.copy(buffer, SIZE_OF_XLOG_RECORD + 2);
      const { end } = xlog.xlogInsertRecord(buffer, buffer.length, RmgrId.xlog, XlogInfo.endOfRecovery, 0);
      await xlog.xlogFlush(end);
      control.state = DbState.inProduction;
      writeControlFile(dataDir, control);
      void db.checkpoint(CheckpointFlags.force).catch((error: unknown) => log('WARNING', `checkpoint after promotion failed: ${(error as Error).message}`));
    } else if (!cleanShutdown) {
      await db.checkpoint(CheckpointFlags.endOfRecovery | CheckpointFlags.immediate | CheckpointFlags.wait);
      // The control file now names the new timeline: the old one's torn segments can go.
      if (tornTailSwitch) retireOldTimelineTail(dataDir, previousTimeline, endOfWal, control.walSegmentSize);
    } else {
      control.state = DbState.inProduction;
      writeControlFile(dataDir, control);
    }
    log('LOG', 'database system is ready to accept connections');
    return db;
  }

  /** The creation step of `walship init`: the catalog and the default table, logged like any change. */
  bootstrapStore(): void {
    const ctx = new PageChangeSet(this.pool);
    try {
      this.store.bootstrap(ctx);
    } catch (error) {
      ctx.abort();
      throw error;
    }
    this.finishChangeSet(ctx, RmgrId.transaction, XactInfo.commit, encodeCommit({ time: Date.now(), operations: 1, flags: XACT_FLAG_DDL }));
  }

  get timeline(): number {
    return this.xlog.timeline;
  }

  get memberName(): string {
    return this.options.memberName;
  }

  // ---- reads -------------------------------------------------------------------------------

  async get(table: string | undefined, key: Buffer): Promise<Entry | null> {
    this.checkOpen();
    const relNode = this.store.lookupTable(table ?? DEFAULT_TABLE);
    const entry = relNode === null ? null : this.store.get(relNode, key);
    this.stats.reads++;
    const blockers = this.pendingCommits.blockersOfGet(relNode, key, entry?.revision ?? null);
    await this.waitForVisibility(blockers);
    return entry;
  }

  async range(options: RangeOptions): Promise<RangeResult> {
    this.checkOpen();
    const relNode = this.store.lookupTable(options.table ?? DEFAULT_TABLE);
    const scan: { start?: Buffer; end?: Buffer; prefix?: Buffer; limit?: number } = {};
    if (options.start !== undefined) scan.start = options.start;
    if (options.end !== undefined) scan.end = options.end;
    if (options.prefix !== undefined) scan.prefix = options.prefix;
    if (options.limit !== undefined) scan.limit = options.limit;
    const result = relNode === null ? { entries: [], more: false } : this.store.scan(relNode, scan);
    this.stats.reads++;
    let blockers: PendingCommit[] = [];
    if (this.pendingCommits.size > 0) {
      const { start, end } = scanBounds(options);
      blockers = this.pendingCommits.blockersOfScan(relNode, start, end, result.entries.map((entry) => entry.revision));
    }
    await this.waitForVisibility(blockers);
    return result;
  }

  listTables(): string[] {
    return this.store.listTables().map((t) => t.name);
  }

  /** Each table's size (pg_relation_size) and free pages: what autovacuum has to reuse. */
  tableSizes(): Array<{ name: string; relNode: number; blocks: number; freePages: number; sizeBytes: number }> {
    return this.store.listTables().map(({ name, relNode }) => {
      const info = this.store.relationInfo(relNode);
      return { name, relNode, blocks: info.nblocks, freePages: info.freePages, sizeBytes: info.nblocks * BLCKSZ };
    });
  }

  /**
   * A read's snapshot may include transactions whose commit is not yet acknowledged; the reply
   * waits until they are, so that no reader sees what a crash could take away: everything it
   * could have seen flushed locally, and `blockers`, the commits in its result that wait for
   * synchronous standbys, done waiting.
   */
  private async waitForVisibility(blockers: readonly PendingCommit[] = NO_BLOCKERS): Promise<void> {
    const lsn = this.visibilityWaitLsn;
    if (lsn !== 0 && this.xlog.getFlushRecPtr() < lsn) await this.xlog.xlogFlush(lsn as Lsn);
    if (blockers.length === 0) return;
    await this.pendingCommits.untilVisible(blockers);
    this.checkOpen();
  }

  /** How many commits wait for synchronous standbys with their changes hidden from readers. */
  get pendingCommitCount(): number {
    return this.pendingCommits.size;
  }

  /**
   * The compares may only read what is visible: a compare that saw a pending commit's change
   * would let this transaction be acknowledged on data its standbys may never have had (in
   * PostgreSQL the second writer waits on the first one's row lock). Loops because new commits
   * can become pending while it waits; returns with nothing pending, so the apply step that
   * follows in the same tick sees only visible data.
   */
  private async waitForComparedKeys(compares: readonly Compare[]): Promise<void> {
    for (;;) {
      if (this.pendingCommits.size === 0) return;
      const blockers: PendingCommit[] = [];
      for (const compare of compares) {
        const relNode = this.store.lookupTable(compare.table ?? DEFAULT_TABLE);
        const entry = relNode === null ? null : this.store.get(relNode, compare.key);
        blockers.push(...this.pendingCommits.blockersOfGet(relNode, compare.key, entry?.revision ?? null));
      }
      if (blockers.length === 0) return;
      await this.pendingCommits.untilVisible(blockers);
      this.checkOpen();
    }
  }

  // ---- writes ------------------------------------------------------------------------------

  async txn(request: TxnRequest, wait: CommitWaitOptions = {}): Promise<TxnResult> {
    this.checkOpen();
    const level = request.syncCommit ?? this.synchronousCommit;
    if (request.compares !== undefined && request.compares.length > 0 && this.pendingCommits.size > 0) {
      await this.waitForComparedKeys(request.compares);
    }
    // The apply step: synchronous from the compares to the WAL insert.
    let succeeded = true;
    for (const compare of request.compares ?? []) {
      if (!this.evaluate(compare)) {
        succeeded = false;
        break;
      }
    }
    const operations = (succeeded ? request.onSuccess : request.onFailure) ?? [];
    if (operations.length === 0) {
      await this.waitForVisibility();
      return { succeeded, lsn: this.xlog.getInsertRecPtr(), timeline: this.timeline, member: this.memberName, counts: [] };
    }
    const ctx = new PageChangeSet(this.pool);
    const counts: number[] = [];
    let ddl = false;
    try {
      for (const op of operations) {
        const result = this.apply(op, ctx);
        counts.push(result.count);
        ddl ||= result.created;
      }
    } catch (error) {
      ctx.abort();
      this.stats.aborts++;
      throw error;
    }
    let flags = ddl ? XACT_FLAG_DDL : 0;
    if (level === 'remote_apply') flags |= XACT_FLAG_REMOTE_APPLY;
    const time = Date.now();
    const logged = ctx.size > 0;
    const lsn = !logged
      ? this.xlog.getInsertRecPtr()
      : this.finishChangeSet(ctx, RmgrId.transaction, XactInfo.commit, encodeCommit({ time, operations: operations.length, flags }));
    if (level !== 'off' && lsn > this.visibilityWaitLsn) this.visibilityWaitLsn = lsn;
    const pending = logged && this.waitsForStandbys(level) ? this.pendingCommits.register(lsn, this.deletesOf(operations, counts)) : null;
    this.lastCommitTime = time;
    this.stats.commits++;
    // End of the apply step. Now wait for synchronous_commit.
    try {
      await this.waitForCommit(lsn, level, wait);
    } finally {
      if (pending !== null) this.pendingCommits.release(pending);
    }
    return { succeeded, lsn, timeline: this.timeline, member: this.memberName, counts };
  }

  /** Whether a commit at `level` may wait for synchronous standbys (and so starts out hidden). */
  private waitsForStandbys(level: SyncCommitLevel): boolean {
    return this.options.syncRepWait !== undefined && (level === 'remote_write' || level === 'on' || level === 'remote_apply');
  }

  /** The keys and ranges a transaction deleted, for readers of keys that are no longer there. */
  private deletesOf(operations: readonly Operation[], counts: readonly number[]): PendingDelete[] {
    const deletes: PendingDelete[] = [];
    operations.forEach((op, index) => {
      if (op.kind === 'put' || counts[index] === 0) return;
      const relNode = this.store.lookupTable(op.table ?? DEFAULT_TABLE);
      if (relNode === null) return;
      deletes.push(op.kind === 'delete' ? { relNode, start: op.key, end: null } : { relNode, start: op.start, end: op.end });
    });
    return deletes;
  }

  private async waitForCommit(lsn: Lsn, level: SyncCommitLevel, wait: CommitWaitOptions = {}): Promise<void> {
    if (level === 'off') {
      this.options.onAsyncCommit?.();
      return;
    }
    await this.xlog.xlogFlush(lsn);
    if (level !== 'local' && this.options.syncRepWait !== undefined) await this.options.syncRepWait(lsn, level, wait);
  }

  async createTable(name: string, wait: CommitWaitOptions = {}): Promise<{ created: boolean; lsn: Lsn }> {
    this.checkOpen();
    if (this.store.lookupTable(name) !== null) return { created: false, lsn: this.xlog.getInsertRecPtr() };
    const ctx = new PageChangeSet(this.pool);
    try {
      this.store.createTable(name, ctx);
    } catch (error) {
      ctx.abort();
      throw error;
    }
    const lsn = this.finishChangeSet(ctx, RmgrId.transaction, XactInfo.commit, encodeCommit({ time: Date.now(), operations: 1, flags: XACT_FLAG_DDL }));
    if (this.synchronousCommit !== 'off' && lsn > this.visibilityWaitLsn) this.visibilityWaitLsn = lsn;
    await this.waitForCommit(lsn, this.synchronousCommit, wait);
    return { created: true, lsn };
  }

  private evaluate(compare: Compare): boolean {
    const relNode = this.store.lookupTable(compare.table ?? DEFAULT_TABLE);
    const entry = relNode === null ? null : this.store.get(relNode, compare.key);
    switch (compare.kind) {
      case 'exists':
        return (entry !== null) === compare.exists;
      case 'value': {
        const equal = entry !== null && entry.value.equals(compare.value);
        return compare.op === 'eq' ? equal : !equal;
      }
      case 'revision': {
        // A missing key has revision 0, as etcd's mod_revision.
        const revision = entry === null ? 0 : entry.revision;
        switch (compare.op) {
          case 'eq': return revision === compare.revision;
          case 'ne': return revision !== compare.revision;
          case 'lt': return revision < compare.revision;
          case 'gt': return revision > compare.revision;
        }
      }
    }
    return false;
  }

  private apply(op: Operation, ctx: PageChangeSet): { count: number; created: boolean } {
    const name = op.table ?? DEFAULT_TABLE;
    let relNode = this.store.lookupTable(name);
    let created = false;
    if (op.kind === 'put') {
      if (relNode === null) {
        relNode = this.store.createTable(name, ctx);
        created = true;
      }
      this.store.put(relNode, op.key, op.value, ctx);
      return { count: 1, created };
    }
    if (relNode === null) return { count: 0, created };
    this.tablesWithDeletes.add(relNode);
    if (op.kind === 'delete') return { count: this.store.delete(relNode, op.key, ctx) ? 1 : 0, created };
    return { count: this.store.deleteRange(relNode, op.start, op.end, ctx, op.limit), created };
  }

  private finishChangeSet(ctx: PageChangeSet, rmid: number, info: number, mainData: Buffer): Lsn {
    const xid = this.nextXid++;
    if (this.nextXid > 0xffff_ffff) this.nextXid = 1;
    const { end } = ctx.finish(this.xlog, (page) => this.store.pendingRevisionOffsets(page), rmid, info, xid, mainData);
    return end;
  }

  // ---- background work ----------------------------------------------------------------------

  /**
   * Inserts a heartbeat record stamped with `time` (see encodeHeartbeat) and returns its end LSN;
   * the caller flushes it. Marked unimportant, so that an idle node's timed checkpoints are
   * still skipped.
   */
  logHeartbeat(time: number): Lsn {
    this.checkOpen();
    const data = encodeHeartbeat({ time });
    const record = Buffer.alloc(SIZE_OF_XLOG_RECORD + 2 + data.length);
    data.copy(record, SIZE_OF_XLOG_RECORD + 2);
    return this.xlog.xlogInsertRecord(record, record.length, RmgrId.xlog, XlogInfo.noop, 0, XLOG_MARK_UNIMPORTANT).end;
  }

  /** A checkpoint. Requests made while one runs wait for it to end, then run their own. */
  async checkpoint(flags: number, writeDelay?: CheckpointWriteDelay): Promise<CheckpointResult> {
    this.checkOpen();
    while (this.checkpointRunning !== null) await this.checkpointRunning.catch(() => undefined);
    const running = createCheckPoint({
      dataDir: this.dataDir,
      xlog: this.xlog,
      pool: this.pool,
      smgr: this.smgr,
      control: this.control,
      nextXid: () => this.nextXid,
      walKeepBytes: this.walKeepBytes,
      keepWalFrom: (at) => this.keepWalFrom(at),
      ...(writeDelay !== undefined ? { writeDelay } : {}),
      log: this.options.log,
    }, flags);
    this.checkpointRunning = running;
    try {
      return await running;
    } finally {
      this.checkpointRunning = null;
    }
  }

  /** The oldest WAL kept beyond the redo pointer (KeepLogSeg's holders): running base backups and replication slots. */
  private keepWalFrom(at: { redo: Lsn; end: Lsn }): Lsn | null {
    const backups = this.backupsRunning.size > 0 ? Math.min(...this.backupsRunning) : null;
    const slots = this.replicationSlotsKeep !== null ? this.replicationSlotsKeep(at) : replicationSlotsOnDisk(this.dataDir) ? 0 : null;
    if (backups === null) return slots as Lsn | null;
    return (slots === null ? backups : Math.min(backups, slots)) as Lsn;
  }

  /** WAL written since the last checkpoint's redo point: the checkpointer's max_wal_size test. */
  walSinceRedo(): number {
    return this.xlog.getWriteRecPtr() - this.control.redoLsn;
  }

  /** The background writer's round: writes up to `maxPages` dirty buffers ahead of eviction. */
  bgWriterStep(maxPages: number, lruMultiplier: number): number {
    if (this.closed) return 0;
    return this.pool.bgBufferSync(maxPages, lruMultiplier, this.xlog.getFlushRecPtr());
  }

  /** Autovacuum's round over the tables that saw deletes: compacts and merges underfull pages. */
  vacuumStep(maxPagesPerRecord: number): { pagesCompacted: number; pagesMerged: number; pagesFreed: number } {
    const totals = { pagesCompacted: 0, pagesMerged: 0, pagesFreed: 0 };
    if (this.closed) return totals;
    for (const relNode of [...this.tablesWithDeletes]) {
      const ctx = new PageChangeSet(this.pool);
      let result;
      try {
        result = this.store.vacuumStep(relNode, ctx, maxPagesPerRecord);
      } catch (error) {
        ctx.abort();
        throw error;
      }
      if (ctx.size > 0) {
        this.finishChangeSet(ctx, RmgrId.storage, StorageInfo.vacuum, encodeVacuum(relNode));
      } else {
        ctx.abort();
      }
      totals.pagesCompacted += result.pagesCompacted;
      totals.pagesMerged += result.pagesMerged;
      totals.pagesFreed += result.pagesFreed;
      if (result.done) this.tablesWithDeletes.delete(relNode);
    }
    return totals;
  }

  status(): Record<string, unknown> {
    const wal = this.xlog.stats();
    return {
      role: 'primary',
      systemId: this.control.systemId.toString(),
      timeline: this.timeline,
      insertLsn: formatLsn(this.xlog.getInsertRecPtr()),
      writeLsn: formatLsn(this.xlog.getWriteRecPtr()),
      flushLsn: formatLsn(this.xlog.getFlushRecPtr()),
      receiveLsn: null,
      replayLsn: null,
      lastCheckpointLsn: formatLsn(this.control.checkpointLsn),
      redoLsn: formatLsn(this.control.redoLsn),
      state: DB_STATE_NAMES[this.control.state],
      lastCommitTime: this.lastCommitTime > 0 ? new Date(this.lastCommitTime).toISOString() : null,
      synchronousCommit: this.synchronousCommit,
      commits: this.stats.commits,
      walFsyncs: wal.fsyncs,
      walBytesWritten: wal.bytesWritten,
      walRecords: wal.records,
      buffers: this.pool.stats(),
      recovery: { records: this.stats.recoveryRecords, bytes: this.stats.recoveryBytes, ms: Math.round(this.stats.recoveryMs) },
    };
  }

  // ---- shutdown ----------------------------------------------------------------------------

  /** ShutdownXLOG: a shutdown checkpoint, then the WAL is closed. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    await this.checkpoint(CheckpointFlags.isShutdown | CheckpointFlags.immediate);
    this.closed = true;
    this.pendingCommits.releaseAll();
    await this.xlog.shutdown();
    this.smgr.close();
  }

  /** Immediate stop or crash: no checkpoint, nothing more written; recovery runs at the next start. */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Readers waiting for pending commits wake up and find the database closed.
    this.pendingCommits.releaseAll();
    await this.xlog.abort();
    this.smgr.close();
  }

  private checkOpen(): void {
    if (this.closed) {
      throw new WalshipError(ErrorCode.shuttingDown, 'terminating connection due to administrator command', { severity: 'FATAL' });
    }
  }
}

const NO_BLOCKERS: readonly PendingCommit[] = [];

/** The key range a scan covers, [start, end) with null unbounded, as Btree.scan computes it. */
function scanBounds(options: RangeOptions): { start: Buffer | null; end: Buffer | null } {
  let start = options.start ?? null;
  let end = options.end ?? null;
  if (options.prefix !== undefined && options.prefix.length > 0) {
    if (start === null || start.compare(options.prefix) < 0) start = options.prefix;
    const upper = prefixEnd(options.prefix);
    if (upper !== null && (end === null || end.compare(upper) > 0)) end = upper;
  }
  return { start, end };
}

/** Whether pg_replslot/ holds any replication slot (a directory not being created or dropped). */
function replicationSlotsOnDisk(dataDir: string): boolean {
  try {
    return fs.readdirSync(path.join(dataDir, 'pg_replslot')).some((name) => !name.endsWith('.tmp'));
  } catch {
    return false;
  }
}
