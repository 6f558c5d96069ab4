/**
 * Physical replication slots (slot.c, with the slot parts of xlog.c and walsender.c).
 *
 * A slot remembers, for one standby, the oldest WAL it still needs (its restart LSN), so that a
 * standby that is down or behind finds its WAL still there when it comes back. Each slot lives in
 * `DATADIR/pg_replslot/<name>/state` (written to a temporary file, fsynced, renamed, the
 * directories fsynced; a CRC-32C covers the contents), is loaded at every start and crash-restart
 * (StartupReplicationSlots), and is saved again at each checkpoint when it changed
 * (CheckPointReplicationSlots), just before the checkpoint decides which segments to remove.
 *
 * - Creating a slot reserves WAL from the current redo pointer (ReplicationSlotReserveWal for a
 *   physical slot, as `pg_create_physical_replication_slot(name, true)` does).
 * - START_REPLICATION SLOT acquires it (one walsender at a time); the standby's reported flush
 *   LSN moves its restart LSN forward (PhysicalConfirmReceivedLocation).
 * - At a checkpoint the oldest restart LSN holds back segment removal, capped by
 *   `max_slot_wal_keep_size` (KeepLogSeg); a slot whose restart LSN falls behind the oldest segment
 *   kept is invalidated (InvalidateObsoleteReplicationSlots): its walsender is terminated, it is
 *   saved as invalid, and it can no longer be used.
 * - `wal_status` is GetWALAvailability's: reserved, extended, unreserved, lost.
 *
 * The decisions (KeepLogSeg, GetWALAvailability, which slots to invalidate, the state file's
 * encoding) are pure functions below, tested without a node; the class does the file I/O.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, WalshipError, crc32c, formatLsn, type LogFunction, type Lsn } from '@walship/engine';
import { fsyncDirectory, listSegments } from '@walship/engine/wal/wal-files';
import { segmentOf } from '@walship/engine/wal/xlog-internal';
import { MAX_LISTED_REPLICATION_SLOTS, validateReplicationSlotName, type SlotWalStatus, type WireReplicationSlot } from '@walship/protocol';

/** The slots' directory in the data directory. */
export const REPLSLOT_DIR = 'pg_replslot';
const STATE_FILE = 'state';

/** PostgreSQL's SQLSTATE names for the slot errors (the codes clients and the CLI branch on). */
export const SlotErrorCode = {
  duplicateObject: 'duplicate_object',
  undefinedObject: 'undefined_object',
  objectInUse: 'object_in_use',
  notInPrerequisiteState: 'object_not_in_prerequisite_state',
  configurationLimitExceeded: 'configuration_limit_exceeded',
  invalidName: 'invalid_name',
} as const;

export type SlotInvalidation = 'none' | 'wal_removed';

/** What a slot keeps on disk (ReplicationSlotPersistentData, for a physical slot). */
export interface SlotData {
  name: string;
  /** The oldest WAL the slot needs; null when it reserves none (not yet used, or invalidated). */
  restartLsn: Lsn | null;
  invalidated: SlotInvalidation;
}

// ---- the state file ---------------------------------------------------------------------------
//
// ReplicationSlotOnDisk's layout, little-endian:
//   0  magic     u32   (not covered by the checksum)
//   4  checksum  u32   CRC-32C of bytes 8 to the end
//   8  version   u32
//  12  length    u32   bytes of slot data that follow
//  16  name      64 bytes, NUL-padded (NAMEDATALEN)
//  80  restart   u64   restart LSN, 0 for none
//  88  invalid   u32   0 none, 1 wal_removed
//  92  kind      u32   0 physical

const SLOT_MAGIC = 0x1051ca1;
const SLOT_VERSION = 1;
const NAME_BYTES = 64;
const HEADER_BYTES = 16;
const DATA_BYTES = NAME_BYTES + 16;
const FILE_BYTES = HEADER_BYTES + DATA_BYTES;
const INVALIDATIONS: readonly SlotInvalidation[] = ['none', 'wal_removed'];

export function encodeSlotState(data: SlotData): Buffer {
  const buffer = Buffer.alloc(FILE_BYTES);
  buffer.writeUInt32LE(SLOT_MAGIC, 0);
  buffer.writeUInt32LE(SLOT_VERSION, 8);
  buffer.writeUInt32LE(DATA_BYTES, 12);
  const written = buffer.write(data.name, HEADER_BYTES, NAME_BYTES - 1, 'utf8');
  if (written !== Buffer.byteLength(data.name)) throw new Error(`slot name "${data.name}" does not fit`);
  buffer.writeBigUInt64LE(BigInt(data.restartLsn ?? 0), HEADER_BYTES + NAME_BYTES);
  buffer.writeUInt32LE(INVALIDATIONS.indexOf(data.invalidated), HEADER_BYTES + NAME_BYTES + 8);
  buffer.writeUInt32LE(0, HEADER_BYTES + NAME_BYTES + 12);
  buffer.writeUInt32LE(crc32c(buffer.subarray(8)), 4);
  return buffer;
}

/** RestoreSlotFromDisk's checks: a damaged or foreign file is refused, never half-believed. */
export function decodeSlotState(buffer: Buffer, where: string): SlotData {
  const corrupt = (message: string, detail?: string): WalshipError => new WalshipError(ErrorCode.dataCorrupted, message, {
    severity: 'PANIC',
    ...(detail !== undefined ? { detail } : {}),
    hint: `The slot's state file is damaged. Remove the slot's directory (${path.dirname(where)}) to drop the slot, then start the node again; a standby that used the slot may need a new base backup.`,
  });
  if (buffer.length < HEADER_BYTES) throw corrupt(`could not read file "${where}": read ${buffer.length} of ${HEADER_BYTES}`);
  const magic = buffer.readUInt32LE(0);
  if (magic !== SLOT_MAGIC) throw corrupt(`replication slot file "${where}" has wrong magic number: ${magic} instead of ${SLOT_MAGIC}`);
  const version = buffer.readUInt32LE(8);
  if (version !== SLOT_VERSION) throw corrupt(`replication slot file "${where}" has unsupported version ${version}`);
  const length = buffer.readUInt32LE(12);
  if (length !== DATA_BYTES) throw corrupt(`replication slot file "${where}" has corrupted length ${length}`);
  if (buffer.length !== FILE_BYTES) throw corrupt(`could not read file "${where}": read ${buffer.length - HEADER_BYTES} of ${length}`);
  const stored = buffer.readUInt32LE(4);
  const computed = crc32c(buffer.subarray(8));
  if (stored !== computed) throw corrupt(`checksum mismatch for replication slot file "${where}": is ${computed}, should be ${stored}`);
  const nameField = buffer.subarray(HEADER_BYTES, HEADER_BYTES + NAME_BYTES);
  const end = nameField.indexOf(0);
  const name = nameField.subarray(0, end < 0 ? NAME_BYTES : end).toString('utf8');
  const problem = validateReplicationSlotName(name);
  if (problem !== null) throw corrupt(`replication slot file "${where}" holds an invalid slot name`, problem.message);
  const restart = buffer.readBigUInt64LE(HEADER_BYTES + NAME_BYTES);
  if (restart > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(`replication slot file "${where}" has an impossible restart LSN`);
  const invalidated = INVALIDATIONS[buffer.readUInt32LE(HEADER_BYTES + NAME_BYTES + 8)];
  if (invalidated === undefined) throw corrupt(`replication slot file "${where}" has an unknown invalidation cause`);
  const kind = buffer.readUInt32LE(HEADER_BYTES + NAME_BYTES + 12);
  if (kind !== 0) throw corrupt(`replication slot file "${where}" is not a physical slot (kind ${kind})`);
  return { name, restartLsn: restart === 0n ? null : (Number(restart) as Lsn), invalidated };
}

// ---- the decisions ----------------------------------------------------------------------------

/** The settings the WAL retention decisions read, in bytes (-1: max_slot_wal_keep_size unlimited). */
export interface RetentionSettings {
  maxWalSizeBytes: number;
  maxSlotWalKeepBytes: number;
  walKeepBytes: number;
}

/** ConvertToXSegs: a size setting as whole segments. */
function sizeToSegments(bytes: number, segmentSize: number): number {
  return Math.floor(bytes / segmentSize);
}

/**
 * KeepLogSeg: the oldest segment to keep, for WAL ending at `recPtr`, because of replication
 * slots (their oldest restart LSN, but at most `max_slot_wal_keep_size` back) and
 * `wal_keep_size`; never later than `upTo` (the caller's own limit, such as the redo segment).
 */
export function keepLogSeg(args: { recPtr: Lsn; slotMinimumLsn: Lsn | null; segmentSize: number; settings: RetentionSettings; upTo?: number }): number {
  const { recPtr, slotMinimumLsn, segmentSize, settings } = args;
  const currSeg = segmentOf(recPtr, segmentSize);
  let segNo = currSeg;
  if (slotMinimumLsn !== null && slotMinimumLsn < recPtr) {
    segNo = segmentOf(slotMinimumLsn, segmentSize);
    if (settings.maxSlotWalKeepBytes >= 0) {
      const slotKeepSegs = sizeToSegments(settings.maxSlotWalKeepBytes, segmentSize);
      if (currSeg - segNo > slotKeepSegs) segNo = currSeg - slotKeepSegs;
    }
  }
  if (settings.walKeepBytes > 0) {
    const keepSegs = sizeToSegments(settings.walKeepBytes, segmentSize);
    if (currSeg - segNo < keepSegs) segNo = currSeg <= keepSegs ? 1 : currSeg - keepSegs;
  }
  return args.upTo !== undefined && args.upTo < segNo ? args.upTo : segNo;
}

/** The first segment that slots hold back (KeepLogSeg's slot part alone), or null when none does. */
export function slotKeepSegment(args: { recPtr: Lsn; slotMinimumLsn: Lsn | null; segmentSize: number; maxSlotWalKeepBytes: number }): number | null {
  if (args.slotMinimumLsn === null) return null;
  return keepLogSeg({
    recPtr: args.recPtr, slotMinimumLsn: args.slotMinimumLsn, segmentSize: args.segmentSize,
    settings: { maxWalSizeBytes: 0, maxSlotWalKeepBytes: args.maxSlotWalKeepBytes, walKeepBytes: 0 },
  });
}

/**
 * GetWALAvailability, with pg_replication_slots' adjustments: null when the slot reserves no WAL;
 * `reserved` within max_wal_size; `extended` kept beyond it by the slots; `unreserved` no longer
 * kept, but not removed yet (the next checkpoint removes it); `lost` invalidated or removed.
 */
export function walAvailability(args: {
  slot: { restartLsn: Lsn | null; invalidated: SlotInvalidation; active: boolean };
  /** GetXLogWriteRecPtr. */
  writeLsn: Lsn;
  /** The oldest restart LSN over the valid slots (XLogGetReplicationSlotMinimumLSN). */
  slotMinimumLsn: Lsn | null;
  /** The oldest segment still in pg_wal/ (XLogGetLastRemovedSegno() + 1). */
  oldestSegNo: number;
  segmentSize: number;
  settings: RetentionSettings;
}): SlotWalStatus | null {
  const { slot, writeLsn, segmentSize, settings } = args;
  if (slot.invalidated !== 'none') return 'lost';
  if (slot.restartLsn === null) return null;
  const currSeg = segmentOf(writeLsn, segmentSize);
  const oldestSlotSeg = keepLogSeg({ recPtr: writeLsn, slotMinimumLsn: args.slotMinimumLsn, segmentSize, settings, upTo: currSeg });
  const keepSegs = sizeToSegments(settings.maxWalSizeBytes, segmentSize) + 1;
  const oldestSegMaxWalSize = currSeg > keepSegs ? currSeg - keepSegs : 1;
  const targetSeg = segmentOf(slot.restartLsn, segmentSize);
  if (targetSeg >= oldestSlotSeg) return targetSeg >= oldestSegMaxWalSize ? 'reserved' : 'extended';
  if (targetSeg >= args.oldestSegNo) return 'unreserved';
  // Removed under a walsender that may have moved on to a later segment since: not lost yet.
  return slot.active ? 'unreserved' : 'lost';
}

/**
 * pg_replication_slots.safe_wal_size: bytes that can still be written before the slot's WAL is
 * beyond what max_slot_wal_keep_size (or wal_keep_size) keeps; null without a cap.
 */
export function safeWalSize(args: { restartLsn: Lsn | null; writeLsn: Lsn; segmentSize: number; settings: RetentionSettings }): number | null {
  const { restartLsn, segmentSize, settings } = args;
  if (restartLsn === null || settings.maxSlotWalKeepBytes < 0) return null;
  const keepSegs = Math.max(sizeToSegments(settings.maxSlotWalKeepBytes, segmentSize), sizeToSegments(settings.walKeepBytes, segmentSize));
  const failLsn = (segmentOf(restartLsn, segmentSize) + keepSegs + 1) * segmentSize;
  return failLsn - args.writeLsn;
}

export interface ObsoleteSlot {
  name: string;
  restartLsn: Lsn;
  /** How far the restart LSN is behind the oldest WAL kept. */
  exceedsByBytes: number;
}

/** InvalidatePossiblyObsoleteSlot's test: valid slots whose restart LSN is before `oldestSegNo`. */
export function obsoleteSlots(slots: Iterable<SlotData>, oldestSegNo: number, segmentSize: number): ObsoleteSlot[] {
  const oldestLsn = oldestSegNo * segmentSize;
  const out: ObsoleteSlot[] = [];
  for (const slot of slots) {
    if (slot.invalidated !== 'none' || slot.restartLsn === null || slot.restartLsn >= oldestLsn) continue;
    out.push({ name: slot.name, restartLsn: slot.restartLsn, exceedsByBytes: oldestLsn - slot.restartLsn });
  }
  return out;
}

/** ReportSlotInvalidation's detail for a slot past max_slot_wal_keep_size. */
export function invalidationDetail(slot: ObsoleteSlot): string {
  return `The slot's restart_lsn ${formatLsn(slot.restartLsn)} exceeds the limit by ${slot.exceedsByBytes} byte${slot.exceedsByBytes === 1 ? '' : 's'}.`;
}

// ---- the slots of a node ----------------------------------------------------------------------

/** What the slots need from the node they belong to (a primary). */
export interface ReplicationSlotsHost {
  dataDir: string;
  segmentSize: number;
  log: LogFunction;
  /** GetXLogWriteRecPtr: WAL written so far. */
  writeLsn(): Lsn;
  /** GetRedoRecPtr: where a new slot reserves WAL from. */
  redoLsn(): Lsn;
  settings(): RetentionSettings;
  /** Ends the walsender streaming from the slot (the slot is being invalidated). */
  terminateWalSender(name: string): void;
}

/** A slot as the status view shows it (pg_replication_slots). */
export interface SlotRow {
  name: string;
  slotType: 'physical';
  active: boolean;
  activePid: number | null;
  restartLsn: string | null;
  walStatus: SlotWalStatus | null;
  safeWalSizeBytes: number | null;
  invalidationReason: string | null;
}

/** A slot acquired by a walsender (MyReplicationSlot). */
export interface AcquiredSlot {
  readonly name: string;
  /** The process the slot is active for (active_pid): walsenders run in the postmaster's. */
  readonly pid: number;
  /** PhysicalConfirmReceivedLocation: the standby has flushed WAL up to `flushLsn`. */
  confirmReceived(flushLsn: Lsn): void;
  /** ReplicationSlotRelease. */
  release(): void;
}

interface Slot {
  data: SlotData;
  /** The walsender holding it, if any. */
  holder: AcquiredSlot | null;
  dirty: boolean;
}

export class ReplicationSlots {
  private readonly slots = new Map<string, Slot>();
  private closed = false;

  private constructor(private readonly host: ReplicationSlotsHost) {}

  private get dir(): string {
    return path.join(this.host.dataDir, REPLSLOT_DIR);
  }

  /**
   * StartupReplicationSlots: loads every slot from pg_replslot/, removing what a crash left half
   * created or half dropped (`*.tmp`). A damaged state file stops the node with the reason.
   */
  static startup(host: ReplicationSlotsHost): ReplicationSlots {
    const slots = new ReplicationSlots(host);
    let names: string[];
    try {
      names = fs.readdirSync(slots.dir).sort();
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return slots;
      throw error;
    }
    for (const name of names) {
      const slotDir = path.join(slots.dir, name);
      if (!fs.statSync(slotDir).isDirectory()) continue;
      if (name.endsWith('.tmp')) {
        fs.rmSync(slotDir, { recursive: true, force: true });
        fsyncDirectory(slots.dir);
        continue;
      }
      const data = restoreSlot(slotDir, `${REPLSLOT_DIR}/${name}/${STATE_FILE}`);
      if (data.name !== name) {
        throw new WalshipError(ErrorCode.dataCorrupted, `replication slot file "${REPLSLOT_DIR}/${name}/${STATE_FILE}" belongs to slot "${data.name}"`, {
          severity: 'PANIC',
          hint: `Remove the directory ${REPLSLOT_DIR}/${name} if the slot is not needed, then start the node again.`,
        });
      }
      slots.slots.set(name, { data, holder: null, dirty: false });
    }
    if (slots.slots.size > 0) host.log('LOG', `loaded ${slots.slots.size} replication slot${slots.slots.size === 1 ? '' : 's'} from ${REPLSLOT_DIR}/`);
    return slots;
  }

  /** This instance is being replaced (crash-restart): it writes nothing from now on. */
  close(): void {
    this.closed = true;
  }

  get size(): number {
    return this.slots.size;
  }

  get(name: string): SlotData | null {
    const slot = this.slots.get(name);
    return slot === undefined ? null : { ...slot.data };
  }

  /** ReplicationSlotCreate, reserving WAL from the redo pointer when asked (always, from the CLI). */
  create(name: string, reserveWal: boolean): { slotName: string; consistentPoint: string | null } {
    const problem = validateReplicationSlotName(name);
    if (problem !== null) throw new WalshipError(SlotErrorCode.invalidName, problem.message, problem.hint !== undefined ? { hint: problem.hint } : {});
    if (this.slots.has(name)) throw new WalshipError(SlotErrorCode.duplicateObject, `replication slot "${name}" already exists`);
    if (this.slots.size >= MAX_LISTED_REPLICATION_SLOTS) {
      throw new WalshipError(SlotErrorCode.configurationLimitExceeded, 'all replication slots are in use', { hint: 'Free one with walship slot drop.' });
    }
    const data: SlotData = { name, restartLsn: reserveWal ? this.host.redoLsn() : null, invalidated: 'none' };
    this.createOnDisk(data);
    this.slots.set(name, { data, holder: null, dirty: false });
    this.host.log('LOG', `created physical replication slot "${name}"${data.restartLsn === null ? '' : ` reserving WAL from ${formatLsn(data.restartLsn)}`}`);
    return { slotName: name, consistentPoint: data.restartLsn === null ? null : formatLsn(data.restartLsn) };
  }

  /** ReplicationSlotDrop (nowait): an active slot is refused. */
  drop(name: string): void {
    const slot = this.lookup(name);
    if (slot.holder !== null) throw activeError(name, slot.holder.pid);
    const slotDir = path.join(this.dir, name);
    const temp = `${slotDir}.tmp`;
    fs.rmSync(temp, { recursive: true, force: true });
    fs.renameSync(slotDir, temp);
    fsyncDirectory(this.dir);
    this.slots.delete(name);
    fs.rmSync(temp, { recursive: true, force: true });
    fsyncDirectory(this.dir);
    this.host.log('LOG', `dropped physical replication slot "${name}"`);
  }

  /** ReplicationSlotAcquire (nowait), for START_REPLICATION SLOT. */
  acquire(name: string, pid: number): AcquiredSlot {
    const slot = this.lookup(name);
    if (slot.holder !== null) throw activeError(name, slot.holder.pid);
    if (slot.data.invalidated !== 'none') {
      throw new WalshipError(SlotErrorCode.notInPrerequisiteState, `can no longer get changes from replication slot "${name}"`, {
        detail: 'This slot has been invalidated because it exceeded the maximum reserved size.',
        hint: `Drop the slot (walship slot drop ${name}) and rebuild the standby with walship basebackup --slot ${name}, or raise max_slot_wal_keep_size for the next time.`,
      });
    }
    const slots = this;
    let released = false;
    const handle: AcquiredSlot = {
      name,
      pid,
      confirmReceived(flushLsn: Lsn): void {
        if (released || slots.slots.get(name) !== slot || slot.data.invalidated !== 'none' || flushLsn <= 0) return;
        if (slot.data.restartLsn === null || flushLsn > slot.data.restartLsn) {
          slot.data.restartLsn = flushLsn;
          slot.dirty = true;
        }
      },
      release(): void {
        if (released) return;
        released = true;
        if (slot.holder === handle) slot.holder = null;
        slots.host.log('LOG', `released physical replication slot "${name}"`);
      },
    };
    slot.holder = handle;
    this.host.log('LOG', `acquired physical replication slot "${name}"`);
    return handle;
  }

  /** CheckPointReplicationSlots: saves every slot changed since it was last saved. */
  saveAll(): void {
    if (this.closed) return;
    for (const slot of this.slots.values()) {
      if (!slot.dirty) continue;
      try {
        saveSlot(path.join(this.dir, slot.data.name), slot.data);
        slot.dirty = false;
      } catch (error) {
        // As SaveSlotToPath at LOG level: the state on disk stays older, which only keeps more WAL.
        this.host.log('LOG', `could not save replication slot "${slot.data.name}": ${(error as Error).message}`);
      }
    }
  }

  /** XLogGetReplicationSlotMinimumLSN: the oldest restart LSN over the valid slots. */
  minimumRestartLsn(): Lsn | null {
    let min: Lsn | null = null;
    for (const { data } of this.slots.values()) {
      if (data.invalidated === 'none' && data.restartLsn !== null && (min === null || data.restartLsn < min)) min = data.restartLsn;
    }
    return min;
  }

  /**
   * A checkpoint's use of the slots (CheckPointReplicationSlots, then CreateCheckPoint's
   * KeepLogSeg and InvalidateObsoleteReplicationSlots): saves the changed slots, invalidates the
   * slots behind the oldest segment kept for WAL ending at `end` (a checkpoint keeps everything
   * from its redo pointer's segment in any case), and returns the oldest LSN the remaining slots
   * hold back, or null when no slot holds any.
   */
  checkpoint(at: { redo: Lsn; end: Lsn }): Lsn | null {
    if (this.closed) return null;
    this.saveAll();
    const { segmentSize } = this.host;
    const settings = this.host.settings();
    const oldestKept = (): number => keepLogSeg({
      recPtr: at.end, slotMinimumLsn: this.minimumRestartLsn(), segmentSize, settings, upTo: segmentOf(at.redo, segmentSize),
    });
    const obsolete = obsoleteSlots([...this.slots.values()].map((s) => s.data), oldestKept(), segmentSize);
    for (const slot of obsolete) this.invalidate(slot);
    const keepSeg = slotKeepSegment({ recPtr: at.end, slotMinimumLsn: this.minimumRestartLsn(), segmentSize, maxSlotWalKeepBytes: settings.maxSlotWalKeepBytes });
    return keepSeg === null ? null : ((keepSeg * segmentSize) as Lsn);
  }

  /** InvalidatePossiblyObsoleteSlot + ReportSlotInvalidation for one slot. */
  private invalidate(obsolete: ObsoleteSlot): void {
    const slot = this.slots.get(obsolete.name);
    if (slot === undefined) return;
    const { log } = this.host;
    const report = (message: string): void => {
      log('LOG', message);
      log('DETAIL', invalidationDetail(obsolete));
      log('HINT', 'You might need to increase "max_slot_wal_keep_size".');
    };
    if (slot.holder !== null) {
      report(`terminating process ${slot.holder.pid} to release replication slot "${obsolete.name}"`);
      this.host.terminateWalSender(obsolete.name);
    }
    slot.data.invalidated = 'wal_removed';
    slot.data.restartLsn = null;
    slot.dirty = true;
    if (!this.closed) {
      saveSlot(path.join(this.dir, obsolete.name), slot.data);
      slot.dirty = false;
    }
    report(`invalidating obsolete replication slot "${obsolete.name}"`);
  }

  /** pg_replication_slots, for the status document (by name). */
  rows(): SlotRow[] {
    const { segmentSize } = this.host;
    const settings = this.host.settings();
    const writeLsn = this.host.writeLsn();
    const slotMinimumLsn = this.minimumRestartLsn();
    const oldestSegNo = listSegments(this.host.dataDir, segmentSize)[0]?.segNo ?? segmentOf(writeLsn, segmentSize);
    const sorted = [...this.slots.values()].sort((a, b) => (a.data.name < b.data.name ? -1 : a.data.name > b.data.name ? 1 : 0));
    return sorted.map(({ data, holder }) => {
      const walStatus = walAvailability({
        slot: { restartLsn: data.restartLsn, invalidated: data.invalidated, active: holder !== null }, writeLsn, slotMinimumLsn, oldestSegNo, segmentSize, settings,
      });
      return {
        name: data.name,
        slotType: 'physical' as const,
        active: holder !== null,
        activePid: holder === null ? null : holder.pid,
        restartLsn: data.restartLsn === null ? null : formatLsn(data.restartLsn),
        walStatus,
        safeWalSizeBytes: walStatus === 'lost' ? null : safeWalSize({ restartLsn: data.restartLsn, writeLsn, segmentSize, settings }),
        invalidationReason: data.invalidated === 'none' ? null : data.invalidated,
      };
    });
  }

  /** The listing a replication connection gets (`listReplicationSlots`). */
  wireRows(): WireReplicationSlot[] {
    return this.rows().map((row) => ({
      name: row.name, restartLsn: row.restartLsn, walStatus: row.walStatus, active: row.active, activePid: row.activePid,
    }));
  }

  private lookup(name: string): Slot {
    const slot = this.slots.get(name);
    if (slot === undefined) throw new WalshipError(SlotErrorCode.undefinedObject, `replication slot "${name}" does not exist`);
    return slot;
  }

  /** CreateSlotOnDisk: the state file in `<name>.tmp/`, then the directory renamed into place. */
  private createOnDisk(data: SlotData): void {
    if (!fs.existsSync(this.dir)) {
      fs.mkdirSync(this.dir, { mode: 0o700 });
      fsyncDirectory(this.host.dataDir);
    }
    const slotDir = path.join(this.dir, data.name);
    const temp = `${slotDir}.tmp`;
    fs.rmSync(temp, { recursive: true, force: true });
    fs.mkdirSync(temp, { mode: 0o700 });
    saveSlot(temp, data);
    fs.renameSync(temp, slotDir);
    fsyncDirectory(slotDir);
    fsyncDirectory(this.dir);
  }
}

function activeError(name: string, pid: number): WalshipError {
  return new WalshipError(SlotErrorCode.objectInUse, `replication slot "${name}" is active for PID ${pid}`, {
    hint: 'Another standby (or a previous connection of this one) is streaming from it: stop that standby first, or wait for its connection to end.',
  });
}

/** SaveSlotToPath: state.tmp written and fsynced, renamed to state, the directories fsynced. */
function saveSlot(slotDir: string, data: SlotData): void {
  const temp = path.join(slotDir, `${STATE_FILE}.tmp`);
  const target = path.join(slotDir, STATE_FILE);
  const fd = fs.openSync(temp, 'w', 0o600);
  try {
    fs.writeSync(fd, encodeSlotState(data));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, target);
  fsyncDirectory(slotDir);
}

/** RestoreSlotFromDisk: reads and checks one slot's state file (after fsyncing it). */
export function restoreSlot(slotDir: string, where: string): SlotData {
  fs.rmSync(path.join(slotDir, `${STATE_FILE}.tmp`), { force: true });
  const file = path.join(slotDir, STATE_FILE);
  let buffer: Buffer;
  try {
    const fd = fs.openSync(file, 'r');
    try {
      fs.fsyncSync(fd);
      buffer = fs.readFileSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (error) {
    throw new WalshipError(ErrorCode.dataCorrupted, `could not open file "${where}": ${(error as Error).message}`, {
      severity: 'PANIC',
      hint: `Remove the directory ${path.dirname(where)} if the slot is not needed, then start the node again.`,
    });
  }
  return decodeSlotState(buffer, where);
}

/** Slot commands are for a primary here (PostgreSQL also allows slots on a standby). */
export function slotsOnPrimary(slots: ReplicationSlots | null, role: 'primary' | 'standby'): ReplicationSlots {
  if (role !== 'primary' || slots === null) {
    throw new WalshipError(SlotErrorCode.notInPrerequisiteState, 'replication slots cannot be managed on a standby yet', {
      detail: 'walship keeps replication slots on the primary only.',
      hint: 'Create, drop or list the slot on the primary (walship slot create --node PRIMARY NAME).',
    });
  }
  return slots;
}
