/**
 * A drill's replication lag, recorded the way `walship lag -f FILE --record` records it: a
 * LagMonitor on the cluster config's members (lag -f's member source, the live state followed
 * through the drill's failover) samples every DRILL_LAG_INTERVAL_MS while the drill runs. When
 * the drill is over, its artifacts folder gets:
 *
 * - `lag.jsonl`: the samples, one lag report per line (`walship lag --report` reads it);
 * - `lag.html`: `lag --report --html`'s self-contained page, the lag of each standby over the
 *   drill with the timeline change marked;
 *
 * and the drill's report (printed, and `report.json` in the folder) gets `lag`: both paths, the
 * sample count, and each standby's p50 / p99 / max replay lag and lag in bytes.
 *
 * The recording never changes the drill's verdict: a member that does not answer is a sample
 * like any other, and a recording that cannot be written is said in `lag.error`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readClusterStateFor, type ClusterConfig } from '@walship/cluster';
import { formatBytes, formatDuration, LagMonitor, parseRecording, renderHtmlReport, summarize, type StandbySummary } from '@walship/lag';
import type { CliIo } from '../io.js';
import { clusterMemberSource } from './cluster-members.js';
import { StatusSessions } from './status-sessions.js';

/** Four samples a second: a failover that settles in about 1.5 s shows as several points. */
export const DRILL_LAG_INTERVAL_MS = 250;

/** Each member's answer is bounded by this: a hung primary (SIGSTOP) costs a sample, not the recording. */
export const DRILL_LAG_TIMEOUT_MS = 1_000;

/**
 * Samples kept in memory until the drill ends (a line of a three-member report is about 3 kB):
 * half an hour at DRILL_LAG_INTERVAL_MS, far more than a drill lasts. Past it, samples are
 * counted and dropped.
 */
export const DRILL_LAG_SAMPLES_MAX = 7_200;

/** What a drill's report says of its lag recording. */
export interface DrillLag {
  /** ARTIFACTS/lag.jsonl and ARTIFACTS/lag.html; null when they could not be written. */
  recording: string | null;
  chart: string | null;
  samples: number;
  droppedSamples: number;
  standbys: StandbySummary[];
  /** Why the files are missing, or null. */
  error: string | null;
}

/**
 * Runs `drill` while recording the cluster's lag; then writes the recording and its chart into
 * the drill's artifacts folder and adds `lag` to its report (and to the folder's report.json).
 */
export async function recordDrillLag<R extends { artifacts: string; scenario: string }>(
  config: ClusterConfig,
  io: CliIo,
  drill: () => Promise<R>,
): Promise<R & { lag: DrillLag }> {
  const source = clusterMemberSource(config, () => readClusterStateFor(config));
  const sessions = new StatusSessions(io);
  const monitor = new LagMonitor(source.members(), sessions.fetch, { timeoutMs: DRILL_LAG_TIMEOUT_MS });
  const lines: string[] = [];
  let dropped = 0;
  const stop = new AbortController();

  const recorder = (async () => {
    while (!stop.signal.aborted) {
      const started = Date.now();
      monitor.setMembers(source.members());
      const report = source.annotate(await monitor.sample());
      if (lines.length < DRILL_LAG_SAMPLES_MAX) lines.push(JSON.stringify(report));
      else dropped++;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          stop.signal.removeEventListener('abort', done);
          resolve();
        };
        const timer = setTimeout(done, Math.max(0, started + DRILL_LAG_INTERVAL_MS - Date.now()));
        stop.signal.addEventListener('abort', done, { once: true });
      });
    }
  })();

  let report: R;
  try {
    report = await drill();
  } finally {
    stop.abort();
    await recorder;
    await sessions.close();
  }

  const text = lines.length === 0 ? '' : `${lines.join('\n')}\n`;
  const recording = parseRecording(text);
  const standbys = summarize(recording);
  const files = { recording: path.join(report.artifacts, 'lag.jsonl'), chart: path.join(report.artifacts, 'lag.html') };
  let drillLag: DrillLag;
  try {
    fs.writeFileSync(files.recording, text);
    fs.writeFileSync(files.chart, renderHtmlReport(recording, standbys, `drill ${report.scenario}: ${path.basename(report.artifacts)}`));
    drillLag = { ...files, samples: recording.samples, droppedSamples: dropped, standbys, error: null };
  } catch (error) {
    drillLag = { recording: null, chart: null, samples: recording.samples, droppedSamples: dropped, standbys, error: (error as Error).message };
  }
  const withLag = { ...report, lag: drillLag };
  // The folder's report.json is the drill's report as printed: it gets the lag too.
  const reportFile = path.join(report.artifacts, 'report.json');
  if (fs.existsSync(reportFile)) fs.writeFileSync(reportFile, `${JSON.stringify(withLag, null, 2)}\n`);
  return withLag;
}

/** The drill report's lag lines (text form). */
export function formatDrillLag(drillLag: DrillLag): string {
  const lines = drillLag.standbys.map((standby) =>
    `  lag of ${standby.name}: replay p50 ${formatDuration(standby.replayLagMs.p50)}, p99 ${formatDuration(standby.replayLagMs.p99)}, ` +
      `max ${formatDuration(standby.replayLagMs.max)}; at most ${formatBytes(standby.lagBytes.max)} behind; disconnected in ${standby.disconnectedSamples} of ${standby.samples} samples`);
  lines.push(drillLag.chart === null
    ? `  lag chart: not written (${drillLag.error ?? 'no samples'})`
    : `  lag chart: ${drillLag.chart} (${drillLag.samples} samples in ${drillLag.recording})`);
  return `${lines.join('\n')}\n`;
}
