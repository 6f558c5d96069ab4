/**
 * `walship lag`'s live view in a real terminal: tmux (Debian's package; .ci/run installs it when
 * missing) runs `walship lag --node PRIMARY,STANDBY` in a detached session of its own server (its
 * socket in the test's folder, no user config), and the test reads the screen with capture-pane,
 * as a person would see it.
 *
 * - The view is full screen (the alternate screen) and shows every member: the primary, its
 *   standby streaming, the lag columns and the sparkline.
 * - The primary is killed (SIGKILL) and the standby promoted: the view is still running, shows
 *   the standby as the primary on timeline 2, the timeline change, and the old primary as not
 *   answering.
 * - Ctrl-C (send-keys C-c) ends it with status 0 and the normal screen back.
 * - `npm start` (scripts/start-demo.mjs, on local-3node.yaml moved to free ports and a temporary
 *   data root) opens the same view on its cluster with the load's figures under it; the load
 *   follows a switchover; Ctrl-C closes the view, then stops the load, the monitor and every
 *   member: no process is left. The same with both its streams piped into tee
 *   (`npm start 2>&1 | tee LOG`), which Ctrl-C ends too.
 *
 * A missing tmux fails the test, saying how to install it: nothing here is skipped.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, TestNode, freePortRange, waitFor, walship } from './helpers/node.js';
import { basebackup } from './helpers/replication.js';

/** Fresh figures several times a second; a silent standby is disconnected after 2 s. */
const MONITORED = { heartbeat_interval: '200ms', wal_receiver_status_interval: '1s', wal_retrieve_retry_interval: '100ms' };
const COLUMNS = 200;
const ROWS = 40;

function tmuxBinary(): string {
  const candidates = process.env.TMUX_BINARY !== undefined ? [process.env.TMUX_BINARY] : ['/usr/bin/tmux', '/usr/local/bin/tmux'];
  const found = candidates.find((candidate) => fs.existsSync(candidate));
  if (found === undefined) {
    throw new Error(
      `tmux is not installed (looked for ${candidates.join(', ')}). This test draws the live view in a real terminal: ` +
        'install Debian\'s package with "apt-get install -y --no-install-recommends tmux" (npm test does, as root), or set TMUX_BINARY.',
    );
  }
  return found;
}

describe('walship lag\'s live view in a real terminal (tmux)', () => {
  let primary: TestNode;
  let standby: TestNode;
  let tmux: string;
  /** A tmux server of this test's own: its socket (-S) in the test's folder, removed with it. */
  let socket: string;
  let sessionStarted = false;
  /**
   * The npm start clusters the tests started and have not yet seen stopped: their -f /
   * --base-port / --data-root. A set, not one variable: a test that fails leaves its cluster here
   * while the next one starts another, and afterAll stops them all.
   */
  const demosRunning = new Set<{ overrides: string[]; dataRoot: string }>();
  /** A demo cluster on free ports under the test's folder, tracked until the test sees it stopped. */
  async function newDemo(name: string) {
    const dataRoot = path.join(path.dirname(primary.dataDir), name);
    const basePort = await freePortRange(3);
    const demo = { basePort, dataRoot, overrides: ['-f', path.join(ROOT, 'cluster-configs', 'local-3node.yaml'), '--base-port', String(basePort), '--data-root', dataRoot] };
    demosRunning.add(demo);
    return demo;
  }
  type DemoStatus = { members: Array<{ name: string; pid: number | null }>; monitor: { running: boolean } };
  const demoStatus = (demo: { overrides: string[] }) => JSON.parse(walship(['cluster', 'status', ...demo.overrides, '--json']).stdout) as DemoStatus;
  /** Processes (not zombies) whose command line names the demo's data root: the monitor, its supervisor, the members. */
  const processesNaming = (dataRoot: string) =>
    spawnSync('ps', ['-eo', 'pid,stat,args'], { encoding: 'utf8' }).stdout.split('\n').filter((line) => line.includes(dataRoot) && !/\sZ/.test(line));

  const run = (...args: string[]) => {
    const result = spawnSync(tmux, ['-S', socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`tmux ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
    return result.stdout;
  };
  /** The screen of a session as it shows now, one string per row. */
  const screen = (session = 'lag') => run('capture-pane', '-p', '-t', session).split('\n');
  /** Whether the pane shows the alternate screen (a full-screen program draws there). */
  const alternateScreen = (session = 'lag') => run('display-message', '-p', '-t', session, '#{alternate_on}').trim() === '1';
  /**
   * A command line for a pane: the program under bash, which prints its exit status once it ends
   * and then waits for a line that never comes, so the pane and its last screen stay until the
   * server is killed (a pane whose process exits may lose its last output, and tmux's
   * pane_dead_status is not always filled in). Ctrl-C reaches the program; bash waits for it and
   * goes on unless the program itself died of the signal.
   */
  const paneCommand = (words: readonly string[]) =>
    `exec bash -c '"$@"; echo "[exit status $?]"; read -r _' walship-test ${words.map((word) => `'${word}'`).join(' ')}`;
  /** The program's exit status once the pane shows it, else null. */
  const exitStatus = (session = 'lag') => {
    const match = /\[exit status (\d+)\]/.exec(screen(session).join('\n'));
    return match === null ? null : Number(match[1]);
  };
  /** Waits until the screen satisfies `check`; on a timeout, says what the screen showed. */
  async function screenShows(what: string, check: (text: string) => boolean, timeoutMs = 20_000, session = 'lag'): Promise<string> {
    let last = '';
    try {
      await waitFor(what, () => {
        last = screen(session).join('\n');
        return check(last);
      }, timeoutMs, 100);
    } catch (error) {
      throw new Error(`${(error as Error).message}; the screen showed:\n${last}`);
    }
    return last;
  }
  const row = (text: string, name: string) => text.split('\n').find((line) => line.trimStart().startsWith(`${name} `)) ?? '';

  beforeAll(async () => {
    tmux = tmuxBinary();
    primary = await TestNode.init('lag-terminal', MONITORED);
    socket = path.join(path.dirname(primary.dataDir), 'tmux.sock');
    await primary.start();
    standby = await basebackup(primary, 's1', Object.entries(MONITORED).flatMap(([k, v]) => ['--set', `${k}=${v}`]));
    await standby.start();
  });

  afterAll(async () => {
    if (sessionStarted) spawnSync(tmux, ['-S', socket, 'kill-server']);
    // Demo clusters failed tests left running are stopped (immediate: nothing to keep).
    for (const demo of demosRunning) walship(['cluster', 'down', ...demo.overrides, '--mode', 'immediate', '--quiet']);
    for (const node of [standby, primary]) await node?.stop('SIGINT').catch(() => undefined);
    if (primary !== undefined) fs.rmSync(path.dirname(primary.dataDir), { recursive: true, force: true });
  });

  it('shows every member, survives a failover, and gives the terminal back on Ctrl-C', async () => {
    const command = paneCommand([process.execPath, CLI, 'lag', '--node', `127.0.0.1:${primary.port},127.0.0.1:${standby.port}`, '--interval', '300', '--timeout', '0.5']);
    run('new-session', '-d', '-s', 'lag', '-x', String(COLUMNS), '-y', String(ROWS), command);
    sessionStarted = true;
    const primaryName = `walship-${primary.port}`;

    const before = await screenShows('the view to show the primary and its standby streaming', (text) =>
      text.includes(`primary ${primaryName} on timeline 1`) && /^ {2}s1\s+standby\s+streaming\s+async\s+\d[\d.]* [kMG]?B\s+\d[\d.]* m?s\s/.test(row(text, 's1')));
    expect({ exitStatus: exitStatus(), alternateScreen: alternateScreen() }).toEqual({ exitStatus: null, alternateScreen: true });
    const lines = before.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^primary ${primaryName} on timeline 1 · flush [0-9A-F]+/[0-9A-F]+ · WAL `));
    expect(lines.find((l) => l.startsWith('member'))).toMatch(/^member\s+role\s+state\s+sync\s+lag\s+write lag\s+flush lag\s+replay lag\s+last 5 min\s+replay delay\s+catch-up\s+LSN$/);
    expect(row(before, primaryName)).toMatch(new RegExp(`^${primaryName}\\s+primary\\s+running\\s`));
    expect(before).toContain('Ctrl-C to quit');
    // Nothing is drawn past the screen: at most ROWS - 1 rows are used, and none wider than the pane.
    for (const line of lines) expect([...line].length).toBeLessThanOrEqual(COLUMNS);

    // The failover: the primary dies, the standby is promoted.
    await primary.kill();
    const promoted = walship(['promote', '-D', standby.dataDir]);
    expect(promoted.status, promoted.stderr).toBe(0);

    const after = await screenShows('the view to show s1 as the primary on timeline 2 and the change', (text) =>
      text.includes('primary s1 on timeline 2') && /timeline 1 → 2 at \d\d:\d\d:\d\d: walship-\d+ → s1/.test(text) && /unreachable|no answer/.test(row(text, primaryName)));
    expect({ exitStatus: exitStatus(), alternateScreen: alternateScreen() }).toEqual({ exitStatus: null, alternateScreen: true });
    expect(row(after, 's1')).toMatch(/^s1\s+primary\s+running\s/);
    expect(row(after, primaryName)).toMatch(new RegExp(`^${primaryName}\\s+primary\\s+unreachable\\s`));

    // Ctrl-C: the view ends with status 0 and the normal screen is back.
    run('send-keys', '-t', 'lag', 'C-c');
    await screenShows('the view to exit on Ctrl-C', (text) => /\[exit status \d+\]/.test(text), 10_000);
    expect(exitStatus()).toBe(0);
    expect(alternateScreen()).toBe(false);
    expect(screen().join('\n')).not.toContain('Ctrl-C to quit');
  });

  it('npm start opens the lag view on its cluster; Ctrl-C stops the load, the monitor and every member', async () => {
    const demo = await newDemo('demo');
    const { basePort, dataRoot } = demo;
    run('new-session', '-d', '-s', 'demo', '-x', String(COLUMNS), '-y', String(ROWS),
      '-e', `WALSHIP_DEMO_BASE_PORT=${basePort}`, '-e', `WALSHIP_DEMO_DATA_ROOT=${dataRoot}`, '-c', ROOT,
      paneCommand([process.execPath, 'scripts/start-demo.mjs']));
    sessionStarted = true;

    // cluster up creates the three members, then the view draws them with the load under it.
    const view = await screenShows('npm start\'s lag view with three members and the load acknowledged', (text) =>
      text.includes('primary n1 on timeline 1') && /streaming/.test(row(text, 's1')) && /streaming/.test(row(text, 's2')) &&
      /load: 200 writes\/s asked, [1-9]\d*\/s acknowledged by n1/.test(text), 45_000, 'demo');
    expect({ exitStatus: exitStatus('demo'), alternateScreen: alternateScreen('demo') }).toEqual({ exitStatus: null, alternateScreen: true });
    expect(view).toContain('cluster local-3node · state: primary n1 on timeline 1');
    expect(row(view, 'n1')).toMatch(/^n1\s+primary\s+running\s/);
    expect(row(view, 's1')).toMatch(/^ {2}s1\s+standby\s+streaming\s+sync\s/);
    expect(row(view, 's2')).toMatch(/^ {2}s2\s+standby\s+streaming\s+async\s/);
    const status = demoStatus(demo);
    const pids = status.members.map((m) => m.pid);
    expect(pids.every((pid) => pid !== null)).toBe(true);
    expect(status.monitor.running).toBe(true);

    // A switchover from another terminal: the load follows s1 (through the failover client). Not
    // asserted: how many writes fail. Those in flight when the old primary closes its sessions may
    // or may not have committed and are never sent again, so a few can fail in any switchover.
    const switchover = walship(['cluster', 'switchover', ...demo.overrides]);
    expect(switchover.status).toBe(0);
    await screenShows('the load acknowledged by s1 after the switchover', (text) =>
      text.includes('primary s1 on timeline 2') && /load: 200 writes\/s asked, [1-9]\d*\/s acknowledged by s1/.test(text), 30_000, 'demo');

    // Ctrl-C: the view closes first (the normal screen back), then everything npm start started stops.
    run('send-keys', '-t', 'demo', 'C-c');
    await screenShows('npm start to exit on Ctrl-C', (text) => /\[exit status \d+\]/.test(text), 30_000, 'demo');
    expect(exitStatus('demo')).toBe(0);
    expect(alternateScreen('demo')).toBe(false);
    expect(screen('demo').join('\n')).toContain('stopping the failover monitor and n1, s1, s2...');
    const after = demoStatus(demo);
    expect(after.members.map((m) => [m.name, m.pid])).toEqual([['n1', null], ['s1', null], ['s2', null]]);
    expect(after.monitor.running).toBe(false);
    // A member that exited may stay a zombie until init reaps it: that is not a process left behind.
    const running = (pid: number) => {
      try {
        process.kill(pid, 0);
        return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z');
      } catch {
        return false;
      }
    };
    expect(pids.filter((pid) => running(pid!))).toEqual([]);
    // Nothing that names the demo's data root is left.
    expect(processesNaming(dataRoot)).toEqual([]);
    demosRunning.delete(demo);
  });

  it('npm start 2>&1 | tee LOG: Ctrl-C ends tee as well, and npm start still stops every member', async () => {
    const demo = await newDemo('demo-piped');
    const { basePort, dataRoot } = demo;
    const log = path.join(path.dirname(primary.dataDir), 'tee.log');
    // Both streams into tee, which Ctrl-C ends at once: stop()'s first word on stderr then fails
    // with EPIPE. Before, that ended the demo there and left the cluster and its monitor running.
    const pipeline = `exec bash -c '"$@" 2>&1 | tee ${log}; echo "[exit status \${PIPESTATUS[0]}]"; read -r _' walship-test '${process.execPath}' scripts/start-demo.mjs`;
    run('new-session', '-d', '-s', 'piped', '-x', String(COLUMNS), '-y', String(ROWS),
      '-e', `WALSHIP_DEMO_BASE_PORT=${basePort}`, '-e', `WALSHIP_DEMO_DATA_ROOT=${dataRoot}`, '-c', ROOT, pipeline);
    sessionStarted = true;
    await screenShows('the piped demo to acknowledge its load', (text) => /load: 200 writes\/s asked, [1-9]\d*\/s acknowledged by n1/.test(text), 45_000, 'piped');
    const status = demoStatus(demo);
    expect(status.members.every((m) => m.pid !== null)).toBe(true);
    expect(status.monitor.running).toBe(true);

    run('send-keys', '-t', 'piped', 'C-c');
    await screenShows('the piped demo to exit on Ctrl-C', (text) => /\[exit status \d+\]/.test(text), 30_000, 'piped');
    expect(exitStatus('piped')).toBe(0);
    const after = demoStatus(demo);
    expect(after.members.map((m) => [m.name, m.pid])).toEqual([['n1', null], ['s1', null], ['s2', null]]);
    expect(after.monitor.running).toBe(false);
    expect(processesNaming(dataRoot)).toEqual([]);
    demosRunning.delete(demo);
  });
});
