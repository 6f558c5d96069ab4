/**
 * Physical replication slots on real processes (1 MB segments, max_wal_size 3MB, wal_keep_size 0):
 * - `basebackup --standby --slot s1` creates the slot before the backup and writes
 *   primary_slot_name; `slot list --json` and status `slots[]` show it;
 * - a stopped standby's slot keeps its WAL through checkpoints (restartLsn stays behind, the
 *   segment stays), and the standby catches up when it comes back;
 * - slots and their hold survive a crash-restart of the primary (SIGKILL);
 * - without a slot, the same absence ends with the standby's walreceiver reporting the
 *   segment it needs as removed;
 * - max_slot_wal_keep_size invalidates a slot that falls too far behind: logged, `lost`, and
 *   START_REPLICATION on it refused;
 * - the slot command's errors and exit codes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WalshipClient } from '@walship/client';
import { parseLsn } from '@walship/engine';
import { segmentOf, xlogFileName } from '@walship/engine/wal/xlog-internal';
import { ReplicationConnection } from '@walship/replication';
import { TestNode, freePort, waitFor, walship } from './helpers/node.js';
import { basebackup, caughtUp, nodeStatus, scanAll } from './helpers/replication.js';

const MB = 1024 * 1024;
/**
 * Standbys retry quickly. Their max_wal_size stays large: with one this small, a standby's
 * checkpointer whose replay runs ahead of the primary's next checkpoint record retries the
 * skipped restartpoint at once, forever, and starves the node (a checkpointer bug of its own,
 * not a slot matter); here the standbys' restartpoints come from time and shutdown only.
 */
const STANDBY_SETTINGS = ['--set', 'wal_retrieve_retry_interval=100ms', '--set', 'wal_receiver_status_interval=1s', '--set', 'max_wal_size=256MB'];

interface SlotRow { name: string; slotType: string; active: boolean; activePid: number | null; restartLsn: string | null; walStatus: string | null }
interface Status {
  replayLsn: string | null;
  slots: SlotRow[];
  replication: Array<{ applicationName: string; slotName: string | null; state: string }>;
}

async function status(node: TestNode): Promise<Status> {
  return nodeStatus<Status>(node);
}

async function slot(node: TestNode, name: string): Promise<SlotRow | undefined> {
  return (await status(node)).slots.find((s) => s.name === name);
}

/** Writes at least `bytes` of WAL (16 kB values, four writers); returns the last commit LSN. */
async function writeWal(client: WalshipClient, prefix: string, bytes: number): Promise<number> {
  const first = (await client.put(`${prefix}-start`, 'x')).lsn;
  let last: number = first;
  let n = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (last - first < bytes) {
      const i = n++;
      const { lsn } = await client.put(`${prefix}-${i % 64}`, `${prefix} ${i} `.padEnd(16 * 1024, 'w'));
      last = Math.max(last, lsn);
    }
  }));
  return last;
}

function segmentFile(node: TestNode, lsn: number): string {
  return path.join(node.dataDir, 'pg_wal', xlogFileName(1, segmentOf(lsn, MB), MB));
}

describe('replication slots', () => {
  let primary: TestNode;
  let s1: TestNode;
  let s2: TestNode | undefined;
  let address: string;

  /** The primary's slot s1 has caught up with `lsn` (the standby's flush came back). */
  async function slotReached(name: string, lsn: number): Promise<void> {
    await waitFor(`slot ${name} to reach ${lsn}`, async () => {
      const row = await slot(primary, name);
      return row?.restartLsn != null && parseLsn(row.restartLsn)! >= lsn;
    }, 30_000);
  }

  beforeAll(async () => {
    primary = await TestNode.init('slots', { max_wal_size: '3MB', wal_keep_size: '0' });
    await primary.start();
    address = `127.0.0.1:${primary.port}`;
    const client = await primary.client();
    await writeWal(client, 'before', 256 * 1024);
    await client.close();
  });

  afterAll(async () => {
    for (const node of [s2, s1, primary]) await node?.stop('SIGINT').catch(() => undefined);
    if (primary !== undefined) fs.rmSync(path.dirname(primary.dataDir), { recursive: true, force: true });
  });

  it('basebackup --slot creates the slot before the backup and writes primary_slot_name; slot list and status show it', async () => {
    s1 = await basebackup(primary, 'standby1', STANDBY_SETTINGS, ['--slot', 's1']);
    expect(walship(['show', '-D', s1.dataDir, 'primary_slot_name']).stdout.trim()).toBe('s1');
    // The source's slots stay on the source.
    expect(fs.readdirSync(path.join(s1.dataDir, 'pg_replslot')).length).toBe(0);
    expect(fs.existsSync(path.join(primary.dataDir, 'pg_replslot', 's1', 'state'))).toBe(true);
    await s1.start();
    await waitFor('s1 to stream from slot s1', async () => (await slot(primary, 's1'))?.active === true);

    const client = await primary.client();
    const last = (await client.put('hello', 'slot')).lsn;
    await client.close();
    await caughtUp(s1, last);
    await slotReached('s1', last);

    const listed = walship(['slot', 'list', '--node', address, '--json']);
    expect(listed.status, listed.stderr).toBe(0);
    const { slots } = JSON.parse(listed.stdout) as { slots: SlotRow[] };
    expect(slots).toHaveLength(1);
    expect(slots[0]).toMatchObject({ name: 's1', slotType: 'physical', active: true, walStatus: 'reserved' });
    expect(parseLsn(slots[0]!.restartLsn!)).toBeGreaterThanOrEqual(last);
    const table = walship(['slot', 'list', '--node', address]);
    expect(table.stdout).toMatch(/^slot_name \| slot_type \| active \| active_pid \| restart_lsn\s+\| wal_status$/m);
    expect(table.stdout).toMatch(/^s1\s+\| physical\s+\| t\s+\| \d+\s+\| [0-9A-F]+\/[0-9A-F]+\s*\| reserved$/m);

    const s = await status(primary);
    expect(s.slots).toEqual([expect.objectContaining({ name: 's1', active: true, walStatus: 'reserved', restartLsn: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/) })]);
    expect(s.replication.find((r) => r.applicationName === 'standby1')?.slotName).toBe('s1');
    expect(primary.log).toContain('acquired physical replication slot "s1"');
  });

  it('keeps the WAL a stopped standby needs through checkpoints; the standby catches up when it returns', async () => {
    await s1.stop();
    await waitFor('slot s1 to be released', async () => (await slot(primary, 's1'))?.active === false);
    const held = parseLsn((await slot(primary, 's1'))!.restartLsn!)!;

    const client = await primary.client();
    const end = await writeWal(client, 'away', 5 * MB);
    await client.checkpoint();
    await client.close();

    const row = (await slot(primary, 's1'))!;
    expect(parseLsn(row.restartLsn!)).toBe(held);
    expect(['reserved', 'extended']).toContain(row.walStatus);
    expect(segmentOf(end, MB) - segmentOf(held, MB)).toBeGreaterThanOrEqual(5);
    for (let segNo = segmentOf(held, MB); segNo <= segmentOf(end, MB); segNo++) {
      expect(fs.existsSync(segmentFile(primary, segNo * MB)), `segment ${segNo}`).toBe(true);
    }

    await s1.start();
    await caughtUp(s1, end);
    expect(await scanAll(s1)).toEqual(await scanAll(primary));
    await slotReached('s1', end);
  });

  it('keeps slots and the WAL they hold through a crash-restart of the primary', async () => {
    await s1.stop();
    await waitFor('slot s1 to be released', async () => (await slot(primary, 's1'))?.active === false);
    const held = parseLsn((await slot(primary, 's1'))!.restartLsn!)!;
    const client = await primary.client();
    const end = await writeWal(client, 'crash', 3 * MB);
    await client.close();
    await primary.kill();
    await primary.start();
    expect(primary.log).toContain('loaded 1 replication slot from pg_replslot/');

    // The restart LSN saved at the last checkpoint: never past what the standby had flushed.
    const row = (await slot(primary, 's1'))!;
    expect(row).toMatchObject({ active: false });
    const restart = parseLsn(row.restartLsn!)!;
    expect(restart).toBeLessThanOrEqual(held);
    // The end-of-recovery checkpoint ran before the slots were loaded: it removed nothing they need.
    for (let segNo = segmentOf(restart, MB); segNo <= segmentOf(end, MB); segNo++) {
      expect(fs.existsSync(segmentFile(primary, segNo * MB)), `segment ${segNo}`).toBe(true);
    }
    const again = await primary.client();
    await again.checkpoint();
    await again.close();
    expect(fs.existsSync(segmentFile(primary, restart))).toBe(true);

    await s1.start();
    await caughtUp(s1, end);
    expect(await scanAll(s1)).toEqual(await scanAll(primary));
  });

  it('without a slot, the WAL goes at the next checkpoint and the returning standby reports it removed', async () => {
    s2 = await basebackup(primary, 'standby2', STANDBY_SETTINGS);
    await s2.start();
    const client = await primary.client();
    const first = (await client.put('s2', 'here')).lsn;
    await caughtUp(s2, first);
    await s2.stop();

    const end = await writeWal(client, 'gone', 4 * MB);
    await caughtUp(s1, end);
    await slotReached('s1', end); // the slot of the standby still streaming holds nothing back
    await client.checkpoint();
    await client.close();
    expect(fs.existsSync(segmentFile(primary, first))).toBe(false);

    await s2.start();
    await waitFor('standby2 to report its WAL removed', () => /requested WAL segment [0-9A-F]{24} has already been removed/.test(s2!.log), 30_000);
    await s2.stop();
  });

  it('invalidates a slot past max_slot_wal_keep_size: logged, lost, and refused to a standby', async () => {
    const created = walship(['slot', 'create', '--node', address, 'behind']);
    expect(created.status, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^replication slot "behind" created on 127\.0\.0\.1:\d+, reserving WAL from [0-9A-F]+\/[0-9A-F]+$/m);
    expect((await slot(primary, 'behind'))).toMatchObject({ active: false, walStatus: 'reserved' });

    const set = walship(['set', '--node', address, 'max_slot_wal_keep_size', '1MB']);
    expect(set.status, set.stderr).toBe(0);
    const client = await primary.client();
    const end = await writeWal(client, 'cap', 4 * MB);
    await caughtUp(s1, end);
    await slotReached('s1', end);
    await client.checkpoint();
    await client.close();

    expect(await slot(primary, 'behind')).toMatchObject({ walStatus: 'lost', restartLsn: null, active: false });
    expect(await slot(primary, 's1')).toMatchObject({ walStatus: 'reserved', active: true });
    expect(primary.log).toContain('LOG:  invalidating obsolete replication slot "behind"');
    expect(primary.log).toMatch(/DETAIL: {2}The slot's restart_lsn [0-9A-F]+\/[0-9A-F]+ exceeds the limit by \d+ bytes\./);
    expect(primary.log).toContain('HINT:  You might need to increase "max_slot_wal_keep_size".');

    const connection = await ReplicationConnection.connect({ host: '127.0.0.1', port: primary.port, applicationName: 'probe', timeoutMs: 10_000 });
    try {
      await expect(connection.request('startReplication', { slot: 'behind', startLsn: '0/1000000', timeline: 1 })).rejects.toMatchObject({
        message: 'can no longer get changes from replication slot "behind"',
        detail: 'This slot has been invalidated because it exceeded the maximum reserved size.',
      });
      await expect(connection.request('startReplication', { slot: 'nosuch', startLsn: '0/1000000', timeline: 1 })).rejects.toMatchObject({
        message: 'replication slot "nosuch" does not exist',
      });
    } finally {
      connection.close();
    }

    const listed = JSON.parse(walship(['slot', 'list', '--node', address, '--json']).stdout) as { slots: SlotRow[] };
    expect(listed.slots.map((s) => [s.name, s.walStatus, s.restartLsn === null])).toEqual([['behind', 'lost', true], ['s1', 'reserved', false]]);
    const dropped = walship(['slot', 'drop', '--node', address, 'behind']);
    expect(dropped.status, dropped.stderr).toBe(0);
    expect(fs.existsSync(path.join(primary.dataDir, 'pg_replslot', 'behind'))).toBe(false);
    expect(walship(['set', '--node', address, 'max_slot_wal_keep_size', '-1']).status).toBe(0);
  });

  it('reports slot command errors with their exit codes', async () => {
    const duplicate = walship(['slot', 'create', '--node', address, 's1']);
    expect(duplicate.status).toBe(1);
    expect(duplicate.stderr).toContain('replication slot "s1" already exists');
    const active = walship(['slot', 'drop', '--node', address, 's1']);
    expect(active.status).toBe(1);
    expect(active.stderr).toMatch(/replication slot "s1" is active for PID \d+/);
    const missing = walship(['slot', 'drop', '--node', address, 'nosuch']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('replication slot "nosuch" does not exist');
    const invalid = walship(['slot', 'create', '--node', address, 'Bad-Name']);
    expect(invalid.status).toBe(2);
    expect(invalid.stderr).toContain('replication slot name "Bad-Name" contains invalid character');
    const onStandby = walship(['slot', 'create', '--node', `127.0.0.1:${s1.port}`, 'cascade']);
    expect(onStandby.status).toBe(1);
    expect(onStandby.stderr).toContain('replication slots cannot be managed on a standby yet');
    const unreachable = walship(['slot', 'list', '--node', `127.0.0.1:${await freePort()}`]);
    expect(unreachable.status).toBe(3);
  });
});
