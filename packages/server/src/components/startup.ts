/**
 * The startup component on a standby (startup.c + xlogrecovery.c's PerformWalRecovery loop):
 * replays WAL continuously. It applies what is there; when it runs out it feeds the WAL-source
 * state machine (WaitForWALToBecomeAvailable) and performs what the machine asks: restore a
 * segment with restore_command, look in pg_wal/, or ask for streaming — requestXLogStreaming,
 * which sends the postmaster PMSIGNAL_START_WALRECEIVER — and then wait on its recovery latch
 * until the walreceiver has flushed past what replay needs (WakeupRecovery).
 *
 * Started by the postmaster when `standby.signal` is present; ends with promotion (the machine
 * says endOfWal because promotion was requested), at shutdown, or by crashing, which the
 * postmaster handles like any component crash.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { formatLsn, type Lsn, type LogFunction } from '@walship/engine';
import type { WalRecovery } from '@walship/engine/wal-recovery';
import { keepFileRestoredFromArchive, type ArchiveMode } from '@walship/engine/wal/archive-status';
import { findNewestTimeLine, readTimeLineHistory } from '@walship/engine/wal/timeline';
import { walDir } from '@walship/engine/wal/wal-files';
import { decodeCommit, decodeHeartbeat, XACT_FLAG_REMOTE_APPLY } from '@walship/engine/wal/record-data';
import { RmgrId } from '@walship/engine/wal/xlog-record';
import { xlogFileName } from '@walship/engine/wal/xlog-internal';
import {
  SHELL_COMMAND_TIMEOUT_MS, initialWalSourceState, restoreCommandOutcome, runShellCommand, stepWalSource, substituteCommand,
  type WalRcvData, type WalSourceAction, type WalSourceEvent, type WalSourceState,
} from '@walship/replication';
import { Component } from '../component.js';

/** Replay runs this long before yielding to the event loop, so reads and replies keep flowing. */
const REPLAY_SLICE_MS = 5;

export interface StartupSettings {
  restoreCommand: string;
  primaryConninfo: string;
  primarySlotName: string;
  walRetrieveRetryIntervalMs: number;
  targetTimelineLatest: boolean;
  recoveryMinApplyDelayMs: number;
  /** archive_mode (restart only): restored files are `.done`, or `.ready` with `always`. */
  archiveMode: ArchiveMode;
}

/** What the startup component needs from the postmaster. */
export interface StartupHost {
  log: LogFunction;
  settings(): StartupSettings;
  walRcv: WalRcvData;
  /** RequestXLogStreaming: records where to stream from and signals the postmaster. */
  requestXLogStreaming(startLsn: Lsn, timeline: number, slotName: string | null, conninfo: string): void;
  shutdownWalReceiver(): Promise<void>;
  forceWalReceiverReply(): void;
  /** PMSIGNAL_BEGIN_HOT_STANDBY: replay reached a consistent state. */
  beginHotStandby(): void;
  /** After every replay step that moved the replay position. */
  replayAdvanced(): void;
  /** PgArchWakeup: a restored file was marked `.ready` (archive_mode = always). */
  wakeArchiver(): void;
  /** Ends recovery with promotion (the postmaster becomes a primary). */
  promote(recovery: WalRecovery): Promise<void>;
}

export class Startup extends Component {
  readonly kind = 'startup' as const;
  private promoteRequested = false;
  private announcedConsistent = false;
  private lastInvalidLsn = -1;
  private machine: WalSourceState;
  /** A replayed commit asked for remote_apply: the walreceiver must report the new apply position now. */
  private applyFeedbackPending = false;
  /**
   * Whether the last commit replayed asked for remote_apply. Its session's next commits likely
   * will too (synchronous_commit is a session's setting), and their waits end only with the
   * apply position, which recovery reports as soon as it has replayed them: the walreceiver then
   * holds its flush reply for that one (WalReceiverOptions.applyFeedbackExpected).
   */
  lastCommitAskedRemoteApply = false;

  constructor(readonly recovery: WalRecovery, private readonly host: StartupHost) {
    super();
    const s = host.settings();
    this.machine = initialWalSourceState({
      walSegmentSize: recovery.segmentSize,
      standbyMode: recovery.standbyMode,
      inArchiveRecovery: true,
      restoreCommandSet: s.restoreCommand !== '',
      primaryConninfo: s.primaryConninfo,
      primarySlotName: s.primarySlotName === '' ? null : s.primarySlotName,
      walRetrieveRetryIntervalMs: s.walRetrieveRetryIntervalMs,
      targetTimelineLatest: s.targetTimelineLatest,
    }, recovery.expectedTimelines[0]!.tli, recovery.expectedTimelines);
    // ApplyWalRecord's doRequestWalReceiverReply: a primary waiting for remote_apply is released
    // only by a reply carrying the new apply position, which the walreceiver would otherwise
    // send at its next flush or status interval. A replayed heartbeat asks for the same reply:
    // otherwise its apply position would reach the primary only with the next beat's write, and
    // an idle standby's replay lag would read as a whole heartbeat_interval.
    recovery.onReplay = (_end, record) => {
      if (record.rmid === RmgrId.xlog) {
        if (decodeHeartbeat(record) !== null) this.applyFeedbackPending = true;
        return;
      }
      if (record.rmid !== RmgrId.transaction) return;
      const commit = decodeCommit(record);
      if (commit === null) return;
      this.lastCommitAskedRemoteApply = (commit.flags & XACT_FLAG_REMOTE_APPLY) !== 0;
      if (this.lastCommitAskedRemoteApply) this.applyFeedbackPending = true;
    };
  }

  /**
   * WakeupRecovery: new WAL was flushed by the walreceiver (or the walreceiver ended). Recovery
   * runs as soon as the caller's work is done: the walreceiver's flush comes at the end of an
   * event-loop turn, and a wake-up in the next turn's check phase made the flushed WAL's replay,
   * and the reply that reports it applied, wait behind another poll and the WAL read in it.
   */
  wakeupRecovery(): void {
    this.latch.setNow();
  }

  /** CheckPromoteSignal's effect: end recovery at the next chance. */
  requestPromotion(): void {
    this.promoteRequested = true;
    this.step({ type: 'promote' });
    this.latch.set();
  }

  /** Settings changed on reload: the machine and, if the connection changed, the walreceiver follow. */
  reconfigure(): void {
    const s = this.host.settings();
    this.step({ type: 'reconfigure', config: {
      restoreCommandSet: s.restoreCommand !== '', primaryConninfo: s.primaryConninfo,
      primarySlotName: s.primarySlotName === '' ? null : s.primarySlotName,
      walRetrieveRetryIntervalMs: s.walRetrieveRetryIntervalMs, targetTimelineLatest: s.targetTimelineLatest,
    } });
  }

  /** primary_conninfo or the slot changed: the walreceiver reconnects with the new settings. */
  requestWalReceiverRestart(): void {
    this.step({ type: 'walReceiverRestart' });
    this.latch.set();
  }

  private step(event: WalSourceEvent): WalSourceAction[] {
    const transition = stepWalSource(this.machine, event);
    this.machine = transition.state;
    return transition.actions;
  }

  protected async main(): Promise<void> {
    const { recovery, host } = this;
    while (!this.stopping) {
      if (this.machine.currentSource === 'stream') recovery.source.available = host.walRcv.flushedUpto;
      recovery.minApplyDelayMs = this.promoteRequested ? 0 : host.settings().recoveryMinApplyDelayMs;
      const before = recovery.replayEndLsn;
      const stop = recovery.replayAvailable(REPLAY_SLICE_MS);
      if (recovery.replayEndLsn !== before) host.replayAdvanced();
      if (this.applyFeedbackPending) {
        this.applyFeedbackPending = false;
        host.forceWalReceiverReply();
      }
      if (recovery.consistent && !this.announcedConsistent) {
        this.announcedConsistent = true;
        host.beginHotStandby();
      }
      if (stop.kind === 'budget') {
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      if (stop.kind === 'delay') {
        // Woken early by promotion (which ends the delay), a reload, or shutdown.
        await this.latch.wait(Math.max(1, Math.min(stop.untilMs - Date.now(), 60_000)));
        continue;
      }
      if (stop.kind === 'invalid') {
        // Never apply an invalid record: say where (once per position, as emode_for_corrupt_record
        // does), and try the other sources (ReadRecord).
        if (stop.lsn !== this.lastInvalidLsn) host.log('LOG', stop.message);
        this.lastInvalidLsn = stop.lsn;
        this.step({ type: 'sourceFailed' });
      }
      const neededLsn = stop.kind === 'needWal' ? stop.neededLsn : (stop.lsn + 1) as Lsn;
      const outcome = await this.waitForWalToBecomeAvailable(neededLsn, stop.lsn);
      if (outcome === 'stopping') return;
      if (outcome === 'promote') {
        await host.promote(recovery);
        return;
      }
      recovery.source.invalidate();
    }
  }

  /** WaitForWALToBecomeAvailable's I/O: performs the machine's actions until WAL is there. */
  private async waitForWalToBecomeAvailable(neededLsn: Lsn, recordLsn: Lsn): Promise<'available' | 'promote' | 'stopping'> {
    const { recovery, host } = this;
    let actions = this.step({
      type: 'need', lsn: neededLsn, recordLsn, replayLsn: recovery.replayEndLsn, replayTli: recovery.replayTimeline, nowMs: Date.now(),
    });
    for (;;) {
      let result: WalSourceEvent | null = null;
      for (const action of actions) {
        if (this.stopping) return 'stopping';
        switch (action.type) {
          case 'log':
            host.log(action.level === 'LOG' ? 'LOG' : 'DEBUG', action.message);
            break;
          case 'restoreFromArchive':
            result = { type: 'archiveResult', found: await this.restoreFromArchive(action.fileName), nowMs: Date.now() };
            break;
          case 'readFromPgWal':
            result = { type: 'pgWalResult', found: fs.existsSync(path.join(walDir(recovery.dataDir), action.fileName)), nowMs: Date.now() };
            break;
          case 'requestXLogStreaming':
            host.requestXLogStreaming(action.startLsn, action.timeline, action.slotName, action.conninfo);
            break;
          case 'pollWalReceiver': {
            const w = host.walRcv;
            result = { type: 'walReceiverStatus', state: w.status, startTimeMs: w.startTime, flushedUpto: w.flushedUpto, receiveTli: w.receivedTli, nowMs: Date.now() };
            break;
          }
          case 'forceWalReceiverReply':
            host.forceWalReceiverReply();
            break;
          case 'waitOnRecoveryLatch':
          case 'retryAfter':
            await this.latch.wait(action.type === 'retryAfter' ? action.ms : action.timeoutMs);
            result = { type: 'wakeup', nowMs: Date.now() };
            break;
          case 'shutdownWalReceiver':
            await host.shutdownWalReceiver();
            break;
          case 'rescanLatestTimeLine': {
            const newest = findNewestTimeLine(recovery.dataDir, action.currentTli);
            result = { type: 'rescanResult', newestTli: newest, history: readTimeLineHistory(recovery.dataDir, newest), nowMs: Date.now() };
            break;
          }
          case 'newTargetTimeline':
            host.log('LOG', `new target timeline is ${action.tli}`);
            recovery.setExpectedTimelines(readTimeLineHistory(recovery.dataDir, action.tli));
            break;
          case 'walAvailable':
            recovery.source.available = action.flushedUpto ?? Number.POSITIVE_INFINITY;
            return 'available';
          case 'endOfWal':
            if (action.reason === 'promote' || this.promoteRequested) return 'promote';
            host.log('LOG', `end of WAL reached at ${formatLsn(recovery.replayEndLsn)} while not in standby mode`);
            return 'promote';
        }
      }
      if (result === null) return 'available';
      actions = this.step(result);
    }
  }

  /**
   * RestoreArchivedFile: restore_command into pg_wal/RECOVERYXLOG, then into place and marked
   * `.done`, or `.ready` with archive_mode = always (KeepFileRestoredFromArchive).
   */
  private async restoreFromArchive(fileName: string): Promise<boolean> {
    const { recovery, host } = this;
    const command = host.settings().restoreCommand;
    const temp = path.join('pg_wal', 'RECOVERYXLOG');
    const redoSegment = xlogFileName(recovery.control.timeline, recovery.segmentOf(recovery.control.redoLsn), recovery.segmentSize);
    const shell = substituteCommand(command, { p: temp, f: fileName, r: redoSegment }, 'restore_command');
    fs.rmSync(path.join(recovery.dataDir, temp), { force: true });
    const result = await runShellCommand(shell, { cwd: recovery.dataDir, timeoutMs: SHELL_COMMAND_TIMEOUT_MS });
    const outcome = restoreCommandOutcome(result, fileName);
    if (outcome.kind !== 'restored' || !fs.existsSync(path.join(recovery.dataDir, temp))) return false;
    const kept = keepFileRestoredFromArchive(recovery.dataDir, path.join(recovery.dataDir, temp), fileName, host.settings().archiveMode);
    // The restored file replaced any local copy: a descriptor still open on that one would read
    // the old file (XLogFileRead opens the restored file afresh).
    recovery.source.closeFile();
    host.log('LOG', `restored log file "${fileName}" from archive`);
    if (kept.error !== null) host.log('LOG', `could not create archive status file "pg_wal/archive_status/${fileName}.${kept.status}": ${kept.error.message}`);
    else if (kept.status === 'ready') host.wakeArchiver();
    return true;
  }
}
