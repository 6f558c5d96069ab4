/**
 * A lag report as text for people: the table `walship lag --once` prints and the live view
 * redraws (with a sparkline column and colours there). Widths are measured on the plain text
 * and colours applied afterwards, so escape codes never shift the columns.
 */
import { memberSeverity, type CheckThresholds, type Severity } from './check.js';
import type { ClusterView } from './cluster-view.js';
import { KEEPING_UP_LAG_MS } from './constants.js';
import type { LagReport, MemberLag } from './lag-report.js';
import { formatBytes, formatDuration, formatRate, formatThreshold } from './units.js';

/** Colours a piece of text by what it means; the plain painter returns it unchanged. */
export type Paint = (style: Severity | 'dim' | 'bold' | 'notice', text: string) => string;

export const PLAIN: Paint = (_style, text) => text;

const ANSI: Record<Parameters<Paint>[0], string> = {
  ok: '\u001b[32m', warning: '\u001b[33m', critical: '\u001b[31;1m', dim: '\u001b[2m', bold: '\u001b[1m', notice: '\u001b[36m',
};

/** ANSI colours (SGR), reset after each piece. */
export const ANSI_PAINT: Paint = (style, text) => (text === '' ? text : `${ANSI[style]}${text}\u001b[0m`);

export interface RenderOptions {
  thresholds: CheckThresholds;
  paint?: Paint;
  /** Per member name, a sparkline to show in a last column (the live view's). */
  sparklines?: ReadonlyMap<string, string>;
  /** The local time of day is shown by default; tests fix the zone. */
  timeZone?: string;
}

/**
 * Under a steady write load a standby that keeps pace is always a little behind and gains
 * nothing (its replay rate is the WAL rate): "not gaining" would read as a problem. It is keeping
 * up while it streams less than KEEPING_UP_LAG_MS of WAL (at the current rate) behind.
 */
export function keepingUp(member: MemberLag, walRateBytesPerSecond: number | null): boolean {
  if (member.state !== 'streaming' || member.lagBytes === null || walRateBytesPerSecond === null) return false;
  return member.lagBytes <= (walRateBytesPerSecond * KEEPING_UP_LAG_MS) / 1000;
}

function catchUp(member: MemberLag, walRateBytesPerSecond: number | null): string {
  if (member.role !== 'standby') return '';
  const rate = member.catchUpRateBytesPerSecond;
  if (rate === null) return '-';
  if (member.catchUpEtaMs === null) {
    if (member.lagBytes === 0) return formatRate(rate);
    return `${formatRate(rate)}, ${keepingUp(member, walRateBytesPerSecond) ? 'keeping up' : 'not gaining'}`;
  }
  if (member.catchUpEtaMs === 0) return formatRate(rate);
  return `${formatRate(rate)}, ETA ${formatDuration(member.catchUpEtaMs)}`;
}

function stateText(member: MemberLag): string {
  // A fenced old primary is shown as such whatever it answers: it must rejoin before it serves.
  const fenced = member.clusterRole === 'fenced';
  if (member.reachable === false && member.state !== 'unreachable') return `${member.state} (no answer${fenced ? ', fenced' : ''})`;
  return fenced ? `${member.state} (fenced)` : member.state;
}

/** `cluster NAME · state: primary P on timeline T · fenced: F`: what the cluster's live state says. */
export function clusterLine(view: ClusterView): string {
  if (view.stateError !== null || view.statePrimary === null) return `cluster ${view.name} · state: -`;
  const byRole = (role: string) => Object.entries(view.roles).filter(([, r]) => r === role).map(([name]) => name);
  const fenced = byRole('fenced');
  const uninitialized = byRole('uninitialized');
  return [
    `cluster ${view.name} · state: primary ${view.statePrimary} on timeline ${view.stateTimeline ?? '?'}`,
    ...(fenced.length > 0 ? [`fenced: ${fenced.join(', ')}`] : []),
    ...(uninitialized.length > 0 ? [`not created: ${uninitialized.join(', ')}`] : []),
  ].join(' · ');
}

function clock(timeMs: number, timeZone: string | undefined): string {
  return new Date(timeMs).toLocaleTimeString('en-GB', { hour12: false, ...(timeZone === undefined ? {} : { timeZone }) });
}

/** Cells padded to their column's width (in characters, not UTF-16 units: sparklines), two spaces apart. */
export function columns(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  const length = (text: string) => [...text].length;
  const widths = headers.map((header, column) => Math.max(length(header), ...rows.map((row) => length(row[column] ?? ''))));
  const line = (cells: readonly string[]) =>
    cells.map((cell, column) => (column === cells.length - 1 ? cell : cell + ' '.repeat(widths[column]! - length(cell)))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)];
}

const HEADERS = ['member', 'role', 'state', 'sync', 'lag', 'write lag', 'flush lag', 'replay lag', 'replay delay', 'catch-up', 'LSN'];

/** The report as lines of text (no trailing newline on the last). */
export function renderLagReport(report: LagReport, options: RenderOptions): string[] {
  const paint = options.paint ?? PLAIN;
  const lines: string[] = [];
  const primary = report.primary === null
    ? paint('critical', 'no primary')
    : `primary ${paint('bold', report.primary)} on timeline ${report.timeline}`;
  lines.push(`${primary} · flush ${report.primaryFlushLsn ?? '-'} · WAL ${formatRate(report.walRateBytesPerSecond)} · ${clock(report.timeMs, options.timeZone)}`);
  if (report.cluster !== undefined) lines.push(paint('dim', clusterLine(report.cluster)));
  for (const change of report.timelineChanges.slice(-3)) {
    lines.push(paint('notice', `timeline ${change.fromTimeline ?? '?'} → ${change.toTimeline} at ${clock(change.timeMs, options.timeZone)}: ${change.fromPrimary ?? '?'} → ${change.toPrimary}`));
  }
  for (const problem of report.problems) lines.push(paint('critical', `! ${problem}`));
  lines.push('');

  const sparks = options.sparklines;
  // The sparkline sits beside the replay lag it draws, so a narrow terminal cuts the LSN instead.
  const sparkColumn = HEADERS.indexOf('replay lag') + 1;
  const headers = sparks === undefined ? HEADERS : [...HEADERS.slice(0, sparkColumn), 'last 5 min', ...HEADERS.slice(sparkColumn)];
  const rows = report.members.map((member) => {
    const cells = [
      `${'  '.repeat(Math.max(0, member.depth))}${member.name}`,
      member.role,
      stateText(member),
      member.syncState ?? '-',
      formatBytes(member.lagBytes),
      formatDuration(member.writeLagMs),
      formatDuration(member.flushLagMs),
      formatDuration(member.replayLagMs),
      formatDuration(member.replayDelayMs),
      catchUp(member, report.walRateBytesPerSecond) || '-',
      member.lsn ?? '-',
    ];
    if (sparks !== undefined) cells.splice(sparkColumn, 0, sparks.get(member.name) ?? '');
    return { member, cells };
  });
  const table = columns(headers, rows.map((row) => row.cells));
  lines.push(paint('dim', table[0]!));
  rows.forEach(({ member }, index) => {
    const { severity } = memberSeverity(member, options.thresholds);
    const text = table[index + 1]!;
    lines.push(severity === 'ok' ? text : paint(severity, text));
  });

  if (report.slots.length > 0) {
    const slotTable = columns(['slot', 'active', 'WAL status', 'retained', 'safe left', 'invalidated in'], report.slots.map((slot) => [
      slot.name, slot.active ? 'yes' : 'no', slot.walStatus ?? '-', formatBytes(slot.retainedBytes), formatBytes(slot.safeWalSizeBytes),
      slot.invalidationEtaMs === null ? '-' : slot.invalidationEtaMs === 0 ? 'at the next checkpoint' : formatDuration(slot.invalidationEtaMs),
    ]));
    lines.push('', paint('dim', slotTable[0]!));
    report.slots.forEach((slot, index) => {
      const text = slotTable[index + 1]!;
      lines.push(slot.walStatus === 'lost' || slot.walStatus === 'unreserved' ? paint('critical', text) : text);
    });
  }
  const { warn, crit } = options.thresholds;
  if (warn !== null || crit !== null) {
    lines.push('', paint('dim', `thresholds: warning above ${warn === null ? '-' : formatThreshold(warn)}, critical above ${crit === null ? '-' : formatThreshold(crit)}`));
  }
  return lines;
}
