/**
 * Recordings (`walship lag --record FILE`): one lag report per line, JSON, appended as samples are
 * taken; and what `walship lag --report FILE` makes of them: per standby, its replay lag and
 * lag in bytes over time, and their p50 / p99 / max.
 *
 * A recording may end with half a line (the recorder was killed mid-write) or hold lines from an
 * older or newer walship: a line that does not parse as a report is skipped and counted, never
 * fatal, so a drill's recording is always readable.
 */
import type { LagReport } from './lag-report.js';

/** One standby at one sample. */
export interface SeriesPoint {
  timeMs: number;
  /** Null when there was no figure (idle without heartbeats, or disconnected). */
  replayLagMs: number | null;
  lagBytes: number | null;
  state: string;
}

export interface StandbySeries {
  name: string;
  points: SeriesPoint[];
}

export interface Recording {
  series: StandbySeries[];
  samples: number;
  /** Lines that were not lag reports (a torn last line, another format). */
  skippedLines: number;
  startMs: number | null;
  endMs: number | null;
  /** Timeline changes seen in the recording, in order. */
  timelineChanges: Array<{ timeMs: number; fromTimeline: number | null; toTimeline: number; toPrimary: string }>;
}

function isReport(value: unknown): value is LagReport {
  if (value === null || typeof value !== 'object') return false;
  const candidate = value as { timeMs?: unknown; members?: unknown };
  return typeof candidate.timeMs === 'number' && Array.isArray(candidate.members);
}

/** Reads a recording's text into one series per standby, in the order they first appear. */
export function parseRecording(text: string): Recording {
  const byName = new Map<string, StandbySeries>();
  const changes: Recording['timelineChanges'] = [];
  const seenChanges = new Set<number>();
  let samples = 0;
  let skippedLines = 0;
  let startMs: number | null = null;
  let endMs: number | null = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    let report: unknown;
    try {
      report = JSON.parse(line);
    } catch {
      skippedLines++;
      continue;
    }
    if (!isReport(report)) {
      skippedLines++;
      continue;
    }
    samples++;
    startMs = startMs === null ? report.timeMs : Math.min(startMs, report.timeMs);
    endMs = endMs === null ? report.timeMs : Math.max(endMs, report.timeMs);
    for (const member of report.members) {
      if (member === null || typeof member !== 'object' || member.role !== 'standby' || typeof member.name !== 'string') continue;
      let series = byName.get(member.name);
      if (series === undefined) {
        series = { name: member.name, points: [] };
        byName.set(member.name, series);
      }
      series.points.push({
        timeMs: report.timeMs,
        replayLagMs: typeof member.replayLagMs === 'number' ? member.replayLagMs : null,
        lagBytes: typeof member.lagBytes === 'number' ? member.lagBytes : null,
        state: typeof member.state === 'string' ? member.state : 'unknown',
      });
    }
    for (const change of Array.isArray(report.timelineChanges) ? report.timelineChanges : []) {
      if (typeof change?.timeMs !== 'number' || seenChanges.has(change.timeMs)) continue;
      seenChanges.add(change.timeMs);
      changes.push({ timeMs: change.timeMs, fromTimeline: change.fromTimeline ?? null, toTimeline: change.toTimeline, toPrimary: change.toPrimary });
    }
  }
  for (const series of byName.values()) series.points.sort((a, b) => a.timeMs - b.timeMs);
  return { series: [...byName.values()], samples, skippedLines, startMs, endMs, timelineChanges: changes.sort((a, b) => a.timeMs - b.timeMs) };
}

export interface Percentiles {
  p50: number | null;
  p99: number | null;
  max: number | null;
}

export interface StandbySummary {
  name: string;
  samples: number;
  replayLagMs: Percentiles;
  lagBytes: Percentiles;
  /** Samples in which the standby was disconnected (no lag times, never counted as 0). */
  disconnectedSamples: number;
}

/** Nearest-rank percentile (the value at rank ceil(p * n)) of the non-null values; null when none. */
export function percentile(values: readonly (number | null)[], p: number): number | null {
  const sorted = values.filter((v): v is number => v !== null && Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const rank = Math.max(1, Math.ceil(p * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1]!;
}

function percentiles(values: readonly (number | null)[]): Percentiles {
  return { p50: percentile(values, 0.5), p99: percentile(values, 0.99), max: percentile(values, 1) };
}

export function summarize(recording: Recording): StandbySummary[] {
  return recording.series.map((series) => ({
    name: series.name,
    samples: series.points.length,
    replayLagMs: percentiles(series.points.map((p) => p.replayLagMs)),
    lagBytes: percentiles(series.points.map((p) => p.lagBytes)),
    disconnectedSamples: series.points.filter((p) => p.state === 'disconnected').length,
  }));
}
