/**
 * The replay-lag monitor on real processes: a primary with heartbeats and a standby.
 * - Idle cluster: the heartbeat keeps every lag of replication[] non-null and fresh, and the
 *   standby's replay delay small; with heartbeat_interval = 0 the lags go NULL (the false alert
 *   the heartbeat exists for).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestNode, waitFor, walship } from './helpers/node.js';
import { basebackup, nodeStatus } from './helpers/replication.js';

/**
 * Fast heartbeats and status replies, so that every figure is refreshed several times a second
 * and a silent standby counts as disconnected after 2 s (twice the status interval).
 */
const MONITORED = { heartbeat_interval: '200ms', wal_receiver_status_interval: '1s', wal_retrieve_retry_interval: '100ms' };

interface ReplicationRow {
  applicationName: string;
  state: string;
  replayLsn: string;
  writeLagMs: number | null;
  flushLagMs: number | null;
  replayLagMs: number | null;
  replyAgeMs: number | null;
}

interface Status {
  role: string;
  flushLsn: string;
  replication: ReplicationRow[];
  lastReplayedTimestamp?: string | null;
  heartbeatIntervalMs: number;
}

describe('the lag monitor', () => {
  let primary: TestNode;
  let standby: TestNode;

  beforeAll(async () => {
    primary = await TestNode.init('lag', MONITORED);
    await primary.start();
    standby = await basebackup(primary, 's1', []);
    await standby.start();
  });

  afterAll(async () => {
    for (const node of [standby, primary]) {
      if (node?.process !== null && node?.process?.pid !== undefined) {
        // A standby left stopped by a failed test must be continued before it can exit.
        try {
          process.kill(node.process.pid, 'SIGCONT');
        } catch {
          // Already gone.
        }
      }
      await node?.stop('SIGINT').catch(() => undefined);
    }
    if (primary !== undefined) fs.rmSync(path.dirname(primary.dataDir), { recursive: true, force: true });
  });

  async function standbyRow(): Promise<ReplicationRow | null> {
    const status = await nodeStatus<Status>(primary);
    return status.replication.find((row) => row.applicationName === 's1') ?? null;
  }

  it('keeps lags non-null and fresh on an idle cluster with heartbeats, and NULL without them', async () => {
    expect((await nodeStatus<Status>(primary)).heartbeatIntervalMs).toBe(200);
    await waitFor('s1 to stream with lag figures', async () => {
      const row = await standbyRow();
      return row !== null && row.state === 'streaming' && row.replayLagMs !== null;
    });
    // Nothing writes now; only heartbeats move the WAL. Watch the standby's replay position
    // advance five times, and every figure on the way.
    const replayed = new Set<string>();
    const samples: ReplicationRow[] = [];
    await waitFor('five heartbeats replayed by s1', async () => {
      const row = await standbyRow();
      if (row === null) throw new Error('s1 is no longer in replication[]');
      samples.push(row);
      replayed.add(row.replayLsn);
      return replayed.size >= 6;
    }, 20_000, 50);
    for (const row of samples) {
      expect(row.state).toBe('streaming');
      expect(row.writeLagMs, JSON.stringify(row)).not.toBeNull();
      expect(row.flushLagMs, JSON.stringify(row)).not.toBeNull();
      expect(row.replayLagMs, JSON.stringify(row)).not.toBeNull();
      // Fresh: a loopback standby replays a heartbeat well within a second, and replies at least
      // once per beat.
      expect(row.replayLagMs!).toBeLessThan(1_000);
      expect(row.replyAgeMs!).toBeLessThan(1_000);
    }
    // The standby's replay delay (now minus the last replayed commit or heartbeat) stays small.
    const standbyStatus = await nodeStatus<Status>(standby);
    expect(standbyStatus.lastReplayedTimestamp).toBeTruthy();
    expect(Date.now() - Date.parse(standbyStatus.lastReplayedTimestamp!)).toBeLessThan(2_000);

    // Without heartbeats an idle standby's lags are cleared (two fully applied replies in a row).
    expect(walship(['set', '--node', `127.0.0.1:${primary.port}`, 'heartbeat_interval', '0']).status).toBe(0);
    await waitFor('the lags of an idle standby to go NULL without heartbeats', async () => {
      const row = await standbyRow();
      return row !== null && row.writeLagMs === null && row.flushLagMs === null && row.replayLagMs === null;
    }, 10_000, 50);
    expect(walship(['set', '--node', `127.0.0.1:${primary.port}`, 'heartbeat_interval', '200ms']).status).toBe(0);
    await waitFor('lag figures back with heartbeats', async () => (await standbyRow())?.replayLagMs != null, 10_000, 50);
  });
});
