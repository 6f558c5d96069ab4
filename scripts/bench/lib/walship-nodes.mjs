// walship nodes for the comparison benchmark, the counterpart of postgres.mjs: init and
// basebackup through the CLI (as the other scripts in scripts/bench/ do), the server process
// started directly so that its start can be timed, stop through the CLI, a SIGKILL, and a cleanup
// that leaves no server behind.
import * as fs from 'node:fs';
import { readPidFile, startWalshipServer, walship } from './common.mjs';
import { alive, killTree, onCleanup, waitGone } from './processes.mjs';

export class WalshipServer {
  /** @param {{ dir: string, port: number, name: string, logFile: string }} options */
  constructor({ dir, port, name, logFile }) {
    this.dir = dir;
    this.port = port;
    this.name = name;
    this.logFile = logFile;
    this.lastPid = null;
    onCleanup(() => this.forceStop());
  }

  get address() {
    return `127.0.0.1:${this.port}`;
  }

  /** Starts the server process; resolves { readyMs } from spawn to accepting connections. */
  async start() {
    const { child, readyMs } = await startWalshipServer(this.dir, this.logFile);
    this.lastPid = child.pid;
    return { readyMs };
  }

  /** `walship stop -D DIR --mode MODE` (fast by default: the standbys get the shutdown checkpoint). */
  stop(mode = 'fast') {
    walship('stop', '-D', this.dir, '--mode', mode);
  }

  get pid() {
    return readPidFile(this.dir)?.pid ?? this.lastPid;
  }

  /** SIGKILL to the server process (its worker threads die with it). */
  async kill9() {
    const pid = this.pid;
    killTree(pid, 'SIGKILL');
    await waitGone(pid);
  }

  /** At cleanup: an immediate stop if it runs, then SIGKILL to whatever is left. */
  forceStop() {
    const pid = this.pid;
    if (pid === null || !alive(pid)) return;
    try {
      walship('stop', '-D', this.dir, '--mode', 'immediate', '--timeout', '20');
    } catch {
      // Killed below.
    }
    if (alive(pid)) killTree(pid, 'SIGKILL');
  }

  logText() {
    let text = '';
    try {
      text += fs.readFileSync(this.logFile, 'utf8');
    } catch {
      // Not started yet.
    }
    return text;
  }
}
