import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WalshipError, type Lsn } from '@walship/engine';
import {
  REPLSLOT_DIR, ReplicationSlots, decodeSlotState, encodeSlotState, invalidationDetail, keepLogSeg, obsoleteSlots, safeWalSize,
  slotKeepSegment, slotsOnPrimary, walAvailability, type ReplicationSlotsHost, type RetentionSettings,
} from './slots.js';

const MB = 1024 * 1024;
const SEG = MB;
const lsn = (n: number) => n as Lsn;
const NO_CAP: RetentionSettings = { maxWalSizeBytes: 4 * MB, maxSlotWalKeepBytes: -1, walKeepBytes: 0 };

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function dataDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-slots-'));
  dirs.push(dir);
  fs.mkdirSync(path.join(dir, 'pg_wal'));
  return dir;
}

interface TestHost extends ReplicationSlotsHost {
  lines: string[];
  terminated: string[];
  write: number;
  redo: number;
  retention: RetentionSettings;
}

function host(dir: string, overrides: Partial<TestHost> = {}): TestHost {
  const h: TestHost = {
    dataDir: dir, segmentSize: SEG, lines: [], terminated: [], write: 10 * SEG + 100, redo: 10 * SEG + 40, retention: NO_CAP,
    log: (level, message) => h.lines.push(`${level}: ${message}`),
    writeLsn: () => lsn(h.write),
    redoLsn: () => lsn(h.redo),
    settings: () => h.retention,
    terminateWalSender: (name) => h.terminated.push(name),
    ...overrides,
  };
  return h;
}

function expectError(fn: () => unknown): WalshipError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(WalshipError);
    return error as WalshipError;
  }
  throw new Error('expected an error');
}

describe('slot state file', () => {
  it('round-trips a slot, with and without a restart LSN', () => {
    for (const data of [
      { name: 's1', restartLsn: lsn(0x1_2345_6789), invalidated: 'none' as const },
      { name: 'z'.repeat(63), restartLsn: null, invalidated: 'wal_removed' as const },
    ]) {
      const encoded = encodeSlotState(data);
      expect(encoded.length).toBe(96);
      expect(decodeSlotState(encoded, 'pg_replslot/x/state')).toEqual(data);
    }
  });

  it('refuses a damaged file with the reason', () => {
    const good = encodeSlotState({ name: 's1', restartLsn: lsn(0x3000028), invalidated: 'none' });
    const flipped = Buffer.from(good);
    flipped[85] ^= 0x40;
    const checksum = expectError(() => decodeSlotState(flipped, 'pg_replslot/s1/state'));
    expect(checksum.message).toMatch(/^checksum mismatch for replication slot file "pg_replslot\/s1\/state": is \d+, should be \d+$/);
    expect(checksum.severity).toBe('PANIC');
    expect(checksum.hint).toContain('pg_replslot/s1');
    const magic = Buffer.from(good);
    magic.writeUInt32LE(7, 0);
    expect(expectError(() => decodeSlotState(magic, 'f')).message).toBe(`replication slot file "f" has wrong magic number: 7 instead of ${0x1051ca1}`);
    expect(expectError(() => decodeSlotState(good.subarray(0, 40), 'f')).message).toBe('could not read file "f": read 24 of 80');
    expect(expectError(() => decodeSlotState(Buffer.alloc(3), 'f')).message).toBe('could not read file "f": read 3 of 16');
  });
});

describe('ReplicationSlots on disk', () => {
  it('creates, persists, advances, restores and drops slots', () => {
    const dir = dataDir();
    const h = host(dir);
    const slots = ReplicationSlots.startup(h);
    expect(slots.create('s1', true)).toEqual({ slotName: 's1', consistentPoint: '0/A00028' });
    expect(slots.create('lazy', false)).toEqual({ slotName: 'lazy', consistentPoint: null });
    expect(fs.existsSync(path.join(dir, REPLSLOT_DIR, 's1', 'state'))).toBe(true);
    expect(expectError(() => slots.create('s1', true)).message).toBe('replication slot "s1" already exists');
    expect(expectError(() => slots.create('Bad-Name', true)).message).toBe('replication slot name "Bad-Name" contains invalid character');

    const acquired = slots.acquire('s1', 4242);
    expect(expectError(() => slots.acquire('s1', 4343)).message).toBe('replication slot "s1" is active for PID 4242');
    expect(expectError(() => slots.drop('s1')).message).toBe('replication slot "s1" is active for PID 4242');
    acquired.confirmReceived(lsn(11 * SEG + 8));
    acquired.confirmReceived(lsn(10 * SEG)); // never backwards
    expect(slots.get('s1')!.restartLsn).toBe(11 * SEG + 8);
    // Not saved until a checkpoint (CheckPointReplicationSlots): a restart would see the old LSN.
    expect(ReplicationSlots.startup(host(dir)).get('s1')!.restartLsn).toBe(10 * SEG + 40);
    slots.saveAll();
    acquired.release();
    expect(slots.rows().find((r) => r.name === 's1')!.active).toBe(false);

    const again = ReplicationSlots.startup(host(dir));
    expect(again.get('s1')).toEqual({ name: 's1', restartLsn: 11 * SEG + 8, invalidated: 'none' });
    expect(again.get('lazy')).toEqual({ name: 'lazy', restartLsn: null, invalidated: 'none' });
    again.drop('lazy');
    expect(fs.existsSync(path.join(dir, REPLSLOT_DIR, 'lazy'))).toBe(false);
    expect(expectError(() => again.drop('lazy')).message).toBe('replication slot "lazy" does not exist');
    expect(expectError(() => again.acquire('nope', 1)).message).toBe('replication slot "nope" does not exist');
    expect(ReplicationSlots.startup(host(dir)).size).toBe(1);
  });

  it('cleans up what a crash left half created or dropped, and refuses a corrupt state file at startup', () => {
    const dir = dataDir();
    const slots = ReplicationSlots.startup(host(dir));
    slots.create('s1', true);
    fs.mkdirSync(path.join(dir, REPLSLOT_DIR, 'half.tmp'));
    fs.writeFileSync(path.join(dir, REPLSLOT_DIR, 's1', 'state.tmp'), 'junk');
    const restored = ReplicationSlots.startup(host(dir));
    expect(restored.size).toBe(1);
    expect(fs.readdirSync(path.join(dir, REPLSLOT_DIR))).toEqual(['s1']);
    expect(fs.readdirSync(path.join(dir, REPLSLOT_DIR, 's1'))).toEqual(['state']);

    const state = path.join(dir, REPLSLOT_DIR, 's1', 'state');
    const bytes = fs.readFileSync(state);
    bytes[82] ^= 1;
    fs.writeFileSync(state, bytes);
    const error = expectError(() => ReplicationSlots.startup(host(dir)));
    expect(error.message).toMatch(/^checksum mismatch for replication slot file "pg_replslot\/s1\/state"/);

    fs.rmSync(state);
    expect(expectError(() => ReplicationSlots.startup(host(dir))).message).toMatch(/^could not open file "pg_replslot\/s1\/state"/);
  });

  it('refuses slot commands on a standby', () => {
    const error = expectError(() => slotsOnPrimary(null, 'standby'));
    expect(error.message).toBe('replication slots cannot be managed on a standby yet');
  });
});

describe('KeepLogSeg', () => {
  const base = { segmentSize: SEG, settings: NO_CAP };
  it('keeps from the oldest slot, capped by max_slot_wal_keep_size, and at least wal_keep_size', () => {
    expect(keepLogSeg({ ...base, recPtr: lsn(20 * SEG + 5), slotMinimumLsn: null })).toBe(20);
    expect(keepLogSeg({ ...base, recPtr: lsn(20 * SEG + 5), slotMinimumLsn: lsn(3 * SEG + 9) })).toBe(3);
    expect(keepLogSeg({ ...base, recPtr: lsn(20 * SEG + 5), slotMinimumLsn: lsn(3 * SEG + 9), settings: { ...NO_CAP, maxSlotWalKeepBytes: 5 * MB } })).toBe(15);
    expect(keepLogSeg({ ...base, recPtr: lsn(20 * SEG + 5), slotMinimumLsn: lsn(18 * SEG), settings: { ...NO_CAP, maxSlotWalKeepBytes: 5 * MB } })).toBe(18);
    expect(keepLogSeg({ ...base, recPtr: lsn(20 * SEG + 5), slotMinimumLsn: lsn(3 * SEG), settings: { ...NO_CAP, maxSlotWalKeepBytes: 0 } })).toBe(20);
    expect(keepLogSeg({ ...base, recPtr: lsn(20 * SEG + 5), slotMinimumLsn: lsn(3 * SEG), settings: { ...NO_CAP, maxSlotWalKeepBytes: 0, walKeepBytes: 4 * MB } })).toBe(16);
    expect(keepLogSeg({ ...base, recPtr: lsn(3 * SEG), slotMinimumLsn: null, settings: { ...NO_CAP, walKeepBytes: 8 * MB } })).toBe(1);
    expect(keepLogSeg({ ...base, recPtr: lsn(20 * SEG + 5), slotMinimumLsn: null, upTo: 12 })).toBe(12);
  });

  it('gives the slots\' own hold (null without a slot)', () => {
    expect(slotKeepSegment({ recPtr: lsn(20 * SEG), slotMinimumLsn: null, segmentSize: SEG, maxSlotWalKeepBytes: -1 })).toBeNull();
    expect(slotKeepSegment({ recPtr: lsn(20 * SEG), slotMinimumLsn: lsn(3 * SEG + 1), segmentSize: SEG, maxSlotWalKeepBytes: -1 })).toBe(3);
    expect(slotKeepSegment({ recPtr: lsn(20 * SEG), slotMinimumLsn: lsn(3 * SEG + 1), segmentSize: SEG, maxSlotWalKeepBytes: 2 * MB })).toBe(18);
  });
});

describe('GetWALAvailability', () => {
  const status = (restart: number | null, extra: { oldestSegNo?: number; settings?: RetentionSettings; active?: boolean; invalidated?: 'none' | 'wal_removed'; min?: number } = {}) => walAvailability({
    slot: { restartLsn: restart === null ? null : lsn(restart), invalidated: extra.invalidated ?? 'none', active: extra.active ?? false },
    writeLsn: lsn(20 * SEG + 100), slotMinimumLsn: lsn(extra.min ?? restart ?? 0), oldestSegNo: extra.oldestSegNo ?? 2, segmentSize: SEG,
    settings: extra.settings ?? NO_CAP,
  });
  it('says reserved, extended, unreserved and lost as PostgreSQL does', () => {
    expect(status(null)).toBeNull();
    // max_wal_size 4MB: segments 15 (= 20 - (4 + 1)) and up are within it.
    expect(status(15 * SEG)).toBe('reserved');
    expect(status(14 * SEG + 7)).toBe('extended');
    const capped = { ...NO_CAP, maxSlotWalKeepBytes: 3 * MB };
    expect(status(18 * SEG, { settings: capped })).toBe('reserved');
    expect(status(10 * SEG, { settings: capped })).toBe('unreserved');
    expect(status(10 * SEG, { settings: capped, oldestSegNo: 11 })).toBe('lost');
    expect(status(10 * SEG, { settings: capped, oldestSegNo: 11, active: true })).toBe('unreserved');
    expect(status(null, { invalidated: 'wal_removed' })).toBe('lost');
    // A slot kept by another, older slot's hold is reserved by it.
    expect(status(17 * SEG, { settings: capped, min: 10 * SEG })).toBe('reserved');
  });

  it('gives safe_wal_size under a cap', () => {
    expect(safeWalSize({ restartLsn: lsn(18 * SEG), writeLsn: lsn(20 * SEG + 100), segmentSize: SEG, settings: NO_CAP })).toBeNull();
    expect(safeWalSize({ restartLsn: lsn(18 * SEG), writeLsn: lsn(20 * SEG + 100), segmentSize: SEG, settings: { ...NO_CAP, maxSlotWalKeepBytes: 3 * MB } })).toBe(22 * SEG - (20 * SEG + 100));
  });
});

describe('invalidation', () => {
  it('picks the valid slots behind the oldest kept segment, and says by how much', () => {
    const decided = obsoleteSlots([
      { name: 'a', restartLsn: lsn(3 * SEG + 10), invalidated: 'none' },
      { name: 'b', restartLsn: lsn(5 * SEG), invalidated: 'none' },
      { name: 'c', restartLsn: null, invalidated: 'wal_removed' },
      { name: 'd', restartLsn: null, invalidated: 'none' },
    ], 5, SEG);
    expect(decided).toEqual([{ name: 'a', restartLsn: 3 * SEG + 10, exceedsByBytes: 2 * SEG - 10 }]);
    expect(invalidationDetail(decided[0]!)).toBe(`The slot's restart_lsn 0/30000A exceeds the limit by ${2 * SEG - 10} bytes.`);
    expect(invalidationDetail({ name: 'x', restartLsn: lsn(SEG - 1), exceedsByBytes: 1 })).toBe('The slot\'s restart_lsn 0/FFFFF exceeds the limit by 1 byte.');
  });

  it('invalidates at a checkpoint a slot past max_slot_wal_keep_size: terminates its walsender, saves it lost, refuses it afterwards', () => {
    const dir = dataDir();
    const h = host(dir, { redo: 3 * SEG + 40 });
    const slots = ReplicationSlots.startup(h);
    slots.create('old', true);
    h.redo = 19 * SEG + 8;
    slots.create('fresh', true);
    const user = slots.acquire('old', 777);
    // No cap: the oldest slot holds WAL back from its segment.
    expect(slots.checkpoint({ redo: lsn(20 * SEG), end: lsn(20 * SEG + 500) })).toBe(3 * SEG);
    expect(h.lines.filter((l) => l.includes('invalidating'))).toEqual([]);

    h.retention = { ...NO_CAP, maxSlotWalKeepBytes: 2 * MB };
    expect(slots.checkpoint({ redo: lsn(20 * SEG), end: lsn(20 * SEG + 500) })).toBe(19 * SEG);
    expect(h.terminated).toEqual(['old']);
    expect(h.lines).toContain('LOG: terminating process 777 to release replication slot "old"');
    expect(h.lines).toContain('LOG: invalidating obsolete replication slot "old"');
    expect(h.lines).toContain(`DETAIL: The slot's restart_lsn 0/300028 exceeds the limit by ${18 * SEG - (3 * SEG + 40)} bytes.`);
    expect(h.lines).toContain('HINT: You might need to increase "max_slot_wal_keep_size".');
    user.confirmReceived(lsn(20 * SEG)); // a late reply changes nothing
    user.release();
    expect(slots.rows().find((r) => r.name === 'old')).toMatchObject({ walStatus: 'lost', restartLsn: null, invalidationReason: 'wal_removed', active: false });

    const restored = ReplicationSlots.startup(host(dir));
    expect(restored.get('old')).toEqual({ name: 'old', restartLsn: null, invalidated: 'wal_removed' });
    const refused = expectError(() => restored.acquire('old', 1));
    expect(refused.message).toBe('can no longer get changes from replication slot "old"');
    expect(refused.detail).toBe('This slot has been invalidated because it exceeded the maximum reserved size.');
    expect(restored.wireRows().map((r) => [r.name, r.walStatus])).toEqual([['fresh', 'reserved'], ['old', 'lost']]);
  });

  it('does not invalidate a slot the redo pointer or wal_keep_size still covers', () => {
    const h = host(dataDir(), { redo: 15 * SEG });
    const slots = ReplicationSlots.startup(h);
    slots.create('s', true);
    h.retention = { ...NO_CAP, maxSlotWalKeepBytes: 0 };
    // The checkpoint's redo pointer is in segment 15: its WAL stays anyway.
    expect(slots.checkpoint({ redo: lsn(15 * SEG + 10), end: lsn(20 * SEG) })).toBe(20 * SEG);
    expect(slots.get('s')!.invalidated).toBe('none');
    h.retention = { ...NO_CAP, maxSlotWalKeepBytes: 0, walKeepBytes: 6 * MB };
    slots.checkpoint({ redo: lsn(20 * SEG), end: lsn(20 * SEG + 9) });
    expect(slots.get('s')!.invalidated).toBe('none');
    h.retention = { ...NO_CAP, maxSlotWalKeepBytes: 0, walKeepBytes: 4 * MB };
    slots.checkpoint({ redo: lsn(20 * SEG), end: lsn(20 * SEG + 9) });
    expect(slots.get('s')!.invalidated).toBe('wal_removed');
  });
});
