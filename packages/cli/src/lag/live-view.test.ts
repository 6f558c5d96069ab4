import { describe, expect, it } from 'vitest';
import { computeLag, type LagReport } from '@walship/lag';
import { memoryIo } from '../test-support/memory-io.js';
import { composeFrame, ESC, fitToWidth, runLiveView, viewMode, type Sampler } from './live-view.js';

function report(timeMs: number, replayLagMs: number | null, replyAgeMs = 10): LagReport {
  const status = (overrides: Record<string, unknown>) => ({ timeline: 1, insertLsn: '0/100', flushLsn: '0/100', ...overrides });
  return computeLag({
    timeMs,
    members: [{
      address: { name: 'p', host: '127.0.0.1', port: 1 }, error: null,
      snapshot: { ...parseLike(status({ role: 'primary', member: 'p' })), replication: [{
        applicationName: 's1', clientAddr: '127.0.0.1', state: 'streaming', sentLsn: 0x100, writeLsn: 0x100, flushLsn: 0x100, replayLsn: 0x80,
        writeLagMs: 0.1, flushLagMs: 0.2, replayLagMs, syncState: 'async', syncPriority: 0, replyAgeMs, replyTimeMs: null, slotName: null,
      }] },
    }],
  }).report;
}

/** A primary's snapshot from a status-like object, through the package's own parser. */
function parseLike(document: Record<string, unknown>) {
  return lagModule.parseNodeStatus(document);
}
const lagModule = await import('@walship/lag');

/** Serves the given reports in turn; asked for one more, ends the view (as Ctrl-C would). */
function scripted(reports: LagReport[], controller: AbortController): Sampler {
  let next = 0;
  return {
    async sample() {
      if (next >= reports.length) controller.abort();
      return reports[Math.min(next++, reports.length - 1)]!;
    },
  };
}

const THRESHOLDS = { warn: { durationMs: 1, bytes: null }, crit: { durationMs: 100, bytes: null } };

describe('the live view', () => {
  it('draws full screen on a terminal: alternate screen, frames in place, colours, sparkline; restores the terminal at the end', async () => {
    const io = memoryIo({ tty: true, env: { TERM: 'xterm' } });
    const controller = new AbortController();
    const recorded: LagReport[] = [];
    const code = await runLiveView(scripted([report(1_000, 0.5), report(21_000, 5), report(41_000, 500)], controller), {
      intervalMs: 1, thresholds: THRESHOLDS, record: (r) => recorded.push(r),
    }, io, { signal: controller.signal, size: () => ({ columns: 200, rows: 20 }) });
    expect(code).toBe(0);
    const out = io.stdoutText();
    expect(out.startsWith(ESC.enterAlternateScreen + ESC.hideCursor)).toBe(true);
    expect(out.endsWith(ESC.showCursor + ESC.leaveAlternateScreen)).toBe(true);
    expect(out.split(ESC.home)).toHaveLength(4);
    const frames = out.split(ESC.home).slice(1);
    // The third frame: s1 red (500 ms is past --crit 100ms), its sparkline (10 s a column) rising.
    expect(frames[2]).toContain('\u001b[31;1m  s1');
    expect(frames[2]).toMatch(/▁ +[▂-▇] +█/);
    expect(frames[0]).toMatch(/\n  s1 /);
    expect(frames[1]).toContain('\u001b[33m  s1');
    expect(frames[2]).toContain('Ctrl-C to quit');
    expect(recorded).toHaveLength(3);
  });

  it('draws no colour with NO_COLOR, and plain blocks when not on a terminal', async () => {
    const noColor = memoryIo({ tty: true, env: { TERM: 'xterm', NO_COLOR: '1' } });
    let controller = new AbortController();
    await runLiveView(scripted([report(1_000, 500)], controller), { intervalMs: 1, thresholds: THRESHOLDS, record: null }, noColor, { signal: controller.signal, size: () => ({ columns: 200, rows: 20 }) });
    expect(noColor.stdoutText()).toContain(ESC.enterAlternateScreen);
    expect(noColor.stdoutText()).not.toMatch(/\u001b\[[0-9;]*m/);

    const pipe = memoryIo({ tty: false });
    controller = new AbortController();
    await runLiveView(scripted([report(1_000, 0.5), report(2_000, 0.6)], controller), { intervalMs: 1, thresholds: THRESHOLDS, record: null }, pipe, { signal: controller.signal });
    const text = pipe.stdoutText();
    expect(text).not.toContain('\u001b');
    expect(text.match(/^primary p on timeline 1/gm)).toHaveLength(2);
    expect(viewMode(memoryIo({ tty: true, env: { TERM: 'dumb' } }))).toEqual({ fullScreen: false, color: false });
  });

  it('draws a caller\'s footer lines under the table and hands it each report (npm start)', async () => {
    const seen: number[] = [];
    let asked = 0;
    const footer = () => [`load: frame ${++asked}`];
    for (const tty of [true, false]) {
      const io = memoryIo({ tty, env: { TERM: 'xterm' } });
      const controller = new AbortController();
      await runLiveView(scripted([report(1_000, 0.5), report(2_000, 0.6)], controller), {
        intervalMs: 1, thresholds: THRESHOLDS, record: null, footer, onReport: (r) => seen.push(r.timeMs),
      }, io, { signal: controller.signal, size: () => ({ columns: 200, rows: 40 }) });
      const text = io.stdoutText().replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '');
      // Under the table (after the s1 row), in every frame or block.
      expect(text).toMatch(/\n {2}s1 [^\n]*\r?\n[^]*?\nload: frame \d\r?\n/);
      expect(text.match(/load: frame \d/g)).toHaveLength(2);
    }
    expect(seen).toEqual([1_000, 2_000, 1_000, 2_000]);
  });

  it('restores the terminal when sampling fails', async () => {
    const io = memoryIo({ tty: true, env: {} });
    const failing: Sampler = { sample: () => Promise.reject(new Error('boom')) };
    await expect(runLiveView(failing, { intervalMs: 1, thresholds: THRESHOLDS, record: null }, io, { signal: new AbortController().signal, size: () => ({ columns: 80, rows: 10 }) })).rejects.toThrow('boom');
    expect(io.stdoutText()).toBe(ESC.enterAlternateScreen + ESC.hideCursor + ESC.showCursor + ESC.leaveAlternateScreen);
  });

  it('cuts lines to the width, keeping escape codes, and never fills the last row', () => {
    expect(fitToWidth('abcdef', 3)).toBe('abc');
    expect(fitToWidth('\u001b[31mabcdef\u001b[0m', 4)).toBe('\u001b[31mabcd\u001b[0m');
    expect(fitToWidth('▁▂▃▄', 2)).toBe('▁▂');
    const frame = composeFrame(['one', 'two', 'three', 'four'], { columns: 10, rows: 3 });
    expect(frame).toBe(`${ESC.home}one${ESC.clearToEndOfLine}\r\ntwo${ESC.clearToEndOfLine}\r\n${ESC.clearBelow}`);
  });
});
