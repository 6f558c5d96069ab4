/**
 * Commits that are in the pages but not yet visible to other readers: applied, logged, and
 * waiting for their synchronous standbys (PostgreSQL keeps such a transaction in the procarray
 * until SyncRepWaitForLSN returns, so that no snapshot sees it; see xact.c's
 * RecordTransactionCommit). walship has one version of each entry, so instead of hiding the
 * change a reader that would see it waits until the commit is visible: a read takes its result
 * synchronously, asks `blockersOf*` which pending commits that result depends on, and holds its
 * reply until they are all visible. The result itself stays valid: it is the state at the moment
 * it was read, and each change in it is then confirmed (or, as in PostgreSQL, its wait was
 * cancelled and it is visible anyway).
 *
 * What a result depends on: every entry whose revision is a pending commit's LSN, and, for keys
 * the result does not hold, every pending commit that deleted a key in the read's range (a
 * deleted key leaves no entry to carry a revision).
 *
 * Synchronous: `register` runs inside the apply step, so no reader can see a commit before it is
 * registered. Bounded: one entry per commit in flight, and a session has at most
 * MAX_IN_FLIGHT_REQUESTS of those.
 */
import { assertionFailed } from './errors.js';
import type { Lsn } from './lsn.js';

/** A key (`end` null) or a half-open key range [start, end) a pending commit deleted. */
export interface PendingDelete {
  readonly relNode: number;
  readonly start: Buffer;
  readonly end: Buffer | null;
}

/** A commit waiting to become visible. */
export interface PendingCommit {
  readonly lsn: Lsn;
  readonly deletes: readonly PendingDelete[];
}

class Pending implements PendingCommit {
  /** Readers waiting for this commit, created on the first one. */
  waiters: Array<() => void> | null = null;
  visible = false;

  constructor(readonly lsn: Lsn, readonly deletes: readonly PendingDelete[]) {}
}

export class PendingCommits {
  private readonly byLsn = new Map<number, Pending>();
  /** Pending commits with deletes, so that a read of a missing key checks only those. */
  private readonly withDeletes = new Set<Pending>();

  get size(): number {
    return this.byLsn.size;
  }

  /** A commit was applied and will wait for standbys: readers must not see it yet. */
  register(lsn: Lsn, deletes: readonly PendingDelete[]): PendingCommit {
    if (this.byLsn.has(lsn)) assertionFailed(`commit at ${lsn} is registered once`);
    const pending = new Pending(lsn, deletes);
    this.byLsn.set(lsn, pending);
    if (deletes.length > 0) this.withDeletes.add(pending);
    return pending;
  }

  /** The commit's wait ended (confirmed, cancelled or failed): it is visible from now on. */
  release(commit: PendingCommit): void {
    const pending = commit as Pending;
    if (pending.visible) return;
    pending.visible = true;
    this.byLsn.delete(pending.lsn);
    this.withDeletes.delete(pending);
    const waiters = pending.waiters;
    pending.waiters = null;
    if (waiters !== null) for (const wake of waiters) wake();
  }

  /** Makes everything visible: the database is closing, and its readers are told so. */
  releaseAll(): void {
    for (const pending of [...this.byLsn.values()]) this.release(pending);
  }

  /**
   * What a point read depends on: the commit that wrote `revision` when the key was found,
   * otherwise the pending commits that deleted `key`.
   */
  blockersOfGet(relNode: number | null, key: Buffer, revision: Lsn | null): PendingCommit[] {
    if (this.byLsn.size === 0) return NONE;
    if (revision !== null) {
      const writer = this.byLsn.get(revision);
      return writer === undefined ? NONE : [writer];
    }
    if (relNode === null || this.withDeletes.size === 0) return NONE;
    return this.deletersOf(relNode, key, keyAfter(key));
  }

  /**
   * What a scan of [start, end) (null: unbounded) depends on: the writers of its entries and the
   * pending commits that deleted anything in that range.
   */
  blockersOfScan(relNode: number | null, start: Buffer | null, end: Buffer | null, revisions: Iterable<Lsn>): PendingCommit[] {
    if (this.byLsn.size === 0) return NONE;
    const found = new Set<Pending>();
    for (const revision of revisions) {
      const writer = this.byLsn.get(revision);
      if (writer !== undefined) found.add(writer);
    }
    if (relNode !== null && this.withDeletes.size > 0) for (const deleter of this.deletersOf(relNode, start, end)) found.add(deleter as Pending);
    return found.size === 0 ? NONE : [...found];
  }

  /** Resolves once every one of `commits` is visible. */
  untilVisible(commits: readonly PendingCommit[]): Promise<void> {
    const waiting = commits.filter((commit) => !(commit as Pending).visible) as Pending[];
    if (waiting.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let left = waiting.length;
      const one = (): void => {
        if (--left === 0) resolve();
      };
      for (const pending of waiting) (pending.waiters ??= []).push(one);
    });
  }

  private deletersOf(relNode: number, start: Buffer | null, end: Buffer | null): PendingCommit[] {
    const found: PendingCommit[] = [];
    for (const pending of this.withDeletes) {
      if (pending.deletes.some((d) => d.relNode === relNode && overlaps(d.start, d.end === null ? keyAfter(d.start) : d.end, start, end))) {
        found.push(pending);
      }
    }
    return found;
  }
}

const NONE: PendingCommit[] = [];

/** The smallest key after `key`: [key, keyAfter(key)) holds exactly `key`. */
function keyAfter(key: Buffer): Buffer {
  return Buffer.concat([key, ZERO]);
}

const ZERO = Buffer.from([0]);

/** Whether [aStart, aEnd) and [bStart, bEnd) share a key; a null bound is unbounded. */
function overlaps(aStart: Buffer, aEnd: Buffer, bStart: Buffer | null, bEnd: Buffer | null): boolean {
  if (bEnd !== null && aStart.compare(bEnd) >= 0) return false;
  if (bStart !== null && bStart.compare(aEnd) >= 0) return false;
  return aStart.compare(aEnd) < 0;
}
