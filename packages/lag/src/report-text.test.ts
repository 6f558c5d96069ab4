import { describe, expect, it } from 'vitest';
import { parseRecording, summarize } from './recording.js';
import { recordedReports } from './test-support.js';
import { chartLines, renderRecordingReport } from './report-text.js';

describe('the text report', () => {
  it('draws bars in eighths with the scale on the left, and marks disconnected columns', () => {
    const points = [
      { timeMs: 0, replayLagMs: 0, lagBytes: 0, state: 'streaming' },
      { timeMs: 1, replayLagMs: 4, lagBytes: 4, state: 'streaming' },
      { timeMs: 2, replayLagMs: null, lagBytes: 8, state: 'disconnected' },
      { timeMs: 3, replayLagMs: 8, lagBytes: 8, state: 'streaming' },
    ];
    const lines = chartLines(points, (p) => p.lagBytes, { width: 4, height: 2, log: false, format: String, startMs: 0, endMs: 4 });
    expect(lines).toEqual([
      '8 ┤  ██',
      '0 ┤ ███',
      '  └────',
    ]);
    const replay = chartLines(points, (p) => p.replayLagMs, { width: 4, height: 2, log: true, format: String, startMs: 0, endMs: 4 });
    // On a log scale the smallest figure is the lowest visible bar, the largest the top.
    expect(replay[1]).toBe('4 ┤ ▁!█');
    expect(replay[0]).toBe('8 ┤   █');
  });

  it('prints the summary table and two charts per standby', () => {
    const recording = parseRecording(recordedReports([1, 2, 'stopped', 'stopped', 3]).map((r) => JSON.stringify(r)).join('\n'));
    const text = renderRecordingReport(recording, summarize(recording), { width: 100 }).join('\n');
    expect(text).toMatch(/^5 samples from \S+ \S+ UTC to \S+ \S+ UTC \(4\.00 s\)/);
    expect(text).toMatch(/\nstandby\s+samples\s+replay lag p50\s+p99\s+max\s+lag p50\s+p99\s+max\s+disconnected\n/);
    expect(text).toMatch(/\ns1\s+5\s+2\.000 ms\s+3\.000 ms\s+3\.000 ms\s.*2 samples\n/);
    expect(text).toContain('s1: replay lag (log scale)');
    expect(text).toContain('s2: lag behind the primary');
    expect(renderRecordingReport(parseRecording(''), [], { width: 80 })).toEqual(['no samples in the recording']);
  });
});
