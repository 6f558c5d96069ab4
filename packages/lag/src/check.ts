/**
 * `walship lag --check`: a lag report judged against `--warn` / `--crit`, as a monitoring plugin
 * (Nagios, Icinga, Sensu, check_postgres) reports it: exit 0 OK, 1 WARNING, 2 CRITICAL,
 * 3 UNKNOWN, and one line, `WALSHIP_REPLICATION_LAG STATUS: text | perfdata`.
 *
 * What counts:
 * - no primary answers: UNKNOWN (nothing can be measured; a failover may be under way);
 * - a standby disconnected or diverged, a member that does not answer, a second primary:
 *   CRITICAL, whatever the thresholds (a silent standby is never "0 lag");
 * - a streaming standby: CRITICAL past `--crit`, WARNING past `--warn`, for its lag in bytes
 *   and for its replay lag (the largest of the three lag times).
 * The same judgement colours the live view (`memberSeverity`).
 */
import type { LagReport, MemberLag } from './lag-report.js';
import { formatBytes, formatDuration, formatThreshold, type Threshold } from './units.js';

export const CheckStatus = { ok: 0, warning: 1, critical: 2, unknown: 3 } as const;
export type CheckStatusValue = (typeof CheckStatus)[keyof typeof CheckStatus];

const STATUS_NAMES: Record<CheckStatusValue, string> = { 0: 'OK', 1: 'WARNING', 2: 'CRITICAL', 3: 'UNKNOWN' };

/** The service name at the start of the line, as check_postgres prints POSTGRES_REPLICATION_LAG. */
export const CHECK_NAME = 'WALSHIP_REPLICATION_LAG';

export interface CheckThresholds {
  warn: Threshold | null;
  crit: Threshold | null;
}

export type Severity = 'ok' | 'warning' | 'critical';

export interface MemberJudgement {
  severity: Severity;
  /** Why, for people: `s1 disconnected (no reply for 4.20 s)`, `s2 18.0 MB behind (crit 16.0 MB)`. */
  reason: string | null;
}

function exceeds(member: MemberLag, threshold: Threshold | null): string | null {
  if (threshold === null) return null;
  if (threshold.bytes !== null && member.lagBytes !== null && member.lagBytes > threshold.bytes) {
    return `${formatBytes(member.lagBytes)} behind`;
  }
  if (threshold.durationMs !== null && member.replayLagMs !== null && member.replayLagMs > threshold.durationMs) {
    return `replay lag ${formatDuration(member.replayLagMs)}`;
  }
  return null;
}

/** How one member stands against the thresholds (the primary and healthy standbys are `ok`). */
export function memberSeverity(member: MemberLag, thresholds: CheckThresholds): MemberJudgement {
  switch (member.state) {
    case 'running':
      return { severity: 'ok', reason: null };
    case 'stale':
    case 'conflict':
      return { severity: 'critical', reason: `${member.name} is a second primary (${member.state}, timeline ${member.timeline ?? '?'})` };
    case 'unreachable':
      return { severity: 'critical', reason: `${member.name} does not answer${member.stateDetail === null ? '' : `: ${member.stateDetail}`}` };
    case 'diverged':
      return { severity: 'critical', reason: `${member.name} diverged${member.stateDetail === null ? '' : `: ${member.stateDetail}`}` };
    case 'disconnected': {
      const behind = member.lagBytes === null ? '' : `, ${formatBytes(member.lagBytes)} behind`;
      return { severity: 'critical', reason: `${member.name} disconnected: ${member.stateDetail ?? 'not streaming'}${behind}` };
    }
    default: {
      const critical = exceeds(member, thresholds.crit);
      if (critical !== null) return { severity: 'critical', reason: `${member.name} ${critical} (critical above ${formatThreshold(thresholds.crit!)})` };
      const warning = exceeds(member, thresholds.warn);
      if (warning !== null) return { severity: 'warning', reason: `${member.name} ${warning} (warning above ${formatThreshold(thresholds.warn!)})` };
      return { severity: 'ok', reason: null };
    }
  }
}

/** A perfdata number: no exponent, enough digits for microseconds. */
function perfNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(6).replace(/0+$/, '').replace(/\.$/, '');
}

/** A perfdata label: letters, digits and `_.-` only, so no quoting is needed. */
function perfLabel(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_');
}

function perfdata(report: LagReport, thresholds: CheckThresholds): string {
  const items: string[] = [];
  const limits = (pick: (t: Threshold) => number | null, scale: number) =>
    [thresholds.warn, thresholds.crit].map((t) => (t === null || pick(t) === null ? '' : perfNumber(pick(t)! * scale))).join(';');
  for (const member of report.members) {
    if (member.role !== 'standby') continue;
    const label = perfLabel(member.name);
    if (member.lagBytes !== null) items.push(`${label}_lag=${member.lagBytes}B;${limits((t) => t.bytes, 1)};0`);
    if (member.replayLagMs !== null) items.push(`${label}_replay_lag=${perfNumber(member.replayLagMs / 1000)}s;${limits((t) => t.durationMs, 1 / 1000)};0`);
  }
  return items.join(' ');
}

/** The check's outcome: its exit status and its one line (without a newline). */
export function evaluateCheck(report: LagReport, thresholds: CheckThresholds): { status: CheckStatusValue; line: string } {
  const line = (status: CheckStatusValue, text: string): { status: CheckStatusValue; line: string } => {
    const perf = perfdata(report, thresholds);
    return { status, line: `${CHECK_NAME} ${STATUS_NAMES[status]}: ${text}${perf === '' ? '' : ` | ${perf}`}` };
  };
  if (report.primary === null) {
    const problem = report.problems[0] ?? 'no primary answers';
    return line(CheckStatus.unknown, `${problem}; lag cannot be measured`);
  }
  const critical: string[] = [];
  const warning: string[] = [];
  for (const member of report.members) {
    const { severity, reason } = memberSeverity(member, thresholds);
    if (severity === 'critical') critical.push(reason!);
    else if (severity === 'warning') warning.push(reason!);
  }
  if (critical.length > 0) return line(CheckStatus.critical, [...critical, ...warning].join('; '));
  if (warning.length > 0) return line(CheckStatus.warning, warning.join('; '));
  return line(CheckStatus.ok, summary(report));
}

/** An OK line's text: how many standbys stream, and the largest lags and whose they are. */
function summary(report: LagReport): string {
  const standbys = report.members.filter((m) => m.role === 'standby');
  if (standbys.length === 0) return `primary ${report.primary} on timeline ${report.timeline}, no standbys`;
  const byBytes = standbys.reduce((a, b) => ((b.lagBytes ?? -1) > (a.lagBytes ?? -1) ? b : a));
  const byTime = standbys.reduce((a, b) => ((b.replayLagMs ?? -1) > (a.replayLagMs ?? -1) ? b : a));
  const time = byTime.replayLagMs === null ? 'replay lag -' : `replay lag ${formatDuration(byTime.replayLagMs)} (${byTime.name})`;
  return `${standbys.length} standby${standbys.length === 1 ? '' : 's'} streaming from ${report.primary} on timeline ${report.timeline}; ` +
    `max lag ${formatBytes(byBytes.lagBytes)} (${byBytes.name}), ${time}`;
}
