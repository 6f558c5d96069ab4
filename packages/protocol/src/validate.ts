/**
 * Structural validation of messages. Each `normalize*` function takes any value (what msgpack
 * decoded, or what a caller is about to send) and returns a fresh message holding only the known
 * fields, each of the right type and within its limit, or throws a ProtocolError naming the
 * field. The same functions guard both directions: the decoder so that a hostile frame never
 * reaches the server as garbage, the encoder so that a bug never reaches the wire.
 *
 * No recursion on data except the bounded walk of the free-form status document.
 */
import { MAX_KEY_BYTES, MAX_TABLE_NAME_BYTES, MAX_VALUE_BYTES } from '@walship/engine/constants';
import { SYNC_COMMIT_LEVELS } from '@walship/engine/types';
import {
  MAX_LEASE_DURATION_MS,
  MAX_NAME_BYTES,
  MAX_REQUEST_TIMEOUT_MS,
  MAX_STATUS_DEPTH,
  MAX_TEXT_BYTES,
  MAX_TXN_OPERATIONS,
} from './constants.js';
import type {
  AnyResultMessage,
  ClientMessage,
  ClientRequest,
  ErrorMessage,
  RequestType,
  ServerMessage,
  WireCompare,
  WireEntry,
  WireNodeStatus,
  WireOperation,
} from './messages.js';
import { AUTH_METHODS, REQUEST_TYPES, WAIT_LSN_MODES, WAIT_LSN_STATUSES } from './messages.js';
import { MAX_SCRAM_MESSAGE_BYTES } from './scram.js';
import type { WireMap } from './wire-fields.js';
import {
  checkBinary,
  checkInteger,
  checkString,
  describe,
  expectMap,
  fail,
  field,
  isIntegerIn,
  isMap,
  messageType,
  nullableLsn,
  optArray,
  optBinary,
  optBoolean,
  optEnum,
  optInteger,
  optLsn,
  optString,
  reqArray,
  reqBinary,
  reqBoolean,
  reqEnum,
  reqInteger,
  reqLsn,
  reqString,
  requestId,
  unknownType,
  withOptional,
} from './wire-fields.js';

/** Longest error code. Codes are short snake_case identifiers. */
const MAX_CODE_BYTES = 64;

// ---------------------------------------------------------------------------------------------
// Leaves (the rest are in wire-fields.ts)

function optTable(map: WireMap, where: string): string | undefined {
  return optString(map, 'table', where, MAX_TABLE_NAME_BYTES, 1);
}

// ---------------------------------------------------------------------------------------------
// Transactions

const COMPARE_KINDS = ['exists', 'value', 'revision'] as const;
const OPERATION_KINDS = ['put', 'delete', 'deleteRange'] as const;

function normalizeCompare(value: unknown, where: string): WireCompare {
  const map = expectMap(value, where);
  const kind = reqEnum(map, 'kind', where, COMPARE_KINDS);
  const table = optTable(map, where);
  const key = reqBinary(map, 'key', where, MAX_KEY_BYTES);
  switch (kind) {
    case 'exists':
      return withOptional({ kind, key, exists: reqBoolean(map, 'exists', where) }, { table });
    case 'value':
      return withOptional(
        { kind, key, op: reqEnum(map, 'op', where, ['eq', 'ne'] as const), value: reqBinary(map, 'value', where, MAX_VALUE_BYTES) },
        { table },
      );
    case 'revision':
      return withOptional(
        { kind, key, op: reqEnum(map, 'op', where, ['eq', 'ne', 'lt', 'gt'] as const), revision: reqLsn(map, 'revision', where) },
        { table },
      );
  }
}

function normalizeOperation(value: unknown, where: string): WireOperation {
  const map = expectMap(value, where);
  const kind = reqEnum(map, 'kind', where, OPERATION_KINDS);
  const table = optTable(map, where);
  switch (kind) {
    case 'put': {
      // The write path's one operation: built directly, without withOptional's second object.
      const key = reqBinary(map, 'key', where, MAX_KEY_BYTES);
      const value = reqBinary(map, 'value', where, MAX_VALUE_BYTES);
      return table === undefined ? { kind, key, value } : { kind, key, value, table };
    }
    case 'delete':
      return withOptional({ kind, key: reqBinary(map, 'key', where, MAX_KEY_BYTES) }, { table });
    case 'deleteRange':
      return withOptional(
        { kind, start: reqBinary(map, 'start', where, MAX_KEY_BYTES), end: reqBinary(map, 'end', where, MAX_KEY_BYTES) },
        { table, limit: optInteger(map, 'limit', where, 0, Number.MAX_SAFE_INTEGER) },
      );
  }
}

function optList<T>(map: WireMap, name: string, where: string, item: (value: unknown, where: string) => T): T[] | undefined {
  const items = optArray(map, name, where, MAX_TXN_OPERATIONS);
  if (items === undefined) return undefined;
  const out: T[] = new Array<T>(items.length);
  for (let i = 0; i < items.length; i++) out[i] = item(items[i], `${where}.${name}[${i}]`);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Client messages

function optTimelineId(map: WireMap, where: string): number | undefined {
  return optInteger(map, 'minLsnTimeline', where, 1, 0xffffffff);
}

function optTimeout(map: WireMap, where: string): number | undefined {
  return optInteger(map, 'timeoutMs', where, 0, MAX_REQUEST_TIMEOUT_MS);
}

function normalizeRequest(map: WireMap, type: RequestType): ClientRequest {
  const where = type;
  const id = requestId(map, where);
  switch (type) {
    case 'get':
      return withOptional(
        { type, id, key: reqBinary(map, 'key', where, MAX_KEY_BYTES) },
        { table: optTable(map, where), minLsn: optLsn(map, 'minLsn', where), minLsnTimeline: optTimelineId(map, where), timeoutMs: optTimeout(map, where) },
      );
    case 'range':
      return withOptional(
        { type, id },
        {
          table: optTable(map, where),
          start: optBinary(map, 'start', where, MAX_KEY_BYTES),
          end: optBinary(map, 'end', where, MAX_KEY_BYTES),
          prefix: optBinary(map, 'prefix', where, MAX_KEY_BYTES),
          limit: optInteger(map, 'limit', where, 0, Number.MAX_SAFE_INTEGER),
          minLsn: optLsn(map, 'minLsn', where),
          minLsnTimeline: optTimelineId(map, where),
          timeoutMs: optTimeout(map, where),
        },
      );
    case 'txn':
      return withOptional(
        { type, id },
        {
          compares: optList(map, 'compares', where, normalizeCompare),
          onSuccess: optList(map, 'onSuccess', where, normalizeOperation),
          onFailure: optList(map, 'onFailure', where, normalizeOperation),
          syncCommit: optEnum(map, 'syncCommit', where, SYNC_COMMIT_LEVELS),
          timeoutMs: optTimeout(map, where),
        },
      );
    case 'createTable':
      return { type, id, name: reqString(map, 'name', where, MAX_TABLE_NAME_BYTES, 1) };
    case 'setSetting':
      return { type, id, name: reqString(map, 'name', where, MAX_NAME_BYTES, 1), value: reqString(map, 'value', where, MAX_TEXT_BYTES) };
    case 'showSetting':
      return { type, id, name: reqString(map, 'name', where, MAX_NAME_BYTES, 1) };
    case 'promote':
      return withOptional({ type, id }, { wait: optBoolean(map, 'wait', where), timeoutMs: optTimeout(map, where) });
    case 'waitLsn':
      return withOptional(
        { type, id, lsn: reqLsn(map, 'lsn', where) },
        { mode: optEnum(map, 'mode', where, WAIT_LSN_MODES), timeoutMs: optTimeout(map, where), noThrow: optBoolean(map, 'noThrow', where) },
      );
    case 'lease':
      return {
        type,
        id,
        holder: reqString(map, 'holder', where, MAX_NAME_BYTES, 1),
        timeline: reqInteger(map, 'timeline', where, 1, 0xffffffff),
        durationMs: reqInteger(map, 'durationMs', where, 0, MAX_LEASE_DURATION_MS),
        issuedAtUs: reqInteger(map, 'issuedAtUs', where, 0, Number.MAX_SAFE_INTEGER),
        grantor: reqString(map, 'grantor', where, MAX_NAME_BYTES, 1),
      };
    case 'listTables':
    case 'status':
    case 'checkpoint':
    case 'ping':
      return { type, id };
  }
}

/** Validates a message a client sends; returns a fresh copy with only known fields. */
export function normalizeClientMessage(value: unknown): ClientMessage {
  const map = expectMap(value, 'message');
  const type = messageType(map);
  switch (type) {
    case 'startup':
      return withOptional(
        { type, protocolVersion: reqInteger(map, 'protocolVersion', type, 0, 0xffff) },
        {
          user: optString(map, 'user', type, MAX_NAME_BYTES, 1),
          password: optString(map, 'password', type, MAX_TEXT_BYTES),
          applicationName: optString(map, 'applicationName', type, MAX_NAME_BYTES),
        },
      );
    case 'password':
      return { type, password: reqString(map, 'password', type, MAX_TEXT_BYTES) };
    case 'saslInitialResponse':
      return {
        type,
        mechanism: reqString(map, 'mechanism', type, MAX_NAME_BYTES, 1),
        data: reqString(map, 'data', type, MAX_SCRAM_MESSAGE_BYTES),
      };
    case 'saslResponse':
      return { type, data: reqString(map, 'data', type, MAX_SCRAM_MESSAGE_BYTES) };
    default:
      if ((REQUEST_TYPES as readonly string[]).includes(type)) return normalizeRequest(map, type as RequestType);
      return unknownType(type, 'a client message type');
  }
}

// ---------------------------------------------------------------------------------------------
// Server messages

function normalizeEntry(value: unknown, where: string): WireEntry {
  const map = expectMap(value, where);
  return {
    key: reqBinary(map, 'key', where, MAX_KEY_BYTES),
    value: reqBinary(map, 'value', where, MAX_VALUE_BYTES),
    revision: reqLsn(map, 'revision', where),
  };
}

/**
 * Copies plain data (nil, booleans, finite numbers, strings, binary, arrays, maps) to a bounded
 * depth. An undefined map value is dropped and an undefined array item becomes nil, as JSON does.
 */
function copyPlain(value: unknown, where: string, depth: number): unknown {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) fail(where, 'must be a finite number');
    return value;
  }
  if (value instanceof Uint8Array) return checkBinary(value, where, Number.MAX_SAFE_INTEGER);
  if (depth >= MAX_STATUS_DEPTH) fail(where, `nests deeper than ${MAX_STATUS_DEPTH} levels`);
  if (Array.isArray(value)) {
    const out: unknown[] = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      out[i] = item === undefined ? null : copyPlain(item, `${where}[${i}]`, depth + 1);
    }
    return out;
  }
  if (isMap(value)) {
    const out: WireMap = {};
    for (const name of Object.keys(value)) {
      const item = value[name];
      if (item === undefined || name === '__proto__') continue;
      out[name] = copyPlain(item, `${where}.${name.slice(0, MAX_NAME_BYTES)}`, depth + 1);
    }
    return out;
  }
  return fail(where, `must be plain data (got ${describe(value)})`);
}

function normalizeStatus(value: unknown, where: string): WireNodeStatus {
  const map = expectMap(value, where);
  const rest = copyPlain(map, where, 0) as WireMap;
  return {
    ...rest,
    role: reqEnum(map, 'role', where, ['primary', 'standby'] as const),
    systemId: reqString(map, 'systemId', where, MAX_NAME_BYTES),
    timeline: reqInteger(map, 'timeline', where, 0, 0xffff_ffff),
    insertLsn: reqLsn(map, 'insertLsn', where),
    flushLsn: reqLsn(map, 'flushLsn', where),
    receiveLsn: nullableLsn(map, 'receiveLsn', where),
    replayLsn: nullableLsn(map, 'replayLsn', where),
    lastCheckpointLsn: reqLsn(map, 'lastCheckpointLsn', where),
  };
}

function normalizeResult(map: WireMap): AnyResultMessage {
  const where = 'result';
  const id = requestId(map, where);
  const request = reqEnum(map, 'request', where, REQUEST_TYPES);
  // Each case spells out type and id: spreading a base object and adding fields after it takes
  // V8 (Node 20) about a microsecond per added field, the dearest step of a commit's reply.
  const type = 'result' as const;
  switch (request) {
    case 'get': {
      const entry = field(map, 'entry');
      return { type, id, request, entry: entry === undefined ? null : normalizeEntry(entry, `${where}.entry`) };
    }
    case 'range': {
      const items = reqArray(map, 'entries', where, Number.MAX_SAFE_INTEGER);
      const entries: WireEntry[] = new Array<WireEntry>(items.length);
      for (let i = 0; i < items.length; i++) entries[i] = normalizeEntry(items[i], `${where}.entries[${i}]`);
      return { type, id, request, entries, more: reqBoolean(map, 'more', where) };
    }
    case 'txn': {
      const items = reqArray(map, 'counts', where, 2 * MAX_TXN_OPERATIONS);
      const counts: number[] = new Array<number>(items.length);
      for (let i = 0; i < items.length; i++) {
        const count = items[i];
        counts[i] = isIntegerIn(count, 0, Number.MAX_SAFE_INTEGER) ? count : checkInteger(count, `${where}.counts[${i}]`, 0, Number.MAX_SAFE_INTEGER);
      }
      return {
        type,
        id,
        request,
        succeeded: reqBoolean(map, 'succeeded', where),
        lsn: reqLsn(map, 'lsn', where),
        timeline: reqInteger(map, 'timeline', where, 0, 0xffff_ffff),
        member: reqString(map, 'member', where, MAX_NAME_BYTES),
        counts,
      };
    }
    case 'createTable':
      return { type, id, request, created: reqBoolean(map, 'created', where), lsn: reqLsn(map, 'lsn', where) };
    case 'listTables': {
      const items = reqArray(map, 'tables', where, Number.MAX_SAFE_INTEGER);
      const tables: string[] = new Array<string>(items.length);
      for (let i = 0; i < items.length; i++) tables[i] = checkString(items[i], `${where}.tables[${i}]`, 1, MAX_TABLE_NAME_BYTES);
      return { type, id, request, tables };
    }
    case 'status': {
      const status = field(map, 'status');
      if (status === undefined) fail(`${where}.status`, 'is missing');
      return { type, id, request, status: normalizeStatus(status, `${where}.status`) };
    }
    case 'checkpoint':
      return { type, id, request, lsn: reqLsn(map, 'lsn', where), redoLsn: reqLsn(map, 'redoLsn', where) };
    case 'promote':
      return { type, id, request, promoted: reqBoolean(map, 'promoted', where), timeline: reqInteger(map, 'timeline', where, 1, 0xffffffff) };
    case 'setSetting':
      return { type, id, request, restartRequired: reqBoolean(map, 'restartRequired', where) };
    case 'showSetting':
      return { type, id, request, value: reqString(map, 'value', where, MAX_TEXT_BYTES) };
    case 'ping':
      return { type, id, request };
    case 'waitLsn':
      return { type, id, request, status: reqEnum(map, 'status', where, WAIT_LSN_STATUSES), lsn: reqLsn(map, 'lsn', where) };
    case 'lease':
      return { type, id, request, holder: reqString(map, 'holder', where, MAX_NAME_BYTES, 1), expiresInMs: reqInteger(map, 'expiresInMs', where, -MAX_LEASE_DURATION_MS, MAX_LEASE_DURATION_MS) };
  }
}

function normalizeError(map: WireMap): ErrorMessage {
  const where = 'error';
  return withOptional(
    {
      type: 'error' as const,
      code: reqString(map, 'code', where, MAX_CODE_BYTES, 1),
      message: reqString(map, 'message', where, MAX_TEXT_BYTES),
      severity: reqEnum(map, 'severity', where, ['ERROR', 'FATAL', 'PANIC'] as const),
    },
    {
      id: optInteger(map, 'id', where, 0, Number.MAX_SAFE_INTEGER),
      detail: optString(map, 'detail', where, MAX_TEXT_BYTES),
      hint: optString(map, 'hint', where, MAX_TEXT_BYTES),
      lsn: optLsn(map, 'lsn', where),
    },
  );
}

/** Validates a message a server sends; returns a fresh copy with only known fields. */
export function normalizeServerMessage(value: unknown): ServerMessage {
  const map = expectMap(value, 'message');
  const type = messageType(map);
  switch (type) {
    case 'authRequest':
      return { type, method: reqEnum(map, 'method', type, AUTH_METHODS) };
    case 'saslContinue':
    case 'saslFinal':
      return { type, data: reqString(map, 'data', type, MAX_SCRAM_MESSAGE_BYTES) };
    case 'authOk':
      return {
        type,
        serverVersion: reqString(map, 'serverVersion', type, MAX_NAME_BYTES, 1),
        member: reqString(map, 'member', type, MAX_NAME_BYTES),
        role: reqEnum(map, 'role', type, ['primary', 'standby'] as const),
      };
    case 'error':
      return normalizeError(map);
    case 'result':
      return normalizeResult(map);
    default:
      return unknownType(type, 'a server message type');
  }
}

const SERVER_TYPES: ReadonlySet<string> = new Set(['authRequest', 'saslContinue', 'saslFinal', 'authOk', 'error', 'result']);

/** Whether a message type is one the server sends (otherwise it is the client's). */
export function isServerMessageType(type: string): boolean {
  return SERVER_TYPES.has(type);
}
