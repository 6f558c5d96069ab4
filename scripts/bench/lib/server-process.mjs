// What the comparison benchmark's servers (PgServer in postgres.mjs, WalshipServer in
// walship-nodes.mjs) share: the pid from the data directory's postmaster.pid (or the last one
// seen), a SIGKILL of the whole server, a cleanup that leaves no server behind, the log's text.
// Each subclass says how an immediate stop is asked for (stopImmediate).
import * as fs from 'node:fs';
import { readPidFile } from './common.mjs';
import { alive, killTree, onCleanup, waitGone } from './processes.mjs';

export class ServerProcess {
  /** @param {{ dir: string, port: number, name: string, logFile: string }} options */
  constructor({ dir, port, name, logFile }) {
    this.dir = dir;
    this.port = port;
    this.name = name;
    this.logFile = logFile;
    this.lastPid = null;
    // Whatever happens, the server is stopped at the end: immediate stop, then SIGKILL.
    onCleanup(() => this.forceStop());
  }

  get pid() {
    return readPidFile(this.dir)?.pid ?? this.lastPid;
  }

  /** SIGKILL to the server process and every process under it at once, as a machine losing power would. */
  async kill9() {
    const pid = this.pid;
    killTree(pid, 'SIGKILL');
    await waitGone(pid);
  }

  /** The server's own immediate stop, waiting for the end (a subclass's). */
  stopImmediate() {
    throw new Error(`${this.constructor.name} does not say how to stop immediately`);
  }

  /** At cleanup: an immediate stop if it runs, then SIGKILL to whatever is left. */
  forceStop() {
    const pid = this.pid;
    if (pid === null || !alive(pid)) return;
    try {
      this.stopImmediate();
    } catch {
      // Killed below.
    }
    if (alive(pid)) killTree(pid, 'SIGKILL');
  }

  logText() {
    try {
      return fs.readFileSync(this.logFile, 'utf8');
    } catch {
      return ''; // Not started yet.
    }
  }
}
