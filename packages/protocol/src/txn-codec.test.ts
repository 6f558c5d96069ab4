import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { MAX_KEY_BYTES, MAX_TABLE_NAME_BYTES, MAX_VALUE_BYTES } from '@walship/engine';
import { decodeClientMessage, decodeServerMessage, encodeMessage } from './codec.js';
import { MAX_NAME_BYTES, MAX_REQUEST_TIMEOUT_MS } from './constants.js';
import { decodeTxnRequest, decodeTxnResult, encodeTxnRequest, encodeTxnResult } from './txn-codec.js';
import { normalizeClientMessage, normalizeServerMessage } from './validate.js';

// The generic path as codec.ts runs it for every other message: validate, then msgpackr.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, structuredClone: false });
const genericEncodeRequest = (message: unknown): Buffer => packr.pack(normalizeClientMessage(message));
const genericEncodeResult = (message: unknown): Buffer => packr.pack(normalizeServerMessage(message));
const genericDecodeRequest = (frame: Buffer): unknown => normalizeClientMessage(packr.unpack(frame));
const genericDecodeResult = (frame: Buffer): unknown => normalizeServerMessage(packr.unpack(frame));

const b = (text: string): Buffer => Buffer.from(text);
const put = (key: Buffer, value: Buffer, table?: string) => (table === undefined ? { kind: 'put', key, value } : { kind: 'put', key, value, table });

/** Requests the fast path writes: every length class of integer, key, value, table and list. */
const REQUESTS = [
  { type: 'txn', id: 0, onSuccess: [put(b('bench:000123'), Buffer.alloc(100, 1))] },
  { type: 'txn', id: 127, onSuccess: [] },
  { type: 'txn', id: 128, onSuccess: [put(b(''), Buffer.alloc(0))], syncCommit: 'on' },
  { type: 'txn', id: 255, onSuccess: [put(b('k'), Buffer.alloc(255, 2), 't')], timeoutMs: 0 },
  { type: 'txn', id: 256, onSuccess: [put(Buffer.alloc(MAX_KEY_BYTES, 3), Buffer.alloc(256, 4), 'x'.repeat(MAX_TABLE_NAME_BYTES))], syncCommit: 'remote_apply', timeoutMs: 29_750 },
  { type: 'txn', id: 65_535, onSuccess: [put(b('a'), Buffer.alloc(65_535))], syncCommit: 'off' },
  { type: 'txn', id: 65_536, onSuccess: [put(b('a'), Buffer.alloc(65_536, 5))], timeoutMs: MAX_REQUEST_TIMEOUT_MS },
  { type: 'txn', id: 0xffff_ffff, onSuccess: Array.from({ length: 16 }, (_, i) => put(b(`k${i}`), b(`v${i}`), i % 2 === 0 ? 'users' : undefined)), syncCommit: 'remote_write' },
  { type: 'txn', id: 9, onSuccess: Array.from({ length: 300 }, (_, i) => put(b(`key${i}`), b('v'))), syncCommit: 'local' },
];

/** Results the fast path writes. */
const RESULTS = [
  { type: 'result', id: 0, request: 'txn', succeeded: true, lsn: '0/56622420', timeline: 1, member: 'n1', counts: [1] },
  { type: 'result', id: 300, request: 'txn', succeeded: false, lsn: '0/0', timeline: 0, member: '', counts: [] },
  { type: 'result', id: 70_000, request: 'txn', succeeded: true, lsn: '1FFFFF/FFFFFFFF', timeline: 0xffff_ffff, member: 'm'.repeat(MAX_NAME_BYTES), counts: [0, 127, 128, 65_536, 0xffff_ffff] },
  { type: 'result', id: 5, request: 'txn', succeeded: true, lsn: '1F/0', timeline: 300, member: 'a-member-name-longer-than-32-chars', counts: Array.from({ length: 20 }, (_, i) => i) },
];

describe('txn-codec: the same bytes as the generic path', () => {
  it.each(REQUESTS.map((m) => [m.id, m] as const))('request %s', (_id, message) => {
    expect(encodeTxnRequest(message)).toEqual(genericEncodeRequest(message));
  });

  it.each(RESULTS.map((m) => [m.id, m] as const))('result %s', (_id, message) => {
    expect(encodeTxnResult(message)).toEqual(genericEncodeResult(message));
  });

  it('encodeMessage gives those bytes for a request and a result', () => {
    expect(encodeMessage(REQUESTS[0] as never)).toEqual(genericEncodeRequest(REQUESTS[0]));
    expect(encodeMessage(RESULTS[0] as never)).toEqual(genericEncodeResult(RESULTS[0]));
  });
});

describe('txn-codec: the same message as the generic path', () => {
  it.each(REQUESTS.map((m) => [m.id, m] as const))('request %s', (_id, message) => {
    const frame = genericEncodeRequest(message);
    const decoded = decodeTxnRequest(frame);
    expect(decoded).not.toBeNull();
    expect(decoded).toStrictEqual(genericDecodeRequest(frame));
    expect(decodeClientMessage(frame)).toStrictEqual(genericDecodeRequest(frame));
  });

  it.each(RESULTS.map((m) => [m.id, m] as const))('result %s', (_id, message) => {
    const frame = genericEncodeResult(message);
    const decoded = decodeTxnResult(frame);
    expect(decoded).not.toBeNull();
    expect(decoded).toStrictEqual(genericDecodeResult(frame));
    expect(decodeServerMessage(frame)).toStrictEqual(genericDecodeResult(frame));
  });

  it('decodes from a plain Uint8Array, keys and values as Buffers', () => {
    const frame = genericEncodeRequest(REQUESTS[0]);
    const decoded = decodeTxnRequest(new Uint8Array(frame));
    const op = decoded!.onSuccess![0] as { key: unknown; value: unknown };
    expect(Buffer.isBuffer(op.key) && Buffer.isBuffer(op.value)).toBe(true);
    expect(decoded).toStrictEqual(genericDecodeRequest(frame));
  });
});

describe('txn-codec: anything else is left to the generic path', () => {
  const declinedRequests: Array<[string, unknown]> = [
    ['a compare', { type: 'txn', id: 1, compares: [{ kind: 'exists', key: b('a'), exists: true }], onSuccess: [put(b('a'), b('1'))] }],
    ['an onFailure list', { type: 'txn', id: 1, onSuccess: [put(b('a'), b('1'))], onFailure: [] }],
    ['a delete', { type: 'txn', id: 1, onSuccess: [{ kind: 'delete', key: b('a') }] }],
    ['no onSuccess', { type: 'txn', id: 1 }],
    ['an id past 32 bits', { type: 'txn', id: 2 ** 32, onSuccess: [put(b('a'), b('1'))] }],
    ['a negative id', { type: 'txn', id: -1, onSuccess: [put(b('a'), b('1'))] }],
    ['a key too long', { type: 'txn', id: 1, onSuccess: [put(Buffer.alloc(MAX_KEY_BYTES + 1), b('1'))] }],
    ['a value too long', { type: 'txn', id: 1, onSuccess: [put(b('a'), Buffer.alloc(MAX_VALUE_BYTES + 1))] }],
    ['a key as a Uint8Array', { type: 'txn', id: 1, onSuccess: [put(new Uint8Array(2) as Buffer, b('1'))] }],
    ['an empty table name', { type: 'txn', id: 1, onSuccess: [put(b('a'), b('1'), '')] }],
    ['a table name that is not ASCII', { type: 'txn', id: 1, onSuccess: [put(b('a'), b('1'), 'tàble')] }],
    ['an unknown syncCommit', { type: 'txn', id: 1, onSuccess: [put(b('a'), b('1'))], syncCommit: 'sometimes' }],
    ['a timeout past the maximum', { type: 'txn', id: 1, onSuccess: [put(b('a'), b('1'))], timeoutMs: MAX_REQUEST_TIMEOUT_MS + 1 }],
    ['another type', { type: 'get', id: 1, key: b('a') }],
  ];

  it.each(declinedRequests)('a request with %s', (_what, message) => {
    expect(encodeTxnRequest(message)).toBeNull();
  });

  const declinedResults: Array<[string, unknown]> = [
    ['another request type', { type: 'result', id: 1, request: 'get', entry: null }],
    ['an LSN the validator rewrites', { type: 'result', id: 1, request: 'txn', succeeded: true, lsn: '0/0000000A', timeline: 1, member: 'n1', counts: [1] }],
    ['a member that is not ASCII', { type: 'result', id: 1, request: 'txn', succeeded: true, lsn: '0/A', timeline: 1, member: 'nœud', counts: [1] }],
    ['a member too long', { type: 'result', id: 1, request: 'txn', succeeded: true, lsn: '0/A', timeline: 1, member: 'm'.repeat(MAX_NAME_BYTES + 1), counts: [1] }],
    ['a count past 32 bits', { type: 'result', id: 1, request: 'txn', succeeded: true, lsn: '0/A', timeline: 1, member: 'n1', counts: [2 ** 32] }],
    ['a missing field', { type: 'result', id: 1, request: 'txn', succeeded: true, lsn: '0/A', member: 'n1', counts: [1] }],
  ];

  it.each(declinedResults)('a result with %s', (_what, message) => {
    expect(encodeTxnResult(message)).toBeNull();
  });

  it('declines frames in another layout, and the generic path decodes them the same way', () => {
    // Another order of keys, an extra field and a fixmap: what another client's encoder may send.
    const reordered = packr.pack({ id: 4, type: 'txn', onSuccess: [{ key: b('k'), kind: 'put', value: b('v') }] });
    const extra = packr.pack({ type: 'txn', id: 4, onSuccess: [{ kind: 'put', key: b('k'), value: b('v') }], note: 'x' });
    const fixmap = Buffer.concat([Buffer.of(0x83), genericEncodeRequest({ type: 'txn', id: 4, onSuccess: [put(b('k'), b('v'))] }).subarray(3)]);
    for (const frame of [reordered, extra]) {
      expect(decodeTxnRequest(frame)).toBeNull();
      expect(decodeClientMessage(frame)).toStrictEqual({ type: 'txn', id: 4, onSuccess: [{ kind: 'put', key: b('k'), value: b('v') }] });
    }
    // A fixmap header with the same fields in the same order is read by both.
    expect(decodeTxnRequest(fixmap)).toStrictEqual(genericDecodeRequest(fixmap));
  });

  it('declines every truncation of a frame and every frame with a byte after it', () => {
    const decode = (frame: Buffer) => decodeTxnRequest(frame) ?? decodeTxnResult(frame);
    for (const frame of [genericEncodeRequest(REQUESTS[4]), genericEncodeResult(RESULTS[2])]) {
      expect(decode(frame)).not.toBeNull();
      for (let length = 0; length < frame.length; length++) expect(decode(frame.subarray(0, length))).toBeNull();
      expect(decode(Buffer.concat([frame, Buffer.of(0xc0)]))).toBeNull();
    }
  });

  it('declines a frame whose every single byte was changed, or decodes it as the generic path does', () => {
    const frames = [genericEncodeRequest(REQUESTS[3]), genericEncodeResult(RESULTS[0])];
    for (const frame of frames) {
      for (let at = 0; at < frame.length; at++) {
        for (const value of [0x00, 0x7f, 0x80, 0xa1, 0xc0, 0xc3, 0xcc, 0xd9, 0xde, 0xff]) {
          const changed = Buffer.from(frame);
          changed[at] = value;
          const fast = decodeTxnRequest(changed) ?? decodeTxnResult(changed);
          if (fast === null) continue;
          const generic = fast.type === 'txn' ? genericDecodeRequest(changed) : genericDecodeResult(changed);
          expect(fast).toStrictEqual(generic);
        }
      }
    }
  });

  it('leaves invalid messages to the generic path, which refuses them with its own error', () => {
    expect(() => encodeMessage({ type: 'txn', id: 1, onSuccess: [put(b('a'), Buffer.alloc(MAX_VALUE_BYTES + 1))] } as never)).toThrow(/value/);
    const badLsn = packr.pack({ type: 'result', id: 1, request: 'txn', succeeded: true, lsn: 'nonsense', timeline: 1, member: 'n1', counts: [1] });
    expect(decodeTxnResult(badLsn)).toBeNull();
    expect(() => decodeServerMessage(badLsn)).toThrow(/LSN/);
  });
});
