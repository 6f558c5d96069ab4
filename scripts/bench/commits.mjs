#!/usr/bin/env node
// Durable commits per second and latency on a fresh node with default settings (fsync on,
// full_page_writes on, 16 MB segments, 128 MB shared_buffers): `walship bench` at each client
// count, RUNS times, interleaved so that machine noise spreads over all of them; prints the
// median and the range of each figure.
// With --sync-standby, a standby made with walship basebackup (application_name s1, on the next
// port) is the primary's synchronous standby (synchronous_standby_names = 'FIRST 1 (s1)'), and
// each client count is measured at each of --levels (synchronous_commit per write).
//   node scripts/bench/commits.mjs [--runs 3] [--duration 10] [--clients 1,8,32] [--json]
//   node scripts/bench/commits.mjs --sync-standby [--levels local,on,remote_apply] [...]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { median, walship } from './lib/common.mjs';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10' },
    clients: { type: 'string', default: '1,8,32' },
    'value-size': { type: 'string', default: '100' },
    keys: { type: 'string', default: '100000' },
    port: { type: 'string', default: '56201' },
    'sync-standby': { type: 'boolean', default: false },
    levels: { type: 'string', default: 'local,on,remote_apply' },
    json: { type: 'boolean', default: false },
  },
});
const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'walship-bench-')), 'data');
const standbyDir = path.join(path.dirname(dir), 'standby');
walship('init', '-D', dir, '--port', args.port);
walship('start', '-D', dir);
const node = `127.0.0.1:${args.port}`;
const clientCounts = args.clients.split(',').map(Number);
// null: the node's own synchronous_commit (the default, on), without a synchronous standby.
const levels = args['sync-standby'] ? args.levels.split(',') : [null];
const cases = levels.flatMap((level) => clientCounts.map((clients) => ({ level, clients })));
const results = new Map(cases.map((c) => [`${c.level}/${c.clients}`, []]));
try {
  // Fill the key space once so every run upserts existing keys, as pgbench's table is full.
  walship('load', '--node', node, '--count', args.keys, '--value-size', args['value-size'], '--prefix', 'bench:', '--clients', '8', '--quiet');
  if (args['sync-standby']) {
    walship('basebackup', '--from', node, '-D', standbyDir, '--standby', '--port', String(Number(args.port) + 1), '--set', 'application_name=s1', '--quiet');
    walship('start', '-D', standbyDir);
    walship('set', '--node', node, 'synchronous_standby_names', 'FIRST 1 (s1)');
  }
  for (let run = 1; run <= Number(args.runs); run++) {
    for (const { level, clients } of cases) {
      process.stderr.write(`run ${run}/${args.runs}: ${clients} client(s)${level === null ? '' : ` at ${level}`}...\n`);
      const out = JSON.parse(walship('bench', '--node', node, '--clients', String(clients), '--duration', args.duration,
        '--keys', args.keys, '--value-size', args['value-size'], ...(level === null ? [] : ['--sync-commit', level]), '--json', '--quiet'));
      results.get(`${level}/${clients}`).push(out);
    }
  }
} finally {
  if (args['sync-standby'] && fs.existsSync(standbyDir)) {
    // The standby first, so that the primary's shutdown checkpoint does not wait for it.
    try { walship('stop', '-D', standbyDir); } catch { /* it may not have started */ }
  }
  walship('stop', '-D', dir);
  fs.rmSync(path.dirname(dir), { recursive: true, force: true });
}
const summary = cases.map(({ level, clients }) => {
  const runs = results.get(`${level}/${clients}`);
  const pick = (f) => { const xs = runs.map(f); return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) }; };
  return {
    ...(level === null ? {} : { syncCommit: level }),
    clients,
    commitsPerSecond: pick((r) => r.commitsPerSecond),
    p50Ms: pick((r) => r.latencyMs.p50),
    p99Ms: pick((r) => r.latencyMs.p99),
    cpuMicrosPerCommit: pick((r) => r.cpuMicrosPerCommit),
  };
});
if (args.json) {
  console.log(JSON.stringify({ runs: Number(args.runs), durationSeconds: Number(args.duration), syncStandby: args['sync-standby'], summary }, null, 2));
} else {
  const f = (x, d = 0) => x.toFixed(d);
  console.log(`median of ${args.runs} runs of ${args.duration} s (range in brackets)${args['sync-standby'] ? ", one synchronous standby (FIRST 1 (s1))" : ''}`);
  console.log(`${args['sync-standby'] ? 'level         ' : ''}clients  commits/s                p50 ms              p99 ms              CPU us/commit`);
  for (const s of summary) {
    console.log(`${s.syncCommit === undefined ? '' : s.syncCommit.padEnd(14)}${String(s.clients).padStart(7)}  ${f(s.commitsPerSecond.median).padStart(6)} [${f(s.commitsPerSecond.min)}-${f(s.commitsPerSecond.max)}]`.padEnd(s.syncCommit === undefined ? 34 : 48) +
      `${f(s.p50Ms.median, 2)} [${f(s.p50Ms.min, 2)}-${f(s.p50Ms.max, 2)}]`.padEnd(20) +
      `${f(s.p99Ms.median, 2)} [${f(s.p99Ms.min, 2)}-${f(s.p99Ms.max, 2)}]`.padEnd(20) +
      `${f(s.cpuMicrosPerCommit.median)} [${f(s.cpuMicrosPerCommit.min)}-${f(s.cpuMicrosPerCommit.max)}]`);
  }
}
