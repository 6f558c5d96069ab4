/**
 * The timeline switch of a promotion (the end of PostgreSQL's StartupXLOG for archive recovery):
 * pick the next free timeline ID, start its first segment as a copy of the old timeline's segment
 * up to the switch point (XLogInitNewTimeLine), write the new timeline's history file, and remove
 * `standby.signal`. The caller then writes the end-of-recovery record on the new timeline.
 *
 * With archiving on, the old timeline's switch segment is also kept as `<name>.partial`
 * (CleanupAfterArchiveRecovery), for the archiver to archive under a name that can never
 * overwrite the old primary's complete segment; archiveStatusAtPromotion marks it `.ready`.
 *
 * Crash recovery of an encrypted directory uses it too, when bytes of an unfinished write follow
 * the end of WAL (torn-wal-tail.ts): then the old switch segment stays where it is until the
 * end-of-recovery checkpoint has made the new timeline durable.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ControlFileData } from './control-file.js';
import { walCipherFor } from './crypto/registry.js';
import type { WalCipher } from './crypto/wal-cipher.js';
import type { LogFunction } from './database.js';
import { formatLsn, type Lsn } from './lsn.js';
import { STANDBY_SIGNAL_FILE } from './wal-recovery.js';
import { fsyncDirectory, segmentPath, walDir, writeZeros } from './wal/wal-files.js';
import { assert, ErrorCode, WalshipError } from './errors.js';
import { findNewestTimeLine, writeTimeLineHistory } from './wal/timeline.js';
import { archiveStatusOf } from './wal/archive-status.js';
import { PARTIAL_SUFFIX, segmentOf } from './wal/xlog-internal.js';

export interface NewTimelineOptions {
  /** archive_mode is not off: keep the old switch segment as `.partial` (promotion). */
  keepPartialSegment?: boolean;
  /**
   * Why crash recovery (not a promotion) switches timeline: logged as the DETAIL of "selected new
   * timeline ID", and the old timeline's switch segment is left where it is (copied, not moved),
   * because until the control file names the new timeline a crash recovers the old one again
   * (torn-wal-tail.ts retires it afterwards).
   */
  crashRecoveryReason?: string;
  /**
   * The new timeline is above this one as well as above every timeline this directory knows:
   * rewind's crash recovery of its target passes the source's timeline, which the target must not
   * take (the source writes other WAL under it, with the same key).
   */
  above?: number;
}

export function startNewTimeline(dataDir: string, control: ControlFileData, previousTimeline: number, switchPoint: Lsn, log: LogFunction, options: NewTimelineOptions = {}): number {
  const timeline = Math.max(findNewestTimeLine(dataDir, previousTimeline), options.above ?? 0) + 1;
  const crash = options.crashRecoveryReason !== undefined;
  log('LOG', `selected new timeline ID: ${timeline}`);
  if (crash) log('DETAIL', options.crashRecoveryReason!);
  const segmentSize = control.walSegmentSize;
  const segNo = segmentOf(switchPoint, segmentSize);
  const source = segmentPath(dataDir, previousTimeline, segNo, segmentSize);
  const target = segmentPath(dataDir, timeline, segNo, segmentSize);
  if (switchPoint % segmentSize !== 0 && fs.existsSync(source) && !fs.existsSync(target)) {
    if (options.keepPartialSegment === true) keepPartialSegment(dataDir, source);
    // The WAL before the switch point continues under the new timeline's name: renamed, not
    // copied (PostgreSQL moves the old one aside as .partial too). Readers of the old timeline
    // find those bytes under the new name, since both timelines share them; what follows the
    // switch point is zeroed when the end of WAL is truncated.
    const cipher = walCipherFor(dataDir);
    if (cipher === null) {
      if (crash) copyDurably(dataDir, source, target, 'switch');
      else fs.renameSync(source, target);
    } else {
      reencryptSwitchSegment(cipher, dataDir, source, target, previousTimeline, timeline, segNo * segmentSize, switchPoint % segmentSize, segmentSize, { keepSource: crash });
    }
  }
  writeTimeLineHistory(dataDir, timeline, previousTimeline, switchPoint, crash ? 'crash recovery ended before bytes written on the old timeline' : 'no recovery target specified');
  fs.rmSync(path.join(dataDir, STANDBY_SIGNAL_FILE), { force: true });
  fsyncDirectory(dataDir);
  fsyncDirectory(walDir(dataDir));
  log('LOG', `${crash ? 'crash' : 'archive'} recovery complete; switched to timeline ${timeline} at ${formatLsn(switchPoint)}`);
  return timeline;
}

/**
 * The encrypted form of the rename above: WAL is encrypted under the timeline in its file's name
 * (crypto/wal-cipher.ts), so the bytes before the switch point are decrypted under the old
 * timeline and encrypted under the new one, in a temporary file that is fsynced and renamed into
 * place; the old file is then removed, as the rename would have. Only those final bytes are read
 * and encrypted: the rest of the new file is written as clear zeros, where the new timeline's
 * records go (never encrypted zeros, whose keystream would later encrypt those records; and never
 * the old file's bytes past the switch point, which crash recovery would take for a torn tail).
 * The file is zero-filled as every segment is (wal-files.ts: never sparse), without reading or
 * holding the old segment (the whole-segment read into one buffer, and writing that buffer back,
 * cost about 40 ms of a 16 MB segment's promotion); on a standby it is the spare made in the
 * background (prepareSwitchSpare), so only the re-encrypted bytes are written and synced then.
 */
function reencryptSwitchSegment(cipher: WalCipher, dataDir: string, source: string, target: string, previousTimeline: number, timeline: number, segmentStartLsn: number, switchOffset: number, segmentSize: number, options: { keepSource: boolean }): void {
  assert(switchOffset > 0 && switchOffset < segmentSize, 'the switch point lies inside its segment');
  const prefix = Buffer.allocUnsafe(switchOffset);
  const sourceFd = fs.openSync(source, 'r');
  try {
    for (let done = 0; done < switchOffset; ) {
      const n = fs.readSync(sourceFd, prefix, done, switchOffset - done, done);
      // A segment shorter than its switch point is damaged: refuse rather than encrypt garbage.
      if (n === 0) throw new WalshipError(ErrorCode.dataCorrupted, `WAL segment "${source}" ends at byte ${done}, before the switch point at byte ${switchOffset}`);
      done += n;
    }
  } finally {
    fs.closeSync(sourceFd);
  }
  // The cipher's own outputs, written as they are: no copy back into the buffer read.
  const reencrypted = cipher.applyToNew(timeline, segmentStartLsn, cipher.applyToNew(previousTimeline, segmentStartLsn, prefix));
  // The standby's spare (prepareSwitchSpare), zero-filled and fsynced already: only the bytes
  // written here need syncing. Without one, a new file written whole.
  const spare = switchSparePath(dataDir);
  const useSpare = spareFits(spare, segmentSize);
  const temp = useSpare ? spare : path.join(walDir(dataDir), `xlogtemp.${process.pid}.switch`);
  const fd = fs.openSync(temp, useSpare ? 'r+' : 'w', 0o600);
  try {
    for (let done = 0; done < switchOffset; ) done += fs.writeSync(fd, reencrypted, done, switchOffset - done, done);
    if (useSpare) {
      fs.fdatasyncSync(fd);
    } else {
      writeZeros(fd, switchOffset, segmentSize);
      fs.fsyncSync(fd);
    }
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, target);
  if (!options.keepSource) fs.unlinkSync(source);
}

/** The spare's name: xlogtemp.*, so that startup removes it after a crash and base backups and rewinds skip it. */
const SWITCH_SPARE_FILE = 'xlogtemp.switch-spare';

function switchSparePath(dataDir: string): string {
  return path.join(walDir(dataDir), SWITCH_SPARE_FILE);
}

function spareFits(spare: string, segmentSize: number): boolean {
  try {
    return fs.statSync(spare).size === segmentSize;
  } catch {
    return false;
  }
}

/**
 * An encrypted standby's spare for its promotion: a zero-filled segment file, fsynced, written in
 * the background (libuv's threads) while the standby replays. Promotion then writes the switch
 * segment's re-encrypted bytes into it, syncs only those, and renames it into place, rather than
 * writing and syncing a whole new segment between the promote request and the first write (about
 * 30 ms of a 16 MB segment here; an unencrypted promotion renames the old file). Made under a
 * temporary name and renamed once complete; the rename happens only while the directory is still
 * a standby's (standby.signal, checked and renamed in one synchronous step, so never after a
 * promotion that ran meanwhile), else the file is removed. Resolves to whether the spare is in
 * place; a failure only leaves promotion to write its own file.
 */
export async function prepareSwitchSpare(dataDir: string, segmentSize: number): Promise<boolean> {
  const spare = switchSparePath(dataDir);
  if (spareFits(spare, segmentSize)) return true;
  const making = `${spare}.making`;
  let file: fs.promises.FileHandle | null = null;
  try {
    file = await fs.promises.open(making, 'w', 0o600);
    const zeros = Buffer.alloc(Math.min(segmentSize, SPARE_WRITE_CHUNK_BYTES));
    for (let position = 0; position < segmentSize; ) {
      const { bytesWritten } = await file.write(zeros, 0, Math.min(zeros.length, segmentSize - position), position);
      position += bytesWritten;
    }
    await file.sync();
    await file.close();
    file = null;
    if (!fs.existsSync(path.join(dataDir, STANDBY_SIGNAL_FILE))) {
      fs.rmSync(making, { force: true });
      return false;
    }
    fs.renameSync(making, spare);
    fsyncDirectory(walDir(dataDir));
    return true;
  } catch {
    await file?.close().catch(() => undefined);
    fs.rmSync(making, { force: true });
    return false;
  }
}

/** The spare is written in chunks of this much: few calls, little memory. */
const SPARE_WRITE_CHUNK_BYTES = 1024 * 1024;

/**
 * A durable copy: a temporary file `xlogtemp.<pid>.<tempSuffix>`, fsynced, renamed into place
 * (the directory is fsynced by the caller). The unencrypted form of a switch that keeps its
 * source, and the `.partial` copy below.
 */
function copyDurably(dataDir: string, source: string, target: string, tempSuffix: string): void {
  const temp = path.join(walDir(dataDir), `xlogtemp.${process.pid}.${tempSuffix}`);
  fs.copyFileSync(source, temp);
  const fd = fs.openSync(temp, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, target);
}

/**
 * Copies the old timeline's switch segment to `<name>.partial`, whole, as PostgreSQL's rename
 * leaves it, before promotion renames the segment to the new timeline's name. Made durable
 * (temporary file fsynced, renamed, directory fsynced by the caller) before the end-of-recovery
 * record, so that a crash right after promotion still leaves it, and never a torn copy. A segment
 * that already has an archive status was found complete (restored from the archive): it is
 * archived, or not, under its own name, and needs no `.partial`.
 */
function keepPartialSegment(dataDir: string, segment: string): void {
  const name = path.basename(segment);
  if (archiveStatusOf(dataDir, name) !== null) return;
  copyDurably(dataDir, segment, path.join(walDir(dataDir), `${name}${PARTIAL_SUFFIX}`), 'partial');
}
