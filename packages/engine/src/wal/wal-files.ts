/**
 * WAL segment files in `pg_wal/`: creating them zero-filled (never sparse, so that a later write
 * cannot fail for lack of space), listing, removing, and reading pages from them for recovery,
 * the walsender and waldump. All synchronous: callers are the WAL I/O worker, recovery, and tools.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { XLOG_BLCKSZ } from '../constants.js';
import type { Lsn } from '../lsn.js';
import type { WalCipher } from '../crypto/wal-cipher.js';
import { walCipherFor } from '../crypto/registry.js';
import { ErrorCode, WalshipError } from '../errors.js';
import { parsePartialXlogFileName, parseXlogFileName, segmentOf, xlogFileName } from './xlog-internal.js';
import type { WalPageSource } from './xlog-reader.js';

/** Zero-fill in chunks of this size: big enough for few syscalls, small enough to stay cheap. */
const ZERO_FILL_CHUNK_BYTES = 1024 * 1024;
let zeroChunk: Buffer | null = null;

export function walDir(dataDir: string): string {
  return path.join(dataDir, 'pg_wal');
}

export function segmentPath(dataDir: string, timeline: number, segNo: number, segmentSize: number): string {
  return path.join(walDir(dataDir), xlogFileName(timeline, segNo, segmentSize));
}

/** fsyncs a directory, so that a file created, renamed or removed in it survives a crash. */
export function fsyncDirectory(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Creates a zero-filled segment file (XLogFileInit): written under a temporary name, fsynced,
 * then renamed into place and the directory fsynced. Does nothing if the file exists.
 * Returns true when it created the file.
 */
export function createSegmentFile(dataDir: string, timeline: number, segNo: number, segmentSize: number): boolean {
  const target = segmentPath(dataDir, timeline, segNo, segmentSize);
  if (fs.existsSync(target)) return false;
  const temp = path.join(walDir(dataDir), `xlogtemp.${process.pid}.${segNo}`);
  const fd = fs.openSync(temp, 'w');
  try {
    writeZeros(fd, 0, segmentSize);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, target);
  fsyncDirectory(walDir(dataDir));
  return true;
}

/** Writes zeros over [start, end) of an open file, in shared chunks (no buffer of the whole size). */
export function writeZeros(fd: number, start: number, end: number): void {
  zeroChunk ??= Buffer.alloc(ZERO_FILL_CHUNK_BYTES);
  for (let position = start; position < end; ) position += fs.writeSync(fd, zeroChunk, 0, Math.min(ZERO_FILL_CHUNK_BYTES, end - position), position);
}

/**
 * Removes the temporary files a crash left in pg_wal (`xlogtemp.*`: a segment being created, a
 * history file or a promotion's copy being written), as StartupXLOG's RemoveTempXlogFiles does.
 * Each is written whole under its temporary name and only then renamed, so none holds anything
 * that is not somewhere else. Returns how many were removed.
 */
export function removeTempXlogFiles(dataDir: string): number {
  let removed = 0;
  let names: string[];
  try {
    names = fs.readdirSync(walDir(dataDir));
  } catch {
    return 0;
  }
  for (const name of names) {
    if (!name.startsWith('xlogtemp.')) continue;
    fs.rmSync(path.join(walDir(dataDir), name), { force: true });
    removed++;
  }
  return removed;
}

/**
 * A segment created ahead of time, a chunk at a time: the WAL I/O worker's idle work (as
 * PostgreSQL's checkpointer preallocates segments outside the commit path). Each step writes and
 * syncs one zero-filled chunk, so a request arriving meanwhile waits for one chunk instead of a
 * whole segment: the first flush after a promotion or a start waited 17 to 48 ms for the next
 * 16 MB segment to be created. The temporary file has a name of its own; abandon() removes it.
 */
/**
 * PreallocXlogFiles' rule: the next segment is made ahead once three quarters of the current one
 * are written, not as soon as the current one is entered. Zero-filling 16 MB is a chunk and an
 * fdatasync at a time on the disk the commits sync to; started at once, it ran while a promoted
 * standby flushed its end-of-recovery record, its checkpoint and its first commit, and each of
 * those waited behind the zeros (a promotion's first write took 8 to 10 ms instead of 1 to 2).
 * The last quarter of a segment leaves time enough to make the next one between flushes.
 */
export const PREALLOCATE_FROM_FRACTION = 0.75;

/** Whether the segment after the one holding `written` should be made ahead now. */
export function preallocationDue(written: number, segmentSize: number): boolean {
  return written % segmentSize >= PREALLOCATE_FROM_FRACTION * segmentSize;
}

export class SegmentPrecreation {
  private fd: number | null = null;
  private written = 0;
  private readonly temp: string;
  private readonly target: string;

  constructor(private readonly dataDir: string, timeline: number, readonly segNo: number, private readonly segmentSize: number) {
    this.target = segmentPath(dataDir, timeline, segNo, segmentSize);
    this.temp = path.join(walDir(dataDir), `xlogtemp.${process.pid}.${segNo}.ahead`);
  }

  /** One more chunk; true once the segment is in place (or was already there). */
  step(): boolean {
    if (this.fd === null) {
      if (fs.existsSync(this.target)) return true;
      this.fd = fs.openSync(this.temp, 'w');
    }
    if (this.written < this.segmentSize) {
      const end = Math.min(this.segmentSize, this.written + ZERO_FILL_CHUNK_BYTES);
      writeZeros(this.fd, this.written, end);
      this.written = end;
      fs.fdatasyncSync(this.fd);
      return false;
    }
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
    this.fd = null;
    fs.renameSync(this.temp, this.target);
    fsyncDirectory(walDir(this.dataDir));
    return true;
  }

  /** Stops, removing the temporary file. */
  abandon(): void {
    if (this.fd === null) return;
    fs.closeSync(this.fd);
    this.fd = null;
    fs.rmSync(this.temp, { force: true });
  }
}

/**
 * The segment after the one being written, made ahead while its creator is idle: the WAL I/O
 * worker on a primary, the receive thread on a standby (the one thread that creates a stream's
 * segments). PreallocXlogFiles' rule (preallocationDue) decides when, SegmentPrecreation does it a
 * chunk per step.
 */
export class SegmentsAhead {
  /** The last segment made ahead. */
  private madeSegNo = -1;
  /** The segment being made ahead. */
  private creation: SegmentPrecreation | null = null;

  constructor(private readonly dataDir: string, private readonly segmentSize: number) {}

  /**
   * One chunk of the segment after the one holding `written`, when due; returns whether it did
   * some (the caller then looks at its requests again before the next chunk).
   */
  step(written: number, timeline: number): boolean {
    const next = segmentOf(written, this.segmentSize) + 1;
    if (next <= this.madeSegNo) return false;
    // A creation under way goes on (it was due); a new one waits for the last quarter.
    if (this.creation?.segNo !== next && !preallocationDue(written, this.segmentSize)) return false;
    if (this.creation !== null && this.creation.segNo !== next) this.abandon();
    this.creation ??= new SegmentPrecreation(this.dataDir, timeline, next, this.segmentSize);
    if (this.creation.step()) {
      this.madeSegNo = next;
      this.creation = null;
    }
    return true;
  }

  /**
   * A write needs segments up to `segNo` now: its creator makes the one being made ahead whole,
   * so the half-made file goes (finished later, it would be renamed over the written segment).
   */
  neededUpTo(segNo: number): void {
    if (this.creation !== null && this.creation.segNo <= segNo) this.abandon();
  }

  /** Stops a creation under way, removing its temporary file. */
  abandon(): void {
    this.creation?.abandon();
    this.creation = null;
  }
}

export interface SegmentFile {
  name: string;
  timeline: number;
  segNo: number;
  /** A `.partial` segment (promotion's copy of the old timeline's last segment). */
  partial: boolean;
}

/**
 * Segment files in pg_wal/, in (segNo, timeline) order; with `includePartial`, `.partial` ones
 * too, each after the full segment of the same name. Recovery and the walsender never read
 * `.partial` files; only segment removal looks at them.
 */
export function listSegments(dataDir: string, segmentSize: number, options: { includePartial?: boolean } = {}): SegmentFile[] {
  let names: string[];
  try {
    names = fs.readdirSync(walDir(dataDir));
  } catch {
    return [];
  }
  const segments: SegmentFile[] = [];
  for (const name of names) {
    const parsed = parseXlogFileName(name, segmentSize);
    if (parsed !== null) {
      segments.push({ name, ...parsed, partial: false });
      continue;
    }
    const partial = options.includePartial === true ? parsePartialXlogFileName(name, segmentSize) : null;
    if (partial !== null) segments.push({ name, ...partial, partial: true });
  }
  segments.sort((a, b) => a.segNo - b.segNo || a.timeline - b.timeline || Number(a.partial) - Number(b.partial));
  return segments;
}

/**
 * Which timeline's file holds a segment (XLogFileReadAnyTLI's choice): the newest timeline of
 * `history` (newest first) that covers the segment and has its file; if none has it, the newest
 * that covers it.
 */
export function findSegmentTimeline(dataDir: string, history: ReadonlyArray<{ tli: number; begin: number; end: number }>, segNo: number, segmentSize: number): number {
  return findSegmentTimelineFinal(dataDir, history, segNo, segmentSize).tli;
}

/**
 * findSegmentTimeline, and whether its answer is final for this history: true when the newest
 * timeline covering the segment has the file, so that no file of a newer timeline can take its
 * place later (a caller may then keep the answer until its history changes).
 */
export function findSegmentTimelineFinal(
  dataDir: string, history: ReadonlyArray<{ tli: number; begin: number; end: number }>, segNo: number, segmentSize: number,
): { tli: number; final: boolean } {
  const start = segNo * segmentSize;
  const end = start + segmentSize;
  let fallback = history[0]!.tli;
  let found = false;
  for (const entry of history) {
    if (entry.begin >= end || entry.end <= start) continue;
    if (fs.existsSync(segmentPath(dataDir, entry.tli, segNo, segmentSize))) return { tli: entry.tli, final: !found };
    if (!found) {
      fallback = entry.tli;
      found = true;
    }
  }
  return { tli: fallback, final: false };
}

/**
 * Reads WAL pages from the segment files, a window at a time, so that replay reads in large
 * sequential chunks instead of a syscall per page. `timelineOf` says which timeline's file holds
 * a segment (the newest of the expected timelines that has it). On a standby the files grow
 * while they are read: `availableEnd` is the walreceiver's flushed position, and cached bytes
 * read before that position moved are read again. A window never reaches past the page holding
 * that position: a streaming standby comes back for a few new kilobytes after each flush, and
 * copying a whole window of zero-filled segment every time was a third of its CPU.
 * In an encrypted data directory each window is decrypted as it is read, under the timeline of
 * the file it came from.
 */
export class SegmentFilePageSource implements WalPageSource {
  private static readonly WINDOW_BYTES = 1024 * 1024;
  private fd: number | null = null;
  private fdSegNo = -1;
  private fdTimeline = -1;
  /**
   * The pages read. Unencrypted: read into, and reused. Encrypted: the file's bytes go into `raw`
   * and the window is the cipher's own output (a new buffer each refill), not copied back into a
   * buffer of ours: that copy was a third of the decryption's cost.
   */
  private window: Buffer;
  private readonly raw: Buffer | null;
  private windowStart = -1;
  /** Bytes of the window that were valid WAL when read. */
  private windowValid = 0;
  /** The walreceiver's flushed position (standby), or Infinity when the files are complete. */
  available = Number.POSITIVE_INFINITY;
  /** Bumped each time the window is refilled or forgotten: pages returned before are stale. */
  generation = 0;
  private readonly cipher: WalCipher | null;
  /** Bytes read from the segment files so far (for tests and statistics). */
  bytesRead = 0;

  constructor(
    private readonly dataDir: string,
    private timelineOf: (segNo: number) => number,
    private readonly segmentSize: number,
  ) {
    this.cipher = walCipherFor(dataDir);
    this.raw = this.cipher === null ? null : Buffer.allocUnsafe(SegmentFilePageSource.WINDOW_BYTES);
    this.window = this.cipher === null ? Buffer.allocUnsafe(SegmentFilePageSource.WINDOW_BYTES) : Buffer.alloc(0);
  }

  availableEnd(): number {
    return this.available;
  }

  /** Changes where segments are looked for (a new timeline to follow). */
  setTimelineResolver(timelineOf: (segNo: number) => number): void {
    this.timelineOf = timelineOf;
    this.closeFile();
  }

  readPage(pageLsn: Lsn): Buffer | null {
    if (pageLsn >= this.windowStart && pageLsn + XLOG_BLCKSZ <= this.windowStart + this.windowValid) {
      const offset = pageLsn - this.windowStart;
      return this.window.subarray(offset, offset + XLOG_BLCKSZ);
    }
    if (pageLsn >= this.available) return null;
    const segNo = segmentOf(pageLsn, this.segmentSize);
    const timeline = this.timelineOf(segNo);
    if (segNo !== this.fdSegNo || timeline !== this.fdTimeline) {
      this.closeFile();
      try {
        this.fd = fs.openSync(segmentPath(this.dataDir, timeline, segNo, this.segmentSize), 'r');
        this.fdSegNo = segNo;
        this.fdTimeline = timeline;
      } catch {
        return null;
      }
    }
    const offsetInSegment = pageLsn % this.segmentSize;
    // Up to the end of the page holding the available end (Infinity: the window or the segment).
    const availablePagesEnd = Math.ceil(this.available / XLOG_BLCKSZ) * XLOG_BLCKSZ;
    const want = Math.min(SegmentFilePageSource.WINDOW_BYTES, this.segmentSize - offsetInSegment, availablePagesEnd - pageLsn);
    this.generation++;
    const n = fs.readSync(this.fd!, this.raw ?? this.window, 0, want, offsetInSegment);
    this.bytesRead += n;
    if (n < XLOG_BLCKSZ) {
      this.windowStart = -1;
      this.windowValid = 0;
      return null;
    }
    // The read already stops at the page holding the available end: all of it is decrypted.
    if (this.cipher !== null) this.window = this.cipher.applyToNew(this.fdTimeline, pageLsn, this.raw!.subarray(0, n));
    this.windowStart = pageLsn;
    // Whole pages only, and on a standby only up to the page holding the flushed position:
    // bytes past it may still change, so a later read of those pages goes to the file again.
    const validBytes = Math.min(n - (n % XLOG_BLCKSZ), this.available - pageLsn);
    this.windowValid = validBytes >= XLOG_BLCKSZ ? validBytes - (validBytes % XLOG_BLCKSZ) : 0;
    return this.window.subarray(0, XLOG_BLCKSZ);
  }

  /** Forgets cached pages, e.g. after the files were written to. */
  invalidate(): void {
    this.generation++;
    this.windowStart = -1;
    this.windowValid = 0;
  }

  closeFile(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    this.fdSegNo = -1;
    this.fdTimeline = -1;
    this.invalidate();
  }
}

/**
 * WALRead: copies WAL bytes [startLsn, startLsn + length) from the segment files into `into`,
 * for the walsender, decrypted in an encrypted data directory (`read`), or as stored, ciphertext
 * under the timeline of the file they are in (`readStored`: for a standby that proved it has the
 * same WAL key, which writes them into its own file of that timeline as they are). A segment
 * that is gone (removed by a checkpoint) is PostgreSQL's error "requested WAL segment ... has
 * already been removed": the standby must be rebuilt or fed from the archive.
 */
export class WalFileReader {
  private fd: number | null = null;
  private fdSegNo = -1;
  private fdTimeline = -1;
  private readonly cipher: WalCipher | null;

  constructor(
    private readonly dataDir: string,
    private timelineOf: (segNo: number) => number,
    private readonly segmentSize: number,
  ) {
    this.cipher = walCipherFor(dataDir);
  }

  setTimelineResolver(timelineOf: (segNo: number) => number): void {
    this.timelineOf = timelineOf;
    this.close();
  }

  /** Whether the files hold ciphertext (`readStored` returns a timeline, not null). */
  get encrypted(): boolean {
    return this.cipher !== null;
  }

  /** The bytes as WAL (plaintext), across segments. */
  read(into: Buffer, offset: number, startLsn: number, length: number): void {
    let pos = startLsn;
    let done = 0;
    while (done < length) {
      const n = Math.min(length - done, this.segmentSize - (pos % this.segmentSize));
      const timeline = this.readStoredBytes(into, offset + done, pos, n);
      this.cipher?.applyInPlace(timeline, pos, into, offset + done, n);
      done += n;
      pos += n;
    }
  }

  /**
   * The bytes as stored in their segment file, which must be one (the range may not cross a
   * segment boundary: the next segment may be another timeline's file). Returns the timeline in
   * the file's name when the files are encrypted (the bytes are ciphertext under it), else null.
   */
  readStored(into: Buffer, offset: number, startLsn: number, length: number): number | null {
    if (length > 0 && segmentOf(startLsn, this.segmentSize) !== segmentOf(startLsn + length - 1, this.segmentSize)) {
      throw new WalshipError(ErrorCode.internal, `WAL read as stored from ${startLsn} for ${length} bytes crosses a segment boundary`);
    }
    const timeline = this.readStoredBytes(into, offset, startLsn, length);
    return this.cipher === null ? null : timeline;
  }

  /** Reads [pos, pos + n) of one segment file; returns the file's timeline. */
  private readStoredBytes(into: Buffer, offset: number, pos: number, n: number): number {
    const segNo = segmentOf(pos, this.segmentSize);
    const timeline = this.timelineOf(segNo);
    if (segNo !== this.fdSegNo || timeline !== this.fdTimeline) this.open(segNo, timeline);
    const inSegment = pos % this.segmentSize;
    let got = 0;
    while (got < n) {
      const r = fs.readSync(this.fd!, into, offset + got, n - got, inSegment + got);
      if (r === 0) throw new WalshipError(ErrorCode.walCorrupted, `could not read from WAL segment ${xlogFileName(timeline, segNo, this.segmentSize)}: end of file`);
      got += r;
    }
    return timeline;
  }

  private open(segNo: number, timeline: number): void {
    this.close();
    const name = xlogFileName(timeline, segNo, this.segmentSize);
    try {
      this.fd = fs.openSync(path.join(walDir(this.dataDir), name), 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new WalshipError(ErrorCode.walRemoved, `requested WAL segment ${name} has already been removed`, {
          hint: 'Use a replication slot (walship basebackup --slot) or wal_keep_size so that the primary keeps WAL for this standby, or set restore_command to fetch it from the archive; otherwise take a new base backup.',
        });
      }
      throw error;
    }
    this.fdSegNo = segNo;
    this.fdTimeline = timeline;
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    this.fdSegNo = -1;
    this.fdTimeline = -1;
  }
}
