/**
 * archive_command and restore_command: building the command line (PostgreSQL's
 * replace_percent_placeholders, common/percentrepl.c), running it through `/bin/sh -c` in the data
 * directory (system() in shell_archive.c and shell_restore.c), and reading its result the way
 * PostgreSQL does.
 *
 * Placeholders: `%p` the file's path relative to the data directory (`pg_wal/...`), `%f` its file
 * name, `%r` (restore_command, archive_cleanup_command, recovery_end_command) the file name of the
 * last restart point's segment, `%%` a single `%`. As in PostgreSQL 16 and later, any other `%x`,
 * a placeholder the command does not offer (`%r` in archive_command), or a `%` at the very end is
 * an error, not copied through.
 *
 * What a result means, as PostgreSQL reads system()'s status (wait_error.c):
 *
 * - archive_command (shell_archive_file, pgarch.c): exit 0 means archived. A normal non-zero exit
 *   is logged and the segment stays `.ready`; the archiver retries it up to NUM_ARCHIVE_RETRIES
 *   (3) times a second apart, then again on its next cycle (at least every 60 s), and WAL is kept
 *   meanwhile. If the shell or the command was killed by a signal, or the shell reports one
 *   (exit status 128 + N), or the command could not be run at all (126 "not executable", 127
 *   "not found"), the archiver exits FATAL, since system() ignored SIGINT and SIGQUIT that were
 *   probably meant for it too; the postmaster starts it again. -> archiveCommandOutcome.
 * - restore_command (shell_restore, RestoreArchivedFile): exit 0 means restored; any other normal
 *   exit means "not in the archive" (only a DEBUG2 line), and recovery tries pg_wal/ and the
 *   stream. SIGTERM, delivered directly or reported by the shell as 143, means a fast shutdown:
 *   the startup process exits quietly (proc_exit(1)). Any other signal, or 126/127, is FATAL for
 *   the startup process: "not in the archive" would end archive recovery early and open the node
 *   with WAL missing. -> restoreCommandOutcome.
 *
 * walship's addition: a timeout (PostgreSQL has none). A command that runs past it is killed with
 * its whole process group and counts as fatal for both commands: a hung archive command restarts
 * the archiver, and a hung restore must not be read as "not in the archive".
 *
 * substituteCommand and the outcome functions are pure; runShellCommand is the only I/O.
 */
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import { ErrorCode, WalshipError, assert } from '@walship/engine/errors';
import { SHELL_COMMAND_OUTPUT_MAX_BYTES } from './constants.js';

/** Values for the placeholders; one that is undefined is not offered by this command. */
export interface CommandPlaceholders {
  /** %p: path of the file, relative to the data directory. */
  p?: string;
  /** %f: file name only. */
  f?: string;
  /** %r: file name of the segment holding the last restart point (restore side only). */
  r?: string;
}

/**
 * Replaces `%p`, `%f`, `%r` and `%%` in `template`. Throws `invalid_parameter_value` naming
 * `parameterName` for an unknown or unoffered placeholder and for a trailing `%`, with
 * PostgreSQL's messages. Values are inserted as they are: quote `%p` in the template if paths
 * may hold spaces (PostgreSQL does not quote either).
 */
export function substituteCommand(template: string, values: CommandPlaceholders, parameterName = 'archive_command'): string {
  let result = '';
  for (let i = 0; i < template.length; i++) {
    const char = template[i]!;
    if (char !== '%') {
      result += char;
      continue;
    }
    const next = template[i + 1];
    i++;
    if (next === '%') {
      result += '%';
    } else if (next === undefined) {
      throw placeholderError(parameterName, template, 'String ends unexpectedly after escape character "%".');
    } else {
      const value = next === 'p' || next === 'f' || next === 'r' ? values[next] : undefined;
      if (value === undefined) throw placeholderError(parameterName, template, `String contains unexpected placeholder "%${next}".`);
      result += value;
    }
  }
  return result;
}

function placeholderError(parameterName: string, template: string, detail: string): WalshipError {
  return new WalshipError(ErrorCode.invalidParameter, `invalid value for parameter "${parameterName}": "${template}"`, {
    detail, hint: 'Use %p, %f, %r or %% (%r only where the command offers it).',
  });
}

/** How a shell command ended (the parts of a wait(2) status walship uses). */
export interface ShellCommandResult {
  /** Exit code when it exited normally, else null. */
  code: number | null;
  /** The signal that killed the shell, else null. */
  signal: NodeJS.Signals | null;
  /** Killed by walship after `timeoutMs`. */
  timedOut: boolean;
  /** What it wrote, each cut at SHELL_COMMAND_OUTPUT_MAX_BYTES. */
  stdout: string;
  stderr: string;
}

export interface RunShellCommandOptions {
  /** Directory to run in: the data directory, so that `%p` resolves. */
  cwd: string;
  /** Kill the command (its whole process group) after this long; see SHELL_COMMAND_TIMEOUT_MS. */
  timeoutMs: number;
}

/**
 * Runs `command` with `/bin/sh -c` in `cwd` and resolves with how it ended; never rejects for a
 * failing command, only for one that could not be started (an `io_error`). The command runs in
 * its own process group, so that on timeout the shell and everything it started are killed
 * together; signals sent to the node's group (a terminal's Ctrl-C) do not reach it, and the
 * postmaster's shutdown is what ends a running command.
 */
export function runShellCommand(command: string, options: RunShellCommandOptions): Promise<ShellCommandResult> {
  assert(options.timeoutMs > 0, 'a shell command has a positive timeout');
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const stdout = new BoundedOutput();
    const stderr = new BoundedOutput();
    child.stdout.on('data', (chunk: Buffer) => stdout.add(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.add(chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child.pid);
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new WalshipError(ErrorCode.ioError, `could not run command "${command}": ${error.message}`, { cause: error }));
    });
    // Resolve when the shell exits, as system() returns; a background job it left running may
    // hold the pipes open, so stop reading them shortly after.
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      const drain = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, OUTPUT_DRAIN_GRACE_MS);
      child.once('close', () => {
        clearTimeout(drain);
        resolve({ code, signal, timedOut, stdout: stdout.text(), stderr: stderr.text() });
      });
    });
  });
}

/** How long output is still read after the shell exited: enough for the pipes to empty. */
const OUTPUT_DRAIN_GRACE_MS = 100;

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

class BoundedOutput {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;

  add(chunk: Buffer): void {
    const room = SHELL_COMMAND_OUTPUT_MAX_BYTES - this.bytes;
    if (room <= 0) return;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(kept);
    this.bytes += kept.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

// ---------------------------------------------------------------------------------------------
// Reading a result as PostgreSQL does
// ---------------------------------------------------------------------------------------------

/** The number of a signal (os.constants.signals), for messages and the 128 + N rule. */
function signalNumber(signal: NodeJS.Signals): number {
  return (os.constants.signals as Record<string, number>)[signal] ?? 0;
}

/** wait_result_is_signal: killed by `signal`, directly or as reported by the shell (128 + N). */
export function resultIsSignal(result: ShellCommandResult, signal: NodeJS.Signals): boolean {
  if (result.signal !== null) return result.signal === signal;
  return result.code === 128 + signalNumber(signal);
}

/**
 * wait_result_is_any_signal(status, true): killed by any signal, directly or per the shell, or a
 * hard shell error (126 "not executable", 127 "not found"), i.e. any exit status above 125.
 */
export function resultIsAnySignal(result: ShellCommandResult): boolean {
  if (result.signal !== null) return true;
  return result.code !== null && result.code > 125;
}

/** wait_result_to_str: "command not found", "child process exited with exit code 1", ... */
export function describeShellResult(result: ShellCommandResult): string {
  if (result.timedOut) return 'child process was killed after the timeout';
  if (result.signal !== null) return `child process was terminated by signal ${signalNumber(result.signal)}: ${result.signal}`;
  if (result.code === 126) return 'command not executable';
  if (result.code === 127) return 'command not found';
  return `child process exited with exit code ${result.code}`;
}

export interface CommandOutcome<K extends string> {
  kind: K;
  /** The log line PostgreSQL writes; null on success. */
  message: string | null;
  detail: string | null;
}

/**
 * What an archive_command result means: `archived`; `failed` (LOG, keep the `.ready`, retry);
 * `fatal` (the archiver exits and the postmaster restarts it).
 */
export function archiveCommandOutcome(result: ShellCommandResult, command: string): CommandOutcome<'archived' | 'failed' | 'fatal'> {
  if (isSuccess(result)) return { kind: 'archived', message: null, detail: null };
  const detail = `The failed archive command was: ${command}`;
  const kind = result.timedOut || resultIsAnySignal(result) ? 'fatal' : 'failed';
  let message: string;
  if (result.timedOut) message = 'archive command was killed after the timeout';
  else if (result.signal !== null) message = `archive command was terminated by signal ${signalNumber(result.signal)}: ${result.signal}`;
  else message = `archive command failed with exit code ${result.code}`;
  return { kind, message, detail };
}

/**
 * What a restore_command result means for `fileName`: `restored`; `not_available` (DEBUG2; try
 * pg_wal/ and the stream); `shutdown` (SIGTERM: a fast shutdown, exit quietly); `fatal` (any
 * other signal, 126/127, or the timeout: the startup component fails and recovery stops).
 */
export function restoreCommandOutcome(
  result: ShellCommandResult, fileName: string,
): CommandOutcome<'restored' | 'not_available' | 'shutdown' | 'fatal'> {
  if (isSuccess(result)) return { kind: 'restored', message: null, detail: null };
  const message = `could not restore file "${fileName}" from archive: ${describeShellResult(result)}`;
  if (!result.timedOut && resultIsSignal(result, 'SIGTERM')) return { kind: 'shutdown', message, detail: null };
  const kind = result.timedOut || resultIsAnySignal(result) ? 'fatal' : 'not_available';
  return { kind, message, detail: null };
}

function isSuccess(result: ShellCommandResult): boolean {
  return !result.timedOut && result.signal === null && result.code === 0;
}
