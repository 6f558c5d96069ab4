/**
 * The messages of a replication connection (`/replication`), as they are in memory after
 * decoding: PostgreSQL's replication protocol (the walsender's commands and its CopyBoth
 * stream) carried over walship's WebSocket framing.
 *
 * A connection: the standby (or `walship basebackup`) sends `startup` and authenticates exactly
 * as a client session does (SCRAM with a user that has the replication right, or under
 * `auth_method = trust` the `replication_password` setting). After `authOk` it
 * sends commands, each with an `id`; the walsender answers each with a `result` or an `error`
 * carrying that `id`:
 *
 * - `identifySystem`, `timelineHistory`, `createReplicationSlot`, `dropReplicationSlot`,
 *   `listReplicationSlots` (PostgreSQL's IDENTIFY_SYSTEM, TIMELINE_HISTORY,
 *   CREATE_REPLICATION_SLOT ... PHYSICAL, DROP_REPLICATION_SLOT, and a listing in place of
 *   `SELECT * FROM pg_replication_slots`).
 * - `startReplication` (START_REPLICATION [SLOT s] PHYSICAL X/X TIMELINE n): the `result` starts
 *   the CopyBoth phase. An encrypted standby adds its WAL key identifier, and a walsender with the
 *   same WAL key then sends WAL it read from its encrypted files as stored (XLogData's
 *   `encryptedTimeline`; the frame's tag is 'e' instead of 'w'). The walsender then sends XLogData
 *   and Keepalive frames; the standby sends StandbyStatusUpdate frames. On a historic timeline
 *   the walsender sends `endOfTimeline` once it has sent the timeline's last byte, then
 *   `copyDone`; either side may end the copy with `copyDone`, and the other answers with its own.
 *   After both, commands may follow again.
 * - `baseBackup` (BASE_BACKUP): no `result`; the walsender answers with `backupStart`, then
 *   per file a `backupFile` and its `backupChunk`s, then `backupEnd` (or an `error` with the
 *   request's `id`, which ends the backup).
 * - `flushBuffers`, `listDataFiles`, `readDataFile`, `pageChecksums`: what `walship rewind` and
 *   `walship verify` read from a node (pg_rewind's libpq source uses CHECKPOINT, pg_ls_dir,
 *   pg_stat_file and pg_read_binary_file for the same): flush the buffers, list the data files,
 *   read a range of one, and the CRC of each page of a relation as stored on disk.
 *
 * Wire conventions (those of the client protocol, see messages.ts): control messages are
 * msgpack maps with a `type`; LSNs in them are `'X/X'` strings (`WireLsn`); optional fields
 * are omitted; unknown fields are ignored. The three hot messages — XLogData, Keepalive,
 * StandbyStatusUpdate — are instead binary frames with a fixed little-endian header
 * (replication-frames.ts); their LSNs are the engine's numeric `Lsn`, and their `type` below
 * is only the in-memory discriminant, never sent.
 */
import type { Lsn } from '@walship/engine/lsn';
import type { TimestampTz } from './timestamp.js';
import type {
  AuthOkMessage,
  AuthRequestMessage,
  ErrorMessage,
  PasswordMessage,
  SaslContinueMessage,
  SaslFinalMessage,
  SaslInitialResponseMessage,
  SaslResponseMessage,
  StartupMessage,
  WireLsn,
} from './messages.js';

/** Which end of a replication connection decodes a frame. */
export type ReplicationSide = 'sender' | 'receiver';

// ---------------------------------------------------------------------------------------------
// Commands (standby -> walsender) and their results

/** A physical replication slot's WAL status, as `pg_replication_slots.wal_status`. */
export type SlotWalStatus = 'reserved' | 'extended' | 'unreserved' | 'lost';

export const SLOT_WAL_STATUSES: readonly SlotWalStatus[] = ['reserved', 'extended', 'unreserved', 'lost'];

export interface WireReplicationSlot {
  name: string;
  /** Oldest WAL the slot retains; null when it reserves none (yet). */
  restartLsn: WireLsn | null;
  /** null when `restartLsn` is null, as PostgreSQL shows it. */
  walStatus: SlotWalStatus | null;
  active: boolean;
  /** The walsender using the slot; null (or absent) when none does. */
  activePid?: number | null;
}

/** What each replication command carries besides `type` and `id`. */
export interface ReplicationRequestPayloads {
  identifySystem: Record<never, never>;
  timelineHistory: { timeline: number };
  /** Always a physical slot. Without `reserveWal` the slot retains nothing until first used. */
  createReplicationSlot: { name: string; reserveWal?: boolean };
  /** `wait`: wait for the slot to become inactive instead of failing (DROP ... WAIT). */
  dropReplicationSlot: { name: string; wait?: boolean };
  listReplicationSlots: Record<never, never>;
  /**
   * `walKeyId`: the standby's WAL key identifier (16 bytes, engine's crypto/wal-key-id.ts), sent
   * by an encrypted standby only. When the walsender's own is the same, it may send WAL read
   * from its encrypted segment files as stored (XLogData with `encryptedTimeline`); absent or
   * different, it sends plaintext as to any standby. A walsender that predates the field ignores
   * it (unknown fields are ignored) and sends plaintext.
   *
   * `reportSyncStandby`: the standby wants to be told, in the walsender's keepalives
   * (`syncStandby`), whether commits may wait for its write or flush. A walsender that predates
   * the field ignores it and never tells; the standby then replies as if they did.
   */
  startReplication: { slot?: string; startLsn: WireLsn; timeline: number; walKeyId?: Buffer; reportSyncStandby?: boolean };
  /**
   * `fast`: request an immediate checkpoint (pg_basebackup --checkpoint=fast). `includeWal`:
   * send the WAL written during the backup, so that the copy is consistent on its own; absent
   * means true. `maxRateBytes`: bytes per second (pg_basebackup --max-rate); absent: unlimited.
   */
  baseBackup: { label: string; fast?: boolean; includeWal?: boolean; maxRateBytes?: number };
  /**
   * The node's dirty buffers written to disk: a checkpoint on a primary, a restartpoint and a
   * flush of every dirty buffer on a standby, after waiting (up to `timeoutMs`) until it has
   * replayed `waitForLsn`. For `walship verify` and `walship rewind`, which read pages from disk.
   */
  flushBuffers: { waitForLsn?: WireLsn; timeoutMs?: number };
  /** The data directory's regular files (pg_ls_dir + pg_stat_file), for `walship rewind` and `verify`. */
  listDataFiles: Record<never, never>;
  /** Up to MAX_DATA_FILE_READ_BYTES of a data file from `offset` (pg_read_binary_file). */
  readDataFile: { path: string; offset: number; length: number };
  /** CRC-32C of each page of `base/<relNode>` as on disk, from `startBlock`, at most `maxBlocks`. */
  pageChecksums: { relNode: number; startBlock: number; maxBlocks: number };
}

/** What a `result` carries besides `type`, `id` and `request`. `baseBackup` has none. */
export interface ReplicationResultPayloads {
  /** `systemId`: the decimal u64 of the control file; `dbname`: always null (physical). */
  identifySystem: { systemId: string; timeline: number; xlogPos: WireLsn; dbname: null };
  /** `fileName`: `%08X.history`, as PostgreSQL names the file in `pg_wal/`. */
  timelineHistory: { fileName: string; content: string };
  /** `consistentPoint`: the WAL reserved from, or null without `reserveWal`. */
  createReplicationSlot: { slotName: string; consistentPoint: WireLsn | null };
  dropReplicationSlot: Record<never, never>;
  listReplicationSlots: { slots: WireReplicationSlot[] };
  /** CopyBoth begins. */
  startReplication: Record<never, never>;
  /** `lsn`: how far this node's WAL went when its buffers were flushed (flushed, or replayed on a standby). */
  flushBuffers: { lsn: WireLsn; timeline: number; role: 'primary' | 'standby' };
  listDataFiles: { files: WireDataFile[] };
  /** `size`: the file's size when it was read; `data` is shorter than asked at its end. */
  readDataFile: { path: string; offset: number; size: number; data: Buffer };
  /** `nblocks`: the relation's length in whole blocks; `checksums`: 4 bytes (u32 LE) per block. */
  pageChecksums: { relNode: number; startBlock: number; nblocks: number; checksums: Buffer };
}

/** A regular file of a data directory: its path (relative, '/'-separated) and size. */
export interface WireDataFile {
  path: string;
  size: number;
}

export type ReplicationRequestType = keyof ReplicationRequestPayloads;
export type ReplicationResultType = keyof ReplicationResultPayloads;

export const REPLICATION_REQUEST_TYPES: readonly ReplicationRequestType[] = [
  'identifySystem',
  'timelineHistory',
  'createReplicationSlot',
  'dropReplicationSlot',
  'listReplicationSlots',
  'startReplication',
  'baseBackup',
  'flushBuffers',
  'listDataFiles',
  'readDataFile',
  'pageChecksums',
];

export const REPLICATION_RESULT_TYPES: readonly ReplicationResultType[] = [
  'identifySystem',
  'timelineHistory',
  'createReplicationSlot',
  'dropReplicationSlot',
  'listReplicationSlots',
  'startReplication',
  'flushBuffers',
  'listDataFiles',
  'readDataFile',
  'pageChecksums',
];

export type ReplicationRequestMessage<K extends ReplicationRequestType> = { type: K; id: number } & ReplicationRequestPayloads[K];

export type ReplicationResultMessage<K extends ReplicationResultType> = {
  type: 'result';
  id: number;
  request: K;
} & ReplicationResultPayloads[K];

export type ReplicationRequest = { [K in ReplicationRequestType]: ReplicationRequestMessage<K> }[ReplicationRequestType];
export type AnyReplicationResult = { [K in ReplicationResultType]: ReplicationResultMessage<K> }[ReplicationResultType];

// ---------------------------------------------------------------------------------------------
// The CopyBoth stream

/** XLogData (`'w'`): WAL bytes from `dataStart`; binary on the wire. */
export interface XLogDataMessage {
  type: 'xlogData';
  /** LSN of `data[0]`. */
  dataStart: Lsn;
  /** The walsender's end of WAL (what it may send); at least `dataStart + data.length`. */
  walEnd: Lsn;
  /** The walsender's clock when it sent this (filled in last, after reading the WAL). */
  sendTime: TimestampTz;
  /** The WAL bytes; when decoded, a view of the frame (no copy). */
  data: Buffer;
  /**
   * Present when `data` is WAL as stored in an encrypted segment file: ciphertext of the WAL
   * cipher under this timeline (the one in the file's name), at its own positions. Sent only to
   * a standby that proved the same WAL key (`startReplication.walKeyId`). Absent: plaintext.
   */
  encryptedTimeline?: number;
}

/** Primary keepalive (`'k'`); binary on the wire. */
export interface KeepaliveMessage {
  type: 'keepalive';
  walEnd: Lsn;
  /** The walsender's clock. */
  sendTime: TimestampTz;
  /** The standby should answer with a StandbyStatusUpdate at once. */
  replyRequested: boolean;
  /**
   * Sent only to a standby that asked (`startReplication.reportSyncStandby`): whether commits
   * may wait for this standby's write or flush (it is named in synchronous_standby_names, as the
   * synchronous standby or a potential one). Absent: not told.
   */
  syncStandby?: boolean;
}

/** Standby status update (`'r'`); binary on the wire. 0 means "unknown" for any LSN. */
export interface StandbyStatusUpdateMessage {
  type: 'standbyStatusUpdate';
  write: Lsn;
  flush: Lsn;
  apply: Lsn;
  /** The standby's clock (shown as replyTime on the walsender's node). */
  sendTime: TimestampTz;
  replyRequested: boolean;
}

/** The walsender finished a historic timeline (PostgreSQL's result set after START_REPLICATION). */
export interface EndOfTimelineMessage {
  type: 'endOfTimeline';
  nextTimeline: number;
  nextTimelineStartLsn: WireLsn;
}

/** Ends this side's half of the CopyBoth phase (CopyDone). */
export interface CopyDoneMessage {
  type: 'copyDone';
}

// ---------------------------------------------------------------------------------------------
// The base backup stream (answers `baseBackup`, with its `id`)

export interface BackupStartMessage {
  type: 'backupStart';
  id: number;
  startLsn: WireLsn;
  timeline: number;
  /** Estimates for progress reports (pg_basebackup's backup_total), not promises. */
  totalBytes: number;
  fileCount: number;
}

export interface BackupFileMessage {
  type: 'backupFile';
  id: number;
  /** Relative to the data directory, '/'-separated; checked by `backupPathProblem`. */
  path: string;
  size: number;
  /** Permission bits only (0 to 0o777). */
  mode: number;
}

export interface BackupChunkMessage {
  type: 'backupChunk';
  id: number;
  path: string;
  offset: number;
  /** 1 to MAX_BACKUP_CHUNK_BYTES bytes. */
  data: Buffer;
}

export interface BackupEndMessage {
  type: 'backupEnd';
  id: number;
  endLsn: WireLsn;
  timeline: number;
  /** The `backup_label` file's content, written last into the copy. */
  backupLabel: string;
}

export type BackupStreamMessage = BackupStartMessage | BackupFileMessage | BackupChunkMessage | BackupEndMessage;

// ---------------------------------------------------------------------------------------------
// Per direction

/** What the standby (walreceiver, basebackup) sends: what the walsender decodes. */
export type WalReceiverMessage =
  | StartupMessage
  | PasswordMessage
  | SaslInitialResponseMessage
  | SaslResponseMessage
  | ReplicationRequest
  | StandbyStatusUpdateMessage
  | CopyDoneMessage;

/** What the walsender sends: what the standby decodes. */
export type WalSenderMessage =
  | AuthRequestMessage
  | SaslContinueMessage
  | SaslFinalMessage
  | AuthOkMessage
  | ErrorMessage
  | AnyReplicationResult
  | XLogDataMessage
  | KeepaliveMessage
  | EndOfTimelineMessage
  | CopyDoneMessage
  | BackupStreamMessage;

export type ReplicationMessage = WalReceiverMessage | WalSenderMessage;

/** The messages a side may receive. */
export interface ReplicationInbound {
  sender: WalReceiverMessage;
  receiver: WalSenderMessage;
}
