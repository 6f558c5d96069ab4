/**
 * `walship lag (--node HOST:PORT,... | -f CLUSTER.yaml [--base-port N] [--data-root DIR])
 * [--interval MS] [--once] [--json] [--check --warn T --crit T] [--record FILE] [--timeout S]`:
 * replication lag of a cluster, measured by @walship/lag.
 *
 * - `--once`: two samples `--interval` apart (the rates and ETAs need two), then the report as a
 *   table, or with `--json` as one document (`members[]` with DESIGN.md section 10's keys).
 * - `--check`: one sample judged against `--warn` / `--crit`, one line and the monitoring-plugin
 *   exit status (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; a bad threshold is UNKNOWN too).
 * - otherwise the live view, refreshed every `--interval` until Ctrl-C (see lag/live-view.ts).
 * - `--record FILE` appends every sample to FILE as a JSON line (see `lag --report`).
 *
 * The members come from `--node`, or from a cluster config with `-f` (lag/cluster-members.ts:
 * the config's members by name, the cluster's live state followed through failovers).
 * `runLag` takes any member list or MemberSource; `runClusterLag` is the `-f` form, which
 * `npm start` (scripts/start-demo.mjs) runs in-process with its own footer and Ctrl-C.
 *
 * Under `--check` every failure is a monitoring plugin's: UNKNOWN (3) and one line on stdout,
 * whether it is a bad threshold, a config that does not load or an unexpected error.
 */
import * as fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClusterConfig } from '@walship/cluster';
import type { CheckThresholds, LagReport, MemberAddress, Threshold } from '@walship/lag';
import { CliError, ExitCode, formatErrorText, usageError } from '../cli-error.js';
import { clusterIo, loadConfig, useClusterCredentials } from '../cluster-options.js';
import type { CliIo } from '../io.js';
import type { MemberSource } from '../lag/cluster-members.js';
import type { LiveViewExtras } from '../lag/live-view.js';
import { StatusSessions } from '../lag/status-sessions.js';
import { formatNodeAddress, resolveNodes, type NodeAddress } from '../options.js';
import { printJson } from '../output.js';

export interface LagOptions {
  node?: NodeAddress[];
  /** -f CLUSTER.yaml, with its overrides. */
  file?: string;
  basePort?: number;
  dataRoot?: string;
  /** Milliseconds (`500`) or a duration (`2s`); default 1000. */
  interval?: string;
  once?: boolean;
  json?: boolean;
  check?: boolean;
  warn?: string;
  crit?: string;
  record?: string;
  report?: string;
  html?: string;
  /** Milliseconds each member has to answer a sample (from --timeout S). */
  timeout?: number;
}

/** The refresh interval when none is given: a live view that moves every second. */
export const DEFAULT_INTERVAL_MS = 1000;

/**
 * How long a member has to answer in `--once` and `--check`: long enough for a loaded node, short
 * enough that a stopped one does not hold a monitoring check past its own timeout (Nagios' is
 * 10 s by default).
 */
export const DEFAULT_MEMBER_TIMEOUT_MS = 3000;

/** The members of `--node HOST:PORT,...` (their names come from the nodes themselves). */
export function membersFromNodes(nodes: readonly NodeAddress[]): MemberAddress[] {
  return nodes.map((node) => ({ host: node.host, port: node.port }));
}

export async function run(options: LagOptions, io: CliIo): Promise<number> {
  try {
    if (options.report !== undefined) {
      if (options.node !== undefined || options.file !== undefined) {
        throw usageError('--report reads a recording; it takes no --node or -f', 'Run walship lag --report FILE [--html OUT] alone.');
      }
      const { runReport } = await import('../lag/report-command.js');
      return await runReport(options.report, { html: options.html, json: options.json === true }, io);
    }
    if (options.html !== undefined) throw usageError('--html goes with --report', 'Record samples with --record FILE, then run walship lag --report FILE --html OUT.');
    if (options.file !== undefined) {
      if (options.node !== undefined) throw usageError('give the members with --node or -f, not both', 'With -f the members are the cluster config\'s.');
      const config = await loadConfig({ file: options.file, basePort: options.basePort, dataRoot: options.dataRoot });
      const lagIo = clusterIo(config, io);
      await useClusterCredentials(config, lagIo);
      return await runClusterLag(config, options, lagIo);
    }
    if (options.basePort !== undefined || options.dataRoot !== undefined) {
      throw usageError('--base-port and --data-root go with -f CLUSTER.yaml', 'Give the cluster config with -f, or the nodes with --node.');
    }
    return await runLag(membersFromNodes(resolveNodes(options.node, io.env)), options, io);
  } catch (error) {
    if (options.check === true) return checkUnknown(error, io);
    throw error;
  }
}

/**
 * Under --check, a failure of any kind is UNKNOWN: one line on stdout, status 3 (a monitoring
 * system reads only those; CRITICAL would page someone for a typo). The details go to stderr.
 */
export function checkUnknown(error: unknown, io: CliIo): number {
  const message = error instanceof Error ? error.message : String(error);
  io.stdout.write(`WALSHIP_REPLICATION_LAG UNKNOWN: ${message.replace(/\s+/g, ' ').trim()}\n`);
  const detail = error !== null && typeof error === 'object' ? (error as { detail?: unknown; hint?: unknown }) : {};
  if (typeof detail.detail === 'string' || typeof detail.hint === 'string') {
    io.stderr.write(formatErrorText(message, typeof detail.detail === 'string' ? detail.detail : undefined, typeof detail.hint === 'string' ? detail.hint : undefined));
  }
  return ExitCode.unreachable;
}

/** `walship lag -f CLUSTER.yaml`: the config's members, the cluster's live state followed. */
export async function runClusterLag(config: ClusterConfig, options: LagOptions, io: CliIo, extras: LiveViewExtras = {}): Promise<number> {
  const { clusterMemberSource } = await import('../lag/cluster-members.js');
  const { readClusterStateFor } = await import('@walship/cluster');
  return runLag(clusterMemberSource(config, () => readClusterStateFor(config)), options, io, extras);
}

/** A --warn / --crit / --interval value that does not parse. */
class BadValue extends Error {}

/** A fixed member list (--node) as a MemberSource. */
function fixedMembers(members: readonly MemberAddress[]): MemberSource {
  return { members: () => members, annotate: (report) => report, unreachableHint: 'Are the nodes running? Check the addresses given to --node.' };
}

/**
 * Runs `walship lag` over `members` (from --node) or a MemberSource (a cluster config's);
 * `extras` are for callers that run the live view themselves (npm start): their Ctrl-C, footer
 * lines, and each report.
 */
export async function runLag(members: readonly MemberAddress[] | MemberSource, options: LagOptions, io: CliIo, extras: LiveViewExtras = {}): Promise<number> {
  const lag = await import('@walship/lag');
  const source = Array.isArray(members) ? fixedMembers(members as readonly MemberAddress[]) : (members as MemberSource);
  let thresholds: CheckThresholds;
  let intervalMs: number;
  try {
    const threshold = (text: string | undefined, flag: string): Threshold | null => {
      if (text === undefined) return null;
      const parsed = lag.parseThreshold(text);
      if (!parsed.ok) throw new BadValue(`${flag}: ${parsed.problem}`);
      return parsed.value;
    };
    thresholds = { warn: threshold(options.warn, '--warn'), crit: threshold(options.crit, '--crit') };
    const interval = options.interval === undefined ? { ok: true as const, value: DEFAULT_INTERVAL_MS } : lag.parseInterval(options.interval);
    if (!interval.ok) throw new BadValue(`--interval: ${interval.problem}`);
    intervalMs = interval.value;
  } catch (error) {
    if (!(error instanceof BadValue)) throw error;
    // A monitoring system reads a usage problem from the exit status: UNKNOWN, not CRITICAL (2).
    if (options.check === true) {
      io.stdout.write(`${lag.CHECK_NAME} UNKNOWN: ${error.message}\n`);
      return lag.CheckStatus.unknown;
    }
    throw usageError(error.message, 'Durations take a unit (500ms, 10s), sizes too (16MB); both together: 10s,16MB.');
  }
  const initialMembers = source.members();
  if (initialMembers.length === 0) throw usageError('no member to watch', 'Give --node HOST:PORT,... or -f CLUSTER.yaml.');
  if (options.json === true && options.once !== true && options.check !== true) {
    throw usageError('--json prints one document: it goes with --once or --check', 'For a stream of samples, record them with --record FILE (one JSON line each).');
  }

  const live = options.once !== true && options.check !== true;
  const timeoutMs = options.timeout ?? (live ? Math.min(DEFAULT_MEMBER_TIMEOUT_MS, Math.max(500, intervalMs)) : DEFAULT_MEMBER_TIMEOUT_MS);
  const sessions = new StatusSessions(io);
  const monitor = new lag.LagMonitor(initialMembers, sessions.fetch, { timeoutMs });
  // Each sample asks the members the source names now (a cluster's live state is read again).
  let first = true;
  const sampler = {
    sample: async (): Promise<LagReport> => {
      if (!first) monitor.setMembers(source.members());
      first = false;
      return source.annotate(await monitor.sample());
    },
  };
  const recorder = options.record === undefined ? null : openRecorder(options.record);
  const record = recorder === null ? null : (report: LagReport) => recorder.write(report);
  try {
    if (options.check === true) {
      const report = await sampler.sample();
      record?.(report);
      const result = lag.evaluateCheck(report, thresholds);
      if (options.json === true) printJson(io.stdout, { ...report, check: { status: result.status, line: result.line } });
      else io.stdout.write(`${result.line}\n`);
      return result.status;
    }
    if (options.once === true) {
      const firstReport = await sampler.sample();
      record?.(firstReport);
      await sleep(Math.max(0, firstReport.timeMs + intervalMs - Date.now()));
      const report = await sampler.sample();
      record?.(report);
      if (options.json === true) printJson(io.stdout, report);
      else io.stdout.write(`${lag.renderLagReport(report, { thresholds }).join('\n')}\n`);
      return noneAnswered(report, source, io);
    }
    const { runLiveView } = await import('../lag/live-view.js');
    return await runLiveView(sampler, { intervalMs, thresholds, record, footer: extras.footer, onReport: extras.onReport }, io, extras.signal === undefined ? {} : { signal: extras.signal });
  } finally {
    recorder?.close();
    await sessions.close();
  }
}

/** Exit 3, with an error on stderr, when not one member answered (DESIGN: node unreachable). */
function noneAnswered(report: LagReport, source: MemberSource, io: CliIo): number {
  if (report.members.some((member) => member.reachable === true)) return ExitCode.ok;
  const errors = report.members.filter((member) => member.error !== null).map((member) => `${member.name}: ${member.error}`);
  const error = new CliError(ExitCode.unreachable, `could not reach any member (${source.members().map((m) => formatNodeAddress(m)).join(', ')})`, {
    detail: errors.join('; '),
    hint: source.unreachableHint,
  });
  io.stderr.write(formatErrorText(error.message, error.detail, error.hint));
  return ExitCode.unreachable;
}

export interface Recorder {
  write(report: LagReport): void;
  close(): void;
}

/** `--record FILE`: appends each report as one JSON line; refuses a file it cannot open, at once. */
export function openRecorder(file: string): Recorder {
  let fd: number;
  try {
    fd = fs.openSync(file, 'a');
  } catch (error) {
    throw new CliError(ExitCode.failed, `could not open recording file "${file}": ${(error as Error).message}`, {
      hint: 'Check that its directory exists and is writable.',
    });
  }
  return {
    // One write per line, so a reader (or a crash) never sees half a sample.
    write: (report) => fs.writeSync(fd, `${JSON.stringify(report)}\n`),
    close: () => fs.closeSync(fd),
  };
}
