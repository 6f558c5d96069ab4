import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ClusterError } from './cluster-error.js';
import { parseClusterConfig } from './config.js';
import { appendHistory, historyFilePath, readHistory, type HistoryEvent } from './history.js';
import { acquireClusterLock, withClusterLockIfFree } from './lock.js';
import {
  effectiveUpstream,
  initialClusterState,
  readClusterState,
  readClusterStateFor,
  reconcileWithConfig,
  startOrder,
  stateFilePath,
  withNewPrimary,
  writeClusterState,
  type ClusterState,
} from './state.js';
import { synchronousStandbyNamesFor } from './synchronous-names.js';
import { observePrimary, type MemberProbe } from './members.js';
import { CASCADE_NODES, running, tempDataRoot } from './test-support.js';
import { formatDurationMs, formatSizeBytes, parseDurationMs, parseSizeBytes } from './units.js';

let dataRoot: string;

const CASCADE = `
name: cascade
base_port: 6000
data_root: /unused${CASCADE_NODES}`;

const config = (text = CASCADE) => parseClusterConfig(text, '/configs/c.yaml', { dataRoot });

tempDataRoot('walship-state-', (path) => (dataRoot = path));

describe('the state file', () => {
  it('is absent before anything was created, then written atomically and read back', () => {
    expect(readClusterState(dataRoot)).toBeNull();
    const initial = initialClusterState(config(), new Date('2026-01-01T00:00:00Z'));
    expect(initial.primary).toBe('n1');
    expect(Object.values(initial.members).map((m) => m.role)).toEqual(['uninitialized', 'uninitialized', 'uninitialized', 'uninitialized']);
    const written = writeClusterState(dataRoot, running(initial), new Date('2026-01-01T00:00:01Z'));
    expect(written.generation).toBe(1);
    expect(written.updatedAt).toBe('2026-01-01T00:00:01.000Z');
    expect(existsSync(`${stateFilePath(dataRoot)}.tmp`)).toBe(false);
    expect(readClusterState(dataRoot)).toEqual(written);
    expect(writeClusterState(dataRoot, written).generation).toBe(2);
  });

  it('refuses a damaged file or one of another cluster, naming the file', () => {
    writeFileSync(stateFilePath(dataRoot), '{"version": 1, "cluster": ');
    expect(() => readClusterState(dataRoot)).toThrow(/cluster-state\.json" is damaged: it is not valid JSON/);
    const good = writeClusterState(dataRoot, running(initialClusterState(config())));
    writeFileSync(stateFilePath(dataRoot), JSON.stringify({ ...good, version: 9 }));
    expect(() => readClusterState(dataRoot)).toThrow(/version is 9/);
    writeFileSync(stateFilePath(dataRoot), JSON.stringify({ ...good, members: { ...good.members, s1: { role: 'primary', timeline: 1, fence: null } } }));
    expect(() => readClusterState(dataRoot)).toThrow(/2 members have the role primary/);
    writeFileSync(stateFilePath(dataRoot), JSON.stringify({ ...good, members: { ...good.members, s1: { role: 'leader', timeline: 1, fence: null } } }));
    expect(() => readClusterState(dataRoot)).toThrow(/member "s1" has role "leader"/);
    writeFileSync(stateFilePath(dataRoot), JSON.stringify({ ...good, synchronousNames: { primary: 'n1' } }));
    expect(() => readClusterState(dataRoot)).toThrow(/"synchronousNames" must be null or an object/);
    writeFileSync(stateFilePath(dataRoot), JSON.stringify({ ...good, synchronousNames: { primary: 'n1', names: 'FIRST 1 (s1, s2)' } }));
    expect(readClusterState(dataRoot)!.synchronousNames).toEqual({ primary: 'n1', names: 'FIRST 1 (s1, s2)' });
    writeFileSync(stateFilePath(dataRoot), JSON.stringify({ ...good, cluster: 'other' }));
    expect(() => readClusterStateFor(config())).toThrow(ClusterError);
    expect(() => readClusterStateFor(config())).toThrow(/holds cluster "other", not "cascade"/);
  });

  it('adds members new to the config and names the ones it no longer has', () => {
    const state = { ...running(initialClusterState(config())), members: { n1: { role: 'primary', timeline: 1, fence: null }, gone: { role: 'standby', timeline: 1, fence: null } } } as ClusterState;
    const { state: reconciled, unknownMembers } = reconcileWithConfig(state, config());
    expect(unknownMembers).toEqual(['gone']);
    expect(reconciled.members.s1).toEqual({ role: 'uninitialized', timeline: null, fence: null });
    expect(reconciled.members.n1!.role).toBe('primary');
  });
});

describe('roles after a change of primary', () => {
  it('a switchover makes the old primary a standby; a failover fences it', () => {
    const state = running(initialClusterState(config()));
    const switched = withNewPrimary(state, 's1', 2, { fence: null });
    expect(switched).toMatchObject({ primary: 's1', previousPrimary: 'n1', timeline: 2 });
    expect(switched.members.n1).toEqual({ role: 'standby', timeline: 1, fence: null });
    expect(switched.members.s1).toEqual({ role: 'primary', timeline: 2, fence: null });
    const fence = { at: '2026-01-01T00:00:00Z', reason: 'failover', timeline: 1, newPrimary: 's1' };
    const failed = withNewPrimary(state, 's1', 2, { fence });
    expect(failed.members.n1).toEqual({ role: 'fenced', timeline: 1, fence });
  });
});

describe('upstreams and start order', () => {
  it('a cascading standby follows its upstream while that one runs, else the primary', () => {
    const c = config();
    const state = running(initialClusterState(c));
    const member = (name: string) => c.members.find((m) => m.name === name)!;
    expect(effectiveUpstream(c, state, member('n1'))).toBeNull();
    expect(effectiveUpstream(c, state, member('s1'))).toBe('n1');
    expect(effectiveUpstream(c, state, member('c1'))).toBe('s2');
    const s2Fenced = { ...state, members: { ...state.members, s2: { role: 'fenced' as const, timeline: 1, fence: null } } };
    expect(effectiveUpstream(c, s2Fenced, member('c1'))).toBe('n1');
    const s2Primary = withNewPrimary(state, 's2', 2, { fence: null });
    expect(effectiveUpstream(c, s2Primary, member('c1'))).toBe('s2');
    expect(effectiveUpstream(c, s2Primary, member('n1'))).toBe('s2');
    expect(effectiveUpstream(c, s2Primary, member('s2'))).toBeNull();
  });

  it('starts the primary first and every standby after its upstream', () => {
    const text = CASCADE.replace('  - {name: c1, port_offset: 3, upstream: s2}', '  - {name: c1, port_offset: 3, upstream: c2}\n  - {name: c2, port_offset: 4, upstream: s2}');
    const c = config(text);
    const state = running(initialClusterState(c));
    expect(startOrder(c, state).map((m) => m.name)).toEqual(['n1', 's1', 's2', 'c2', 'c1']);
    const afterFailover = withNewPrimary(state, 's2', 2, { fence: { at: '', reason: '', timeline: 1, newPrimary: 's2' } });
    expect(startOrder(c, afterFailover).map((m) => m.name)).toEqual(['s2', 'n1', 's1', 'c2', 'c1']);
  });
});

describe('synchronous_standby_names for a new primary', () => {
  const names = (c: ReturnType<typeof config>, primary: string, previousPrimary: string | null, unavailable: string[] = []) =>
    synchronousStandbyNamesFor(c, { primary, previousPrimary, unavailable });

  it('is kept as written while the primary is not named in it and the named ones can acknowledge', () => {
    expect(names(config(), 'n1', null)).toBe('FIRST 1 (s1)');
    expect(names(config(), 's2', 'n1')).toBe('FIRST 1 (s1)');
  });

  it("gives the promoted member's place to the old primary, then to the others, never to a cascading standby", () => {
    expect(names(config(), 's1', 'n1')).toBe('FIRST 1 (n1, s2)');
    expect(names(config(), 's1', 's2')).toBe('FIRST 1 (s2, n1)');
    expect(names(config(), 's1', 'n1', ['n1'])).toBe('FIRST 1 (s2)');
    const quorum = config(CASCADE.replace('FIRST 1 (s1)', 'ANY 2 (s1, s2, n1)'));
    expect(names(quorum, 's2', 'n1')).toBe('ANY 2 (s1, n1)');
    expect(names(config(CASCADE.replace('synchronous_standby_names: FIRST 1 (s1)\n', '')), 's1', 'n1')).toBe('');
  });

  it('adds a stand-in after a named standby that is fenced, keeping its place for when it is back', () => {
    expect(names(config(), 's2', 's1', ['s1'])).toBe('FIRST 1 (s1, n1)');
    const any2 = config(CASCADE.replace('FIRST 1 (s1)', 'ANY 2 (s1, s2)'));
    expect(names(any2, 'n1', null, ['s2'])).toBe('ANY 1 (s1, s2)');
  });

  it('is empty when nobody can acknowledge, rather than hanging every commit', () => {
    const two = config('name: two\nbase_port: 6000\ndata_root: x\nsynchronous_standby_names: s1\nnodes:\n  - {name: n1, port_offset: 0}\n  - {name: s1, port_offset: 1}\n');
    expect(names(two, 'n1', null)).toBe('s1');
    expect(names(two, 'n1', 's1', ['s1'])).toBe('');
    expect(names(two, 's1', 'n1')).toBe('FIRST 1 (n1)');
  });
});

describe('history', () => {
  it('appends events and reads them back, skipping a torn last line', () => {
    const event: HistoryEvent = { at: '2026-01-01T00:00:00Z', event: 'failover', member: 's1', from: 'n1', timeline: 2, lsn: '0/3000', durationMs: 120, summary: 's1 promoted', decision: null };
    appendHistory(dataRoot, event);
    appendHistory(dataRoot, { ...event, event: 'rejoin', member: 'n1' });
    writeFileSync(historyFilePath(dataRoot), `${readFileSync(historyFilePath(dataRoot), 'utf8')}{"at": "2026`);
    const { events, unreadableLines } = readHistory(dataRoot);
    expect(events.map((e) => e.event)).toEqual(['failover', 'rejoin']);
    expect(unreadableLines).toBe(1);
  });
});

describe('the lock', () => {
  it('is exclusive, released, and taken over from a dead owner', async () => {
    const lock = await acquireClusterLock(dataRoot, 'first');
    await expect(acquireClusterLock(dataRoot, 'second', 100)).rejects.toThrow(/another cluster command is running.*/);
    lock.release();
    const again = await acquireClusterLock(dataRoot, 'third', 100);
    again.release();
    // A pid far above pid_max belongs to no process: the lock is stale.
    writeFileSync(join(dataRoot, 'cluster.lock'), JSON.stringify({ pid: 2 ** 30, command: 'crashed', since: '' }));
    const taken = await acquireClusterLock(dataRoot, 'fourth', 100);
    expect(JSON.parse(readFileSync(join(dataRoot, 'cluster.lock'), 'utf8')).command).toBe('fourth');
    taken.release();
  });

  it('runs a skippable step only when the lock is free at once, and releases it after', async () => {
    const lock = await acquireClusterLock(dataRoot, 'first');
    let ran = false;
    expect(await withClusterLockIfFree(dataRoot, 'observer', false, false, async () => (ran = true))).toBeNull();
    expect(ran).toBe(false);
    lock.release();
    expect(await withClusterLockIfFree(dataRoot, 'observer', false, false, async () => 'done')).toBe('done');
    expect(existsSync(join(dataRoot, 'cluster.lock'))).toBe(false);
    await expect(withClusterLockIfFree(dataRoot, 'observer', false, false, async () => { throw new Error('failed'); })).rejects.toThrow('failed');
    expect(existsSync(join(dataRoot, 'cluster.lock'))).toBe(false);
  });
});

describe('units', () => {
  it('reads durations and sizes as PostgreSQL writes them', () => {
    expect(parseDurationMs('500ms')).toEqual({ ok: true, value: 500 });
    expect(parseDurationMs('1.5s')).toEqual({ ok: true, value: 1500 });
    expect(parseDurationMs('2min')).toEqual({ ok: true, value: 120_000 });
    expect(parseDurationMs(250)).toEqual({ ok: true, value: 250 });
    expect(parseDurationMs('10us')).toEqual({ ok: true, value: 1 });
    expect(parseDurationMs('2 weeks').ok).toBe(false);
    expect(parseSizeBytes('16MB')).toEqual({ ok: true, value: 16 * 1024 * 1024 });
    expect(parseSizeBytes('64kB')).toEqual({ ok: true, value: 65536 });
    expect(parseSizeBytes(0)).toEqual({ ok: true, value: 0 });
    expect(parseSizeBytes('1.5MB').ok).toBe(false);
    expect(formatDurationMs(1500)).toBe('1.5s');
    expect(formatSizeBytes(1024 * 1024)).toBe('1MB');
    expect(formatSizeBytes(1000)).toBe('1000B');
  });
});

describe("the primary's observation", () => {
  const probe = (name: string, status: Record<string, unknown> | null): MemberProbe => ({
    member: config().members.find((member) => member.name === name)!, pid: 1, dataDirectoryExists: true, status: status as MemberProbe['status'],
  });
  const primaryStatus = (timeline: number, syncReleasedLsn: string | null) => ({
    role: 'primary', systemId: '1', timeline, flushLsn: '0/5000', receiveLsn: null, replayLsn: null, syncReleasedLsn,
    replication: [{ applicationName: 's1', flushLsn: '0/5000', syncState: 'sync', syncPriority: 1 }],
  });

  it("keeps the highest released position the primary reported on its timeline (rule 2's floor)", () => {
    const state = running(initialClusterState(config()));
    const first = observePrimary(state, [probe('n1', primaryStatus(1, '0/4000'))], 'FIRST 1 (s1)')!;
    expect(first).toMatchObject({ primary: 'n1', timeline: 1, releasedLsn: '0/4000', standbys: [{ name: 's1', syncState: 'sync' }] });
    // Restarted, the primary reports 0/0 until its standbys confirm again: what it released before still counts.
    const restarted = observePrimary({ ...state, observation: first }, [probe('n1', primaryStatus(1, '0/0'))], 'FIRST 1 (s1)')!;
    expect(restarted.releasedLsn).toBe('0/4000');
    const further = observePrimary({ ...state, observation: restarted }, [probe('n1', primaryStatus(1, '0/4800'))], 'FIRST 1 (s1)')!;
    expect(further.releasedLsn).toBe('0/4800');
    // A new timeline (another primary) starts from what it reports.
    expect(observePrimary({ ...state, observation: further }, [probe('n1', primaryStatus(2, null))], '')!.releasedLsn).toBeNull();
    expect(observePrimary(state, [probe('n1', null)], '')).toBeNull();
  });
});
