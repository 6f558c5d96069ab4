/**
 * The users of a node and their rights (walship's pg_authid): `walship_authid.json` in the data
 * directory, mode 0600, holding for each user a SCRAM-SHA-256 verifier in PostgreSQL's text form
 * (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`) and never a password, plus the
 * node's secret mock-authentication nonce (PostgreSQL keeps its own in pg_control), from which
 * the salt shown for a user that does not exist is derived.
 *
 *     { "version": 1, "mockAuthenticationNonce": "<base64>",
 *       "users": { "walship": { "rights": ["read", "write", "replication", "admin"],
 *                               "verifier": "SCRAM-SHA-256$4096:...$...:..." } } }
 *
 * Written by `walship init --auth scram-sha-256` and `walship user`, each time whole: a
 * temporary file, fsync, rename, fsync of the directory, so that a crash leaves the old file or
 * the new one. Read by the node at each authentication (UsersFileCache re-reads it when it
 * changed), so that a change takes effect at once for new connections, as a change to
 * pg_authid does; sessions already open keep going. Base backups and rewinds copy it with the
 * other files of the data directory; it is not replicated through the WAL, so a change made on
 * a primary later is made on each standby too (`walship user` on each, or `cluster up`).
 *
 * parseUsersFile and formatUsersFile are pure; the rest does the file I/O.
 */
import { readFileSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ErrorCode, WalshipError } from '@walship/engine';
import { decodeBase64Strict, parseScramVerifier, type ScramVerifier } from '@walship/protocol';
import { writeFileDurably } from '../settings/index.js';
import { RIGHTS, type Right } from './rights.js';

export const USERS_FILE_NAME = 'walship_authid.json';
export const USERS_FILE_MODE = 0o600;
const USERS_FILE_VERSION = 1;
/** Bytes of the mock-authentication nonce (PostgreSQL's MOCK_AUTH_NONCE_LEN). */
export const MOCK_AUTH_NONCE_BYTES = 32;
/** NAMEDATALEN - 1: the longest user name. */
export const MAX_USER_NAME_BYTES = 63;
/** Users in one file: a bound on what each authentication parses. */
export const MAX_USERS = 10_000;

export interface UserEntry {
  rights: Right[];
  /** PostgreSQL's text form. */
  verifier: string;
}

export interface UsersFile {
  mockAuthenticationNonce: Buffer;
  users: Map<string, UserEntry>;
}

export function usersFilePath(dataDir: string): string {
  return join(dataDir, USERS_FILE_NAME);
}

/** Why `name` cannot be a user name, or null. */
export function userNameProblem(name: string): string | null {
  if (name === '') return 'a user name cannot be empty';
  if (Buffer.byteLength(name, 'utf8') > MAX_USER_NAME_BYTES) return `a user name is at most ${MAX_USER_NAME_BYTES} bytes long`;
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name)) return 'a user name cannot contain control characters';
  if (name.startsWith('-')) return 'a user name cannot start with "-"';
  return null;
}

export function emptyUsersFile(): UsersFile {
  return { mockAuthenticationNonce: randomBytes(MOCK_AUTH_NONCE_BYTES), users: new Map() };
}

function corrupt(where: string, detail: string): WalshipError {
  return new WalshipError(ErrorCode.dataCorrupted, `invalid users file "${where}"`, {
    detail,
    hint: 'Restore the file from a backup, or remove it and add the users again with "walship user add".',
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses the file's text; throws a WalshipError naming what is wrong. */
export function parseUsersFile(text: string, where: string): UsersFile {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw corrupt(where, `It is not JSON: ${(error as Error).message}.`);
  }
  if (!isRecord(value)) throw corrupt(where, 'It is not a JSON object.');
  if (value.version !== USERS_FILE_VERSION) throw corrupt(where, `Unknown version ${JSON.stringify(value.version)} (expected ${USERS_FILE_VERSION}).`);
  const nonce = typeof value.mockAuthenticationNonce === 'string' ? decodeBase64Strict(value.mockAuthenticationNonce) : null;
  if (nonce === null || nonce.length !== MOCK_AUTH_NONCE_BYTES) throw corrupt(where, `"mockAuthenticationNonce" must be ${MOCK_AUTH_NONCE_BYTES} bytes in base64.`);
  if (!isRecord(value.users)) throw corrupt(where, '"users" must be an object.');
  const names = Object.keys(value.users);
  if (names.length > MAX_USERS) throw corrupt(where, `More than ${MAX_USERS} users.`);
  const users = new Map<string, UserEntry>();
  for (const name of names) {
    const problem = userNameProblem(name);
    if (problem !== null) throw corrupt(where, `User "${name}": ${problem}.`);
    const entry = value.users[name];
    if (!isRecord(entry)) throw corrupt(where, `User "${name}" is not an object.`);
    const rights = entry.rights;
    if (!Array.isArray(rights) || !rights.every((right) => (RIGHTS as readonly unknown[]).includes(right))) {
      throw corrupt(where, `User "${name}": "rights" must be a list of ${RIGHTS.join(', ')}.`);
    }
    if (typeof entry.verifier !== 'string' || parseScramVerifier(entry.verifier) === null) {
      throw corrupt(where, `User "${name}": "verifier" is not a SCRAM-SHA-256 verifier.`);
    }
    users.set(name, { rights: RIGHTS.filter((right) => (rights as unknown[]).includes(right)), verifier: entry.verifier });
  }
  return { mockAuthenticationNonce: nonce, users };
}

export function formatUsersFile(file: UsersFile): string {
  const users: Record<string, UserEntry> = {};
  for (const name of [...file.users.keys()].sort()) users[name] = file.users.get(name)!;
  return `${JSON.stringify({ version: USERS_FILE_VERSION, mockAuthenticationNonce: file.mockAuthenticationNonce.toString('base64'), users }, null, 2)}\n`;
}

/** The file of a data directory; null when there is none. */
export function readUsersFile(dataDir: string): UsersFile | null {
  const path = usersFilePath(dataDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new WalshipError(ErrorCode.ioError, `could not read file "${path}": ${(error as Error).message}`, {
      hint: 'Check the permissions of the data directory.',
      cause: error,
    });
  }
  return parseUsersFile(text, path);
}

/** Replaces the file atomically and durably, mode 0600. */
export function writeUsersFile(dataDir: string, file: UsersFile): void {
  writeFileDurably(usersFilePath(dataDir), formatUsersFile(file), USERS_FILE_MODE);
}

/** A user as the node authenticates it. */
export interface AuthUser {
  name: string;
  rights: readonly Right[];
  verifier: ScramVerifier;
}

/**
 * The node's view of the file: re-read when its inode, size or modification time changed (a
 * stat per authentication, a parse only after a change), so that `walship user` needs no reload.
 */
export class UsersFileCache {
  private key = '';
  private file: UsersFile | null = null;

  constructor(private readonly dataDir: string) {}

  /** The current file (null when absent); throws when it cannot be read or parsed. */
  current(): UsersFile | null {
    let key: string;
    try {
      const stat = statSync(usersFilePath(this.dataDir));
      key = `${stat.ino}:${stat.size}:${stat.mtimeMs}`;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      this.key = '';
      this.file = null;
      return null;
    }
    if (key !== this.key) {
      this.file = readUsersFile(this.dataDir);
      this.key = key;
    }
    return this.file;
  }

  /** A user, with the verifier parsed; null when the user is unknown. */
  lookup(name: string): { user: AuthUser | null; mockNonce: Buffer } | null {
    const file = this.current();
    if (file === null) return null;
    const entry = file.users.get(name);
    const verifier = entry === undefined ? null : parseScramVerifier(entry.verifier);
    return { user: entry === undefined || verifier === null ? null : { name, rights: entry.rights, verifier }, mockNonce: file.mockAuthenticationNonce };
  }
}
