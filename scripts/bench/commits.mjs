#!/usr/bin/env node
// Durable commits per second and latency on a fresh node with default settings (fsync on,
// full_page_writes on, 16 MB segments, 128 MB shared_buffers): `walship bench` at each client
// count, RUNS times, interleaved so that machine noise spreads over all of them; prints the
// median and the range of each figure.
//   node scripts/bench/commits.mjs [--runs 3] [--duration 10] [--clients 1,8,32] [--json]
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(root, 'packages', 'cli', 'bin', 'walship.js');
const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10' },
    clients: { type: 'string', default: '1,8,32' },
    'value-size': { type: 'string', default: '100' },
    keys: { type: 'string', default: '100000' },
    port: { type: 'string', default: '56201' },
    json: { type: 'boolean', default: false },
  },
});
const walship = (...a) => {
  const r = spawnSync(process.execPath, [cli, ...a], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`walship ${a.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'walship-bench-')), 'data');
walship('init', '-D', dir, '--port', args.port);
walship('start', '-D', dir);
const node = `127.0.0.1:${args.port}`;
const clientCounts = args.clients.split(',').map(Number);
const results = new Map(clientCounts.map((c) => [c, []]));
try {
  // Fill the key space once so every run upserts existing keys, as pgbench's table is full.
  walship('load', '--node', node, '--count', args.keys, '--value-size', args['value-size'], '--prefix', 'bench:', '--clients', '8', '--quiet');
  for (let run = 1; run <= Number(args.runs); run++) {
    for (const clients of clientCounts) {
      process.stderr.write(`run ${run}/${args.runs}: ${clients} client(s)...\n`);
      const out = JSON.parse(walship('bench', '--node', node, '--clients', String(clients), '--duration', args.duration,
        '--keys', args.keys, '--value-size', args['value-size'], '--json', '--quiet'));
      results.get(clients).push(out);
    }
  }
} finally {
  walship('stop', '-D', dir);
  fs.rmSync(path.dirname(dir), { recursive: true, force: true });
}
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
const summary = clientCounts.map((clients) => {
  const runs = results.get(clients);
  const pick = (f) => { const xs = runs.map(f); return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) }; };
  return {
    clients,
    commitsPerSecond: pick((r) => r.commitsPerSecond),
    p50Ms: pick((r) => r.latencyMs.p50),
    p99Ms: pick((r) => r.latencyMs.p99),
    cpuMicrosPerCommit: pick((r) => r.cpuMicrosPerCommit),
  };
});
if (args.json) console.log(JSON.stringify({ runs: Number(args.runs), durationSeconds: Number(args.duration), summary }, null, 2));
else {
  const f = (x, d = 0) => x.toFixed(d);
  console.log(`median of ${args.runs} runs of ${args.duration} s (range in brackets)`);
  console.log('clients  commits/s                p50 ms              p99 ms              CPU us/commit');
  for (const s of summary) {
    console.log(`${String(s.clients).padStart(7)}  ${f(s.commitsPerSecond.median).padStart(6)} [${f(s.commitsPerSecond.min)}-${f(s.commitsPerSecond.max)}]`.padEnd(34) +
      `${f(s.p50Ms.median, 2)} [${f(s.p50Ms.min, 2)}-${f(s.p50Ms.max, 2)}]`.padEnd(20) +
      `${f(s.p99Ms.median, 2)} [${f(s.p99Ms.min, 2)}-${f(s.p99Ms.max, 2)}]`.padEnd(20) +
      `${f(s.cpuMicrosPerCommit.median)} [${f(s.cpuMicrosPerCommit.min)}-${f(s.cpuMicrosPerCommit.max)}]`);
  }
}
