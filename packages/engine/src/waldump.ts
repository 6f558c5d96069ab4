/**
 * `walship waldump` (pg_waldump): every record in the WAL of a data directory, from a start LSN
 * (by default the first record in the oldest segment) to an end LSN or the end of valid WAL.
 */
import { XLOG_BLCKSZ } from './constants.js';
import { readControlFile } from './control-file.js';
import type { Lsn } from './lsn.js';
import { describeRecord } from './wal/record-data.js';
import { SegmentFilePageSource, listSegments } from './wal/wal-files.js';
import { maxAlign, pageHeaderSize, segmentStart } from './wal/xlog-internal.js';
import { XLogReader, type WalPageSource } from './wal/xlog-reader.js';

export interface DumpedRecord {
  lsn: Lsn;
  endLsn: Lsn;
  totalLength: number;
  prevLsn: Lsn;
  xid: number;
  rmgr: string;
  description: string;
  /** Number of block references and full-page images. */
  blocks: number;
  fullPageImages: number;
}

export interface DumpEnd {
  error: string;
  lsn: Lsn;
  /** True when the WAL simply ended (no more segment files), rather than an invalid record. */
  endOfFiles: boolean;
}

export function* dumpWal(dataDir: string, options: { start?: Lsn; end?: Lsn } = {}): Generator<DumpedRecord, DumpEnd | null> {
  const control = readControlFile(dataDir);
  const segmentSize = control.walSegmentSize;
  const segments = listSegments(dataDir, segmentSize);
  const timelineOf = (segNo: number): number => {
    let timeline = control.timeline;
    for (const s of segments) if (s.segNo === segNo && s.timeline <= control.timeline) timeline = s.timeline;
    return timeline;
  };
  const source = new SegmentFilePageSource(dataDir, timelineOf, segmentSize);
  let start: Lsn | null | undefined = options.start;
  if (start === undefined) {
    if (segments.length === 0) return { error: 'no WAL segment files found', lsn: 0 as Lsn, endOfFiles: true };
    start = findFirstRecord(source, segmentStart(segments[0]!.segNo, segmentSize));
  }
  if (start === null) return { error: 'could not find a valid record in the first WAL segment', lsn: 0 as Lsn, endOfFiles: false };
  const reader = new XLogReader({ segmentSize, systemId: control.systemId, source });
  reader.beginRead(start);
  try {
    for (;;) {
      const result = reader.readRecord();
      if (!result.ok) return { error: result.message, lsn: result.lsn, endOfFiles: result.missing };
      const record = result.record;
      if (options.end !== undefined && record.lsn >= options.end) return null;
      const { rmgr, description } = describeRecord(record);
      yield {
        lsn: record.lsn, endLsn: record.endLsn, totalLength: record.totalLength, prevLsn: record.prev, xid: record.xid,
        rmgr, description, blocks: record.blocks.length, fullPageImages: record.blocks.filter((b) => b.flags & 1).length,
      };
    }
  } finally {
    source.closeFile();
  }
}

/** XLogFindNextRecord: the first record starting at or after `from`, skipping continuation data. */
function findFirstRecord(source: WalPageSource, from: Lsn): Lsn | null {
  for (let page = from as number; page < from + 64 * XLOG_BLCKSZ; page += XLOG_BLCKSZ) {
    const bytes = source.readPage(page as Lsn);
    if (bytes === null) return null;
    const info = bytes.readUInt16LE(2);
    const remLength = bytes.readUInt32LE(16);
    const header = pageHeaderSize(info);
    const candidate = page + header + maxAlign(remLength);
    if (candidate < page + XLOG_BLCKSZ) return candidate as Lsn;
  }
  return null;
}
