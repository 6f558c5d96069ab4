/**
 * The timeline switch of a promotion (the end of PostgreSQL's StartupXLOG for archive recovery):
 * pick the next free timeline ID, start its first segment as a copy of the old timeline's segment
 * up to the switch point (XLogInitNewTimeLine), write the new timeline's history file, and remove
 * `standby.signal`. The caller then writes the end-of-recovery record on the new timeline.
 *
 * With archiving on, the old timeline's switch segment is also kept as `<name>.partial`
 * (CleanupAfterArchiveRecovery), for the archiver to archive under a name that can never
 * overwrite the old primary's complete segment; archiveStatusAtPromotion marks it `.ready`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ControlFileData } from './control-file.js';
import { walCipherFor } from './crypto/registry.js';
import type { WalCipher } from './crypto/wal-cipher.js';
import type { LogFunction } from './database.js';
import { formatLsn, type Lsn } from './lsn.js';
import { STANDBY_SIGNAL_FILE } from './wal-recovery.js';
import { fsyncDirectory, segmentPath, walDir } from './wal/wal-files.js';
import { findNewestTimeLine, writeTimeLineHistory } from './wal/timeline.js';
import { archiveStatusOf } from './wal/archive-status.js';
import { PARTIAL_SUFFIX, segmentOf } from './wal/xlog-internal.js';

export function startNewTimeline(dataDir: string, control: ControlFileData, previousTimeline: number, switchPoint: Lsn, log: LogFunction, options: { keepPartialSegment?: boolean } = {}): number {
  const timeline = findNewestTimeLine(dataDir, previousTimeline) + 1;
  log('LOG', `selected new timeline ID: ${timeline}`);
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
    if (cipher === null) fs.renameSync(source, target);
    else reencryptSwitchSegment(cipher, dataDir, source, target, previousTimeline, timeline, segNo * segmentSize, switchPoint % segmentSize);
  }
  writeTimeLineHistory(dataDir, timeline, previousTimeline, switchPoint, 'no recovery target specified');
  fs.rmSync(path.join(dataDir, STANDBY_SIGNAL_FILE), { force: true });
  fsyncDirectory(dataDir);
  fsyncDirectory(walDir(dataDir));
  log('LOG', `archive recovery complete; switched to timeline ${timeline} at ${formatLsn(switchPoint)}`);
  return timeline;
}

/**
 * The encrypted form of the rename above: WAL is encrypted under the timeline in its file's name
 * (crypto/wal-cipher.ts), so the bytes before the switch point are decrypted under the old
 * timeline and encrypted under the new one, in a temporary file that is fsynced and renamed into
 * place; the old file is then removed, as the rename would have. Only those final bytes are
 * encrypted: the rest of the new file is clear zeros, where the new timeline's records go.
 */
function reencryptSwitchSegment(cipher: WalCipher, dataDir: string, source: string, target: string, previousTimeline: number, timeline: number, segmentStartLsn: number, switchOffset: number): void {
  const bytes = fs.readFileSync(source);
  cipher.applyInPlace(previousTimeline, segmentStartLsn, bytes, 0, switchOffset);
  cipher.applyInPlace(timeline, segmentStartLsn, bytes, 0, switchOffset);
  bytes.fill(0, switchOffset);
  const temp = path.join(walDir(dataDir), `xlogtemp.${process.pid}.switch`);
  const fd = fs.openSync(temp, 'w', 0o600);
  try {
    for (let done = 0; done < bytes.length; ) done += fs.writeSync(fd, bytes, done, bytes.length - done, done);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, target);
  fs.unlinkSync(source);
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
  const partial = path.join(walDir(dataDir), `${name}${PARTIAL_SUFFIX}`);
  const temp = path.join(walDir(dataDir), `xlogtemp.${process.pid}.partial`);
  fs.copyFileSync(segment, temp);
  const fd = fs.openSync(temp, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(temp, partial);
}
