/**
 * The walreceiver's WAL files (walreceiver.c's XLogWalRcvWrite / XLogWalRcvFlush): received WAL
 * is written at its own position into the segment files of the timeline being streamed, and
 * fdatasynced before the flushed position moves. A standby never reports, or replays as flushed,
 * WAL it has not fsynced (the rule carried over from etcd's raft: persist, then acknowledge).
 *
 * A segment is created zero-filled before the first write to it; a finished segment is fsynced
 * and closed, and marked `.done` in archive_status (the primary archives it, not this standby,
 * unless archive_mode = always).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Lsn } from '../lsn.js';
import { createSegmentFile, segmentPath, walDir } from './wal-files.js';
import { segmentOf, xlogFileName } from './xlog-internal.js';

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
    private readonly archiveAlways = false,
  ) {
    this.written = startLsn;
    this.flushed = startLsn;
  }

  /** Streams a new timeline from here on (after an end of timeline). */
  switchTimeline(timeline: number, startLsn: Lsn): void {
    this.flush();
    this.closeSegment();
    this.timeline = timeline;
    this.written = startLsn;
    this.flushed = startLsn;
  }

  /** XLogWalRcvWrite: writes `data` at `dataStart`, across segment boundaries. */
  write(dataStart: Lsn, data: Buffer): void {
    let pos: number = dataStart;
    let done = 0;
    while (done < data.length) {
      const segNo = segmentOf(pos, this.segmentSize);
      if (segNo !== this.fdSegNo) this.openSegment(segNo);
      const offset = pos % this.segmentSize;
      const n = Math.min(data.length - done, this.segmentSize - offset);
      let written = 0;
      while (written < n) written += fs.writeSync(this.fd!, data, done + written, n - written, offset + written);
      this.dirty = true;
      done += n;
      pos += n;
    }
    if (pos > this.written) this.written = pos as Lsn;
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
    if (this.fd !== null) {
      // A finished segment: durable before we move on, and marked as archived-by-the-primary.
      if (this.dirty) fs.fdatasyncSync(this.fd);
      this.dirty = false;
      this.closeSegment();
      this.markSegmentDone(this.fdSegNo);
    }
    createSegmentFile(this.dataDir, this.timeline, segNo, this.segmentSize);
    this.fd = fs.openSync(segmentPath(this.dataDir, this.timeline, segNo, this.segmentSize), 'r+');
    this.fdSegNo = segNo;
  }

  private markSegmentDone(segNo: number): void {
    if (segNo < 0) return;
    const name = xlogFileName(this.timeline, segNo, this.segmentSize);
    const status = path.join(walDir(this.dataDir), 'archive_status', `${name}.${this.archiveAlways ? 'ready' : 'done'}`);
    try {
      fs.mkdirSync(path.dirname(status), { recursive: true });
      fs.writeFileSync(status, '');
    } catch {
      // The marker only steers archiving; WAL itself is safe without it.
    }
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
