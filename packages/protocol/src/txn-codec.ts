/**
 * A write's two frames by hand: a `txn` request whose operations are all puts, and the `result`
 * of a `txn`. Nearly every frame of a write load is one of them, and on the commit path msgpackr's
 * generic encoder and decoder, with the validator's second pass over the decoded object, ran with
 * cold caches between messages: in the profiles of a 1-client run about 18 us per commit in the
 * load generator (a sixth of its CPU) and 16 us on the primary's main thread. Warm, the hand-made
 * paths are two to three times quicker; on that run, cold, the load generator went from 91 to
 * 73 us per commit and the primary from 284 to 271 (medians of 8 pairs of runs).
 *
 * Each function handles exactly the layout msgpackr gives these messages once validated (a map16
 * whose fixstr keys come in the validator's order, integers and lengths in their shortest form)
 * and returns null on anything else: another key order, another field, a compare, a value out of
 * the protocol's bounds, a string that is not plain ASCII, an integer past 32 bits. The caller
 * (codec.ts) then takes the generic path, which accepts or refuses the frame and words the error,
 * so the generic path alone decides what is invalid. Where both handle a message they give the
 * same bytes and the same decoded message (txn-codec.test.ts compares them).
 */
import { MAX_KEY_BYTES, MAX_TABLE_NAME_BYTES, MAX_VALUE_BYTES } from '@walship/engine/constants';
import { SYNC_COMMIT_LEVELS, type SyncCommitLevel } from '@walship/engine/types';
import { MAX_NAME_BYTES, MAX_REQUEST_TIMEOUT_MS } from './constants.js';
import type { RequestMessage, ResultMessage, WireLsn, WireOperation } from './messages.js';

/** Operations in one fast-path request: what an array16 holds (MAX_TXN_OPERATIONS is one more). */
const OPERATIONS_MAX = 0xffff;
/** The longest printed LSN, `FFFFFFFF/FFFFFFFF`. */
const LSN_CHARS_MAX = 17;
/** What checkLsn accepts unchanged; anything else it rewrites or refuses (the generic path's call). */
const CANONICAL_LSN = /^(?:0|[1-9A-F][0-9A-F]{0,4}|1[0-9A-F]{5})\/(?:0|[1-9A-F][0-9A-F]{0,7})$/;

const FIXMAP = 0x80;
const MAP16 = 0xde;
const ARRAY16 = 0xdc;
const FIXARRAY = 0x90;
const FIXSTR = 0xa0;
const STR8 = 0xd9;
const BIN8 = 0xc4;
const BIN16 = 0xc5;
const BIN32 = 0xc6;
const UINT8 = 0xcc;
const UINT16 = 0xcd;
const UINT32 = 0xce;
const FALSE = 0xc2;
const TRUE = 0xc3;

/** A string as msgpackr writes it when it is shorter than 32 bytes: fixstr header and ASCII. */
function fixstr(text: string): Buffer {
  const bytes = Buffer.from(text, 'latin1');
  return Buffer.concat([Buffer.of(FIXSTR | bytes.length), bytes]);
}

const KEY = {
  type: fixstr('type'), id: fixstr('id'), onSuccess: fixstr('onSuccess'), syncCommit: fixstr('syncCommit'),
  timeoutMs: fixstr('timeoutMs'), kind: fixstr('kind'), key: fixstr('key'), value: fixstr('value'), table: fixstr('table'),
  request: fixstr('request'), succeeded: fixstr('succeeded'), lsn: fixstr('lsn'), timeline: fixstr('timeline'),
  member: fixstr('member'), counts: fixstr('counts'),
};
const VALUE = { txn: fixstr('txn'), result: fixstr('result'), put: fixstr('put') };
const SYNC_COMMIT_VALUES = SYNC_COMMIT_LEVELS.map((level) => ({ level, bytes: fixstr(level) }));

// ---------------------------------------------------------------------------------------------
// Encoding

function isUint32(value: unknown): value is number {
  return typeof value === 'number' && value >>> 0 === value;
}

/** Plain ASCII of at most `maxBytes` (and at least `minBytes`): written as its UTF-16 units. */
function isAsciiString(value: unknown, minBytes: number, maxBytes: number): value is string {
  if (typeof value !== 'string' || value.length < minBytes || value.length > maxBytes) return false;
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0x7f) return false;
  return true;
}

function uintBytes(value: number): number {
  return value < 0x80 ? 1 : value < 0x100 ? 2 : value < 0x10000 ? 3 : 5;
}

function strBytes(text: string): number {
  return (text.length < 0x20 ? 1 : 2) + text.length;
}

function binBytes(length: number): number {
  return (length < 0x100 ? 2 : length < 0x10000 ? 3 : 5) + length;
}

function arrayHeaderBytes(length: number): number {
  return length < 0x10 ? 1 : 3;
}

/** Writes into a buffer sized beforehand; `at` is the next byte. */
class FrameWriter {
  at = 0;
  constructor(readonly out: Buffer) {}

  /** A key or an enum value: a few bytes, cheaper copied here than through Buffer.copy's native call. */
  raw(bytes: Buffer): void {
    const out = this.out;
    for (let i = 0; i < bytes.length; i++) out[this.at + i] = bytes[i]!;
    this.at += bytes.length;
  }

  /** A type byte and `value` in `width` big-endian bytes (1, 2 or 4): msgpack's sized forms. */
  private tagged(tag: number, width: 1 | 2 | 4, value: number): void {
    this.out[this.at] = tag;
    this.out.writeUIntBE(value, this.at + 1, width);
    this.at += 1 + width;
  }

  map16(count: number): void {
    this.tagged(MAP16, 2, count);
  }

  arrayHeader(length: number): void {
    if (length < 0x10) this.out[this.at++] = FIXARRAY | length;
    else this.tagged(ARRAY16, 2, length);
  }

  uint(value: number): void {
    if (value < 0x80) this.out[this.at++] = value;
    else if (value < 0x100) this.tagged(UINT8, 1, value);
    else if (value < 0x10000) this.tagged(UINT16, 2, value);
    else this.tagged(UINT32, 4, value);
  }

  str(text: string): void {
    const out = this.out;
    if (text.length < 0x20) {
      out[this.at++] = FIXSTR | text.length;
    } else {
      out[this.at++] = STR8;
      out[this.at++] = text.length;
    }
    this.at += out.write(text, this.at, 'latin1');
  }

  bin(bytes: Buffer): void {
    const length = bytes.length;
    if (length < 0x100) this.tagged(BIN8, 1, length);
    else if (length < 0x10000) this.tagged(BIN16, 2, length);
    else this.tagged(BIN32, 4, length);
    this.out.set(bytes, this.at);
    this.at += length;
  }
}

interface FastPut {
  key: Buffer;
  value: Buffer;
  table: string | undefined;
}

/** Whether the fast path writes this operation: a put within the protocol's bounds. */
function isFastPut(value: unknown): value is FastPut {
  if (value === null || typeof value !== 'object') return false;
  const op = value as { kind?: unknown; key?: unknown; value?: unknown; table?: unknown };
  if (op.kind !== 'put' || !Buffer.isBuffer(op.key) || !Buffer.isBuffer(op.value)) return false;
  if (op.key.length > MAX_KEY_BYTES || op.value.length > MAX_VALUE_BYTES) return false;
  return op.table === undefined || isAsciiString(op.table, 1, MAX_TABLE_NAME_BYTES);
}

/**
 * A `txn` request of puts only, as msgpackr writes its validated form; null for any other
 * message (codec.ts then validates and encodes it the generic way).
 */
export function encodeTxnRequest(message: unknown): Buffer | null {
  if (message === null || typeof message !== 'object') return null;
  const m = message as { type?: unknown; id?: unknown; compares?: unknown; onSuccess?: unknown; onFailure?: unknown; syncCommit?: unknown; timeoutMs?: unknown };
  if (m.type !== 'txn' || !isUint32(m.id) || m.compares !== undefined || m.onFailure !== undefined) return null;
  const operations = m.onSuccess;
  if (!Array.isArray(operations) || operations.length > OPERATIONS_MAX) return null;
  const syncCommit = m.syncCommit;
  if (syncCommit !== undefined && !(SYNC_COMMIT_LEVELS as readonly unknown[]).includes(syncCommit)) return null;
  const timeoutMs = m.timeoutMs;
  if (timeoutMs !== undefined && !(isUint32(timeoutMs) && timeoutMs <= MAX_REQUEST_TIMEOUT_MS)) return null;

  let size = 3 + KEY.type.length + VALUE.txn.length + KEY.id.length + uintBytes(m.id) + KEY.onSuccess.length + arrayHeaderBytes(operations.length);
  for (const put of operations as unknown[]) {
    if (!isFastPut(put)) return null;
    size += 3 + KEY.kind.length + VALUE.put.length + KEY.key.length + binBytes(put.key.length) + KEY.value.length + binBytes(put.value.length);
    if (put.table !== undefined) size += KEY.table.length + strBytes(put.table);
  }
  if (syncCommit !== undefined) size += KEY.syncCommit.length + strBytes(syncCommit as string);
  if (timeoutMs !== undefined) size += KEY.timeoutMs.length + uintBytes(timeoutMs);

  const w = new FrameWriter(Buffer.allocUnsafe(size));
  w.map16(3 + (syncCommit === undefined ? 0 : 1) + (timeoutMs === undefined ? 0 : 1));
  w.raw(KEY.type);
  w.raw(VALUE.txn);
  w.raw(KEY.id);
  w.uint(m.id);
  w.raw(KEY.onSuccess);
  w.arrayHeader(operations.length);
  for (const put of operations as FastPut[]) {
    w.map16(put.table === undefined ? 3 : 4);
    w.raw(KEY.kind);
    w.raw(VALUE.put);
    w.raw(KEY.key);
    w.bin(put.key);
    w.raw(KEY.value);
    w.bin(put.value);
    if (put.table !== undefined) {
      w.raw(KEY.table);
      w.str(put.table);
    }
  }
  if (syncCommit !== undefined) {
    w.raw(KEY.syncCommit);
    w.str(syncCommit as string);
  }
  if (timeoutMs !== undefined) {
    w.raw(KEY.timeoutMs);
    w.uint(timeoutMs);
  }
  return w.out;
}

/** A `txn` result as msgpackr writes its validated form; null for any other message. */
export function encodeTxnResult(message: unknown): Buffer | null {
  if (message === null || typeof message !== 'object') return null;
  const m = message as { type?: unknown; id?: unknown; request?: unknown; succeeded?: unknown; lsn?: unknown; timeline?: unknown; member?: unknown; counts?: unknown };
  if (m.type !== 'result' || m.request !== 'txn' || !isUint32(m.id) || typeof m.succeeded !== 'boolean') return null;
  if (typeof m.lsn !== 'string' || m.lsn.length > LSN_CHARS_MAX || !CANONICAL_LSN.test(m.lsn)) return null;
  if (!isUint32(m.timeline) || !isAsciiString(m.member, 0, MAX_NAME_BYTES)) return null;
  const counts = m.counts;
  if (!Array.isArray(counts) || counts.length > OPERATIONS_MAX) return null;
  let size = 3 + KEY.type.length + VALUE.result.length + KEY.id.length + uintBytes(m.id) + KEY.request.length + VALUE.txn.length +
    KEY.succeeded.length + 1 + KEY.lsn.length + strBytes(m.lsn) + KEY.timeline.length + uintBytes(m.timeline) +
    KEY.member.length + strBytes(m.member) + KEY.counts.length + arrayHeaderBytes(counts.length);
  for (const count of counts) {
    if (!isUint32(count)) return null;
    size += uintBytes(count);
  }
  const w = new FrameWriter(Buffer.allocUnsafe(size));
  w.map16(8);
  w.raw(KEY.type);
  w.raw(VALUE.result);
  w.raw(KEY.id);
  w.uint(m.id);
  w.raw(KEY.request);
  w.raw(VALUE.txn);
  w.raw(KEY.succeeded);
  w.out[w.at++] = m.succeeded ? TRUE : FALSE;
  w.raw(KEY.lsn);
  w.str(m.lsn);
  w.raw(KEY.timeline);
  w.uint(m.timeline);
  w.raw(KEY.member);
  w.str(m.member);
  w.raw(KEY.counts);
  w.arrayHeader(counts.length);
  for (const count of counts as number[]) w.uint(count);
  return w.out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * Reads one frame front to back. Every read checks what it needs against the end and reports a
 * miss as `ok = false` (the caller returns null), so a truncated or odd frame never throws here.
 */
class FrameReader {
  at = 0;
  ok = true;
  constructor(readonly bytes: Buffer) {}

  private miss(): number {
    this.ok = false;
    return -1;
  }

  /** The next bytes are `expected` (a key or an enum value): consumes them. */
  is(expected: Buffer): boolean {
    const { bytes } = this;
    if (this.at + expected.length > bytes.length) return false;
    for (let i = 0; i < expected.length; i++) if (bytes[this.at + i] !== expected[i]) return false;
    this.at += expected.length;
    return true;
  }

  /**
   * A number in one of msgpack's sized forms: a type byte (`tag8`, `tag16` or `tag32`; -1 for a
   * width the caller does not take: -1) and the value in 1, 2 or 4 big-endian bytes.
   */
  private sized(tag8: number, tag16: number, tag32: number): number {
    const { bytes } = this;
    const b = bytes[this.at];
    const width = b === tag8 ? 1 : b === tag16 ? 2 : b === tag32 ? 4 : 0;
    if (width === 0 || this.at + 1 + width > bytes.length) return this.miss();
    const value = bytes.readUIntBE(this.at + 1, width);
    this.at += 1 + width;
    return value;
  }

  /** A header whose count sits in its low four bits (`fixTag`: fixmap, fixarray) or follows as 16 bits (`tag16`). */
  private header(fixTag: number, tag16: number): number {
    const b = this.bytes[this.at];
    if (b === undefined) return this.miss();
    if ((b & 0xf0) !== fixTag) return this.sized(-1, tag16, -1);
    this.at++;
    return b & 0x0f;
  }

  /** A map header (fixmap or map16): its count. */
  mapHeader(): number {
    return this.header(FIXMAP, MAP16);
  }

  /** An array header (fixarray or array16): its length. */
  arrayHeader(): number {
    return this.header(FIXARRAY, ARRAY16);
  }

  /** An unsigned integer of at most 32 bits, in any of its encodings. */
  uint(): number {
    const b = this.bytes[this.at];
    if (b === undefined) return this.miss();
    if (b >= 0x80) return this.sized(UINT8, UINT16, UINT32);
    this.at++;
    return b;
  }

  boolean(): boolean {
    const b = this.bytes[this.at];
    if (b !== TRUE && b !== FALSE) {
      this.ok = false;
      return false;
    }
    this.at++;
    return b === TRUE;
  }

  /** A string (fixstr or str8) of plain ASCII, at most `maxBytes`. */
  ascii(maxBytes: number): string {
    const { bytes } = this;
    if (this.at >= bytes.length) {
      this.ok = false;
      return '';
    }
    const b = bytes[this.at]!;
    let length: number;
    let start: number;
    if ((b & 0xe0) === FIXSTR) {
      length = b & 0x1f;
      start = this.at + 1;
    } else if (b === STR8 && this.at + 2 <= bytes.length) {
      length = bytes[this.at + 1]!;
      start = this.at + 2;
    } else {
      this.ok = false;
      return '';
    }
    const end = start + length;
    if (length > maxBytes || end > bytes.length) {
      this.ok = false;
      return '';
    }
    for (let i = start; i < end; i++) {
      if (bytes[i]! > 0x7f) {
        this.ok = false;
        return '';
      }
    }
    this.at = end;
    return bytes.toString('latin1', start, end);
  }

  /** Binary (bin8, bin16 or bin32) of at most `maxBytes`: a view of the frame, as msgpackr gives. */
  bin(maxBytes: number): Buffer | null {
    const length = this.sized(BIN8, BIN16, BIN32);
    if (!this.ok || length > maxBytes || this.at + length > this.bytes.length) return null;
    const start = this.at;
    this.at += length;
    return this.bytes.subarray(start, this.at);
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** One put of a fast-path request, or null. */
function readPut(r: FrameReader): WireOperation | null {
  const fields = r.mapHeader();
  if (!r.ok || (fields !== 3 && fields !== 4)) return null;
  if (!r.is(KEY.kind) || !r.is(VALUE.put) || !r.is(KEY.key)) return null;
  const key = r.bin(MAX_KEY_BYTES);
  if (key === null || !r.is(KEY.value)) return null;
  const value = r.bin(MAX_VALUE_BYTES);
  if (value === null) return null;
  if (fields === 3) return { kind: 'put', key, value };
  if (!r.is(KEY.table)) return null;
  const table = r.ascii(MAX_TABLE_NAME_BYTES);
  if (!r.ok || table.length === 0) return null;
  return { kind: 'put', key, value, table };
}

/**
 * A `txn` request of puts only, in the layout encodeTxnRequest writes (another client's encoder
 * may differ, and then the generic path decodes it); null when the frame is anything else.
 */
export function decodeTxnRequest(frame: Uint8Array): RequestMessage<'txn'> | null {
  const r = new FrameReader(asBuffer(frame));
  const fields = r.mapHeader();
  if (!r.ok || fields < 3 || fields > 5) return null;
  if (!r.is(KEY.type) || !r.is(VALUE.txn) || !r.is(KEY.id)) return null;
  const id = r.uint();
  if (!r.ok || !r.is(KEY.onSuccess)) return null;
  const count = r.arrayHeader();
  if (!r.ok) return null;
  const onSuccess = new Array<WireOperation>(count);
  for (let i = 0; i < count; i++) {
    const put = readPut(r);
    if (put === null) return null;
    onSuccess[i] = put;
  }
  const message: RequestMessage<'txn'> = { type: 'txn', id, onSuccess };
  let rest = fields - 3;
  if (rest > 0 && r.is(KEY.syncCommit)) {
    const level = readSyncCommit(r);
    if (level === null) return null;
    message.syncCommit = level;
    rest--;
  }
  if (rest > 0) {
    if (!r.is(KEY.timeoutMs)) return null;
    const timeoutMs = r.uint();
    if (!r.ok || timeoutMs > MAX_REQUEST_TIMEOUT_MS) return null;
    message.timeoutMs = timeoutMs;
    rest--;
  }
  return rest === 0 && r.at === r.bytes.length ? message : null;
}

function readSyncCommit(r: FrameReader): SyncCommitLevel | null {
  for (const { level, bytes } of SYNC_COMMIT_VALUES) if (r.is(bytes)) return level;
  return null;
}

/** The `result` of a `txn`, in the layout encodeTxnResult writes; null when the frame is anything else. */
export function decodeTxnResult(frame: Uint8Array): ResultMessage<'txn'> | null {
  const r = new FrameReader(asBuffer(frame));
  if (r.mapHeader() !== 8) return null;
  if (!r.is(KEY.type) || !r.is(VALUE.result) || !r.is(KEY.id)) return null;
  const id = r.uint();
  if (!r.ok || !r.is(KEY.request) || !r.is(VALUE.txn) || !r.is(KEY.succeeded)) return null;
  const succeeded = r.boolean();
  if (!r.ok || !r.is(KEY.lsn)) return null;
  const lsn = r.ascii(LSN_CHARS_MAX);
  if (!r.ok || !CANONICAL_LSN.test(lsn) || !r.is(KEY.timeline)) return null;
  const timeline = r.uint();
  if (!r.ok || !r.is(KEY.member)) return null;
  const member = r.ascii(MAX_NAME_BYTES);
  if (!r.ok || !r.is(KEY.counts)) return null;
  const length = r.arrayHeader();
  if (!r.ok) return null;
  const counts = new Array<number>(length);
  for (let i = 0; i < length; i++) counts[i] = r.uint();
  if (!r.ok || r.at !== r.bytes.length) return null;
  return { type: 'result', id, request: 'txn', succeeded, lsn: lsn as WireLsn, timeline, member, counts };
}
