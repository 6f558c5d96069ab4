/**
 * The walreceiver (walreceiver.c): started by the postmaster when the startup process asks for
 * streaming (PMSIGNAL_START_WALRECEIVER), it connects to the upstream, checks that it belongs
 * to the same system (IDENTIFY_SYSTEM), fetches the timeline history files it lacks, and streams
 * from where replay needs WAL (START_REPLICATION).
 *
 * Received WAL is written at its position into pg_wal/; once the messages that arrived together
 * are written, it is fdatasynced, and only then does the flushed position move, recovery get
 * woken (WakeupRecovery) and the upstream get a status update with write, flush and apply. A
 * keepalive that asks for a reply is answered at once; a silent upstream is pinged at half of
 * wal_receiver_timeout and given up at the whole of it. Each finished segment is marked `.done`,
 * or `.ready` with archive_mode = always, where the standby's own archiver archives it too. At
 * the end of a timeline it flushes, closes and marks the timeline's last segment, records where
 * the next timeline starts and ends; the startup process decides what follows. An encrypted
 * standby offers its WAL key identifier in START_REPLICATION; an upstream with the same WAL key
 * sends what it reads from its files as stored, and the writer thread writes it as it came
 * (or converts it, for a switch segment: wal-receive-cipher.ts).
 * It ends with an error when the upstream goes away; the startup process asks for a new one.
 */
import {
  encodeStandbyStatusUpdate, getCurrentTimestamp, timestampDifferenceMs, type TimestampTz, type WalSenderMessage,
} from '@walship/protocol';
import { ErrorCode, WalshipError, formatLsn, parseLsn, type Lsn } from '@walship/engine';
import type { ArchiveMode } from '@walship/engine/wal/archive-status';
import { WAL_RECEIVE_QUEUE_MAX_BYTES, WalReceiveWriter } from '@walship/engine/wal/wal-receive-writer';
import { existsTimeLineHistory, writeTimeLineHistoryFile } from '@walship/engine/wal/timeline';
import { walKeyIdFor } from '@walship/engine/crypto/wal-key-id';
import { ReplicationConnection } from './replication-connection.js';
import type { LatchLike } from './walsender.js';
import type { SslMode } from '@walship/protocol';

/** WalRcvState, as pg_stat_wal_receiver shows it. */
export type WalRcvState = 'stopped' | 'starting' | 'streaming' | 'waiting' | 'restarting' | 'stopping';

/**
 * WalRcvData: the walreceiver's shared state. The startup process writes the request
 * (receiveStart, receiveStartTli, conninfo, slot) and sets `starting`; only the walreceiver
 * writes the rest, most importantly flushedUpto, which replay may not read past.
 */
export interface WalRcvData {
  status: WalRcvState;
  conninfo: string;
  slotName: string;
  receiveStart: Lsn;
  receiveStartTli: number;
  /** WAL fsynced up to here (flushedUpto): recovery reads only below it. */
  flushedUpto: Lsn;
  receivedTli: number;
  writtenUpto: Lsn;
  latestWalEnd: Lsn;
  /** The upstream's send time of the message that moved latestWalEnd; 0 before any. */
  latestWalEndTime: TimestampTz;
  /** The upstream's send time of its last message; 0 before any. */
  lastMsgSendTime: TimestampTz;
  /** This node's clock when the last message arrived; 0 before any. */
  lastMsgReceiptTime: TimestampTz;
  upstream: string;
  /**
   * Date.now() when the walreceiver was asked to start or started, in ms: the postmaster sets it
   * and the startup process compares it with Date.now() to give up on a walreceiver that stays
   * STARTING (a 10 s rule, where microseconds would add nothing).
   */
  startTime: number;
  /** Set at the end of a timeline: where the upstream's next timeline starts. */
  endOfTimeline: { nextTimeline: number; startLsn: Lsn } | null;
  lastError: string | null;
  /**
   * WAL bytes received since the node started, and of them those received as stored
   * (ciphertext from an upstream with this node's WAL key, written without running the cipher).
   */
  walBytesReceived: number;
  walBytesReceivedAsStored: number;
}

export function newWalRcvData(): WalRcvData {
  return {
    status: 'stopped', conninfo: '', slotName: '', receiveStart: 0 as Lsn, receiveStartTli: 0, flushedUpto: 0 as Lsn,
    receivedTli: 0, writtenUpto: 0 as Lsn, latestWalEnd: 0 as Lsn, latestWalEndTime: 0 as TimestampTz,
    lastMsgSendTime: 0 as TimestampTz, lastMsgReceiptTime: 0 as TimestampTz, upstream: '', startTime: 0, endOfTimeline: null,
    lastError: null, walBytesReceived: 0, walBytesReceivedAsStored: 0,
  };
}

export interface WalReceiverOptions {
  shared: WalRcvData;
  host: string;
  port: number;
  user?: string;
  password?: string;
  /** primary_conninfo's sslmode (default prefer), sslrootcert, sslcert and sslkey (resolved against the data directory). */
  sslmode?: SslMode;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  applicationName: string;
  dataDir: string;
  segmentSize: number;
  /** This node's system identifier: the upstream must have the same. */
  systemId: bigint;
  latch: LatchLike;
  isStopping: () => boolean;
  /** The replay position, reported as `apply`. */
  replayPosition: () => Lsn;
  /** WakeupRecovery: sets the startup process's latch. */
  wakeupRecovery: () => void;
  /**
   * Whether the commits waiting for this standby most likely wait for its apply position
   * (remote_apply): the last commit recovery replayed asked for it. Recovery reports that
   * position (WalRcvForceReply) as soon as it has replayed what a flush brought, so the flush's
   * own reply is then held for that one (onWriterProgress). Absent: never.
   */
  applyFeedbackExpected?: () => boolean;
  /** Runs when the flushed position moved (cascading walsenders). */
  onFlushed?: (flushed: Lsn) => void;
  /**
   * archive_mode as the node runs with it: finished segments are marked `.done`, or `.ready`
   * with `always` (default off: `.done`).
   */
  archiveMode?: ArchiveMode;
  /** A finished segment was marked `.ready`: wake the archiver (PgArchWakeup). */
  onArchiveNotify?: (fileName: string) => void;
  statusIntervalMs: () => number;
  receiverTimeoutMs: () => number;
  connectTimeoutMs: number;
  log: (level: 'LOG' | 'WARNING' | 'FATAL', message: string) => void;
  /** The clock (GetCurrentTimestamp by default): reply, receipt and timeout times. */
  now?: () => TimestampTz;
}

export class WalReceiver {
  private connection: ReplicationConnection | null = null;
  /** The write-and-fsync thread (walreceiver.c's XLogWalRcvWrite / XLogWalRcvFlush). */
  private files: WalReceiveWriter | null = null;
  /** Reading paused while the writer thread has too much queued. */
  private paused = false;
  /** The upstream ended the timeline; the last segment is being finished before we end. */
  private endingTimeline = false;
  private lastReplyTime = 0 as TimestampTz;
  private lastReplied = { write: -1, flush: -1, apply: -1 };
  private pingSent = false;
  /**
   * Whether commits on the upstream may wait for this standby's write or flush, as its walsender
   * last said (Keepalive.syncStandby); true until it says otherwise, so that an upstream that
   * never tells (an older walsender) gets every reply at once.
   */
  private syncStandby = true;
  /** A written-and-flushed reply held for recovery's (onWriterProgress), with its fallback at the end of the turn. */
  private replyHeld = false;
  private ended: Error | null | undefined = undefined;
  private readonly now: () => TimestampTz;
  /** This node's WAL key identifier as offered in START_REPLICATION; null: not encrypted, none offered. */
  private walKeyId: Buffer | null = null;

  /** Aborted by stop(): ends a connection attempt in progress. */
  private readonly stopped = new AbortController();

  constructor(private readonly options: WalReceiverOptions) {
    this.now = options.now ?? getCurrentTimestamp;
  }

  /** WalReceiverMain: connects, streams until the connection, the timeline or the node ends. */
  async run(): Promise<void> {
    const { options } = this;
    const shared = options.shared;
    const startLsn = shared.receiveStart;
    const timeline = shared.receiveStartTli;
    shared.upstream = `${options.host}:${options.port}`;
    shared.startTime = Date.now();
    shared.endOfTimeline = null;
    shared.lastError = null;
    this.syncStandby = true;
    try {
      const connection = await ReplicationConnection.connect({
        host: options.host, port: options.port, applicationName: options.applicationName, timeoutMs: options.connectTimeoutMs, signal: this.stopped.signal,
        ...(options.user !== undefined ? { user: options.user } : {}),
        ...(options.password !== undefined ? { password: options.password } : {}),
        ...(options.sslmode !== undefined ? { sslmode: options.sslmode } : {}),
        ...(options.sslrootcert !== undefined ? { sslrootcert: options.sslrootcert } : {}),
        ...(options.sslcert !== undefined ? { sslcert: options.sslcert } : {}),
        ...(options.sslkey !== undefined ? { sslkey: options.sslkey } : {}),
      });
      this.connection = connection;
      const system = await connection.request('identifySystem', {});
      if (system.systemId !== options.systemId.toString()) {
        throw new WalshipError(ErrorCode.protocolViolation, 'database system identifier differs between the primary and standby', {
          severity: 'FATAL',
          detail: `The primary's identifier is ${system.systemId}, the standby's identifier is ${options.systemId}.`,
          hint: 'This standby was not made from this primary. Take a new base backup from it with walship basebackup.',
        });
      }
      if (system.timeline < timeline) {
        throw new WalshipError(ErrorCode.protocolViolation, `highest timeline ${system.timeline} of the primary is behind recovery timeline ${timeline}`, { severity: 'FATAL' });
      }
      await this.fetchTimelineHistories(connection, timeline, system.timeline);
      // An encrypted standby offers its WAL key identifier: an upstream with the same key then
      // sends WAL from its files as stored, and neither side runs the cipher over it.
      this.walKeyId = walKeyIdFor(options.dataDir);
      await connection.request('startReplication', {
        startLsn: formatLsn(startLsn), timeline, ...(shared.slotName ? { slot: shared.slotName } : {}), ...(this.walKeyId !== null ? { walKeyId: this.walKeyId } : {}),
        reportSyncStandby: true,
      });
      options.log('LOG', `started streaming WAL from primary at ${formatLsn(startLsn)} on timeline ${timeline}`);
      this.files = new WalReceiveWriter({
        dataDir: options.dataDir, timeline, segmentSize: options.segmentSize, startLsn, archiveMode: options.archiveMode ?? 'off',
        onProgress: (written, flushed, flushMoved) => this.onWriterProgress(written, flushed, flushMoved),
        onStatus: (fileName, status, error) => {
          if (error !== null) options.log('LOG', `could not create archive status file "pg_wal/archive_status/${fileName}.${status}": ${error}`);
          else if (status === 'ready') options.onArchiveNotify?.(fileName);
        },
        // An fsync failure is never retried (DESIGN.md section 3): the walreceiver ends.
        onFailure: (error) => this.end(new WalshipError(ErrorCode.ioError, `could not write or fsync received WAL: ${error.message}`, { severity: 'PANIC' })),
      });
      shared.status = 'streaming';
      shared.receivedTli = timeline;
      shared.writtenUpto = startLsn;
      shared.flushedUpto = startLsn;
      shared.lastMsgReceiptTime = this.now();
      connection.onStream((message) => this.onMessage(message), (error) => this.end(error));
      this.sendReply(false, false);
      await this.loop();
    } catch (error) {
      this.end(error as Error);
    } finally {
      this.connection?.terminate();
      // Everything received is written and flushed before the startup process is told we ended.
      await this.files?.close();
      if (shared.status !== 'waiting') shared.status = 'stopped';
    }
    if (this.ended instanceof Error) {
      shared.lastError = this.ended.message;
      throw this.ended;
    }
  }

  /** WalRcvFetchTimeLineHistoryFiles: the history files of timelines newer than ours that we lack. */
  private async fetchTimelineHistories(connection: ReplicationConnection, first: number, last: number): Promise<void> {
    for (let tli = Math.max(2, first); tli <= last; tli++) {
      if (existsTimeLineHistory(this.options.dataDir, tli)) continue;
      const history = await connection.request('timelineHistory', { timeline: tli });
      this.options.log('LOG', `fetching timeline history file for timeline ${tli} from primary server`);
      writeTimeLineHistoryFile(this.options.dataDir, tli, history.content);
    }
  }

  private async loop(): Promise<void> {
    const { options } = this;
    while (this.ended === undefined && !options.isStopping()) {
      const now = this.now();
      const silentMs = timestampDifferenceMs(options.shared.lastMsgReceiptTime, now);
      const timeout = options.receiverTimeoutMs();
      if (timeout > 0 && silentMs >= timeout) {
        this.end(new WalshipError(ErrorCode.cannotConnectNow, 'terminating walreceiver due to timeout'));
        break;
      }
      if (timeout > 0 && silentMs >= timeout / 2 && !this.pingSent) {
        this.sendReply(true, true);
        this.pingSent = true;
      }
      this.sendReply(false, false);
      const statusIntervalMs = options.statusIntervalMs();
      const untilStatus = statusIntervalMs > 0 ? statusIntervalMs - timestampDifferenceMs(this.lastReplyTime, now) : Number.POSITIVE_INFINITY;
      const untilPing = timeout > 0 ? timeout / 2 - silentMs : Number.POSITIVE_INFINITY;
      await options.latch.wait(Math.max(10, Math.min(untilStatus, this.pingSent ? timeout - silentMs : untilPing, 10_000)));
    }
    if (options.isStopping() && this.ended === undefined) options.shared.status = 'stopping';
  }

  private onMessage(message: WalSenderMessage): void {
    const shared = this.options.shared;
    const now = this.now();
    shared.lastMsgReceiptTime = now;
    this.pingSent = false;
    switch (message.type) {
      case 'xlogData': {
        if (message.encryptedTimeline !== undefined && this.walKeyId === null) {
          // Never asked for: this directory is not encrypted, so these bytes are not WAL here.
          this.end(new WalshipError(ErrorCode.protocolViolation, 'received WAL as stored (encrypted) from the primary without asking for it', {
            detail: `This standby's data directory is not encrypted; the WAL at ${formatLsn(message.dataStart as Lsn)} came encrypted under timeline ${message.encryptedTimeline}.`,
          }));
          return;
        }
        shared.lastMsgSendTime = message.sendTime;
        shared.latestWalEnd = message.walEnd as Lsn;
        shared.latestWalEndTime = message.sendTime;
        shared.walBytesReceived += message.data.length;
        if (message.encryptedTimeline !== undefined) shared.walBytesReceivedAsStored += message.data.length;
        // Written, and fsynced once the messages that arrived together are, on the writer thread.
        this.files!.write(message.dataStart as Lsn, message.data, message.encryptedTimeline ?? null);
        if (!this.paused && this.files!.queuedBytes > WAL_RECEIVE_QUEUE_MAX_BYTES) {
          this.paused = true;
          this.connection?.pause();
        }
        break;
      }
      case 'keepalive':
        shared.lastMsgSendTime = message.sendTime;
        if (message.walEnd > shared.latestWalEnd) {
          shared.latestWalEnd = message.walEnd as Lsn;
          shared.latestWalEndTime = message.sendTime;
        }
        if (message.syncStandby !== undefined) this.syncStandby = message.syncStandby;
        // What the writer thread has confirmed so far; it reports again as it flushes.
        if (message.replyRequested) this.sendReply(true, false);
        break;
      case 'endOfTimeline': {
        const startLsn = parseLsn(message.nextTimelineStartLsn)!;
        this.endingTimeline = true;
        this.files!.endOfTimeline().then(() => {
          shared.endOfTimeline = { nextTimeline: message.nextTimeline, startLsn };
          this.options.log('LOG', `replication terminated by primary server: End of WAL reached on timeline ${shared.receivedTli} at ${formatLsn(startLsn)}`);
          shared.status = 'waiting';
          this.end(null);
        }, (error: unknown) => this.end(error as Error));
        break;
      }
      case 'error':
        this.end(new WalshipError(message.code, `could not receive data from WAL stream: ${message.message}`, {
          ...(message.hint !== undefined ? { hint: message.hint } : {}),
        }));
        break;
      case 'copyDone':
        // After an end of timeline, the walreceiver ends once the timeline's last segment is finished.
        if (!this.endingTimeline) this.end(null);
        break;
      default:
        break;
    }
    // The loop is not woken for the message itself: it only acts on time (the status interval,
    // the ping at half of wal_receiver_timeout, the timeout), and it reads the fresh receipt time
    // when its own sleep ends. An ending stream wakes it through end(). Waking it for every WAL
    // message was a loop turn per commit that found nothing to do.
  }

  /**
   * The writer thread wrote or fsynced more (XLogWalRcvFlush's second half): publish, reply, then
   * wake recovery and cascading walsenders when the flushed position moved.
   *
   * The reply goes at once, as PostgreSQL's walreceiver sends one right after each write and each
   * flush, when a commit may be waiting for it: this standby is named in the upstream's
   * synchronous_standby_names (or the upstream never said), or recovery is behind. Recovery,
   * woken next, replays what was flushed as soon as this returns and, about to wait for more WAL,
   * forces a reply with the new apply position (WalRcvForceReply) for remote_apply and the replay
   * lag. Holding the flush reply for that one (one reply per flush instead of two) held every
   * commit of a synchronous standby for the replay: at 1 client at synchronous_commit = on,
   * scripts/bench/ab.mjs --sync-commit on measured 13 to 23% fewer commits/s. An asynchronous
   * standby that has replayed all it had flushed holds it: nobody waits for its flush position,
   * and on the upstream every reply costs a wake-up, a read and a decode (about 23 us at 8
   * clients); one commit at a time, it sends one reply per commit instead of two. A held reply
   * goes at the end of this event-loop turn if recovery's has not carried it by then, so that the
   * flush position reaches the upstream at most a turn late; a standby catching up (recovery
   * behind) replies at once, for its slot and the upstream's view of its flush. Its write_lag and
   * flush_lag then read about as its replay_lag: what they measure, when the upstream heard.
   * A synchronous standby holds it the same way while its commits ask for remote_apply (the last
   * one replayed did: applyFeedbackExpected): their waits end only with the apply reply, which
   * then carries write and flush too, one reply per flush instead of two. A commit at `on` after
   * them waits for its flush reply one replay longer, and the next one not at all.
   */
  private onWriterProgress(written: Lsn, flushed: Lsn, flushMoved: boolean): void {
    const shared = this.options.shared;
    shared.writtenUpto = written;
    if (this.paused && this.files !== null && this.files.queuedBytes <= WAL_RECEIVE_QUEUE_MAX_BYTES / 4) {
      this.paused = false;
      this.connection?.resume();
    }
    const hold = flushMoved && (!this.syncStandby || this.options.applyFeedbackExpected?.() === true) &&
      this.options.replayPosition() >= shared.flushedUpto;
    if (!hold) this.sendReply(false, false);
    if (!flushMoved) return;
    shared.flushedUpto = flushed;
    this.options.wakeupRecovery();
    this.options.onFlushed?.(flushed);
    if (hold) this.holdReply();
  }

  /** The held reply's fallback: after recovery's replay (woken by setNow, in this callback's microtasks). */
  private holdReply(): void {
    if (this.replyHeld) return;
    this.replyHeld = true;
    setImmediate(this.sendHeldReply);
  }

  /** Made once: the fallback is scheduled on every flush of an asynchronous standby. */
  private readonly sendHeldReply = (): void => {
    this.replyHeld = false;
    // Skipped when recovery's reply already carried these positions.
    this.sendReply(false, false);
  };

  /**
   * Reports the replay position at once (WalRcvForceReply: remote_apply's feedback, a replayed
   * heartbeat, recovery about to wait for WAL). A reply identical to the last one sent is not
   * repeated: this walreceiver already replies whenever a position moves, and the upstream's
   * lag tracker reads two identical fully-applied replies in a row as an idle standby and clears
   * its lags, so every heartbeat's figures were wiped out by the duplicate of its own reply.
   * (A keepalive that asks for a reply is still answered, identical or not.)
   */
  forceReply(): void {
    if (this.files !== null && this.files.written === this.lastReplied.write && this.files.flushed === this.lastReplied.flush &&
        this.options.replayPosition() === this.lastReplied.apply) return;
    this.sendReply(true, false);
  }

  /**
   * XLogWalRcvSendReply: write, flush and apply positions. Unforced replies are skipped while
   * nothing moved and wal_receiver_status_interval has not passed, and always with an interval
   * of 0, which turns status updates off (only forced ones go).
   */
  private sendReply(force: boolean, requestReply: boolean): void {
    if (this.connection === null || this.files === null) return;
    if (!force && this.options.statusIntervalMs() <= 0) return;
    const now = this.now();
    const write = this.files.written;
    const flush = this.files.flushed;
    const apply = this.options.replayPosition();
    const unchanged = write === this.lastReplied.write && flush === this.lastReplied.flush && apply === this.lastReplied.apply;
    if (!force && unchanged && timestampDifferenceMs(this.lastReplyTime, now) < this.options.statusIntervalMs()) return;
    this.lastReplied = { write, flush, apply };
    this.lastReplyTime = now;
    this.connection.send(encodeStandbyStatusUpdate({ type: 'standbyStatusUpdate', write, flush, apply, sendTime: now, replyRequested: requestReply }));
  }

  private end(error: Error | null): void {
    if (this.ended !== undefined) return;
    this.ended = error;
    this.options.latch.set();
  }

  /** Stops streaming (the startup process no longer wants WAL, or the node stops), a connection attempt included. */
  stop(): void {
    this.end(null);
    this.stopped.abort();
    this.connection?.terminate();
  }
}
