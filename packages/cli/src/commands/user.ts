/**
 * `walship user add|passwd|alter|del|list -D DIR` (CREATE ROLE ... PASSWORD, ALTER ROLE, DROP
 * ROLE, \du): the users of a node and their rights, in DIR/walship_authid.json as SCRAM-SHA-256
 * verifiers (never a password). The password comes from WALSHIP_PASSWORD or is typed twice on a
 * terminal, never from a flag. A running node reads the file again at the next connection, so a
 * change takes effect at once for new connections (sessions already open keep going), as a
 * change to pg_authid does.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildScramVerifier, formatScramVerifier, SCRAM_DEFAULT_ITERATIONS } from '@walship/protocol';
import { parseRights, RIGHTS, type Right } from '@walship/server/auth/rights';
import { emptyUsersFile, readUsersFile, userNameProblem, USERS_FILE_NAME, writeUsersFile, type UsersFile } from '@walship/server/auth/users-file';
import { readConfigFile } from '@walship/server/settings/index';
import { CliError, ExitCode, formatErrorText, usageError } from '../cli-error.js';
import { readNewPassword } from '../credentials.js';
import type { CliIo } from '../io.js';
import { formatTable, printJson } from '../output.js';

export type UserAction = 'add' | 'passwd' | 'alter' | 'del' | 'list';

export interface UserOptions {
  action: UserAction;
  dataDir: string;
  name?: string;
  /** add (default read,write) and alter. */
  rights?: string;
  json?: boolean;
}

/** The rights `walship user add` gives when none are named: an application's. */
export const DEFAULT_USER_RIGHTS: readonly Right[] = ['read', 'write'];

function checkDataDirectory(dataDir: string): void {
  if (!existsSync(join(dataDir, 'walship.conf'))) {
    throw new CliError(ExitCode.failed, `"${dataDir}" is not a walship data directory`, {
      detail: `There is no walship.conf in "${dataDir}".`,
      hint: 'Give the data directory of a node with -D (walship init -D DIR creates one).',
    });
  }
}

function rightsOf(text: string | undefined, fallback: readonly Right[]): Right[] {
  if (text === undefined) return [...fallback];
  const parsed = parseRights(text);
  if ('problem' in parsed) throw usageError(`--rights ${text}: ${parsed.problem}`, `Give a comma-separated list of ${RIGHTS.join(', ')}, or all.`);
  return parsed.rights;
}

function checkName(name: string | undefined): string {
  if (name === undefined) throw usageError('no user name given', 'Give the user name after the options: walship user add -D DIR NAME.');
  const problem = userNameProblem(name);
  if (problem !== null) throw usageError(`invalid user name "${name}": ${problem}`);
  return name;
}

function load(dataDir: string): UsersFile | null {
  return readUsersFile(dataDir);
}

function noSuchUser(name: string, dataDir: string): CliError {
  return new CliError(ExitCode.failed, `role "${name}" does not exist`, { hint: `"walship user list -D ${dataDir}" shows the users.` });
}

/** A note when the users are not used yet (auth_method is trust). */
function methodNote(dataDir: string, io: CliIo): void {
  let method = 'trust';
  try {
    method = readConfigFile(dataDir).get('auth_method');
  } catch {
    return;
  }
  if (method !== 'scram-sha-256') {
    io.stderr.write(
      formatErrorText('auth_method is trust: the node does not use these users yet', undefined, `Turn SCRAM authentication on with "walship set -D ${dataDir} auth_method scram-sha-256".`, 'warning'),
    );
  }
}

/** scram_iterations from DIR's walship.conf (PostgreSQL's setting, 4096 by default). */
function scramIterations(dataDir: string): number {
  try {
    return readConfigFile(dataDir).get('scram_iterations');
  } catch {
    return SCRAM_DEFAULT_ITERATIONS;
  }
}

async function verifierFor(io: CliIo, dataDir: string, name: string): Promise<string> {
  const password = await readNewPassword(io, `user "${name}"`);
  return formatScramVerifier(buildScramVerifier(password, { iterations: scramIterations(dataDir) }));
}

export async function run(options: UserOptions, io: CliIo): Promise<number> {
  const { dataDir } = options;
  checkDataDirectory(dataDir);
  if (options.action === 'list') {
    const users = [...(load(dataDir)?.users ?? new Map())].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (options.json === true) {
      printJson(io.stdout, { users: users.map(([name, entry]) => ({ name, rights: entry.rights })) });
    } else {
      io.stdout.write(`${formatTable(['name', 'rights'], users.map(([name, entry]) => [name, entry.rights.join(',')]))}\n`);
    }
    return ExitCode.ok;
  }
  const name = checkName(options.name);
  const file = load(dataDir);
  switch (options.action) {
    case 'add': {
      const rights = rightsOf(options.rights, DEFAULT_USER_RIGHTS);
      const next = file ?? emptyUsersFile();
      if (next.users.has(name)) {
        throw new CliError(ExitCode.failed, `role "${name}" already exists`, { hint: `Change its password with "walship user passwd -D ${dataDir} ${name}", its rights with "walship user alter".` });
      }
      next.users.set(name, { rights, verifier: await verifierFor(io, dataDir, name) });
      writeUsersFile(dataDir, next);
      io.stdout.write(`user "${name}" added with rights ${rights.join(',')}\n`);
      methodNote(dataDir, io);
      return ExitCode.ok;
    }
    case 'passwd': {
      const entry = file?.users.get(name);
      if (file === null || entry === undefined) throw noSuchUser(name, dataDir);
      if (options.rights !== undefined) throw usageError('passwd changes the password only', `Change rights with "walship user alter -D ${dataDir} ${name} --rights LIST".`);
      file.users.set(name, { rights: entry.rights, verifier: await verifierFor(io, dataDir, name) });
      writeUsersFile(dataDir, file);
      io.stdout.write(`password of user "${name}" changed\n`);
      return ExitCode.ok;
    }
    case 'alter': {
      const entry = file?.users.get(name);
      if (file === null || entry === undefined) throw noSuchUser(name, dataDir);
      if (options.rights === undefined) throw usageError('nothing to change', 'Give --rights LIST (e.g. read,write or all).');
      const rights = rightsOf(options.rights, entry.rights);
      file.users.set(name, { rights, verifier: entry.verifier });
      writeUsersFile(dataDir, file);
      io.stdout.write(`user "${name}" now has rights ${rights.join(',') || '(none)'}\n`);
      return ExitCode.ok;
    }
    case 'del': {
      if (file === null || !file.users.has(name)) throw noSuchUser(name, dataDir);
      file.users.delete(name);
      writeUsersFile(dataDir, file);
      io.stdout.write(`user "${name}" removed\n`);
      if (![...file.users.values()].some((entry) => entry.rights.includes('admin'))) {
        io.stderr.write(formatErrorText(`no user with the admin right is left in ${USERS_FILE_NAME}`, undefined, `Nobody can promote, checkpoint or change settings over the network until one is added: walship user add -D ${dataDir} NAME --rights all.`, 'warning'));
      }
      return ExitCode.ok;
    }
  }
}
