/**
 * primary_conninfo: libpq's `keyword=value` connection strings (fe-connect.c's conninfo_parse,
 * and string_utils.c's appendConnStrVal for writing one back).
 *
 * Syntax, as libpq reads it: pairs separated by whitespace; whitespace around `=` is allowed; a
 * value is either a run of non-whitespace characters or a single-quoted string; inside either, a
 * backslash takes the next character literally (`\'`, `\\`, `\ `). A keyword given twice keeps the
 * last value. libpq's errors are kept word for word: `missing "=" after "x" in connection info
 * string`, `unterminated quoted string in connection info string`, `invalid connection option
 * "x"`. Values are then checked as libpq checks them before connecting (sslmode, port,
 * connect_timeout, target_session_attrs). The URI form (`postgresql://`) is not accepted.
 *
 * Why a parser of our own and not a library: the walreceiver, `rewind -R` and `basebackup -R` must
 * read and write exactly what a PostgreSQL user would put in primary_conninfo, and a value written
 * by formatConninfo must parse back to itself.
 *
 * Pure: strings in, values out; errors are WalshipErrors with code `invalid_parameter_value`.
 */
import { ErrorCode, WalshipError } from '@walship/engine/errors';
import { isAbsolute, join } from 'node:path';
import { clientSslOptionsOf, SSL_MODES, type ClientSslOptions, type SslMode } from '@walship/protocol/ssl-mode';
import { MAX_CONNINFO_BYTES } from './constants.js';

export { SSL_MODES, type SslMode };

/** The keywords walship knows, in libpq's order. `dbname` is accepted and ignored. */
export const CONNINFO_KEYWORDS = [
  'host', 'port', 'user', 'password', 'passfile', 'application_name', 'sslmode', 'sslrootcert', 'sslcert',
  'sslkey', 'connect_timeout', 'target_session_attrs', 'dbname',
] as const;

export type ConninfoKeyword = (typeof CONNINFO_KEYWORDS)[number];

export const TARGET_SESSION_ATTRS = ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby'] as const;
export type TargetSessionAttrs = (typeof TARGET_SESSION_ATTRS)[number];

/** A parsed connection string: keyword -> value, in the order first given. */
export type ConninfoOptions = Partial<Record<ConninfoKeyword, string>>;

/** One host to try, with its port (null: the caller's default). */
export interface ConninfoHost {
  host: string;
  port: number | null;
}

const KNOWN = new Set<string>(CONNINFO_KEYWORDS);
/** C's isspace() in the "C" locale. */
const SPACE = new Set([' ', '\t', '\n', '\v', '\f', '\r']);
/** Values made only of these need no quotes (appendConnStrVal's conservative rule). */
const PLAIN_VALUE = /^[A-Za-z0-9_.]+$/;
const MAX_PORT = 65535;

/** Parses a `keyword=value` connection string and checks its values; see the file banner. */
export function parseConninfo(text: string): ConninfoOptions {
  if (Buffer.byteLength(text) > MAX_CONNINFO_BYTES) {
    throw conninfoError('connection info string is too long', `It has ${Buffer.byteLength(text)} bytes; the limit is ${MAX_CONNINFO_BYTES}.`);
  }
  const options: ConninfoOptions = {};
  let pos = 0;
  while (pos < text.length) {
    if (SPACE.has(text[pos]!)) {
      pos++;
      continue;
    }
    const name = readKeyword(text, pos);
    const value = readValue(text, name.end);
    if (!KNOWN.has(name.keyword)) throw conninfoError(`invalid connection option "${name.keyword}"`);
    options[name.keyword as ConninfoKeyword] = value.value;
    pos = value.end;
  }
  checkConninfoValues(options);
  return options;
}

/** Reads a keyword and the `=` after it; returns the position after the `=` and its blanks. */
function readKeyword(text: string, start: number): { keyword: string; end: number } {
  let pos = start;
  while (pos < text.length && text[pos] !== '=' && !SPACE.has(text[pos]!)) pos++;
  const keyword = text.slice(start, pos);
  while (pos < text.length && SPACE.has(text[pos]!)) pos++;
  if (text[pos] !== '=') throw conninfoError(`missing "=" after "${keyword}" in connection info string`);
  pos++;
  while (pos < text.length && SPACE.has(text[pos]!)) pos++;
  return { keyword, end: pos };
}

/** Reads a bare or single-quoted value starting at `start`, undoing backslash escapes. */
function readValue(text: string, start: number): { value: string; end: number } {
  let pos = start;
  let value = '';
  if (text[pos] !== "'") {
    while (pos < text.length && !SPACE.has(text[pos]!)) {
      if (text[pos] === '\\') pos++;
      if (pos < text.length) value += text[pos++];
    }
    return { value, end: pos };
  }
  pos++;
  for (;;) {
    if (pos >= text.length) throw conninfoError('unterminated quoted string in connection info string');
    const char = text[pos]!;
    if (char === "'") return { value, end: pos + 1 };
    if (char === '\\') {
      pos++;
      if (pos < text.length) value += text[pos++];
      continue;
    }
    value += char;
    pos++;
  }
}

/** The checks libpq makes before connecting (connectOptions2, parse_int_param). */
function checkConninfoValues(options: ConninfoOptions): void {
  if (options.sslmode !== undefined && options.sslmode !== '' && !(SSL_MODES as readonly string[]).includes(options.sslmode)) {
    throw conninfoError(`invalid sslmode value: "${options.sslmode}"`, undefined, `Use one of ${SSL_MODES.join(', ')}.`);
  }
  const attrs = options.target_session_attrs;
  if (attrs !== undefined && attrs !== '' && !(TARGET_SESSION_ATTRS as readonly string[]).includes(attrs)) {
    throw conninfoError(`invalid target_session_attrs value: "${attrs}"`, undefined, `Use one of ${TARGET_SESSION_ATTRS.join(', ')}.`);
  }
  if (options.connect_timeout !== undefined && options.connect_timeout !== '' && parseIntegerValue(options.connect_timeout) === null) {
    throw conninfoError(`invalid integer value "${options.connect_timeout}" for connection option "connect_timeout"`);
  }
  conninfoHosts(options);
}

/** libpq's parse_int_param: optional surrounding blanks, an optional sign, decimal digits. */
function parseIntegerValue(text: string): number | null {
  const match = /^[ \t\n\v\f\r]*([+-]?\d+)[ \t\n\v\f\r]*$/.exec(text);
  if (match === null) return null;
  const value = Number(match[1]);
  return Number.isSafeInteger(value) && Math.abs(value) <= 0x7fff_ffff ? value : null;
}

/**
 * The hosts to try, in order, each with its port: `host` and `port` are comma-separated lists, and
 * a single port applies to every host (connectOptions2). With no host, one entry with host ''.
 */
export function conninfoHosts(options: ConninfoOptions): ConninfoHost[] {
  const hosts = (options.host ?? '').split(',');
  const ports = options.port === undefined || options.port === '' ? [] : options.port.split(',');
  if (ports.length > 1 && ports.length !== hosts.length) {
    throw conninfoError(`could not match ${ports.length} port numbers to ${hosts.length} hosts`);
  }
  return hosts.map((host, index) => ({ host, port: portNumber(ports.length === 1 ? ports[0]! : ports[index]) }));
}

function portNumber(text: string | undefined): number | null {
  if (text === undefined || text === '') return null;
  const port = parseIntegerValue(text);
  if (port === null || port < 1 || port > MAX_PORT) throw conninfoError(`invalid port number: "${text}"`);
  return port;
}

/** connect_timeout in milliseconds, or null when unset or 0 (wait indefinitely); libpq uses at least 2 s. */
export function conninfoConnectTimeoutMs(options: ConninfoOptions): number | null {
  if (options.connect_timeout === undefined || options.connect_timeout === '') return null;
  const seconds = parseIntegerValue(options.connect_timeout);
  if (seconds === null || seconds <= 0) return null;
  return Math.max(seconds, 2) * 1000;
}

/**
 * The TLS options of a checked connection string for the replication connection: its sslmode
 * (unset: the default, prefer), sslrootcert, sslcert and sslkey, relative files taken in
 * `baseDir` (the data directory: PostgreSQL's walreceiver runs there, so libpq reads relative
 * paths there).
 */
export function conninfoSslOptions(options: ConninfoOptions, baseDir: string): ClientSslOptions {
  return clientSslOptionsOf(options, (file) => (isAbsolute(file) ? file : join(baseDir, file)));
}

/**
 * Writes options back as a connection string, in their order, each value quoted when it is not
 * plain (appendConnStrVal): `'...'` with `'` and `\` escaped by a backslash. With `redactPassword`,
 * the password is shown as `********`, as pg_stat_wal_receiver shows it.
 */
export function formatConninfo(options: ConninfoOptions, { redactPassword = false } = {}): string {
  const pairs: string[] = [];
  for (const [keyword, value] of Object.entries(options) as Array<[ConninfoKeyword, string | undefined]>) {
    if (value === undefined) continue;
    const shown = redactPassword && keyword === 'password' ? '********' : value;
    pairs.push(`${keyword}=${quoteConninfoValue(shown)}`);
  }
  return pairs.join(' ');
}

/** One value as appendConnStrVal writes it. */
export function quoteConninfoValue(value: string): string {
  if (PLAIN_VALUE.test(value)) return value;
  return `'${value.replace(/['\\]/g, (char) => `\\${char}`)}'`;
}

function conninfoError(message: string, detail?: string, hint?: string): WalshipError {
  return new WalshipError(ErrorCode.invalidParameter, message, { detail, hint: hint ?? 'Check primary_conninfo.' });
}
