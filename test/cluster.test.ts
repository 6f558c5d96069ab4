/**
 * The cluster toolkit on real processes: `walship cluster` on copies of
 * cluster-configs/local-3node.yaml (n1 primary, s1 synchronous, s2 asynchronous), moved to free
 * ports with --base-port and to a temporary data root with --data-root.
 *
 * With failover.mode set to manual, one cluster lives through the first part, each step starting
 * from where the last one left it:
 *
 *   up (created), up again (left as it is), status --json, writes; switchover under a write load
 *   (every acknowledged write is on the new primary, the old primary is a standby); switchovers
 *   back to n1 and to s1 again (a streaming standby stands in for the restarting old primary in
 *   the new primary's synchronous names, recorded in the state; the config's rule once it
 *   streams); failover
 *   after SIGKILL of the primary (the most advanced eligible standby wins, the old primary is
 *   fenced: started by hand it refuses writes); rejoin; a second failover, down, and up again
 *   (the fenced old primary comes back as a standby, never as a primary); history; down (no
 *   process left behind). A bad config is refused before anything starts.
 *
 * As shipped (automatic, with the partition proxy), a second cluster shows the failover monitor:
 * started by up, it fails over by itself after a SIGKILL of the primary, is restarted when it
 * dies; the relaxed synchronous mode keeps commits going with every synchronous standby stopped,
 * and a standby that dies is started again; every drill scenario runs once on it with short
 * timings (its safety verdict asserted; hang-primary's frozen primary and partition-primary's
 * cut-off one are left alive by the failover and, resumed or healed, acknowledge nothing once
 * their lease has run out); a failover that dies right after the promotion (made by hand under
 * the lock) is settled by the monitor from the transition it recorded; and it stops with down,
 * the proxy last.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WalshipClient, WalshipClusterClient } from '@walship/client';
import { formatLsn } from '@walship/engine';
import { CLI, ROOT, freePortRange, tempDir, waitFor, walship, type CliResult } from './helpers/node.js';
import { killClusterLeftovers, processAlive } from './helpers/cluster.js';

interface Member {
  name: string;
  address: string;
  port: number;
  metricsPort: number;
  role: string;
  state: string;
  timeline: number | null;
  lsn: string | null;
  lagBytes: number | null;
  writeLagMs: number | null;
  flushLagMs: number | null;
  replayLagMs: number | null;
  syncState: string | null;
  upstream: string | null;
  pid: number | null;
  dataDir: string;
}

interface MembersDocument {
  cluster: string;
  primary: string;
  timeline: number;
  members: Member[];
}

interface ChangeDocument extends MembersDocument {
  from: string;
  to: string;
  unavailableMs: number;
  oldPrimary: 'standby' | 'fenced';
  warnings: string[];
  decision: { winner: string; reasons: Array<{ code: string; message: string }>; candidates: Array<{ name: string; eligible: boolean; reasons: Array<{ code: string }> }> };
}

/** The walship CLI without blocking the event loop (a write load runs beside it). */
function walshipAsync(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ status: code ?? -1, stdout, stderr }));
  });
}

describe('walship cluster on local-3node.yaml', () => {
  let dir: string;
  let configFile: string;
  let dataRoot: string;
  let basePort: number;
  /** Every write acknowledged so far: key -> value. Each must be on every primary from here on. */
  const acknowledged = new Map<string, string>();

  // --timeout bounds every wait of a cluster command, so a step that hangs fails the test in time.
  const clusterArgs = (args: string[]) => ['cluster', ...args, '-f', configFile, '--base-port', String(basePort), '--data-root', dataRoot, ...(['up', 'switchover', 'failover', 'rejoin'].includes(args[0]!) ? ['--timeout', '20'] : [])];
  const cluster = (...args: string[]) => walship(clusterArgs(args));
  const clusterAsync = (...args: string[]) => walshipAsync(clusterArgs(args));
  const json = <T>(result: CliResult): T => {
    expect(result.status, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as T;
  };
  const status = () => json<MembersDocument>(cluster('status', '--json'));
  const member = (document: MembersDocument, name: string) => document.members.find((m) => m.name === name)!;
  const portOf = (name: string) => basePort + ['n1', 's1', 's2'].indexOf(name);

  async function client(name: string): Promise<WalshipClient> {
    return WalshipClient.connect({ port: portOf(name), timeoutMs: 10_000 });
  }

  async function write(name: string, count: number, prefix: string): Promise<void> {
    const c = await client(name);
    try {
      for (let i = 0; i < count; i++) {
        const key = `${prefix}-${i}`;
        await c.put(key, `value of ${key}`);
        acknowledged.set(key, `value of ${key}`);
      }
    } finally {
      await c.close();
    }
  }

  /** Every acknowledged write is on `name` (waiting until it has replayed as far as the primary wrote). */
  async function expectAllAcknowledged(name: string): Promise<void> {
    const c = await client(name);
    try {
      await waitFor(`${name} to hold all ${acknowledged.size} acknowledged writes`, async () => {
        const { entries } = await c.range({ limit: 1_000_000 });
        const found = new Map(entries.map((entry) => [entry.key.toString(), entry.value.toString()]));
        return [...acknowledged].every(([key, value]) => found.get(key) === value);
      }, 20_000, 50);
    } finally {
      await c.close();
    }
  }

  /**
   * Until the nodes apply synchronous_commit = on's wait for s1 (being wired now), a write is
   * acknowledged once the primary alone has flushed it, and a SIGKILL right after may take it
   * away from every standby. So before a crash, wait until the standbys have replayed all the
   * primary wrote; with synchronous replication this wait is what every commit does.
   */
  async function standbysCaughtUp(): Promise<void> {
    await waitFor('the standbys to replay everything the primary wrote', () => {
      const members = status().members.filter((m) => m.role === 'standby');
      return members.length > 0 && members.every((m) => m.state === 'streaming' && m.lagBytes === 0);
    });
  }

  beforeAll(async () => {
    dir = tempDir('cluster');
    configFile = path.join(dir, 'local-3node.yaml');
    // Failovers here are the test's own commands: the monitor (automatic mode) is tested below.
    const shipped = fs.readFileSync(path.join(ROOT, 'cluster-configs', 'local-3node.yaml'), 'utf8');
    expect(shipped).toMatch(/^ {2}mode: automatic/m);
    fs.writeFileSync(configFile, shipped.replace(/^ {2}mode: automatic.*$/m, '  mode: manual'));
    dataRoot = path.join(dir, 'data');
    basePort = await freePortRange(3);
  });

  afterAll(() => {
    // Whatever a failed step left running: only processes of this test's data root.
    killClusterLeftovers(dataRoot, ['n1', 's1', 's2']);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a bad config before anything starts, naming the file, line and field', () => {
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, fs.readFileSync(configFile, 'utf8').replace('synchronous_standby_names: FIRST 1 (s1)', 'synchronous_standby_names: FIRST 1 (s9)'));
    const result = walship(['cluster', 'up', '-f', bad, '--base-port', String(basePort), '--data-root', dataRoot]);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/invalid cluster config/);
    expect(result.stderr).toMatch(new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: synchronous_standby_names: "s9" is not a member of the cluster`));
    expect(fs.existsSync(dataRoot)).toBe(false);
    expect(walship(['cluster', 'validate', '-f', configFile]).status).toBe(0);
  });

  it('up creates the cluster: a primary and two streaming standbys; up again leaves it as it is', () => {
    const up = json<MembersDocument & { created: string[]; started: string[] }>(cluster('up', '--json'));
    expect(up.created).toEqual(['n1', 's1', 's2']);
    expect(up.primary).toBe('n1');
    expect(up.members.map((m) => [m.name, m.role, m.state, m.timeline])).toEqual([
      ['n1', 'primary', 'running', 1],
      ['s1', 'standby', 'streaming', 1],
      ['s2', 'standby', 'streaming', 1],
    ]);
    const again = json<MembersDocument & { created: string[]; started: string[] }>(cluster('up', '--json'));
    expect(again.created).toEqual([]);
    expect(again.started).toEqual([]);
    expect(again.members.map((m) => m.pid)).toEqual(up.members.map((m) => m.pid));
  });

  it('up again applies settings edited in the config: reloaded, or reported as needing a restart; a replication password goes into primary_conninfo', () => {
    const text = fs.readFileSync(configFile, 'utf8');
    expect(text).toMatch(/^ {2}wal_receiver_status_interval: 1s$/m);
    expect(text).toMatch(/^ {2}shared_buffers: 16MB$/m);
    fs.writeFileSync(configFile, text
      .replace(/^ {2}wal_receiver_status_interval: 1s$/m, '  wal_receiver_status_interval: 2s')
      .replace(/^ {2}shared_buffers: 16MB$/m, '  shared_buffers: 32MB\n  replication_password: s3cret'));
    const up = json<MembersDocument & { settingsChanged: Array<{ member: string; name: string; from: string; to: string; restartRequired: boolean }> }>(cluster('up', '--json'));
    const changed = (name: string) => up.settingsChanged.filter((change) => change.name === name);
    expect(changed('wal_receiver_status_interval').map((c) => [c.member, c.from, c.to, c.restartRequired])).toEqual([
      ['n1', '1s', '2s', false], ['s1', '1s', '2s', false], ['s2', '1s', '2s', false],
    ]);
    expect(changed('shared_buffers').map((c) => [c.member, c.restartRequired])).toEqual([['n1', true], ['s1', true], ['s2', true]]);
    expect(changed('replication_password').map((c) => [c.member, c.to])).toEqual([['n1', '(hidden)'], ['s1', '(hidden)'], ['s2', '(hidden)']]);
    expect(changed('primary_conninfo').map((c) => c.member)).toEqual(['s1', 's2']);
    // Reloaded where it can be; the standbys reconnected with the password (up waited for them to stream).
    expect(up.members.map((m) => [m.name, m.state])).toEqual([['n1', 'running'], ['s1', 'streaming'], ['s2', 'streaming']]);
    const show = (name: string, setting: string) => walship(['show', '-D', path.join(dataRoot, name), setting]).stdout.trim();
    expect(show('s1', 'wal_receiver_status_interval')).toBe('2s');
    expect(show('s1', 'primary_conninfo')).toMatch(/password=s3cret/);
    expect(json<MembersDocument & { settingsChanged: unknown[] }>(cluster('up', '--json')).settingsChanged).toEqual([]);
  });

  it('status --json has the members[] keys of DESIGN.md section 10', async () => {
    await write('n1', 20, 'before-switchover');
    const document = await waitFor('both standbys to report lag figures', () => {
      const seen = status();
      return seen.members.filter((m) => m.role === 'standby').every((m) => m.lagBytes === 0) ? seen : null;
    });
    for (const m of document.members) {
      for (const key of ['name', 'address', 'port', 'metricsPort', 'role', 'state', 'timeline', 'lsn', 'lagBytes', 'writeLagMs', 'flushLagMs', 'replayLagMs', 'syncState']) {
        expect(m, `${m.name}.${key}`).toHaveProperty(key);
      }
      expect(m.address).toBe(`127.0.0.1:${portOf(m.name)}`);
      expect(m.metricsPort).toBe(portOf(m.name));
      expect(m.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    }
    expect(member(document, 's1').upstream).toBe('n1');
    expect(member(document, 's1').syncState).not.toBeNull();
    const text = cluster('status');
    expect(text.stdout).toMatch(/Cluster: local-3node .*primary n1, timeline 1/);
    expect(text.stdout).toMatch(/\| s2 +\| 127\.0\.0\.1:\d+ \| standby \| streaming \|/);
  });

  it('switchover under a write load: no acknowledged write lost, the old primary becomes a standby', async () => {
    // Writers on the old primary until it goes away: what it acknowledged must all be on s1.
    const c = await client('n1');
    let stop = false;
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        const key = `during-switchover-${i}`;
        try {
          await c.put(key, `value of ${key}`);
          acknowledged.set(key, `value of ${key}`);
        } catch {
          return; // The primary stopped taking writes: this write is indeterminate, not acknowledged.
        }
      }
    })();
    await waitFor('the load to be under way', () => acknowledged.has('during-switchover-20'));
    const result = await clusterAsync('switchover', '--json');
    stop = true;
    await load;
    await c.close().catch(() => undefined);
    const change = json<ChangeDocument>(result);
    expect(change.from).toBe('n1');
    // s1 is the synchronous standby: the asynchronous s2 is never chosen over it.
    expect(change.to).toBe('s1');
    expect(change.timeline).toBe(2);
    expect(change.oldPrimary).toBe('standby');
    expect(change.warnings).toEqual([]);
    expect(change.unavailableMs).toBeGreaterThan(0);
    expect(change.decision.candidates.find((cand) => cand.name === 's2')!.reasons.map((r) => r.code)).toContain('not_synchronous');
    expect(change.members.map((m) => [m.name, m.role, m.state, m.upstream])).toEqual([
      ['n1', 'standby', 'streaming', 's1'],
      ['s1', 'primary', 'running', null],
      ['s2', 'standby', 'streaming', 's1'],
    ]);
    await expectAllAcknowledged('s1');
    await write('s1', 10, 'after-switchover');
    await expectAllAcknowledged('n1');
  });

  it('switchovers back and forth: while the old primary restarts a streaming standby stands in for it, recorded before the promotion; then the config\'s rule again', async () => {
    const readState = () => JSON.parse(fs.readFileSync(path.join(dataRoot, 'cluster-state.json'), 'utf8')) as {
      synchronousNames: { primary: string; names: string } | null;
      observation: { primary: string; synchronousStandbyNames: string } | null;
    };
    // Back to n1, the config's FIRST 1 (s1) would make n1's first commits wait for s1's restart.
    for (const [from, to, standIn, rule] of [['s1', 'n1', 'FIRST 1 (s1, s2)', 'FIRST 1 (s1)'], ['n1', 's1', 'FIRST 1 (s2)', 'FIRST 1 (n1, s2)']] as const) {
      const result = await clusterAsync('switchover', '--to', to, '--json', '--progress');
      const change = json<ChangeDocument>(result);
      expect([change.from, change.to, change.oldPrimary, change.warnings]).toEqual([from, to, 'standby', []]);
      expect(result.stderr).toContain(`${to}: promoting (synchronous_standby_names = '${standIn}')`);
      // The old primary streams again: the config's rule is in force, and the state records it.
      expect(readState().synchronousNames).toEqual({ primary: to, names: rule });
      expect(readState().observation).toMatchObject({ primary: to, synchronousStandbyNames: rule });
      expect(member(change, from)).toMatchObject({ role: 'standby', state: 'streaming' });
      await write(to, 10, `after-switchover-to-${to}`);
      await expectAllAcknowledged(from);
    }
  });

  it('failover after SIGKILL of the primary: the most advanced eligible standby is promoted, the old primary is fenced', async () => {
    await standbysCaughtUp();
    const before = status();
    const pid = member(before, 's1').pid!;
    process.kill(pid, 'SIGKILL');
    await waitFor('the primary to be gone', () => !processAlive(pid));
    const change = json<ChangeDocument>(await clusterAsync('failover', '--json'));
    expect(change.from).toBe('s1');
    expect(['n1', 's2']).toContain(change.to);
    expect(change.decision.winner).toBe(change.to);
    expect(change.decision.reasons[0]!.code).toBe('most_advanced');
    expect(change.oldPrimary).toBe('fenced');
    expect(change.timeline).toBe(5);
    const fenced = member(change, 's1');
    expect([fenced.role, fenced.state]).toEqual(['fenced', 'fenced']);
    const other = change.to === 'n1' ? 's2' : 'n1';
    expect([member(change, other).role, member(change, other).state, member(change, other).upstream]).toEqual(['standby', 'streaming', change.to]);
    await expectAllAcknowledged(change.to);
    await write(change.to, 10, 'after-failover');

    // The fence: started by hand, the old primary comes up read-only.
    const s1Dir = member(change, 's1').dataDir;
    expect(fs.existsSync(path.join(s1Dir, 'standby.signal'))).toBe(true);
    const started = walship(['start', '-D', s1Dir]);
    expect(started.status, started.stderr).toBe(0);
    const refused = walship(['put', '--node', `127.0.0.1:${portOf('s1')}`, 'fenced-write', 'x']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/read-only standby/);
    expect(walship(['stop', '-D', s1Dir]).status).toBe(0);
  });

  it('rejoin rewinds the old primary and starts it as a standby of the new one', async () => {
    const document = json<MembersDocument>(cluster('rejoin', 's1', '--json'));
    const s1 = member(document, 's1');
    expect([s1.role, s1.state, s1.timeline, s1.upstream]).toEqual(['standby', 'streaming', 5, document.primary]);
    await expectAllAcknowledged('s1');
  });

  it('after another failover, up brings the fenced old primary back as a standby, never as a primary', async () => {
    await standbysCaughtUp();
    const before = status();
    const primary = before.primary;
    process.kill(member(before, primary).pid!, 'SIGKILL');
    const change = json<ChangeDocument>(await clusterAsync('failover', '--json'));
    expect(change.from).toBe(primary);
    await write(change.to, 5, 'after-second-failover');
    const down = cluster('down');
    expect(down.status, down.stderr).toBe(0);
    expect(status().members.map((m) => m.state).sort()).toEqual(['fenced', 'stopped', 'stopped']);

    const up = json<MembersDocument & { started: string[]; rejoined: string[] }>(cluster('up', '--json'));
    expect(up.primary).toBe(change.to);
    expect(up.rejoined).toEqual([primary]);
    const old = member(up, primary);
    expect([old.role, old.state, old.timeline, old.upstream]).toEqual(['standby', 'streaming', 6, change.to]);
    expect(up.members.filter((m) => m.role === 'primary').map((m) => m.name)).toEqual([change.to]);
    await expectAllAcknowledged(primary);
  });

  it('history lists every change with its decision', () => {
    const { events } = json<{ events: Array<{ event: string; member: string; from: string | null; decision: unknown }> }>(cluster('history', '--json'));
    const changes = events.filter((e) => e.event !== 'rejoin').map((e) => e.event);
    expect(changes).toEqual(['bootstrap', 'switchover', 'switchover', 'switchover', 'failover', 'failover']);
    expect(events.filter((e) => e.event === 'rejoin').length).toBeGreaterThanOrEqual(3);
    for (const e of events.filter((e) => e.event === 'failover')) expect(e.decision).not.toBeNull();
  });

  it('a standby stopped with WAL past where the new primary was promoted is rewound when started, not waited for', async () => {
    await standbysCaughtUp();
    const before = status();
    const oldPrimary = before.primary;
    const [behind, ahead] = before.members.filter((m) => m.role === 'standby').map((m) => m.name) as [string, string];
    // `behind` stopped; `ahead` goes on receiving WAL that `behind` never gets.
    expect(cluster('stop', behind).status).toBe(0);
    const c = await client(oldPrimary);
    try {
      for (let i = 0; i < 5; i++) {
        // Not counted as acknowledged: the forced failover below promotes a standby without them.
        await c.put(`past-the-fork-${i}`, 'x', { timeoutMs: 300 }).catch(() => undefined);
      }
    } finally {
      await c.close();
    }
    await waitFor(`${ahead} to replay all the primary wrote`, () => member(status(), ahead).lagBytes === 0);
    expect(cluster('stop', ahead).status).toBe(0);
    expect(cluster('kill', oldPrimary).status).toBe(0);
    // Started as a bare node (its upstream is gone: cluster start would wait for it to stream).
    const behindStarted = walship(['start', '-D', member(before, behind).dataDir]);
    expect(behindStarted.status, behindStarted.stderr).toBe(0);
    const change = json<ChangeDocument>(await clusterAsync('failover', '--to', behind, '--force', '--json'));
    expect(change.to).toBe(behind);

    // Started, `ahead` replays its own WAL past the fork and could never follow: it is rewound.
    const started = await walshipAsync([...clusterArgs(['start', ahead]), '--timeout', '20', '--progress', '--json']);
    expect(started.status, started.stderr).toBe(0);
    expect(started.stderr).toMatch(new RegExp(`${ahead}: cannot follow ${behind}: it replayed timeline \\d+ to [0-9A-F/]+, past [0-9A-F/]+ where the primary's timeline \\d+ forked from it; rewinding it`));
    const now = status();
    expect([member(now, ahead).role, member(now, ahead).state, member(now, ahead).upstream, member(now, ahead).timeline]).toEqual(['standby', 'streaming', behind, change.timeline]);
    await expectAllAcknowledged(ahead);
    expect(json<MembersDocument>(cluster('rejoin', oldPrimary, '--json')).members.filter((m) => m.state === 'streaming').length).toBe(2);
  });

  it('down stops every member and leaves no process behind', () => {
    const pids = status().members.map((m) => m.pid!);
    expect(pids.every((pid) => pid > 0)).toBe(true);
    const down = json<{ stopped: string[] }>(cluster('down', '--json'));
    expect(down.stopped.sort()).toEqual(['n1', 's1', 's2']);
    expect(pids.filter(processAlive)).toEqual([]);
    expect(status().members.map((m) => m.state)).toEqual(['stopped', 'stopped', 'stopped']);
  });
});

describe('the failover monitor on local-3node.yaml as shipped (automatic)', () => {
  let dir: string;
  let dataRoot: string;
  let basePort: number;
  /** The commit LSN of the routed client's write after the failover, for a later read that must see it. */
  let routedAfterLsn = '';
  const lsnOfRoutedAfter = () => routedAfterLsn;
  const configFile = path.join(ROOT, 'cluster-configs', 'local-3node.yaml');
  const cluster = (...args: string[]) =>
    walship(['cluster', ...args, '-f', configFile, '--base-port', String(basePort), '--data-root', dataRoot, ...(args[0] === 'up' ? ['--timeout', '20'] : [])]);
  const json = <T>(result: CliResult): T => {
    expect(result.status, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as T;
  };
  const monitorPidFile = () => JSON.parse(fs.readFileSync(path.join(dataRoot, 'monitor.pid'), 'utf8')) as { pid: number; workerPid: number | null; restarts: number };

  beforeAll(async () => {
    dir = tempDir('cluster-monitor');
    dataRoot = path.join(dir, 'data');
    basePort = await freePortRange(3);
  });

  afterAll(() => {
    killClusterLeftovers(dataRoot, ['n1', 's1', 's2']);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('fails over by itself after a SIGKILL of the primary, and says why', async () => {
    const up = json<MembersDocument & { monitor: { pid: number; started: boolean } }>(cluster('up', '--json'));
    expect(up.monitor.started).toBe(true);
    expect(processAlive(up.monitor.pid)).toBe(true);
    const status = json<MembersDocument & { monitor: { running: boolean; mode: string } }>(cluster('status', '--json'));
    expect(status.monitor).toMatchObject({ running: true, mode: 'automatic' });

    const primary = await WalshipClient.connect({ port: basePort, timeoutMs: 10_000 });
    await primary.put('before-the-crash', 'kept');
    await primary.close();
    await waitFor('the standbys to replay the write', () => {
      const members = json<MembersDocument>(cluster('status', '--json')).members.filter((m) => m.role === 'standby');
      return members.every((m) => m.state === 'streaming' && m.lagBytes === 0);
    });

    // A routed client given every member: its writes follow the failover, its reads see them.
    const routed = await WalshipClusterClient.connect({
      members: [basePort, basePort + 1, basePort + 2].map((port) => ({ port })), standbyWaitMs: 500, failoverTimeoutMs: 20_000, timeoutMs: 20_000,
    });
    expect((await routed.put('routed-before', 'v1')).member).toBe('n1');

    process.kill(up.members.find((m) => m.name === 'n1')!.pid!, 'SIGKILL');
    const killedAt = Date.now();
    // A write sent with -f right after the crash: it finds the primary wherever it is, and waits
    // across the failover for the new one.
    const cliPut = walshipAsync(['put', '-f', configFile, '--base-port', String(basePort), '--data-root', dataRoot, '--timeout', '20', '--json', 'cli-after-the-crash', 'followed']);
    // Writes are available again once a standby answers as a primary and takes a write.
    const promoted = await waitFor('a standby to accept writes', async () => {
      for (const port of [basePort + 1, basePort + 2]) {
        try {
          const client = await WalshipClient.connect({ port, timeoutMs: 1_000 });
          try {
            await client.put('after-the-crash', 'written', { timeoutMs: 1_000 });
            return port;
          } finally {
            await client.close();
          }
        } catch {
          // Not the primary yet.
        }
      }
      return null;
    }, 20_000, 50);
    const unavailableMs = Date.now() - killedAt;
    console.log(`writes available again ${unavailableMs} ms after the primary's SIGKILL`);
    expect(unavailableMs).toBeLessThan(15_000);
    expect(promoted).toBe(basePort + 1); // s1, the synchronous standby

    const after = await waitFor('the failover to be in the history', () => {
      const { events } = json<{ events: Array<{ event: string; initiator?: string; from: string | null; member: string; decision: { winner: string } | null }> }>(cluster('history', '--json'));
      return events.find((e) => e.event === 'failover') ?? null;
    });
    expect(after).toMatchObject({ initiator: 'monitor', from: 'n1', member: 's1', decision: { winner: 's1' } });
    const log = fs.readFileSync(path.join(dataRoot, 'monitor.log'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { event: string; [key: string]: unknown });
    const down = log.find((entry) => entry.event === 'primary_down')!;
    expect(down).toMatchObject({ primary: 'n1' });
    expect(down.silentMs as number).toBeGreaterThanOrEqual(1_000);
    const failover = log.find((entry) => entry.event === 'failover')!;
    expect(failover).toMatchObject({ from: 'n1', to: 's1' });
    expect((failover.decision as { thresholds: { synchronous: string } }).thresholds.synchronous).toBe('FIRST 1 (s1)');
    // Rule 2 had the position released to synchronous commits, and the winner was at or past it.
    const { thresholds, candidates } = failover.decision as { thresholds: { releasedLsn: string | null }; candidates: Array<{ name: string; lsn: string }> };
    expect(thresholds.releasedLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    const lsnNumber = (text: string) => { const [hi, lo] = text.split('/'); return parseInt(hi!, 16) * 2 ** 32 + parseInt(lo!, 16); };
    expect(lsnNumber(candidates.find((c) => c.name === 's1')!.lsn)).toBeGreaterThanOrEqual(lsnNumber(thresholds.releasedLsn!));

    const followed = json<{ member: string; timeline: number }>(await cliPut);
    expect(followed).toMatchObject({ member: 's1', timeline: 2 });
    // get -f reads from the primary now (target_session_attrs=read-write by default with -f).
    const read = walship(['get', '-f', configFile, '--base-port', String(basePort), '--data-root', dataRoot, '--timeout', '20', 'cli-after-the-crash']);
    expect(read.status, read.stderr).toBe(0);
    expect(read.stdout).toBe('followed');
    try {
      const afterFailover = await routed.put('routed-after', 'v2');
      expect(afterFailover).toMatchObject({ member: 's1', timeline: 2 });
      expect(routed.lastWrittenTimeline).toBe(2);
      routedAfterLsn = formatLsn(afterFailover.lsn);
      expect((await routed.get('routed-after'))?.value.toString()).toBe('v2');
      expect((await routed.get('routed-before'))?.value.toString()).toBe('v1');
      // Served by a member that had replayed it on timeline 2 (s2 once repointed, or s1 itself), never the dead n1.
      expect(routed.lastRoute?.address).not.toBe(`127.0.0.1:${basePort}`);
    } finally {
      await routed.close();
    }
    const client = await WalshipClient.connect({ port: basePort + 1, timeoutMs: 10_000 });
    expect((await client.get('before-the-crash'))?.value.toString()).toBe('kept');
    expect((await client.get('cli-after-the-crash'))?.value.toString()).toBe('followed');
    await client.close();
  });

  it('is restarted when it dies, and up brings the fenced old primary back as a standby', async () => {
    const before = monitorPidFile();
    process.kill(before.workerPid!, 'SIGKILL');
    const after = await waitFor('the monitor to be restarted', () => {
      const current = monitorPidFile();
      return current.workerPid !== null && current.workerPid !== before.workerPid && processAlive(current.workerPid) ? current : null;
    }, 10_000);
    expect(after).toMatchObject({ pid: before.pid, restarts: before.restarts + 1 });
    const up = json<MembersDocument & { rejoined: string[]; monitor: { started: boolean } }>(cluster('up', '--json'));
    expect(up.rejoined).toEqual(['n1']);
    expect(up.monitor.started).toBe(false);
    expect(up.members.map((m) => [m.name, m.role, m.state])).toEqual([
      ['n1', 'standby', 'streaming'],
      ['s1', 'primary', 'running'],
      ['s2', 'standby', 'streaming'],
    ]);
    // A read that must come from a standby: the first standby of the list, n1 now, once it has
    // replayed the write made after the failover.
    const fromStandby = json<{ entries: Array<{ key: string; value: string }> }>(walship([
      'scan', '-f', configFile, '--base-port', String(basePort), '--data-root', dataRoot, '--target-session-attrs', 'standby',
      '--prefix', 'routed-', '--min-lsn', lsnOfRoutedAfter(), '--timeout', '20', '--json',
    ]));
    expect(fromStandby.entries.map((e) => [e.key, e.value])).toEqual([['routed-after', 'v2'], ['routed-before', 'v1']]);
  });

  it('relaxed synchronous mode: with every synchronous standby stopped, commits go on unconfirmed, and the standbys are named again once back', async () => {
    const before = json<MembersDocument>(cluster('status', '--json'));
    expect(before.primary).toBe('s1');
    const primary = await WalshipClient.connect({ port: basePort + 1, timeoutMs: 20_000 });
    const stateFile = () => JSON.parse(fs.readFileSync(path.join(dataRoot, 'cluster-state.json'), 'utf8')) as { observation: { releasedLsn: string | null; synchronousDisabled?: boolean } };
    const lsnNumber = (text: string) => { const [hi, lo] = text.split('/'); return parseInt(hi!, 16) * 2 ** 32 + parseInt(lo!, 16); };
    try {
      const names = async () => (await primary.status()).synchronousStandbyNames;
      // s1's place in FIRST 1 (s1) goes to n1, the old primary, then to s2 (once n1, just rejoined, streams).
      await waitFor('FIRST 1 (n1, s2) on the primary', async () => (await names()) === 'FIRST 1 (n1, s2)', 15_000, 50);
      for (const name of ['n1', 's2']) expect(cluster('stop', name).status).toBe(0);
      const stoppedAt = Date.now();
      // Strict would wait for them for ever; relaxed turns synchronous replication off.
      const ack = await primary.put('while-no-standby-streams', 'y');
      console.log(`commit acknowledged ${Date.now() - stoppedAt} ms after the synchronous standbys stopped`);
      expect(await names()).toBe('');
      expect(stateFile().observation.synchronousDisabled).toBe(true);
      const { events } = json<{ events: Array<{ event: string; initiator?: string; summary: string }> }>(cluster('history', '--json'));
      expect(events.filter((e) => e.event === 'synchronous').at(-1)).toMatchObject({ initiator: 'monitor', summary: expect.stringMatching(/ -> '' \((n1, )?s2 not streaming\)/) });

      // Back: synchronous again, and rule 2's floor covers what was acknowledged meanwhile.
      expect(cluster('start', 's2').status).toBe(0);
      await waitFor('FIRST 1 (s2) on the primary', async () => (await names()) === 'FIRST 1 (s2)', 15_000, 50);
      await waitFor('the observation to say synchronous again', () => stateFile().observation.synchronousDisabled === false, 5_000, 50);
      expect(lsnNumber(stateFile().observation.releasedLsn!)).toBeGreaterThanOrEqual(ack.lsn);

      // A standby that dies is started again by the monitor; one a person stopped (n1) is not.
      const s2Pid = json<MembersDocument>(cluster('status', '--json')).members.find((m) => m.name === 's2')!.pid!;
      process.kill(s2Pid, 'SIGKILL');
      const restarted = await waitFor('the monitor to start s2 again', () => {
        const s2 = json<MembersDocument>(cluster('status', '--json')).members.find((m) => m.name === 's2')!;
        return s2.pid !== null && s2.pid !== s2Pid && s2.state === 'streaming' ? s2 : null;
      }, 15_000, 100);
      expect(restarted.role).toBe('standby');
      expect(json<MembersDocument>(cluster('status', '--json')).members.find((m) => m.name === 'n1')!.state).toBe('stopped');
      const log = fs.readFileSync(path.join(dataRoot, 'monitor.log'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { at: string; event: string; member?: string })
        .filter((entry) => Date.parse(entry.at) >= stoppedAt);
      expect(log.some((entry) => entry.event === 'member_restarted' && entry.member === 's2')).toBe(true);
      expect(log.some((entry) => entry.event === 'member_restart' && entry.member === 'n1')).toBe(false);
    } finally {
      await primary.close();
    }
  });

  it.each(['kill-primary', 'hang-primary', 'partition-primary', 'kill-sync-standby', 'slow-standby', 'switchover', 'rejoin'])('drill %s: the safety verdict passes (its figures are reported, not asserted)', (scenario) => {
    const result = walship(['drill', scenario, '-f', configFile, '--base-port', String(basePort), '--data-root', dataRoot, '--duration', '2.5', '--rate', '60', '--timeout', '20', '--json']);
    const report = JSON.parse(result.stdout) as Record<string, unknown> & { verdict: string; splitBrainMs: number; reasons: string[]; artifacts: string };
    console.log(`drill ${scenario}: ${JSON.stringify({ verdict: report.verdict, ackedWrites: report.ackedWrites, ackedWritesLost: report.ackedWritesLost, indeterminateWrites: report.indeterminateWrites, splitBrainMs: report.splitBrainMs, detectionMs: report.detectionMs, promotionMs: report.promotionMs, unavailableMs: report.unavailableMs, timelines: report.timelines, oldPrimaryRejoined: report.oldPrimaryRejoined, oldPrimaryStopped: report.oldPrimaryStopped, oldPrimaryAcksAfterLease: report.oldPrimaryAcksAfterLease })}`);
    for (const key of ['scenario', 'verdict', 'ackedWrites', 'ackedWritesLost', 'indeterminateWrites', 'splitBrainMs', 'detectionMs', 'promotionMs', 'unavailableMs', 'timelines', 'oldPrimaryRejoined']) {
      expect(report, key).toHaveProperty(key);
    }
    expect(report.verdict, `${report.reasons.join('; ')} (artifacts: ${report.artifacts})`).toBe('pass');
    expect(result.status).toBe(0);
    expect(report.splitBrainMs).toBe(0);
    expect((report.ackedWrites as number) > 0).toBe(true);
    if (['kill-primary', 'hang-primary', 'partition-primary', 'rejoin'].includes(scenario)) expect(report.oldPrimaryAcksAfterLease).toBe(0);
    // Rule 1 on the nodes: the frozen or cut-off primary is not killed; resumed or healed after the failover, its lease has run out.
    if (scenario === 'hang-primary' || scenario === 'partition-primary') expect(report.oldPrimaryStopped).toBe('lease');
    expect(fs.existsSync(path.join(report.artifacts, 'report.json'))).toBe(true);
    expect(fs.existsSync(path.join(report.artifacts, 'writes.jsonl'))).toBe(true);
  });

  it('settles a failover whose process died right after the promotion: the state completed, the old primary fenced, writes back', async () => {
    const cluster_ = await import('@walship/cluster');
    const config = cluster_.loadClusterConfig(configFile, { basePort, dataRoot });
    await waitFor('the standbys to stream and replay all', () => {
      const members = json<MembersDocument>(cluster('status', '--json')).members.filter((m) => m.role === 'standby');
      return members.length === 2 && members.every((m) => m.state === 'streaming' && m.lagBytes === 0);
    }, 20_000);
    // A failover, as failover.ts does it, that dies between asking for the promotion and the
    // state naming the new primary: under the lock (the monitor pauses), the old primary killed
    // and fenced, the transition written, the target given its synchronous names and promoted.
    const lock = await cluster_.acquireClusterLock(dataRoot, 'test: a failover that dies after the promotion', undefined, true, true);
    let released = false;
    try {
      const state = cluster_.readClusterStateFor(config)!;
      const from = state.primary;
      const to = config.members.find((m) => state.members[m.name]?.role === 'standby')!.name;
      const fromDir = path.join(dataRoot, from);
      process.kill(Number(fs.readFileSync(path.join(fromDir, 'postmaster.pid'), 'utf8').split('\n')[0]), 'SIGKILL');
      await waitFor(`${from} to be gone`, () => !fs.existsSync(path.join(fromDir, 'postmaster.pid')) || !processAlive(Number(fs.readFileSync(path.join(fromDir, 'postmaster.pid'), 'utf8').split('\n')[0])));
      fs.writeFileSync(path.join(fromDir, 'standby.signal'), '');
      const fence = { at: new Date().toISOString(), reason: `failover to ${to}`, timeline: state.timeline, newPrimary: to };
      const recorded = cluster_.writeClusterState(dataRoot, { ...state, transition: { kind: 'failover', from, to, fromTimeline: state.timeline, startedAt: fence.at, fence } });
      const names = cluster_.synchronousStandbyNamesFor(config, cluster_.synchronousNamesInput(cluster_.withMember(recorded, from, { role: 'fenced', fence }), to));
      const toDir = path.join(dataRoot, to);
      expect(walship(['set', '-D', toDir, 'synchronous_standby_names', names]).status).toBe(0);
      const promoted = walship(['promote', '-D', toDir]);
      expect(promoted.status, promoted.stderr).toBe(0);
      // While the transition is there, status shows it.
      expect(json<{ transition: { from: string; to: string } | null }>(cluster('status', '--json')).transition).toMatchObject({ from, to });
      lock.release();
      released = true;

      // The monitor settles it: the target answers as the primary of a later timeline.
      const settled = await waitFor('the monitor to settle the transition', () => {
        const now = cluster_.readClusterStateFor(config)!;
        return now.primary === to && (now.transition ?? null) === null ? now : null;
      }, 20_000);
      expect(settled.timeline).toBe(state.timeline + 1);
      expect(settled.members[from]).toMatchObject({ role: 'fenced', fence: { newPrimary: to } });
      const { events } = json<{ events: Array<{ event: string; member: string; from: string | null; initiator?: string }> }>(cluster('history', '--json'));
      expect(events.at(-1)).toMatchObject({ event: 'transition', member: to, from, initiator: 'monitor' });
      const log = fs.readFileSync(path.join(dataRoot, 'monitor.log'), 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { event: string; outcome?: string });
      expect(log.filter((entry) => entry.event === 'transition_settled').at(-1)).toMatchObject({ outcome: 'completed' });
      // The new primary gets its lease from the monitor and takes writes.
      const port = config.members.find((m) => m.name === to)!.port;
      await waitFor(`${to} to take a write`, async () => {
        try {
          const client = await WalshipClient.connect({ port, timeoutMs: 1_000 });
          try {
            await client.put('after-the-settled-transition', 'written', { timeoutMs: 1_000 });
            return true;
          } finally {
            await client.close();
          }
        } catch {
          return false;
        }
      }, 20_000, 100);
      // up rejoins the fenced old primary, and the cluster is whole again.
      const up = json<MembersDocument & { rejoined: string[] }>(cluster('up', '--json'));
      expect(up.rejoined).toEqual([from]);
      expect(up.primary).toBe(to);
    } finally {
      if (!released) lock.release();
    }
  });

  it('down stops the monitor first, then the members, then the proxy, and leaves no process behind', () => {
    const { pid, workerPid } = monitorPidFile();
    const proxyPid = (JSON.parse(fs.readFileSync(path.join(dataRoot, 'proxy.pid'), 'utf8')) as { pid: number }).pid;
    expect(processAlive(proxyPid)).toBe(true);
    const before = json<MembersDocument>(cluster('status', '--json'));
    const primaryBeforeDown = before.primary;
    const memberPids = before.members.map((m) => m.pid!);
    const down = json<{ stopped: string[]; monitorStopped: boolean; proxyStopped: boolean }>(cluster('down', '--json'));
    expect(down.monitorStopped).toBe(true);
    expect(down.proxyStopped).toBe(true);
    expect(down.stopped.sort()).toEqual(['n1', 's1', 's2']);
    expect([pid, workerPid!, proxyPid, ...memberPids].filter(processAlive)).toEqual([]);
    expect(fs.existsSync(path.join(dataRoot, 'monitor.pid'))).toBe(false);
    // The primary's shutdown was not taken for a failure.
    expect(json<MembersDocument>(cluster('status', '--json')).primary).toBe(primaryBeforeDown);
  });
});
