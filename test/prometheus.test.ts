/**
 * A real Prometheus server (Debian's `prometheus` package; .ci/run installs it when missing) scrapes
 * a running cluster: a primary, a standby s1 streaming from it, and a cascading standby s2
 * streaming from s1. Prometheus runs as a plain process of this test, with its own config (the
 * three nodes' /metrics, scraped every 500 ms) and a temporary storage directory, on a free port.
 *
 * - Every target is up: Prometheus' own parser accepted each node's exposition (lastError empty).
 * - Its HTTP query API returns the lag series of each standby, labelled by application_name,
 *   from the node that sends to it (s1 from the primary, s2 from s1): lag in bytes and the
 *   write / flush / replay lags in seconds, fresh (the heartbeat keeps them non-null when idle).
 * - A query over the standbys' own metrics: both walreceivers stream.
 * - promtool (same package) finds nothing to lint in the primary's /metrics.
 *
 * A missing binary fails the test, saying how to install it: nothing here is skipped.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestNode, freePort, waitFor } from './helpers/node.js';
import { basebackup } from './helpers/replication.js';

/** Fresh figures several times a second, as in lag.test.ts. */
const MONITORED = { heartbeat_interval: '200ms', wal_receiver_status_interval: '1s', wal_retrieve_retry_interval: '100ms' };

/** Where Debian puts the binaries; PROMETHEUS / PROMTOOL override. */
function binary(name: 'prometheus' | 'promtool'): string {
  const override = process.env[name.toUpperCase()];
  const candidates = override !== undefined ? [override] : [`/usr/bin/${name}`, `/usr/local/bin/${name}`];
  const found = candidates.find((candidate) => fs.existsSync(candidate));
  if (found === undefined) {
    throw new Error(
      `${name} is not installed (looked for ${candidates.join(', ')}). This test runs a real Prometheus server: ` +
        'install Debian\'s package with "apt-get install -y --no-install-recommends prometheus" (npm test does, as root), ' +
        `or set ${name.toUpperCase()} to the binary.`,
    );
  }
  return found;
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

describe('a real Prometheus scraping the nodes', () => {
  let primary: TestNode;
  let s1: TestNode;
  let s2: TestNode;
  let prometheus: ChildProcess | null = null;
  let prometheusLog = '';
  let apiPort: number;
  let dir: string;

  /** The query API's vector for `query`, or a failure with what Prometheus said. */
  async function query(promql: string): Promise<Sample[]> {
    const response = await fetch(`http://127.0.0.1:${apiPort}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await response.json()) as { status: string; error?: string; data: { resultType: string; result: Sample[] } };
    expect(body.status, body.error).toBe('success');
    expect(body.data.resultType).toBe('vector');
    return body.data.result;
  }

  /** Per application_name, the value and the instance that reported it. */
  function byStandby(samples: Sample[]): Map<string, { value: number; instance: string }> {
    return new Map(samples.map((s) => [s.metric.application_name!, { value: Number(s.value[1]), instance: s.metric.instance! }]));
  }

  beforeAll(async () => {
    const prometheusBinary = binary('prometheus');
    primary = await TestNode.init('prometheus', MONITORED);
    dir = path.dirname(primary.dataDir);
    await primary.start();
    s1 = await basebackup(primary, 's1', Object.entries(MONITORED).flatMap(([k, v]) => ['--set', `${k}=${v}`]));
    await s1.start();
    s2 = await basebackup(s1, 's2', Object.entries(MONITORED).flatMap(([k, v]) => ['--set', `${k}=${v}`]));
    await s2.start();

    apiPort = await freePort();
    const config = path.join(dir, 'prometheus.yml');
    // The job and instance labels Prometheus adds; the target names are the nodes' addresses.
    fs.writeFileSync(config, [
      'global:',
      '  scrape_interval: 500ms',
      '  scrape_timeout: 400ms',
      'scrape_configs:',
      '  - job_name: walship',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${primary.port}', '127.0.0.1:${s1.port}', '127.0.0.1:${s2.port}']`,
      '',
    ].join('\n'));
    prometheus = spawn(prometheusBinary, [
      `--config.file=${config}`,
      `--storage.tsdb.path=${path.join(dir, 'prometheus-data')}`,
      `--web.listen-address=127.0.0.1:${apiPort}`,
      '--storage.tsdb.retention.time=1h',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    prometheus.stdout!.on('data', (d: Buffer) => { prometheusLog += d.toString(); });
    prometheus.stderr!.on('data', (d: Buffer) => { prometheusLog += d.toString(); });
    let exited: number | null | undefined;
    prometheus.once('exit', (code) => { exited = code; });
    await waitFor('Prometheus to be ready', async () => {
      if (exited !== undefined) throw new Error(`prometheus exited with ${exited}:\n${prometheusLog.slice(-3000)}`);
      return (await fetch(`http://127.0.0.1:${apiPort}/-/ready`).catch(() => null))?.status === 200;
    }, 30_000, 100);
  });

  afterAll(async () => {
    if (prometheus !== null && prometheus.exitCode === null) {
      const exit = new Promise((resolve) => prometheus!.once('exit', resolve));
      prometheus.kill('SIGTERM');
      const timer = setTimeout(() => prometheus?.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(timer);
    }
    for (const node of [s2, s1, primary]) await node?.stop('SIGINT').catch(() => undefined);
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('scrapes every node without an error', async () => {
    interface Target { scrapeUrl: string; health: string; lastError: string; labels: Record<string, string> }
    const targets = await waitFor('every target scraped once and up', async () => {
      const body = (await (await fetch(`http://127.0.0.1:${apiPort}/api/v1/targets`)).json()) as { data: { activeTargets: Target[] } };
      const active = body.data.activeTargets;
      return active.length === 3 && active.every((t) => t.health !== 'unknown') ? active : null;
    }, 20_000, 100);
    for (const target of targets) {
      expect(target, prometheusLog.slice(-2000)).toMatchObject({ health: 'up', lastError: '', labels: { job: 'walship' } });
      expect(target.scrapeUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    }
    const up = await query('up{job="walship"}');
    expect(up.map((s) => [s.metric.instance, s.value[1]]).sort()).toEqual(
      [primary, s1, s2].map((node) => [`127.0.0.1:${node.port}`, '1']).sort(),
    );
  });

  it('returns the lag series of each standby, from the node that sends to it', async () => {
    const lagBytes = await waitFor('lag in bytes of s1 and s2 in Prometheus', async () => {
      const series = byStandby(await query('walship_replication_lag_bytes'));
      return series.has('s1') && series.has('s2') ? series : null;
    }, 20_000, 200);
    expect(lagBytes.get('s1')).toEqual({ value: expect.any(Number), instance: `127.0.0.1:${primary.port}` });
    expect(lagBytes.get('s2')).toEqual({ value: expect.any(Number), instance: `127.0.0.1:${s1.port}` });
    for (const { value } of lagBytes.values()) expect(value).toBeGreaterThanOrEqual(0);

    // The heartbeat keeps every lag figure present and fresh on this idle cluster.
    for (const stage of ['write', 'flush', 'replay']) {
      const series = await waitFor(`${stage} lag of s1 and s2 in Prometheus`, async () => {
        const found = byStandby(await query(`walship_replication_${stage}_lag_seconds`));
        return found.has('s1') && found.has('s2') ? found : null;
      }, 20_000, 200);
      expect(series.get('s1')!.instance).toBe(`127.0.0.1:${primary.port}`);
      expect(series.get('s2')!.instance).toBe(`127.0.0.1:${s1.port}`);
      for (const [name, { value }] of series) expect(value, `${stage} lag of ${name}`).toBeLessThan(1);
    }
    // PromQL over the series: the worst replay lag of the cluster, and that each standby streams.
    const worst = await query('max(walship_replication_replay_lag_seconds)');
    expect(worst).toHaveLength(1);
    expect(Number(worst[0]!.value[1])).toBeLessThan(1);
    const streaming = byStandby(await query('walship_replication_streaming == 1'));
    expect([...streaming.keys()].sort()).toEqual(['s1', 's2']);
    const receivers = await query('walship_wal_receiver_streaming');
    expect(receivers.map((s) => [s.metric.instance, s.value[1]]).sort()).toEqual([[`127.0.0.1:${s1.port}`, '1'], [`127.0.0.1:${s2.port}`, '1']].sort());
  });

  it('sees the lag in bytes of a stopped standby grow, and shrink once it resumes', async () => {
    // s2 stopped (SIGSTOP): s1 keeps its row while the connection lasts, and its lag in bytes grows with the WAL s1 receives.
    const before = (await query('walship_replication_lag_bytes{application_name="s2"}'))[0];
    expect(before).toBeDefined();
    const pid = s2.process!.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      const client = await primary.client();
      try {
        for (let i = 0; i < 200; i++) await client.put(`prometheus-${i}`, 'x'.repeat(1000));
      } finally {
        await client.close();
      }
      await waitFor('s2\'s lag in bytes to grow by the writes, in Prometheus', async () => {
        const now = (await query('walship_replication_lag_bytes{application_name="s2"}'))[0];
        return now !== undefined && Number(now.value[1]) > Number(before!.value[1]) + 100_000;
      }, 20_000, 200);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitFor('s2 to catch up again, in Prometheus', async () => {
      const now = (await query('walship_replication_lag_bytes{application_name="s2"}'))[0];
      return now !== undefined && Number(now.value[1]) < 100_000;
    }, 20_000, 200);
  });

  it('passes promtool\'s lint of the exposition format', async () => {
    const text = await (await fetch(`http://127.0.0.1:${primary.port}/metrics`)).text();
    const result = spawnSync(binary('promtool'), ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(`${result.stdout}${result.stderr}`.trim()).toBe('');
    expect(result.status).toBe(0);
  });
});
