#!/usr/bin/env node
// Durable commits per second and latency on a fresh node with default settings (fsync on,
// full_page_writes on, 16 MB segments, 128 MB shared_buffers): `walship bench` at each client
// count, RUNS times, interleaved so that machine noise spreads over all of them; prints the
// median and the range of each figure.
// With --sync-standby, a standby made with walship basebackup (application_name s1, on the next
// port) is the primary's synchronous standby (synchronous_standby_names = 'FIRST 1 (s1)'), and
// each client count is measured at each of --levels (synchronous_commit per write).
//   node scripts/bench/commits.mjs [--runs 3] [--duration 10] [--clients 1,8,32] [--json]
// With --compare-encryption, a second node encrypted at rest (init --encrypt, a generated key
// file) runs beside the plain one, each client count alternating between them, and the
// encrypted node's figures are given beside the plain one's with the difference (issue 8's
// "under 10% slower").
//   node scripts/bench/commits.mjs --sync-standby [--levels local,on,remote_apply] [...]
//   node scripts/bench/commits.mjs --compare-encryption [--runs 5] [--clients 1,8,32] [...]
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseScriptArgs } from '../lib/script-args.mjs';
import { median, walship } from './lib/common.mjs';

const { values: args } = parseScriptArgs(import.meta.url, {
  options: {
    runs: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10' },
    clients: { type: 'string', default: '1,8,32' },
    'value-size': { type: 'string', default: '100' },
    keys: { type: 'string', default: '100000' },
    port: { type: 'string', default: '56201' },
    'sync-standby': { type: 'boolean', default: false },
    'compare-encryption': { type: 'boolean', default: false },
    levels: { type: 'string', default: 'local,on,remote_apply' },
    json: { type: 'boolean', default: false },
  },
});
if (args['sync-standby'] && args['compare-encryption']) {
  process.stderr.write('commits: --sync-standby and --compare-encryption do not go together; run them separately\n');
  process.exit(2);
}
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-bench-'));
const keyFile = path.join(base, 'cluster.key');
/** The nodes measured: the plain one, and with --compare-encryption the encrypted one. */
const nodes = [{ mode: 'plain', dir: path.join(base, 'data'), port: Number(args.port) }];
if (args['compare-encryption']) {
  fs.writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  nodes.push({ mode: 'encrypted', dir: path.join(base, 'encrypted'), port: Number(args.port) + 2 });
}
const standbyDir = path.join(base, 'standby');
const clientCounts = args.clients.split(',').map(Number);
// null: the node's own synchronous_commit (the default, on), without a synchronous standby.
const levels = args['sync-standby'] ? args.levels.split(',') : [null];
const cases = levels.flatMap((level) => clientCounts.flatMap((clients) => nodes.map((n) => ({ level, clients, mode: n.mode }))));
const keyOf = (c) => `${c.mode}/${c.level}/${c.clients}`;
const results = new Map(cases.map((c) => [keyOf(c), []]));
const started = [];
try {
  for (const n of nodes) {
    walship('init', '-D', n.dir, '--port', String(n.port), ...(n.mode === 'encrypted' ? ['--encrypt', '--key-file', keyFile] : []));
    walship('start', '-D', n.dir);
    started.push(n.dir);
    // Fill the key space once so every run upserts existing keys, as pgbench's table is full.
    walship('load', '--node', `127.0.0.1:${n.port}`, '--count', args.keys, '--value-size', args['value-size'], '--prefix', 'bench:', '--clients', '8', '--quiet');
  }
  const node = `127.0.0.1:${nodes[0].port}`;
  if (args['sync-standby']) {
    walship('basebackup', '--from', node, '-D', standbyDir, '--standby', '--port', String(Number(args.port) + 1), '--set', 'application_name=s1', '--quiet');
    walship('start', '-D', standbyDir);
    // The standby first at the end, so that the primary's shutdown checkpoint does not wait for it.
    started.unshift(standbyDir);
    walship('set', '--node', node, 'synchronous_standby_names', 'FIRST 1 (s1)');
  }
  for (let run = 1; run <= Number(args.runs); run++) {
    for (const c of cases) {
      const n = nodes.find((x) => x.mode === c.mode);
      process.stderr.write(`run ${run}/${args.runs}: ${c.clients} client(s)${c.level === null ? '' : ` at ${c.level}`}${nodes.length > 1 ? `, ${c.mode}` : ''}...\n`);
      const out = JSON.parse(walship('bench', '--node', `127.0.0.1:${n.port}`, '--clients', String(c.clients), '--duration', args.duration,
        '--keys', args.keys, '--value-size', args['value-size'], ...(c.level === null ? [] : ['--sync-commit', c.level]), '--json', '--quiet'));
      results.get(keyOf(c)).push(out);
    }
  }
} finally {
  for (const dir of started) {
    try { walship('stop', '-D', dir); } catch { /* already stopped */ }
  }
  fs.rmSync(base, { recursive: true, force: true });
}
const summary = cases.map((c) => {
  const runs = results.get(keyOf(c));
  const pick = (f) => { const xs = runs.map(f); return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) }; };
  return {
    ...(nodes.length > 1 ? { mode: c.mode } : {}),
    ...(c.level === null ? {} : { syncCommit: c.level }),
    clients: c.clients,
    commitsPerSecond: pick((r) => r.commitsPerSecond),
    p50Ms: pick((r) => r.latencyMs.p50),
    p99Ms: pick((r) => r.latencyMs.p99),
    cpuMicrosPerCommit: pick((r) => r.cpuMicrosPerCommit),
  };
});
/** With --compare-encryption: per client count, how much slower the encrypted node is (percent; negative: faster). */
const encryptionCost = nodes.length < 2 ? [] : clientCounts.map((clients) => {
  const of = (mode) => summary.find((s) => s.mode === mode && s.clients === clients);
  const plain = of('plain');
  const encrypted = of('encrypted');
  return {
    clients,
    commitsPerSecondSlowerPercent: 100 * (1 - encrypted.commitsPerSecond.median / plain.commitsPerSecond.median),
    cpuPerCommitMorePercent: 100 * (encrypted.cpuMicrosPerCommit.median / plain.cpuMicrosPerCommit.median - 1),
  };
});
if (args.json) {
  console.log(JSON.stringify({
    runs: Number(args.runs), durationSeconds: Number(args.duration), syncStandby: args['sync-standby'], summary,
    ...(nodes.length > 1 ? { encryptionCost } : {}),
  }, null, 2));
} else {
  const f = (x, d = 0) => x.toFixed(d);
  const first = nodes.length > 1 ? 'mode       ' : args['sync-standby'] ? 'level         ' : '';
  console.log(`median of ${args.runs} runs of ${args.duration} s (range in brackets)${args['sync-standby'] ? ', one synchronous standby (FIRST 1 (s1))' : ''}${nodes.length > 1 ? ', plain and encrypted at rest alternating' : ''}`);
  console.log(`${first}clients  commits/s                p50 ms              p99 ms              CPU us/commit`);
  for (const s of summary) {
    const label = s.mode !== undefined ? s.mode.padEnd(11) : s.syncCommit !== undefined ? s.syncCommit.padEnd(14) : '';
    console.log(`${label}${String(s.clients).padStart(7)}  ${f(s.commitsPerSecond.median).padStart(6)} [${f(s.commitsPerSecond.min)}-${f(s.commitsPerSecond.max)}]`.padEnd(label.length + 34) +
      `${f(s.p50Ms.median, 2)} [${f(s.p50Ms.min, 2)}-${f(s.p50Ms.max, 2)}]`.padEnd(20) +
      `${f(s.p99Ms.median, 2)} [${f(s.p99Ms.min, 2)}-${f(s.p99Ms.max, 2)}]`.padEnd(20) +
      `${f(s.cpuMicrosPerCommit.median)} [${f(s.cpuMicrosPerCommit.min)}-${f(s.cpuMicrosPerCommit.max)}]`);
  }
  for (const e of encryptionCost) {
    console.log(`encrypted at ${e.clients} client(s): commits/s ${f(Math.abs(e.commitsPerSecondSlowerPercent), 1)}% ${e.commitsPerSecondSlowerPercent >= 0 ? 'slower' : 'faster'}, CPU per commit ${f(Math.abs(e.cpuPerCommitMorePercent), 1)}% ${e.cpuPerCommitMorePercent >= 0 ? 'more' : 'less'}`);
  }
}
