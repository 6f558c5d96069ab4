/**
 * The walreceiver's WAL files (walreceiver.c's XLogWalRcvWrite / XLogWalRcvFlush /
 * XLogWalRcvClose): received WAL is written at its own position into the segment files of the
 * timeline being streamed, and fdatasynced before the flushed position moves. A standby never
 * reports, or replays as flushed, WAL it has not fsynced (the rule carried over from etcd's raft:
 * persist, then acknowledge).
 *
 * A segment is created zero-filled before the first write to it. A segment written to its end is
 * fsynced, closed and given its archive status at once, not when the next segment's first bytes
 * arrive (PostgreSQL 15's XLogWalRcvWrite), so that with archive_mode = always the archiver gets
 * it without waiting for more WAL. So is the last segment of a timeline the upstream ended
 * (WalReceiverMain at the end of a timeline). The status is `.done` — the upstream archives it —
 * or `.ready` with archive_mode = always, where this standby archives it too
 * (xlogArchiveMarkReceived). A segment left unfinished when streaming stops gets no status:
 * promotion or a later walreceiver decides what it is.
 *
 * In an encrypted data directory received plaintext WAL is encrypted here, under the timeline
 * being streamed (the one in the segment file's name) and its own positions, exactly the bytes
 * received: they are a prefix of the upstream's flushed WAL, so final, and the partial page around
 * them is left as it is on disk (crypto/wal-cipher.ts has the rules). WAL the upstream sent as
 * stored (ciphertext, from an upstream with the same WAL key) is written as it came when it is
 * under the file's timeline, and converted to it otherwise (wal-receive-cipher.ts).
 */
import * as fs from 'node:fs';
import type { WalCipher } from '../crypto/wal-cipher.js';
import type { Lsn } from '../lsn.js';
import { xlogArchiveMarkReceived, type ArchiveMode, type ArchiveStatus } from './archive-status.js';
import { receivedWalTransform, transformReceivedWal } from './wal-receive-cipher.js';
import { createSegmentFile, segmentPath } from './wal-files.js';
import { segmentOf, xlogFileName } from './xlog-internal.js';

/** Archiving's part in receiving WAL. */
export interface WalReceiveArchiving {
  /** archive_mode, as the node runs with it (it changes only with a restart). */
  mode: ArchiveMode;
  /**
   * After each finished segment was marked: its name, the status given, and the error when the
   * status file could not be written (the WAL itself is safe; checkpoints repair the status).
   * With `.ready` and no error, the caller wakes the archiver.
   */
  onStatus?: (fileName: string, status: ArchiveStatus, error: Error | null) => void;
}

export class WalReceiveFiles {
  private fd: number | null = null;
  private fdSegNo = -1;
  private dirty = false;
  /** End of the WAL written so far (LogstreamResult.Write). */
  written: Lsn;
  /** End of the WAL fsynced so far (LogstreamResult.Flush). */
  flushed: Lsn;

  constructor(
    private readonly dataDir: string,
    private timeline: number,
    private readonly segmentSize: number,
    startLsn: Lsn,
    private readonly archiving: WalReceiveArchiving = { mode: 'off' },
    private readonly cipher: WalCipher | null = null,
  ) {
    this.written = startLsn;
    this.flushed = startLsn;
  }

  /** Streams a new timeline from here on (after an end of timeline). */
  switchTimeline(timeline: number, startLsn: Lsn): void {
    this.endOfTimeline();
    this.timeline = timeline;
    this.written = startLsn;
    this.flushed = startLsn;
  }

  /**
   * The upstream ended the timeline: its last segment is flushed, closed and given its status
   * like a finished one, since no more WAL of this timeline will come into it.
   */
  endOfTimeline(): void {
    this.flush();
    this.finishSegment();
  }

  /**
   * Another writer of this stream (the walreceiver's other thread: wal-receive-writer.ts hands
   * the writing back and forth) wrote and flushed everything up to `lsn` since this one last
   * did: continue from there. Its open segment may be stale; the segment holding `lsn` is opened
   * again (it exists: the other writer wrote into it), so that a later end of timeline finishes
   * the right one. This writer had flushed all it wrote before it let go.
   */
  resumeAt(lsn: Lsn): void {
    if (lsn === this.written) return;
    this.closeSegment();
    this.written = lsn;
    this.flushed = lsn;
    if (lsn % this.segmentSize !== 0) {
      const segNo = segmentOf(lsn, this.segmentSize);
      this.fd = fs.openSync(segmentPath(this.dataDir, this.timeline, segNo, this.segmentSize), 'r+');
      this.fdSegNo = segNo;
    }
  }

  /**
   * XLogWalRcvWrite: writes `data` at `dataStart`, across segment boundaries. `encryptedTimeline`:
   * the data is ciphertext as stored upstream under that timeline; null: plaintext.
   */
  write(dataStart: Lsn, data: Buffer, encryptedTimeline: number | null = null): void {
    // Checked before anything is written: ciphertext is refused in an unencrypted directory.
    const transform = receivedWalTransform(this.cipher !== null, this.timeline, encryptedTimeline);
    let pos: number = dataStart;
    let done = 0;
    while (done < data.length) {
      const segNo = segmentOf(pos, this.segmentSize);
      if (segNo !== this.fdSegNo) this.openSegment(segNo);
      const offset = pos % this.segmentSize;
      const n = Math.min(data.length - done, this.segmentSize - offset);
      const source = transformReceivedWal(this.cipher, transform, pos, data.subarray(done, done + n));
      let written = 0;
      while (written < n) written += fs.writeSync(this.fd!, source, written, n - written, offset + written);
      this.dirty = true;
      done += n;
      pos += n;
      if (pos > this.written) this.written = pos as Lsn;
      if (offset + n === this.segmentSize) this.finishSegment();
    }
  }

  /** XLogWalRcvFlush: fsyncs what was written; returns whether the flushed position moved. */
  flush(): boolean {
    if (this.flushed >= this.written) return false;
    if (this.fd !== null && this.dirty) fs.fdatasyncSync(this.fd);
    this.dirty = false;
    this.flushed = this.written;
    return true;
  }

  private openSegment(segNo: number): void {
    // A segment left before its end (a write further on): durable, but not finished.
    if (this.fd !== null) {
      if (this.dirty) fs.fdatasyncSync(this.fd);
      this.dirty = false;
      this.closeSegment();
    }
    createSegmentFile(this.dataDir, this.timeline, segNo, this.segmentSize);
    this.fd = fs.openSync(segmentPath(this.dataDir, this.timeline, segNo, this.segmentSize), 'r+');
    this.fdSegNo = segNo;
  }

  /** XLogWalRcvClose: the open segment is complete: fsynced, closed, and given its status. */
  private finishSegment(): void {
    if (this.fd === null) return;
    const segNo = this.fdSegNo;
    if (this.dirty) fs.fdatasyncSync(this.fd);
    this.dirty = false;
    this.closeSegment();
    const name = xlogFileName(this.timeline, segNo, this.segmentSize);
    const { mode, onStatus } = this.archiving;
    const status: ArchiveStatus = mode === 'always' ? 'ready' : 'done';
    let error: Error | null = null;
    try {
      xlogArchiveMarkReceived(this.dataDir, name, mode);
    } catch (caught) {
      error = caught as Error;
    }
    onStatus?.(name, status, error);
  }

  private closeSegment(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    this.fdSegNo = -1;
  }

  close(): void {
    this.flush();
    this.closeSegment();
  }
}
