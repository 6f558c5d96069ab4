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
    fs.renameSync(source, target);
  }
  writeTimeLineHistory(dataDir, timeline, previousTimeline, switchPoint, 'no recovery target specified');
  fs.rmSync(path.join(dataDir, STANDBY_SIGNAL_FILE), { force: true });
  fsyncDirectory(dataDir);
  fsyncDirectory(walDir(dataDir));
  log('LOG', `archive recovery complete; switched to timeline ${timeline} at ${formatLsn(switchPoint)}`);
  return timeline;
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
