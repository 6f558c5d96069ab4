/**
 * Scenario tests of the WAL-source state machine: each script is a list of events, as the
 * startup component would feed them, and the expected output is every event (`>`) followed by the
 * actions it produced, one per line. To add a scenario, write the events, read the actions that
 * come out against xlogrecovery.c's WaitForWALToBecomeAvailable, and paste them in once they are
 * right.
 */
import { AssertionFailure } from '@walship/engine/errors';
import { formatLsn, parseLsn, type Lsn } from '@walship/engine/lsn';
import { parseTimeLineHistory, singleTimelineHistory, type TimeLineHistoryEntry } from '@walship/engine/wal/timeline';
import { describe, expect, it } from 'vitest';
import { WAL_RECEIVER_STARTUP_TIMEOUT_MS } from './constants.js';
import {
  describeWalSourceAction, initialWalSourceState, stepWalSource, walReceiverStreaming,
  type WalReceiverState, type WalSourceConfig, type WalSourceEvent, type WalSourceState,
} from './wal-source.js';

const L = (text: string): Lsn => parseLsn(text)!;

const STANDBY: WalSourceConfig = {
  walSegmentSize: 16 * 1024 * 1024,
  standbyMode: true,
  inArchiveRecovery: true,
  restoreCommandSet: false,
  primaryConninfo: 'host=127.0.0.1 port=5433 application_name=s1',
  primarySlotName: 's1',
  walRetrieveRetryIntervalMs: 5_000,
  targetTimelineLatest: true,
};

// --- events --------------------------------------------------------------------------------------

function need(lsn: string, nowMs: number, record = lsn, replay = record, replayTli = 1): WalSourceEvent {
  return { type: 'need', lsn: L(lsn), recordLsn: L(record), replayLsn: L(replay), replayTli, nowMs };
}
const archive = (found: boolean, nowMs: number): WalSourceEvent => ({ type: 'archiveResult', found, nowMs });
const pgWal = (found: boolean, nowMs: number): WalSourceEvent => ({ type: 'pgWalResult', found, nowMs });
const wakeup = (nowMs: number): WalSourceEvent => ({ type: 'wakeup', nowMs });
function receiver(state: WalReceiverState, flushed: string, nowMs: number, startTimeMs = 0, receiveTli = 1): WalSourceEvent {
  return { type: 'walReceiverStatus', state, startTimeMs, flushedUpto: L(flushed), receiveTli, nowMs };
}
function rescan(newestTli: number, nowMs: number, history: readonly TimeLineHistoryEntry[] = singleTimelineHistory(newestTli)): WalSourceEvent {
  return { type: 'rescanResult', newestTli, history, nowMs };
}

function describeEvent(event: WalSourceEvent): string {
  switch (event.type) {
    case 'need':
      return `need ${formatLsn(event.lsn)} record=${formatLsn(event.recordLsn)} replay=${formatLsn(event.replayLsn)} now=${event.nowMs}`;
    case 'archiveResult': case 'pgWalResult':
      return `${event.type} ${event.found ? 'found' : 'missing'} now=${event.nowMs}`;
    case 'walReceiverStatus':
      return `walReceiver ${event.state} flushed=${formatLsn(event.flushedUpto)} tli=${event.receiveTli} now=${event.nowMs}`;
    case 'wakeup':
      return `wakeup now=${event.nowMs}`;
    case 'rescanResult':
      return `rescanResult newest=${event.newestTli} now=${event.nowMs}`;
    case 'reconfigure':
      return `reconfigure ${JSON.stringify(event.config)}`;
    case 'sourceFailed': case 'promote': case 'walReceiverRestart':
      return event.type;
  }
}

/** Feeds the events in order and renders the golden text. */
function play(events: WalSourceEvent[], state: WalSourceState = initialWalSourceState(STANDBY, 1, singleTimelineHistory(1))): { text: string; state: WalSourceState } {
  const lines: string[] = [];
  for (const event of events) {
    lines.push(`> ${describeEvent(event)}`);
    const transition = stepWalSource(state, event);
    state = transition.state;
    for (const action of transition.actions) lines.push(`  ${describeWalSourceAction(action)}`);
  }
  return { text: lines.join('\n'), state };
}

function golden(text: string): string {
  return text.replace(/^\n/, '').replace(/\n\s*$/, '').split('\n').map((line) => line.replace(/^ {4}/, '')).join('\n');
}

// --- scenarios -------------------------------------------------------------------------------------

describe('WAL-source scenarios', () => {
  it('fresh standby: pg_wal/ is empty, so it streams', () => {
    const { text } = play([
      need('0/3000100', 0, '0/3000028'),
      pgWal(false, 1),
      receiver('starting', '0/3000000', 2, 1),
      wakeup(40),
      receiver('streaming', '0/3008000', 41, 1),
      need('0/3009000', 50, '0/3008F00'),
      receiver('streaming', '0/3008000', 51, 1),
      wakeup(60),
      receiver('streaming', '0/300A000', 61, 1),
    ]);
    expect(text).toBe(golden(`
    > need 0/3000100 record=0/3000028 replay=0/3000028 now=0
      readFromPgWal 000000010000000000000003
    > pgWalResult missing now=1
      log DEBUG2 "switched WAL source from archive to stream after failure"
      requestXLogStreaming start=0/3000000 tli=1 slot=s1
      pollWalReceiver
    > walReceiver starting flushed=0/3000000 tli=1 now=2
      forceWalReceiverReply
      waitOnRecoveryLatch timeout=5000ms
    > wakeup now=40
      pollWalReceiver
    > walReceiver streaming flushed=0/3008000 tli=1 now=41
      walAvailable stream seg=3 tli=1 flushed=0/3008000
    > need 0/3009000 record=0/3008F00 replay=0/3008F00 now=50
      pollWalReceiver
    > walReceiver streaming flushed=0/3008000 tli=1 now=51
      forceWalReceiverReply
      waitOnRecoveryLatch timeout=5000ms
    > wakeup now=60
      pollWalReceiver
    > walReceiver streaming flushed=0/300A000 tli=1 now=61
      walAvailable stream seg=3 tli=1 flushed=0/300A000
    `));
  });

  it('catch-up from the archive, then the stream', () => {
    const state = initialWalSourceState({ ...STANDBY, restoreCommandSet: true }, 1, singleTimelineHistory(1));
    const { text } = play([
      need('0/3000100', 0, '0/3000028'),
      archive(true, 5),
      need('0/4000100', 10, '0/3FFFFD0'),
      archive(true, 15),
      need('0/5000100', 20, '0/4FFFFE8'),
      archive(false, 25),
      pgWal(false, 26),
      receiver('starting', '0/5000000', 27, 26),
      wakeup(300),
      receiver('streaming', '0/5004000', 301, 26),
    ], state);
    expect(text).toBe(golden(`
    > need 0/3000100 record=0/3000028 replay=0/3000028 now=0
      restoreFromArchive 000000010000000000000003
    > archiveResult found now=5
      walAvailable archive seg=3 tli=1
    > need 0/4000100 record=0/3FFFFD0 replay=0/3FFFFD0 now=10
      restoreFromArchive 000000010000000000000004
    > archiveResult found now=15
      walAvailable archive seg=4 tli=1
    > need 0/5000100 record=0/4FFFFE8 replay=0/4FFFFE8 now=20
      restoreFromArchive 000000010000000000000005
    > archiveResult missing now=25
      readFromPgWal 000000010000000000000005
    > pgWalResult missing now=26
      log DEBUG2 "switched WAL source from archive to stream after failure"
      requestXLogStreaming start=0/5000000 tli=1 slot=s1
      pollWalReceiver
    > walReceiver starting flushed=0/5000000 tli=1 now=27
      forceWalReceiverReply
      waitOnRecoveryLatch timeout=5000ms
    > wakeup now=300
      pollWalReceiver
    > walReceiver streaming flushed=0/5004000 tli=1 now=301
      walAvailable stream seg=5 tli=1 flushed=0/5004000
    `));
  });

  it('primary restart: the stream fails, the archive and pg_wal/ are tried, the retry waits out the interval, the stream resumes', () => {
    const state = initialWalSourceState({ ...STANDBY, restoreCommandSet: true }, 1, singleTimelineHistory(1));
    const { text } = play([
      need('0/4000100', 0, '0/4000028'),
      archive(false, 1),
      pgWal(false, 2),
      receiver('streaming', '0/4002000', 20, 2),
      need('0/4003000', 30, '0/4002F00'),
      receiver('stopped', '0/4002000', 31),
      rescan(1, 32),
      archive(false, 33),
      pgWal(true, 34),
      { type: 'sourceFailed' },
      need('0/4003000', 35, '0/4002F00'),
      receiver('starting', '0/4000000', 36, 35),
      wakeup(1_035),
      receiver('stopped', '0/4002000', 1_036),
      rescan(1, 1_037),
      wakeup(5_032),
      archive(false, 5_033),
      pgWal(false, 5_034),
      receiver('streaming', '0/4005000', 5_040, 5_034),
    ], state);
    expect(text).toBe(golden(`
    > need 0/4000100 record=0/4000028 replay=0/4000028 now=0
      restoreFromArchive 000000010000000000000004
    > archiveResult missing now=1
      readFromPgWal 000000010000000000000004
    > pgWalResult missing now=2
      log DEBUG2 "switched WAL source from archive to stream after failure"
      requestXLogStreaming start=0/4000000 tli=1 slot=s1
      pollWalReceiver
    > walReceiver streaming flushed=0/4002000 tli=1 now=20
      walAvailable stream seg=4 tli=1 flushed=0/4002000
    > need 0/4003000 record=0/4002F00 replay=0/4002F00 now=30
      pollWalReceiver
    > walReceiver stopped flushed=0/4002000 tli=1 now=31
      shutdownWalReceiver
      rescanLatestTimeLine current=1
    > rescanResult newest=1 now=32
      log DEBUG2 "switched WAL source from stream to archive after failure"
      restoreFromArchive 000000010000000000000004
    > archiveResult missing now=33
      readFromPgWal 000000010000000000000004
    > pgWalResult found now=34
      walAvailable pg_wal seg=4 tli=1
    > sourceFailed
    > need 0/4003000 record=0/4002F00 replay=0/4002F00 now=35
      log DEBUG2 "switched WAL source from archive to stream after failure"
      requestXLogStreaming start=0/4000000 tli=1 slot=s1
      pollWalReceiver
    > walReceiver starting flushed=0/4000000 tli=1 now=36
      forceWalReceiverReply
      waitOnRecoveryLatch timeout=5000ms
    > wakeup now=1035
      pollWalReceiver
    > walReceiver stopped flushed=0/4002000 tli=1 now=1036
      shutdownWalReceiver
      rescanLatestTimeLine current=1
    > rescanResult newest=1 now=1037
      log LOG "waiting for WAL to become available at 0/4003000"
      retryAfter 3995ms
    > wakeup now=5032
      log DEBUG2 "switched WAL source from stream to archive after failure"
      restoreFromArchive 000000010000000000000004
    > archiveResult missing now=5033
      readFromPgWal 000000010000000000000004
    > pgWalResult missing now=5034
      log DEBUG2 "switched WAL source from archive to stream after failure"
      requestXLogStreaming start=0/4000000 tli=1 slot=s1
      pollWalReceiver
    > walReceiver streaming flushed=0/4005000 tli=1 now=5040
      walAvailable stream seg=4 tli=1 flushed=0/4005000
    `));
  });

  it('promotion while waiting: replay what pg_wal/ has, then end recovery', () => {
    const { text } = play([
      need('0/3000100', 0, '0/3000028'),
      pgWal(false, 1),
      receiver('streaming', '0/3002000', 2, 1),
      need('0/3003000', 10, '0/3002F00'),
      receiver('streaming', '0/3002000', 11, 1),
      { type: 'promote' },
      wakeup(12),
      receiver('streaming', '0/3002000', 13, 1),
      rescan(1, 14),
      pgWal(true, 15),
      { type: 'sourceFailed' },
      need('0/3003000', 16, '0/3002F00'),
    ]);
    expect(text).toBe(golden(`
    > need 0/3000100 record=0/3000028 replay=0/3000028 now=0
      readFromPgWal 000000010000000000000003
    > pgWalResult missing now=1
      log DEBUG2 "switched WAL source from archive to stream after failure"
      requestXLogStreaming start=0/3000000 tli=1 slot=s1
      pollWalReceiver
    > walReceiver streaming flushed=0/3002000 tli=1 now=2
      walAvailable stream seg=3 tli=1 flushed=0/3002000
    > need 0/3003000 record=0/3002F00 replay=0/3002F00 now=10
      pollWalReceiver
    > walReceiver streaming flushed=0/3002000 tli=1 now=11
      forceWalReceiverReply
      waitOnRecoveryLatch timeout=5000ms
    > promote
    > wakeup now=12
      pollWalReceiver
    > walReceiver streaming flushed=0/3002000 tli=1 now=13
      shutdownWalReceiver
      rescanLatestTimeLine current=1
    > rescanResult newest=1 now=14
      log DEBUG2 "switched WAL source from stream to archive after failure"
      readFromPgWal 000000010000000000000003
    > pgWalResult found now=15
      walAvailable pg_wal seg=3 tli=1
    > sourceFailed
    > need 0/3003000 record=0/3002F00 replay=0/3002F00 now=16
      shutdownWalReceiver
      endOfWal promote
    `));
  });

  it('promotion when the stream has just failed: no wait for the retry interval, end recovery at once', () => {
    // The stream fails twice within wal_retrieve_retry_interval; the promotion comes in between.
    // Without it, the second failure waits out the interval ("waiting for WAL to become
    // available"); with it, the machine goes on to pg_wal/ and ends recovery.
    const { text } = play([
      need('0/3000100', 0, '0/3000028'),
      pgWal(false, 1),
      receiver('streaming', '0/3002000', 2, 1),
      need('0/3003000', 10, '0/3002F00'),
      receiver('stopped', '0/3002000', 11, 1),
      rescan(1, 12),
      pgWal(false, 13),
      receiver('stopped', '0/3002000', 14, 13),
      { type: 'promote' },
      rescan(1, 15),
      pgWal(false, 16),
    ]);
    expect(text.split('\n').slice(-10).join('\n')).toBe(golden(`
    > walReceiver stopped flushed=0/3002000 tli=1 now=14
      shutdownWalReceiver
      rescanLatestTimeLine current=1
    > promote
    > rescanResult newest=1 now=15
      log DEBUG2 "switched WAL source from stream to archive after failure"
      readFromPgWal 000000010000000000000003
    > pgWalResult missing now=16
      shutdownWalReceiver
      endOfWal promote
    `));
  });

  it('timeline rescan finds a newer timeline: follow it at once, stream it', () => {
    // The primary was promoted from timeline 1 at 0/5003000; this standby replayed up to exactly there.
    const tli2 = parseTimeLineHistory('1\t0/5003000\tno recovery target specified\n', 2);
    const { text, state } = play([
      need('0/5000100', 0, '0/5000028'),
      pgWal(false, 1),
      receiver('streaming', '0/5003000', 2, 1),
      need('0/5003100', 10, '0/5003000', '0/5003000'),
      receiver('waiting', '0/5003000', 11, 1),
      rescan(2, 12, tli2),
      pgWal(false, 13),
      pgWal(false, 14),
      receiver('streaming', '0/5004000', 20, 14, 2),
    ]);
    expect(text).toBe(golden(`
    > need 0/5000100 record=0/5000028 replay=0/5000028 now=0
      readFromPgWal 000000010000000000000005
    > pgWalResult missing now=1
      log DEBUG2 "switched WAL source from archive to stream after failure"
      requestXLogStreaming start=0/5000000 tli=1 slot=s1
      pollWalReceiver
    > walReceiver streaming flushed=0/5003000 tli=1 now=2
      walAvailable stream seg=5 tli=1 flushed=0/5003000
    > need 0/5003100 record=0/5003000 replay=0/5003000 now=10
      pollWalReceiver
    > walReceiver waiting flushed=0/5003000 tli=1 now=11
      shutdownWalReceiver
      rescanLatestTimeLine current=1
    > rescanResult newest=2 now=12
      newTargetTimeline 1 -> 2
      log LOG "new target timeline is 2"
      log DEBUG2 "switched WAL source from stream to archive after failure"
      readFromPgWal 000000020000000000000005
    > pgWalResult missing now=13
      readFromPgWal 000000010000000000000005
    > pgWalResult missing now=14
      log DEBUG2 "switched WAL source from archive to stream after failure"
      requestXLogStreaming start=0/5000000 tli=2 slot=s1
      pollWalReceiver
    > walReceiver streaming flushed=0/5004000 tli=2 now=20
      walAvailable stream seg=5 tli=2 flushed=0/5004000
    `));
    expect(state.recoveryTargetTli).toBe(2);
    expect(state.expectedHistory).toBe(tli2);
  });

  it('timeline rescan refuses a timeline that forked before the replay position, or is not a child', () => {
    // Timeline 2 forked off timeline 1 at 0/5001000, but this standby already replayed 0/5002028
    // of timeline 1: following it would need a rewind. Timeline 3 does not descend from 1 at all.
    const forkedEarly = parseTimeLineHistory('1\t0/5001000\tpromoted elsewhere\n', 2);
    const unrelated = parseTimeLineHistory('', 3);
    const late = play([
      need('0/5002100', 0, '0/5002028'),
      pgWal(false, 1),
      receiver('stopped', '0/5000000', 2),
      rescan(2, 3, forkedEarly),
      pgWal(false, 4),
      receiver('stopped', '0/5000000', 5),
      rescan(3, 6, unrelated),
    ]);
    expect(late.text).toBe(golden(`
    > need 0/5002100 record=0/5002028 replay=0/5002028 now=0
      readFromPgWal 000000010000000000000005
    > pgWalResult missing now=1
      log DEBUG2 "switched WAL source from archive to stream after failure"
      requestXLogStreaming start=0/5000000 tli=1 slot=s1
      pollWalReceiver
    > walReceiver stopped flushed=0/5000000 tli=1 now=2
      shutdownWalReceiver
      rescanLatestTimeLine current=1
    > rescanResult newest=2 now=3
      log LOG "new timeline 2 forked off current database system timeline 1 before current recovery point 0/5002028"
      log DEBUG2 "switched WAL source from stream to archive after failure"
      readFromPgWal 000000010000000000000005
    > pgWalResult missing now=4
      log DEBUG2 "switched WAL source from archive to stream after failure"
      requestXLogStreaming start=0/5000000 tli=1 slot=s1
      pollWalReceiver
    > walReceiver stopped flushed=0/5000000 tli=1 now=5
      shutdownWalReceiver
      rescanLatestTimeLine current=1
    > rescanResult newest=3 now=6
      log LOG "new timeline 3 is not a child of database system timeline 1"
      log LOG "waiting for WAL to become available at 0/5002100"
      retryAfter 4997ms
    `));
    expect(late.state.recoveryTargetTli).toBe(1);
  });

  it('a walreceiver STARTING for over 10 s counts as failed', () => {
    const { text } = play([
      need('0/3000100', 0, '0/3000028'),
      pgWal(false, 1),
      receiver('starting', '0/3000000', 8_000, 1),
      wakeup(10_001),
      receiver('starting', '0/3000000', 10_002, 1),
    ], initialWalSourceState({ ...STANDBY, targetTimelineLatest: false }, 1, singleTimelineHistory(1)));
    expect(text).toBe(golden(`
    > need 0/3000100 record=0/3000028 replay=0/3000028 now=0
      readFromPgWal 000000010000000000000003
    > pgWalResult missing now=1
      log DEBUG2 "switched WAL source from archive to stream after failure"
      requestXLogStreaming start=0/3000000 tli=1 slot=s1
      pollWalReceiver
    > walReceiver starting flushed=0/3000000 tli=1 now=8000
      forceWalReceiverReply
      waitOnRecoveryLatch timeout=2002ms
    > wakeup now=10001
      pollWalReceiver
    > walReceiver starting flushed=0/3000000 tli=1 now=10002
      shutdownWalReceiver
      log DEBUG2 "switched WAL source from stream to archive after failure"
      readFromPgWal 000000010000000000000003
    `));
  });

  it('not in standby mode: the end of the archive and pg_wal/ ends recovery', () => {
    const archiveRecovery = initialWalSourceState({ ...STANDBY, standbyMode: false, restoreCommandSet: true }, 1, singleTimelineHistory(1));
    expect(play([need('0/3000100', 0), archive(false, 1), pgWal(false, 2)], archiveRecovery).text).toBe(golden(`
    > need 0/3000100 record=0/3000100 replay=0/3000100 now=0
      restoreFromArchive 000000010000000000000003
    > archiveResult missing now=1
      readFromPgWal 000000010000000000000003
    > pgWalResult missing now=2
      endOfWal not_in_standby_mode
    `));
    const crashRecovery = initialWalSourceState({ ...STANDBY, standbyMode: false, inArchiveRecovery: false, restoreCommandSet: true }, 1, singleTimelineHistory(1));
    expect(play([need('0/3000100', 0), pgWal(false, 1)], crashRecovery).text).toBe(golden(`
    > need 0/3000100 record=0/3000100 replay=0/3000100 now=0
      readFromPgWal 000000010000000000000003
    > pgWalResult missing now=1
      endOfWal not_in_standby_mode
    `));
  });

  it('a changed primary_conninfo restarts the walreceiver', () => {
    const { text } = play([
      need('0/3000100', 0, '0/3000028'),
      pgWal(false, 1),
      receiver('streaming', '0/3002000', 2, 1),
      { type: 'walReceiverRestart' },
      { type: 'reconfigure', config: { primaryConninfo: 'host=10.0.0.2 port=5433', primarySlotName: null } },
      need('0/3003000', 10, '0/3002F00'),
      rescan(1, 11),
      receiver('starting', '0/3000000', 12, 11),
    ]);
    expect(text).toBe(golden(`
    > need 0/3000100 record=0/3000028 replay=0/3000028 now=0
      readFromPgWal 000000010000000000000003
    > pgWalResult missing now=1
      log DEBUG2 "switched WAL source from archive to stream after failure"
      requestXLogStreaming start=0/3000000 tli=1 slot=s1
      pollWalReceiver
    > walReceiver streaming flushed=0/3002000 tli=1 now=2
      walAvailable stream seg=3 tli=1 flushed=0/3002000
    > walReceiverRestart
    > reconfigure {"primaryConninfo":"host=10.0.0.2 port=5433","primarySlotName":null}
    > need 0/3003000 record=0/3002F00 replay=0/3002F00 now=10
      shutdownWalReceiver
      rescanLatestTimeLine current=1
    > rescanResult newest=1 now=11
      requestXLogStreaming start=0/3000000 tli=1 slot=-
      pollWalReceiver
    > walReceiver starting flushed=0/3000000 tli=1 now=12
      forceWalReceiverReply
      waitOnRecoveryLatch timeout=5000ms
    `));
  });

  it('looks for a segment only on timelines of the history that may hold it, newest first', () => {
    // Timeline 3 began in segment 7, timeline 2 in segment 5: segment 6 is on 2 or 1, never 3.
    const tli3 = parseTimeLineHistory('1\t0/5000060\ta\n\n2\t0/7000060\tb\n', 3);
    const state = initialWalSourceState({ ...STANDBY, restoreCommandSet: true }, 3, tli3);
    expect(play([need('0/6000100', 0, '0/6000028'), archive(false, 1), pgWal(false, 2), archive(false, 3), pgWal(false, 4)], state).text).toBe(golden(`
    > need 0/6000100 record=0/6000028 replay=0/6000028 now=0
      restoreFromArchive 000000020000000000000006
    > archiveResult missing now=1
      readFromPgWal 000000020000000000000006
    > pgWalResult missing now=2
      restoreFromArchive 000000010000000000000006
    > archiveResult missing now=3
      readFromPgWal 000000010000000000000006
    > pgWalResult missing now=4
      log DEBUG2 "switched WAL source from archive to stream after failure"
      requestXLogStreaming start=0/6000000 tli=2 slot=s1
      pollWalReceiver
    `));
  });
});

describe('WAL-source protocol', () => {
  it('refuses a result that was not asked for', () => {
    const { state } = play([need('0/3000100', 0)]);
    expect(() => stepWalSource(state, archive(true, 1))).toThrow(AssertionFailure);
    expect(() => stepWalSource(state, need('0/3000100', 1))).toThrow(AssertionFailure);
  });

  it('never changes the state it was given', () => {
    const start = initialWalSourceState(STANDBY, 1, singleTimelineHistory(1));
    const snapshot = JSON.stringify(start);
    stepWalSource(start, need('0/3000100', 0));
    expect(JSON.stringify(start)).toBe(snapshot);
  });

  it('ends every driving step with a terminal action or exactly one awaited result', () => {
    const awaiting = new Set(['restoreFromArchive', 'readFromPgWal', 'pollWalReceiver', 'waitOnRecoveryLatch', 'retryAfter', 'rescanLatestTimeLine']);
    const terminal = new Set(['walAvailable', 'endOfWal']);
    let state = initialWalSourceState({ ...STANDBY, restoreCommandSet: true }, 1, singleTimelineHistory(1));
    const events = [need('0/3000100', 0), archive(false, 1), pgWal(false, 2), receiver('stopped', '0/0', 3), rescan(1, 4), archive(false, 5), pgWal(false, 6), receiver('stopped', '0/0', 7), rescan(1, 8), wakeup(5_004)];
    for (const event of events) {
      const { state: next, actions } = stepWalSource(state, event);
      const kinds = actions.map((action) => action.type);
      const last = kinds[kinds.length - 1]!;
      expect(awaiting.has(last) || terminal.has(last)).toBe(true);
      expect(kinds.slice(0, -1).some((kind) => awaiting.has(kind) || terminal.has(kind))).toBe(false);
      state = next;
    }
  });

  it('walReceiverStreaming: STREAMING, RESTARTING and a fresh STARTING stream; WAITING and STOPPED do not', () => {
    expect(walReceiverStreaming('streaming', 0, 99_999)).toBe(true);
    expect(walReceiverStreaming('restarting', 0, 99_999)).toBe(true);
    expect(walReceiverStreaming('starting', 1_000, 1_000 + WAL_RECEIVER_STARTUP_TIMEOUT_MS)).toBe(true);
    expect(walReceiverStreaming('starting', 1_000, 1_001 + WAL_RECEIVER_STARTUP_TIMEOUT_MS)).toBe(false);
    expect(walReceiverStreaming('waiting', 0, 1)).toBe(false);
    expect(walReceiverStreaming('stopped', 0, 1)).toBe(false);
    expect(walReceiverStreaming('stopping', 0, 1)).toBe(false);
  });
});
