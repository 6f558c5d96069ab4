import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findSegmentTimeline, findSegmentTimelineFinal, segmentPath } from './wal-files.js';

const SEGMENT = 1024 * 1024;

describe('findSegmentTimelineFinal', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-wal-files-'));
    fs.mkdirSync(path.join(dataDir, 'pg_wal'));
  });
  afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const touch = (tli: number, segNo: number) => fs.writeFileSync(segmentPath(dataDir, tli, segNo, SEGMENT), '');
  // Timeline 2 forked from timeline 1 inside segment 3; newest first, as expectedTLEs.
  const history = [
    { tli: 2, begin: 3 * SEGMENT + 100, end: Number.POSITIVE_INFINITY },
    { tli: 1, begin: 0, end: 3 * SEGMENT + 100 },
  ];

  it('is final when the newest timeline covering the segment has its file', () => {
    touch(1, 3);
    touch(2, 3);
    expect(findSegmentTimelineFinal(dataDir, history, 3, SEGMENT)).toEqual({ tli: 2, final: true });
    // Segment 2 is covered by timeline 1 only: its file is the final answer.
    touch(1, 2);
    expect(findSegmentTimelineFinal(dataDir, history, 2, SEGMENT)).toEqual({ tli: 1, final: true });
  });

  it('is not final while a newer timeline covering the segment may still get its file', () => {
    touch(1, 3);
    expect(findSegmentTimelineFinal(dataDir, history, 3, SEGMENT)).toEqual({ tli: 1, final: false });
    // No file at all: the newest covering timeline, to wait for.
    expect(findSegmentTimelineFinal(dataDir, history, 4, SEGMENT)).toEqual({ tli: 2, final: false });
    touch(2, 3);
    expect(findSegmentTimeline(dataDir, history, 3, SEGMENT)).toBe(2);
  });
});
