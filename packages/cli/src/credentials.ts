/**
 * Credentials, from the environment only (never from a flag, where `ps` would show them):
 * WALSHIP_PASSWORD, else the first matching line of the file named by WALSHIP_PASSFILE, in
 * libpq's .pgpass form without the database field: `host:port:user:password`, `*` matching
 * anything, `\:` and `\\` for a colon and a backslash. As libpq does, a password file that the
 * group or others can read is ignored with a warning. The user is WALSHIP_USER when set. With
 * neither, and a terminal on stdin, the password is prompted for (without echo) only if the node
 * asks for one.
 */
import { readFileSync, statSync } from 'node:fs';
import { DEFAULT_USER } from '@walship/protocol';
import { CliError, ExitCode, formatErrorText } from './cli-error.js';
import type { CliIo } from './io.js';
import type { NodeAddress } from './options.js';

export interface Credentials {
  user?: string;
  /** A password, or a function the client calls only when the node asks for one. */
  password?: string | (() => Promise<string>);
}

/** A password typed on the terminal, without echo (Enter ends it, Ctrl-C cancels). */
function promptPassword(io: CliIo, prompt = 'Password: '): (() => Promise<string>) | undefined {
  const stdin = io.stdin as NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  if (stdin.isTTY !== true || typeof stdin.setRawMode !== 'function') return undefined;
  return () =>
    new Promise<string>((resolve, reject) => {
      let typed = '';
      const finish = (error: Error | null) => {
        stdin.removeListener('data', onData);
        stdin.setRawMode?.(false);
        stdin.pause();
        io.stderr.write('\n');
        if (error === null) resolve(typed);
        else reject(error);
      };
      const onData = (chunk: Buffer | string) => {
        for (const char of chunk.toString()) {
          if (char === '\r' || char === '\n') return finish(null);
          if (char === '\u0003') return finish(new Error('password prompt cancelled'));
          if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1);
          else typed += char;
        }
      };
      io.stderr.write(prompt);
      stdin.setRawMode?.(true);
      stdin.resume();
      stdin.on('data', onData);
    });
}

/** Splits a password file line on unescaped colons, removing the escapes. */
function splitPassfileLine(line: string): string[] {
  const fields: string[] = [];
  let current = '';
  for (let index = 0; index < line.length; index++) {
    const char = line[index]!;
    if (char === '\\' && index + 1 < line.length) current += line[++index];
    else if (char === ':') {
      fields.push(current);
      current = '';
    } else current += char;
  }
  fields.push(current);
  return fields;
}

/** The password of the first line matching the node and user, or undefined. */
export function findPassfilePassword(text: string, node: NodeAddress, user: string | undefined): string | undefined {
  const matches = (pattern: string, value: string | undefined) => pattern === '*' || (value !== undefined && pattern === value);
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/\r$/, '');
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const fields = splitPassfileLine(line);
    if (fields.length < 4) continue;
    const [host, port, lineUser] = fields;
    const password = fields.slice(3).join(':');
    if (matches(host!, node.host) && matches(port!, String(node.port)) && matches(lineUser!, user ?? '*')) return password;
  }
  return undefined;
}

export function resolveCredentials(io: CliIo, node: NodeAddress): Credentials {
  const user = io.env.WALSHIP_USER === undefined || io.env.WALSHIP_USER === '' ? undefined : io.env.WALSHIP_USER;
  const password = io.env.WALSHIP_PASSWORD;
  if (password !== undefined && password !== '') return { user, password };
  const passfile = io.env.WALSHIP_PASSFILE;
  if (passfile === undefined || passfile === '') return { user, password: promptPassword(io) };
  let text: string;
  try {
    if ((statSync(passfile).mode & 0o077) !== 0) {
      io.stderr.write(
        formatErrorText(
          `password file "${passfile}" has group or world access; permissions should be u=rw (0600) or less`,
          undefined,
          `Run "chmod 600 ${passfile}"; the file is ignored until then.`,
          'warning',
        ),
      );
      return { user };
    }
    text = readFileSync(passfile, 'utf8');
  } catch (error) {
    io.stderr.write(formatErrorText(`could not read password file "${passfile}": ${(error as Error).message}`, undefined, 'Check WALSHIP_PASSFILE.', 'warning'));
    return { user };
  }
  // As libpq, a line is matched against the user the connection will use: the default one when none is given.
  return { user, password: findPassfilePassword(text, node, user ?? DEFAULT_USER) ?? promptPassword(io) };
}

/**
 * A new password for a user (`walship user add|passwd`, `walship init --auth`): WALSHIP_PASSWORD,
 * else typed twice on the terminal (createuser -P's prompts); never a flag, and refused when
 * standard input is not a terminal and WALSHIP_PASSWORD is unset.
 */
export async function readNewPassword(io: CliIo, what: string): Promise<string> {
  const fromEnvironment = io.env.WALSHIP_PASSWORD;
  if (fromEnvironment !== undefined && fromEnvironment !== '') return fromEnvironment;
  const first = promptPassword(io, `Enter password for ${what}: `);
  const again = promptPassword(io, 'Enter it again: ');
  if (first === undefined || again === undefined) {
    throw new CliError(ExitCode.usage, `no password given for ${what}`, {
      detail: 'Standard input is not a terminal, so the password cannot be prompted for, and WALSHIP_PASSWORD is not set.',
      hint: 'Set WALSHIP_PASSWORD in the environment of this command, or run it on a terminal (passwords are never taken from flags).',
    });
  }
  const password = await first();
  if ((await again()) !== password) throw new CliError(ExitCode.failed, 'Passwords didn\'t match.', { hint: 'Run the command again.' });
  if (password === '') throw new CliError(ExitCode.failed, 'empty password', { hint: 'Give a password of at least one character.' });
  return password;
}
