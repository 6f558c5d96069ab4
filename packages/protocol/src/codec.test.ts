import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { asLsn, MAX_KEY_BYTES, MAX_VALUE_BYTES, WalshipError } from '@walship/engine';
import type { TxnRequest } from '@walship/engine';
import { decodeClientMessage, decodeServerMessage, encodeMessage } from './codec.js';
import { MAX_FRAME_BYTES, MAX_TXN_OPERATIONS, PROTOCOL_VERSION } from './constants.js';
import { txnRequestFromWire, txnRequestToWire, entryFromWire, entryToWire } from './convert.js';
import type { ClientMessage, ServerMessage } from './messages.js';
import { ProtocolError } from './protocol-error.js';

const rawPackr = new Packr({ useRecords: false, mapsAsObjects: true });
const b = (text: string): Buffer => Buffer.from(text);

const CLIENT_SAMPLES: ClientMessage[] = [
  { type: 'startup', protocolVersion: PROTOCOL_VERSION },
  { type: 'startup', protocolVersion: 1, user: 'alice', password: 'sécret', applicationName: 'app' },
  { type: 'password', password: 'hunter2' },
  { type: 'get', id: 1, key: b('k') },
  { type: 'get', id: 2, table: 'users', key: b(''), minLsn: '0/16B3748', timeoutMs: 500 },
  { type: 'get', id: 16, key: b('k'), minLsn: '1/0', minLsnTimeline: 3 },
  { type: 'range', id: 3 },
  { type: 'range', id: 4, table: 't', start: b('a'), end: b('z'), limit: 10, minLsn: '1/0', timeoutMs: 0 },
  { type: 'range', id: 5, prefix: b('user/') },
  { type: 'txn', id: 6 },
  {
    type: 'txn',
    id: 7,
    compares: [
      { kind: 'exists', key: b('a'), exists: false },
      { kind: 'value', table: 't', key: b('b'), op: 'ne', value: b('v') },
      { kind: 'revision', key: b('c'), op: 'lt', revision: 'A/FF' },
    ],
    onSuccess: [
      { kind: 'put', key: b('a'), value: b('1') },
      { kind: 'delete', table: 't', key: b('b') },
      { kind: 'deleteRange', start: b('c'), end: b('d'), limit: 5 },
    ],
    onFailure: [{ kind: 'put', key: b('x'), value: Buffer.alloc(0) }],
    syncCommit: 'remote_apply',
  },
  { type: 'createTable', id: 8, name: 'users' },
  { type: 'listTables', id: 9 },
  { type: 'status', id: 10 },
  { type: 'checkpoint', id: 11 },
  { type: 'promote', id: 14 },
  { type: 'promote', id: 15, wait: false, timeoutMs: 5000 },
  { type: 'setSetting', id: 12, name: 'synchronous_commit', value: 'local' },
  { type: 'showSetting', id: 13, name: 'port' },
  { type: 'ping', id: Number.MAX_SAFE_INTEGER },
  { type: 'txn', id: 16, onSuccess: [{ kind: 'put', key: b('k'), value: b('v') }], syncCommit: 'on', timeoutMs: 29_750 },
  { type: 'waitLsn', id: 17, lsn: '0/3000060' },
  { type: 'waitLsn', id: 18, lsn: '1/0', mode: 'standby_flush', timeoutMs: 5000, noThrow: true },
  // CLOCK_MONOTONIC microseconds are past 2^32 after an hour of uptime: they must survive msgpack.
  { type: 'lease', id: 19, holder: 'n1', timeline: 3, durationMs: 1000, issuedAtUs: 987_654_321_012, grantor: 'monitor' },
];

const SERVER_SAMPLES: ServerMessage[] = [
  { type: 'authRequest', method: 'password' },
  { type: 'authOk', serverVersion: '0.1.0', member: 'node1', role: 'primary' },
  { type: 'error', code: 'cannot_connect_now', message: 'the database system is starting up', severity: 'FATAL' },
  { type: 'error', id: 4, code: 'timeout', message: 'm', detail: 'd', hint: 'h', severity: 'ERROR' },
  { type: 'result', id: 1, request: 'get', entry: null },
  { type: 'result', id: 1, request: 'get', entry: { key: b('k'), value: b('v'), revision: '0/10' } },
  { type: 'result', id: 2, request: 'range', entries: [{ key: b('a'), value: b('1'), revision: '0/20' }], more: true },
  { type: 'result', id: 3, request: 'txn', succeeded: true, lsn: '0/30', timeline: 1, member: 'n1', counts: [1, 0, 7] },
  { type: 'result', id: 4, request: 'createTable', created: false, lsn: '0/0' },
  { type: 'result', id: 5, request: 'listTables', tables: ['default', 'users'] },
  {
    type: 'result',
    id: 6,
    request: 'status',
    status: {
      role: 'standby',
      systemId: '7301234567890123456',
      timeline: 2,
      insertLsn: '0/100',
      flushLsn: '0/100',
      receiveLsn: '0/100',
      replayLsn: null,
      lastCheckpointLsn: '0/80',
      replication: [{ applicationName: 's1', replayLagMs: 3.5, slotName: null }],
      walReceiver: { status: 'streaming', upstream: '127.0.0.1:5433' },
    },
  },
  { type: 'result', id: 7, request: 'checkpoint', lsn: '0/200', redoLsn: '0/1F0' },
  { type: 'result', id: 11, request: 'promote', promoted: true, timeline: 3 },
  { type: 'result', id: 8, request: 'setSetting', restartRequired: true },
  { type: 'result', id: 9, request: 'showSetting', value: '5433' },
  { type: 'result', id: 10, request: 'ping' },
  {
    type: 'error', id: 12, code: 'indeterminate', message: 'canceling wait for synchronous replication due to user request',
    detail: 'The transaction has already committed locally, but might not have been replicated to the standby.', severity: 'ERROR', lsn: '0/3000060',
  },
  { type: 'result', id: 13, request: 'waitLsn', status: 'success', lsn: '0/3000060' },
  { type: 'result', id: 14, request: 'waitLsn', status: 'not in recovery', lsn: '0/0' },
  { type: 'result', id: 15, request: 'lease', holder: 'n1', expiresInMs: 998 },
];

function expectProtocolError(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ProtocolError);
    expect((error as ProtocolError).code).toBe('protocol_violation');
    return error as ProtocolError;
  }
  throw new Error('expected a ProtocolError');
}

describe('round trips', () => {
  it.each(CLIENT_SAMPLES.map((m) => [m.type, m] as const))('client %s', (_type, message) => {
    const decoded = decodeClientMessage(encodeMessage(message));
    expect(decoded).toEqual(message);
  });

  it.each(SERVER_SAMPLES.map((m) => [m.type, m] as const))('server %s', (_type, message) => {
    const decoded = decodeServerMessage(encodeMessage(message));
    expect(decoded).toEqual(message);
  });

  it('hands out Buffers for binary fields', () => {
    const decoded = decodeClientMessage(encodeMessage({ type: 'get', id: 1, key: b('k') }));
    expect(decoded.type === 'get' && Buffer.isBuffer(decoded.key)).toBe(true);
    // A peer that sends a plain Uint8Array is normalized too.
    const frame = rawPackr.pack({ type: 'get', id: 1, key: new Uint8Array([1, 2, 3]) });
    const again = decodeClientMessage(new Uint8Array(frame));
    expect(again.type === 'get' && Buffer.isBuffer(again.key)).toBe(true);
  });

  it('accepts the largest key and value, and refuses one byte more', () => {
    const key = Buffer.alloc(MAX_KEY_BYTES, 1);
    const value = Buffer.alloc(MAX_VALUE_BYTES, 2);
    const message: ClientMessage = { type: 'txn', id: 1, onSuccess: [{ kind: 'put', key, value }] };
    const decoded = decodeClientMessage(encodeMessage(message));
    // Compare with Buffer.equals: a deep toEqual walks a 16 MiB Buffer key by key.
    const put = decoded.type === 'txn' ? decoded.onSuccess?.[0] : undefined;
    expect(put?.kind === 'put' && put.key.equals(key) && put.value.equals(value)).toBe(true);
    expectProtocolError(() => encodeMessage({ type: 'get', id: 1, key: Buffer.alloc(MAX_KEY_BYTES + 1) }));
    const big = rawPackr.pack({ type: 'txn', id: 1, onSuccess: [{ kind: 'put', key, value: Buffer.alloc(MAX_VALUE_BYTES + 1) }] });
    expect(expectProtocolError(() => decodeClientMessage(big)).message).toContain('onSuccess[0].value');
  });

  it('normalizes LSN text and drops unknown fields and nils', () => {
    const frame = rawPackr.pack({ type: 'get', id: 1, key: b('k'), minLsn: '0/016b3748', extra: 'x', table: null });
    expect(decodeClientMessage(frame)).toEqual({ type: 'get', id: 1, key: b('k'), minLsn: '0/16B3748' });
  });

  it('takes an LSN already in its printed form as it is, and prints any other spelling again', () => {
    const decodeLsn = (lsn: unknown): unknown => (decodeClientMessage(rawPackr.pack({ type: 'waitLsn', id: 1, lsn })) as { lsn: unknown }).lsn;
    for (const printed of ['0/0', '0/16B3748', 'FFFFF/FFFFFFFF', '1FFFFF/FFFFFFFF', '1/0']) expect(decodeLsn(printed)).toBe(printed);
    const respelled: Array<[string, string]> = [['0/016b3748', '0/16B3748'], ['00/10', '0/10'], ['0/00000000', '0/0'], [' 0/1 ', '0/1'], ['1fffff/ffffffff', '1FFFFF/FFFFFFFF']];
    for (const [spelling, printed] of respelled) expect(decodeLsn(spelling)).toBe(printed);
    // 0x200000/0 is 2^53 bytes: past a safe integer, refused whichever way it is spelled.
    for (const bad of ['200000/0', '0200000/0', '0/100000000', '0/', '/0', '0/G', '-1/0']) {
      expect(() => decodeLsn(bad), bad).toThrow(/waitLsn\.lsn must be an LSN 'X\/X'/);
    }
  });

  it('names the field of a wrong value after the fast path declined it', () => {
    const result = { type: 'result', id: 3, request: 'txn', succeeded: true, lsn: '0/30', timeline: 1, member: 'n1', counts: [1] };
    expect(() => decodeServerMessage(rawPackr.pack({ ...result, counts: [1, 2.5] }))).toThrow('invalid message: result.counts[1] must be an integer (got float)');
    expect(() => decodeServerMessage(rawPackr.pack({ ...result, member: 7 }))).toThrow('invalid message: result.member must be a string (got integer)');
    expect(() => decodeServerMessage(rawPackr.pack({ ...result, timeline: -1 }))).toThrow('invalid message: result.timeline must be between 0 and 4294967295 (got -1)');
    expect(() => decodeServerMessage(rawPackr.pack({ ...result, succeeded: 1 }))).toThrow('invalid message: result.succeeded must be a boolean (got integer)');
    expect(() => decodeServerMessage(rawPackr.pack({ ...result, id: undefined }))).toThrow('invalid message: result.id is missing');
    const put = { type: 'txn', id: 1, onSuccess: [{ kind: 'put', key: b('k'), value: 'v' }] };
    expect(() => decodeClientMessage(rawPackr.pack(put))).toThrow('invalid message: txn.onSuccess[0].value must be binary (got string)');
    expect(decodeClientMessage(rawPackr.pack({ ...put, onSuccess: [{ kind: 'put', key: b('k'), value: b('v'), table: 't' }] }))).toEqual({
      type: 'txn',
      id: 1,
      onSuccess: [{ kind: 'put', key: b('k'), value: b('v'), table: 't' }],
    });
  });

  it('converts engine transactions and entries to the wire and back', () => {
    const request: TxnRequest = {
      compares: [{ kind: 'revision', key: b('a'), op: 'eq', revision: asLsn(2 ** 40 + 5) }],
      onSuccess: [{ kind: 'put', key: b('a'), value: b('b') }],
      syncCommit: 'local',
    };
    const wire = txnRequestToWire(request);
    expect(wire.compares?.[0]).toMatchObject({ revision: '100/5' });
    const decoded = decodeClientMessage(encodeMessage({ type: 'txn', id: 1, ...wire }));
    expect(decoded.type).toBe('txn');
    if (decoded.type === 'txn') expect(txnRequestFromWire(decoded)).toEqual(request);
    const entry = { key: b('k'), value: b('v'), revision: asLsn(0x16b3748) };
    expect(entryToWire(entry).revision).toBe('0/16B3748');
    expect(entryFromWire(entryToWire(entry))).toEqual(entry);
  });
});

describe('malformed frames', () => {
  const cases: [string, unknown][] = [
    ['not a map', [1, 2, 3]],
    ['a string', 'get'],
    ['no type', { id: 1 }],
    ['unknown type', { type: 'drop', id: 1 }],
    ['server type from a client', { type: 'authOk', serverVersion: '1', member: 'm', role: 'primary' }],
    ['missing id', { type: 'ping' }],
    ['negative id', { type: 'ping', id: -1 }],
    ['fractional id', { type: 'ping', id: 1.5 }],
    ['string key', { type: 'get', id: 1, key: 'k' }],
    ['missing key', { type: 'get', id: 1 }],
    ['bad minLsn', { type: 'get', id: 1, key: b('k'), minLsn: '12345' }],
    ['numeric minLsn', { type: 'get', id: 1, key: b('k'), minLsn: 5 }],
    ['empty table', { type: 'get', id: 1, key: b('k'), table: '' }],
    ['long table', { type: 'get', id: 1, key: b('k'), table: 'x'.repeat(64) }],
    ['bad syncCommit', { type: 'txn', id: 1, syncCommit: 'sometimes' }],
    ['ops not an array', { type: 'txn', id: 1, onSuccess: { kind: 'put' } }],
    ['unknown op kind', { type: 'txn', id: 1, onSuccess: [{ kind: 'upsert', key: b('k'), value: b('v') }] }],
    ['compare without op', { type: 'txn', id: 1, compares: [{ kind: 'value', key: b('k'), value: b('v') }] }],
    ['too many ops', { type: 'txn', id: 1, onSuccess: new Array(MAX_TXN_OPERATIONS + 1).fill({ kind: 'delete', key: b('k') }) }],
    ['bad protocolVersion', { type: 'startup', protocolVersion: '1' }],
    ['empty user', { type: 'startup', protocolVersion: 1, user: '' }],
    ['setting without value', { type: 'setSetting', id: 1, name: 'port' }],
    ['negative limit', { type: 'range', id: 1, limit: -1 }],
    ['huge timeout', { type: 'range', id: 1, timeoutMs: 1e12 }],
    ['negative txn timeout', { type: 'txn', id: 1, timeoutMs: -1 }],
    ['waitLsn without lsn', { type: 'waitLsn', id: 1 }],
    ['waitLsn with a bad mode', { type: 'waitLsn', id: 1, lsn: '0/1', mode: 'replay' }],
    ['lease without issuedAtUs', { type: 'lease', id: 1, holder: 'n1', timeline: 1, durationMs: 1000, grantor: 'monitor' }],
    ['lease of an hour', { type: 'lease', id: 1, holder: 'n1', timeline: 1, durationMs: 3_600_000, issuedAtUs: 1, grantor: 'monitor' }],
    ['lease on timeline 0', { type: 'lease', id: 1, holder: 'n1', timeline: 0, durationMs: 1000, issuedAtUs: 1, grantor: 'monitor' }],
  ];

  it.each(cases)('client: %s', (_name, value) => {
    expectProtocolError(() => decodeClientMessage(rawPackr.pack(value)));
  });

  const serverCases: [string, unknown][] = [
    ['result without request', { type: 'result', id: 1, entry: null }],
    ['entry with numeric revision', { type: 'result', id: 1, request: 'get', entry: { key: b('k'), value: b('v'), revision: 5 } }],
    ['bad severity', { type: 'error', code: 'x', message: 'm', severity: 'WARNING' }],
    ['status missing role', { type: 'result', id: 1, request: 'status', status: { systemId: '1' } }],
    [
      'status with a Date',
      {
        type: 'result',
        id: 1,
        request: 'status',
        status: { role: 'primary', systemId: '1', timeline: 1, insertLsn: '0/1', flushLsn: '0/1', lastCheckpointLsn: '0/1', at: new Date(0) },
      },
    ],
    ['negative count', { type: 'result', id: 1, request: 'txn', succeeded: true, lsn: '0/1', timeline: 1, member: 'm', counts: [-1] }],
    ['error with a numeric lsn', { type: 'error', id: 1, code: 'indeterminate', message: 'm', severity: 'ERROR', lsn: 5 }],
    ['waitLsn with an unknown status', { type: 'result', id: 1, request: 'waitLsn', status: 'maybe', lsn: '0/1' }],
  ];

  it.each(serverCases)('server: %s', (_name, value) => {
    expectProtocolError(() => decodeServerMessage(rawPackr.pack(value)));
  });

  it('refuses non-binary, empty, trailing and truncated frames', () => {
    expectProtocolError(() => decodeClientMessage('{"type":"ping","id":1}'));
    expectProtocolError(() => decodeClientMessage(Buffer.alloc(0)));
    const frame = encodeMessage({ type: 'ping', id: 1 });
    expectProtocolError(() => decodeClientMessage(Buffer.concat([frame, Buffer.from([0xc0])])));
    expectProtocolError(() => decodeClientMessage(frame.subarray(0, frame.length - 1)));
    expect(decodeClientMessage([frame.subarray(0, 3), frame.subarray(3)])).toEqual({ type: 'ping', id: 1 });
  });

  it('refuses a frame above MAX_FRAME_BYTES without decoding it', () => {
    const error = expectProtocolError(() => decodeClientMessage(Buffer.alloc(MAX_FRAME_BYTES + 1)));
    expect(error.message).toContain('maximum frame size');
  });

  it('refuses deeply nested input without overflowing the caller', () => {
    const depth = 200_000;
    const frame = Buffer.alloc(depth + 1, 0x91); // fixarray(1) nested, ending in fixarray(1) of 0
    frame[depth] = 0x00;
    expectProtocolError(() => decodeClientMessage(frame));
  });

  it('encoding refuses invalid messages with a ProtocolError', () => {
    expectProtocolError(() => encodeMessage({ type: 'get', id: 1, key: 'k' } as unknown as ClientMessage));
    expectProtocolError(() => encodeMessage({ type: 'nope' } as unknown as ClientMessage));
    expectProtocolError(() => encodeMessage(null as unknown as ClientMessage));
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzzing: whatever the bytes, a decoder returns a valid message or throws a ProtocolError.

function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function checkDecoders(frame: Uint8Array): { valid: number; rejected: number } {
  let valid = 0;
  let rejected = 0;
  for (const decode of [decodeClientMessage, decodeServerMessage] as const) {
    let message: ClientMessage | ServerMessage;
    try {
      message = decode(frame);
    } catch (error) {
      if (!(error instanceof ProtocolError)) {
        throw new Error(`decoder threw ${String(error)} for frame ${Buffer.from(frame).toString('hex').slice(0, 200)}`);
      }
      rejected++;
      continue;
    }
    // A decoded message is valid: it encodes again and decodes to itself.
    const again = encodeMessage(message);
    expect(decode(again)).toEqual(message);
    valid++;
  }
  return { valid, rejected };
}

function randomValue(random: () => number, depth: number): unknown {
  const pick = Math.floor(random() * (depth > 3 ? 7 : 10));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return random() < 0.5;
    case 2:
      return Math.floor(random() * 2 ** 40) * (random() < 0.2 ? -1 : 1);
    case 3:
      return random() * 1000;
    case 4:
      return ['k', '', '0/10', 'get', 'put', 'primary', 'x'.repeat(70)][Math.floor(random() * 7)];
    case 5:
      return Buffer.alloc(Math.floor(random() * 40), Math.floor(random() * 256));
    case 6:
      return random() < 0.5 ? undefined : -0;
    case 7:
      return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth + 1));
    default: {
      const names = ['type', 'id', 'key', 'value', 'kind', 'table', 'minLsn', 'entry', 'revision', 'request', 'op', 'onSuccess'];
      const map: Record<string, unknown> = {};
      for (let i = Math.floor(random() * 5); i > 0; i--) map[names[Math.floor(random() * names.length)]!] = randomValue(random, depth + 1);
      return map;
    }
  }
}

describe('fuzzing (seeded)', () => {
  const seeds = [...CLIENT_SAMPLES, ...SERVER_SAMPLES].map((message) => encodeMessage(message));

  it('random bytes', () => {
    const random = mulberry32(0x5eed_0001);
    let rejected = 0;
    for (let i = 0; i < 4000; i++) {
      const frame = Buffer.alloc(1 + Math.floor(random() * 64));
      for (let j = 0; j < frame.length; j++) frame[j] = Math.floor(random() * 256);
      if (random() < 0.5) frame[0] = 0x80 + Math.floor(random() * 16); // start like a fixmap
      rejected += checkDecoders(frame).rejected;
    }
    expect(rejected).toBeGreaterThan(0);
  });

  it('mutated valid frames', () => {
    const random = mulberry32(0x5eed_0002);
    let valid = 0;
    for (let i = 0; i < 6000; i++) {
      const frame = Buffer.from(seeds[Math.floor(random() * seeds.length)]!);
      let mutated: Buffer = frame;
      const mutations = 1 + Math.floor(random() * 3);
      for (let m = 0; m < mutations; m++) {
        const at = Math.floor(random() * mutated.length);
        switch (Math.floor(random() * 4)) {
          case 0:
            mutated[at] = Math.floor(random() * 256);
            break;
          case 1:
            mutated[at] = mutated[at]! ^ (1 << Math.floor(random() * 8));
            break;
          case 2:
            mutated = mutated.subarray(0, Math.max(1, at));
            break;
          default:
            mutated = Buffer.concat([mutated.subarray(0, at), Buffer.from([Math.floor(random() * 256)]), mutated.subarray(at)]);
        }
      }
      valid += checkDecoders(mutated).valid;
    }
    expect(valid).toBeGreaterThan(0);
  });

  it('random structures', () => {
    const random = mulberry32(0x5eed_0003);
    const types = ['startup', 'password', 'get', 'range', 'txn', 'createTable', 'status', 'result', 'error', 'authOk', 'x'];
    for (let i = 0; i < 3000; i++) {
      const value = randomValue(random, 0);
      if (value !== null && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value) && random() < 0.7) {
        (value as Record<string, unknown>).type = types[Math.floor(random() * types.length)];
      }
      checkDecoders(rawPackr.pack(value));
    }
  });

  it('the decoder is still sound after hostile input', () => {
    for (const message of CLIENT_SAMPLES) expect(decodeClientMessage(encodeMessage(message))).toEqual(message);
  });

  it('errors are WalshipErrors with a code', () => {
    const error = expectProtocolError(() => decodeClientMessage(Buffer.from([0x92, 0x01])));
    expect(error).toBeInstanceOf(WalshipError);
    expect(error.describe()).toMatch(/^ERROR: {2}invalid frame/);
  });
});
