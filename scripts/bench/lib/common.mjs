// Pieces shared by the benchmark scripts in scripts/bench/: running the walship CLI, LSN
// arithmetic, percentiles and medians, a node's postmaster.pid, starting a walship server process
// directly (to time its start), the log line that reports crash recovery, and the promotion
// probe (fresh sessions trying a write until one is accepted).
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const cli = path.join(root, 'packages', 'cli', 'bin', 'walship.js');
export const serverMain = path.join(root, 'packages', 'server', 'dist', 'main.js');

/** Runs `walship ARGS...` to its end; returns stdout; throws with its stderr when it fails. */
export function walship(...args) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`walship ${args.join(' ')} failed (exit status ${r.status}): ${r.stderr || r.error?.message || ''}`);
  return r.stdout;
}

/** `X/X` (PostgreSQL's LSN text) as a number of bytes. */
export function parseLsn(lsn) {
  const [hi, lo] = lsn.split('/');
  return parseInt(hi, 16) * 2 ** 32 + parseInt(lo, 16);
}

/**
 * Polls a standby's status (a connected WalshipClient) every pollMs until its replay LSN has
 * reached target (a number of bytes): the catch-up point every replication bench times.
 */
export async function waitReplayed(client, target, pollMs = 20) {
  for (;;) {
    const status = await client.status();
    if (status.replayLsn !== null && parseLsn(status.replayLsn) >= target) return;
    await sleep(pollMs);
  }
}

/** Nearest-rank percentile (0 < p <= 1) of the numbers; null when there are none. */
export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
}

/** The median (the upper one of an even count, as the scripts have always reported); null when empty. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? null : s[Math.floor(s.length / 2)];
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A data directory's postmaster.pid, walship's or PostgreSQL's (same layout: line 1 the pid,
 * line 8 the status: starting, stopping, ready or standby); null when absent or unreadable.
 */
export function readPidFile(dataDir) {
  let lines;
  try {
    lines = fs.readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return null;
  }
  const pid = Number(lines[0]);
  return Number.isInteger(pid) && pid > 0 ? { pid, status: (lines[7] ?? '').trim() } : null;
}

/**
 * Polls DIR/postmaster.pid every pollMs until it names `pid` (any pid but stalePid, the one a
 * killed server left behind, when null) with a status of `ready` or `standby`; rejects when
 * isDead() says the process is gone or after timeoutMs.
 */
export async function waitForPidFileReady(dataDir, { pid = null, stalePid = null, isDead = () => false, timeoutMs = 120_000, pollMs = 5, describe = dataDir } = {}) {
  const startedAt = performance.now();
  for (;;) {
    const file = readPidFile(dataDir);
    const ours = file !== null && (pid === null || file.pid === pid) && file.pid !== stalePid;
    if (ours && (file.status === 'ready' || file.status === 'standby')) return file;
    if (isDead()) throw new Error(`${describe}: the server exited before accepting connections`);
    if (performance.now() - startedAt > timeoutMs) throw new Error(`${describe}: not ready after ${timeoutMs / 1000} s`);
    await sleep(pollMs);
  }
}

/**
 * Starts a walship server process (`node packages/server/dist/main.js -D DIR`) with its output
 * appended to logFile, detached in a process group of its own as `walship start` does, and
 * resolves once its postmaster.pid says it accepts connections: { child, readyMs } with the time
 * from spawn to ready. main is the server's entry point (by default this checkout's; an A/B gives
 * each side its own), nodeArgs go to node before it (e.g. --cpu-prof).
 */
export async function startWalshipServer(dataDir, logFile, { main = serverMain, nodeArgs = [] } = {}) {
  const startedAt = performance.now();
  const logFd = fs.openSync(logFile, 'a');
  const child = spawn(process.execPath, [...nodeArgs, main, '-D', dataDir], { detached: true, stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  let exited = false;
  child.once('exit', () => { exited = true; });
  child.unref();
  try {
    await waitForPidFileReady(dataDir, { pid: child.pid, isDead: () => exited, describe: `walship server on ${dataDir} (log: ${logFile})` });
  } catch (error) {
    if (!exited) child.kill('SIGKILL');
    throw error;
  }
  return { child, readyMs: performance.now() - startedAt };
}

/**
 * walship's crash-recovery report, `redo done at LSN: N records, M MB in S s`, the last one in
 * the text: { records, megabytes, seconds }, or null when there is none.
 */
export function parseWalshipRedoDone(text) {
  const matches = [...text.matchAll(/redo done at \S+: (\d+) records, ([\d.]+) MB in ([\d.]+) s/g)];
  const m = matches.at(-1);
  return m === undefined ? null : { records: Number(m[1]), megabytes: Number(m[2]), seconds: Number(m[3]) };
}

/**
 * The promotion probe: calls tryWrite() (a fresh session and one write) until one succeeds, 1 ms
 * apart after a failure, and returns the milliseconds from startedAt to that success; null when
 * none succeeded within timeoutMs.
 */
export async function firstAcceptedWriteMs(tryWrite, startedAt, timeoutMs = 30_000) {
  while (performance.now() - startedAt < timeoutMs) {
    try {
      await tryWrite();
      return performance.now() - startedAt;
    } catch {
      await sleep(1);
    }
  }
  return null;
}

/**
 * firstAcceptedWriteMs on a walship node: a fresh session per attempt, each with a short
 * timeout, until a write is accepted.
 */
export function walshipFirstWriteMs(WalshipClient, port, startedAt) {
  return firstAcceptedWriteMs(async () => {
    let writer = null;
    try {
      writer = await WalshipClient.connect({ port, timeoutMs: 2000 });
      await writer.put('after-promotion', 'first');
    } finally {
      await writer?.close().catch(() => undefined);
    }
  }, startedAt);
}
