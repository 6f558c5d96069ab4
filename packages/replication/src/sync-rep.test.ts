/**
 * Tests of the release rule and the wait queues. Three kinds:
 * - unit tests of each function against syncrep.c and pg_stat_get_wal_senders;
 * - scenario scripts: a primary's walsenders connect, stream, reply, disconnect, commits wait and
 *   the setting is reloaded; the expected output is every command (`>`) followed by what changed,
 *   one per line. To add one, write the commands, check each line that comes out against
 *   syncrep.c by hand, and only then paste it in;
 * - property tests over many random standby sets, seeded so that a failure can be replayed.
 */
import { AssertionFailure } from '@walship/engine/errors';
import { formatLsn, parseLsn, type Lsn } from '@walship/engine/lsn';
import type { SyncCommitLevel } from '@walship/engine/types';
import { describe, expect, it } from 'vitest';
import { formatSyncRepConfig, parseSynchronousStandbyNames, type SyncRepConfig } from './sync-rep-config.js';
import {
  standbyPriority, syncRepGetCandidateStandbys, syncRepGetSyncRecPtr, syncRepReleaseWaiters, syncRepWaitMode, syncStateOf,
  SyncRepQueues, SYNC_REP_WAIT_MODES,
  type SyncRepPositions, type SyncRepStandby, type SyncRepWaiter, type SyncRepWaitMode,
} from './sync-rep.js';
import type { WalSenderState } from './walsender.js';

const L = (text: string): Lsn => parseLsn(text)!;
const at = (n: number): Lsn => n as Lsn;
const config = (text: string): SyncRepConfig => parseSynchronousStandbyNames(text)!;

function standby(
  applicationName: string,
  priority: number,
  [write, flush, apply]: [number, number, number],
  state: WalSenderState = 'streaming',
): SyncRepStandby {
  return { applicationName, priority, state, write: at(write), flush: at(flush), apply: at(apply) };
}

const positions = (write: number, flush: number, apply: number): SyncRepPositions => ({ write: at(write), flush: at(flush), apply: at(apply) });

/** A seeded generator (mulberry32), so that a failing case can be replayed. */
function random(seed: number): { next: () => number; int: (below: number) => number; pick: <T>(items: readonly T[]) => T } {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (below: number): number => Math.floor(next() * below);
  return { next, int, pick: (items) => items[int(items.length)]! };
}

// ---------------------------------------------------------------------------------------------
// Priorities
// ---------------------------------------------------------------------------------------------

describe('standbyPriority', () => {
  it('FIRST: the 1-based position in the list; 0 when unlisted', () => {
    const first = config('FIRST 1 (s1, s2, s3)');
    expect(['s1', 's2', 's3', 's4'].map((name) => standbyPriority(first, name))).toEqual([1, 2, 3, 0]);
  });

  it('the plain list and n (list) forms are FIRST', () => {
    expect(standbyPriority(config('s1, s2'), 's2')).toBe(2);
    expect(standbyPriority(config('2 (s1, s2, s3)'), 's3')).toBe(3);
  });

  it('ANY: 1 for every listed standby', () => {
    const quorum = config('ANY 2 (s1, s2, s3)');
    expect(['s1', 's2', 's3', 's4'].map((name) => standbyPriority(quorum, name))).toEqual([1, 1, 1, 0]);
  });

  it('* matches every name, at its own position', () => {
    expect(standbyPriority(config('*'), 'anything')).toBe(1);
    expect(standbyPriority(config('*'), '')).toBe(1);
    const mixed = config('FIRST 1 (s1, *, s3)');
    expect(['s1', 'other', 's3'].map((name) => standbyPriority(mixed, name))).toEqual([1, 2, 2]);
    expect(standbyPriority(config('ANY 1 (s1, *)'), 'x')).toBe(1);
  });

  it('compares names as pg_strcasecmp: ASCII letters in any case, quoted or not', () => {
    expect(standbyPriority(config('FIRST 1 (S1, s2)'), 's1')).toBe(1);
    expect(standbyPriority(config('FIRST 1 (s1, s2)'), 'S2')).toBe(2);
    expect(standbyPriority(config('FIRST 1 ("My Standby")'), 'my standby')).toBe(1);
    expect(standbyPriority(config('FIRST 1 ("My Standby")'), 'MyStandby')).toBe(0);
    // Only ASCII folds (in the C locale PostgreSQL folds nothing else either).
    expect(standbyPriority(config('FIRST 1 (Étoile)'), 'étoile')).toBe(0);
    expect(standbyPriority(config('FIRST 1 (Étoile)'), 'Étoile')).toBe(1);
  });

  it('a name listed twice gets its first position', () => {
    expect(standbyPriority(config('FIRST 2 (s1, s2, s1)'), 's1')).toBe(1);
  });

  it('a quoted empty name matches an empty application_name', () => {
    expect(standbyPriority(config('FIRST 1 (s1, "")'), '')).toBe(2);
    expect(standbyPriority(config('FIRST 1 (s1)'), '')).toBe(0);
  });

  it('is 0 when synchronous replication is off, and for a cascading walsender', () => {
    expect(standbyPriority(null, 's1')).toBe(0);
    expect(standbyPriority(config('FIRST 1 (s1)'), 's1', { cascading: true })).toBe(0);
    expect(standbyPriority(config('*'), 's1', { cascading: true })).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// The release rule
// ---------------------------------------------------------------------------------------------

describe('syncRepGetSyncRecPtr and syncRepGetCandidateStandbys: FIRST', () => {
  const rule = config('FIRST 2 (s1, s2, s3)');

  it('the n streaming standbys of highest priority decide; the result is their minimum per level', () => {
    const standbys = [standby('s3', 3, [900, 900, 900]), standby('s2', 2, [500, 400, 100]), standby('s1', 1, [300, 350, 200])];
    expect(syncRepGetCandidateStandbys(rule, standbys)).toEqual([2, 1]);
    // Each level's minimum can come from a different standby.
    expect(syncRepGetSyncRecPtr(rule, standbys)).toEqual(positions(300, 350, 100));
  });

  it('null with fewer than n candidates, however far the one has got', () => {
    expect(syncRepGetSyncRecPtr(rule, [standby('s1', 1, [900, 900, 900])])).toBeNull();
    expect(syncRepGetSyncRecPtr(rule, [])).toBeNull();
  });

  it('only streaming or stopping walsenders with a flush position and a priority are candidates', () => {
    const standbys = [
      standby('s1', 1, [100, 100, 100], 'catchup'),
      standby('s1', 1, [100, 100, 100], 'startup'),
      standby('s2', 2, [200, 0, 0]), // no flush position yet
      standby('async', 0, [999, 999, 999]),
      standby('s3', 3, [300, 300, 300], 'stopping'),
      standby('s2', 2, [400, 400, 400]),
    ];
    expect(syncRepGetCandidateStandbys(rule, standbys)).toEqual([4, 5]);
    expect(syncRepGetSyncRecPtr(rule, standbys)).toEqual(positions(300, 300, 300));
  });

  it('with more candidates than n: sorted by priority, ties by walsender order', () => {
    const star = config('FIRST 2 (*)');
    const standbys = [standby('c', 1, [10, 10, 10]), standby('a', 1, [30, 30, 30]), standby('b', 1, [20, 20, 20])];
    expect(syncRepGetCandidateStandbys(star, standbys)).toEqual([0, 1]);
    expect(syncRepGetSyncRecPtr(star, standbys)).toEqual(positions(10, 10, 10));
  });

  it('a lagging higher-priority standby holds the release back; a faster lower-priority one does not help', () => {
    const one = config('FIRST 1 (s1, s2)');
    const standbys = [standby('s2', 2, [900, 900, 900]), standby('s1', 1, [100, 100, 50])];
    expect(syncRepGetSyncRecPtr(one, standbys)).toEqual(positions(100, 100, 50));
  });

  it('an apply position of 0 holds apply back (PostgreSQL would skip it unless it came last)', () => {
    const standbys = [standby('s1', 1, [100, 100, 0]), standby('s2', 2, [200, 200, 150])];
    expect(syncRepGetSyncRecPtr(rule, standbys)).toEqual(positions(100, 100, 0));
  });

  it('null when synchronous replication is off', () => {
    expect(syncRepGetSyncRecPtr(null, [standby('s1', 1, [1, 1, 1])])).toBeNull();
    expect(syncRepGetCandidateStandbys(null, [standby('s1', 1, [1, 1, 1])])).toEqual([]);
  });
});

describe('syncRepGetSyncRecPtr and syncRepGetCandidateStandbys: ANY', () => {
  const rule = config('ANY 2 (s1, s2, s3)');

  it('the n-th highest position per level among all candidates', () => {
    const standbys = [standby('s1', 1, [100, 100, 300]), standby('s2', 1, [300, 200, 100]), standby('s3', 1, [200, 300, 200])];
    expect(syncRepGetCandidateStandbys(rule, standbys)).toEqual([0, 1, 2]);
    expect(syncRepGetSyncRecPtr(rule, standbys)).toEqual(positions(200, 200, 200));
  });

  it('ANY 1 is the highest; ANY n of n is the lowest', () => {
    const standbys = [standby('s1', 1, [100, 90, 80]), standby('s2', 1, [300, 290, 280]), standby('s3', 1, [200, 190, 180])];
    expect(syncRepGetSyncRecPtr(config('ANY 1 (s1, s2, s3)'), standbys)).toEqual(positions(300, 290, 280));
    expect(syncRepGetSyncRecPtr(config('ANY 3 (s1, s2, s3)'), standbys)).toEqual(positions(100, 90, 80));
  });

  it('equal positions count once each', () => {
    const standbys = [standby('s1', 1, [200, 200, 200]), standby('s2', 1, [200, 200, 200]), standby('s3', 1, [100, 100, 100])];
    expect(syncRepGetSyncRecPtr(rule, standbys)).toEqual(positions(200, 200, 200));
  });

  it('null with fewer than n candidates; an unlisted or catching-up standby does not count', () => {
    expect(syncRepGetSyncRecPtr(rule, [
      standby('s1', 1, [100, 100, 100]),
      standby('s2', 1, [500, 500, 500], 'catchup'),
      standby('x', 0, [500, 500, 500]),
    ])).toBeNull();
  });

  it('two walsenders with the same name both count', () => {
    const standbys = [standby('s1', 1, [100, 100, 100]), standby('s1', 1, [200, 200, 200])];
    expect(syncRepGetSyncRecPtr(config('ANY 2 (s1)'), standbys)).toEqual(positions(100, 100, 100));
  });
});

describe('syncStateOf', () => {
  it('FIRST: sync for the chosen ones, potential for the other listed ones, async for the rest', () => {
    const rule = config('FIRST 1 (s1, s2)');
    const standbys = [standby('s2', 2, [1, 1, 1]), standby('s1', 1, [1, 1, 1]), standby('x', 0, [1, 1, 1])];
    expect(syncStateOf(rule, standbys)).toEqual(['potential', 'sync', 'async']);
  });

  it('FIRST: a listed standby not streaming yet is potential, and the next one is sync meanwhile', () => {
    const rule = config('FIRST 1 (s1, s2)');
    const standbys = [standby('s1', 1, [1, 1, 1], 'catchup'), standby('s2', 2, [1, 1, 1])];
    expect(syncStateOf(rule, standbys)).toEqual(['potential', 'sync']);
  });

  it('FIRST: with fewer candidates than n, those there are show sync (as pg_stat_replication does)', () => {
    expect(syncStateOf(config('FIRST 2 (s1, s2)'), [standby('s2', 2, [1, 1, 1])])).toEqual(['sync']);
  });

  it('ANY: quorum for every candidate, potential for a listed one not streaming or without a flush position', () => {
    const rule = config('ANY 2 (s1, s2, s3, s4)');
    const standbys = [
      standby('s1', 1, [1, 1, 1]),
      standby('s2', 1, [1, 1, 1], 'catchup'),
      standby('s3', 1, [5, 0, 0]),
      standby('s4', 1, [1, 1, 1], 'stopping'),
      standby('s5', 0, [1, 1, 1]),
    ];
    expect(syncStateOf(rule, standbys)).toEqual(['quorum', 'potential', 'potential', 'quorum', 'async']);
  });

  it('everything is async when synchronous replication is off', () => {
    expect(syncStateOf(null, [standby('s1', 0, [1, 1, 1])])).toEqual(['async']);
  });
});

describe('syncRepWaitMode', () => {
  it('maps synchronous_commit to the queue a commit waits in', () => {
    const levels: SyncCommitLevel[] = ['off', 'local', 'remote_write', 'on', 'remote_apply'];
    expect(levels.map((level) => syncRepWaitMode(level))).toEqual([null, null, 'write', 'flush', 'apply']);
  });

  it('caps a record that is not a commit at flush', () => {
    expect(syncRepWaitMode('remote_apply', false)).toBe('flush');
    expect(syncRepWaitMode('on', false)).toBe('flush');
    expect(syncRepWaitMode('remote_write', false)).toBe('write');
    expect(syncRepWaitMode('local', false)).toBeNull();
  });
});

// ---------------------------------------------------------------------------------------------
// Wait queues
// ---------------------------------------------------------------------------------------------

function newQueues(defined = true): { queues: SyncRepQueues; clock: { nowMs: number } } {
  const clock = { nowMs: 1_000 };
  return { queues: new SyncRepQueues({ now: () => clock.nowMs, syncStandbysDefined: defined }), clock };
}

const lsns = (waiters: readonly SyncRepWaiter[]): number[] => waiters.map((waiter) => waiter.lsn);

describe('SyncRepQueues', () => {
  it('keeps each queue in LSN order whatever order commits arrive in', () => {
    const { queues } = newQueues();
    for (const lsn of [300, 100, 200, 500, 400, 200]) queues.enqueue('flush', at(lsn));
    expect(lsns(queues.waiting('flush'))).toEqual([100, 200, 200, 300, 400, 500]);
    expect(queues.waiting('write')).toEqual([]);
  });

  it('release wakes the waiters at or below the confirmed position, in LSN order, and leaves the rest', async () => {
    const { queues } = newQueues();
    const waiters = [300, 100, 200, 400].map((lsn) => queues.enqueue('flush', at(lsn)));
    const released = queues.release(positions(0, 300, 0));
    expect(lsns(released)).toEqual([100, 200, 300]);
    expect(waiters.map((waiter) => waiter.state)).toEqual(['released', 'released', 'released', 'waiting']);
    expect(await waiters[0]!.done).toBe('released');
    expect(lsns(queues.waiting('flush'))).toEqual([400]);
    expect(queues.confirmedPositions).toEqual(positions(0, 300, 0));
  });

  it('each level is released by its own position', () => {
    const { queues } = newQueues();
    const write = queues.enqueue('write', at(100));
    const flush = queues.enqueue('flush', at(100));
    const apply = queues.enqueue('apply', at(100));
    expect(queues.release(positions(150, 100, 99))).toEqual([write, flush]);
    expect(apply.state).toBe('waiting');
    expect(queues.release(positions(150, 100, 100))).toEqual([apply]);
  });

  it('never lowers a confirmed position', () => {
    const { queues } = newQueues();
    queues.release(positions(500, 400, 300));
    expect(queues.release(positions(100, 100, 100))).toEqual([]);
    expect(queues.confirmedPositions).toEqual(positions(500, 400, 300));
    // And a commit at or below what was confirmed does not wait.
    expect(queues.enqueue('flush', at(400)).state).toBe('released');
    expect(queues.enqueue('flush', at(401)).state).toBe('waiting');
  });

  it('a commit whose LSN is already confirmed comes back released and is never queued', async () => {
    const { queues } = newQueues();
    queues.release(positions(0, 200, 0));
    const waiter = queues.enqueue('flush', at(200));
    expect(waiter.state).toBe('released');
    expect(await waiter.done).toBe('released');
    expect(queues.stats().count).toBe(0);
  });

  it('does not wait while synchronous_standby_names is empty', () => {
    const { queues } = newQueues(false);
    expect(queues.syncStandbysDefined).toBe(false);
    expect(queues.enqueue('apply', at(10)).state).toBe('released');
    expect(queues.stats().count).toBe(0);
  });

  it('syncRepWaitForLsn: no waiter for off and local, the level\'s queue otherwise', () => {
    const { queues } = newQueues();
    expect(queues.syncRepWaitForLsn('off', at(100))).toBeNull();
    expect(queues.syncRepWaitForLsn('local', at(100))).toBeNull();
    expect(queues.syncRepWaitForLsn('remote_write', at(100))!.mode).toBe('write');
    expect(queues.syncRepWaitForLsn('on', at(100))!.mode).toBe('flush');
    expect(queues.syncRepWaitForLsn('remote_apply', at(100))!.mode).toBe('apply');
    expect(queues.syncRepWaitForLsn('remote_apply', at(100), false)!.mode).toBe('flush');
    expect(queues.stats().byMode).toEqual({ write: 1, flush: 2, apply: 1 });
  });

  it('cancel takes a waiter out of its queue; it is not released later', async () => {
    const { queues } = newQueues();
    const a = queues.enqueue('flush', at(100));
    const b = queues.enqueue('flush', at(200));
    const c = queues.enqueue('flush', at(300));
    expect(queues.cancel(b)).toBe(true);
    expect(b.state).toBe('cancelled');
    expect(await b.done).toBe('cancelled');
    expect(lsns(queues.waiting('flush'))).toEqual([100, 300]);
    expect(queues.release(positions(0, 300, 0))).toEqual([a, c]);
    expect(b.state).toBe('cancelled');
  });

  it('cancel of a waiter that is no longer waiting is a no-op', () => {
    const { queues } = newQueues();
    const a = queues.enqueue('flush', at(100));
    queues.release(positions(0, 100, 0));
    expect(queues.cancel(a)).toBe(false);
    expect(a.state).toBe('released');
    const b = queues.enqueue('write', at(500));
    expect(queues.cancel(b)).toBe(true);
    expect(queues.cancel(b)).toBe(false);
  });

  it('cancel of another primary\'s waiter is a programmer error', () => {
    const { queues } = newQueues();
    const other = newQueues().queues.enqueue('flush', at(100));
    expect(() => queues.cancel(other)).toThrow(AssertionFailure);
  });

  it('releaseAll wakes every level without raising the confirmed positions', () => {
    const { queues } = newQueues();
    queues.enqueue('apply', at(900));
    queues.enqueue('write', at(700));
    queues.enqueue('flush', at(800));
    queues.enqueue('write', at(600));
    const released = queues.releaseAll();
    expect(released.map((waiter) => `${waiter.mode}@${waiter.lsn}`)).toEqual(['write@600', 'write@700', 'flush@800', 'apply@900']);
    expect(queues.stats()).toEqual({ count: 0, oldestMs: null, byMode: { write: 0, flush: 0, apply: 0 } });
    expect(queues.confirmedPositions).toEqual(positions(0, 0, 0));
  });

  it('clearing synchronous_standby_names wakes everyone and stops new waits; setting it again waits again', () => {
    const { queues } = newQueues();
    const waiter = queues.enqueue('flush', at(100));
    expect(queues.setSyncStandbysDefined(true)).toEqual([]);
    expect(waiter.state).toBe('waiting');
    expect(queues.setSyncStandbysDefined(false)).toEqual([waiter]);
    expect(waiter.state).toBe('released');
    expect(queues.enqueue('flush', at(200)).state).toBe('released');
    expect(queues.setSyncStandbysDefined(false)).toEqual([]);
    queues.setSyncStandbysDefined(true);
    expect(queues.enqueue('flush', at(300)).state).toBe('waiting');
  });

  it('stats: how many wait and for how long the oldest has, on the injected clock', () => {
    const { queues, clock } = newQueues();
    expect(queues.stats()).toEqual({ count: 0, oldestMs: null, byMode: { write: 0, flush: 0, apply: 0 } });
    queues.enqueue('flush', at(500));
    clock.nowMs += 250;
    // Younger, but sorted ahead of the first: age is not queue order.
    const young = queues.enqueue('flush', at(100));
    queues.enqueue('apply', at(900));
    clock.nowMs += 100;
    expect(queues.stats()).toEqual({ count: 3, oldestMs: 350, byMode: { write: 0, flush: 2, apply: 1 } });
    queues.release(positions(0, 500, 0));
    expect(queues.stats()).toEqual({ count: 1, oldestMs: 100, byMode: { write: 0, flush: 0, apply: 1 } });
    expect(young.enqueuedAtMs).toBe(1_250);
    // A clock that went backwards shows 0, not a negative age.
    clock.nowMs = 0;
    expect(queues.stats().oldestMs).toBe(0);
  });

  it('refuses an LSN that is not one', () => {
    const { queues } = newQueues();
    expect(() => queues.enqueue('flush', -1 as Lsn)).toThrow(AssertionFailure);
    expect(() => queues.release({ write: at(0), flush: 0.5 as Lsn, apply: at(0) })).toThrow(AssertionFailure);
  });
});

describe('syncRepReleaseWaiters', () => {
  it('releases what the synchronous standbys confirmed and says who they are', () => {
    const { queues } = newQueues();
    const waiter = queues.enqueue('flush', at(150));
    const rule = config('FIRST 1 (s1, s2)');
    const result = syncRepReleaseWaiters(queues, rule, [standby('s2', 2, [100, 100, 100]), standby('s1', 1, [200, 200, 200])]);
    expect(result).toEqual({ positions: positions(200, 200, 200), syncStandbys: [1], released: [waiter] });
  });

  it('releases nothing when there are not enough standbys', () => {
    const { queues } = newQueues();
    queues.enqueue('flush', at(150));
    const result = syncRepReleaseWaiters(queues, config('ANY 2 (s1, s2)'), [standby('s1', 1, [200, 200, 200])]);
    expect(result).toEqual({ positions: null, syncStandbys: [0], released: [] });
    expect(queues.stats().count).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

interface Walsender {
  label: string;
  applicationName: string;
  state: WalSenderState;
  write: Lsn;
  flush: Lsn;
  apply: Lsn;
  priority: number;
}

/**
 * A primary as the postmaster will drive these functions: walsenders in WalSnd slots (a new one
 * takes the lowest free slot), priorities recomputed on reload, the release recomputed after
 * every event. A walsender's label is its application_name, with an optional `#tag` to tell two
 * walsenders of the same name apart.
 */
class Primary {
  private rule: SyncRepConfig | null = null;
  private readonly slots: Array<Walsender | null> = [];
  private nowMs = 0;
  private readonly queues = new SyncRepQueues({ now: () => this.nowMs, syncStandbysDefined: false });
  private readonly waiters: SyncRepWaiter[] = [];
  private shownStates = '';
  private shownConfirmed = this.confirmed();

  play(script: string): string {
    const out: string[] = [];
    for (const line of golden(script).split('\n')) {
      out.push(`> ${line}`);
      for (const result of this.step(line)) out.push(`  ${result}`);
    }
    return out.join('\n');
  }

  private step(line: string): string[] {
    const [command, ...args] = line.split(' ');
    const out: string[] = [];
    switch (command) {
      case 'set': {
        const text = args.join(' ') === "''" ? '' : args.join(' ');
        this.rule = parseSynchronousStandbyNames(text);
        out.push(`rule ${this.rule === null ? 'off' : formatSyncRepConfig(this.rule)}`);
        for (const walsender of this.live()) walsender.priority = standbyPriority(this.rule, walsender.applicationName);
        const cleared = this.queues.setSyncStandbysDefined(this.rule !== null);
        if (cleared.length > 0) out.push(`released ${listWaiters(cleared)}`);
        break;
      }
      case 'connect': {
        const label = args[0]!;
        let slot = this.slots.indexOf(null);
        if (slot < 0) slot = this.slots.push(null) - 1;
        const applicationName = label.split('#')[0]!;
        const priority = standbyPriority(this.rule, applicationName);
        this.slots[slot] = { label, applicationName, state: 'catchup', write: at(0), flush: at(0), apply: at(0), priority };
        out.push(`slot ${slot} priority ${priority}`);
        break;
      }
      case 'stream':
        this.find(args[0]!).state = 'streaming';
        break;
      case 'stopping':
        this.find(args[0]!).state = 'stopping';
        break;
      case 'reply': {
        const walsender = this.find(args[0]!);
        walsender.write = L(args[1]!);
        walsender.flush = L(args[2]!);
        walsender.apply = L(args[3]!);
        break;
      }
      case 'disconnect':
        this.slots[this.slots.indexOf(this.find(args[0]!))] = null;
        break;
      case 'commit': {
        const waiter = this.queues.syncRepWaitForLsn(args[0] as SyncCommitLevel, L(args[1]!));
        if (waiter === null) out.push('no wait');
        else if (waiter.state === 'released') out.push('returns at once');
        else out.push(`waits ${waiter.mode} ${formatLsn(waiter.lsn)}`);
        if (waiter !== null) this.waiters.push(waiter);
        return out;
      }
      case 'cancel': {
        const waiter = this.waiters.find((candidate) => candidate.state === 'waiting' && candidate.lsn === L(args[0]!))!;
        out.push(this.queues.cancel(waiter) ? `cancelled ${listWaiters([waiter])}` : 'not waiting');
        return out;
      }
      case 'tick':
        this.nowMs += Number(args[0]);
        return out;
      case 'stats': {
        const stats = this.queues.stats();
        out.push(`syncWaiters count=${stats.count} oldestMs=${stats.oldestMs}`);
        return out;
      }
      default:
        throw new Error(`unknown command ${line}`);
    }
    return [...out, ...this.afterChange()];
  }

  /** What the postmaster does after any event: recompute and release, then show what changed. */
  private afterChange(): string[] {
    const out: string[] = [];
    const live = this.live();
    const { released } = syncRepReleaseWaiters(this.queues, this.rule, live);
    if (released.length > 0) out.push(`released ${listWaiters(released)}`);
    const states = syncStateOf(this.rule, live)
      .map((state, index) => `${live[index]!.label}=${state}${live[index]!.priority > 0 ? `/${live[index]!.priority}` : ''}`)
      .join(' ');
    if (states !== this.shownStates) out.push(`states ${states}`);
    this.shownStates = states;
    const confirmed = this.confirmed();
    if (confirmed !== this.shownConfirmed) out.push(`confirmed ${confirmed}`);
    this.shownConfirmed = confirmed;
    return out;
  }

  private confirmed(): string {
    const { write, flush, apply } = this.queues.confirmedPositions;
    return `write=${formatLsn(write)} flush=${formatLsn(flush)} apply=${formatLsn(apply)}`;
  }

  private live(): Walsender[] {
    return this.slots.filter((walsender): walsender is Walsender => walsender !== null);
  }

  private find(label: string): Walsender {
    const walsender = this.live().find((candidate) => candidate.label === label);
    if (walsender === undefined) throw new Error(`no walsender ${label}`);
    return walsender;
  }
}

function listWaiters(waiters: readonly SyncRepWaiter[]): string {
  return waiters.map((waiter) => `${waiter.mode} ${formatLsn(waiter.lsn)}`).join(', ');
}

function golden(text: string): string {
  return text.replace(/^\n/, '').replace(/\n\s*$/, '').split('\n').map((line) => line.replace(/^ {4}/, '')).join('\n');
}

describe('scenarios', () => {
  it('FIRST 1 (s1, s2): s1 decides while it streams, s2 takes over when it goes, s1 takes back when it returns', () => {
    expect(new Primary().play(`
    set FIRST 1 (s1, s2)
    connect s1
    connect s2
    commit on 0/100
    stream s1
    stream s2
    reply s2 0/200 0/200 0/200
    reply s1 0/100 0/80 0/80
    reply s1 0/180 0/100 0/90
    commit remote_apply 0/250
    commit remote_write 0/240
    commit on 0/260
    commit on 0/150
    reply s1 0/250 0/200 0/100
    disconnect s1
    reply s2 0/300 0/300 0/250
    connect s1
    stream s1
    commit on 0/350
    reply s1 0/320 0/320 0/300
    reply s2 0/400 0/400 0/400
    reply s1 0/400 0/400 0/400
    `)).toBe(golden(`
    > set FIRST 1 (s1, s2)
      rule FIRST 1 (s1, s2)
    > connect s1
      slot 0 priority 1
      states s1=potential/1
    > connect s2
      slot 1 priority 2
      states s1=potential/1 s2=potential/2
    > commit on 0/100
      waits flush 0/100
    > stream s1
    > stream s2
    > reply s2 0/200 0/200 0/200
      released flush 0/100
      states s1=potential/1 s2=sync/2
      confirmed write=0/200 flush=0/200 apply=0/200
    > reply s1 0/100 0/80 0/80
      states s1=sync/1 s2=potential/2
    > reply s1 0/180 0/100 0/90
    > commit remote_apply 0/250
      waits apply 0/250
    > commit remote_write 0/240
      waits write 0/240
    > commit on 0/260
      waits flush 0/260
    > commit on 0/150
      returns at once
    > reply s1 0/250 0/200 0/100
      released write 0/240
      confirmed write=0/250 flush=0/200 apply=0/200
    > disconnect s1
      states s2=sync/2
    > reply s2 0/300 0/300 0/250
      released flush 0/260, apply 0/250
      confirmed write=0/300 flush=0/300 apply=0/250
    > connect s1
      slot 0 priority 1
      states s1=potential/1 s2=sync/2
    > stream s1
    > commit on 0/350
      waits flush 0/350
    > reply s1 0/320 0/320 0/300
      states s1=sync/1 s2=potential/2
      confirmed write=0/320 flush=0/320 apply=0/300
    > reply s2 0/400 0/400 0/400
    > reply s1 0/400 0/400 0/400
      released flush 0/350
      confirmed write=0/400 flush=0/400 apply=0/400
    `));
  });

  it('ANY 2 (s1, s2, s3): any two suffice, replies out of order; with one left commits wait; ANY 1 releases them; clearing releases all', () => {
    expect(new Primary().play(`
    set ANY 2 (s1, s2, s3)
    connect s1
    connect s2
    connect s3
    stream s1
    stream s2
    stream s3
    commit on 0/100
    reply s1 0/100 0/100 0/100
    reply s3 0/80 0/60 0/40
    reply s2 0/200 0/150 0/120
    commit on 0/180
    reply s1 0/200 0/200 0/190
    disconnect s2
    disconnect s3
    tick 1500
    stats
    set ANY 1 (s1, s2, s3)
    commit remote_apply 0/300
    stats
    set ''
    commit on 0/400
    `)).toBe(golden(`
    > set ANY 2 (s1, s2, s3)
      rule ANY 2 (s1, s2, s3)
    > connect s1
      slot 0 priority 1
      states s1=potential/1
    > connect s2
      slot 1 priority 1
      states s1=potential/1 s2=potential/1
    > connect s3
      slot 2 priority 1
      states s1=potential/1 s2=potential/1 s3=potential/1
    > stream s1
    > stream s2
    > stream s3
    > commit on 0/100
      waits flush 0/100
    > reply s1 0/100 0/100 0/100
      states s1=quorum/1 s2=potential/1 s3=potential/1
    > reply s3 0/80 0/60 0/40
      states s1=quorum/1 s2=potential/1 s3=quorum/1
      confirmed write=0/80 flush=0/60 apply=0/40
    > reply s2 0/200 0/150 0/120
      released flush 0/100
      states s1=quorum/1 s2=quorum/1 s3=quorum/1
      confirmed write=0/100 flush=0/100 apply=0/100
    > commit on 0/180
      waits flush 0/180
    > reply s1 0/200 0/200 0/190
      confirmed write=0/200 flush=0/150 apply=0/120
    > disconnect s2
      states s1=quorum/1 s3=quorum/1
    > disconnect s3
      states s1=quorum/1
    > tick 1500
    > stats
      syncWaiters count=1 oldestMs=1500
    > set ANY 1 (s1, s2, s3)
      rule ANY 1 (s1, s2, s3)
      released flush 0/180
      confirmed write=0/200 flush=0/200 apply=0/190
    > commit remote_apply 0/300
      waits apply 0/300
    > stats
      syncWaiters count=1 oldestMs=0
    > set ''
      rule off
      released apply 0/300
      states s1=async
    > commit on 0/400
      returns at once
    `));
  });

  it('FIRST 1 (*): ties go to the lower WalSnd slot, and a newcomer can take a freed slot ahead of an older walsender', () => {
    expect(new Primary().play(`
    set FIRST 1 (*)
    connect a
    connect b
    stream a
    stream b
    reply b 0/100 0/100 0/100
    reply a 0/90 0/90 0/90
    disconnect a
    connect c
    stream c
    reply c 0/50 0/50 0/50
    `)).toBe(golden(`
    > set FIRST 1 (*)
      rule FIRST 1 (*)
    > connect a
      slot 0 priority 1
      states a=potential/1
    > connect b
      slot 1 priority 1
      states a=potential/1 b=potential/1
    > stream a
    > stream b
    > reply b 0/100 0/100 0/100
      states a=potential/1 b=sync/1
      confirmed write=0/100 flush=0/100 apply=0/100
    > reply a 0/90 0/90 0/90
      states a=sync/1 b=potential/1
    > disconnect a
      states b=sync/1
    > connect c
      slot 0 priority 1
      states c=potential/1 b=sync/1
    > stream c
    > reply c 0/50 0/50 0/50
      states c=sync/1 b=potential/1
    `));
  });

  it('duplicate names: FIRST 2 (s1, s2, s1) with two walsenders called s1 (one spelled S1) prefers both over s2', () => {
    expect(new Primary().play(`
    set FIRST 2 (s1, s2, s1)
    connect s1#a
    connect s2
    connect S1#b
    stream s1#a
    stream s2
    stream S1#b
    reply s1#a 0/100 0/100 0/100
    reply s2 0/300 0/300 0/300
    reply S1#b 0/200 0/200 0/200
    reply s1#a 0/400 0/400 0/400
    `)).toBe(golden(`
    > set FIRST 2 (s1, s2, s1)
      rule FIRST 2 (s1, s2, s1)
    > connect s1#a
      slot 0 priority 1
      states s1#a=potential/1
    > connect s2
      slot 1 priority 2
      states s1#a=potential/1 s2=potential/2
    > connect S1#b
      slot 2 priority 1
      states s1#a=potential/1 s2=potential/2 S1#b=potential/1
    > stream s1#a
    > stream s2
    > stream S1#b
    > reply s1#a 0/100 0/100 0/100
      states s1#a=sync/1 s2=potential/2 S1#b=potential/1
    > reply s2 0/300 0/300 0/300
      states s1#a=sync/1 s2=sync/2 S1#b=potential/1
      confirmed write=0/100 flush=0/100 apply=0/100
    > reply S1#b 0/200 0/200 0/200
      states s1#a=sync/1 s2=potential/2 S1#b=sync/1
    > reply s1#a 0/400 0/400 0/400
      confirmed write=0/200 flush=0/200 apply=0/200
    `));
  });

  it('the priority list changed at runtime: the new first standby releases at once; a list of absent standbys makes commits wait', () => {
    expect(new Primary().play(`
    set FIRST 1 (s1, s2)
    connect s1
    connect s2
    stream s1
    stream s2
    reply s1 0/100 0/100 0/100
    reply s2 0/300 0/300 0/300
    commit on 0/200
    set FIRST 1 (s2, s1)
    commit on 0/400
    set FIRST 1 (s3)
    connect s3
    stream s3
    reply s3 0/400 0/400 0/400
    `)).toBe(golden(`
    > set FIRST 1 (s1, s2)
      rule FIRST 1 (s1, s2)
    > connect s1
      slot 0 priority 1
      states s1=potential/1
    > connect s2
      slot 1 priority 2
      states s1=potential/1 s2=potential/2
    > stream s1
    > stream s2
    > reply s1 0/100 0/100 0/100
      states s1=sync/1 s2=potential/2
      confirmed write=0/100 flush=0/100 apply=0/100
    > reply s2 0/300 0/300 0/300
    > commit on 0/200
      waits flush 0/200
    > set FIRST 1 (s2, s1)
      rule FIRST 1 (s2, s1)
      released flush 0/200
      states s1=potential/2 s2=sync/1
      confirmed write=0/300 flush=0/300 apply=0/300
    > commit on 0/400
      waits flush 0/400
    > set FIRST 1 (s3)
      rule FIRST 1 (s3)
      states s1=async s2=async
    > connect s3
      slot 2 priority 1
      states s1=async s2=async s3=potential/1
    > stream s3
    > reply s3 0/400 0/400 0/400
      released flush 0/400
      states s1=async s2=async s3=sync/1
      confirmed write=0/400 flush=0/400 apply=0/400
    `));
  });

  it('a stopping walsender still releases; a cancelled commit is not released', () => {
    expect(new Primary().play(`
    set FIRST 1 (s1)
    connect s1
    stream s1
    reply s1 0/100 0/100 0/100
    commit on 0/200
    commit on 0/300
    cancel 0/200
    stopping s1
    reply s1 0/300 0/300 0/300
    `)).toBe(golden(`
    > set FIRST 1 (s1)
      rule FIRST 1 (s1)
    > connect s1
      slot 0 priority 1
      states s1=potential/1
    > stream s1
    > reply s1 0/100 0/100 0/100
      states s1=sync/1
      confirmed write=0/100 flush=0/100 apply=0/100
    > commit on 0/200
      waits flush 0/200
    > commit on 0/300
      waits flush 0/300
    > cancel 0/200
      cancelled flush 0/200
    > stopping s1
    > reply s1 0/300 0/300 0/300
      released flush 0/300
      confirmed write=0/300 flush=0/300 apply=0/300
    `));
  });
});

// ---------------------------------------------------------------------------------------------
// Properties over many random standby sets
// ---------------------------------------------------------------------------------------------

const NAMES = ['s1', 's2', 's3', 's4', 's5', 'S1'];
const STATES: readonly WalSenderState[] = ['startup', 'catchup', 'streaming', 'streaming', 'streaming', 'stopping'];

function randomRule(rand: ReturnType<typeof random>): SyncRepConfig {
  const members: string[] = [];
  const count = 1 + rand.int(4);
  for (let i = 0; i < count; i++) members.push(rand.next() < 0.1 ? '*' : rand.pick(NAMES.slice(0, 5)));
  const keyword = rand.next() < 0.5 ? 'FIRST' : 'ANY';
  return config(`${keyword} ${1 + rand.int(3)} (${members.join(', ')})`);
}

function randomStandbys(rand: ReturnType<typeof random>, rule: SyncRepConfig): SyncRepStandby[] {
  const standbys: SyncRepStandby[] = [];
  const count = rand.int(7);
  for (let i = 0; i < count; i++) {
    const name = rand.pick(NAMES);
    const flush = rand.next() < 0.1 ? 0 : rand.int(1_000);
    standbys.push({
      applicationName: name,
      state: rand.pick(STATES),
      write: at(flush + rand.int(200)),
      flush: at(flush),
      apply: at(rand.next() < 0.1 ? 0 : rand.int(flush + 1)),
      priority: standbyPriority(rule, name, { cascading: rand.next() < 0.05 }),
    });
  }
  return standbys;
}

function isCandidate(standby: SyncRepStandby): boolean {
  return standby.priority > 0 && (standby.state === 'streaming' || standby.state === 'stopping') && standby.flush > 0;
}

describe('properties of the release rule', () => {
  it('what is released, a quorum has: at least n candidates reached it, and under FIRST every synchronous standby did', () => {
    const rand = random(1);
    let released = 0;
    for (let round = 0; round < 6_000; round++) {
      const rule = randomRule(rand);
      const standbys = randomStandbys(rand, rule);
      const candidates = standbys.filter(isCandidate);
      const result = syncRepGetSyncRecPtr(rule, standbys);
      const context = `${formatSyncRepConfig(rule)} ${JSON.stringify(standbys)}`;
      expect(result === null, context).toBe(candidates.length < rule.numSync);
      if (result === null) continue;
      released++;
      const sync = syncRepGetCandidateStandbys(rule, standbys).map((index) => standbys[index]!);
      for (const mode of SYNC_REP_WAIT_MODES) {
        const reached = candidates.filter((candidate) => candidate[mode] >= result[mode]).length;
        expect(reached, `${mode}: ${context}`).toBeGreaterThanOrEqual(rule.numSync);
        if (rule.method === 'priority') {
          expect(sync.length, context).toBe(rule.numSync);
          for (const standby of sync) expect(standby[mode], `${mode}: ${context}`).toBeGreaterThanOrEqual(result[mode]);
          // No better choice of the numSync: none of the others has a lower priority number.
          const worst = Math.max(...sync.map((standby) => standby.priority));
          for (const other of candidates.filter((candidate) => !sync.includes(candidate))) {
            expect(other.priority, context).toBeGreaterThanOrEqual(worst);
          }
        } else {
          // Tight: fewer than numSync candidates got past it, so nothing higher could be released.
          const beyond = candidates.filter((candidate) => candidate[mode] > result[mode]).length;
          expect(beyond, `${mode}: ${context}`).toBeLessThan(rule.numSync);
        }
      }
    }
    expect(released).toBeGreaterThan(600);
  });

  it('walsenders that are not candidates change nothing', () => {
    const rand = random(2);
    for (let round = 0; round < 5_000; round++) {
      const rule = randomRule(rand);
      const standbys = randomStandbys(rand, rule);
      const moved = standbys.map((standby) => isCandidate(standby)
        ? standby
        // A flush position of 0 is what keeps some of them out: it stays 0.
        : { ...standby, write: at(standby.write + 5_000), flush: at(standby.flush === 0 ? 0 : standby.flush + 5_000), apply: at(standby.apply + 5_000) });
      expect(syncRepGetSyncRecPtr(rule, moved)).toEqual(syncRepGetSyncRecPtr(rule, standbys));
    }
  });

  it('is monotone as the standbys advance', () => {
    const rand = random(3);
    for (let round = 0; round < 1_000; round++) {
      const rule = randomRule(rand);
      // Fixed membership: every walsender keeps its state and has a flush position from the start.
      let standbys = randomStandbys(rand, rule).map((standby) => ({ ...standby, flush: at(standby.flush + 1) }));
      let previous = syncRepGetSyncRecPtr(rule, standbys);
      for (let step = 0; step < 20; step++) {
        const index = rand.int(Math.max(standbys.length, 1));
        standbys = standbys.map((standby, i) => i !== index ? standby : {
          ...standby,
          write: at(standby.write + rand.int(50)),
          flush: at(standby.flush + rand.int(50)),
          apply: at(standby.apply + rand.int(50)),
        });
        const current = syncRepGetSyncRecPtr(rule, standbys);
        expect(current === null, formatSyncRepConfig(rule)).toBe(previous === null);
        if (current !== null && previous !== null) {
          for (const mode of SYNC_REP_WAIT_MODES) expect(current[mode]).toBeGreaterThanOrEqual(previous[mode]);
        }
        previous = current;
      }
    }
  });

  it('sync states agree with the rule: as many sync as FIRST uses, quorum exactly for the ANY candidates', () => {
    const rand = random(4);
    for (let round = 0; round < 5_000; round++) {
      const rule = randomRule(rand);
      const standbys = randomStandbys(rand, rule);
      const states = syncStateOf(rule, standbys);
      const candidates = standbys.filter(isCandidate).length;
      standbys.forEach((standby, index) => {
        if (standby.priority === 0) expect(states[index]).toBe('async');
        else if (!isCandidate(standby)) expect(states[index]).toBe('potential');
      });
      if (rule.method === 'priority') {
        expect(states.filter((state) => state === 'sync').length).toBe(Math.min(candidates, rule.numSync));
        expect(states).not.toContain('quorum');
      } else {
        expect(states.filter((state) => state === 'quorum').length).toBe(candidates);
        expect(states).not.toContain('sync');
      }
    }
  });
});

describe('properties of the wait queues', () => {
  it('random enqueues, releases, cancels and reloads keep every invariant', async () => {
    const rand = random(5);
    const clock = { nowMs: 0 };
    const queues = new SyncRepQueues({ now: () => clock.nowMs, syncStandbysDefined: true });
    const all: SyncRepWaiter[] = [];
    const released = new Set<SyncRepWaiter>();
    let confirmed = queues.confirmedPositions;

    const noteReleased = (waiters: readonly SyncRepWaiter[], byConfirmed: boolean): void => {
      for (const mode of SYNC_REP_WAIT_MODES) {
        const ofMode = lsns(waiters.filter((waiter) => waiter.mode === mode));
        expect(ofMode).toEqual([...ofMode].sort((a, b) => a - b));
      }
      for (const waiter of waiters) {
        expect(released.has(waiter)).toBe(false);
        released.add(waiter);
        expect(waiter.state).toBe('released');
        if (byConfirmed) expect(waiter.lsn).toBeLessThanOrEqual(queues.confirmedPositions[waiter.mode]);
      }
    };

    for (let step = 0; step < 6_000; step++) {
      clock.nowMs += rand.int(5);
      const roll = rand.next();
      if (roll < 0.5) {
        const mode = rand.pick(SYNC_REP_WAIT_MODES);
        // Some at or below the confirmed position: those must come back released.
        const waiter = queues.enqueue(mode, at(Math.max(0, confirmed[mode] + rand.int(200) - 20)));
        all.push(waiter);
        if (waiter.state === 'released') {
          expect(!queues.syncStandbysDefined || waiter.lsn <= confirmed[mode]).toBe(true);
          released.add(waiter);
        }
      } else if (roll < 0.8) {
        const target = positions(confirmed.write + rand.int(100) - 30, confirmed.flush + rand.int(100) - 30, confirmed.apply + rand.int(100) - 30);
        const next = { write: at(Math.max(0, target.write)), flush: at(Math.max(0, target.flush)), apply: at(Math.max(0, target.apply)) };
        noteReleased(queues.release(next), true);
      } else if (roll < 0.95) {
        const waiting = all.filter((waiter) => waiter.state === 'waiting');
        if (waiting.length > 0) expect(queues.cancel(rand.pick(waiting))).toBe(true);
      } else if (roll < 0.98) {
        noteReleased(queues.setSyncStandbysDefined(!queues.syncStandbysDefined), false);
      } else {
        noteReleased(queues.releaseAll(), false);
      }

      // The confirmed positions never go down.
      const now = queues.confirmedPositions;
      for (const mode of SYNC_REP_WAIT_MODES) expect(now[mode]).toBeGreaterThanOrEqual(confirmed[mode]);
      confirmed = now;
      // Queues are sorted, hold exactly the waiting waiters, and none of them is already covered.
      let count = 0;
      for (const mode of SYNC_REP_WAIT_MODES) {
        const queue = queues.waiting(mode);
        count += queue.length;
        expect(lsns(queue)).toEqual([...lsns(queue)].sort((a, b) => a - b));
        for (const waiter of queue) {
          expect(waiter.state).toBe('waiting');
          expect(waiter.lsn).toBeGreaterThan(confirmed[mode]);
          expect(queues.syncStandbysDefined).toBe(true);
        }
      }
      expect(all.filter((waiter) => waiter.state === 'waiting').length).toBe(count);
      expect(queues.stats().count).toBe(count);
    }

    // Every wait ended (or still runs) exactly as its state says, and the promises agree.
    noteReleased(queues.releaseAll(), false);
    const outcomes = await Promise.all(all.map((waiter) => waiter.done));
    expect(outcomes).toEqual(all.map((waiter) => waiter.state));
    expect(outcomes.filter((outcome) => outcome === 'released').length).toBe(released.size);
    expect(outcomes).toContain('cancelled');
  });

  it('on a random primary, a commit is released only once the rule\'s quorum has its LSN', () => {
    const rand = random(6);
    let checked = 0;
    for (let round = 0; round < 300; round++) {
      let rule: SyncRepConfig | null = randomRule(rand);
      const queues = new SyncRepQueues({ now: () => 0, syncStandbysDefined: true });
      const slots: Array<SyncRepStandby | null> = [];
      let nextLsn = 1;
      for (let step = 0; step < 60; step++) {
        const roll = rand.next();
        const live = (): SyncRepStandby[] => slots.filter((slot): slot is SyncRepStandby => slot !== null);
        if (roll < 0.15) {
          const name = rand.pick(NAMES);
          const free = slots.indexOf(null);
          const walsender: SyncRepStandby = { applicationName: name, state: 'streaming', write: at(0), flush: at(0), apply: at(0), priority: standbyPriority(rule, name) };
          if (free < 0) slots.push(walsender);
          else slots[free] = walsender;
        } else if (roll < 0.22 && slots.length > 0) {
          slots[rand.int(slots.length)] = null;
        } else if (roll < 0.6 && slots.length > 0) {
          const index = rand.int(slots.length);
          const old = slots[index];
          if (old) {
            const flush = Math.min(nextLsn, old.flush + rand.int(40));
            slots[index] = { ...old, write: at(Math.min(nextLsn, Math.max(old.write, flush) + rand.int(10))), flush: at(flush), apply: at(Math.min(flush, old.apply + rand.int(40))) };
          }
        } else if (roll < 0.95) {
          nextLsn += 1 + rand.int(20);
          queues.syncRepWaitForLsn(rand.pick(['remote_write', 'on', 'remote_apply'] as const), at(nextLsn));
        } else {
          rule = rand.next() < 0.2 ? null : randomRule(rand);
          for (let i = 0; i < slots.length; i++) {
            const slot = slots[i];
            if (slot) slots[i] = { ...slot, priority: standbyPriority(rule, slot.applicationName) };
          }
          queues.setSyncStandbysDefined(rule !== null);
          continue;
        }
        const standbys = live();
        const { released, syncStandbys } = syncRepReleaseWaiters(queues, rule, standbys);
        for (const waiter of released) {
          checked++;
          expect(rule).not.toBeNull();
          const have = standbys.filter(isCandidate).filter((standby) => standby[waiter.mode] >= waiter.lsn).length;
          expect(have).toBeGreaterThanOrEqual(rule!.numSync);
          if (rule!.method === 'priority') {
            for (const index of syncStandbys) expect(standbys[index]![waiter.mode]).toBeGreaterThanOrEqual(waiter.lsn);
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(500);
  });
});
