/**
 * Synchronous replication on a primary (syncrep.c): the commits' side (SyncRepWaitForLSN, its
 * cancellation and its messages) and the walsenders' side (SyncRepInitConfig on start and
 * reload, SyncRepReleaseWaiters on replies), around the pure rule and queues of
 * @walship/replication (sync-rep.ts there).
 *
 * One instance per primary instance: the postmaster makes it in becomePrimary and closes it when
 * that instance ends (crash-restart, shutdown), as WalSndCtl's queues and positions live in the
 * shared memory a crash-restart rebuilds. A standby has none: its walsenders are cascading and
 * never synchronous.
 *
 * Who calls what:
 * - a commit, after its local flush: `wait(lsn, level, options)` (Database's syncRepWait); it
 *   resolves once the synchronous standbys confirmed the LSN at the level's mode, or rejects with
 *   an `indeterminate` error carrying the LSN when the wait is cancelled (the session's timeout,
 *   its end, this instance's end). The commit stays durable locally either way.
 * - the walsender registry: `release()` after every standby reply, walsender start, state change
 *   and exit; `priorityOf(applicationName)` for each walsender when it starts and on reload.
 * - the postmaster: `configure(synchronous_standby_names)` at start and on every reload, which
 *   recomputes every priority and releases whoever the new rule covers (clearing the setting
 *   releases everyone); `stats()` for `syncWaiters` in status; `released()` for `syncRep` and
 *   `syncReleasedLsn` in status (what the failover decision's rule 2 compares candidates with).
 *
 * While commits wait longer than SYNC_REP_STALL_LOG_AFTER_MS the log says so, every
 * SYNC_REP_STALL_LOG_INTERVAL_MS, with how many standbys are streaming and what would end it.
 */
import { ErrorCode, WalshipError, formatLsn, type CommitWaitOptions, type LogFunction, type Lsn, type SyncCommitLevel } from '@walship/engine';
import {
  SyncRepQueues, formatSyncRepConfig, parseSynchronousStandbyNames, standbyPriority, syncRepGetCandidateStandbys, syncRepReleaseWaiters,
  type SyncRepConfig, type SyncRepStandby, type SyncRepWaitStats,
} from '@walship/replication';
import type { WalSenders } from './walsenders.js';

/** A wait older than this is a stall worth a log line: far above a healthy standby's round trip. */
export const SYNC_REP_STALL_LOG_AFTER_MS = 1_000;

/** How often a stall that goes on is logged again: often enough to be seen, rarely enough not to flood. */
export const SYNC_REP_STALL_LOG_INTERVAL_MS = 10_000;

/** How often the stall check runs while synchronous replication is on. */
const SYNC_REP_STALL_CHECK_MS = 500;

/** PostgreSQL's errdetail for a commit whose wait for synchronous replication was cancelled. */
const CANCELLED_DETAIL = (lsn: Lsn) =>
  `The transaction has already committed locally at ${formatLsn(lsn)}, but might not have been replicated to the standby.`;

const CANCELLED_HINT =
  'The write is durable on this node and visible here, but a failover to a standby could lose it. Check with walship wait-lsn on the standbys, or read it back after a failover.';

/** Why a session ended a commit's wait: `shutdown` when the server closed it, otherwise the client went away. */
export type SyncRepAbortReason = 'shutdown' | 'client';

/** One walsender as synchronous replication sees it, with the fields the registry keeps for it. */
export interface SyncRepWalSender extends SyncRepStandby {
  /** Whether "is now a synchronous standby" was logged since it last stopped being one. */
  announced: boolean;
}

export interface SyncRepHost {
  log: LogFunction;
  /** The walsenders in WalSnd slot order (lowest free slot first), with their priorities. */
  walSenders(): readonly SyncRepWalSender[];
  /** Sets each walsender's priority (SyncRepInitConfig in every walsender). */
  setPriorities(priorityOf: (applicationName: string) => number): void;
}

export class SyncRep {
  private config: SyncRepConfig | null = null;
  private text: string | null = null;
  private readonly queues = new SyncRepQueues({ now: () => performance.now(), syncStandbysDefined: false });
  private stallTimer: NodeJS.Timeout | null = null;
  /** performance.now() of the last stall log line; null while no stall is being reported. */
  private stallLoggedAtMs: number | null = null;
  private closed = false;

  constructor(private readonly host: SyncRepHost) {}

  /** A primary instance's synchronous replication over its walsender registry, configured and attached. */
  static start(walSenders: WalSenders, log: LogFunction, synchronousStandbyNames: string): SyncRep {
    const syncRep = new SyncRep({
      log,
      walSenders: () => walSenders.syncRepWalSenders(),
      setPriorities: (priorityOf) => walSenders.setSyncPriorities(priorityOf),
    });
    syncRep.configure(synchronousStandbyNames);
    walSenders.attachSyncRep(syncRep);
    return syncRep;
  }

  /** The rule in force (null: asynchronous). */
  get rule(): SyncRepConfig | null {
    return this.config;
  }

  /**
   * synchronous_standby_names at start and after each reload (assign_synchronous_standby_names,
   * SyncRepUpdateSyncStandbysDefined and every walsender's SyncRepInitConfig at once). The value
   * was checked when the settings were read; a value that still fails to parse keeps the rule in
   * force, as a rejected reload does in PostgreSQL.
   */
  configure(text: string): void {
    if (this.closed || text === this.text) return;
    let config: SyncRepConfig | null;
    try {
      config = parseSynchronousStandbyNames(text);
    } catch (error) {
      this.host.log('LOG', `invalid value for parameter "synchronous_standby_names": "${text}"; keeping "${this.text ?? ''}"`);
      if (error instanceof WalshipError && error.detail !== undefined) this.host.log('DETAIL', error.detail);
      return;
    }
    const first = this.text === null;
    this.text = text;
    this.config = config;
    this.host.setPriorities((name) => standbyPriority(config, name));
    const woken = this.queues.setSyncStandbysDefined(config !== null);
    if (!first) {
      this.host.log('LOG', config === null
        ? 'synchronous replication is off: synchronous_standby_names is empty'
        : `synchronous standbys are now ${formatSyncRepConfig(config)}`);
    }
    if (woken.length > 0) this.host.log('LOG', `released ${woken.length} commit${woken.length === 1 ? '' : 's'} waiting for synchronous replication`);
    this.release();
    this.updateStallTimer();
  }

  /** A walsender's priority under the rule in force (SyncRepGetStandbyPriority). */
  priorityOf(applicationName: string): number {
    return standbyPriority(this.config, applicationName);
  }

  /**
   * SyncRepReleaseWaiters: recomputes what the synchronous standbys confirmed and wakes the
   * commits it covers; logs a walsender that has become synchronous, as PostgreSQL does once per
   * takeover.
   */
  release(): void {
    if (this.closed) return;
    const walSenders = this.host.walSenders();
    const result = syncRepReleaseWaiters(this.queues, this.config, walSenders);
    this.announce(walSenders, result.syncStandbys);
    if (this.stallLoggedAtMs !== null && this.queues.stats().count === 0) this.stallEnded();
  }

  /**
   * SyncRepWaitForLSN, after the commit's local flush. Resolves when no wait is needed or the
   * standbys confirmed `lsn`; rejects with an `indeterminate` error carrying `lsn` when the wait
   * is cancelled: the deadline passed, the session ended, or this instance closed.
   */
  async wait(lsn: Lsn, level: SyncCommitLevel, options: CommitWaitOptions = {}): Promise<void> {
    const waiter = this.closed ? null : this.queues.syncRepWaitForLsn(level, lsn);
    if (waiter === null || waiter.state !== 'waiting') return;
    let why: 'timeout' | SyncRepAbortReason | 'closed' = 'closed';
    const cancel = (reason: typeof why): void => {
      if (this.queues.cancel(waiter)) why = reason;
    };
    const { signal, deadlineMs } = options;
    const timer = deadlineMs === undefined ? undefined : setTimeout(() => cancel('timeout'), Math.max(0, deadlineMs - Date.now()));
    const onAbort = (): void => cancel(signal?.reason === 'shutdown' ? 'shutdown' : 'client');
    if (signal?.aborted === true) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    const outcome = await waiter.done;
    clearTimeout(timer);
    signal?.removeEventListener('abort', onAbort);
    if (outcome === 'released') return;
    throw this.cancelled(lsn, why);
  }

  /** `syncWaiters` of the status view: how many commits wait, and for how long the oldest has. */
  stats(): { count: number; oldestMs: number; byMode: SyncRepWaitStats['byMode'] } {
    const stats = this.queues.stats();
    return { count: stats.count, oldestMs: Math.round(stats.oldestMs ?? 0), byMode: stats.byMode };
  }

  /**
   * The positions the synchronous standbys have confirmed so far, per wait mode (WalSndCtl->lsn[]):
   * every commit acknowledged at that mode is at or below it, so a standby behind the flush
   * position may miss acknowledged commits (the failover rule 2). Monotonic within the instance;
   * 0/0 before any confirmation. `standbyNames` is the rule in force ('' when asynchronous).
   */
  released(): { standbyNames: string; releasedWriteLsn: string; releasedFlushLsn: string; releasedApplyLsn: string } {
    const positions = this.queues.confirmedPositions;
    return {
      standbyNames: this.config === null ? '' : formatSyncRepConfig(this.config),
      releasedWriteLsn: formatLsn(positions.write),
      releasedFlushLsn: formatLsn(positions.flush),
      releasedApplyLsn: formatLsn(positions.apply),
    };
  }

  /** The highest of the released flush and apply positions: what commits at `on` and `remote_apply` were released at. */
  releasedCommitLsn(): Lsn {
    const positions = this.queues.confirmedPositions;
    return Math.max(positions.flush, positions.apply) as Lsn;
  }

  /** The instance ends: every waiting commit's wait is cancelled (its session is told). */
  close(): void {
    if (this.closed) return;
    for (const mode of ['write', 'flush', 'apply'] as const) for (const waiter of this.queues.waiting(mode)) this.queues.cancel(waiter);
    this.closed = true;
    this.updateStallTimer();
  }

  private cancelled(lsn: Lsn, why: 'timeout' | SyncRepAbortReason | 'closed'): WalshipError {
    // PostgreSQL ends the wait on a query cancel (statement_timeout included) with the first
    // message, and on a terminate (ProcDiePending) with the second; both as a WARNING.
    const message = why === 'timeout'
      ? 'canceling wait for synchronous replication due to user request'
      : why === 'client'
        ? 'canceling wait for synchronous replication because the client disconnected'
        : 'canceling the wait for synchronous replication and terminating connection due to administrator command';
    this.host.log('WARNING', message);
    this.host.log('DETAIL', CANCELLED_DETAIL(lsn));
    return new WalshipError(ErrorCode.indeterminate, message, { detail: CANCELLED_DETAIL(lsn), hint: CANCELLED_HINT, lsn });
  }

  private announce(walSenders: readonly SyncRepWalSender[], syncStandbys: readonly number[]): void {
    const config = this.config;
    const counting = new Set(syncStandbys);
    walSenders.forEach((walSender, index) => {
      if (!counting.has(index) || config === null) {
        walSender.announced = false;
        return;
      }
      if (walSender.announced) return;
      walSender.announced = true;
      this.host.log('LOG', config.method === 'priority'
        ? `standby "${walSender.applicationName}" is now a synchronous standby with priority ${walSender.priority}`
        : `standby "${walSender.applicationName}" is now a candidate for quorum synchronous standby`);
    });
  }

  private updateStallTimer(): void {
    const wanted = !this.closed && this.config !== null;
    if (wanted && this.stallTimer === null) {
      this.stallTimer = setInterval(() => this.checkStall(), SYNC_REP_STALL_CHECK_MS);
      this.stallTimer.unref();
    } else if (!wanted && this.stallTimer !== null) {
      clearInterval(this.stallTimer);
      this.stallTimer = null;
      if (this.stallLoggedAtMs !== null) this.stallEnded();
    }
  }

  private checkStall(): void {
    const stats = this.queues.stats();
    if (stats.count === 0) {
      if (this.stallLoggedAtMs !== null) this.stallEnded();
      return;
    }
    const now = performance.now();
    if ((stats.oldestMs ?? 0) < SYNC_REP_STALL_LOG_AFTER_MS) return;
    if (this.stallLoggedAtMs !== null && now - this.stallLoggedAtMs < SYNC_REP_STALL_LOG_INTERVAL_MS) return;
    this.stallLoggedAtMs = now;
    const config = this.config;
    const walSenders = this.host.walSenders();
    const candidates = syncRepGetCandidateStandbys(config, walSenders).length;
    const listed = walSenders.filter((walSender) => walSender.priority > 0).length;
    this.host.log('WARNING', `${stats.count} commit${stats.count === 1 ? ' is' : 's are'} waiting for synchronous replication, the oldest for ${((stats.oldestMs ?? 0) / 1000).toFixed(1)} s`);
    if (config !== null) {
      this.host.log('DETAIL', `synchronous_standby_names is "${formatSyncRepConfig(config)}": ${config.numSync} must confirm; ${listed} listed standby${listed === 1 ? ' is' : 's are'} connected, ${candidates} streaming.`);
    }
    this.host.log('HINT', 'Start or reconnect a listed standby, or change synchronous_standby_names (an empty value turns synchronous replication off and releases the waiting commits).');
  }

  private stallEnded(): void {
    this.stallLoggedAtMs = null;
    this.host.log('LOG', 'no commits are waiting for synchronous replication any more');
  }
}
