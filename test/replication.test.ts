/**
 * Streaming replication on real processes: a primary, two standbys made with `walship
 * basebackup --standby`, and a cascading standby fed by the first one. Checked:
 * - every standby's table equals the primary's after a concurrent write load;
 * - lags come to the microsecond (fractional milliseconds) and reply times with microseconds;
 * - path 1: a walsender is woken by xlogWrite's completion, never by polling: its wake-up count
 *   does not move while the primary is idle, and moves when WAL is written;
 * - path 2: the walreceiver is started by the postmaster in answer to PMSIGNAL_START_WALRECEIVER,
 *   and started again after the primary restarts;
 * - a standby killed with SIGKILL restarts from its restartpoint and catches up;
 * - a fast stop of the primary returns only once every connected standby has flushed its
 *   shutdown checkpoint (the walsenders stop after the checkpoint, not when the shutdown begins);
 * - promotion: the cascading standby follows the new timeline through its promoted upstream, the
 *   other standby follows once repointed, and all tables are equal at the end.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WalshipClient } from '@walship/client';
import { parseLsn } from '@walship/engine';
import { TestNode, waitFor, walship } from './helpers/node.js';
import { basebackup, caughtUp, nodeStatus, scanAll } from './helpers/replication.js';

/** Standbys retry quickly in tests; PostgreSQL's 5 s default would only slow them down. */
const STANDBY_SETTINGS = ['--set', 'wal_retrieve_retry_interval=100ms', '--set', 'wal_receiver_status_interval=1s'];

interface Status {
  role: string;
  timeline: number;
  flushLsn: string;
  replayLsn: string | null;
  lastCheckpointLsn: string;
  walReceiverStarts?: number;
  walReceiver: { status: string; upstream: string | null } | null;
  replication: Array<{
    applicationName: string; state: string; sentLsn: string; replayLsn: string; walSndWakeups: number;
    walBytesSent: number; walBytesSentDirectly: number;
    writeLagMs: number | null; flushLagMs: number | null; replayLagMs: number | null; replyTime: string | null;
  }>;
}

async function status(node: TestNode): Promise<Status> {
  return nodeStatus<Status>(node);
}

async function writeLoad(client: WalshipClient, prefix: string, count: number): Promise<number> {
  let last = 0;
  await Promise.all(Array.from({ length: 4 }, async (_, w) => {
    for (let i = w; i < count; i += 4) {
      const result = i % 10 === 9
        ? await client.txn({ onSuccess: [{ kind: 'delete', key: Buffer.from(`${prefix}-${i - 5}`) }, { kind: 'put', key: Buffer.from(`${prefix}-${i}`), value: Buffer.from(`v${i}`) }] })
        : await client.put(`${prefix}-${i}`, `value ${i} `.padEnd(60 + (i % 200), '.'));
      last = Math.max(last, result.lsn);
    }
  }));
  return last;
}

describe('streaming replication', () => {
  let primary: TestNode;
  let s1: TestNode;
  let s2: TestNode;
  let cascade: TestNode;

  beforeAll(async () => {
    primary = await TestNode.init('replication', { wal_segment_size: '1MB', max_wal_size: '4MB' });
    await primary.start();
    const client = await primary.client();
    await writeLoad(client, 'before', 400);
    await client.close();
    s1 = await basebackup(primary, 's1', STANDBY_SETTINGS);
    await s1.start();
    s2 = await basebackup(primary, 's2', STANDBY_SETTINGS);
    await s2.start();
    // Fed by s1: a base backup of the primary, pointed at s1.
    cascade = await basebackup(primary, 'cascade', STANDBY_SETTINGS);
    walship(['set', '-D', cascade.dataDir, 'primary_conninfo', `host=127.0.0.1 port=${s1.port} application_name=cascade`]);
    await cascade.start();
  });

  afterAll(async () => {
    for (const node of [cascade, s2, s1, primary]) await node?.stop('SIGINT').catch(() => undefined);
    if (primary !== undefined) fs.rmSync(path.dirname(primary.dataDir), { recursive: true, force: true });
  });

  it('streams a concurrent write load to every standby, the cascading one included, and their tables equal the primary\'s', async () => {
    const client = await primary.client();
    const last = await writeLoad(client, 'load', 3000);
    await client.close();
    for (const standby of [s1, s2, cascade]) await caughtUp(standby, last);
    const expected = await scanAll(primary);
    expect(expected.size).toBeGreaterThan(3000);
    for (const standby of [s1, s2, cascade]) expect(await scanAll(standby)).toEqual(expected);

    const p = await status(primary);
    const names = p.replication.map((r) => r.applicationName).sort();
    expect(names).toEqual(['s1', 's2']);
    expect(p.replication.every((r) => r.state === 'streaming')).toBe(true);
    const viaS1 = await status(s1);
    expect(viaS1.replication.map((r) => r.applicationName)).toEqual(['cascade']);
    expect((await status(cascade)).walReceiver?.upstream).toBe(`127.0.0.1:${s1.port}`);
  });

  it('reports write, flush and replay lag to the microsecond, and the reply time with microseconds', async () => {
    const client = await primary.client();
    const lags = { writeLagMs: new Set<number>(), flushLagMs: new Set<number>(), replayLagMs: new Set<number>() };
    let replyTime: string | null = null;
    let writing = true;
    const load = (async () => {
      for (let i = 0; writing; i++) await client.put(`lag-${i % 50}`, 'x');
    })();
    try {
      await waitFor('ten distinct lags of each kind under a write load', async () => {
        const row = (await status(primary)).replication.find((r) => r.applicationName === 's2');
        if (row === undefined) return false;
        for (const key of ['writeLagMs', 'flushLagMs', 'replayLagMs'] as const) {
          const value = row[key];
          if (value !== null) lags[key].add(value);
        }
        replyTime = row.replyTime;
        return Object.values(lags).every((set) => set.size >= 10);
      }, 60_000);
    } finally {
      writing = false;
      await load;
      await client.close();
    }
    for (const set of Object.values(lags)) {
      const values = [...set];
      for (const lag of values) {
        expect(lag).toBeGreaterThan(0);
        expect(lag).toBeLessThan(30_000);
        // Whole microseconds: three decimals at most.
        expect(Math.abs(lag * 1000 - Math.round(lag * 1000))).toBeLessThan(1e-6);
      }
      // Rounded to whole milliseconds, ten lags on loopback would all be integers (mostly 0 and 1).
      expect(values.filter((lag) => !Number.isInteger(lag)).length).toBeGreaterThan(0);
    }
    expect(replyTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(Math.abs(Date.parse(replyTime!) - Date.now())).toBeLessThan(60_000);
  });

  it('wakes a walsender only when xlogWrite has written WAL (path 1)', async () => {
    const wakeupsOf = async () => (await status(primary)).replication.find((r) => r.applicationName === 's2')!.walSndWakeups;
    const before = await wakeupsOf();
    // An idle primary writes no WAL, so nothing may wake the walsender: no polling loop.
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(await wakeupsOf()).toBe(before);
    const client = await primary.client();
    const { lsn } = await client.put('wake', 'up');
    await client.close();
    await caughtUp(s2, lsn);
    expect(await wakeupsOf()).toBeGreaterThan(before);
  });

  it('has the WAL flusher send new WAL to caught-up standbys itself, which replay it as any other', async () => {
    const sentOf = async (node: TestNode) => Object.fromEntries((await status(node)).replication.map((r) => [r.applicationName, r]));
    const before = await sentOf(primary);
    const client = await primary.client();
    const lsn = await writeLoad(client, 'direct', 200);
    await client.close();
    for (const standby of [s1, s2, cascade]) await caughtUp(standby, lsn);
    const after = await sentOf(primary);
    for (const name of ['s1', 's2']) {
      // Over plain TCP, once caught up, most of a commit load's WAL leaves from the flusher.
      const direct = after[name]!.walBytesSentDirectly - before[name]!.walBytesSentDirectly;
      const all = after[name]!.walBytesSent - before[name]!.walBytesSent;
      expect(direct).toBeGreaterThan(0);
      expect(direct).toBeLessThanOrEqual(all);
    }
    // A cascading standby's walsender sends what its node received: always itself.
    const cascading = Object.values(await sentOf(s1));
    expect(cascading.length).toBeGreaterThan(0);
    for (const row of cascading) expect(row.walBytesSentDirectly).toBe(0);
    const reader = await cascade.client();
    expect((await reader.get('direct-198'))?.value.toString()).toMatch(/^value 198 \.+$/);
    await reader.close();
  });

  it('starts the walreceiver through PMSIGNAL_START_WALRECEIVER, and again after the primary restarts (path 2)', async () => {
    const before = await status(s1);
    expect(before.walReceiverStarts).toBe(1);
    expect(s1.log).toMatch(/starting walreceiver for 127\.0\.0\.1:\d+ in answer to PMSIGNAL_START_WALRECEIVER/);
    await primary.stop('SIGINT');
    await primary.start();
    await waitFor('s1 to stream again', async () => {
      const s = await status(s1);
      return (s.walReceiverStarts ?? 0) >= 2 && s.walReceiver?.status === 'streaming';
    }, 30_000);
    const client = await primary.client();
    const { lsn } = await client.put('after-restart', 'yes');
    await client.close();
    for (const standby of [s1, s2, cascade]) await caughtUp(standby, lsn);
  });

  it('hands the socket over to the flusher after a restart with one commit at a time, whose WAL then leaves from the flusher', async () => {
    // Each flush wakes a lone committer's walsender with new WAL, so no turn of its loop finds
    // nothing to send; it hands the socket over once its own frame has left instead.
    await primary.stop('SIGINT');
    await primary.start();
    const rows = async () => Object.fromEntries((await status(primary)).replication.map((r) => [r.applicationName, r]));
    await waitFor('s1 and s2 to stream from the restarted primary', async () => {
      const r = await rows();
      return r.s1?.state === 'streaming' && r.s2?.state === 'streaming';
    }, 30_000);
    const before = await rows();
    const client = await primary.client();
    let lsn = 0;
    for (let i = 0; i < 60; i++) lsn = (await client.put(`serial-${i}`, `serial value ${i}`)).lsn;
    await client.close();
    for (const standby of [s1, s2]) await caughtUp(standby, lsn);
    const after = await rows();
    for (const name of ['s1', 's2']) {
      const direct = after[name]!.walBytesSentDirectly - before[name]!.walBytesSentDirectly;
      const all = after[name]!.walBytesSent - before[name]!.walBytesSent;
      expect(direct, `${name}: ${direct} of ${all} bytes sent directly`).toBeGreaterThan(all / 2);
    }
    const reader = await s2.client();
    expect((await reader.get('serial-59'))?.value.toString()).toBe('serial value 59');
    await reader.close();
  });

  it('holds commits back on a standby with recovery_min_apply_delay until the delay has passed', async () => {
    const delayed = await basebackup(primary, 'delayed', STANDBY_SETTINGS, ['--set', 'recovery_min_apply_delay=1500ms']);
    await delayed.start();
    try {
      const client = await primary.client();
      const { lsn } = await client.put('delayed-key', 'v');
      const committedAt = Date.now();
      await client.close();
      // Received and flushed at once, but not applied: the commit waits out the delay.
      await waitFor('the delayed standby to receive the commit', async () => {
        const s = await status(delayed);
        return s.walReceiver !== null && parseLsn((s.walReceiver as unknown as { receivedLsn: string }).receivedLsn)! >= lsn;
      });
      const reader = await delayed.client();
      expect(await reader.get('delayed-key')).toBeNull();
      await waitFor('the delayed commit to be applied', async () => (await reader.get('delayed-key')) !== null, 10_000);
      expect(Date.now() - committedAt).toBeGreaterThanOrEqual(1400);
      await reader.close();
    } finally {
      await delayed.stop('SIGINT');
    }
  });

  it('restarts a standby killed with SIGKILL from its restartpoint, not from the base backup, and catches up', async () => {
    const client = await primary.client();
    await writeLoad(client, 'pre-kill', 400);
    const checkpoint = await client.checkpoint();
    const marker = await client.put('after-checkpoint', 'x');
    await caughtUp(s2, marker.lsn);
    const s2Client = await s2.client();
    await s2Client.checkpoint(); // on a standby: a restartpoint at the replayed checkpoint record
    await s2Client.close();
    const control = JSON.parse(walship(['controldata', '-D', s2.dataDir, '--json']).stdout) as { checkpointLsn: string; redoLsn: string };
    expect(parseLsn(control.checkpointLsn)).toBe(checkpoint.lsn);
    const loading = writeLoad(client, 'during-kill', 1500);
    await s2.kill();
    const last = await loading;
    await client.close();
    await s2.start();
    expect(s2.log).toContain(`redo starts at ${control.redoLsn}`);
    await caughtUp(s2, last);
    expect(await scanAll(s2)).toEqual(await scanAll(primary));
  });

  it('hands the shutdown checkpoint to every connected standby before a fast stop ends (WalSndWaitStopping after the checkpoint)', async () => {
    const client = await primary.client();
    const last = await writeLoad(client, 'pre-stop', 200);
    await client.close();
    expect(await primary.stop('SIGINT')).toBe(0);
    const control = JSON.parse(walship(['controldata', '-D', primary.dataDir, '--json']).stdout) as { state: string; checkpointLsn: string };
    expect(control.state).toBe('shut down');
    const checkpointLsn = parseLsn(control.checkpointLsn)!;
    expect(checkpointLsn).toBeGreaterThanOrEqual(last); // a commit's LSN is where its record ends
    // The primary exited only once each standby had flushed the record: no waiting here.
    for (const standby of [s1, s2]) {
      const flushed = parseLsn((await status(standby)).flushLsn)!;
      expect(flushed, `${path.basename(standby.dataDir)} flushed to ${flushed}, the shutdown checkpoint is at ${checkpointLsn}; the primary's log ends with:\n${primary.log.split('\n').slice(-30).join('\n')}\nthe standby's:\n${standby.log.split('\n').slice(-30).join('\n')}`).toBeGreaterThan(checkpointLsn);
    }
    for (const standby of [s1, s2]) await caughtUp(standby, checkpointLsn + 1);
    expect(primary.log).not.toMatch(/terminating walsender/);
    await primary.start();
    await waitFor('s1 and s2 to stream again', async () => (await status(primary)).replication.filter((row) => row.state === 'streaming').length === 2, 30_000);
  });

  it('promotes a standby: the cascading standby follows the new timeline, the other one once repointed', async () => {
    const client = await primary.client();
    const last = await writeLoad(client, 'pre-promote', 300);
    await client.close();
    for (const standby of [s1, s2, cascade]) await caughtUp(standby, last);
    await primary.stop('SIGINT');

    const promoted = walship(['promote', '-D', s1.dataDir]);
    expect(promoted.status, promoted.stderr).toBe(0);
    expect(promoted.stdout).toContain('server promoted');
    const newPrimary = await status(s1);
    expect(newPrimary.role).toBe('primary');
    expect(newPrimary.timeline).toBe(2);
    expect(fs.readFileSync(path.join(s1.dataDir, 'pg_wal', '00000002.history'), 'utf8')).toMatch(/^1\t0\/[0-9A-F]+\tno recovery target specified/m);

    // s2 followed the old primary: repoint it (reload), as a cluster manager would.
    const set = walship(['set', '-D', s2.dataDir, 'primary_conninfo', `host=127.0.0.1 port=${s1.port} application_name=s2`]);
    expect(set.status, set.stderr).toBe(0);

    const writer = await s1.client();
    const after = await writeLoad(writer, 'post-promote', 600);
    await writer.close();
    for (const standby of [s2, cascade]) {
      await caughtUp(standby, after);
      expect((await status(standby)).timeline).toBe(2);
    }
    const expected = await scanAll(s1);
    expect(expected.has('post-promote-599')).toBe(true);
    for (const standby of [s2, cascade]) expect(await scanAll(standby)).toEqual(expected);
  });
});
