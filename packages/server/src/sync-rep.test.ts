import { afterEach, describe, expect, it, vi } from 'vitest';
import { WalshipError, type Lsn } from '@walship/engine';
import type { WalSenderState } from '@walship/replication';
import { SyncRep, type SyncRepWalSender } from './sync-rep.js';
import { LsnWaiters, type StandbyPositions } from './wait-lsn.js';

const L = (n: number): Lsn => n as Lsn;

function walSender(applicationName: string, state: WalSenderState = 'streaming', flush = 0): SyncRepWalSender {
  return { applicationName, state, write: L(flush), flush: L(flush), apply: L(flush), priority: 0, announced: false };
}

function setup(names: string[]) {
  const log: string[] = [];
  const senders = names.map((name) => walSender(name));
  const syncRep = new SyncRep({
    log: (level, message) => log.push(`${level}: ${message}`),
    walSenders: () => senders,
    setPriorities: (priorityOf) => {
      for (const sender of senders) sender.priority = priorityOf(sender.applicationName);
    },
  });
  const report = (name: string, position: number): void => {
    const sender = senders.find((s) => s.applicationName === name)!;
    Object.assign(sender, { write: L(position), flush: L(position), apply: L(position) });
    syncRep.release();
  };
  return { log, senders, syncRep, report };
}

/** Whether a promise settled within a few turns of the event loop. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => { done = true; }, () => { done = true; });
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  return done;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('SyncRep', () => {
  it('gives priorities on configure, releases a commit when the synchronous standby reports it, and logs the takeover once', async () => {
    const { log, senders, syncRep, report } = setup(['s2', 's1', 's3']);
    syncRep.configure('FIRST 1 (s1, s2)');
    expect(senders.map((s) => s.priority)).toEqual([2, 1, 0]);
    // A standby counts once it has reported a flush position.
    report('s1', 50);
    const commit = syncRep.wait(L(100), 'on');
    report('s2', 200);
    report('s3', 200);
    expect(await settled(commit)).toBe(false);
    expect(syncRep.stats().count).toBe(1);
    report('s1', 100);
    await commit;
    expect(syncRep.stats()).toMatchObject({ count: 0, oldestMs: 0 });
    report('s1', 150);
    expect(log.filter((line) => line.includes('is now a synchronous standby'))).toEqual(['LOG: standby "s1" is now a synchronous standby with priority 1']);
    syncRep.close();
  });

  it('waits per level: remote_apply for the apply position, local not at all', async () => {
    const { senders, syncRep } = setup(['s1']);
    syncRep.configure('s1');
    await syncRep.wait(L(100), 'local');
    const apply = syncRep.wait(L(100), 'remote_apply');
    Object.assign(senders[0]!, { write: L(100), flush: L(100) });
    syncRep.release();
    expect(await settled(apply)).toBe(false);
    Object.assign(senders[0]!, { apply: L(100) });
    syncRep.release();
    await apply;
    syncRep.close();
  });

  it('ends a wait at its deadline or when its session ends, with the indeterminate error carrying the LSN', async () => {
    const { log, syncRep } = setup(['s1']);
    syncRep.configure('FIRST 1 (s1)');
    const timedOut = syncRep.wait(L(0x3000060), 'on', { deadlineMs: Date.now() + 20 }).catch((error: unknown) => error);
    const failure = (await timedOut) as WalshipError;
    expect(failure).toBeInstanceOf(WalshipError);
    expect(failure).toMatchObject({ code: 'indeterminate', lsn: 0x3000060, message: 'canceling wait for synchronous replication due to user request' });
    expect(failure.detail).toBe('The transaction has already committed locally at 0/3000060, but might not have been replicated to the standby.');
    expect(log).toContain('WARNING: canceling wait for synchronous replication due to user request');

    const session = new AbortController();
    const ended = syncRep.wait(L(200), 'on', { signal: session.signal }).catch((error: unknown) => error);
    session.abort('shutdown');
    expect(((await ended) as WalshipError).message).toBe('canceling the wait for synchronous replication and terminating connection due to administrator command');
    const gone = new AbortController();
    gone.abort('client');
    expect(((await syncRep.wait(L(300), 'on', { signal: gone.signal }).catch((error: unknown) => error)) as WalshipError).code).toBe('indeterminate');
    expect(syncRep.stats().count).toBe(0);
    syncRep.close();
  });

  it('releases every waiter when the setting is cleared, and moves to the new rule on reload', async () => {
    const { log, senders, syncRep, report } = setup(['s1', 's2']);
    syncRep.configure('FIRST 1 (s1)');
    const waiting = syncRep.wait(L(100), 'on');
    report('s2', 100);
    expect(await settled(waiting)).toBe(false);
    syncRep.configure('FIRST 1 (s2)');
    expect(senders.map((s) => s.priority)).toEqual([0, 1]);
    await waiting;
    const again = syncRep.wait(L(200), 'on');
    syncRep.configure('');
    await again;
    expect(log).toContain('LOG: synchronous replication is off: synchronous_standby_names is empty');
    expect(log).toContain('LOG: released 1 commit waiting for synchronous replication');
    await syncRep.wait(L(300), 'on');
    syncRep.close();
  });

  it('keeps the rule in force when a value does not parse, and cancels waits when closed', async () => {
    const { log, syncRep } = setup(['s1']);
    syncRep.configure('ANY 1 (s1)');
    syncRep.configure('ANY 0 (s1)');
    expect(syncRep.rule).toMatchObject({ method: 'quorum', numSync: 1 });
    expect(log.some((line) => line.includes('keeping "ANY 1 (s1)"'))).toBe(true);
    const waiting = syncRep.wait(L(100), 'on').catch((error: unknown) => error);
    syncRep.close();
    expect(((await waiting) as WalshipError).code).toBe('indeterminate');
    await syncRep.wait(L(200), 'on');
  });

  it('logs a stall once past a second, with what would end it, and says when it is over', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'performance'] });
    const { log, syncRep, report } = setup(['s1', 's2']);
    syncRep.configure('FIRST 2 (s1, s2)');
    const waiting = syncRep.wait(L(100), 'on');
    vi.advanceTimersByTime(500);
    expect(log.some((line) => line.startsWith('WARNING'))).toBe(false);
    vi.advanceTimersByTime(1_000);
    expect(log).toContain('WARNING: 1 commit is waiting for synchronous replication, the oldest for 1.0 s');
    expect(log).toContain('DETAIL: synchronous_standby_names is "FIRST 2 (s1, s2)": 2 must confirm; 2 listed standbys are connected, 0 streaming.');
    vi.advanceTimersByTime(5_000);
    expect(log.filter((line) => line.startsWith('WARNING'))).toHaveLength(1);
    vi.advanceTimersByTime(5_000);
    expect(log.filter((line) => line.startsWith('WARNING'))).toHaveLength(2);
    report('s1', 100);
    report('s2', 100);
    await waiting;
    expect(log.at(-1)).toBe('LOG: no commits are waiting for synchronous replication any more');
    syncRep.close();
  });
});

describe('LsnWaiters (WAIT FOR LSN)', () => {
  function waiters(initial: StandbyPositions | null) {
    const state: { standby: StandbyPositions | null; primaryFlush: Lsn | null } = { standby: initial, primaryFlush: null };
    return { state, lsnWaiters: new LsnWaiters({ standbyPositions: () => state.standby, primaryFlush: () => state.primaryFlush }) };
  }

  it('ends each mode\'s wait when that position passes the target, on a wake-up', async () => {
    const { state, lsnWaiters } = waiters({ write: L(10), flush: L(10), replay: L(10) });
    const write = lsnWaiters.waitFor(L(50), 'standby_write', undefined);
    const flush = lsnWaiters.waitFor(L(50), 'standby_flush', undefined);
    const replay = lsnWaiters.waitFor(L(50), 'standby_replay', undefined);
    state.standby = { write: L(60), flush: L(40), replay: L(10) };
    lsnWaiters.wakeup();
    expect(await write).toEqual({ status: 'success', lsn: 60 });
    expect(await settled(flush)).toBe(false);
    state.standby = { write: L(60), flush: L(60), replay: L(55) };
    lsnWaiters.wakeup();
    expect(await flush).toEqual({ status: 'success', lsn: 60 });
    expect(await replay).toEqual({ status: 'success', lsn: 55 });
    expect(await lsnWaiters.waitFor(L(5), 'standby_replay', 0)).toEqual({ status: 'success', lsn: 55 });
  });

  it('times out with the position reached, in PostgreSQL\'s words', async () => {
    const { lsnWaiters } = waiters({ write: L(10), flush: L(10), replay: L(10) });
    const outcome = await lsnWaiters.waitFor(L(0x100000000), 'standby_flush', 10);
    expect(outcome).toEqual({ status: 'timeout', lsn: 10 });
    expect(LsnWaiters.outcomeError(L(0x100000000), 'standby_flush', outcome, false).message)
      .toBe('timed out while waiting for target LSN 1/0 to be flushed; current flush LSN 0/A');
  });

  it('answers "not in recovery" on a primary, and after a promotion unless the target was reached first', async () => {
    const { state, lsnWaiters } = waiters(null);
    expect(await lsnWaiters.waitFor(L(1), 'standby_replay', undefined)).toMatchObject({ status: 'not in recovery' });
    expect(LsnWaiters.outcomeError(L(1), 'standby_replay', { status: 'not in recovery', lsn: L(0) }, false).hint)
      .toBe('Waiting for the replay LSN can only be executed during recovery.');
    state.standby = { write: L(100), flush: L(100), replay: L(100) };
    lsnWaiters.wakeup();
    const beyond = lsnWaiters.waitFor(L(500), 'standby_replay', undefined);
    state.standby = null;
    state.primaryFlush = L(600);
    lsnWaiters.wakeup();
    expect(await beyond).toEqual({ status: 'not in recovery', lsn: 100 });
    expect(await lsnWaiters.waitFor(L(90), 'standby_replay', undefined)).toEqual({ status: 'success', lsn: 100 });
    expect(LsnWaiters.outcomeError(L(500), 'standby_replay', { status: 'not in recovery', lsn: L(100) }, true).detail)
      .toBe('Recovery ended before target LSN 0/1F4 was replayed; last replay LSN 0/64.');
    expect(await lsnWaiters.waitFor(L(0), 'primary_flush', undefined)).toEqual({ status: 'success', lsn: 600 });
  });
});
