#!/usr/bin/env node
// A/B of two walship checkouts, for performance work: each gets a cluster of the comparison's
// shape (a primary with two asynchronous standbys s1 and s2, each made by a base backup with a
// slot; 100 000 keys of 100 bytes), then `walship bench` runs alternate between them, each with
// its own checkout's CLI, so that a shared machine's noise falls on both alike. Per run: commits/s,
// latency p50/p99, commits per WAL fdatasync, replay lag p50 of s1/s2 (sampled every 200 ms), and
// CPU microseconds per commit of each node (/proc, all threads) and of the load generator.
// CPU per commit is the steadier figure on a loaded machine; the load average is printed per run.
//   node scripts/bench/ab.mjs --a DIR --b DIR [--clients 1,8] [--duration 5] [--rounds 2] [--port-base 24600] [--json]
//     [--cpu-prof DIR] [--sync-commit on|remote_apply]
// Each checkout must be built (npx tsc -b); each side's servers, CLI and client library are its own.
// --cpu-prof DIR: after the set-up, every server is restarted under node --cpu-prof and every
// `walship bench` runs under it, the profiles written to DIR/SIDE/{primary,s1,s2,bench} (a server's
// when it stops at the end, so they cover the measured runs, not the load or the base backups).
// --sync-commit LEVEL: s1 is the synchronous standby (FIRST 1 (s1)) and every commit waits at that
// level, as in compare-postgres's rows 2; without it the standbys are asynchronous.
// Every server is stopped at the end, also on Ctrl-C.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseScriptArgs, usageError } from '../lib/script-args.mjs';
import { percentile, startWalshipServer } from './lib/common.mjs';
import { installCleanupHandlers, onCleanup, reapedChildrenCpuMicros, runCleanups, spawnGroup, treeCpuMicros } from './lib/processes.mjs';

const { values: args } = parseScriptArgs(import.meta.url, {
  options: {
    a: { type: 'string' },
    b: { type: 'string' },
    clients: { type: 'string', default: '1,8' },
    duration: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '2' },
    'port-base': { type: 'string', default: '24600' },
    json: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    'sync-commit': { type: 'string' },
  },
});
if (args.a === undefined || args.b === undefined) usageError(import.meta.url, 'give both checkouts: --a DIR --b DIR (each built with npx tsc -b)');
const syncCommit = args['sync-commit'] ?? null;
if (syncCommit !== null && syncCommit !== 'on' && syncCommit !== 'remote_apply') {
  usageError(import.meta.url, `--sync-commit ${syncCommit}: give on or remote_apply (s1 is then the synchronous standby)`);
}
installCleanupHandlers();
const say = (text) => process.stderr.write(`${text}\n`);
const KEYS = 100_000;
const cpuProfArgs = (side, name) =>
  (args['cpu-prof'] === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', path.resolve(args['cpu-prof'], side, name)]);
const base = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-ab-'));
onCleanup(() => fs.rmSync(base, { recursive: true, force: true }));

/** `walship ARGS...` with a checkout's own CLI. */
function walshipOf(repo, ...cliArgs) {
  const r = spawnSync(process.execPath, [path.join(repo, 'packages', 'cli', 'bin', 'walship.js'), ...cliArgs], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`walship ${cliArgs.join(' ')} (${repo}) failed: ${r.stderr}`);
  return r.stdout;
}

async function setUp(label, repo, port) {
  say(`${label}: ${repo}: init, load, base backups for s1 and s2...`);
  const main = path.join(repo, 'packages', 'server', 'dist', 'main.js');
  const dir = path.join(base, label);
  const nodes = { primary: { dir: path.join(dir, 'primary'), port }, s1: { dir: path.join(dir, 's1'), port: port + 1 }, s2: { dir: path.join(dir, 's2'), port: port + 2 } };
  const stopAll = () => {
    for (const name of ['s2', 's1', 'primary']) {
      if (!fs.existsSync(path.join(nodes[name].dir, 'postmaster.pid'))) continue;
      try { walshipOf(repo, 'stop', '-D', nodes[name].dir, '--mode', 'immediate'); } catch { /* already gone */ }
    }
  };
  onCleanup(stopAll);
  walshipOf(repo, 'init', '-D', nodes.primary.dir, '--port', String(port), '--set', 'wal_segment_size=16MB', '--set', 'shared_buffers=128MB',
    '--set', 'max_wal_size=8GB', '--set', 'checkpoint_timeout=1d');
  nodes.primary.pid = (await startWalshipServer(nodes.primary.dir, path.join(dir, 'primary.log'), { main })).child.pid;
  walshipOf(repo, 'load', '--node', `127.0.0.1:${port}`, '--count', String(KEYS), '--value-size', '100', '--prefix', 'bench:', '--clients', '8', '--quiet');
  for (const name of ['s1', 's2']) {
    walshipOf(repo, 'basebackup', '--from', `127.0.0.1:${port}`, '-D', nodes[name].dir, '--standby', '--slot', name, '--port', String(nodes[name].port),
      '--set', `application_name=${name}`, '--quiet');
    nodes[name].pid = (await startWalshipServer(nodes[name].dir, path.join(dir, `${name}.log`), { main })).child.pid;
  }
  if (args['cpu-prof'] !== undefined) {
    for (const name of ['s2', 's1', 'primary']) walshipOf(repo, 'stop', '-D', nodes[name].dir, '--mode', 'fast');
    for (const name of ['primary', 's1', 's2']) {
      nodes[name].pid = (await startWalshipServer(nodes[name].dir, path.join(dir, `${name}.log`), { main, nodeArgs: cpuProfArgs(label, name) })).child.pid;
    }
  }
  const { WalshipClient } = await import(path.join(repo, 'packages', 'client', 'dist', 'index.js'));
  return { label, repo, port, nodes, WalshipClient };
}

async function measure(side, clients) {
  const control = await side.WalshipClient.connect({ port: side.port });
  // s1 the synchronous standby for --sync-commit on / remote_apply (as compare-postgres's rows 2), none otherwise.
  await control.setSetting('synchronous_standby_names', syncCommit === null ? '' : 'FIRST 1 (s1)');
  const lags = { s1: [], s2: [] };
  const sampler = setInterval(() => {
    control.status().then((status) => {
      for (const row of status.replication ?? []) if (typeof row.replayLagMs === 'number') lags[row.applicationName]?.push(row.replayLagMs);
    }, () => undefined);
  }, 200);
  const fsyncsBefore = (await control.status()).walFsyncs;
  const cpuBefore = { primary: treeCpuMicros(side.nodes.primary.pid), s1: treeCpuMicros(side.nodes.s1.pid), s2: treeCpuMicros(side.nodes.s2.pid), client: reapedChildrenCpuMicros() };
  const { done } = spawnGroup(process.execPath, [...cpuProfArgs(side.label, 'bench'), path.join(side.repo, 'packages', 'cli', 'bin', 'walship.js'), 'bench', '--node', `127.0.0.1:${side.port}`,
    '--clients', String(clients), '--duration', args.duration, '--keys', String(KEYS), '--value-size', '100',
    ...(syncCommit === null ? [] : ['--sync-commit', syncCommit]), '--json', '--quiet']);
  const result = await done;
  clearInterval(sampler);
  if (result.code !== 0) throw new Error(`walship bench (${side.repo}) failed: ${result.stderr}`);
  const out = JSON.parse(result.stdout);
  const cpuAfter = { primary: treeCpuMicros(side.nodes.primary.pid), s1: treeCpuMicros(side.nodes.s1.pid), s2: treeCpuMicros(side.nodes.s2.pid), client: reapedChildrenCpuMicros() };
  const fsyncs = (await control.status()).walFsyncs - fsyncsBefore;
  await control.close();
  const perCommit = (name) => Math.round((cpuAfter[name] - cpuBefore[name]) / out.commits);
  const lagP50 = (name) => (lags[name].length === 0 ? null : Math.round(percentile(lags[name], 0.5) * 100) / 100);
  return {
    side: side.label, clients, commitsPerSecond: out.commitsPerSecond, p50Ms: out.latencyMs.p50, p99Ms: out.latencyMs.p99,
    commitsPerFsync: fsyncs > 0 ? Math.round((out.commits / fsyncs) * 100) / 100 : null,
    replayLagP50Ms: { s1: lagP50('s1'), s2: lagP50('s2') },
    cpuMicrosPerCommit: { primary: perCommit('primary'), s1: perCommit('s1'), s2: perCommit('s2'), loadGenerator: perCommit('client') },
    loadAverage: Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]),
  };
}

const portBase = Number(args['port-base']);
const sides = [await setUp('a', path.resolve(args.a), portBase), await setUp('b', path.resolve(args.b), portBase + 10)];
const runs = [];
for (let round = 1; round <= Number(args.rounds); round++) {
  for (const clients of args.clients.split(',').map(Number)) {
    for (const side of sides) {
      const run = await measure(side, clients);
      runs.push({ round, ...run });
      if (!args.json) {
        const c = run.cpuMicrosPerCommit;
        console.log(`${run.side} ${String(clients).padStart(2)} clients: ${run.commitsPerSecond} commits/s, p50 ${run.p50Ms} ms, p99 ${run.p99Ms} ms, ` +
          `${run.commitsPerFsync} commits/fdatasync, replay lag p50 ${run.replayLagP50Ms.s1}/${run.replayLagP50Ms.s2} ms, ` +
          `CPU us/commit primary ${c.primary} s1 ${c.s1} s2 ${c.s2} load generator ${c.loadGenerator} (load ${run.loadAverage})`);
      }
    }
  }
}
if (args.json) console.log(JSON.stringify({ a: sides[0].repo, b: sides[1].repo, durationSeconds: Number(args.duration), runs }, null, 2));
await runCleanups();
