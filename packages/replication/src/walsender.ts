/**
 * The walsender (walsender.c's WalSndLoop and XLogSendPhysical): one per standby connection,
 * streaming WAL from `startLsn` on `timeline`.
 *
 * It never polls. It sleeps on its latch; the latch is set by walSndWakeup, which XLogWrite's
 * completion serves on a primary (and the walreceiver's flush or replay on a cascading standby),
 * and by the standby's replies and the socket draining. Each time it wakes it sends what became
 * sendable — flushed WAL on a primary — in chunks of at most MAX_SEND_SIZE, read straight from
 * the segment files into the outgoing frame.
 *
 * It processes replies (write/flush/apply positions, lags from the lag tracker on this node's
 * clock), pings a silent standby at half of wal_sender_timeout and ends the connection at the
 * whole of it. On a timeline older than the current one it stops at the switch point and says
 * which timeline comes next (end of timeline). To a standby that proved it has this node's WAL
 * key (`sendAsStored`), WAL read from encrypted segment files goes as stored, ciphertext labelled
 * with the timeline of its file, so that neither side runs the cipher over it; WAL from the
 * buffers, and everything to other standbys, goes as plaintext. Started by the replication
 * session on START_REPLICATION; ends with the connection or at shutdown once the standby has
 * received everything flushed (WalSndWaitStopping); a crash here is the walsender's alone.
 */
import {
  allocXLogDataFrame, allocXLogDataFrameAsStored, decodeReplicationFrame, encodeKeepalive, encodeReplicationMessage, finishXLogDataFrame,
  getCurrentTimestamp, timestampDifferenceMs, writeXLogDataHeader, MAX_SEND_SIZE, XLOG_DATA_AS_STORED_HEADER_BYTES, XLOG_DATA_HEADER_BYTES,
  type TimestampTz,
} from '@walship/protocol';
import { ErrorCode, WalshipError, formatLsn, type Lsn } from '@walship/engine';
import { WalFileReader } from '@walship/engine/wal/wal-files';
import { segmentOf, segmentStart } from '@walship/engine/wal/xlog-internal';
import { XLOG_BLCKSZ } from '@walship/engine/constants';
import { WalSndDirectState } from '@walship/engine/wal/walsnd-direct';
import { createLagTracker, lagTrackerWrite, processStandbyReplyLags, INITIAL_REPLY_LAG_STATE, type LagTracker, type ReplyLagState } from './lag-tracker.js';

/**
 * Bytes a walsender may have handed to the socket and not yet seen written: a standby that reads
 * slowly cannot make its primary buffer more than this (DESIGN.md section 6). 16 chunks of
 * MAX_SEND_SIZE keep a fast link busy while a slow one is waited for.
 */
export const WAL_SENDER_BUFFERED_BYTES_MAX = 16 * MAX_SEND_SIZE;

/** The latch interface a walsender sleeps on (the server's Latch). */
export interface LatchLike {
  set(): void;
  /** Set, waking a waiter of this thread once the setter's synchronous work is done. */
  setNow(): void;
  wait(timeoutMs: number): Promise<boolean>;
}

/** The few socket operations a walsender needs (a `ws` WebSocket fits). */
export interface ReplicationSocket {
  send(data: Buffer, callback: (error?: Error) => void): void;
  close(code?: number, reason?: string): void;
  on(event: 'message', listener: (data: Buffer) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
}

export type WalSenderState = 'startup' | 'catchup' | 'streaming' | 'stopping';

/**
 * Direct sends (the engine's wal/walsnd-direct.ts): while a walsender is caught up, whoever
 * flushes WAL on the primary writes it to the standby's socket, and the walsender only takes in
 * what was sent. `arm` hands the socket over (null: not now); the slot says what was sent and
 * whether the socket was given back, and `release` takes it back.
 */
export interface WalSndDirectHooks {
  arm(fd: number, sentLsn: Lsn): WalSndDirectSlot | null;
}

export interface WalSndDirectSlot {
  read(): { state: WalSndDirectState; sent: number; sendTime: number };
  release(): { sent: number; sendTime: number; rest: Buffer | null };
}

/** The plain TCP socket under a replication connection, as direct sends need it. */
export interface DirectSocket {
  /** Its descriptor; -1 once closed. */
  fd(): number;
  /** Bytes written to it in this process and not yet handed to the kernel. */
  writableLength(): number;
  /** Writes bytes as they are (the rest of a frame a direct send cut short), ahead of later frames. */
  writeRaw(bytes: Buffer): void;
  /** Runs `beforeClose` just before the descriptor is closed. */
  onBeforeClose(beforeClose: () => void): void;
}

export interface WalSenderOptions {
  socket: ReplicationSocket;
  /** Direct sends, on a primary's current timeline over plain TCP; absent: this walsender sends everything. */
  direct?: { hooks: WalSndDirectHooks; socket: DirectSocket };
  latch: LatchLike;
  dataDir: string;
  segmentSize: number;
  applicationName: string;
  clientAddress: string;
  startLsn: Lsn;
  timeline: number;
  /** Where this timeline's WAL ends, when it is an older one; null for the current timeline. */
  timelineEnd: { switchPoint: Lsn; nextTimeline: number } | null;
  /** Which timeline's file holds a segment. */
  timelineOfSegment: (segNo: number) => number;
  /** How far WAL may be sent: the flush position on a primary, received/replayed on a cascading standby. */
  sendLimit: () => Lsn;
  /**
   * XLogReadFromBuffers: copies WAL of the timeline being sent from the WAL buffers when it is
   * still there (a primary's current timeline), returning false otherwise; the segment files are
   * read then. Absent: always the files.
   */
  readWalBuffers?: (into: Buffer, offset: number, startLsn: Lsn, length: number) => boolean;
  /**
   * The standby holds this node's WAL key (its key identifier matched): WAL read from encrypted
   * segment files may go as stored. Ignored when this node's files are not encrypted.
   */
  sendAsStored?: boolean;
  walSenderTimeoutMs: () => number;
  isStopping: () => boolean;
  log: (level: 'LOG' | 'WARNING', message: string) => void;
  /** Runs after each standby reply, for sync rep and slots. */
  onReply?: (sender: WalSender) => void;
  /**
   * Runs after `state` changed: only a streaming walsender counts towards synchronous
   * replication, so its release rule is recomputed when one starts or stops streaming.
   */
  onStateChange?: (sender: WalSender) => void;
  /** The clock (GetCurrentTimestamp by default): sample, send, reply and timeout times. */
  now?: () => TimestampTz;
  /**
   * For a standby that asked (`startReplication.reportSyncStandby`): whether commits may wait for
   * its write or flush (named in synchronous_standby_names). The walsender tells the standby in a
   * keepalive when it starts and whenever this changes, before the WAL it sends next, and in every
   * keepalive; a standby that is not waited for may hold its flush reply for the applied position
   * that follows it (WalReceiver.onWriterProgress). Absent: the standby is never told.
   */
  isSyncStandby?: () => boolean;
}

export class WalSender {
  state: WalSenderState = 'startup';
  /** Sent up to here (sentPtr). */
  sentLsn: Lsn;
  writeLsn: Lsn = 0 as Lsn;
  flushLsn: Lsn = 0 as Lsn;
  replayLsn: Lsn = 0 as Lsn;
  /** The standby's clock in its last reply (PostgreSQL's replyTime). */
  replyTime: TimestampTz | null = null;
  /**
   * This node's clock when the standby's last status update arrived, null before the first: how
   * long a standby has been silent, measured without comparing two machines' clocks.
   */
  lastReplyReceivedAt: TimestampTz | null = null;
  lags: ReplyLagState = INITIAL_REPLY_LAG_STATE;
  /** How many times walSndWakeup woke this walsender (tests prove path 1 with it). */
  wakeups = 0;
  /** Status updates received from the standby. */
  replies = 0;
  /** WAL bytes sent, and of them those sent as stored (ciphertext, no cipher run on either side). */
  bytesSent = 0;
  bytesSentAsStored = 0;
  /** Of bytesSent, what direct sends wrote. */
  bytesSentDirectly = 0;
  private directSlot: WalSndDirectSlot | null = null;
  private closeHooked = false;
  readonly startedAt: TimestampTz;
  private readonly tracker: LagTracker = createLagTracker();
  private readonly reader: WalFileReader;
  private readonly asStored: boolean;
  private readonly now: () => TimestampTz;
  private bufferedBytes = 0;
  private lastReceiptTime: TimestampTz;
  private pingSent = false;
  /** What the standby was last told by `isSyncStandby` (null: nothing yet, or it did not ask). */
  private toldSyncStandby: boolean | null = null;
  private closed = false;
  private failure: Error | null = null;

  constructor(private readonly options: WalSenderOptions) {
    this.now = options.now ?? getCurrentTimestamp;
    this.sentLsn = options.startLsn;
    this.startedAt = this.now();
    this.lastReceiptTime = this.startedAt;
    this.reader = new WalFileReader(options.dataDir, options.timelineOfSegment, options.segmentSize);
    this.asStored = options.sendAsStored === true && this.reader.encrypted;
    options.socket.on('message', (data) => this.processReply(data));
    options.socket.on('close', () => {
      this.closed = true;
      options.latch.set();
    });
  }

  /**
   * walSndWakeup: there may be new WAL to send. `onCommitPath` for a synchronous standby's
   * walsender: commits wait for its reply, so it sends as soon as the flush's own work is done
   * (Latch.setNow), as PostgreSQL wakes the walsenders right after XLogWrite and before the
   * backend waits in SyncRepWaitForLSN. With set() a flush done on the main thread, in the check
   * phase, was sent only in the next event-loop turn. Another walsender keeps set(): the
   * commits' replies to their clients go first.
   */
  wakeup(onCommitPath = false): void {
    this.wakeups++;
    if (onCommitPath) this.options.latch.setNow();
    else this.options.latch.set();
  }

  /**
   * walSndWakeup from a flush. While the socket is handed over and its slot armed, the loop is
   * not woken: the flusher sends this WAL itself, a turn would only find the slot armed, and the
   * flusher wakes every walsender when it gives a socket back. At 1 client that was a turn per
   * commit and standby on the primary's main thread for nothing.
   */
  walFlushed(onCommitPath: boolean): void {
    const slot = this.directSlot;
    if (slot !== null && slot.read().state === WalSndDirectState.armed) {
      this.wakeups++;
      return;
    }
    this.wakeup(onCommitPath);
  }

  /**
   * The configuration was reloaded (SIGHUP sets every process's latch): the loop computes its
   * sleep again from wal_sender_timeout. Replies do not wake it, so without this a walsender
   * asleep for half of the old timeout would notice a shorter one only then.
   */
  configReloaded(): void {
    this.options.latch.set();
  }

  /** WalSndLoop: runs until the connection ends, the timeline ends, or shutdown. */
  async run(): Promise<void> {
    const { options } = this;
    this.setState('catchup');
    try {
      while (!this.closed && this.failure === null) {
        const stopping = options.isStopping();
        this.tellSyncStandby();
        const sent = this.sendSome();
        if (this.failure !== null) break;
        if (this.timelineDone()) {
          this.sendEndOfTimeline();
          break;
        }
        if (!sent && this.state === 'catchup' && this.sentLsn >= this.limit()) {
          options.log('LOG', `standby "${options.applicationName}" has now caught up with primary`);
          this.setState('streaming');
        }
        if (!sent) this.handOverIfCaughtUp();
        // WalSndWaitStopping: at shutdown, leave once the standby has everything flushed.
        if (stopping && this.sentLsn >= this.limit() && this.flushLsn >= this.sentLsn) break;
        if (!this.checkTimeout()) break;
        if (sent) continue;
        await options.latch.wait(this.sleepMs(stopping));
      }
    } finally {
      this.takeBackSocket(true);
      this.reader.close();
      this.setState('stopping');
    }
    if (this.failure !== null) throw this.failure;
  }

  private setState(state: WalSenderState): void {
    if (this.state === state) return;
    this.state = state;
    this.options.onStateChange?.(this);
  }

  private limit(): Lsn {
    const limit = this.options.sendLimit();
    const end = this.options.timelineEnd;
    return end !== null && end.switchPoint < limit ? end.switchPoint : limit;
  }

  private timelineDone(): boolean {
    const end = this.options.timelineEnd;
    return end !== null && this.sentLsn >= end.switchPoint;
  }

  /**
   * Takes in what direct sends sent; true while they still have the socket. Lag samples are the
   * sends' own times, as this walsender's LagTrackerWrite would have taken them.
   */
  private takeInDirectSends(): boolean {
    const slot = this.directSlot;
    if (slot === null) return false;
    const { state, sent, sendTime } = slot.read();
    this.advanceDirectly(sent, sendTime);
    if (state === WalSndDirectState.armed) return true;
    this.takeBackSocket(true);
    return false;
  }

  private advanceDirectly(sent: number, sendTime: number): void {
    if (sent <= this.sentLsn) return;
    lagTrackerWrite(this.tracker, sent as Lsn, sendTime as TimestampTz);
    this.bytesSent += sent - this.sentLsn;
    this.bytesSentDirectly += sent - this.sentLsn;
    this.sentLsn = sent as Lsn;
  }

  /**
   * Ends direct sends (before this walsender writes anything else, and before the socket closes):
   * writes the rest of a frame one of them cut short, unless the socket is closing.
   */
  private takeBackSocket(writeRest: boolean): void {
    const slot = this.directSlot;
    if (slot === null) return;
    this.directSlot = null;
    const { sent, sendTime, rest } = slot.release();
    this.advanceDirectly(sent, sendTime);
    if (rest !== null && writeRest) this.options.direct!.socket.writeRaw(rest);
  }

  /** Hands the socket to direct sends: caught up, streaming, nothing of its own still being written. */
  private handOverSocket(): void {
    const direct = this.options.direct;
    if (direct === undefined || this.directSlot !== null || this.asStored) return;
    if (this.bufferedBytes !== 0 || direct.socket.writableLength() !== 0) return;
    const fd = direct.socket.fd();
    if (fd < 0) return;
    if (!this.closeHooked) {
      this.closeHooked = true;
      direct.socket.onBeforeClose(() => this.takeBackSocket(false));
    }
    this.directSlot = direct.hooks.arm(fd, this.sentLsn);
  }

  /**
   * Hands the socket to direct sends if this walsender is streaming and caught up: on a loop turn
   * that found nothing to send, and when its last frame has left. A lone committer's walsender
   * never has such a turn (each flush wakes it with new WAL, it sends, its frame is still being
   * written when the turn ends, it sleeps until the next flush): without the second, its WAL
   * never left directly (walBytesSentDirectly stayed 0 at 1 client).
   */
  private handOverIfCaughtUp(): void {
    if (this.closed || this.failure !== null || this.state !== 'streaming' || this.options.isStopping()) return;
    if (this.sentLsn >= this.limit()) this.handOverSocket();
  }

  /** XLogSendPhysical: sends one chunk if there is WAL and room; returns whether it sent. */
  private sendSome(): boolean {
    if (this.takeInDirectSends()) return false;
    const limit = this.limit();
    if (this.sentLsn >= limit) return false;
    // LagTrackerWrite(SendRqstPtr, now): the time is read right after the send limit, so it
    // approximates when that WAL was flushed here; taken after reading the WAL or after waiting
    // out a full socket buffer, it would leave that time out of every lag.
    lagTrackerWrite(this.tracker, limit, this.now());
    if (this.bufferedBytes >= WAL_SENDER_BUFFERED_BYTES_MAX) return false;
    let end = Math.min(limit, this.sentLsn + MAX_SEND_SIZE);
    // A chunk that stops short of the limit ends at a page boundary, as PostgreSQL's does.
    if (end < limit && end % XLOG_BLCKSZ !== 0) end -= end % XLOG_BLCKSZ;
    if (end <= this.sentLsn) end = Math.min(limit, this.sentLsn + MAX_SEND_SIZE);
    // Sent as stored, a chunk comes from one file: it is labelled with that file's timeline, and
    // the next segment may be another timeline's file. (A segment boundary is a page boundary.)
    if (this.asStored) end = Math.min(end, segmentStart(segmentOf(this.sentLsn, this.options.segmentSize) + 1, this.options.segmentSize));
    const length = end - this.sentLsn;
    let frame: Buffer;
    try {
      frame = this.asStored ? this.readAsStored(length, limit) : this.readPlain(length, limit);
    } catch (error) {
      this.fail(error);
      return false;
    }
    this.bytesSent += length;
    this.bufferedBytes += frame.length;
    this.options.socket.send(frame, (error) => {
      const full = this.bufferedBytes >= WAL_SENDER_BUFFERED_BYTES_MAX;
      this.bufferedBytes -= frame.length;
      if (error !== undefined && error !== null) this.closed = true;
      // Only a walsender that found the socket full, or one whose socket failed, waits for
      // this: waking it after every frame was a loop turn per send for nothing.
      if (this.closed || (full && this.bufferedBytes < WAL_SENDER_BUFFERED_BYTES_MAX)) this.options.latch.set();
      else if (this.bufferedBytes === 0) this.handOverIfCaughtUp();
    });
    this.sentLsn = end as Lsn;
    return true;
  }

  /** A 'w' frame of `length` bytes from sentLsn, read from the WAL buffers or decrypted from the files. */
  private readPlain(length: number, limit: Lsn): Buffer {
    const frame = allocXLogDataFrame(length);
    if (this.options.readWalBuffers?.(frame, XLOG_DATA_HEADER_BYTES, this.sentLsn, length) !== true) {
      this.reader.read(frame, XLOG_DATA_HEADER_BYTES, this.sentLsn, length);
    }
    // The send time is filled in last, after the read, as PostgreSQL does.
    writeXLogDataHeader(frame, this.sentLsn, limit, this.now());
    return frame;
  }

  /**
   * The same for a standby that takes WAL as stored: the file's bytes as they are, in an 'e'
   * frame with the file's timeline; or, once the standby is streaming, from the WAL buffers when
   * the WAL is still there (plaintext: a 'w' frame, which the standby encrypts as it writes).
   * While it catches up the files are read even for WAL the buffers hold: a standby that is
   * behind is bound by its own CPU, and a whole chunk from the files costs this node one read
   * where the plaintext would cost the standby 128 kB of AES; once it streams, small chunks from
   * the buffers spare this node a read per commit, as PostgreSQL's XLogReadFromBuffers does.
   * The buffer has room for the longer header; finishXLogDataFrame picks the frame (no copy).
   *
   * The file's timeline need not be the one streamed: the segment holding a switch point is read
   * from the newer timeline's file (findSegmentTimeline), whose part before the switch point the
   * promotion re-encrypted under the newer timeline. The label says so, and the standby, which
   * writes into a file of the streamed timeline, converts those bytes (WalReceiveFiles). Not sent
   * as plaintext instead: the standby must check the label against its file anyway, and one rule
   * in one place (the receiving end, which knows the file it writes) is simpler than two.
   */
  private readAsStored(length: number, limit: Lsn): Buffer {
    const buffer = allocXLogDataFrameAsStored(length);
    let timeline: number | null = null;
    const fromBuffers = this.state !== 'catchup' &&
      this.options.readWalBuffers?.(buffer, XLOG_DATA_AS_STORED_HEADER_BYTES, this.sentLsn, length) === true;
    if (!fromBuffers) timeline = this.reader.readStored(buffer, XLOG_DATA_AS_STORED_HEADER_BYTES, this.sentLsn, length);
    const frame = finishXLogDataFrame(buffer, this.sentLsn, limit, this.now(), timeline);
    if (timeline !== null) this.bytesSentAsStored += length;
    return frame;
  }

  private sendEndOfTimeline(): void {
    this.takeBackSocket(true);
    const end = this.options.timelineEnd!;
    this.options.socket.send(encodeReplicationMessage({
      type: 'endOfTimeline', nextTimeline: end.nextTimeline, nextTimelineStartLsn: formatLsn(end.switchPoint),
    }), () => undefined);
  }

  /** ProcessRepliesIfAny + ProcessStandbyReplyMessage. */
  private processReply(data: Buffer): void {
    // What direct sends sent is taken in first: the reply may cover it.
    this.takeInDirectSends();
    let message;
    try {
      message = decodeReplicationFrame(data, 'sender');
    } catch (error) {
      this.fail(error);
      this.options.latch.set();
      return;
    }
    this.lastReceiptTime = this.now();
    this.pingSent = false;
    if (message.type === 'standbyStatusUpdate') {
      this.replies++;
      this.writeLsn = message.write as Lsn;
      this.flushLsn = message.flush as Lsn;
      this.replayLsn = message.apply as Lsn;
      this.replyTime = message.sendTime;
      this.lastReplyReceivedAt = this.lastReceiptTime;
      this.lags = processStandbyReplyLags(this.tracker, this.lags, { write: this.writeLsn, flush: this.flushLsn, apply: this.replayLsn }, this.sentLsn, this.lastReceiptTime);
      if (message.replyRequested) this.sendKeepalive(false);
      this.options.onReply?.(this);
    } else if (message.type === 'copyDone') {
      this.closed = true;
    }
    // The loop waits for a reply only at shutdown (WalSndWaitStopping: until the standby has
    // flushed everything) or for the end of the stream; otherwise a reply changes nothing it
    // would do, and three replies per flush made three loop turns.
    if (this.closed || this.options.isStopping()) this.options.latch.set();
  }

  private sendKeepalive(replyRequested: boolean): void {
    this.takeBackSocket(true);
    const syncStandby = this.toldSyncStandby;
    this.options.socket.send(
      encodeKeepalive({ type: 'keepalive', walEnd: this.sentLsn, sendTime: this.now(), replyRequested, ...(syncStandby === null ? {} : { syncStandby }) }),
      () => undefined,
    );
  }

  /** A keepalive when whether commits may wait for the standby is not what it was last told. */
  private tellSyncStandby(): void {
    const isSyncStandby = this.options.isSyncStandby;
    if (isSyncStandby === undefined) return;
    const now = isSyncStandby();
    if (now === this.toldSyncStandby) return;
    this.toldSyncStandby = now;
    this.sendKeepalive(false);
  }

  /** WalSndCheckTimeOut and WalSndKeepaliveIfNecessary; false when the standby is gone. */
  private checkTimeout(): boolean {
    const timeout = this.options.walSenderTimeoutMs();
    if (timeout <= 0) return true;
    const silentMs = timestampDifferenceMs(this.lastReceiptTime, this.now());
    if (silentMs >= timeout) {
      this.options.log('LOG', `terminating walsender process due to replication timeout (standby "${this.options.applicationName}")`);
      this.takeBackSocket(true);
      this.options.socket.close(1000, 'replication timeout');
      return false;
    }
    if (silentMs >= timeout / 2 && !this.pingSent) {
      this.sendKeepalive(true);
      this.pingSent = true;
    }
    return true;
  }

  private sleepMs(stopping: boolean): number {
    const timeout = this.options.walSenderTimeoutMs();
    if (stopping) return 100;
    if (timeout <= 0) return 10_000;
    const silentMs = timestampDifferenceMs(this.lastReceiptTime, this.now());
    const untilPing = timeout / 2 - silentMs;
    return Math.max(10, this.pingSent ? timeout - silentMs : untilPing);
  }

  private fail(error: unknown): void {
    if (this.failure !== null) return;
    this.failure = error instanceof Error ? error : new WalshipError(ErrorCode.internal, String(error));
    const reason = this.failure.message.slice(0, 120);
    this.options.log('LOG', `walsender for "${this.options.applicationName}" ends: ${this.failure.message}`);
    this.takeBackSocket(true);
    const known = this.failure instanceof WalshipError ? this.failure : null;
    try {
      this.options.socket.send(encodeReplicationMessage({
        type: 'error', code: known?.code ?? ErrorCode.internal, message: this.failure.message, severity: 'ERROR',
        ...(known?.hint !== undefined ? { hint: known.hint } : {}),
      }), () => undefined);
    } catch {
      // The error itself could not be encoded: closing says enough.
    }
    this.options.socket.close(1011, reason);
  }
}
