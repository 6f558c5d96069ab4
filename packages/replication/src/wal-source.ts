/**
 * Where the startup component gets its next WAL from: PostgreSQL's WaitForWALToBecomeAvailable
 * (xlogrecovery.c), with XLogFileReadAnyTLI, rescanLatestTimeLine's decision and the startup side
 * of walreceiverfuncs.c (RequestXLogStreaming, WalRcvStreaming), as a pure state machine.
 *
 * The sources, tried in this order while a standby waits for WAL:
 *
 *   1. `archive`: for each timeline of the expected history, newest first, restore_command, then
 *      the file in `pg_wal/`; `pg_wal`: the same with `pg_wal/` only.
 *   2. Both failed: if promotion was requested, stop the walreceiver and end recovery; if not in
 *      standby mode, end recovery; otherwise go to `stream` and ask for a walreceiver.
 *   3. `stream`: the walreceiver writes WAL to `pg_wal/`; wait until it has flushed past what is
 *      needed. A walreceiver that is not streaming (it exited, or sat STARTING for over 10 s) is a
 *      failure, and so is a promotion request while waiting.
 *   4. Stream failure: stop the walreceiver; with recovery_target_timeline = latest, rescan for a
 *      newer timeline, and if one can be followed go to `archive` at once.
 *   5. Otherwise wait out wal_retrieve_retry_interval since the last failure, then go to 1.
 *
 * Why pure: this loop decides when a standby gives up on its primary, when it promotes, and which
 * timeline it follows. Written as `step(state, event) -> { state, actions }` it can be driven by
 * scripted scenarios and compared with golden output (wal-source.test.ts), like etcd's raft.
 *
 * The startup component's loop (the I/O shell):
 *
 *     let { state, actions } = stepWalSource(state, { type: 'need', ... });
 *     for (;;) {
 *       perform every action in order; the last one either ends the wait (walAvailable, endOfWal)
 *       or asks for a result: feed that result (archiveResult, pgWalResult, walReceiverStatus,
 *       wakeup, rescanResult) back with stepWalSource and continue with the new actions.
 *     }
 *
 * Invariant: every `need` or result event returns actions whose last one is either terminal or
 * awaits exactly one result; none before it awaits anything. Notification events (`promote`,
 * `sourceFailed`, `walReceiverRestart`, `reconfigure`) change the state and return no actions;
 * the shell feeds them as they happen (e.g. on a promote signal before the `wakeup` it caused).
 *
 * Time is a parameter (`nowMs` on driving events); nothing here reads a clock or touches a file.
 */
import { WalshipError, ErrorCode, assert, assertionFailed } from '@walship/engine/errors';
import { formatLsn, type Lsn } from '@walship/engine/lsn';
import { canFollowTimeline, tliInHistory, tliOfPointInHistory, tliSwitchPoint, type TimeLineHistoryEntry } from '@walship/engine/wal/timeline';
import { segmentOf, segmentStart, xlogFileName } from '@walship/engine/wal/xlog-internal';
import { STREAM_WAIT_MAX_MS, WAL_RECEIVER_STARTUP_TIMEOUT_MS, WAL_SOURCE_TRANSITIONS_MAX } from './constants.js';

/** A place WAL comes from (XLogSource, without XLOG_FROM_ANY). */
export type WalSource = 'archive' | 'pg_wal' | 'stream';

/** The walreceiver's shared state (WalRcvState). */
export type WalReceiverState = 'stopped' | 'starting' | 'streaming' | 'waiting' | 'restarting' | 'stopping';

export interface WalSourceConfig {
  walSegmentSize: number;
  /** StandbyMode: standby.signal was present and recovery has not ended. */
  standbyMode: boolean;
  /** InArchiveRecovery: archive recovery (false during crash recovery: pg_wal/ only). */
  inArchiveRecovery: boolean;
  /** restore_command is set; when it is not, the archive is never asked. */
  restoreCommandSet: boolean;
  /** primary_conninfo; '' means no walreceiver is ever requested. */
  primaryConninfo: string;
  /** primary_slot_name, or null. */
  primarySlotName: string | null;
  /** wal_retrieve_retry_interval. */
  walRetrieveRetryIntervalMs: number;
  /** recovery_target_timeline = 'latest': rescan for newer timelines after a stream failure. */
  targetTimelineLatest: boolean;
}

/** The needed position and the replay state, as XLogPageRead passes them. */
export interface WalRequest {
  /** PostgreSQL's RecPtr: the end of the bytes needed (page start + bytes wanted). */
  lsn: Lsn;
  /** tliRecPtr: the start of the record being read; decides the timeline to stream from. */
  recordLsn: Lsn;
  /** Replay position and timeline, for the rescan rule. */
  replayLsn: Lsn;
  replayTli: number;
  /** A random access (not the next page in sequence): curFileTLI may go back. */
  randAccess: boolean;
  /** Fetching the initial checkpoint: stream from the redo point instead (RedoStartLSN/TLI). */
  fetchingCheckpoint: { redoLsn: Lsn; redoTli: number } | null;
}

/** What the machine waits for; the shell must feed the matching result event. */
type Awaiting =
  | { kind: 'archiveResult' | 'pgWalResult' }
  | { kind: 'walReceiverStatus' }
  | { kind: 'wakeup'; then: 'streamWait' | 'retrySleep' }
  | { kind: 'rescanResult'; then: 'streamFailure' | 'walReceiverRestart' };

interface FileAttempt {
  source: 'archive' | 'pg_wal';
  tli: number;
}

export interface WalSourceState {
  readonly config: WalSourceConfig;
  /** currentSource; 'any' before the first need. */
  readonly currentSource: WalSource | 'any';
  readonly lastSourceFailed: boolean;
  /** A reload changed primary_conninfo or the slot: restart the walreceiver (pendingWalRcvRestart). */
  readonly pendingWalReceiverRestart: boolean;
  /** CheckForStandbyTrigger() has returned true. */
  readonly promoteTriggered: boolean;
  /** last_fail_time of the stream source; null before the first failure. */
  readonly lastFailTimeMs: number | null;
  /** recoveryTargetTLI and expectedTLEs. */
  readonly recoveryTargetTli: number;
  readonly expectedHistory: readonly TimeLineHistoryEntry[];
  /** curFileTLI: timeline of the last segment opened; 0 for none. Never decreases in sequence. */
  readonly curFileTli: number;
  /** Local copy of the walreceiver's flushed position and timeline (flushedUpto, receiveTLI). */
  readonly flushedUpto: Lsn;
  readonly receiveTli: number;
  /** The wait in progress, or null between waits. */
  readonly request: WalRequest | null;
  readonly streamingReplySent: boolean;
  readonly attempts: readonly FileAttempt[];
  readonly attemptIndex: number;
  readonly awaiting: Awaiting | null;
}

export type WalSourceEvent =
  /** XLogPageRead needs WAL up to `lsn` (starts a WaitForWALToBecomeAvailable). */
  | {
    type: 'need'; lsn: Lsn; recordLsn: Lsn; replayLsn: Lsn; replayTli: number; nowMs: number;
    randAccess?: boolean; fetchingCheckpoint?: { redoLsn: Lsn; redoTli: number };
  }
  /** Result of restoreFromArchive: the segment was restored into pg_wal/ and opened. */
  | { type: 'archiveResult'; found: boolean; nowMs: number }
  /** Result of readFromPgWal: the segment exists in pg_wal/ and was opened. */
  | { type: 'pgWalResult'; found: boolean; nowMs: number }
  /** Result of pollWalReceiver: the walreceiver's shared state. */
  | {
    type: 'walReceiverStatus'; state: WalReceiverState; startTimeMs: number; flushedUpto: Lsn; receiveTli: number;
    nowMs: number;
  }
  /** Result of waitOnRecoveryLatch / retryAfter: the latch was set or the time ran out. */
  | { type: 'wakeup'; nowMs: number }
  /** Result of rescanLatestTimeLine: findNewestTimeLine and that timeline's history. */
  | { type: 'rescanResult'; newestTli: number; history: readonly TimeLineHistoryEntry[]; nowMs: number }
  /** Notification: the reader found an invalid record or page from the current source. */
  | { type: 'sourceFailed' }
  /** Notification: promotion was requested (CheckForStandbyTrigger). */
  | { type: 'promote' }
  /** Notification: primary_conninfo or primary_slot_name changed (StartupRequestWalReceiverRestart). */
  | { type: 'walReceiverRestart' }
  /** Notification: settings reloaded, or recovery left standby/archive mode. */
  | { type: 'reconfigure'; config: Partial<WalSourceConfig> };

export type WalSourceAction =
  /** Run restore_command for the segment; answer with archiveResult. */
  | { type: 'restoreFromArchive'; segNo: number; timeline: number; fileName: string }
  /** Open the segment in pg_wal/; answer with pgWalResult. */
  | { type: 'readFromPgWal'; segNo: number; timeline: number; fileName: string }
  /** RequestXLogStreaming: set the walreceiver's start (segment-aligned) and start or wake it. */
  | { type: 'requestXLogStreaming'; startLsn: Lsn; timeline: number; slotName: string | null; conninfo: string }
  /** Read the walreceiver's shared state; answer with walReceiverStatus. */
  | { type: 'pollWalReceiver' }
  /** WalRcvForceReply: have the walreceiver send a status reply now. */
  | { type: 'forceWalReceiverReply' }
  /** Wait for new WAL on the recovery latch; answer with wakeup. */
  | { type: 'waitOnRecoveryLatch'; timeoutMs: number }
  /** Sleep on the recovery latch out the rest of wal_retrieve_retry_interval; answer with wakeup. */
  | { type: 'retryAfter'; ms: number }
  /** XLogShutdownWalRcv: stop the walreceiver (STARTING -> STOPPED) and wait for it to exit. */
  | { type: 'shutdownWalReceiver' }
  /** Find the newest timeline and read its history; answer with rescanResult. */
  | { type: 'rescanLatestTimeLine'; currentTli: number }
  /** The target timeline changed: restore missing history files between the two (as PostgreSQL). */
  | { type: 'newTargetTimeline'; tli: number; previousTli: number }
  /** Terminal: the segment is open; from the stream, readable up to flushedUpto. */
  | { type: 'walAvailable'; source: WalSource; segNo: number; timeline: number; flushedUpto: Lsn | null }
  /** Terminal (XLREAD_FAIL): no more WAL; recovery ends (and promotes, when it was requested). */
  | { type: 'endOfWal'; reason: 'promote' | 'not_in_standby_mode' }
  /** A server log line PostgreSQL would write here. */
  | { type: 'log'; level: 'LOG' | 'DEBUG2'; message: string };

export interface WalSourceTransition {
  state: WalSourceState;
  actions: WalSourceAction[];
}

/** The state at the start of recovery (expectedTLEs read from recoveryTargetTLI's history). */
export function initialWalSourceState(
  config: WalSourceConfig, recoveryTargetTli: number, expectedHistory: readonly TimeLineHistoryEntry[],
): WalSourceState {
  assert(expectedHistory[0]?.tli === recoveryTargetTli, 'the expected history starts with the target timeline');
  assert(config.walRetrieveRetryIntervalMs > 0, 'wal_retrieve_retry_interval is positive');
  return {
    config, currentSource: 'any', lastSourceFailed: false, pendingWalReceiverRestart: false,
    promoteTriggered: false, lastFailTimeMs: null, recoveryTargetTli, expectedHistory, curFileTli: 0,
    flushedUpto: 0 as Lsn, receiveTli: 0, request: null, streamingReplySent: false, attempts: [],
    attemptIndex: 0, awaiting: null,
  };
}

/** Feeds one event; returns the new state and the actions to perform, in order. */
export function stepWalSource(state: WalSourceState, event: WalSourceEvent): WalSourceTransition {
  const machine = new Machine(state);
  machine.handle(event);
  return { state: machine.state(), actions: machine.actions };
}

/** Whether a walreceiver in this state counts as streaming (WalRcvStreaming, with its 10 s rule). */
export function walReceiverStreaming(state: WalReceiverState, startTimeMs: number, nowMs: number): boolean {
  if (state === 'starting') return nowMs - startTimeMs <= WAL_RECEIVER_STARTUP_TIMEOUT_MS;
  return state === 'streaming' || state === 'restarting';
}

/**
 * The working copy of one step. Mutable inside, so that each PostgreSQL branch reads as in
 * xlogrecovery.c; the caller only ever sees the frozen result of a whole step.
 */
class Machine {
  readonly actions: WalSourceAction[] = [];
  private s: Mutable<WalSourceState>;
  private transitions = 0;
  /** The driving event's time; NaN for notifications, which never reach a timed decision. */
  private nowMs = Number.NaN;

  constructor(state: WalSourceState) {
    this.s = { ...state };
  }

  /**
   * The working copy itself: a Machine lives for one step (stepWalSource drops it), so nobody
   * else can change it, and the type is readonly to every caller. Not frozen and not copied
   * again: that was 0.7 µs and an object per step, several steps per streamed message.
   */
  state(): WalSourceState {
    return this.s;
  }

  handle(event: WalSourceEvent): void {
    if ('nowMs' in event) {
      if (!Number.isFinite(event.nowMs)) assertionFailed(`${event.type} carries the current time`);
      this.nowMs = event.nowMs;
    }
    switch (event.type) {
      case 'need': return this.need(event);
      case 'archiveResult': case 'pgWalResult': return this.fileResult(event.type, event.found);
      case 'walReceiverStatus': return this.walReceiverStatus(event);
      case 'wakeup': return this.wakeup();
      case 'rescanResult': return this.rescanResult(event);
      case 'sourceFailed':
        assert(this.s.awaiting === null, 'sourceFailed arrives between waits');
        this.s.lastSourceFailed = true;
        return;
      case 'promote':
        this.s.promoteTriggered = true;
        return;
      case 'walReceiverRestart':
        if (this.s.currentSource === 'stream') this.s.pendingWalReceiverRestart = true;
        return;
      case 'reconfigure':
        this.s.config = { ...this.s.config, ...event.config };
        return;
    }
  }

  // --- entry --------------------------------------------------------------------------------

  private need(event: Extract<WalSourceEvent, { type: 'need' }>): void {
    assert(this.s.awaiting === null && this.s.request === null, 'need arrives only between waits');
    this.s.request = {
      lsn: event.lsn, recordLsn: event.recordLsn, replayLsn: event.replayLsn, replayTli: event.replayTli,
      randAccess: event.randAccess ?? false, fetchingCheckpoint: event.fetchingCheckpoint ?? null,
    };
    this.s.streamingReplySent = false;
    const { inArchiveRecovery, standbyMode } = this.s.config;
    if (!inArchiveRecovery) {
      this.s.currentSource = 'pg_wal';
    } else if (this.s.currentSource === 'any' || (!standbyMode && this.s.currentSource === 'stream')) {
      this.s.lastSourceFailed = false;
      this.s.currentSource = 'archive';
    }
    this.loop();
  }

  /** The top of WaitForWALToBecomeAvailable's for(;;): handle a failure, then try the source. */
  private loop(): void {
    this.transitions++;
    assert(this.transitions <= WAL_SOURCE_TRANSITIONS_MAX, 'the WAL source machine loops without waiting');
    const oldSource = this.s.currentSource;
    let startWalReceiver = false;
    if (this.s.lastSourceFailed) {
      if (this.s.currentSource === 'archive' || this.s.currentSource === 'pg_wal') {
        if (this.s.config.standbyMode && this.s.promoteTriggered) {
          this.emit({ type: 'shutdownWalReceiver' });
          return this.finish({ type: 'endOfWal', reason: 'promote' });
        }
        if (!this.s.config.standbyMode) return this.finish({ type: 'endOfWal', reason: 'not_in_standby_mode' });
        this.s.currentSource = 'stream';
        startWalReceiver = true;
      } else {
        assert(this.s.currentSource === 'stream', `a failed source is one of the three, not ${this.s.currentSource}`);
        return this.streamFailed();
      }
    } else if (this.s.currentSource === 'pg_wal' && this.s.config.inArchiveRecovery) {
      // A file was read from pg_wal/; prefer the archive's copy of the next one.
      this.s.currentSource = 'archive';
    }
    this.logSwitch(oldSource);
    this.trySource(startWalReceiver);
  }

  private logSwitch(oldSource: WalSource | 'any'): void {
    if (this.s.currentSource === oldSource) return;
    this.emit({
      type: 'log', level: 'DEBUG2',
      message: `switched WAL source from ${oldSource} to ${this.s.currentSource} after ${this.s.lastSourceFailed ? 'failure' : 'success'}`,
    });
  }

  private trySource(startWalReceiver: boolean): void {
    this.s.lastSourceFailed = false;
    if (this.s.currentSource === 'stream') return this.tryStream(startWalReceiver);
    this.tryFiles();
  }

  // --- archive and pg_wal (XLogFileReadAnyTLI) -----------------------------------------------

  private tryFiles(): void {
    const request = this.request();
    if (request.randAccess) this.s.curFileTli = 0;
    this.s.attempts = this.fileAttempts(segmentOf(request.lsn, this.s.config.walSegmentSize));
    this.s.attemptIndex = 0;
    this.nextAttempt();
  }

  /** Each timeline of the expected history that may hold the segment, newest first. */
  private fileAttempts(segNo: number): FileAttempt[] {
    const withArchive = this.s.currentSource === 'archive' && this.s.config.restoreCommandSet;
    const attempts: FileAttempt[] = [];
    for (const entry of this.s.expectedHistory) {
      if (entry.tli < this.s.curFileTli) break;
      if (entry.begin !== 0 && segNo < segmentOf(entry.begin, this.s.config.walSegmentSize)) continue;
      if (withArchive) attempts.push({ source: 'archive', tli: entry.tli });
      attempts.push({ source: 'pg_wal', tli: entry.tli });
    }
    return attempts;
  }

  private nextAttempt(): void {
    const attempt = this.s.attempts[this.s.attemptIndex];
    if (attempt === undefined) {
      this.s.lastSourceFailed = true;
      return this.loop();
    }
    const segNo = segmentOf(this.request().lsn, this.s.config.walSegmentSize);
    const fileName = xlogFileName(attempt.tli, segNo, this.s.config.walSegmentSize);
    if (attempt.source === 'archive') {
      this.await({ type: 'restoreFromArchive', segNo, timeline: attempt.tli, fileName }, { kind: 'archiveResult' });
    } else {
      this.await({ type: 'readFromPgWal', segNo, timeline: attempt.tli, fileName }, { kind: 'pgWalResult' });
    }
  }

  private fileResult(kind: 'archiveResult' | 'pgWalResult', found: boolean): void {
    this.expect(kind);
    const attempt = this.s.attempts[this.s.attemptIndex]!;
    if (found) {
      this.s.curFileTli = attempt.tli;
      const segNo = segmentOf(this.request().lsn, this.s.config.walSegmentSize);
      return this.finish({ type: 'walAvailable', source: attempt.source, segNo, timeline: attempt.tli, flushedUpto: null });
    }
    this.s.attemptIndex++;
    this.nextAttempt();
  }

  // --- stream ---------------------------------------------------------------------------------

  private tryStream(startWalReceiver: boolean): void {
    assert(this.s.config.standbyMode, 'the stream source is used only in standby mode');
    if (this.s.pendingWalReceiverRestart && !startWalReceiver) {
      this.s.pendingWalReceiverRestart = false;
      this.emit({ type: 'shutdownWalReceiver' });
      if (this.s.config.targetTimelineLatest) {
        return this.await({ type: 'rescanLatestTimeLine', currentTli: this.s.recoveryTargetTli }, { kind: 'rescanResult', then: 'walReceiverRestart' });
      }
      startWalReceiver = true;
    }
    this.s.pendingWalReceiverRestart = false;
    if (startWalReceiver && this.s.config.primaryConninfo !== '') this.requestStreaming();
    this.await({ type: 'pollWalReceiver' }, { kind: 'walReceiverStatus' });
  }

  /** RequestXLogStreaming from where the record is, on the timeline the history says it is on. */
  private requestStreaming(): void {
    const request = this.request();
    let startLsn: Lsn;
    let tli: number;
    if (request.fetchingCheckpoint !== null) {
      startLsn = request.fetchingCheckpoint.redoLsn;
      tli = request.fetchingCheckpoint.redoTli;
    } else {
      startLsn = request.lsn;
      tli = tliOfPointInHistory(request.recordLsn, this.s.expectedHistory);
      if (this.s.curFileTli > 0 && tli < this.s.curFileTli) {
        throw new WalshipError(ErrorCode.walCorrupted,
          `according to history file, WAL location ${formatLsn(request.recordLsn)} belongs to timeline ${tli}, but previous recovered WAL file came from timeline ${this.s.curFileTli}`);
      }
    }
    this.s.curFileTli = tli;
    const segmentSize = this.s.config.walSegmentSize;
    this.emit({
      type: 'requestXLogStreaming', startLsn: segmentStart(segmentOf(startLsn, segmentSize), segmentSize), timeline: tli,
      slotName: this.s.config.primarySlotName, conninfo: this.s.config.primaryConninfo,
    });
    this.s.flushedUpto = 0 as Lsn;
  }

  private walReceiverStatus(event: Extract<WalSourceEvent, { type: 'walReceiverStatus' }>): void {
    this.expect('walReceiverStatus');
    if (!walReceiverStreaming(event.state, event.startTimeMs, event.nowMs)) {
      this.s.lastSourceFailed = true;
      return this.loop();
    }
    const request = this.request();
    let haveData = request.lsn < this.s.flushedUpto;
    if (!haveData) {
      this.s.flushedUpto = event.flushedUpto;
      this.s.receiveTli = event.receiveTli;
      haveData = request.lsn < this.s.flushedUpto && this.s.receiveTli === this.s.curFileTli;
    }
    if (haveData) {
      const segNo = segmentOf(request.lsn, this.s.config.walSegmentSize);
      return this.finish({ type: 'walAvailable', source: 'stream', segNo, timeline: this.s.receiveTli, flushedUpto: this.s.flushedUpto });
    }
    if (this.s.promoteTriggered) {
      // Replay what was streamed (it is in pg_wal/ now), then recheck the trigger and end.
      this.s.lastSourceFailed = true;
      return this.loop();
    }
    if (!this.s.streamingReplySent) {
      this.emit({ type: 'forceWalReceiverReply' });
      this.s.streamingReplySent = true;
    }
    const timeoutMs = streamWaitTimeoutMs(event.state, event.startTimeMs, event.nowMs);
    this.await({ type: 'waitOnRecoveryLatch', timeoutMs }, { kind: 'wakeup', then: 'streamWait' });
  }

  /** The stream failed: stop the walreceiver, look for a newer timeline, or wait and retry. */
  private streamFailed(): void {
    this.emit({ type: 'shutdownWalReceiver' });
    if (this.s.config.targetTimelineLatest) {
      return this.await({ type: 'rescanLatestTimeLine', currentTli: this.s.recoveryTargetTli }, { kind: 'rescanResult', then: 'streamFailure' });
    }
    this.retryAfterInterval();
  }

  private retryAfterInterval(): void {
    const nowMs = this.nowMs;
    assert(Number.isFinite(nowMs), 'the retry interval is measured from a real time');
    const interval = this.s.config.walRetrieveRetryIntervalMs;
    const sinceLastFailMs = this.s.lastFailTimeMs === null ? Number.POSITIVE_INFINITY : nowMs - this.s.lastFailTimeMs;
    // A promotion is waiting: no point in waiting to retry a stream it will shut down. (The latch
    // that would end the wait early may have been consumed already, by the wake-up that reported
    // the stream's failure: the promotion would then wait out the whole interval.)
    if (sinceLastFailMs < interval && !this.s.promoteTriggered) {
      this.emit({ type: 'log', level: 'LOG', message: `waiting for WAL to become available at ${formatLsn(this.request().lsn)}` });
      return this.await({ type: 'retryAfter', ms: interval - sinceLastFailMs }, { kind: 'wakeup', then: 'retrySleep' });
    }
    this.retryFromArchive();
  }

  private retryFromArchive(): void {
    this.s.lastFailTimeMs = this.nowMs;
    this.switchAfterStreamFailure();
  }

  private switchAfterStreamFailure(): void {
    this.s.currentSource = 'archive';
    this.logSwitch('stream');
    this.trySource(false);
  }

  private wakeup(): void {
    const awaiting = this.expect('wakeup');
    if (awaiting.then === 'retrySleep') return this.retryFromArchive();
    this.loop();
  }

  // --- timelines (rescanLatestTimeLine) --------------------------------------------------------

  private rescanResult(event: Extract<WalSourceEvent, { type: 'rescanResult' }>): void {
    const awaiting = this.expect('rescanResult');
    const found = this.adoptNewestTimeline(event.newestTli, event.history);
    if (awaiting.then === 'walReceiverRestart') {
      if (this.s.config.primaryConninfo !== '') this.requestStreaming();
      return this.await({ type: 'pollWalReceiver' }, { kind: 'walReceiverStatus' });
    }
    if (found) return this.switchAfterStreamFailure();
    this.retryAfterInterval();
  }

  /** rescanLatestTimeLine's rule; true when the target timeline changed. */
  private adoptNewestTimeline(newestTli: number, history: readonly TimeLineHistoryEntry[]): boolean {
    const oldTarget = this.s.recoveryTargetTli;
    if (newestTli === oldTarget) return false;
    assert(history[0]?.tli === newestTli, 'a rescan answers with the newest timeline\'s history');
    const { replayLsn, replayTli } = this.request();
    if (!canFollowTimeline(history, oldTarget, replayLsn)) {
      const message = tliInHistory(oldTarget, history)
        ? `new timeline ${newestTli} forked off current database system timeline ${replayTli} before current recovery point ${formatLsn(replayLsn)}`
        : `new timeline ${newestTli} is not a child of database system timeline ${replayTli}`;
      this.emit({ type: 'log', level: 'LOG', message });
      return false;
    }
    assert(tliSwitchPoint(oldTarget, history).nextTli !== null, 'the old target is an ancestor of the new one');
    this.s.recoveryTargetTli = newestTli;
    this.s.expectedHistory = history;
    this.emit({ type: 'newTargetTimeline', tli: newestTli, previousTli: oldTarget });
    this.emit({ type: 'log', level: 'LOG', message: `new target timeline is ${newestTli}` });
    return true;
  }

  // --- plumbing -------------------------------------------------------------------------------

  private request(): WalRequest {
    assert(this.s.request !== null, 'a WAL request is in progress');
    return this.s.request;
  }

  private expect<K extends Awaiting['kind']>(kind: K): Extract<Awaiting, { kind: K }> {
    const awaiting = this.s.awaiting;
    if (awaiting === null || awaiting.kind !== kind) assertionFailed(`got ${kind} while awaiting ${awaiting?.kind ?? 'nothing'}`);
    this.s.awaiting = null;
    return awaiting as Extract<Awaiting, { kind: K }>;
  }

  private emit(action: WalSourceAction): void {
    this.actions.push(action);
  }

  private await(action: WalSourceAction, awaiting: Awaiting): void {
    this.emit(action);
    this.s.awaiting = awaiting;
  }

  private finish(action: Extract<WalSourceAction, { type: 'walAvailable' | 'endOfWal' }>): void {
    this.emit(action);
    this.s.request = null;
    this.s.attempts = [];
    this.s.attemptIndex = 0;
  }
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** How long to wait for streamed WAL: until a STARTING walreceiver's deadline, else the cap. */
function streamWaitTimeoutMs(state: WalReceiverState, startTimeMs: number, nowMs: number): number {
  if (state !== 'starting') return STREAM_WAIT_MAX_MS;
  const untilDeadlineMs = startTimeMs + WAL_RECEIVER_STARTUP_TIMEOUT_MS + 1 - nowMs;
  return Math.max(1, Math.min(STREAM_WAIT_MAX_MS, untilDeadlineMs));
}

/** One line per action, for logs and golden tests. */
export function describeWalSourceAction(action: WalSourceAction): string {
  switch (action.type) {
    case 'restoreFromArchive': case 'readFromPgWal':
      return `${action.type} ${action.fileName}`;
    case 'requestXLogStreaming':
      return `requestXLogStreaming start=${formatLsn(action.startLsn)} tli=${action.timeline} slot=${action.slotName ?? '-'}`;
    case 'waitOnRecoveryLatch':
      return `waitOnRecoveryLatch timeout=${action.timeoutMs}ms`;
    case 'retryAfter':
      return `retryAfter ${action.ms}ms`;
    case 'rescanLatestTimeLine':
      return `rescanLatestTimeLine current=${action.currentTli}`;
    case 'newTargetTimeline':
      return `newTargetTimeline ${action.previousTli} -> ${action.tli}`;
    case 'walAvailable':
      return `walAvailable ${action.source} seg=${action.segNo} tli=${action.timeline}` +
        (action.flushedUpto === null ? '' : ` flushed=${formatLsn(action.flushedUpto)}`);
    case 'endOfWal':
      return `endOfWal ${action.reason}`;
    case 'log':
      return `log ${action.level} "${action.message}"`;
    case 'pollWalReceiver': case 'forceWalReceiverReply': case 'shutdownWalReceiver':
      return action.type;
  }
}
