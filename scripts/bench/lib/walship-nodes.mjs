// walship nodes for the comparison benchmark, the counterpart of postgres.mjs: init and
// basebackup through the CLI (as the other scripts in scripts/bench/ do), the server process
// started directly so that its start can be timed, stop through the CLI, a SIGKILL, and a cleanup
// that leaves no server behind.
import { startWalshipServer, walship } from './common.mjs';
import { ServerProcess } from './server-process.mjs';

export class WalshipServer extends ServerProcess {
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

  stopImmediate() {
    walship('stop', '-D', this.dir, '--mode', 'immediate', '--timeout', '20');
  }
}
