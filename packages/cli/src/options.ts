/**
 * Parsers of option values, for commander's argParser. A bad value throws InvalidArgumentError,
 * which commander reports as a usage error (exit 2). Kept free of the other walship packages so
 * that `walship --help` loads nothing but commander.
 */
import { InvalidArgumentError } from 'commander';

/** The port a node listens on by default (the `port` setting's default; 5432 is PostgreSQL's). */
export const DEFAULT_PORT = 5433;
export const DEFAULT_NODE = `127.0.0.1:${DEFAULT_PORT}`;

export interface NodeAddress {
  host: string;
  port: number;
}

export function formatNodeAddress(node: NodeAddress): string {
  return node.host.includes(':') ? `[${node.host}]:${node.port}` : `${node.host}:${node.port}`;
}

function parsePortText(text: string, what: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new InvalidArgumentError(`${what} "${text}" is not a port number.`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw new InvalidArgumentError(`${what} ${port} is outside the valid range (1 .. 65535).`);
  return port;
}

/** `HOST:PORT`, `[V6ADDR]:PORT` or `HOST` (port 5433). */
export function parseNodeAddress(text: string): NodeAddress {
  const trimmed = text.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(trimmed);
  if (bracketed !== null) {
    return { host: bracketed[1]!, port: bracketed[2] === undefined ? DEFAULT_PORT : parsePortText(bracketed[2], 'port') };
  }
  const plain = /^([^:\s]+)(?::([^:]*))?$/.exec(trimmed);
  if (plain === null) {
    throw new InvalidArgumentError(`"${text}" is not a node address; write HOST:PORT, for example 127.0.0.1:5433.`);
  }
  return { host: plain[1]!, port: plain[2] === undefined ? DEFAULT_PORT : parsePortText(plain[2], 'port') };
}

/** A comma-separated list of node addresses (`a:1,b:2`). */
export function parseNodeList(text: string): NodeAddress[] {
  const parts = text.split(',').filter((part) => part.trim() !== '');
  if (parts.length === 0) throw new InvalidArgumentError('no node given; write HOST:PORT, for example 127.0.0.1:5433.');
  return parts.map(parseNodeAddress);
}

/** The nodes of `--node`, else of WALSHIP_NODE, else 127.0.0.1:5433. */
export function resolveNodes(option: NodeAddress[] | undefined, env: NodeJS.ProcessEnv): NodeAddress[] {
  if (option !== undefined) return option;
  const fromEnv = env.WALSHIP_NODE;
  if (fromEnv !== undefined && fromEnv.trim() !== '') return parseNodeList(fromEnv);
  return [parseNodeAddress(DEFAULT_NODE)];
}

export function parsePort(text: string): number {
  return parsePortText(text.trim(), 'port');
}

/** A whole number >= 1. */
export function parsePositiveInteger(text: string): number {
  if (!/^\s*\d+\s*$/.test(text) || Number(text) < 1 || !Number.isSafeInteger(Number(text))) {
    throw new InvalidArgumentError(`"${text}" is not a whole number of at least 1.`);
  }
  return Number(text);
}

/** A number of seconds (fractions allowed), returned in milliseconds. */
export function parseSecondsToMs(text: string): number {
  return secondsToMs(text, false);
}

/** Seconds that may be 0 (a warm-up left out), in milliseconds. */
export function parseSecondsOrZeroToMs(text: string): number {
  return secondsToMs(text, true);
}

function secondsToMs(text: string, zeroAllowed: boolean): number {
  const seconds = Number(text);
  if (text.trim() === '' || !Number.isFinite(seconds) || seconds < 0 || (seconds === 0 && !zeroAllowed)) {
    throw new InvalidArgumentError(`"${text}" is not a number of seconds${zeroAllowed ? ', 0 or more' : ' greater than 0'}.`);
  }
  return Math.round(seconds * 1000);
}

const BYTE_UNITS: Readonly<Record<string, number>> = { '': 1, B: 1, kB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };

/** A size in bytes: `100`, `4kB`, `1MB` (PostgreSQL's unit spelling). */
export function parseByteSize(text: string): number {
  const match = /^\s*(\d+)\s*(B|kB|MB|GB)?\s*$/.exec(text);
  if (match === null) throw new InvalidArgumentError(`"${text}" is not a size; write bytes, or a number with B, kB, MB or GB.`);
  const bytes = Number(match[1]) * BYTE_UNITS[match[2] ?? '']!;
  if (!Number.isSafeInteger(bytes)) throw new InvalidArgumentError(`"${text}" is too large.`);
  return bytes;
}

/** An LSN as PostgreSQL prints it (`0/16B3748`); returned as the number. */
export function parseLsnArgument(text: string): number {
  const match = /^\s*([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})\s*$/.exec(text);
  if (match === null) throw new InvalidArgumentError(`"${text}" is not an LSN; write it as PostgreSQL prints one, like 0/16B3748.`);
  const value = parseInt(match[1]!, 16) * 0x1_0000_0000 + parseInt(match[2]!, 16);
  if (!Number.isSafeInteger(value)) throw new InvalidArgumentError(`LSN "${text}" is out of range.`);
  return value;
}

/** `synchronous_commit` levels (as in the settings table). */
export const SYNC_COMMIT_LEVELS = ['off', 'local', 'remote_write', 'on', 'remote_apply'] as const;
export type SyncCommitLevel = (typeof SYNC_COMMIT_LEVELS)[number];

export function parseSyncCommitLevel(text: string): SyncCommitLevel {
  const level = SYNC_COMMIT_LEVELS.find((candidate) => candidate === text.trim().toLowerCase());
  if (level === undefined) throw new InvalidArgumentError(`"${text}" is not a level; use one of ${SYNC_COMMIT_LEVELS.join(', ')}.`);
  return level;
}

/** WAIT FOR LSN's modes (PostgreSQL 19). */
export const WAIT_LSN_MODES = ['standby_replay', 'standby_write', 'standby_flush', 'primary_flush'] as const;
export type WaitLsnMode = (typeof WAIT_LSN_MODES)[number];

export function parseWaitLsnMode(text: string): WaitLsnMode {
  const mode = WAIT_LSN_MODES.find((candidate) => candidate === text.trim().toLowerCase());
  if (mode === undefined) throw new InvalidArgumentError(`"${text}" is not a mode; use one of ${WAIT_LSN_MODES.join(', ')}.`);
  return mode;
}

export function parseStopMode(text: string): 'smart' | 'fast' | 'immediate' {
  const mode = text.trim().toLowerCase();
  // pg_ctl also takes the first letter.
  if (mode === 'smart' || mode === 's') return 'smart';
  if (mode === 'fast' || mode === 'f') return 'fast';
  if (mode === 'immediate' || mode === 'i') return 'immediate';
  throw new InvalidArgumentError(`"${text}" is not a shutdown mode; use smart, fast or immediate.`);
}

/** Collects repeated `--set NAME=VALUE` into [name, value] pairs (validated by the command). */
export function collectAssignment(text: string, previous: Array<[string, string]> = []): Array<[string, string]> {
  const equals = text.indexOf('=');
  if (equals <= 0) throw new InvalidArgumentError(`"${text}" is not NAME=VALUE, for example --set shared_buffers=256MB.`);
  return [...previous, [text.slice(0, equals).trim(), text.slice(equals + 1)]];
}

/**
 * Which member of a list a read goes to, as libpq's target_session_attrs: `any` (the first that
 * answers, in the order given), `read-write`/`primary` (whichever member is the primary now,
 * followed across a failover), `read-only`/`standby` (the first standby), `prefer-standby` (the
 * first standby, else the first that answers).
 */
export type TargetSessionAttrs = 'any' | 'read-write' | 'primary' | 'read-only' | 'standby' | 'prefer-standby';
export const TARGET_SESSION_ATTRS: readonly TargetSessionAttrs[] = ['any', 'read-write', 'primary', 'read-only', 'standby', 'prefer-standby'];
