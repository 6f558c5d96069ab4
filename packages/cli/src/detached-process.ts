/**
 * The cluster toolkit's background processes (the failover monitor's supervisor, the partition
 * proxy): `walship ARGS` started detached from the terminal, its output appended to a file in the
 * data root, and waited for until it says it is ready.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CliError, ExitCode } from './cli-error.js';

const POLL_MS = 50;

/** The walship program, to start a background process with. */
export function walshipProgram(): string {
  return fileURLToPath(new URL('../bin/walship.js', import.meta.url));
}

export interface DetachedStart<T> {
  readonly args: readonly string[];
  /** Where its stdout and stderr go (appended). */
  readonly outPath: string;
  /** What it is, for the error: "the failover monitor". */
  readonly what: string;
  readonly timeoutMs: number;
  /** The error's hint when it does not start. */
  readonly hint: string;
  /** Its ready result, or null while it is not ready yet; polled every POLL_MS. */
  readonly ready: (pid: number) => Promise<T | null> | T | null;
}

/** Starts the process and resolves with `ready`'s result; throws when it exits first or does not get ready in time. */
export async function startDetached<T>(start: DetachedStart<T>): Promise<T> {
  mkdirSync(dirname(start.outPath), { recursive: true });
  const out = openSync(start.outPath, 'a', 0o600);
  const child = spawn(process.execPath, [walshipProgram(), ...start.args], { detached: true, stdio: ['ignore', out, out] });
  closeSync(out);
  let exited: number | null = null;
  child.once('exit', (code) => {
    exited = code ?? -1;
  });
  child.unref();
  const deadline = Date.now() + start.timeoutMs;
  for (;;) {
    const result = await start.ready(child.pid!);
    if (result !== null) {
      child.removeAllListeners();
      return result;
    }
    if (exited !== null || Date.now() > deadline) {
      child.removeAllListeners();
      throw new CliError(ExitCode.failed, `${start.what} did not start${exited === null ? ` within ${start.timeoutMs / 1000} s` : ` (it exited with status ${exited})`}`, { hint: start.hint });
    }
    await sleep(POLL_MS);
  }
}
