/**
 * `walship lag --report FILE` for a terminal: the p50 / p99 / max table per standby, and for each
 * standby a chart of its replay lag and of its lag in bytes over the recording. Bars are drawn in
 * eighths of a row (▁ to █); replay lag is on a log scale (microseconds to minutes on one
 * chart), bytes on a linear one. A column where the standby was disconnected, with no lag time,
 * shows `!` on the baseline: never an empty "no lag" gap.
 */
import { columns } from './render-text.js';
import type { Recording, SeriesPoint, StandbySummary } from './recording.js';
import { formatBytes, formatDuration } from './units.js';

const EIGHTHS = ' ▁▂▃▄▅▆▇█';

export interface ChartOptions {
  width: number;
  height: number;
  /** Log scale (replay lag) or linear (bytes). */
  log: boolean;
  format: (value: number) => string;
  startMs: number;
  endMs: number;
}

/** The chart's columns: the worst value of each time slice; `disconnected` when only that was seen. */
function bucket(points: readonly SeriesPoint[], pick: (p: SeriesPoint) => number | null, options: ChartOptions): Array<number | 'disconnected' | null> {
  const spanMs = Math.max(1, options.endMs - options.startMs);
  const out: Array<number | 'disconnected' | null> = new Array(options.width).fill(null);
  for (const point of points) {
    const column = Math.min(options.width - 1, Math.floor(((point.timeMs - options.startMs) / spanMs) * options.width));
    if (column < 0) continue;
    const value = pick(point);
    const current = out[column];
    if (value === null) {
      if (current === null && point.state === 'disconnected') out[column] = 'disconnected';
    } else if (current === null || current === 'disconnected' || value > current) {
      out[column] = value;
    }
  }
  return out;
}

/** A bar chart of one series as lines of text, with the scale on the left. */
export function chartLines(points: readonly SeriesPoint[], pick: (p: SeriesPoint) => number | null, options: ChartOptions): string[] {
  const values = bucket(points, pick, options);
  const numbers = values.filter((v): v is number => typeof v === 'number');
  const max = Math.max(0, ...numbers);
  const min = options.log ? Math.min(...numbers.filter((v) => v > 0), max) : 0;
  const level = (value: number): number => {
    if (max <= 0 || value <= 0) return 0;
    if (!options.log) return value / max;
    // log(min) maps to the lowest visible bar, log(max) to the top.
    if (max === min) return 1;
    return 1 / (options.height * 8) + (1 - 1 / (options.height * 8)) * (Math.log(value / min) / Math.log(max / min));
  };
  const eighths = values.map((v) => (typeof v === 'number' ? Math.max(v > 0 ? 1 : 0, Math.round(level(v) * options.height * 8)) : 0));
  const top = options.format(max);
  const bottom = options.format(min);
  const labelWidth = Math.max(top.length, bottom.length);
  const lines: string[] = [];
  for (let row = 0; row < options.height; row++) {
    const floor = (options.height - 1 - row) * 8;
    const cells = eighths.map((e, column) => {
      if (row === options.height - 1 && values[column] === 'disconnected') return '!';
      const fill = e - floor;
      return fill <= 0 ? ' ' : EIGHTHS[Math.min(8, fill)]!;
    }).join('');
    const label = row === 0 ? top : row === options.height - 1 ? bottom : '';
    lines.push(`${label.padStart(labelWidth)} ┤${cells}`);
  }
  lines.push(`${' '.repeat(labelWidth)} └${'─'.repeat(options.width)}`);
  return lines;
}

function clock(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

/** The whole text report: summary table, then two charts per standby. */
export function renderRecordingReport(recording: Recording, summary: readonly StandbySummary[], options: { width: number }): string[] {
  const lines: string[] = [];
  if (recording.startMs === null || recording.endMs === null) {
    return [`no samples in the recording${recording.skippedLines > 0 ? ` (${recording.skippedLines} lines that are not lag samples)` : ''}`];
  }
  lines.push(`${recording.samples} samples from ${clock(recording.startMs)} to ${clock(recording.endMs)} (${formatDuration(recording.endMs - recording.startMs)})` +
    (recording.skippedLines > 0 ? `; ${recording.skippedLines} lines skipped` : ''));
  for (const change of recording.timelineChanges) lines.push(`timeline ${change.fromTimeline ?? '?'} → ${change.toTimeline} at ${clock(change.timeMs)} (primary ${change.toPrimary})`);
  lines.push('');
  if (summary.length === 0) return [...lines, 'no standby in the recording'];
  lines.push(...columns(
    ['standby', 'samples', 'replay lag p50', 'p99', 'max', 'lag p50', 'p99', 'max', 'disconnected'],
    summary.map((s) => [
      s.name, String(s.samples),
      formatDuration(s.replayLagMs.p50), formatDuration(s.replayLagMs.p99), formatDuration(s.replayLagMs.max),
      formatBytes(s.lagBytes.p50), formatBytes(s.lagBytes.p99), formatBytes(s.lagBytes.max),
      s.disconnectedSamples === 0 ? '-' : `${s.disconnectedSamples} samples`,
    ]),
  ));
  const chartWidth = Math.max(20, Math.min(120, options.width - 14));
  for (const series of recording.series) {
    // No more columns than samples: a column without a sample would read as a gap in the data.
    const base = { width: Math.max(1, Math.min(chartWidth, series.points.length)), height: 6, startMs: recording.startMs, endMs: recording.endMs };
    lines.push('', `${series.name}: replay lag (log scale)`);
    lines.push(...chartLines(series.points, (p) => p.replayLagMs, { ...base, log: true, format: (v) => formatDuration(v) }));
    lines.push(`${series.name}: lag behind the primary`);
    lines.push(...chartLines(series.points, (p) => p.lagBytes, { ...base, log: false, format: (v) => formatBytes(v) }));
  }
  lines.push('', `time →  ${clock(recording.startMs)} … ${clock(recording.endMs)};  ! disconnected`);
  return lines;
}
