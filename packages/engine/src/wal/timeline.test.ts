import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WalshipError } from '../errors.js';
import { parseLsn, type Lsn } from '../lsn.js';
import {
  TIMELINE_OPEN_END, canFollowTimeline, existsTimeLineHistory, findNewestTimeLine, formatTimeLineHistory,
  historyFileName, isOpenEnd, parseTimeLineHistory, readTimeLineHistory, tliInHistory, tliOfPointInHistory,
  tliSwitchPoint, writeTimeLineHistory, writeTimeLineHistoryFile,
} from './timeline.js';

const lsn = (text: string): Lsn => parseLsn(text)!;

/** What PostgreSQL writes for timeline 3 after two promotions (note the blank separator line). */
const TLI3_FILE = '1\t0/3000158\tno recovery target specified\n\n2\t0/5000060\tno recovery target specified\n';

function expectWalError(run: () => unknown, message: RegExp, hint?: RegExp): void {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(WalshipError);
    const walshipError = error as WalshipError;
    expect(walshipError.code).toBe('wal_corrupted');
    expect(walshipError.message).toMatch(message);
    if (hint) expect(walshipError.hint).toMatch(hint);
    return;
  }
  throw new Error('expected an error');
}

describe('parseTimeLineHistory', () => {
  it('returns the timeline and its ancestors, newest first', () => {
    const history = parseTimeLineHistory(TLI3_FILE, 3);
    expect(history.map(({ tli, begin, end }) => ({ tli, begin, end }))).toEqual([
      { tli: 3, begin: lsn('0/5000060'), end: TIMELINE_OPEN_END },
      { tli: 2, begin: lsn('0/3000158'), end: lsn('0/5000060') },
      { tli: 1, begin: 0, end: lsn('0/3000158') },
    ]);
    expect(history[1]!.reason).toBe('no recovery target specified');
    expect(isOpenEnd(history[0]!.end)).toBe(true);
  });

  it('skips comments, blank lines and leading whitespace; reads 64-bit switch points', () => {
    const text = '# made by hand\n\n   1\t1F/FF000028\tpromoted\r\n\t# another\n';
    const history = parseTimeLineHistory(text, 2);
    expect(history[1]).toMatchObject({ tli: 1, begin: 0, end: 0x1f_ff00_0028 });
    expect(history[0]).toMatchObject({ tli: 2, begin: 0x1f_ff00_0028 });
  });

  it('gives the single-timeline history for an empty file', () => {
    expect(parseTimeLineHistory('', 4)).toEqual([{ tli: 4, begin: 0, end: TIMELINE_OPEN_END }]);
  });

  it('refuses a line without a timeline ID', () => {
    expectWalError(() => parseTimeLineHistory('x\t0/1\n', 2), /^syntax error in history file: x\t0\/1$/, /numeric timeline ID/);
  });

  it('refuses a line without a switch point, naming the file and line', () => {
    try {
      parseTimeLineHistory('1\t0/10\tok\n2\n', 3);
      throw new Error('expected an error');
    } catch (error) {
      expect((error as WalshipError).message).toBe('syntax error in history file: 2');
      expect((error as WalshipError).detail).toBe('File "00000003.history", line 2.');
      expect((error as WalshipError).hint).toMatch(/switchpoint location/);
    }
  });

  it('refuses timeline IDs that do not increase', () => {
    expectWalError(() => parseTimeLineHistory('2\t0/10\ta\n1\t0/20\tb\n', 3), /^invalid data in history file: 1\t0\/20\tb$/, /increasing sequence/);
    expectWalError(() => parseTimeLineHistory('1\t0/10\ta\n1\t0/20\tb\n', 3), /^invalid data in history file/);
  });

  it('refuses an ancestor not below the timeline itself', () => {
    expectWalError(() => parseTimeLineHistory('1\t0/10\ta\n3\t0/20\tb\n', 3), /^invalid data in history file "00000003.history"$/, /less than child/);
  });

  it('refuses switch points that go backwards and out-of-range values', () => {
    expectWalError(() => parseTimeLineHistory('1\t0/20\ta\n2\t0/10\tb\n', 3), /^invalid data in history file/, /must not decrease/);
    expectWalError(() => parseTimeLineHistory('1\t123456789/0\ta\n', 2), /^invalid data in history file/);
    expectWalError(() => parseTimeLineHistory('0\t0/10\ta\n', 2), /^invalid data in history file/);
  });
});

describe('formatTimeLineHistory', () => {
  it('round-trips with the parser', () => {
    const history = parseTimeLineHistory(TLI3_FILE, 3);
    const text = formatTimeLineHistory(history);
    expect(text).toBe('1\t0/3000158\tno recovery target specified\n2\t0/5000060\tno recovery target specified\n');
    expect(parseTimeLineHistory(text, 3)).toEqual(history);
  });

  it('formats a single-timeline history as no lines', () => {
    expect(formatTimeLineHistory(parseTimeLineHistory('', 1))).toBe('');
  });
});

describe('history queries', () => {
  const history = parseTimeLineHistory(TLI3_FILE, 3);

  it('tliInHistory', () => {
    expect([1, 2, 3, 4].map((tli) => tliInHistory(tli, history))).toEqual([true, true, true, false]);
  });

  it('tliOfPointInHistory: a switch point belongs to the newer timeline', () => {
    expect(tliOfPointInHistory(lsn('0/0'), history)).toBe(1);
    expect(tliOfPointInHistory(lsn('0/3000157'), history)).toBe(1);
    expect(tliOfPointInHistory(lsn('0/3000158'), history)).toBe(2);
    expect(tliOfPointInHistory(lsn('0/5000060'), history)).toBe(3);
    expect(tliOfPointInHistory(lsn('FFFF/0'), history)).toBe(3);
  });

  it('tliSwitchPoint gives the fork point and the next timeline', () => {
    expect(tliSwitchPoint(1, history)).toEqual({ switchPoint: lsn('0/3000158'), nextTli: 2 });
    expect(tliSwitchPoint(2, history)).toEqual({ switchPoint: lsn('0/5000060'), nextTli: 3 });
    expect(tliSwitchPoint(3, history)).toEqual({ switchPoint: TIMELINE_OPEN_END, nextTli: null });
    expect(() => tliSwitchPoint(7, history)).toThrow("requested timeline 7 is not in this server's history");
  });

  it('canFollowTimeline: the current timeline must be an ancestor that forked at or after replay', () => {
    // Replaying timeline 2: timeline 3 forked off it at 0/5000060.
    expect(canFollowTimeline(history, 2, lsn('0/4000000'))).toBe(true);
    expect(canFollowTimeline(history, 2, lsn('0/5000060'))).toBe(true);
    expect(canFollowTimeline(history, 2, lsn('0/5000061'))).toBe(false);
    // Timeline 5 is not in timeline 3's history at all.
    expect(canFollowTimeline(history, 5, lsn('0/1'))).toBe(false);
    // The timeline itself: no fork, always fine.
    expect(canFollowTimeline(history, 3, lsn('FF/0'))).toBe(true);
  });
});

describe('history files', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-timeline-'));
    fs.mkdirSync(path.join(dataDir, 'pg_wal'));
  });
  afterEach(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('names files as PostgreSQL does', () => {
    expect(historyFileName(2)).toBe('00000002.history');
    expect(historyFileName(0xab)).toBe('000000AB.history');
  });

  it('writes a promotion chain like PostgreSQL and reads it back', () => {
    expect(writeTimeLineHistory(dataDir, 2, 1, lsn('0/3000158'), 'no recovery target specified')).toBe('00000002.history');
    writeTimeLineHistory(dataDir, 3, 2, lsn('0/5000060'), 'no recovery target specified');
    const file = path.join(dataDir, 'pg_wal', '00000003.history');
    expect(fs.readFileSync(file, 'utf8')).toBe(TLI3_FILE);
    expect(readTimeLineHistory(dataDir, 3)).toEqual(parseTimeLineHistory(TLI3_FILE, 3));
    expect(fs.readdirSync(path.join(dataDir, 'pg_wal')).sort()).toEqual(['00000002.history', '00000003.history']);
  });

  it('treats timeline 1 and a missing file as having no ancestors', () => {
    expect(readTimeLineHistory(dataDir, 1)).toEqual([{ tli: 1, begin: 0, end: TIMELINE_OPEN_END }]);
    expect(readTimeLineHistory(dataDir, 5)).toEqual([{ tli: 5, begin: 0, end: TIMELINE_OPEN_END }]);
    expect(existsTimeLineHistory(dataDir, 1)).toBe(false);
  });

  it('reports a corrupt file with its path', () => {
    fs.writeFileSync(path.join(dataDir, 'pg_wal', '00000002.history'), 'garbage\n');
    expectWalError(() => readTimeLineHistory(dataDir, 2), /^syntax error in history file: garbage$/);
  });

  it('finds the newest timeline by probing upward, stopping at a gap', () => {
    expect(findNewestTimeLine(dataDir, 1)).toBe(1);
    writeTimeLineHistory(dataDir, 2, 1, lsn('0/3000000'), 'a');
    writeTimeLineHistory(dataDir, 3, 2, lsn('0/4000000'), 'b');
    writeTimeLineHistoryFile(dataDir, 5, '1\t0/3000000\ta\n\n2\t0/4000000\tb\n\n3\t0/6000000\tc\n\n4\t0/7000000\td\n');
    expect(findNewestTimeLine(dataDir, 1)).toBe(3);
    expect(findNewestTimeLine(dataDir, 5)).toBe(5);
  });

  it('writes a fetched file only when it parses', () => {
    writeTimeLineHistoryFile(dataDir, 2, '1\t0/3000000\tfrom the primary\n');
    expect(existsTimeLineHistory(dataDir, 2)).toBe(true);
    expectWalError(() => writeTimeLineHistoryFile(dataDir, 3, '1\tnope\n'), /^syntax error in history file/);
    expect(existsTimeLineHistory(dataDir, 3)).toBe(false);
  });

  it('refuses to extend a corrupt parent history', () => {
    fs.writeFileSync(path.join(dataDir, 'pg_wal', '00000002.history'), '5\t0/1\tbad\n');
    expectWalError(() => writeTimeLineHistory(dataDir, 3, 2, lsn('0/2000000'), 'x'), /^invalid data in history file/);
    expect(existsTimeLineHistory(dataDir, 3)).toBe(false);
  });
});
