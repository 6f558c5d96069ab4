/**
 * walship.conf, THE settings file of a data directory (PostgreSQL's guc-file.l and the
 * ALTER SYSTEM writer in one). `walship init`, `basebackup`, `rewind` and `walship set` write it;
 * the postmaster reads it at start and on reload; nothing else holds settings.
 *
 * Syntax, as postgresql.conf: one `name = value` a line (the `=` may be left out), `#` starts a
 * comment, values are a number with an optional unit (`128MB`, `-1`, `0.9`), a bare word
 * (`on`, `remote_apply`) or a quoted string (`'host=127.0.0.1 port=5433'`, with `''` or `\'` for a
 * quote and PostgreSQL's backslash escapes). A name given twice takes its last value.
 *
 * Writes are atomic and durable: the new text goes to a temporary file beside it, which is
 * fsynced and renamed over walship.conf, and then the directory is fsynced. Editing keeps every
 * other line and comment as it was. Two writers at once do not corrupt the file, but the last
 * rename wins (PostgreSQL serialises ALTER SYSTEM with a lock; a node and `walship set -D` on the
 * same directory at the same moment is not a supported workflow).
 */
import { chmodSync, closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ErrorCode, WalshipError } from '@walship/engine/errors';
import { SETTING_DEFINITIONS, SETTING_NAMES, type SettingContext, type SettingName, type SettingValues } from './definitions.js';
import { formatSettingValue, lookupSetting, parseSettingValue } from './parse.js';
import { Settings } from './settings.js';

export const CONFIG_FILE_NAME = 'walship.conf';

/** File mode of a new walship.conf: it may hold passwords. */
const CONFIG_FILE_MODE = 0o600;

/** A walship.conf larger than this is refused rather than read: it cannot be a real one. */
const CONFIG_FILE_BYTES_MAX = 4 * 1024 * 1024;

export function configFilePath(dataDir: string): string {
  return join(dataDir, CONFIG_FILE_NAME);
}

/** One `name = value` line of a configuration file. */
export interface ConfigLine {
  /** 1-based. */
  lineNumber: number;
  /** As written (looked up ignoring case). */
  name: string;
  /** The value with quotes and escapes removed. */
  value: string;
  /** Offset of a trailing `#` comment in the raw line, kept when the line is rewritten. */
  commentOffset: number | null;
}

// One token (guc-file.l): a comment, `=`, a quoted string, a number with optional unit letters,
// a bare word (a name, `on`, `remote_apply`, `foo.bar`, `a-b:c/d`), or any other character.
const TOKEN =
  /[ \t\r\f]*(?:(#.*)|(=)|('(?:[^'\\\n]|\\.|'')*')|([+-]?(?:0[xX][0-9A-Fa-f]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)[A-Za-z]*)|([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff\-.:/]*)|(\S))/y;

const NAME = /^[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*(?:\.[A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?$/;

type Token =
  | { kind: 'comment'; text: string; offset: number }
  | { kind: 'equals'; text: string; offset: number }
  | { kind: 'string'; text: string; offset: number }
  | { kind: 'number'; text: string; offset: number }
  | { kind: 'word'; text: string; offset: number }
  | { kind: 'junk'; text: string; offset: number }
  | { kind: 'end'; text: string; offset: number };

function tokenize(line: string): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < line.length) {
    const start = TOKEN.lastIndex;
    const match = TOKEN.exec(line);
    if (match === null || match[0].length === 0) break; // only blanks remain
    const text = match[0].trimStart();
    const offset = start + match[0].length - text.length;
    if (match[1] !== undefined) tokens.push({ kind: 'comment', text, offset });
    else if (match[2] !== undefined) tokens.push({ kind: 'equals', text, offset });
    else if (match[3] !== undefined) tokens.push({ kind: 'string', text, offset });
    else if (match[4] !== undefined) tokens.push({ kind: 'number', text, offset });
    else if (match[5] !== undefined) tokens.push({ kind: 'word', text, offset });
    else tokens.push({ kind: 'junk', text, offset });
  }
  tokens.push({ kind: 'end', text: '', offset: line.length });
  return tokens;
}

/** DeescapeQuotedString: strips the quotes, turns `''` into `'` and reads backslash escapes. */
export function unquoteConfigString(quoted: string): string {
  const body = quoted.slice(1, -1);
  let result = '';
  for (let index = 0; index < body.length; index++) {
    const char = body[index]!;
    if (char === "'" && body[index + 1] === "'") {
      result += "'";
      index++;
    } else if (char === '\\' && index + 1 < body.length) {
      const next = body[++index]!;
      const octal = /^[0-7]{1,3}/.exec(body.slice(index));
      if (octal !== null) {
        result += String.fromCharCode(parseInt(octal[0], 8));
        index += octal[0].length - 1;
      } else {
        result += { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' }[next] ?? next;
      }
    } else {
      result += char;
    }
  }
  return result;
}

/** Quotes a string so that `unquoteConfigString` gives it back. */
export function quoteConfigString(value: string): string {
  const escaped = value
    .replace(/\\/g, '\\\\')
    .replace(/'/g, "''")
    .replace(/\n/g, '\\n')
    .replace(/\r/g, '\\r');
  return `'${escaped}'`;
}

function syntaxError(fileName: string, lineNumber: number, token: Token): WalshipError {
  const near = token.kind === 'end' ? 'near end of line' : `near token "${token.text}"`;
  return new WalshipError(ErrorCode.invalidParameter, `syntax error in file "${fileName}" line ${lineNumber}, ${near}`, {
    hint: `Write the line as name = value (quote values that are not a number or a single word), then try again.`,
  });
}

/**
 * Reads the lines of a configuration file (syntax only: names and values are not checked here).
 * Throws `syntax error in file "F" line N, near token "T"` on a malformed line.
 */
export function parseConfigText(text: string, fileName: string): ConfigLine[] {
  const lines = text.split('\n');
  const result: ConfigLine[] = [];
  for (let index = 0; index < lines.length; index++) {
    const lineNumber = index + 1;
    const tokens = tokenize(lines[index]!);
    let position = 0;
    const next = (): Token => tokens[Math.min(position++, tokens.length - 1)]!;
    const first = next();
    if (first.kind === 'end' || first.kind === 'comment') continue;
    if (first.kind !== 'word' || !NAME.test(first.text)) throw syntaxError(fileName, lineNumber, first);
    let valueToken = next();
    if (valueToken.kind === 'equals') valueToken = next();
    if (valueToken.kind !== 'word' && valueToken.kind !== 'number' && valueToken.kind !== 'string') {
      throw syntaxError(fileName, lineNumber, valueToken);
    }
    const after = next();
    if (after.kind !== 'end' && after.kind !== 'comment') throw syntaxError(fileName, lineNumber, after);
    result.push({
      lineNumber,
      name: first.text,
      value: valueToken.kind === 'string' ? unquoteConfigString(valueToken.text) : valueToken.text,
      commentOffset: after.kind === 'comment' ? after.offset : null,
    });
  }
  return result;
}

/**
 * Turns the lines of a configuration file into Settings over the defaults: names are looked up
 * and values checked, and errors name the file and the line.
 */
export function settingsFromConfigText(text: string, fileName: string, base: Settings = Settings.defaults()): Settings {
  let settings = base;
  for (const line of parseConfigText(text, fileName)) {
    let name: SettingName;
    try {
      name = lookupSetting(line.name);
    } catch (error) {
      const hint = error instanceof WalshipError ? error.hint : undefined;
      throw new WalshipError(
        ErrorCode.unknownSetting,
        `unrecognized configuration parameter "${line.name}" in file "${fileName}" line ${line.lineNumber}`,
        { hint: hint ?? 'Remove or correct the line, then try again.' },
      );
    }
    const value = parseSettingValue(name, line.value, { detail: `The value is in file "${fileName}" line ${line.lineNumber}.` });
    settings = settings.withValue(name, value, { kind: 'file', file: fileName, line: line.lineNumber });
  }
  return settings;
}

function readConfigText(dataDir: string): { path: string; text: string } {
  const path = configFilePath(dataDir);
  try {
    const size = statSync(path).size;
    if (size > CONFIG_FILE_BYTES_MAX) {
      throw new WalshipError(ErrorCode.invalidParameter, `configuration file "${path}" is too large`, {
        detail: `It has ${size} bytes; the limit is ${CONFIG_FILE_BYTES_MAX}.`,
        hint: 'A walship.conf holds one short line per setting; check what wrote this file.',
      });
    }
    return { path, text: readFileSync(path, 'utf8') };
  } catch (error) {
    if (error instanceof WalshipError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new WalshipError(ErrorCode.notADataDirectory, `could not open configuration file "${path}": No such file or directory`, {
        hint: `Is "${dataDir}" a walship data directory? Create one with "walship init -D ${dataDir}".`,
        cause: error,
      });
    }
    throw new WalshipError(ErrorCode.ioError, `could not read configuration file "${path}": ${(error as Error).message}`, {
      hint: 'Check the file and its permissions.',
      cause: error,
    });
  }
}

/** Reads DATADIR/walship.conf: every setting typed, defaults for those it leaves out. */
export function readConfigFile(dataDir: string): Settings {
  const { path, text } = readConfigText(dataDir);
  return settingsFromConfigText(text, path);
}

/** How a value is written into walship.conf: strings quoted, everything else as SHOW prints it. */
export function formatConfigValue<N extends SettingName>(name: N, value: SettingValues[N]): string {
  const text = formatSettingValue(name, value);
  return SETTING_DEFINITIONS[name].kind === 'string' ? quoteConfigString(text) : text;
}

function contextNote(context: SettingContext): string {
  switch (context) {
    case 'init':
      return ' (fixed at init)';
    case 'postmaster':
      return ' (change requires restart)';
    default:
      return '';
  }
}

function validateEntries(entries: Iterable<readonly [string, string]>): Array<{ name: SettingName; line: string }> {
  const validated = new Map<SettingName, string>();
  for (const [rawName, text] of entries) {
    const name = lookupSetting(rawName);
    validated.set(name, `${name} = ${formatConfigValue(name, parseSettingValue(name, text))}`);
  }
  return [...validated].map(([name, line]) => ({ name, line }));
}

export interface WriteConfigOptions {
  /** Written as `#` comment lines at the top. */
  header?: string;
  /** Adds every other setting as a commented-out line with its default and description (default true). */
  reference?: boolean;
}

/**
 * Writes a new walship.conf holding `entries` (validated first; nothing is written if one is
 * bad), followed by a commented reference of every other setting at its default.
 */
export function writeConfigFile(
  dataDir: string,
  entries: Iterable<readonly [string, string]> | Readonly<Record<string, string>>,
  options: WriteConfigOptions = {},
): void {
  const pairs: Iterable<readonly [string, string]> = Symbol.iterator in entries ? (entries as Iterable<readonly [string, string]>) : Object.entries(entries);
  const active = validateEntries(pairs);
  const header =
    options.header ??
    [
      'walship.conf: the settings of this node, one "name = value" a line.',
      '',
      'Change it with "walship set -D DIR NAME VALUE", or through a running node with',
      '"walship set --node HOST:PORT NAME VALUE" (which also reloads). Memory units: B kB MB GB TB;',
      'time units: us ms s min h d. Settings marked "requires restart" take effect at the next start.',
    ].join('\n');
  const lines = header.split('\n').map((line) => (line === '' ? '#' : `# ${line}`));
  lines.push('');
  for (const { line } of active) lines.push(line);
  if (options.reference ?? true) {
    const activeNames = new Set(active.map(({ name }) => name));
    lines.push('', '# Every other setting, at its default:', '');
    const defaults = Settings.defaults();
    for (const name of SETTING_NAMES) {
      if (activeNames.has(name)) continue;
      const definition = SETTING_DEFINITIONS[name];
      const assignment = `#${name} = ${formatConfigValue(name, defaults.get(name))}`;
      lines.push(`${assignment.padEnd(40)} # ${definition.description}${contextNote(definition.context)}`);
    }
  }
  writeFileDurably(configFilePath(dataDir), `${lines.join('\n')}\n`);
}

/** What `setConfigValues` changed, per setting. */
export interface ConfigChange {
  name: SettingName;
  value: SettingValues[SettingName];
  /** As written into the file. */
  text: string;
  /** The value text the file had before (its last line for the name), or null. */
  previous: string | null;
  context: SettingContext;
  /** True for `postmaster` settings: the running server keeps the old value until a restart. */
  restartRequired: boolean;
}

/**
 * Sets settings in walship.conf, validated first (nothing is written if one is bad): the last
 * line naming a setting is rewritten in place (its trailing comment kept); a setting the file
 * does not name yet is added after the last setting line. Other lines are kept as they are.
 * Settings fixed at init cannot be set.
 */
export function setConfigValues(dataDir: string, entries: Iterable<readonly [string, string]>): ConfigChange[] {
  const changes: ConfigChange[] = [];
  const newLines = new Map<SettingName, string>();
  for (const [rawName, text] of entries) {
    const name = lookupSetting(rawName);
    const context = SETTING_DEFINITIONS[name].context;
    if (context === 'init') {
      throw new WalshipError(ErrorCode.invalidParameter, `parameter "${name}" cannot be changed`, {
        detail: 'It is fixed when the data directory is created.',
        hint: `Create a new data directory with "walship init -D DIR --set ${name}=VALUE" to use another value.`,
      });
    }
    const value = parseSettingValue(name, text);
    const written = formatConfigValue(name, value);
    newLines.set(name, `${name} = ${written}`);
    changes.push({ name, value, text: written, previous: null, context, restartRequired: context === 'postmaster' });
  }
  const { path, text } = readConfigText(dataDir);
  const rawLines = text.split('\n');
  const parsed = parseConfigText(text, path);
  const lastLineOf = new Map<SettingName, (typeof parsed)[number]>();
  for (const line of parsed) {
    const name = line.name.toLowerCase();
    if (newLines.has(name as SettingName)) lastLineOf.set(name as SettingName, line);
  }
  for (const change of changes) change.previous = lastLineOf.get(change.name)?.value ?? null;

  const appended: string[] = [];
  for (const [name, newLine] of newLines) {
    const existing = lastLineOf.get(name);
    if (existing === undefined) {
      appended.push(newLine);
      continue;
    }
    const raw = rawLines[existing.lineNumber - 1]!;
    rawLines[existing.lineNumber - 1] = existing.commentOffset === null ? newLine : `${newLine}\t${raw.slice(existing.commentOffset)}`;
  }
  if (appended.length > 0) {
    const lastSetting = parsed.at(-1);
    if (lastSetting === undefined) {
      // No setting lines: append at the end, before the final newline.
      const insertAt = rawLines.at(-1) === '' ? rawLines.length - 1 : rawLines.length;
      rawLines.splice(insertAt, 0, ...appended);
    } else {
      rawLines.splice(lastSetting.lineNumber, 0, ...appended);
    }
  }
  writeFileDurably(path, rawLines.join('\n'));
  return changes;
}

/** Sets one setting in walship.conf; see `setConfigValues`. */
export function setConfigValue(dataDir: string, name: string, value: string): ConfigChange {
  return setConfigValues(dataDir, [[name, value]])[0]!;
}

/**
 * Removes every line naming a setting, so it returns to its default (ALTER SYSTEM RESET).
 * Returns whether a line was removed.
 */
export function resetConfigValue(dataDir: string, rawName: string): boolean {
  const name = lookupSetting(rawName);
  const { path, text } = readConfigText(dataDir);
  const remove = new Set(
    parseConfigText(text, path)
      .filter((line) => line.name.toLowerCase() === name)
      .map((line) => line.lineNumber - 1),
  );
  if (remove.size === 0) return false;
  writeFileDurably(
    path,
    text
      .split('\n')
      .filter((_, index) => !remove.has(index))
      .join('\n'),
  );
  return true;
}

/**
 * Replaces a file atomically and durably: write a temporary file beside it, fsync it, rename it
 * over the old one, fsync the directory. A crash leaves either the old or the new file. The new
 * file keeps the old one's mode (0600 when there was none), unless `forceMode` is given: then it
 * gets exactly that mode, whatever the umask (a file holding secrets).
 */
export function writeFileDurably(path: string, text: string, forceMode?: number): void {
  let mode = forceMode ?? CONFIG_FILE_MODE;
  if (forceMode === undefined) {
    try {
      mode = statSync(path).mode & 0o777;
    } catch {
      // A new file gets the default mode.
    }
  }
  const temporary = `${path}.tmp.${process.pid}`;
  try {
    const fd = openSync(temporary, 'w', mode);
    try {
      if (forceMode !== undefined) chmodSync(temporary, forceMode);
      const bytes = Buffer.from(text, 'utf8');
      for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written, bytes.length - written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
    const directory = openSync(dirname(path), 'r');
    try {
      fsyncSync(directory);
    } finally {
      closeSync(directory);
    }
  } catch (error) {
    try {
      unlinkSync(temporary);
    } catch {
      // Already renamed, or never created.
    }
    throw new WalshipError(ErrorCode.ioError, `could not write file "${path}": ${(error as Error).message}`, {
      hint: 'Check the free space and the permissions of the data directory.',
      cause: error,
    });
  }
}
