import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WalshipError } from '@walship/engine/errors';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  archiveCommandOutcome, describeShellResult, restoreCommandOutcome, resultIsAnySignal, resultIsSignal,
  runShellCommand, substituteCommand, type ShellCommandResult,
} from './archive-command.js';
import { SHELL_COMMAND_OUTPUT_MAX_BYTES } from './constants.js';

const SEGMENT = '000000010000000000000003';

describe('substituteCommand', () => {
  it('replaces %p, %f and %% as archive_command does', () => {
    expect(substituteCommand('cp %p /mnt/archive/%f && echo 100%%', { p: `pg_wal/${SEGMENT}`, f: SEGMENT }))
      .toBe(`cp pg_wal/${SEGMENT} /mnt/archive/${SEGMENT} && echo 100%`);
  });

  it('replaces %r for restore_command', () => {
    const command = substituteCommand('restore %f %p %r', { p: 'pg_wal/RECOVERYXLOG', f: SEGMENT, r: '000000010000000000000001' }, 'restore_command');
    expect(command).toBe(`restore ${SEGMENT} pg_wal/RECOVERYXLOG 000000010000000000000001`);
  });

  it('inserts values as they are, and handles %% next to a placeholder', () => {
    expect(substituteCommand('%%%f%%', { f: 'x' })).toBe('%x%');
    expect(substituteCommand('no placeholders', {})).toBe('no placeholders');
  });

  it('refuses an unknown placeholder, one the command does not offer, and a trailing %', () => {
    const cases: Array<[string, string]> = [
      ['cp %p %x', 'String contains unexpected placeholder "%x".'],
      ['cp %p %r', 'String contains unexpected placeholder "%r".'],
      ['cp %p 100%', 'String ends unexpectedly after escape character "%".'],
    ];
    for (const [template, detail] of cases) {
      try {
        substituteCommand(template, { p: 'pg_wal/x', f: 'x' });
        throw new Error(`expected ${template} to be refused`);
      } catch (error) {
        expect(error).toBeInstanceOf(WalshipError);
        expect((error as WalshipError).code).toBe('invalid_parameter_value');
        expect((error as WalshipError).message).toBe(`invalid value for parameter "archive_command": "${template}"`);
        expect((error as WalshipError).detail).toBe(detail);
      }
    }
  });
});

function result(partial: Partial<ShellCommandResult>): ShellCommandResult {
  return { code: null, signal: null, timedOut: false, stdout: '', stderr: '', ...partial };
}

describe('reading results as PostgreSQL does', () => {
  it('wait_result_is_signal and wait_result_is_any_signal', () => {
    expect(resultIsSignal(result({ signal: 'SIGTERM' }), 'SIGTERM')).toBe(true);
    expect(resultIsSignal(result({ code: 143 }), 'SIGTERM')).toBe(true); // reported by the shell: 128 + 15
    expect(resultIsSignal(result({ code: 130 }), 'SIGTERM')).toBe(false);
    expect(resultIsAnySignal(result({ code: 1 }))).toBe(false);
    expect(resultIsAnySignal(result({ code: 125 }))).toBe(false);
    expect(resultIsAnySignal(result({ code: 126 }))).toBe(true);
    expect(resultIsAnySignal(result({ code: 127 }))).toBe(true);
    expect(resultIsAnySignal(result({ code: 137 }))).toBe(true);
    expect(resultIsAnySignal(result({ signal: 'SIGKILL' }))).toBe(true);
  });

  it('wait_result_to_str', () => {
    expect(describeShellResult(result({ code: 127 }))).toBe('command not found');
    expect(describeShellResult(result({ code: 126 }))).toBe('command not executable');
    expect(describeShellResult(result({ code: 3 }))).toBe('child process exited with exit code 3');
    expect(describeShellResult(result({ signal: 'SIGKILL' }))).toBe('child process was terminated by signal 9: SIGKILL');
  });

  it('archive_command: archived, failed (retry), fatal (archiver restarts)', () => {
    expect(archiveCommandOutcome(result({ code: 0 }), 'cp').kind).toBe('archived');
    expect(archiveCommandOutcome(result({ code: 1 }), 'cp x y')).toEqual({
      kind: 'failed', message: 'archive command failed with exit code 1', detail: 'The failed archive command was: cp x y',
    });
    expect(archiveCommandOutcome(result({ code: 127 }), 'nope').kind).toBe('fatal');
    expect(archiveCommandOutcome(result({ code: 130 }), 'cp').kind).toBe('fatal');
    expect(archiveCommandOutcome(result({ signal: 'SIGINT' }), 'cp')).toMatchObject({
      kind: 'fatal', message: 'archive command was terminated by signal 2: SIGINT',
    });
    expect(archiveCommandOutcome(result({ signal: 'SIGKILL', timedOut: true }), 'cp').kind).toBe('fatal');
  });

  it('restore_command: restored, not available, shutdown on SIGTERM, fatal on other signals', () => {
    expect(restoreCommandOutcome(result({ code: 0 }), SEGMENT).kind).toBe('restored');
    expect(restoreCommandOutcome(result({ code: 1 }), SEGMENT)).toEqual({
      kind: 'not_available', message: `could not restore file "${SEGMENT}" from archive: child process exited with exit code 1`, detail: null,
    });
    expect(restoreCommandOutcome(result({ signal: 'SIGTERM' }), SEGMENT).kind).toBe('shutdown');
    expect(restoreCommandOutcome(result({ code: 143 }), SEGMENT).kind).toBe('shutdown');
    expect(restoreCommandOutcome(result({ signal: 'SIGQUIT' }), SEGMENT).kind).toBe('fatal');
    expect(restoreCommandOutcome(result({ code: 127 }), SEGMENT).kind).toBe('fatal');
    expect(restoreCommandOutcome(result({ signal: 'SIGKILL', timedOut: true }), SEGMENT).kind).toBe('fatal');
  });
});

describe('runShellCommand', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-command-'));
    fs.mkdirSync(path.join(dataDir, 'pg_wal'));
  });
  afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('runs through /bin/sh in the data directory, so %p resolves', async () => {
    fs.writeFileSync(path.join(dataDir, 'pg_wal', SEGMENT), 'wal');
    const archiveDir = path.join(dataDir, 'archive');
    fs.mkdirSync(archiveDir);
    const command = substituteCommand(`test ! -f ${archiveDir}/%f && cp %p ${archiveDir}/%f`, { p: `pg_wal/${SEGMENT}`, f: SEGMENT });
    const first = await runShellCommand(command, { cwd: dataDir, timeoutMs: 10_000 });
    expect(first).toMatchObject({ code: 0, signal: null, timedOut: false });
    expect(archiveCommandOutcome(first, command).kind).toBe('archived');
    expect(fs.readFileSync(path.join(archiveDir, SEGMENT), 'utf8')).toBe('wal');
    // The documented idiom refuses to overwrite: a second run fails and the segment stays .ready.
    const second = await runShellCommand(command, { cwd: dataDir, timeoutMs: 10_000 });
    expect(archiveCommandOutcome(second, command).kind).toBe('failed');
  });

  it('reports exit codes, stderr and a command that is not found', async () => {
    const failing = await runShellCommand('echo oops >&2; exit 3', { cwd: dataDir, timeoutMs: 10_000 });
    expect(failing).toMatchObject({ code: 3, signal: null, stderr: 'oops\n' });
    const missing = await runShellCommand('no-such-command-walship', { cwd: dataDir, timeoutMs: 10_000 });
    expect(missing.code).toBe(127);
    expect(restoreCommandOutcome(missing, SEGMENT).kind).toBe('fatal');
  });

  it('reports a command killed by a signal as the shell reports it', async () => {
    const killed = await runShellCommand('kill -TERM $$', { cwd: dataDir, timeoutMs: 10_000 });
    expect(resultIsSignal(killed, 'SIGTERM')).toBe(true);
    expect(restoreCommandOutcome(killed, SEGMENT).kind).toBe('shutdown');
  });

  it('kills the whole process group after the timeout', async () => {
    const marker = path.join(dataDir, 'survived');
    const started = Date.now();
    const hung = await runShellCommand(`sleep 5; touch ${marker}`, { cwd: dataDir, timeoutMs: 200 });
    expect(hung.timedOut).toBe(true);
    expect(Date.now() - started).toBeLessThan(4_000);
    expect(restoreCommandOutcome(hung, SEGMENT).kind).toBe('fatal');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(fs.existsSync(marker)).toBe(false);
  });

  it('returns when the shell exits even if a background job keeps the output open', async () => {
    const started = Date.now();
    const done = await runShellCommand('sleep 3 & echo started', { cwd: dataDir, timeoutMs: 10_000 });
    expect(done).toMatchObject({ code: 0, stdout: 'started\n' });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('keeps at most SHELL_COMMAND_OUTPUT_MAX_BYTES of output', async () => {
    const noisy = await runShellCommand(`head -c ${SHELL_COMMAND_OUTPUT_MAX_BYTES * 2} /dev/zero | tr '\\0' x`, { cwd: dataDir, timeoutMs: 10_000 });
    expect(noisy.code).toBe(0);
    expect(noisy.stdout.length).toBe(SHELL_COMMAND_OUTPUT_MAX_BYTES);
  });

  it('rejects when the command cannot be started at all', async () => {
    await expect(runShellCommand('true', { cwd: path.join(dataDir, 'missing'), timeoutMs: 1_000 })).rejects.toBeInstanceOf(WalshipError);
  });
});
