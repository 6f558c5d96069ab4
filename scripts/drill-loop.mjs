#!/usr/bin/env node
// Runs each failover drill many times on one cluster and prints the distribution of its figures.
//   node scripts/drill-loop.mjs [RUNS] [SCENARIO...]
// RUNS defaults to 50 per scenario; the scenarios default to all of `walship drill`'s. The
// cluster is cluster-configs/local-3node.yaml on WALSHIP_DRILL_BASE_PORT (default 6433) with its
// data in WALSHIP_DRILL_DATA_ROOT (default .tmp/drill-loop), created fresh, and stopped at the
// end; each run's artifacts stay in DATA_ROOT/drills/. Exits non-zero if any run broke a
// guarantee (a fail verdict).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseScriptArgs, usageError, wholeNumber } from './lib/script-args.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'packages', 'cli', 'bin', 'walship.js');
const { positionals } = parseScriptArgs(import.meta.url, { options: {}, allowPositionals: true });
const runs = wholeNumber(import.meta.url, 'RUNS', positionals[0] ?? '50');
const all = ['kill-primary', 'hang-primary', 'partition-primary', 'kill-sync-standby', 'slow-standby', 'switchover', 'rejoin'];
const scenarios = positionals.length > 1 ? positionals.slice(1) : all;
for (const scenario of scenarios) if (!all.includes(scenario)) usageError(import.meta.url, `unknown scenario ${JSON.stringify(scenario)} (known: ${all.join(', ')})`);
const clusterArgs = [
  '-f', path.join(root, 'cluster-configs', 'local-3node.yaml'),
  '--base-port', process.env.WALSHIP_DRILL_BASE_PORT ?? '6433',
  '--data-root', process.env.WALSHIP_DRILL_DATA_ROOT ?? path.join(root, '.tmp', 'drill-loop'),
];
const walship = (...args) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });

function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
const figure = (values) =>
  values.length === 0 ? '-' : `min ${Math.min(...values)}  p50 ${percentile(values, 50)}  p90 ${percentile(values, 90)}  max ${Math.max(...values)}`;

const up = walship('cluster', 'up', ...clusterArgs, '--reset', '--quiet');
if (up.status !== 0) {
  process.stderr.write(up.stderr);
  process.exit(1);
}
let broken = 0;
try {
  for (const scenario of scenarios) {
    const reports = [];
    for (let run = 1; run <= runs; run++) {
      const result = walship('drill', scenario, ...clusterArgs, '--duration', '3', '--json');
      let report;
      try {
        report = JSON.parse(result.stdout);
      } catch {
        process.stderr.write(`${scenario} run ${run}: no report (exit ${result.status})\n${result.stderr}`);
        broken++;
        continue;
      }
      reports.push(report);
      if (report.verdict !== 'pass') {
        broken++;
        process.stderr.write(`${scenario} run ${run}: FAIL: ${report.reasons.join('; ')} (${report.artifacts})\n`);
      }
      process.stderr.write(`\r${scenario}: ${run}/${runs}`);
    }
    process.stderr.write('\n');
    const of = (key) => reports.map((report) => report[key]).filter((value) => typeof value === 'number');
    console.log(`${scenario} (${reports.length} runs): ${reports.filter((r) => r.verdict === 'pass').length} pass, ${reports.filter((r) => r.verdict !== 'pass').length} fail`);
    console.log(`  acknowledged writes lost: total ${of('ackedWritesLost').reduce((a, b) => a + b, 0)} (runs with a synchronous standby in force: ${reports.filter((r) => r.synchronousEnforced).length})`);
    console.log(`  split brain ms:           ${figure(of('splitBrainMs'))}`);
    const afterLease = of('oldPrimaryAcksAfterLease');
    if (afterLease.length > 0) console.log(`  old primary's acks after its lease: total ${afterLease.reduce((a, b) => a + b, 0)}`);
    const deliveredLate = of('oldPrimaryAcksDeliveredLate');
    if (deliveredLate.some((count) => count > 0)) console.log(`  old primary's acks decided in time, delivered after the thaw: total ${deliveredLate.reduce((a, b) => a + b, 0)}`);
    console.log(`  detection ms:             ${figure(of('detectionMs'))}`);
    console.log(`  promotion ms:             ${figure(of('promotionMs'))}`);
    console.log(`  writes unavailable ms:    ${figure(of('unavailableMs'))}`);
    console.log(`  indeterminate writes:     ${figure(of('indeterminateWrites'))}`);
  }
} finally {
  walship('cluster', 'down', ...clusterArgs, '--quiet');
}
process.exit(broken > 0 ? 1 : 0);
