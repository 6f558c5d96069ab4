/**
 * The lag monitor on a cluster config: cluster-configs/local-3node.yaml as shipped (n1 primary, s1
 * synchronous, s2 asynchronous, the failover monitor automatic), moved to free ports with
 * --base-port and to a temporary data root with --data-root.
 *
 * - `walship lag -f FILE --once --json`: the config's members by their names, on the overridden
 *   ports, with the cluster's live state beside them.
 * - `walship drill kill-primary`: the drill records its lag the way `lag --record` does; the
 *   artifacts folder has lag.jsonl and lag.html (each standby's chart data embedded: exactly
 *   what the recording holds), and the report (printed and report.json) has `lag`.
 * - After the drill's failover, `lag -f` finds the new primary, as the live state names it.
 * - Once the cluster is down, `lag -f --check` is UNKNOWN.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, freePortRange, tempDir, walship } from './helpers/node.js';

const CONFIG = path.join(ROOT, 'cluster-configs', 'local-3node.yaml');
const SECTION_10_KEYS = ['name', 'address', 'port', 'metricsPort', 'role', 'state', 'timeline', 'lsn', 'lagBytes', 'writeLagMs', 'flushLagMs', 'replayLagMs', 'syncState'];

interface LagMember {
  name: string; port: number | null; metricsPort: number | null; role: string; state: string; timeline: number | null;
  syncState: string | null; replayLagMs: number | null; lagBytes: number | null; clusterRole?: string | null;
}
interface LagDocument {
  primary: string | null;
  timeline: number | null;
  members: LagMember[];
  problems: string[];
  cluster?: { name: string; statePrimary: string | null; stateTimeline: number | null; roles: Record<string, string> };
}
interface StandbySummary { name: string; samples: number; disconnectedSamples: number; replayLagMs: { p50: number | null; max: number | null } }
interface DrillDocument {
  verdict: string; reasons: string[]; artifacts: string; primaryBefore: string; primaryAfter: string; timelines: number[];
  lag: { recording: string; chart: string; samples: number; standbys: StandbySummary[]; error: string | null };
}

describe('walship lag -f and drills on local-3node.yaml', () => {
  let dir: string;
  let dataRoot: string;
  let basePort: number;
  const overrides = () => ['-f', CONFIG, '--base-port', String(basePort), '--data-root', dataRoot];

  function lagOnce(): LagDocument {
    const result = walship(['lag', ...overrides(), '--once', '--json', '--interval', '200']);
    expect(result.status, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as LagDocument;
  }

  beforeAll(() => {
    dir = tempDir('lag-cluster');
    dataRoot = path.join(dir, 'data');
  });

  beforeAll(async () => {
    basePort = await freePortRange(3);
    const up = walship(['cluster', 'up', ...overrides(), '--timeout', '20', '--quiet']);
    expect(up.status, up.stderr).toBe(0);
  });

  afterAll(() => {
    if (dataRoot !== undefined && basePort !== undefined) walship(['cluster', 'down', ...overrides(), '--mode', 'immediate', '--quiet']);
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lag -f watches the config\'s members by name, on the overridden ports, with the live state beside them', () => {
    const document = lagOnce();
    expect(document.members.map((m) => [m.name, m.port, m.metricsPort, m.role, m.clusterRole])).toEqual([
      ['n1', basePort, basePort, 'primary', 'primary'],
      ['s1', basePort + 1, basePort + 1, 'standby', 'standby'],
      ['s2', basePort + 2, basePort + 2, 'standby', 'standby'],
    ]);
    for (const member of document.members) for (const key of SECTION_10_KEYS) expect(member, `${member.name}.${key}`).toHaveProperty(key);
    expect(document.members.map((m) => [m.name, m.state, m.syncState])).toEqual([['n1', 'running', null], ['s1', 'streaming', 'sync'], ['s2', 'streaming', 'async']]);
    expect(document).toMatchObject({ primary: 'n1', timeline: 1, problems: [] });
    expect(document.cluster).toMatchObject({ name: 'local-3node', statePrimary: 'n1', stateTimeline: 1 });
  });

  it('a drill records its lag: lag.jsonl, lag.html with each standby\'s data, and `lag` in its report', () => {
    const result = walship(['drill', 'kill-primary', ...overrides(), '--duration', '2.5', '--rate', '60', '--timeout', '20', '--json']);
    expect(result.status, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as DrillDocument;
    expect(report.verdict, report.reasons.join('; ')).toBe('pass');
    expect(report.timelines).toEqual([1, 2]);
    const { lag } = report;
    expect(lag).toMatchObject({ recording: path.join(report.artifacts, 'lag.jsonl'), chart: path.join(report.artifacts, 'lag.html'), error: null });
    // Four samples a second over a drill of several seconds.
    expect(lag.samples).toBeGreaterThan(8);
    const recorded = fs.readFileSync(lag.recording, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as LagDocument & { timeMs: number });
    expect(recorded).toHaveLength(lag.samples);
    // The recording follows the failover: n1 primary first, the promoted standby last.
    expect(recorded[0]!.primary).toBe('n1');
    expect(recorded[recorded.length - 1]!.primary).toBe(report.primaryAfter);
    expect(recorded.some((sample) => sample.members.some((m) => m.name === 's2' && m.state === 'streaming' && m.replayLagMs !== null))).toBe(true);

    // The page embeds, for each standby, exactly the points the recording holds for it.
    const html = fs.readFileSync(lag.chart, 'utf8');
    const data = JSON.parse(/<script type="application\/json" id="walship-lag-data">([\s\S]*?)<\/script>/.exec(html)![1]!) as {
      samples: number;
      standbys: Array<{ name: string; points: Array<[number, number | null, number | null, string]> }>;
      timelineChanges: Array<{ fromTimeline: number | null; toTimeline: number; toPrimary: string }>;
    };
    expect(data.samples).toBe(lag.samples);
    const standbyNames = [...new Set(recorded.flatMap((sample) => sample.members.filter((m) => m.role === 'standby').map((m) => m.name)))];
    expect(standbyNames).toEqual(expect.arrayContaining(['s1', 's2']));
    expect(data.standbys.map((s) => s.name).sort()).toEqual([...standbyNames].sort());
    for (const name of standbyNames) {
      const points = data.standbys.find((s) => s.name === name)!.points;
      expect(points, name).toEqual(recorded.flatMap((sample) => {
        const m = sample.members.find((x) => x.name === name && x.role === 'standby');
        return m === undefined ? [] : [[sample.timeMs, m.replayLagMs, m.lagBytes, m.state]];
      }));
      expect(html, name).toContain(`data-standby="${name}"`);
    }
    expect(data.timelineChanges).toEqual([expect.objectContaining({ fromTimeline: 1, toTimeline: 2, toPrimary: report.primaryAfter })]);
    expect(lag.standbys.map((s) => s.name).sort()).toEqual([...standbyNames].sort());
    // report.json in the artifacts is the report as printed, lag included.
    expect(JSON.parse(fs.readFileSync(path.join(report.artifacts, 'report.json'), 'utf8'))).toEqual(report);

    // The text form names the chart.
    const text = walship(['lag', '--report', lag.recording]);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toContain('s2: replay lag (log scale)');
  });

  it('after the failover, lag -f measures against the new primary the live state names', () => {
    const state = JSON.parse(fs.readFileSync(path.join(dataRoot, 'cluster-state.json'), 'utf8')) as { primary: string; timeline: number };
    expect(state.primary).not.toBe('n1');
    const document = lagOnce();
    expect(document).toMatchObject({ primary: state.primary, timeline: state.timeline });
    expect(document.cluster).toMatchObject({ statePrimary: state.primary, stateTimeline: state.timeline });
    // The state's primary is asked first; the old primary rejoined as a standby.
    expect(document.members[0]).toMatchObject({ name: state.primary, role: 'primary', state: 'running', clusterRole: 'primary' });
    expect(document.members.find((m) => m.name === 'n1')).toMatchObject({ role: 'standby', state: 'streaming', clusterRole: 'standby', timeline: state.timeline });
  });

  it('once the cluster is down, lag -f --check is UNKNOWN', () => {
    const down = walship(['cluster', 'down', ...overrides(), '--quiet']);
    expect(down.status, down.stderr).toBe(0);
    const check = walship(['lag', ...overrides(), '--check', '--timeout', '1']);
    expect(check.status).toBe(3);
    expect(check.stdout).toBe('WALSHIP_REPLICATION_LAG UNKNOWN: no member answers; lag cannot be measured\n');
  });
});
