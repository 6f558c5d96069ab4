/**
 * `walship lag --report FILE --html OUT`: one self-contained HTML page (no script, stylesheet,
 * font or image from elsewhere; it opens from a file, a CI artifact or a mail) with the summary
 * table and two inline SVG charts of every standby over the recording: replay lag (log scale)
 * and lag in bytes. The figures are embedded as JSON in
 * `<script type="application/json" id="walship-lag-data">`, so a test or a script can read
 * exactly what the charts draw; each standby's line is a `<path data-standby="NAME">`.
 */
import type { Recording, SeriesPoint, StandbySummary } from './recording.js';
import { formatBytes, formatDuration } from './units.js';

/** The embedded data's format version: bump it when its shape changes. */
export const REPORT_DATA_VERSION = 1;

/** The embedded data: what the page draws, for tests and scripts. */
export interface ReportData {
  version: number;
  startMs: number | null;
  endMs: number | null;
  samples: number;
  standbys: Array<{
    name: string;
    /** [timeMs, replayLagMs, lagBytes, state] per sample. */
    points: Array<[number, number | null, number | null, string]>;
    summary: StandbySummary;
  }>;
  timelineChanges: Recording['timelineChanges'];
}

const WIDTH = 960;
const HEIGHT = 300;
const MARGIN = { left: 78, right: 16, top: 16, bottom: 34 };
/** Colour-blind-friendly series colours (Okabe-Ito), reused in turn. */
const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442'];

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** JSON inside a script element: `<` escaped, so no `</script>` can end it early. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function clock(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

interface Axis {
  toY(value: number): number;
  ticks: Array<{ value: number; label: string }>;
}

function logAxis(values: number[], plotTop: number, plotHeight: number): Axis {
  const positive = values.filter((v) => v > 0);
  const max = Math.max(...positive, 1e-3);
  const min = Math.min(...positive, max);
  const low = Math.log10(min === max ? min / 10 : min);
  const high = Math.log10(max);
  const toY = (value: number) => plotTop + plotHeight * (1 - (Math.log10(Math.max(value, min)) - low) / Math.max(1e-9, high - low));
  const ticks: Axis['ticks'] = [];
  for (let exponent = Math.ceil(low); exponent <= Math.floor(high); exponent++) ticks.push({ value: 10 ** exponent, label: formatDuration(10 ** exponent) });
  if (ticks.length === 0) ticks.push({ value: max, label: formatDuration(max) });
  return { toY, ticks };
}

function linearAxis(values: number[], plotTop: number, plotHeight: number): Axis {
  const max = Math.max(1, ...values);
  const toY = (value: number) => plotTop + plotHeight * (1 - value / max);
  return { toY, ticks: [0, 0.25, 0.5, 0.75, 1].map((f) => ({ value: f * max, label: formatBytes(f * max) })) };
}

function chart(title: string, recording: Recording, pick: (p: SeriesPoint) => number | null, log: boolean): string {
  const startMs = recording.startMs ?? 0;
  const spanMs = Math.max(1, (recording.endMs ?? startMs) - startMs);
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const values = recording.series.flatMap((s) => s.points.map(pick)).filter((v): v is number => v !== null && Number.isFinite(v));
  const axis = (log ? logAxis : linearAxis)(values, MARGIN.top, plotHeight);
  const x = (timeMs: number) => MARGIN.left + ((timeMs - startMs) / spanMs) * plotWidth;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${escapeHtml(title)}">`);
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotWidth}" height="${plotHeight}" class="plot"/>`);
  for (const tick of axis.ticks) {
    const y = axis.toY(tick.value).toFixed(1);
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y}" y2="${y}" class="grid"/>`);
    parts.push(`<text x="${MARGIN.left - 6}" y="${y}" class="ylabel">${escapeHtml(tick.label)}</text>`);
  }
  for (const [fraction, anchor] of [[0, 'start'], [0.5, 'middle'], [1, 'end']] as const) {
    parts.push(`<text x="${(MARGIN.left + fraction * plotWidth).toFixed(1)}" y="${HEIGHT - 10}" class="xlabel" text-anchor="${anchor}">${clock(startMs + fraction * spanMs)}</text>`);
  }
  for (const change of recording.timelineChanges) {
    const cx = x(change.timeMs).toFixed(1);
    parts.push(`<line x1="${cx}" x2="${cx}" y1="${MARGIN.top}" y2="${MARGIN.top + plotHeight}" class="failover"/>`);
    parts.push(`<text x="${cx}" y="${MARGIN.top + 12}" class="failover-label">timeline ${change.toTimeline}</text>`);
  }
  recording.series.forEach((series, index) => {
    const colour = PALETTE[index % PALETTE.length]!;
    let d = '';
    let pen = false;
    let disconnectedFrom: number | null = null;
    const bands: string[] = [];
    for (const point of series.points) {
      const value = pick(point);
      if (point.state === 'disconnected') disconnectedFrom ??= point.timeMs;
      else if (disconnectedFrom !== null) {
        bands.push(`<rect x="${x(disconnectedFrom).toFixed(1)}" y="${MARGIN.top + plotHeight - 6}" width="${Math.max(1, x(point.timeMs) - x(disconnectedFrom)).toFixed(1)}" height="6" fill="${colour}" class="disconnected" data-standby="${escapeHtml(series.name)}"/>`);
        disconnectedFrom = null;
      }
      if (value === null || !Number.isFinite(value)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${x(point.timeMs).toFixed(1)} ${axis.toY(value).toFixed(1)} `;
      pen = true;
    }
    if (disconnectedFrom !== null) {
      const end = series.points[series.points.length - 1]!.timeMs;
      bands.push(`<rect x="${x(disconnectedFrom).toFixed(1)}" y="${MARGIN.top + plotHeight - 6}" width="${Math.max(1, x(end) - x(disconnectedFrom)).toFixed(1)}" height="6" fill="${colour}" class="disconnected" data-standby="${escapeHtml(series.name)}"/>`);
    }
    parts.push(`<path d="${d.trim()}" stroke="${colour}" class="series" data-standby="${escapeHtml(series.name)}"><title>${escapeHtml(series.name)}</title></path>`, ...bands);
  });
  parts.push('</svg>');
  return `<figure><figcaption>${escapeHtml(title)}</figcaption>${parts.join('')}</figure>`;
}

/** The embedded data of a recording and its summary. */
export function reportData(recording: Recording, summary: readonly StandbySummary[]): ReportData {
  return {
    version: REPORT_DATA_VERSION,
    startMs: recording.startMs,
    endMs: recording.endMs,
    samples: recording.samples,
    standbys: recording.series.map((series) => ({
      name: series.name,
      points: series.points.map((p) => [p.timeMs, p.replayLagMs, p.lagBytes, p.state]),
      summary: summary.find((s) => s.name === series.name)!,
    })),
    timelineChanges: recording.timelineChanges,
  };
}

/** The page. `title` names what was recorded (the file, a drill). */
export function renderHtmlReport(recording: Recording, summary: readonly StandbySummary[], title: string): string {
  const legend = recording.series.map((series, index) =>
    `<span class="key"><span class="swatch" style="background:${PALETTE[index % PALETTE.length]}"></span>${escapeHtml(series.name)}</span>`).join(' ');
  const rows = summary.map((s) => `<tr><th>${escapeHtml(s.name)}</th><td>${s.samples}</td>` +
    `<td>${formatDuration(s.replayLagMs.p50)}</td><td>${formatDuration(s.replayLagMs.p99)}</td><td>${formatDuration(s.replayLagMs.max)}</td>` +
    `<td>${formatBytes(s.lagBytes.p50)}</td><td>${formatBytes(s.lagBytes.p99)}</td><td>${formatBytes(s.lagBytes.max)}</td>` +
    `<td>${s.disconnectedSamples === 0 ? '-' : s.disconnectedSamples}</td></tr>`).join('\n');
  const span = recording.startMs === null || recording.endMs === null ? 'no samples'
    : `${recording.samples} samples, ${new Date(recording.startMs).toISOString()} to ${new Date(recording.endMs).toISOString()} (${formatDuration(recording.endMs - recording.startMs)})`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>walship lag report: ${escapeHtml(title)}</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1000px; }
h1 { font-size: 20px; margin: 0 0 4px; }
.meta { color: #555; margin-bottom: 16px; }
table { border-collapse: collapse; margin: 12px 0 20px; }
th, td { padding: 4px 10px; text-align: right; border-bottom: 1px solid #ddd; font-variant-numeric: tabular-nums; }
thead th { color: #555; font-weight: 600; }
tbody th { text-align: left; }
figure { margin: 0 0 24px; }
figcaption { font-weight: 600; margin-bottom: 4px; }
svg { width: 100%; height: auto; }
.plot { fill: #fafafa; stroke: #ccc; }
.grid { stroke: #e4e4e4; }
.ylabel { font-size: 11px; fill: #555; text-anchor: end; dominant-baseline: middle; }
.xlabel { font-size: 11px; fill: #555; }
.series { fill: none; stroke-width: 1.6; }
.disconnected { opacity: 0.55; }
.failover { stroke: #b00; stroke-dasharray: 4 3; }
.failover-label { font-size: 11px; fill: #b00; }
.key { margin-right: 16px; white-space: nowrap; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; border-radius: 2px; }
</style>
</head>
<body>
<h1>walship lag report</h1>
<div class="meta">${escapeHtml(title)} · ${escapeHtml(span)}${recording.skippedLines > 0 ? ` · ${recording.skippedLines} lines skipped` : ''}</div>
<table>
<thead><tr><th>standby</th><th>samples</th><th>replay lag p50</th><th>p99</th><th>max</th><th>lag p50</th><th>p99</th><th>max</th><th>disconnected samples</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
<div>${legend}</div>
${chart('Replay lag (log scale)', recording, (p) => p.replayLagMs, true)}
${chart('Lag behind the primary (bytes)', recording, (p) => p.lagBytes, false)}
<p class="meta">Bands at the bottom of a chart: samples where that standby was disconnected (no lag time; its lag in bytes counts from its last known replay position). Dashed lines: timeline changes (failover or switchover).</p>
<script type="application/json" id="walship-lag-data">${scriptJson(reportData(recording, summary))}</script>
</body>
</html>
`;
}
