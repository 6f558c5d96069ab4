/**
 * Synchronous replication on the primary: which standbys are synchronous, how far they have all
 * confirmed, and the queues of commits waiting for that (PostgreSQL's syncrep.c, and the
 * sync_priority / sync_state columns of pg_stat_replication from walsender.c).
 *
 * The rule. Each walsender has a priority (standbyPriority): the 1-based position of its
 * standby's application_name in synchronous_standby_names, 1 for every listed standby under ANY,
 * 0 when it is not listed (asynchronous) or is a cascading walsender. A candidate is a walsender
 * with a priority, in state streaming or stopping, that has reported a flush position. With
 * FIRST n, the n candidates with the lowest priority numbers are synchronous (ties go to the
 * earlier walsender) and the confirmed position of each level is the lowest among them; with
 * ANY n, every candidate counts and the confirmed position is the n-th highest. With fewer than
 * n candidates nothing is confirmed, and commits wait — without a timeout, as in PostgreSQL —
 * until enough standbys stream again, the setting changes, or the caller cancels the wait.
 *
 * The queues. A commit that must wait joins the queue of its level (write, flush or apply),
 * kept sorted by LSN. release() raises a level's confirmed position — never lowers it — and wakes
 * the waiters from the head up to it, in LSN order; releaseAll() wakes everyone (the setting was
 * cleared). A queue holds at most one waiter per session, so its length is bounded by
 * max_connections, as PostgreSQL's queues are by its PGPROCs.
 *
 * What the caller (the primary's postmaster) does with it: parse synchronous_standby_names
 * (sync-rep-config.ts); give each walsender its standbyPriority when it starts and after each
 * reload (SyncRepInitConfig); call setSyncStandbysDefined on every reload; and after every standby
 * reply, walsender start or exit, and reload, call syncRepReleaseWaiters with the walsenders in
 * slot order. A commit calls syncRepWaitForLsn after its local flush and awaits the waiter's
 * `done`. PostgreSQL recomputes only when a synchronous standby replies; walship may recompute on
 * any of those events, which gives the same positions, sometimes sooner, never later.
 *
 * Pure: no I/O, no timers. The queues take an injected clock for the age of their waiters.
 */
import { assert, assertionFailed } from '@walship/engine/errors';
import { INVALID_LSN, type Lsn } from '@walship/engine/lsn';
import type { SyncCommitLevel } from '@walship/engine/types';
import { asciiLower, type SyncRepConfig } from './sync-rep-config.js';
import type { WalSenderState } from './walsender.js';

/** The three things a standby confirms (SYNC_REP_WAIT_WRITE / _FLUSH / _APPLY), in that order. */
export type SyncRepWaitMode = 'write' | 'flush' | 'apply';

export const SYNC_REP_WAIT_MODES: readonly SyncRepWaitMode[] = Object.freeze(['write', 'flush', 'apply']);

/** A position per level: what a standby reported, or what the synchronous standbys confirmed. */
export interface SyncRepPositions {
  readonly write: Lsn;
  readonly flush: Lsn;
  readonly apply: Lsn;
}

/**
 * One walsender as the release rule sees it (a WalSnd slot). Callers pass walsenders in slot
 * order: PostgreSQL breaks priority ties by slot index, and a new walsender takes the lowest free
 * slot, so after a disconnect a newcomer can sort before an older walsender.
 */
export interface SyncRepStandby {
  /** For logs; the priority already says whether and where it is listed. */
  readonly applicationName: string;
  readonly state: WalSenderState;
  readonly write: Lsn;
  readonly flush: Lsn;
  readonly apply: Lsn;
  /** sync_standby_priority, from standbyPriority at the walsender's start or last reload. */
  readonly priority: number;
}

/** pg_stat_replication.sync_state. */
export type SyncState = 'async' | 'potential' | 'sync' | 'quorum';

// ---------------------------------------------------------------------------------------------
// Priorities and the release rule
// ---------------------------------------------------------------------------------------------

/**
 * The priority of a standby with this application_name (SyncRepGetStandbyPriority): its 1-based
 * position in the list (the first match, `*` matching any name), 1 for every listed one under
 * ANY, 0 when unlisted, when synchronous replication is off (config null), or for a cascading
 * walsender, since synchronous replication does not cascade. Names compare as pg_strcasecmp
 * does: ASCII letters without regard to case, anything else exactly.
 */
export function standbyPriority(
  config: SyncRepConfig | null,
  applicationName: string,
  { cascading = false }: { cascading?: boolean } = {},
): number {
  if (cascading || config === null) return 0;
  const wanted = asciiLower(applicationName);
  const position = config.memberNames.findIndex((name) => name === '*' || asciiLower(name) === wanted);
  if (position < 0) return 0;
  return config.method === 'priority' ? position + 1 : 1;
}

/** SyncRepGetCandidateStandbys' filter: may this walsender count towards the quorum? */
function isCandidate(standby: SyncRepStandby): boolean {
  return standby.priority > 0
    && (standby.state === 'streaming' || standby.state === 'stopping')
    && standby.flush !== INVALID_LSN;
}

/**
 * The walsenders that are synchronous now, as indexes into `standbys`
 * (SyncRepGetCandidateStandbys). Under ANY: every candidate, in slot order. Under FIRST: when
 * there are more candidates than numSync, the numSync of lowest priority number, ties by slot;
 * otherwise all of them, in slot order. May hold fewer than numSync; the caller checks.
 */
export function syncRepGetCandidateStandbys(config: SyncRepConfig | null, standbys: readonly SyncRepStandby[]): number[] {
  if (config === null) return [];
  const candidates: number[] = [];
  standbys.forEach((standby, index) => {
    if (isCandidate(standby)) candidates.push(index);
  });
  if (config.method === 'quorum' || candidates.length <= config.numSync) return candidates;
  candidates.sort((a, b) => standbys[a]!.priority - standbys[b]!.priority || a - b);
  return candidates.slice(0, config.numSync);
}

/**
 * The positions the synchronous standbys have all confirmed (SyncRepGetSyncRecPtr), or null when
 * synchronous replication is off or fewer than numSync standbys are candidates. FIRST: per level,
 * the lowest position among the synchronous standbys. ANY: per level, the numSync-th highest
 * among all candidates — the highest position that at least numSync of them have reached.
 */
export function syncRepGetSyncRecPtr(config: SyncRepConfig | null, standbys: readonly SyncRepStandby[]): SyncRepPositions | null {
  return syncedPositions(config, standbys, syncRepGetCandidateStandbys(config, standbys));
}

/** syncRepGetSyncRecPtr once the candidates are known. */
function syncedPositions(
  config: SyncRepConfig | null,
  standbys: readonly SyncRepStandby[],
  candidates: readonly number[],
): SyncRepPositions | null {
  if (config === null) return null;
  assert(config.numSync >= 1, `num_sync ${config.numSync} is at least 1`);
  const sync = candidates.map((index) => standbys[index]!);
  if (sync.length < config.numSync) return null;
  const pick = config.method === 'priority' ? oldest : (values: number[]) => nthLatest(values, config.numSync);
  return {
    write: pick(sync.map((standby) => standby.write)) as Lsn,
    flush: pick(sync.map((standby) => standby.flush)) as Lsn,
    apply: pick(sync.map((standby) => standby.apply)) as Lsn,
  };
}

/**
 * SyncRepGetOldestSyncRecPtr, as a true minimum. PostgreSQL's loop treats a 0 (invalid) write or
 * apply position as "nothing yet" and lets the next standby's value replace it, so a synchronous
 * standby that reported no apply position could be skipped; here it holds the level back.
 */
function oldest(values: number[]): number {
  return Math.min(...values);
}

/** SyncRepGetNthLatestSyncRecPtr: the n-th highest value (n is 1-based). */
function nthLatest(values: number[], n: number): number {
  assert(n >= 1 && n <= values.length, `the ${n}th latest of ${values.length} positions`);
  return values.sort((a, b) => b - a)[n - 1]!;
}

/**
 * pg_stat_replication.sync_state for each walsender, aligned with `standbys`: `async` without a
 * priority; `sync` (FIRST) or `quorum` (ANY) for a walsender that counts now; `potential` for a
 * listed one that does not — a lower-priority standby under FIRST, or one not streaming yet or
 * without a flush position. PostgreSQL marks every counting standby `quorum` under ANY, because
 * which of them are "the" n changes with every reply.
 */
export function syncStateOf(config: SyncRepConfig | null, standbys: readonly SyncRepStandby[]): SyncState[] {
  const counting = new Set(syncRepGetCandidateStandbys(config, standbys));
  return standbys.map((standby, index): SyncState => {
    if (standby.priority === 0) return 'async';
    if (!counting.has(index)) return 'potential';
    return config?.method === 'quorum' ? 'quorum' : 'sync';
  });
}

/**
 * The queue a commit waits in for its synchronous_commit level (assign_synchronous_commit), or
 * null when the level does not wait for standbys (`off`, `local`). A record that is not a commit
 * waits at most for flush (SyncRepWaitForLSN's `commit` argument): only replaying a commit record
 * makes a standby report its apply position at once.
 */
export function syncRepWaitMode(level: SyncCommitLevel, commit = true): SyncRepWaitMode | null {
  switch (level) {
    case 'off':
    case 'local':
      return null;
    case 'remote_write':
      return 'write';
    case 'on':
      return 'flush';
    case 'remote_apply':
      return commit ? 'apply' : 'flush';
  }
}

// ---------------------------------------------------------------------------------------------
// Wait queues
// ---------------------------------------------------------------------------------------------

/** A waiter's state (SYNC_REP_WAITING, SYNC_REP_WAIT_COMPLETE, or a cancelled wait). */
export type SyncRepWaitState = 'waiting' | 'released' | 'cancelled';

export type SyncRepWaitOutcome = Exclude<SyncRepWaitState, 'waiting'>;

/** One commit waiting for its LSN to be confirmed. */
export interface SyncRepWaiter {
  readonly mode: SyncRepWaitMode;
  readonly lsn: Lsn;
  readonly enqueuedAtMs: number;
  /** Changes synchronously, inside release(), releaseAll() or cancel(). */
  readonly state: SyncRepWaitState;
  /** Settles once the wait ends, to `released` or `cancelled`; never rejects. */
  readonly done: Promise<SyncRepWaitOutcome>;
}

/** What `syncWaiters` in status shows. */
export interface SyncRepWaitStats {
  count: number;
  /** How long the longest-waiting commit has waited; null when none waits. */
  oldestMs: number | null;
  byMode: Record<SyncRepWaitMode, number>;
}

export interface SyncRepQueuesOptions {
  /** The clock for waiters' ages, in milliseconds. */
  now: () => number;
  /** Whether synchronous_standby_names is set at start (see setSyncStandbysDefined). */
  syncStandbysDefined: boolean;
}

class Waiter implements SyncRepWaiter {
  state: SyncRepWaitState = 'waiting';
  readonly done: Promise<SyncRepWaitOutcome>;
  private settle!: (outcome: SyncRepWaitOutcome) => void;

  constructor(
    readonly owner: SyncRepQueues,
    readonly mode: SyncRepWaitMode,
    readonly lsn: Lsn,
    readonly enqueuedAtMs: number,
  ) {
    this.done = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  finish(outcome: SyncRepWaitOutcome): void {
    if (this.state !== 'waiting') assertionFailed(`a ${this.state} sync rep waiter ends only once`);
    this.state = outcome;
    this.settle(outcome);
  }
}

/**
 * The primary's wait queues and confirmed positions (WalSndCtl's SyncRepQueue[], lsn[] and
 * sync_standbys_defined). One per primary; the postmaster owns it, commits enqueue, and
 * whoever processes standby replies releases.
 */
export class SyncRepQueues {
  private readonly queues: Record<SyncRepWaitMode, Waiter[]> = { write: [], flush: [], apply: [] };
  private readonly confirmed: Record<SyncRepWaitMode, Lsn> = { write: INVALID_LSN, flush: INVALID_LSN, apply: INVALID_LSN };
  private defined: boolean;
  private readonly now: () => number;

  constructor(options: SyncRepQueuesOptions) {
    this.now = options.now;
    this.defined = options.syncStandbysDefined;
  }

  /** Whether commits wait at all: synchronous_standby_names is not empty. */
  get syncStandbysDefined(): boolean {
    return this.defined;
  }

  /** What the synchronous standbys have confirmed so far, per level (WalSndCtl->lsn[]). */
  get confirmedPositions(): SyncRepPositions {
    return { ...this.confirmed };
  }

  /**
   * Records whether synchronous_standby_names is set (SyncRepUpdateSyncStandbysDefined); call on
   * start and every reload. Clearing it wakes every waiter — the user no longer wants them to
   * wait — and from then on enqueue() does not wait, so a commit that read the old setting
   * cannot go to sleep after the wake-up and never be woken. Returns the waiters woken.
   */
  setSyncStandbysDefined(defined: boolean): SyncRepWaiter[] {
    const released = !defined && this.defined ? this.releaseAll() : [];
    this.defined = defined;
    return released;
  }

  /**
   * Waits for a commit at `lsn` as its synchronous_commit level asks (SyncRepWaitForLSN). Null
   * when the level does not wait for standbys; otherwise enqueue()'s waiter.
   */
  syncRepWaitForLsn(level: SyncCommitLevel, lsn: Lsn, commit = true): SyncRepWaiter | null {
    const mode = syncRepWaitMode(level, commit);
    return mode === null ? null : this.enqueue(mode, lsn);
  }

  /**
   * Queues a wait for `lsn` at `mode`, in LSN order (SyncRepQueueInsert, searching from the tail
   * where a new commit usually belongs). The waiter comes back already released when no wait is
   * needed: synchronous replication is off, or the position is confirmed already — a waiter
   * queued behind the confirmed position would sleep until the next advance, perhaps forever.
   */
  enqueue(mode: SyncRepWaitMode, lsn: Lsn): SyncRepWaiter {
    if (!Number.isSafeInteger(lsn) || lsn < 0) assertionFailed(`sync rep wait for LSN ${lsn}`);
    const waiter = new Waiter(this, mode, lsn, this.now());
    if (!this.defined || lsn <= this.confirmed[mode]) {
      waiter.finish('released');
      return waiter;
    }
    const queue = this.queues[mode];
    let at = queue.length;
    while (at > 0 && queue[at - 1]!.lsn > lsn) at--;
    queue.splice(at, 0, waiter);
    return waiter;
  }

  /**
   * Raises the confirmed position of each level to `positions` where that is higher, and wakes
   * the waiters at or below it, in LSN order (the release half of SyncRepReleaseWaiters, with
   * SyncRepWakeQueue). A lower position — a slower standby became synchronous — changes nothing:
   * what was confirmed stays confirmed. Returns the waiters woken, in order: write, flush, apply.
   */
  release(positions: SyncRepPositions): SyncRepWaiter[] {
    const released: SyncRepWaiter[] = [];
    for (const mode of SYNC_REP_WAIT_MODES) {
      const lsn = positions[mode];
      if (!Number.isSafeInteger(lsn) || lsn < 0) assertionFailed(`confirmed ${mode} LSN ${lsn}`);
      if (lsn <= this.confirmed[mode]) continue;
      this.confirmed[mode] = lsn;
      this.wakeQueue(mode, false, released);
    }
    return released;
  }

  /** Wakes every waiter of every level (SyncRepWakeQueue with all = true). */
  releaseAll(): SyncRepWaiter[] {
    const released: SyncRepWaiter[] = [];
    for (const mode of SYNC_REP_WAIT_MODES) this.wakeQueue(mode, true, released);
    return released;
  }

  /**
   * Ends a wait without confirmation (SyncRepCancelWait): the client gave up or the session is
   * going away. The commit is durable locally but not known to be on the standbys, so the caller
   * must not report it as acknowledged. False when the waiter was no longer waiting.
   */
  cancel(waiter: SyncRepWaiter): boolean {
    assert(waiter instanceof Waiter && waiter.owner === this, 'a sync rep waiter is cancelled on its own queues');
    if (waiter.state !== 'waiting') return false;
    const queue = this.queues[waiter.mode];
    const at = queue.indexOf(waiter);
    assert(at >= 0, 'a waiting sync rep waiter is in its queue');
    queue.splice(at, 1);
    waiter.finish('cancelled');
    return true;
  }

  /** The waiters of one level, head first: for status detail and tests. */
  waiting(mode: SyncRepWaitMode): readonly SyncRepWaiter[] {
    return [...this.queues[mode]];
  }

  /** How many commits wait and for how long the oldest has: `syncWaiters` in status. */
  stats(): SyncRepWaitStats {
    const byMode = { write: 0, flush: 0, apply: 0 };
    let oldestAtMs = Infinity;
    for (const mode of SYNC_REP_WAIT_MODES) {
      byMode[mode] = this.queues[mode].length;
      // Waiters are sorted by LSN, not by age: a commit can reach the queue after a later one.
      for (const waiter of this.queues[mode]) oldestAtMs = Math.min(oldestAtMs, waiter.enqueuedAtMs);
    }
    const count = byMode.write + byMode.flush + byMode.apply;
    return { count, oldestMs: count === 0 ? null : Math.max(0, this.now() - oldestAtMs), byMode };
  }

  private wakeQueue(mode: SyncRepWaitMode, all: boolean, released: SyncRepWaiter[]): void {
    const queue = this.queues[mode];
    let count = 0;
    while (count < queue.length && (all || queue[count]!.lsn <= this.confirmed[mode])) count++;
    for (const waiter of queue.splice(0, count)) {
      waiter.finish('released');
      released.push(waiter);
    }
  }
}

/** What one round of syncRepReleaseWaiters found and did. */
export interface SyncRepRelease {
  /** The positions the synchronous standbys confirmed now, or null when there are too few. */
  positions: SyncRepPositions | null;
  /** Indexes into the standbys that counted (see syncRepGetCandidateStandbys). */
  syncStandbys: number[];
  released: SyncRepWaiter[];
}

/**
 * Recomputes the confirmed positions from the walsenders and wakes whoever they cover
 * (SyncRepReleaseWaiters). Call after every standby reply, walsender start or exit, and reload.
 */
export function syncRepReleaseWaiters(
  queues: SyncRepQueues,
  config: SyncRepConfig | null,
  standbys: readonly SyncRepStandby[],
): SyncRepRelease {
  const syncStandbys = syncRepGetCandidateStandbys(config, standbys);
  const positions = syncedPositions(config, standbys, syncStandbys);
  return { positions, syncStandbys, released: positions === null ? [] : queues.release(positions) };
}
