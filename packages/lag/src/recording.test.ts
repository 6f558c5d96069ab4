import { describe, expect, it } from 'vitest';
import { parseRecording, percentile, summarize } from './recording.js';
import { MB, recordedReports } from './test-support.js';

describe('recordings', () => {
  it('reads one series per standby, skipping lines that are not samples (a torn last line)', () => {
    const reports = recordedReports([1, 2, 'stopped', 4]);
    const text = `${reports.map((r) => JSON.stringify(r)).join('\n')}\n{"not":"a report"}\n${JSON.stringify(reports[0]).slice(0, 40)}`;
    const recording = parseRecording(text);
    expect(recording.samples).toBe(4);
    expect(recording.skippedLines).toBe(2);
    expect(recording.startMs).toBe(1_000_000);
    expect(recording.endMs).toBe(1_003_000);
    expect(recording.series.map((s) => [s.name, s.points.length])).toEqual([['s1', 4], ['s2', 2]]);
    expect(recording.series[0]!.points.map((p) => [p.replayLagMs, p.state])).toEqual([[1, 'streaming'], [2, 'streaming'], [null, 'disconnected'], [4, 'streaming']]);
    expect(recording.series[0]!.points[2]!.lagBytes).toBe(12 * MB);
  });

  it('summarizes p50, p99 and max per standby, counting disconnected samples apart', () => {
    const lags = Array.from({ length: 100 }, (_, i) => i + 1);
    const summary = summarize(parseRecording(recordedReports([...lags, 'stopped']).map((r) => JSON.stringify(r)).join('\n')));
    expect(summary[0]).toMatchObject({ name: 's1', samples: 101, disconnectedSamples: 1, replayLagMs: { p50: 50, p99: 99, max: 100 } });
    expect(summary[1]).toMatchObject({ name: 's2', samples: 99, replayLagMs: { p50: 1, p99: 1, max: 1 } });
  });

  it('takes nearest-rank percentiles of the values there are', () => {
    expect(percentile([], 0.5)).toBeNull();
    expect(percentile([null, 3], 0.99)).toBe(3);
    expect(percentile([5, 1, 3, 2, 4], 0.5)).toBe(3);
    expect(percentile([5, 1, 3, 2, 4], 1)).toBe(5);
    expect(percentile([5, 1, 3, 2, 4], 0)).toBe(1);
  });
});
