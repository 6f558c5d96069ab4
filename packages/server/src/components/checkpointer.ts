/**
 * The checkpointer (checkpointer.c): a checkpoint every checkpoint_timeout, and one whenever
 * enough WAL was written since the last redo point — requested from xlogWrite's completion
 * (the flush listener), as RequestCheckpoint(CHECKPOINT_CAUSE_XLOG) is — plus the ones asked
 * for with `walship checkpoint` (immediate, forced, waited for).
 *
 * Started by the postmaster after recovery; the shutdown checkpoint is the postmaster's, after
 * this loop has stopped. A failed checkpoint is a node crash (an fsync error must never be
 * retried): the postmaster recovers.
 */
import { CheckpointFlags, isCheckpointOnSchedule, type CheckpointResult, type CheckpointWriteDelay } from '@walship/engine';
import { Component } from '../component.js';

/**
 * What the checkpointer checkpoints: a primary's database (CreateCheckPoint), or a standby's
 * recovery (CreateRestartPoint); `walSinceRedo` is the WAL written, or replayed, since the last
 * redo point.
 */
export interface CheckpointTarget {
  /** `writeDelay` paces a spread checkpoint's buffer writes (CheckpointWriteDelay). */
  checkpoint(flags: number, writeDelay?: CheckpointWriteDelay): Promise<CheckpointResult>;
  walSinceRedo(): number;
  /** The WAL position a spread checkpoint measures its WAL clock from: written, or on a standby replayed. */
  walPosition(): number;
  /** A standby's restartpoints: a skipped one (no new checkpoint record) is retried after 15 s. */
  restartPoints?: boolean;
}

/** How long a skipped restartpoint waits before the next timed or WAL-volume try (checkpointer.c). */
const SKIPPED_RETRY_MS = 15_000;

/** A spread checkpoint ahead of its schedule naps this long before looking again (CheckpointWriteDelay's 100 ms). */
const CHECKPOINT_NAP_MS = 100;

export interface CheckpointerSettings {
  checkpointTimeoutMs: number;
  maxWalSizeBytes: number;
  completionTarget: number;
}

interface Request {
  flags: number;
  resolve: (result: CheckpointResult) => void;
  reject: (error: unknown) => void;
}

export class Checkpointer extends Component {
  readonly kind = 'checkpointer' as const;
  private readonly requests: Request[] = [];
  private lastCheckpointAt = performance.now();
  /**
   * After a skipped attempt (a standby with no new checkpoint record to restart from), timed
   * and WAL-volume attempts wait until this time, as PostgreSQL's checkpointer retries a skipped
   * restartpoint only after 15 s: otherwise the WAL-volume test, still true, would spin.
   */
  private backoffUntil = 0;
  /**
   * A primary's WAL-volume checkpoint skipped for want of anything important since the last one
   * (WAL since the redo point can pass the volume with nothing after the checkpoint record): the
   * WAL position then. The volume test waits for WAL past it, instead of retrying in a loop.
   * (PostgreSQL backs off 15 s only after a skipped restartpoint.)
   */
  private skippedAtWal: number | null = null;
  /** A checkpoint is in progress (walAdvanced has nothing to ask for meanwhile). */
  private checkpointing = false;
  /** Checkpoints done, by cause: `checkpoints_timed` and `checkpoints_req` of pg_stat_bgwriter. */
  readonly counts = { timed: 0, requested: 0 };
  /**
   * What the checkpoints done took (pg_stat_checkpointer's write_time + sync_time, in one) and
   * wrote (buffers_written), and how long the last one took: for /metrics.
   */
  readonly totals = { durationMs: 0, buffersWritten: 0, lastDurationMs: null as number | null };

  constructor(private readonly target: CheckpointTarget, public settings: CheckpointerSettings) {
    super();
  }

  /**
   * RequestCheckpoint(CHECKPOINT_CAUSE_XLOG): after WAL was written (or replayed), if enough of it.
   * Not while a checkpoint runs: the redo point it measures from moves only when that one ends,
   * and a spread checkpoint's naps would end at every flush. The loop looks again after it.
   */
  walAdvanced(): void {
    if (!this.checkpointing && performance.now() >= this.backoffUntil && this.walVolumeReached()) this.latch.set();
  }

  private walVolumeReached(): boolean {
    return this.target.walSinceRedo() >= this.walTriggerBytes() && (this.skippedAtWal === null || this.target.walPosition() > this.skippedAtWal);
  }

  /** CheckPointSegments' role: the WAL volume between checkpoints, max_wal_size / (1 + target). */
  private walTriggerBytes(): number {
    return this.settings.maxWalSizeBytes / (1 + this.settings.completionTarget);
  }

  /**
   * CheckpointWriteDelay for one checkpoint: while its writes are ahead of schedule (against time
   * since it started and WAL since it started; isCheckpointOnSchedule), nap, so that its writes
   * are spread over checkpoint_completion_target of the interval instead of landing on the disk
   * at once, where every commit's fdatasync would queue behind them. It stops napping, and
   * finishes at full speed, once an immediate checkpoint is requested or the node stops.
   */
  private writeDelay(): CheckpointWriteDelay {
    const startedAt = performance.now();
    const walAtStart = this.target.walPosition();
    return async (progress) => {
      while (!this.stopping && !this.requests.some((r) => (r.flags & CheckpointFlags.immediate) !== 0) && isCheckpointOnSchedule(progress, {
        completionTarget: this.settings.completionTarget,
        elapsedMs: performance.now() - startedAt,
        timeoutMs: this.settings.checkpointTimeoutMs,
        walSinceStart: this.target.walPosition() - walAtStart,
        walTriggerBytes: this.walTriggerBytes(),
      })) {
        await this.latch.wait(CHECKPOINT_NAP_MS);
      }
      // Behind schedule the batches still let the event loop run between them.
      await new Promise((resolve) => setImmediate(resolve));
    };
  }

  /** RequestCheckpoint: resolves when a checkpoint started after this request has completed. */
  request(flags: number): Promise<CheckpointResult> {
    return new Promise((resolve, reject) => {
      this.requests.push({ flags, resolve, reject });
      this.latch.set();
    });
  }

  protected async main(): Promise<void> {
    while (!this.stopping) {
      const now = performance.now();
      let flags = 0;
      const pending = this.requests.splice(0);
      for (const r of pending) flags |= r.flags | CheckpointFlags.force;
      if (now >= this.backoffUntil) {
        if (now - this.lastCheckpointAt >= this.settings.checkpointTimeoutMs) flags |= CheckpointFlags.causeTime;
        if (this.walVolumeReached()) flags |= CheckpointFlags.causeXlog;
      }
      if (flags !== 0) {
        this.lastCheckpointAt = performance.now();
        let result: CheckpointResult;
        this.checkpointing = true;
        try {
          // Timed and WAL-volume checkpoints are spread; a requested one is immediate.
          result = await this.target.checkpoint(flags, (flags & CheckpointFlags.immediate) === 0 ? this.writeDelay() : undefined);
        } catch (error) {
          for (const r of pending) r.reject(error);
          throw error;
        } finally {
          this.checkpointing = false;
        }
        if (result.skipped && pending.length === 0) {
          if (this.target.restartPoints === true) this.backoffUntil = performance.now() + SKIPPED_RETRY_MS;
          else this.skippedAtWal = this.target.walPosition();
        }
        if (!result.skipped) {
          this.skippedAtWal = null;
          // pg_stat_bgwriter's split: timed ones are those only checkpoint_timeout asked for.
          if (pending.length === 0 && (flags & CheckpointFlags.causeXlog) === 0) this.counts.timed++;
          else this.counts.requested++;
          this.totals.durationMs += result.elapsedMs;
          this.totals.buffersWritten += result.buffersWritten;
          this.totals.lastDurationMs = result.elapsedMs;
        }
        for (const r of pending) r.resolve(result);
        continue;
      }
      const untilTimeout = Math.max(
        this.settings.checkpointTimeoutMs - (performance.now() - this.lastCheckpointAt),
        this.backoffUntil - performance.now(),
      );
      await this.latch.wait(Math.max(10, Math.min(untilTimeout, 60_000)));
    }
    for (const r of this.requests.splice(0)) r.reject(new Error('the checkpointer is shutting down'));
  }
}
