/**
 * The field leaves of message validation: read one field of a decoded msgpack map, check its
 * type and limit, and throw a ProtocolError naming it (`invalid message: <where> <problem>`).
 * Both validators build on them, validate.ts (client sessions) and replication-validate.ts
 * (replication connections), so that the two speak the same messages and apply the same
 * nil-is-absent rule; keeping them in one place keeps it so. Internal to the package: not
 * exported from index.ts.
 */
import { formatLsn, parseLsn } from '@walship/engine/lsn';
import { MAX_NAME_BYTES } from './constants.js';
import type { WireLsn } from './messages.js';
import { ProtocolError } from './protocol-error.js';

export type WireMap = Record<string, unknown>;

/** Throws the ProtocolError of an invalid field. */
export function fail(where: string, problem: string): never {
  throw new ProtocolError(`invalid message: ${where} ${problem}`);
}

export function describe(value: unknown): string {
  if (value === null) return 'nil';
  if (value === undefined) return 'nothing';
  if (value instanceof Uint8Array) return 'binary';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'float';
  if (typeof value === 'object') return isMap(value) ? 'map' : 'extension object';
  return typeof value;
}

export function isMap(value: unknown): value is WireMap {
  if (typeof value !== 'object' || value === null) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function expectMap(value: unknown, where: string): WireMap {
  if (!isMap(value)) fail(where, `must be a map (got ${describe(value)})`);
  return value;
}

/** An own field; a msgpack nil counts as absent. */
export function field(map: WireMap, name: string): unknown {
  if (!Object.prototype.hasOwnProperty.call(map, name)) return undefined;
  const value = map[name];
  return value === null ? undefined : value;
}

/** Whether the field is present and nil (for the fields where nil means "none", not "omitted"). */
export function isNil(map: WireMap, name: string): boolean {
  return Object.prototype.hasOwnProperty.call(map, name) && map[name] === null;
}

export function required(map: WireMap, name: string, where: string): unknown {
  const value = field(map, name);
  if (value === undefined) fail(`${where}.${name}`, 'is missing');
  return value;
}

/*
 * Every req/opt reader below first tests the valid case inline and returns: a field's path
 * (`result.lsn`) is built only when the value is wrong, from the check that then throws. Built
 * up front it was a string allocation per field of every message, and four messages per commit
 * (a request and its result, each encoded and decoded) went through here.
 */

/**
 * UTF-8 takes at least one byte per UTF-16 unit and at most three, so the byte count is only
 * computed when the unit count cannot decide.
 */
export function checkString(value: unknown, where: string, minBytes: number, maxBytes: number): string {
  if (typeof value !== 'string') fail(where, `must be a string (got ${describe(value)})`);
  if (value.length > maxBytes) fail(where, `is longer than ${maxBytes} bytes`);
  if (value.length < minBytes) fail(where, minBytes === 1 ? 'must not be empty' : `is shorter than ${minBytes} bytes`);
  if (value.length * 3 > maxBytes && Buffer.byteLength(value, 'utf8') > maxBytes) {
    fail(where, `is longer than ${maxBytes} bytes`);
  }
  return value;
}

/** Whether checkString would accept the value without counting its bytes. */
function plainlyValidString(value: unknown, minBytes: number, maxBytes: number): value is string {
  return typeof value === 'string' && value.length >= minBytes && value.length * 3 <= maxBytes;
}

export function reqString(map: WireMap, name: string, where: string, maxBytes: number, minBytes = 0): string {
  const value = field(map, name);
  if (plainlyValidString(value, minBytes, maxBytes)) return value;
  return checkString(required(map, name, where), `${where}.${name}`, minBytes, maxBytes);
}

export function optString(map: WireMap, name: string, where: string, maxBytes: number, minBytes = 0): string | undefined {
  const value = field(map, name);
  if (value === undefined || plainlyValidString(value, minBytes, maxBytes)) return value;
  return checkString(value, `${where}.${name}`, minBytes, maxBytes);
}

export function checkBinary(value: unknown, where: string, maxBytes: number, minBytes = 0): Buffer {
  if (!(value instanceof Uint8Array)) fail(where, `must be binary (got ${describe(value)})`);
  if (value.byteLength > maxBytes) fail(where, `is ${value.byteLength} bytes, more than the maximum of ${maxBytes}`);
  if (value.byteLength < minBytes) fail(where, `is ${value.byteLength} bytes, less than the minimum of ${minBytes}`);
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

export function reqBinary(map: WireMap, name: string, where: string, maxBytes: number, minBytes = 0): Buffer {
  const value = field(map, name);
  if (Buffer.isBuffer(value) && value.byteLength <= maxBytes && value.byteLength >= minBytes) return value;
  return checkBinary(required(map, name, where), `${where}.${name}`, maxBytes, minBytes);
}

export function optBinary(map: WireMap, name: string, where: string, maxBytes: number): Buffer | undefined {
  const value = field(map, name);
  if (value === undefined || (Buffer.isBuffer(value) && value.byteLength <= maxBytes)) return value;
  return checkBinary(value, `${where}.${name}`, maxBytes);
}

export function checkInteger(value: unknown, where: string, min: number, max: number): number {
  if (!isIntegerIn(value, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)) {
    fail(where, `must be an integer (got ${describe(value)})`);
  }
  if (value < min || value > max) fail(where, `must be between ${min} and ${max} (got ${value})`);
  return value;
}

/** Whether the value is a safe integer in [min, max] (checkInteger's accepting case). */
export function isIntegerIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max;
}

export function reqInteger(map: WireMap, name: string, where: string, min: number, max: number): number {
  const value = field(map, name);
  if (isIntegerIn(value, min, max)) return value;
  return checkInteger(required(map, name, where), `${where}.${name}`, min, max);
}

export function optInteger(map: WireMap, name: string, where: string, min: number, max: number): number | undefined {
  const value = field(map, name);
  if (value === undefined || isIntegerIn(value, min, max)) return value;
  return checkInteger(value, `${where}.${name}`, min, max);
}

export function checkBoolean(value: unknown, where: string): boolean {
  if (typeof value !== 'boolean') fail(where, `must be a boolean (got ${describe(value)})`);
  return value;
}

/** A missing boolean reads "must be a boolean (got nothing)", not "is missing". */
export function reqBoolean(map: WireMap, name: string, where: string): boolean {
  const value = field(map, name);
  if (typeof value === 'boolean') return value;
  return checkBoolean(value, `${where}.${name}`);
}

export function optBoolean(map: WireMap, name: string, where: string): boolean | undefined {
  const value = field(map, name);
  if (value === undefined || typeof value === 'boolean') return value;
  return checkBoolean(value, `${where}.${name}`);
}

export function checkEnum<T extends string>(value: unknown, where: string, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    const shown = typeof value === 'string' ? `"${value.slice(0, MAX_NAME_BYTES)}"` : describe(value);
    fail(where, `must be one of ${allowed.join(', ')} (got ${shown})`);
  }
  return value as T;
}

export function reqEnum<T extends string>(map: WireMap, name: string, where: string, allowed: readonly T[]): T {
  const value = field(map, name);
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  return checkEnum(value, `${where}.${name}`, allowed);
}

export function optEnum<T extends string>(map: WireMap, name: string, where: string, allowed: readonly T[]): T | undefined {
  const value = field(map, name);
  if (value === undefined || (typeof value === 'string' && (allowed as readonly string[]).includes(value))) return value as T | undefined;
  return checkEnum(value, `${where}.${name}`, allowed);
}

/**
 * An LSN as formatLsn prints it: upper-case hex halves without leading zeros, the high half
 * below 2^21 (so that the whole is a safe integer). Such a text is its own normal form, so it is
 * taken as it is; any other spelling parseLsn accepts is parsed and printed again.
 */
const CANONICAL_LSN = /^(?:0|[1-9A-F][0-9A-F]{0,4}|1[0-9A-F]{5})\/(?:0|[1-9A-F][0-9A-F]{0,7})$/;

function isPrintedLsn(value: unknown): value is WireLsn {
  return typeof value === 'string' && CANONICAL_LSN.test(value);
}

export function checkLsn(value: unknown, where: string): WireLsn {
  if (typeof value !== 'string' || value.length > 17) fail(where, `must be an LSN 'X/X' (got ${describe(value)})`);
  if (CANONICAL_LSN.test(value)) return value;
  const lsn = parseLsn(value);
  if (lsn === null) fail(where, `must be an LSN 'X/X' (got "${value}")`);
  return formatLsn(lsn);
}

export function reqLsn(map: WireMap, name: string, where: string): WireLsn {
  const value = field(map, name);
  if (isPrintedLsn(value)) return value;
  return checkLsn(required(map, name, where), `${where}.${name}`);
}

export function optLsn(map: WireMap, name: string, where: string): WireLsn | undefined {
  const value = field(map, name);
  if (value === undefined || isPrintedLsn(value)) return value;
  return checkLsn(value, `${where}.${name}`);
}

/** An LSN or nil (nil is meaningful here: "none", e.g. a primary's replayLsn); absent is nil too. */
export function nullableLsn(map: WireMap, name: string, where: string): WireLsn | null {
  const value = field(map, name);
  if (value === undefined) return null;
  if (isPrintedLsn(value)) return value;
  return checkLsn(value, `${where}.${name}`);
}

export function optArray(map: WireMap, name: string, where: string, maxItems: number): unknown[] | undefined {
  const value = field(map, name);
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) fail(`${where}.${name}`, `must be an array (got ${describe(value)})`);
  if (value.length > maxItems) fail(`${where}.${name}`, `has ${value.length} items, more than the maximum of ${maxItems}`);
  return value;
}

export function reqArray(map: WireMap, name: string, where: string, maxItems: number): unknown[] {
  const value = optArray(map, name, where, maxItems);
  if (value === undefined) fail(`${where}.${name}`, 'is missing');
  return value;
}

/** Sets `target[name]` only when the value is present, so that absent fields stay absent. */
export function withOptional<T extends object>(target: T, fields: Record<string, unknown>): T {
  for (const name of Object.keys(fields)) {
    const value = fields[name];
    if (value !== undefined) (target as Record<string, unknown>)[name] = value;
  }
  return target;
}

export function messageType(map: WireMap): string {
  const type = field(map, 'type');
  if (typeof type !== 'string') fail('message.type', `must be a string (got ${describe(type)})`);
  return type;
}

/** Rejects a message type: `"<type>" is not <what>`, e.g. `a client message type`. */
export function unknownType(type: string, what: string): never {
  const shown = type.length > MAX_NAME_BYTES ? `${type.slice(0, MAX_NAME_BYTES)}...` : type;
  fail('message.type', `"${shown}" is not ${what}`);
}

export function requestId(map: WireMap, where: string): number {
  return reqInteger(map, 'id', where, 0, Number.MAX_SAFE_INTEGER);
}
