/**
 * The replay-lag monitor on real processes: a primary with heartbeats and a standby with a slot.
 * - Idle cluster: the heartbeat keeps every lag of replication[] non-null and fresh, and the
 *   standby's replay delay small; with heartbeat_interval = 0 the lags go NULL (the false alert
 *   the heartbeat exists for); with the standby's wal_receiver_status_interval = 0 it sends no
 *   status updates (its reply age grows).
 * - Under load (`walship load` in a process of its own): `lag --once --json` shows the standby's
 *   lag and rates; `--check` says WARNING past --warn. With the standby stopped (SIGSTOP) it
 *   becomes disconnected with null lag times, its lag in bytes grows, and `--check` says
 *   CRITICAL; after SIGCONT the lag shrinks and `--check` says OK.
 * - A `walship lag --record FILE` running meanwhile (not on a terminal: plain output) stops on
 *   SIGINT with status 0; `lag --report FILE --html OUT` summarizes it, and the page's embedded
 *   data is exactly what the recording holds for the standby.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, TestNode, waitFor, walship } from './helpers/node.js';
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

interface LagMember {
  name: string; address: string; port: number | null; metricsPort: number | null; role: string; state: string; timeline: number | null;
  lsn: string | null; lagBytes: number | null; writeLagMs: number | null; flushLagMs: number | null; replayLagMs: number | null;
  syncState: string | null; catchUpRateBytesPerSecond: number | null; reachable: boolean | null;
}

interface LagDocument {
  primary: string | null;
  timeline: number | null;
  walRateBytesPerSecond: number | null;
  members: LagMember[];
  slots: Array<{ name: string; retainedBytes: number | null; safeWalSizeBytes: number | null; invalidationEtaMs: number | null }>;
  check?: { status: number; line: string };
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
    primary = await TestNode.init('lag', { ...MONITORED, max_slot_wal_keep_size: '64MB' });
    await primary.start();
    standby = await basebackup(primary, 's1', [], ['--slot', 's1']);
    await standby.start();
  });

  afterAll(async () => {
    load?.kill('SIGKILL');
    recorder?.kill('SIGKILL');
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

  let load: ChildProcess | null = null;
  let recorder: ChildProcess | null = null;
  const nodes = () => `127.0.0.1:${primary.port},127.0.0.1:${standby.port}`;

  /** `walship lag ... --json`'s document (exit status 0 expected unless told). */
  function lagJson(args: string[], expectStatus = 0): LagDocument {
    const result = walship(['lag', '--node', nodes(), ...args, '--json']);
    expect(result.status, result.stderr).toBe(expectStatus);
    return JSON.parse(result.stdout) as LagDocument;
  }

  function check(args: string[]): { status: number; line: string } {
    const result = walship(['lag', '--node', nodes(), '--check', '--timeout', '0.5', ...args]);
    expect(result.stdout.split('\n').filter((l) => l !== '')).toHaveLength(1);
    return { status: result.status, line: result.stdout.trim() };
  }

  function s1Of(document: LagDocument): LagMember {
    const s1 = document.members.find((m) => m.name === 's1');
    if (s1 === undefined) throw new Error(`no s1 in ${JSON.stringify(document.members.map((m) => m.name))}`);
    return s1;
  }

  async function standbyRow(): Promise<ReplicationRow | null> {
    const status = await nodeStatus<Status>(primary);
    return status.replication.find((row) => row.applicationName === 's1') ?? null;
  }

  it('keeps lags non-null and fresh on an idle cluster with heartbeats, and NULL without them', async () => {
    expect((await nodeStatus<Status>(primary)).heartbeatIntervalMs).toBe(200);
    // At the start of a stream the standby has often replayed all it is first sent, and two
    // fully-applied replies in a row clear the lags (PostgreSQL's rule) until the first heartbeat
    // arrives: judge from the first heartbeat replayed on this stream on.
    let firstReplayed: string | null = null;
    await waitFor('s1 to stream and replay a heartbeat', async () => {
      const row = await standbyRow();
      if (row === null || row.state !== 'streaming') return false;
      firstReplayed ??= row.replayLsn;
      return row.replayLsn !== firstReplayed && row.replayLagMs !== null;
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
    // wal_receiver_status_interval = 0 turns the standby's status updates off (PostgreSQL's
    // meaning of 0): an idle standby then stays silent, its last reply ageing.
    expect(walship(['set', '--node', `127.0.0.1:${standby.port}`, 'wal_receiver_status_interval', '0']).status).toBe(0);
    await waitFor('no status update from s1 for 2 s', async () => ((await standbyRow())?.replyAgeMs ?? 0) > 2_000, 10_000, 50);
    expect(walship(['set', '--node', `127.0.0.1:${standby.port}`, 'wal_receiver_status_interval', '1s']).status).toBe(0);
    expect(walship(['set', '--node', `127.0.0.1:${primary.port}`, 'heartbeat_interval', '200ms']).status).toBe(0);
    await waitFor('lag figures back with heartbeats', async () => (await standbyRow())?.replayLagMs != null, 10_000, 50);
    await waitFor('status updates from s1 again', async () => ((await standbyRow())?.replyAgeMs ?? Infinity) < 1_000, 10_000, 50);
  });

  it('shows a standby\'s lag under load, then disconnected and growing while it is stopped, then catching up', async () => {
    // The live view, not on a terminal, recording every sample of what follows.
    const recordingFile = path.join(path.dirname(primary.dataDir), 'lag.jsonl');
    recorder = spawn(process.execPath, [CLI, 'lag', '--node', nodes(), '--interval', '200', '--timeout', '0.5', '--record', recordingFile], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let recorderOutput = '';
    recorder.stdout!.on('data', (d: Buffer) => { recorderOutput += d.toString(); });
    recorder.stderr!.on('data', (d: Buffer) => { recorderOutput += d.toString(); });
    const recorderExit = new Promise<number | null>((resolve) => recorder!.once('exit', (code) => resolve(code)));
    load = spawn(process.execPath, [CLI, 'load', '--node', `127.0.0.1:${primary.port}`, '--count', '100000000', '--value-size', '200', '--clients', '1', '--quiet'], {
      cwd: ROOT, stdio: 'ignore',
    });
    await waitFor('the load to reach the standby', () => {
      const document = lagJson(['--once', '--interval', '300']);
      return (document.walRateBytesPerSecond ?? 0) > 10_000 && s1Of(document).catchUpRateBytesPerSecond !== null;
    }, 20_000);

    // --once --json: DESIGN's keys, the standby measured against the primary.
    const streaming = lagJson(['--once', '--interval', '300']);
    expect(streaming.primary).toBe('walship-' + primary.port);
    const p = streaming.members.find((m) => m.role === 'primary')!;
    expect(p).toMatchObject({ address: '127.0.0.1', port: primary.port, metricsPort: primary.port, state: 'running', timeline: 1, lagBytes: 0 });
    const s1 = s1Of(streaming);
    expect(s1).toMatchObject({ role: 'standby', state: 'streaming', port: standby.port, syncState: 'async', timeline: 1, reachable: true });
    expect(s1.lagBytes).toBeGreaterThanOrEqual(0);
    expect(s1.replayLagMs).not.toBeNull();
    expect(s1.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(streaming.slots[0]).toMatchObject({ name: 's1', safeWalSizeBytes: expect.any(Number) });

    // Every replay lag under load is above a microsecond: WARNING; a gigabyte is never reached.
    const warning = check(['--warn', '1us', '--crit', '1GB']);
    expect(warning.status, warning.line).toBe(1);
    expect(warning.line).toMatch(/^WALSHIP_REPLICATION_LAG WARNING: s1 replay lag .* \(warning above 0\.001 ms\) \| s1_lag=\d+B;;1073741824;0 s1_replay_lag=/);

    // Stopped: no replies, so disconnected after twice wal_receiver_status_interval (2 s).
    const standbyPid = standby.process!.pid!;
    process.kill(standbyPid, 'SIGSTOP');
    let stopped: LagMember | null = null;
    let grown = 0;
    try {
      await waitFor('s1 to be reported disconnected', () => {
        const member = s1Of(lagJson(['--once', '--interval', '200', '--timeout', '0.5']));
        if (member.state === 'disconnected') stopped = member;
        return stopped !== null;
      }, 20_000);
      expect(stopped!).toMatchObject({ writeLagMs: null, flushLagMs: null, replayLagMs: null, reachable: false });
      const lagWhenStopped = stopped!.lagBytes!;
      expect(lagWhenStopped).toBeGreaterThan(0);
      await waitFor('s1\'s lag in bytes to grow while it is stopped', () => {
        const member = s1Of(lagJson(['--once', '--interval', '200', '--timeout', '0.5']));
        if (member.state === 'disconnected' && member.lagBytes! > lagWhenStopped + 100_000) grown = member.lagBytes!;
        return grown > 0;
      }, 20_000);
      const critical = check(['--warn', '1GB', '--crit', '1kB']);
      expect(critical.status, critical.line).toBe(2);
      expect(critical.line).toMatch(/^WALSHIP_REPLICATION_LAG CRITICAL: s1 disconnected: no reply for .*, [\d.]+ [kMG]?B behind/);
      // Even with thresholds it cannot reach, a disconnected standby is critical: never "0 lag".
      expect(check(['--crit', '1TB']).status).toBe(2);
    } finally {
      process.kill(standbyPid, 'SIGCONT');
    }

    // Resumed: it streams again, its lag shrinks, and the check is OK.
    await waitFor('s1 to stream again, less far behind than while stopped', () => {
      const member = s1Of(lagJson(['--once', '--interval', '200']));
      return member.state === 'streaming' && member.lagBytes! < grown && member.replayLagMs !== null;
    }, 30_000);
    await waitFor('--check to say OK', () => check(['--warn', '512MB', '--crit', '1GB']).status === 0, 30_000);
    load.kill('SIGINT');

    // Ctrl-C ends the recording view cleanly; its plain output had no escape codes.
    recorder.kill('SIGINT');
    expect(await recorderExit, recorderOutput.slice(-2000)).toBe(0);
    expect(recorderOutput).toMatch(/^primary walship-\d+ on timeline 1/m);
    expect(recorderOutput).not.toContain('\u001b');

    const htmlFile = path.join(path.dirname(primary.dataDir), 'lag.html');
    const report = walship(['lag', '--report', recordingFile, '--html', htmlFile, '--json']);
    expect(report.status, report.stderr).toBe(0);
    const summary = JSON.parse(report.stdout) as { samples: number; standbys: Array<{ name: string; disconnectedSamples: number; replayLagMs: { p50: number; max: number }; lagBytes: { max: number } }> };
    expect(summary.samples).toBeGreaterThan(10);
    const s1Summary = summary.standbys.find((s) => s.name === 's1')!;
    expect(s1Summary.disconnectedSamples).toBeGreaterThan(0);
    expect(s1Summary.replayLagMs.p50).toBeGreaterThan(0);
    expect(s1Summary.lagBytes.max).toBeGreaterThanOrEqual(grown);
    // The page carries the chart's data for each standby: what the recording holds for s1.
    const html = fs.readFileSync(htmlFile, 'utf8');
    const data = JSON.parse(/<script type="application\/json" id="walship-lag-data">([\s\S]*?)<\/script>/.exec(html)![1]!) as {
      standbys: Array<{ name: string; points: Array<[number, number | null, number | null, string]> }>;
    };
    const recorded = fs.readFileSync(recordingFile, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { timeMs: number; members: LagMember[] });
    const s1Points = data.standbys.find((s) => s.name === 's1')!.points;
    expect(s1Points.map(([t, lag, bytes, state]) => [t, lag, bytes, state])).toEqual(recorded.flatMap((r) => {
      const m = r.members.find((x) => x.name === 's1');
      return m === undefined ? [] : [[r.timeMs, m.replayLagMs, m.lagBytes, m.state]];
    }));
    expect(s1Points.some(([, , , state]) => state === 'disconnected')).toBe(true);
    expect(html).toMatch(/<path d="M[^"]+" stroke="[^"]+" class="series" data-standby="s1">/);
    const text = walship(['lag', '--report', recordingFile]);
    expect(text.status).toBe(0);
    expect(text.stdout).toContain('s1: replay lag (log scale)');
  });

  it('serves each standby\'s lag, the walreceiver\'s status and the replay delay on /metrics', async () => {
    const scrape = async (node: TestNode): Promise<Map<string, number>> => {
      const response = await fetch(`http://127.0.0.1:${node.port}/metrics`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const samples = new Map<string, number>();
      for (const line of (await response.text()).split('\n')) {
        if (line === '' || line.startsWith('# ')) continue;
        const match = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
        expect(match, line).not.toBeNull();
        samples.set(match![1]!, Number(match![2]));
      }
      return samples;
    };
    await waitFor('the primary\'s /metrics to carry s1\'s lags', async () => (await scrape(primary)).has('walship_replication_replay_lag_seconds{application_name="s1"}'), 10_000, 100);
    const p = await scrape(primary);
    expect(p.get('walship_in_recovery')).toBe(0);
    expect(p.get('walship_replication_standbys')).toBe(1);
    expect(p.get('walship_replication_streaming{application_name="s1"}')).toBe(1);
    expect(p.get('walship_replication_sync_state{application_name="s1",sync_state="async"}')).toBe(1);
    expect(p.get('walship_replication_lag_bytes{application_name="s1"}')).toBeGreaterThanOrEqual(0);
    for (const stage of ['write', 'flush', 'replay']) {
      expect(p.get(`walship_replication_${stage}_lag_seconds{application_name="s1"}`)).toBeLessThan(1);
    }
    expect(p.get('walship_replication_slot_retained_bytes{slot_name="s1"}')).toBeGreaterThanOrEqual(0);
    expect(p.get('walship_replication_slot_safe_wal_size_bytes{slot_name="s1"}')).toBeGreaterThan(0);
    expect(p.get('walship_heartbeats_total')).toBeGreaterThan(0);
    expect(p.get('walship_commits_total')).toBeGreaterThan(0);
    expect(p.has('walship_checkpoints_total{cause="timed"}')).toBe(true);
    expect(p.get('walship_buffer_pool_hits_total')).toBeGreaterThan(0);
    const s = await scrape(standby);
    expect(s.get('walship_in_recovery')).toBe(1);
    expect(s.get('walship_wal_receiver_streaming')).toBe(1);
    expect(s.get('walship_wal_receiver_status{status="streaming"}')).toBe(1);
    // Heartbeats keep the replay delay small on the now idle cluster.
    expect(s.get('walship_replay_delay_seconds')).toBeLessThan(2);
    expect(s.get('walship_wal_replay_lsn_bytes')).toBeGreaterThan(0);
  });
});
