/**
 * Structural validation of the msgpack messages of replication connections. As in validate.ts,
 * each `normalize*` function takes any value and returns a fresh message holding only the known
 * fields, each of the right type and within its limit, or throws a ProtocolError naming the
 * field; the encoder and the decoder both go through them.
 *
 * The handshake (`startup`, `password`, `authRequest`, the SASL messages, `authOk`) and `error` are the client
 * protocol's and are validated by validate.ts's own functions. The field leaves (same messages,
 * same nil-is-absent rule) are validate.ts's too: both import them from wire-fields.ts.
 *
 * Also here, as values rather than exceptions so that callers outside the codec (settings,
 * the basebackup writer) can reuse them: PostgreSQL's slot-name rule and the backup-path rule.
 */
import {
  BACKUP_MAX_RATE_LOWER_BYTES,
  BACKUP_MAX_RATE_UPPER_BYTES,
  MAX_BACKUP_CHUNK_BYTES,
  MAX_BACKUP_LABEL_BYTES,
  MAX_BACKUP_PATH_BYTES,
  MAX_BACKUP_PATH_COMPONENT_BYTES,
  MAX_DATA_FILE_READ_BYTES,
  MAX_FLUSH_WAIT_MS,
  MAX_LISTED_DATA_FILES,
  MAX_LISTED_REPLICATION_SLOTS,
  MAX_PAGE_CHECKSUMS_PER_REQUEST,
  MAX_WIRE_RELNODE,
  MAX_NAME_BYTES,
  MAX_TEXT_BYTES,
  MAX_TIMELINE_HISTORY_BYTES,
} from './constants.js';
import { WAL_KEY_ID_BYTES } from '@walship/engine/crypto/wal-key-id';
import { ProtocolError } from './protocol-error.js';
import type {
  AnyReplicationResult,
  BackupStreamMessage,
  ReplicationRequest,
  ReplicationRequestType,
  StandbyStatusUpdateMessage,
  WalReceiverMessage,
  WalSenderMessage,
  WireReplicationSlot,
  WireDataFile,
  KeepaliveMessage,
  XLogDataMessage,
} from './replication-messages.js';
import { REPLICATION_REQUEST_TYPES, REPLICATION_RESULT_TYPES, SLOT_WAL_STATUSES } from './replication-messages.js';
import { normalizeClientMessage, normalizeServerMessage } from './validate.js';
import type { WireMap } from './wire-fields.js';
import {
  checkBinary,
  checkEnum,
  describe,
  expectMap,
  fail,
  field,
  isNil,
  messageType,
  nullableLsn,
  optBoolean,
  optInteger,
  optLsn,
  reqBinary,
  reqBoolean,
  reqInteger,
  reqLsn,
  reqString,
  requestId,
  required,
  unknownType,
  withOptional,
} from './wire-fields.js';

/** The msgpack messages a standby sends (everything but the binary StandbyStatusUpdate). */
export type WalReceiverControlMessage = Exclude<WalReceiverMessage, StandbyStatusUpdateMessage>;

/** The msgpack messages a walsender sends (everything but the binary XLogData and Keepalive). */
export type WalSenderControlMessage = Exclude<WalSenderMessage, XLogDataMessage | KeepaliveMessage>;

/** A timeline ID is a u32 (PostgreSQL's TimeLineID); 0 is not a timeline. */
const MAX_TIMELINE = 0xffff_ffff;

/** Largest u64, the range of a system identifier. */
const MAX_SYSTEM_ID = 0xffff_ffff_ffff_ffffn;

/** A file's permission bits; setuid, setgid and sticky are never part of a data directory. */
const MAX_FILE_MODE = 0o777;

// ---------------------------------------------------------------------------------------------
// Leaves (the rest are in wire-fields.ts)

/** replication-frames.ts throws its field errors through this too. */

function reqTimeline(map: WireMap, name: string, where: string): number {
  return reqInteger(map, name, where, 1, MAX_TIMELINE);
}

/** Text for a message: at most `max` characters, control characters and quotes escaped. */
function shownText(text: string, max: number): string {
  const cut = text.length > max ? `${text.slice(0, max)}...` : text;
  return JSON.stringify(cut).slice(1, -1);
}

// ---------------------------------------------------------------------------------------------
// Slot names and backup paths

/**
 * Checks a replication slot name as PostgreSQL's ReplicationSlotValidateName does: 1 to 63
 * bytes of lower-case letters, digits and underscores (the slot's directory name under
 * `pg_replslot/`, and safe in any file system). Returns PostgreSQL's message and hint, or null
 * for a valid name.
 */
export function validateReplicationSlotName(name: string): { message: string; hint?: string } | null {
  if (name.length === 0) return { message: `replication slot name "${name}" is too short` };
  if (name.length > MAX_NAME_BYTES) {
    return { message: `replication slot name "${shownText(name, MAX_NAME_BYTES)}" is too long` };
  }
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const valid = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x5f;
    if (!valid) {
      return {
        message: `replication slot name "${shownText(name, MAX_NAME_BYTES)}" contains invalid character`,
        hint: 'Replication slot names may only contain lower case letters, numbers, and the underscore character.',
      };
    }
  }
  return null;
}

function checkSlotName(value: unknown, where: string): string {
  if (typeof value !== 'string') fail(where, `must be a string (got ${describe(value)})`);
  const problem = validateReplicationSlotName(value);
  if (problem !== null) {
    throw new ProtocolError(problem.message, { detail: `In ${where}.`, ...(problem.hint === undefined ? {} : { hint: problem.hint }) });
  }
  return value;
}

/**
 * Checks a path of a base backup, relative to the target directory. Accepted: 1 to
 * MAX_BACKUP_PATH_BYTES bytes, components separated by single '/', each 1 to
 * MAX_BACKUP_PATH_COMPONENT_BYTES characters of the POSIX portable filename set
 * (`A-Z a-z 0-9 . _ -`), none of them `.` or `..`. So an accepted path is never absolute, never
 * climbs out of the target (no `..`, no '\\' that Windows would read as a separator, no drive
 * letter, no NUL), and names the same file on every platform. Returns the problem, or null.
 *
 * This is lexical containment only: the writer must still create files inside a directory it
 * made empty, without following links (a data directory copy holds regular files only).
 */
export function backupPathProblem(path: string): string | null {
  if (path.length === 0) return 'is empty';
  if (path.length > MAX_BACKUP_PATH_BYTES) return `is longer than ${MAX_BACKUP_PATH_BYTES} bytes`;
  if (path.charCodeAt(0) === 0x2f) return 'is absolute';
  let start = 0;
  for (let i = 0; i <= path.length; i++) {
    const c = i === path.length ? 0x2f : path.charCodeAt(i);
    if (c === 0x2f) {
      const length = i - start;
      if (length === 0) return 'has an empty component';
      if (length > MAX_BACKUP_PATH_COMPONENT_BYTES) return `has a component longer than ${MAX_BACKUP_PATH_COMPONENT_BYTES} bytes`;
      if (path.charCodeAt(start) === 0x2e && (length === 1 || (length === 2 && path.charCodeAt(start + 1) === 0x2e))) {
        return `has a "${path.slice(start, i)}" component`;
      }
      start = i + 1;
      continue;
    }
    const portable =
      (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x5f || c === 0x2d;
    if (!portable) return 'contains a character outside A-Z a-z 0-9 . _ - and /';
  }
  return null;
}

function reqBackupPath(map: WireMap, where: string): string {
  const value = required(map, 'path', where);
  if (typeof value !== 'string') fail(`${where}.path`, `must be a string (got ${describe(value)})`);
  const problem = backupPathProblem(value);
  if (problem !== null) {
    throw new ProtocolError(`invalid message: ${where}.path ${problem}`, {
      detail: `The path is "${shownText(value, MAX_NAME_BYTES)}".`,
      hint: 'A backup path is relative to the data directory, with "/" separators and no "." or ".." components.',
    });
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// From the standby

function normalizeRequest(map: WireMap, type: ReplicationRequestType): ReplicationRequest {
  const where = type;
  const id = requestId(map, where);
  switch (type) {
    case 'identifySystem':
    case 'listReplicationSlots':
      return { type, id };
    case 'timelineHistory':
      return { type, id, timeline: reqTimeline(map, 'timeline', where) };
    case 'createReplicationSlot':
      return withOptional(
        { type, id, name: checkSlotName(required(map, 'name', where), `${where}.name`) },
        { reserveWal: optBoolean(map, 'reserveWal', where) },
      );
    case 'dropReplicationSlot':
      return withOptional(
        { type, id, name: checkSlotName(required(map, 'name', where), `${where}.name`) },
        { wait: optBoolean(map, 'wait', where) },
      );
    case 'startReplication': {
      const slot = field(map, 'slot');
      const walKeyId = field(map, 'walKeyId');
      return withOptional(
        { type, id, startLsn: reqLsn(map, 'startLsn', where), timeline: reqTimeline(map, 'timeline', where) },
        {
          slot: slot === undefined ? undefined : checkSlotName(slot, `${where}.slot`),
          // Exactly an identifier's length: a shorter or longer one is a bug, not a key to compare.
          walKeyId: walKeyId === undefined ? undefined : checkBinary(walKeyId, `${where}.walKeyId`, WAL_KEY_ID_BYTES, WAL_KEY_ID_BYTES),
          reportSyncStandby: optBoolean(map, 'reportSyncStandby', where),
        },
      );
    }
    case 'baseBackup':
      return withOptional(
        { type, id, label: reqString(map, 'label', where, MAX_BACKUP_LABEL_BYTES) },
        {
          fast: optBoolean(map, 'fast', where),
          includeWal: optBoolean(map, 'includeWal', where),
          maxRateBytes: optInteger(map, 'maxRateBytes', where, BACKUP_MAX_RATE_LOWER_BYTES, BACKUP_MAX_RATE_UPPER_BYTES),
        },
      );
    case 'flushBuffers':
      return withOptional(
        { type, id },
        { waitForLsn: optLsn(map, 'waitForLsn', where), timeoutMs: optInteger(map, 'timeoutMs', where, 0, MAX_FLUSH_WAIT_MS) },
      );
    case 'listDataFiles':
      return { type, id };
    case 'readDataFile':
      return {
        type,
        id,
        path: reqBackupPath(map, where),
        offset: reqInteger(map, 'offset', where, 0, Number.MAX_SAFE_INTEGER - MAX_DATA_FILE_READ_BYTES),
        length: reqInteger(map, 'length', where, 1, MAX_DATA_FILE_READ_BYTES),
      };
    case 'pageChecksums':
      return {
        type,
        id,
        relNode: reqInteger(map, 'relNode', where, 1, MAX_WIRE_RELNODE),
        startBlock: reqInteger(map, 'startBlock', where, 0, 0xffff_fffe),
        maxBlocks: reqInteger(map, 'maxBlocks', where, 1, MAX_PAGE_CHECKSUMS_PER_REQUEST),
      };
  }
}

/** Validates a msgpack message a standby sends; returns a fresh copy with only known fields. */
export function normalizeWalReceiverMessage(value: unknown): WalReceiverControlMessage {
  const map = expectMap(value, 'message');
  const type = messageType(map);
  switch (type) {
    case 'startup':
    case 'password':
    case 'saslInitialResponse':
    case 'saslResponse':
      return normalizeClientMessage(map) as WalReceiverControlMessage;
    case 'copyDone':
      return { type };
    default:
      if ((REPLICATION_REQUEST_TYPES as readonly string[]).includes(type)) return normalizeRequest(map, type as ReplicationRequestType);
      return unknownType(type, 'a message a standby sends on a replication connection');
  }
}

// ---------------------------------------------------------------------------------------------
// From the walsender

function checkSystemId(value: unknown, where: string): string {
  if (typeof value !== 'string' || !/^(0|[1-9][0-9]{0,19})$/.test(value) || BigInt(value) > MAX_SYSTEM_ID) {
    fail(where, `must be a decimal 64-bit system identifier (got ${typeof value === 'string' ? `"${shownText(value, 24)}"` : describe(value)})`);
  }
  return value;
}

function normalizeSlot(value: unknown, where: string): WireReplicationSlot {
  const map = expectMap(value, where);
  const walStatus = field(map, 'walStatus');
  const slot: WireReplicationSlot = {
    name: checkSlotName(required(map, 'name', where), `${where}.name`),
    restartLsn: nullableLsn(map, 'restartLsn', where),
    walStatus: walStatus === undefined ? null : checkEnum(walStatus, `${where}.walStatus`, SLOT_WAL_STATUSES),
    active: reqBoolean(map, 'active', where),
  };
  if (isNil(map, 'activePid')) slot.activePid = null;
  else withOptional(slot, { activePid: optInteger(map, 'activePid', where, 0, 0x7fff_ffff) });
  return slot;
}

function normalizeResult(map: WireMap): AnyReplicationResult {
  const where = 'result';
  const id = requestId(map, where);
  const request = checkEnum(field(map, 'request'), `${where}.request`, REPLICATION_RESULT_TYPES);
  const base = { type: 'result' as const, id };
  switch (request) {
    case 'identifySystem': {
      if (field(map, 'dbname') !== undefined) fail(`${where}.dbname`, 'must be nil (a physical replication connection has no database)');
      return {
        ...base,
        request,
        systemId: checkSystemId(required(map, 'systemId', where), `${where}.systemId`),
        timeline: reqTimeline(map, 'timeline', where),
        xlogPos: reqLsn(map, 'xlogPos', where),
        dbname: null,
      };
    }
    case 'timelineHistory': {
      const fileName = reqString(map, 'fileName', where, MAX_NAME_BYTES);
      if (!/^[0-9A-F]{8}\.history$/.test(fileName)) fail(`${where}.fileName`, `must be a timeline history file name (got "${shownText(fileName, MAX_NAME_BYTES)}")`);
      return { ...base, request, fileName, content: reqString(map, 'content', where, MAX_TIMELINE_HISTORY_BYTES) };
    }
    case 'createReplicationSlot':
      return {
        ...base,
        request,
        slotName: checkSlotName(required(map, 'slotName', where), `${where}.slotName`),
        consistentPoint: nullableLsn(map, 'consistentPoint', where),
      };
    case 'listReplicationSlots': {
      const items = field(map, 'slots');
      if (!Array.isArray(items)) fail(`${where}.slots`, `must be an array (got ${describe(items)})`);
      if (items.length > MAX_LISTED_REPLICATION_SLOTS) {
        fail(`${where}.slots`, `has ${items.length} items, more than the maximum of ${MAX_LISTED_REPLICATION_SLOTS}`);
      }
      const slots: WireReplicationSlot[] = new Array<WireReplicationSlot>(items.length);
      for (let i = 0; i < items.length; i++) slots[i] = normalizeSlot(items[i], `${where}.slots[${i}]`);
      return { ...base, request, slots };
    }
    case 'dropReplicationSlot':
    case 'startReplication':
      return { ...base, request };
    case 'flushBuffers':
      return {
        ...base,
        request,
        lsn: reqLsn(map, 'lsn', where),
        timeline: reqTimeline(map, 'timeline', where),
        role: checkEnum(field(map, 'role'), `${where}.role`, ['primary', 'standby'] as const),
      };
    case 'listDataFiles': {
      const items = field(map, 'files');
      if (!Array.isArray(items)) fail(`${where}.files`, `must be an array (got ${describe(items)})`);
      if (items.length > MAX_LISTED_DATA_FILES) fail(`${where}.files`, `has ${items.length} items, more than the maximum of ${MAX_LISTED_DATA_FILES}`);
      const files: WireDataFile[] = new Array<WireDataFile>(items.length);
      for (let i = 0; i < items.length; i++) {
        const itemWhere = `${where}.files[${i}]`;
        const item = expectMap(items[i], itemWhere);
        files[i] = { path: reqBackupPath(item, itemWhere), size: reqInteger(item, 'size', itemWhere, 0, Number.MAX_SAFE_INTEGER) };
      }
      return { ...base, request, files };
    }
    case 'readDataFile': {
      const offset = reqInteger(map, 'offset', where, 0, Number.MAX_SAFE_INTEGER - MAX_DATA_FILE_READ_BYTES);
      return {
        ...base,
        request,
        path: reqBackupPath(map, where),
        offset,
        size: reqInteger(map, 'size', where, 0, Number.MAX_SAFE_INTEGER),
        data: reqBinary(map, 'data', where, MAX_DATA_FILE_READ_BYTES),
      };
    }
    case 'pageChecksums': {
      const checksums = reqBinary(map, 'checksums', where, MAX_PAGE_CHECKSUMS_PER_REQUEST * 4);
      if (checksums.length % 4 !== 0) fail(`${where}.checksums`, `is ${checksums.length} bytes, not a whole number of 4-byte checksums`);
      return {
        ...base,
        request,
        relNode: reqInteger(map, 'relNode', where, 1, MAX_WIRE_RELNODE),
        startBlock: reqInteger(map, 'startBlock', where, 0, 0xffff_fffe),
        nblocks: reqInteger(map, 'nblocks', where, 0, 0xffff_ffff),
        checksums,
      };
    }
  }
}

function normalizeBackupMessage(map: WireMap, type: BackupStreamMessage['type']): BackupStreamMessage {
  const where = type;
  const id = requestId(map, where);
  switch (type) {
    case 'backupStart':
      return {
        type,
        id,
        startLsn: reqLsn(map, 'startLsn', where),
        timeline: reqTimeline(map, 'timeline', where),
        totalBytes: reqInteger(map, 'totalBytes', where, 0, Number.MAX_SAFE_INTEGER),
        fileCount: reqInteger(map, 'fileCount', where, 0, Number.MAX_SAFE_INTEGER),
      };
    case 'backupFile':
      return {
        type,
        id,
        path: reqBackupPath(map, where),
        size: reqInteger(map, 'size', where, 0, Number.MAX_SAFE_INTEGER),
        mode: reqInteger(map, 'mode', where, 0, MAX_FILE_MODE),
      };
    case 'backupChunk': {
      const path = reqBackupPath(map, where);
      const offset = reqInteger(map, 'offset', where, 0, Number.MAX_SAFE_INTEGER);
      const data = reqBinary(map, 'data', where, MAX_BACKUP_CHUNK_BYTES, 1);
      if (!Number.isSafeInteger(offset + data.length)) fail(`${where}.offset`, 'plus the chunk length is out of range');
      return { type, id, path, offset, data };
    }
    case 'backupEnd':
      return {
        type,
        id,
        endLsn: reqLsn(map, 'endLsn', where),
        timeline: reqTimeline(map, 'timeline', where),
        backupLabel: reqString(map, 'backupLabel', where, MAX_TEXT_BYTES),
      };
  }
}

/** Validates a msgpack message a walsender sends; returns a fresh copy with only known fields. */
export function normalizeWalSenderMessage(value: unknown): WalSenderControlMessage {
  const map = expectMap(value, 'message');
  const type = messageType(map);
  switch (type) {
    case 'authRequest':
    case 'saslContinue':
    case 'saslFinal':
    case 'authOk':
    case 'error':
      return normalizeServerMessage(map) as WalSenderControlMessage;
    case 'result':
      return normalizeResult(map);
    case 'endOfTimeline':
      return {
        type,
        nextTimeline: reqTimeline(map, 'nextTimeline', type),
        nextTimelineStartLsn: reqLsn(map, 'nextTimelineStartLsn', type),
      };
    case 'copyDone':
      return { type };
    case 'backupStart':
    case 'backupFile':
    case 'backupChunk':
    case 'backupEnd':
      return normalizeBackupMessage(map, type);
    default:
      return unknownType(type, 'a message a walsender sends on a replication connection');
  }
}

const WAL_SENDER_CONTROL_TYPES: ReadonlySet<string> = new Set([
  'authRequest',
  'saslContinue',
  'saslFinal',
  'authOk',
  'error',
  'result',
  'endOfTimeline',
  'backupStart',
  'backupFile',
  'backupChunk',
  'backupEnd',
]);

/** Whether a msgpack message type is one the walsender sends (`copyDone`: either side). */
export function isWalSenderControlType(type: string): boolean {
  return WAL_SENDER_CONTROL_TYPES.has(type);
}
