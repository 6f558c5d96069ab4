/**
 * The node's walsenders (walsender.c's command side and WalSndCtl): the replication commands
 * a session runs (IDENTIFY_SYSTEM, TIMELINE_HISTORY, START_REPLICATION with PostgreSQL's checks
 * on the start point and timeline), and the registry of running walsenders that the status view
 * (pg_stat_replication), walSndWakeup and shutdown (WalSndWaitStopping) go through.
 *
 * On a primary a walsender sends flushed WAL and is woken by XLogWrite's completion; on a
 * standby (cascading replication) it sends what the walreceiver has flushed and is woken by the
 * walreceiver's flush.
 */
import * as fs from 'node:fs';
import type { WebSocket } from 'ws';
import { ErrorCode, WalshipError, formatLsn, parseLsn, type Lsn, type LogFunction } from '@walship/engine';
import { historyFileName, historyFilePath, readTimeLineHistory, tliInHistory, tliSwitchPoint, type TimeLineHistoryEntry } from '@walship/engine/wal/timeline';
import { findSegmentTimeline, segmentPath } from '@walship/engine/wal/wal-files';
import { sameWalKeyId, walKeyIdFor } from '@walship/engine/crypto/wal-key-id';
import { segmentOf, xlogFileName } from '@walship/engine/wal/xlog-internal';
import { getCurrentTimestamp, timeOffsetToMs, timestampTzToIsoString, type ReplicationRequestPayloads } from '@walship/protocol';
import { WalSender, syncStateOf, type WalSenderState, type WalSndDirectHooks } from '@walship/replication';
import { directSocketOf } from './direct-socket.js';
import { Latch } from './latch.js';
import type { AcquiredSlot, ReplicationSlots } from './slots.js';
import type { SyncRep, SyncRepWalSender } from './sync-rep.js';

/** What the registry needs to know about the node it runs in. */
export interface WalSenderHost {
  dataDir: string;
  log: LogFunction;
  segmentSize(): number;
  systemId(): bigint;
  /** The timeline this node is on now (a standby: the one it replays). */
  timeline(): number;
  /** How far WAL may be sent: flushed on a primary, received on a cascading standby. */
  sendLimit(): Lsn;
  /** XLogReadFromBuffers on a primary (false elsewhere, and for WAL no longer in them). */
  readWalBuffers(into: Buffer, offset: number, startLsn: Lsn, length: number): boolean;
  walSenderTimeoutMs(): number;
  /** WalSndInitStopping has happened: the shutdown checkpoint is written; each walsender leaves once its standby has flushed all. */
  isStopping(): boolean;
  /** Registers the walsender's wake-up; returns its unregistration. */
  registerWakeup(wakeup: () => void): () => void;
  /** Direct sends of this node's flushed WAL (a primary); absent: the walsenders send everything. */
  walSndDirect?: WalSndDirectHooks;
}

/** START_REPLICATION's arguments, as the protocol carries them (`walKeyId`: an encrypted standby's WAL key identifier). */
export type StartReplicationRequest = ReplicationRequestPayloads['startReplication'];

export interface ReplicationRow {
  pid: number;
  applicationName: string;
  clientAddr: string;
  state: string;
  sentLsn: string;
  writeLsn: string;
  flushLsn: string;
  replayLsn: string;
  /** Fractional milliseconds to the microsecond (0.412), as pg_stat_replication's interval; null is NULL. */
  writeLagMs: number | null;
  flushLagMs: number | null;
  replayLagMs: number | null;
  syncPriority: number;
  syncState: string;
  /** The standby's clock in its last reply, ISO 8601 with microseconds. */
  replyTime: string | null;
  /**
   * Milliseconds since this node received the standby's last reply, on this node's clock (null
   * before the first): the lag monitor calls a standby silent for twice its
   * wal_receiver_status_interval disconnected.
   */
  replyAgeMs: number | null;
  slotName: string | null;
  backendStart: string;
  walSndWakeups: number;
  /**
   * Status updates received from the standby. An asynchronous standby sends one per flush once it
   * has caught up (its flushed and applied positions together), one named in
   * synchronous_standby_names two (flushed at once, then applied).
   */
  standbyReplies: number;
  /** WAL bytes sent, and of them those sent as stored (ciphertext of an encrypted node, to a standby with its WAL key). */
  walBytesSent: number;
  walBytesSentAsStored: number;
  /** Of walBytesSent, those the WAL flusher wrote to the standby's socket itself (direct sends, plain TCP). */
  walBytesSentDirectly: number;
}

/**
 * A running walsender (a WalSnd slot in use). The sync-rep fields are what the release rule reads:
 * state and positions come from the walsender, the priority is this registry's.
 */
class Running implements SyncRepWalSender {
  /** sync_standby_priority: 0 until a primary's synchronous replication gives it one. */
  priority = 0;
  announced = false;

  constructor(
    readonly sender: WalSender,
    readonly socket: WebSocket,
    readonly applicationName: string,
    readonly clientAddr: string,
    readonly slotName: string | null,
  ) {}

  get state(): WalSenderState {
    return this.sender.state;
  }

  get write(): Lsn {
    return this.sender.writeLsn;
  }

  get flush(): Lsn {
    return this.sender.flushLsn;
  }

  get apply(): Lsn {
    return this.sender.replayLsn;
  }
}

export class WalSenders {
  /**
   * WalSndCtl->walsnds[]: a new walsender takes the lowest free index, and priority ties go to
   * the lower index, so the order matters to synchronous replication (see sync-rep.ts of the
   * replication package). Holes are undefined; its length is the highest index used plus one.
   */
  private readonly walSnds: Array<Running | undefined> = [];
  /** The node's replication slots (ReplicationSlotCtl): a primary's, null on a standby. */
  slots: ReplicationSlots | null = null;
  /** A primary's synchronous replication; null on a standby (cascading walsenders are never synchronous). */
  private syncRep: SyncRep | null = null;

  constructor(private readonly host: WalSenderHost) {}

  get count(): number {
    return this.running().length;
  }

  /** The running walsenders, in slot order. */
  private running(): Running[] {
    return this.walSnds.filter((entry): entry is Running => entry !== undefined);
  }

  /** The walsenders as synchronous replication sees them, in slot order. */
  syncRepWalSenders(): SyncRepWalSender[] {
    return this.running();
  }

  /** SyncRepInitConfig in every walsender: each one's priority under the rule now in force. */
  setSyncPriorities(priorityOf: (applicationName: string) => number): void {
    for (const entry of this.running()) {
      const wasNamed = entry.priority > 0;
      entry.priority = priorityOf(entry.applicationName);
      // Its loop tells its standby (isSyncStandby) that commits may now wait for it, or no longer.
      if (entry.priority > 0 !== wasNamed) entry.sender.configReloaded();
    }
  }

  /**
   * Attaches a primary instance's synchronous replication (null: none, on a standby or between
   * instances); the walsenders get their priorities under it.
   */
  attachSyncRep(syncRep: SyncRep | null): void {
    this.syncRep = syncRep;
    this.setSyncPriorities((name) => syncRep?.priorityOf(name) ?? 0);
    syncRep?.release();
  }

  /** IDENTIFY_SYSTEM's timeline history of this node (current timeline first). */
  private history(): TimeLineHistoryEntry[] {
    return readTimeLineHistory(this.host.dataDir, this.host.timeline());
  }

  timelineHistory(timeline: number): { fileName: string; content: string } {
    try {
      return { fileName: historyFileName(timeline), content: fs.readFileSync(historyFilePath(this.host.dataDir, timeline), 'utf8') };
    } catch {
      throw new WalshipError(ErrorCode.invalidParameter, `could not open file "pg_wal/${historyFileName(timeline)}": No such file or directory`, {
        detail: `Timeline ${timeline} has no history file on this node.`,
      });
    }
  }

  /** Attaches a new instance's slots (at each start, crash-restart and promotion). */
  attachSlots(slots: ReplicationSlots | null): void {
    if (this.slots !== slots) this.slots?.close();
    this.slots = slots;
  }

  /** Terminates the walsender streaming from a slot (its slot is being invalidated). */
  terminateSlotUser(slotName: string): void {
    for (const entry of this.running()) {
      if (entry.slotName === slotName) entry.socket.close(1008, `terminating walsender: replication slot "${slotName}" was invalidated`);
    }
  }

  /**
   * StartReplication: acquires the slot, if one is named (ReplicationSlotAcquire), checks the
   * start point as PostgreSQL does, then streams until the connection, the timeline or the node
   * ends, and releases the slot. `begin` sends the command's result (CopyBoth).
   */
  async startReplication(socket: WebSocket, request: StartReplicationRequest, who: { applicationName: string; clientAddress: string }, begin: () => void): Promise<void> {
    let slot: AcquiredSlot | null = null;
    if (request.slot !== undefined) {
      if (this.slots === null) {
        throw new WalshipError('undefined_object', `replication slot "${request.slot}" does not exist`, {
          hint: 'This node keeps no replication slots (slots are kept on the primary only): stream from the primary, or leave primary_slot_name empty.',
        });
      }
      slot = this.slots.acquire(request.slot, process.pid);
    }
    try {
      await this.stream(socket, request, who, begin, slot);
    } finally {
      slot?.release();
    }
  }

  private async stream(socket: WebSocket, request: StartReplicationRequest, who: { applicationName: string; clientAddress: string }, begin: () => void, slot: AcquiredSlot | null): Promise<void> {
    const { host } = this;
    const startLsn = parseLsn(request.startLsn)!;
    const current = host.timeline();
    const history = this.history();
    let timelineEnd: { switchPoint: Lsn; nextTimeline: number } | null = null;
    if (request.timeline !== current) {
      if (!tliInHistory(request.timeline, history)) {
        throw new WalshipError(ErrorCode.invalidParameter, `requested timeline ${request.timeline} is not in this server's history`, {
          hint: `This server is on timeline ${current}.`,
        });
      }
      const { switchPoint, nextTli } = tliSwitchPoint(request.timeline, history);
      if (startLsn > switchPoint) {
        throw new WalshipError(ErrorCode.invalidParameter, `requested starting point ${formatLsn(startLsn)} on timeline ${request.timeline} is not in this server's history`, {
          detail: `This server's history forked from timeline ${request.timeline} at ${formatLsn(switchPoint)}.`,
          hint: 'The standby ran ahead on a timeline this server left: rewind it (walship rewind) or take a new base backup.',
        });
      }
      timelineEnd = { switchPoint, nextTimeline: nextTli ?? current };
    }
    const limit = host.sendLimit();
    if (timelineEnd === null && startLsn > limit) {
      throw new WalshipError(ErrorCode.invalidParameter, `requested starting point ${formatLsn(startLsn)} is ahead of the WAL flush position of this server ${formatLsn(limit)}`);
    }
    const segmentSize = host.segmentSize();
    const timelineOfSegment = (segNo: number): number => findSegmentTimeline(host.dataDir, history, segNo, segmentSize);
    const startSegNo = segmentOf(startLsn, segmentSize);
    if (startLsn < limit && !fs.existsSync(segmentPath(host.dataDir, timelineOfSegment(startSegNo), startSegNo, segmentSize))) {
      throw new WalshipError(ErrorCode.walRemoved, `requested WAL segment ${xlogFileName(timelineOfSegment(startSegNo), startSegNo, segmentSize)} has already been removed`, {
        hint: 'Keep WAL for standbys with wal_keep_size, or set restore_command on the standby to fetch it from the archive; otherwise take a new base backup.',
      });
    }

    const sendAsStored = this.sendAsStored(request, who.applicationName || 'walreceiver');
    // Direct sends carry the current timeline's WAL from the WAL buffers, over plain TCP.
    const directSocket = timelineEnd === null && host.walSndDirect !== undefined ? directSocketOf(socket) : null;
    const latch = new Latch();
    const sender = new WalSender({
      socket, latch, dataDir: host.dataDir, segmentSize, applicationName: who.applicationName || 'walreceiver',
      clientAddress: who.clientAddress, startLsn, timeline: request.timeline, timelineEnd, timelineOfSegment,
      sendLimit: () => host.sendLimit(), walSenderTimeoutMs: () => host.walSenderTimeoutMs(),
      // The WAL buffers hold only this node's current timeline.
      ...(timelineEnd === null ? { readWalBuffers: (into: Buffer, offset: number, at: Lsn, length: number) => host.readWalBuffers(into, offset, at, length) } : {}),
      sendAsStored,
      ...(directSocket !== null ? { direct: { hooks: host.walSndDirect!, socket: directSocket } } : {}),
      isStopping: () => host.isStopping(), log: host.log,
      onReply: (s: WalSender) => {
        // PhysicalConfirmReceivedLocation: the slot keeps WAL from what the standby has flushed.
        slot?.confirmReceived(s.flushLsn);
        this.syncRep?.release();
      },
      onStateChange: () => this.syncRep?.release(),
      // A standby that asked is told whether commits may wait for it (see WalSenderOptions.isSyncStandby).
      ...(request.reportSyncStandby === true ? { isSyncStandby: (): boolean => entry.priority > 0 } : {}),
    });
    const entry = new Running(sender, socket, who.applicationName || 'walreceiver', who.clientAddress, slot?.name ?? null);
    entry.priority = this.syncRep?.priorityOf(entry.applicationName) ?? 0;
    const unregister = host.registerWakeup(() => sender.walFlushed(entry.priority > 0));
    let index = this.walSnds.indexOf(undefined);
    if (index < 0) index = this.walSnds.length;
    this.walSnds[index] = entry;
    begin();
    host.log('LOG', `walsender for "${entry.applicationName}" at ${who.clientAddress} started streaming at ${formatLsn(startLsn)} on timeline ${request.timeline}${sendAsStored ? ', WAL from the segment files as stored (encrypted)' : ''}`);
    try {
      await sender.run();
    } finally {
      unregister();
      this.walSnds[index] = undefined;
      while (this.walSnds.length > 0 && this.walSnds[this.walSnds.length - 1] === undefined) this.walSnds.pop();
      this.syncRep?.release();
    }
  }

  /**
   * Whether WAL read from this node's encrypted segment files may go to this standby as stored:
   * only when it sent a WAL key identifier equal to this node's (crypto/wal-key-id.ts). A standby
   * that sent none (plain, or older) or another (another key: it could not decrypt ours, and
   * would write garbage it finds only at replay) gets plaintext, as before.
   */
  private sendAsStored(request: StartReplicationRequest, applicationName: string): boolean {
    if (request.walKeyId === undefined) return false;
    const own = walKeyIdFor(this.host.dataDir);
    if (own === null) return false;
    if (sameWalKeyId(own, request.walKeyId)) return true;
    this.host.log('LOG', `standby "${applicationName}" has another WAL key than this node: WAL is sent to it decrypted`);
    return false;
  }

  /** Ends every replication connection (promotion: the standbys reconnect to a new timeline). */
  closeAll(reason: string): void {
    for (const entry of this.running()) entry.socket.close(1001, reason.slice(0, 120));
  }

  /** After a reload: every walsender looks at its settings again. */
  configReloaded(): void {
    for (const entry of this.running()) entry.sender.configReloaded();
  }

  /** Wakes every walsender (walSndWakeup for all). */
  wakeAll(): void {
    for (const entry of this.running()) entry.sender.wakeup();
  }

  /** WalSndWaitStopping: at shutdown, waits (bounded) until every standby has what was flushed. */
  async waitStopping(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    this.wakeAll();
    while (this.count > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  rows(): ReplicationRow[] {
    const running = this.running();
    const now = getCurrentTimestamp();
    const syncStates = syncStateOf(this.syncRep?.rule ?? null, running);
    return running.map(({ sender, applicationName, clientAddr, slotName, priority }, index) => ({
      pid: process.pid,
      applicationName,
      clientAddr,
      state: sender.state,
      sentLsn: formatLsn(sender.sentLsn),
      writeLsn: formatLsn(sender.writeLsn),
      flushLsn: formatLsn(sender.flushLsn),
      replayLsn: formatLsn(sender.replayLsn),
      writeLagMs: lagMs(sender.lags.writeLagUs),
      flushLagMs: lagMs(sender.lags.flushLagUs),
      replayLagMs: lagMs(sender.lags.replayLagUs),
      syncPriority: priority,
      syncState: syncStates[index]!,
      replyTime: sender.replyTime === null ? null : timestampTzToIsoString(sender.replyTime),
      replyAgeMs: sender.lastReplyReceivedAt === null ? null : timeOffsetToMs(Math.max(0, now - sender.lastReplyReceivedAt)),
      slotName,
      backendStart: timestampTzToIsoString(sender.startedAt),
      walSndWakeups: sender.wakeups,
      standbyReplies: sender.replies,
      walBytesSent: sender.bytesSent,
      walBytesSentAsStored: sender.bytesSentAsStored,
      walBytesSentDirectly: sender.bytesSentDirectly,
    }));
  }
}

function lagMs(lagUs: number | null): number | null {
  return lagUs === null ? null : timeOffsetToMs(lagUs);
}
