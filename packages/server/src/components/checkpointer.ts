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
import { CheckpointFlags, type CheckpointResult } from '@walship/engine';
import { Component } from '../component.js';

/**
 * What the checkpointer checkpoints: a primary's database (CreateCheckPoint), or a standby's
 * recovery (CreateRestartPoint); `walSinceRedo` is the WAL written, or replayed, since the last
 * redo point.
 */
export interface CheckpointTarget {
  checkpoint(flags: number): Promise<CheckpointResult>;
  walSinceRedo(): number;
}

/** How long a skipped restartpoint waits before the next timed or WAL-volume try (checkpointer.c). */
const SKIPPED_RETRY_MS = 15_000;

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

  /** RequestCheckpoint(CHECKPOINT_CAUSE_XLOG): after WAL was written (or replayed), if enough of it. */
  walAdvanced(): void {
    if (performance.now() >= this.backoffUntil && this.target.walSinceRedo() >= this.walTriggerBytes()) this.latch.set();
  }

  /** CheckPointSegments' role: the WAL volume between checkpoints, max_wal_size / (1 + target). */
  private walTriggerBytes(): number {
    return this.settings.maxWalSizeBytes / (1 + this.settings.completionTarget);
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
        if (this.target.walSinceRedo() >= this.walTriggerBytes()) flags |= CheckpointFlags.causeXlog;
      }
      if (flags !== 0) {
        this.lastCheckpointAt = performance.now();
        let result: CheckpointResult;
        try {
          result = await this.target.checkpoint(flags);
        } catch (error) {
          for (const r of pending) r.reject(error);
          throw error;
        }
        // pg_stat_bgwriter's split: timed ones are those only checkpoint_timeout asked for.
        if (result.skipped && pending.length === 0) this.backoffUntil = performance.now() + SKIPPED_RETRY_MS;
        if (!result.skipped) {
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
