import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bootstrapDataDirectory } from '@walship/engine/bootstrap';
import { readControlFile, writeControlFile } from '@walship/engine/control-file';
import { primaryTimeline } from './member-files.js';
import { tempDataRoot } from './test-support.js';

let root = '';
tempDataRoot('walship-member-files-', (dir) => (root = dir));

describe('primaryTimeline', () => {
  it("is the state's timeline, or the primary's control file's when its own crash recovery moved it higher", async () => {
    const dataDir = path.join(root, 'n1');
    await bootstrapDataDirectory(dataDir, { walSegmentSize: 1024 * 1024 });
    expect(primaryTimeline({ timeline: 1 }, dataDir)).toBe(1);
    // After a promotion the state is ahead of a control file not yet read back: the state's.
    expect(primaryTimeline({ timeline: 2 }, dataDir)).toBe(2);
    const control = readControlFile(dataDir);
    writeControlFile(dataDir, { ...control, timeline: 3, prevTimeline: 1 });
    expect(primaryTimeline({ timeline: 2 }, dataDir)).toBe(3);
    // No data directory, or an unreadable control file: the state's.
    expect(primaryTimeline({ timeline: 2 }, path.join(root, 'none'))).toBe(2);
    fs.writeFileSync(path.join(dataDir, 'global', 'control'), 'garbage');
    expect(primaryTimeline({ timeline: 2 }, dataDir)).toBe(2);
  });
});
