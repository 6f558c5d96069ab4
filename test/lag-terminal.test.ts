/**
 * `walship lag`'s live view in a real terminal: tmux (Debian's package; .ci/run installs it when
 * missing) runs `walship lag --node PRIMARY,STANDBY` in a detached session of its own server (a
 * private socket, no user config), and the test reads the screen with capture-pane, as a person
 * would see it.
 *
 * - The view is full screen (the alternate screen) and shows every member: the primary, its
 *   standby streaming, the lag columns and the sparkline.
 * - The primary is killed (SIGKILL) and the standby promoted: the view is still running, shows
 *   the standby as the primary on timeline 2, the timeline change, and the old primary as not
 *   answering.
 * - Ctrl-C (send-keys C-c) ends it with status 0 and the normal screen back.
 *
 * A missing tmux fails the test, saying how to install it: nothing here is skipped.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, TestNode, waitFor, walship } from './helpers/node.js';
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
        'install Debian\'s package with "apt-get install -y --no-install-recommends tmux" (.ci/run does), or set TMUX_BINARY.',
    );
  }
  return found;
}

describe('walship lag\'s live view in a real terminal (tmux)', () => {
  let primary: TestNode;
  let standby: TestNode;
  let tmux: string;
  /** A tmux server of this test's own: -L names its socket. */
  const socket = `walship-lag-test-${process.pid}`;
  let sessionStarted = false;

  const run = (...args: string[]) => {
    const result = spawnSync(tmux, ['-L', socket, '-f', '/dev/null', ...args], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`tmux ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
    return result.stdout;
  };
  /** The screen as it shows now, one string per row. */
  const screen = () => run('capture-pane', '-p', '-t', 'lag').split('\n');
  /** tmux's format variables of the pane: whether the program still runs, and whether the alternate screen is on. */
  const pane = () => {
    const [dead, status, alternate] = run('display-message', '-p', '-t', 'lag', '#{pane_dead} #{pane_dead_status} #{alternate_on}').trim().split(' ');
    return { dead: dead === '1', status: status === '' ? null : Number(status), alternate: alternate === '1' };
  };
  /** Waits until the screen satisfies `check`; on a timeout, says what the screen showed. */
  async function screenShows(what: string, check: (text: string) => boolean, timeoutMs = 20_000): Promise<string> {
    let last = '';
    try {
      await waitFor(what, () => {
        last = screen().join('\n');
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
    await primary.start();
    standby = await basebackup(primary, 's1', Object.entries(MONITORED).flatMap(([k, v]) => ['--set', `${k}=${v}`]));
    await standby.start();
  });

  afterAll(async () => {
    if (sessionStarted) spawnSync(tmux, ['-L', socket, 'kill-server']);
    for (const node of [standby, primary]) await node?.stop('SIGINT').catch(() => undefined);
    if (primary !== undefined) fs.rmSync(path.dirname(primary.dataDir), { recursive: true, force: true });
  });

  it('shows every member, survives a failover, and gives the terminal back on Ctrl-C', async () => {
    const command = [process.execPath, CLI, 'lag', '--node', `127.0.0.1:${primary.port},127.0.0.1:${standby.port}`, '--interval', '300', '--timeout', '0.5']
      .map((word) => `'${word}'`).join(' ');
    // remain-on-exit keeps the pane after the program ends, so its exit status can be read.
    run('new-session', '-d', '-s', 'lag', '-x', String(COLUMNS), '-y', String(ROWS), command, ';', 'set-option', '-t', 'lag', 'remain-on-exit', 'on');
    sessionStarted = true;
    const primaryName = `walship-${primary.port}`;

    const before = await screenShows('the view to show the primary and its standby streaming', (text) =>
      text.includes(`primary ${primaryName} on timeline 1`) && /^ {2}s1\s+standby\s+streaming\s+async\s+\d[\d.]* [kMG]?B\s+\d[\d.]* m?s\s/.test(row(text, 's1')));
    expect(pane()).toMatchObject({ dead: false, alternate: true });
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
    expect(pane()).toMatchObject({ dead: false, alternate: true });
    expect(row(after, 's1')).toMatch(/^s1\s+primary\s+running\s/);
    expect(row(after, primaryName)).toMatch(new RegExp(`^${primaryName}\\s+primary\\s+unreachable\\s`));

    // Ctrl-C: the view ends with status 0 and the normal screen is back.
    run('send-keys', '-t', 'lag', 'C-c');
    await waitFor('the view to exit on Ctrl-C', () => pane().dead, 10_000, 50);
    expect(pane()).toMatchObject({ dead: true, status: 0, alternate: false });
    expect(screen().join('\n')).not.toContain('Ctrl-C to quit');
  });
});
