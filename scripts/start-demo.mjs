#!/usr/bin/env node
// `npm start`: the main job on one machine. Brings up cluster-configs/local-3node.yaml with
// `walship cluster up` (a primary, a synchronous and an asynchronous standby, and the failover
// monitor; created the first time in data/local-3node, started in their current roles after
// that), puts a light write load on the primary (following it if another terminal switches over
// or fails over), and opens the live lag view of `walship lag -f` on the cluster: per member its
// role, state, sync state, lag in bytes and write / flush / replay lag, replay delay, catch-up
// rate, a sparkline of replay lag, the timeline changes, and under it the load's acknowledged
// writes. Full screen on a terminal; plain blocks, one per second, when stdout is not one.
// Ctrl-C closes the view (the terminal restored), then stops the load, the monitor and every
// member this run started (`walship cluster down` when it started them all), and leaves no
// process behind.
//   npm start     (node scripts/start-demo.mjs); no arguments, settings from the environment:
//   WALSHIP_DEMO_RATE (writes/s, default 200), WALSHIP_DEMO_BASE_PORT (default: the config's 5433),
//   WALSHIP_DEMO_DATA_ROOT (default: the config's data/local-3node)
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseScriptArgs } from './lib/script-args.mjs';

parseScriptArgs(import.meta.url, { options: {} });
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'packages', 'cli', 'bin', 'walship.js');
const configFile = path.join(root, 'cluster-configs', 'local-3node.yaml');
const rate = Number(process.env.WALSHIP_DEMO_RATE ?? 200);
const overrides = [
  ...(process.env.WALSHIP_DEMO_BASE_PORT ? ['--base-port', process.env.WALSHIP_DEMO_BASE_PORT] : []),
  ...(process.env.WALSHIP_DEMO_DATA_ROOT ? ['--data-root', process.env.WALSHIP_DEMO_DATA_ROOT] : []),
];
const clusterArgs = (...args) => [cli, 'cluster', ...args, '-f', configFile, ...overrides];

/** A cluster command to completion, its stderr (progress) on this terminal. */
function cluster(...args) {
  return spawnSync(process.execPath, clusterArgs(...args), { stdio: ['ignore', 'pipe', stderrGone() ? 'ignore' : 'inherit'], encoding: 'utf8' });
}

/**
 * Whether this process's stderr went away (`npm start 2>&1 | tee log`: Ctrl-C ends tee too). Then
 * nothing more is said, and the `walship cluster` children that stop the cluster do not get it
 * either: a write to it would fail with EPIPE and could end them before the cluster is down.
 */
function stderrGone() {
  return process.stderr.destroyed || process.stderr.errored != null;
}

function say(text) {
  if (!stderrGone()) process.stderr.write(text);
}

let stopping = false;
let upChild = null;
/** The write load, once the cluster is up. */
let load = null;
/** Members this run started, stopped again on Ctrl-C; null until `cluster up` has answered. */
let startedHere = null;
let allMembers = [];

/** Whether this run started the failover monitor (cluster up does, for an automatic policy). */
let monitorStartedHere = false;

function stopWhatWeStarted() {
  if (startedHere === null || (startedHere.length === 0 && !monitorStartedHere)) return;
  if (startedHere.length === allMembers.length) {
    // cluster down stops the monitor first, then the members, the primary first.
    say(`stopping the failover monitor and ${startedHere.join(', ')}...\n`);
    const result = cluster('down', '--quiet');
    if (result.status !== 0) say(`walship cluster down failed (exit ${result.status}); see walship cluster status -f ${path.relative(process.cwd(), configFile)}\n`);
    return;
  }
  if (monitorStartedHere) cluster('monitor', '--stop');
  if (startedHere.length > 0) say(`stopping ${startedHere.join(', ')}...\n`);
  for (const name of startedHere) cluster('stop', name, '--quiet');
}

/** The lag view: aborted first on Ctrl-C, so that the terminal is back before anything is said. */
const viewStop = new AbortController();
let view = null;

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  viewStop.abort();
  await view?.catch(() => undefined);
  say('\nstopping the load and the cluster...\n');
  if (upChild !== null) await new Promise((resolve) => upChild.once('exit', resolve));
  await load?.close();
  stopWhatWeStarted();
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
// Piped into something that went away (`npm start | tee log`, Ctrl-C ends tee too): the view's next
// write fails with EPIPE, which would otherwise end this process before it stops the cluster. The
// same for stderr (`npm start 2>&1 | tee log`): the first thing Ctrl-C's stop() says fails so.
process.stdout.on('error', () => void stop(0));
process.stderr.on('error', () => void stop(0));

// 1. The cluster: `walship cluster up`, which waits until every standby streams.
const before = JSON.parse(cluster('status', '--json').stdout || '{"members":[]}');
const runningBefore = new Set(before.members.filter((m) => m.pid !== null).map((m) => m.name));
const monitorRunningBefore = before.monitor?.running === true;
allMembers = before.members.map((m) => m.name);
const up = await new Promise((resolve) => {
  upChild = spawn(process.execPath, clusterArgs('up', '--json', '--progress'), { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  upChild.stdout.on('data', (chunk) => (stdout += chunk));
  upChild.once('exit', (status) => {
    upChild = null;
    resolve({ status, stdout });
  });
});
if (stopping) await new Promise(() => {});
if (up.status !== 0) {
  // Whatever `up` started before it failed is this run's to stop.
  const after = JSON.parse(cluster('status', '--json').stdout || '{"members":[]}');
  startedHere = after.members.filter((m) => m.pid !== null && !runningBefore.has(m.name)).map((m) => m.name);
  monitorStartedHere = after.monitor?.running === true && !monitorRunningBefore;
  say('walship cluster up failed; see the error above.\n');
  stopWhatWeStarted();
  process.exit(1);
}
const upDocument = JSON.parse(up.stdout);
startedHere = upDocument.members.map((m) => m.name).filter((name) => !runningBefore.has(name));
monitorStartedHere = upDocument.monitor?.started === true;

// 2. The load: `rate` small upserts a second over 1000 keys, sent to whoever is primary. The
// failover client is given every member: it finds the primary (the highest timeline), and a write
// that a standby or a node shutting down refused is sent again to the primary it finds next, so
// that a switchover costs the load a pause; only the writes in flight as the old primary stopped,
// which may or may not have committed, fail. (Following the primary the lag view found, the load
// sent about 0.8 s of writes to the old primary after a 108-ms switchover, all counted failed.)
const { WalshipFailoverClient } = await import('@walship/client');
load = {
  client: null,
  acknowledged: 0,
  failed: 0,
  timer: null,
  async close() {
    clearInterval(this.timer);
    await this.client?.close().catch(() => undefined);
  },
};
try {
  load.client = await WalshipFailoverClient.connect({ members: upDocument.members.map((m) => ({ port: m.port })), timeoutMs: 5_000 });
} catch (error) {
  // No primary answered (it looks for 30 s): what this run started is stopped, not left behind.
  say(`the write load found no primary: ${error.message}\n`);
  await stop(1);
}
load.timer = setInterval(() => {
  const client = load.client;
  if (client === null || stopping) return;
  for (let i = 0; i < rate / 10; i++) {
    const key = `demo-${Math.floor(Math.random() * 1000)}`;
    client.put(key, `value at ${new Date().toISOString()}`).then(
      () => void load.acknowledged++,
      () => void load.failed++,
    );
  }
}, 100);

// 3. The lag view of `walship lag -f` on the cluster, with the load's figures under it, named
// after the primary the view finds (the answering primary on the highest timeline).
const cluster$ = await import('@walship/cluster');
const { processIo, runClusterLag } = await import('@walship/cli');
const config = cluster$.loadClusterConfig(configFile, {
  ...(process.env.WALSHIP_DEMO_BASE_PORT ? { basePort: Number(process.env.WALSHIP_DEMO_BASE_PORT) } : {}),
  ...(process.env.WALSHIP_DEMO_DATA_ROOT ? { dataRoot: process.env.WALSHIP_DEMO_DATA_ROOT } : {}),
});
const relativeConfig = [path.relative(process.cwd(), configFile), ...overrides].join(' ');
let last = { at: Date.now(), acknowledged: 0 };
let loadLine = `load: ${rate} writes/s asked`;
let primaryName = upDocument.primary;
const onReport = (report) => {
  const primary = report.members.find((member) => member.name === report.primary && member.state === 'running');
  if (primary !== undefined && !stopping) primaryName = primary.name;
  const now = Date.now();
  const perSecond = ((load.acknowledged - last.acknowledged) * 1000) / Math.max(1, now - last.at);
  last = { at: now, acknowledged: load.acknowledged };
  loadLine = `load: ${rate} writes/s asked, ${perSecond.toFixed(0)}/s acknowledged by ${primaryName} (${load.acknowledged} in all, ${load.failed} failed)`;
};
const footer = () => [
  loadLine,
  `Ctrl-C stops the load and the cluster. In another terminal: npx walship cluster switchover -f ${relativeConfig}`,
  `or kill the primary (npx walship cluster kill -f ${relativeConfig} ${primaryName}) and watch the monitor fail over`,
];
view = runClusterLag(config, {}, processIo(), { signal: viewStop.signal, footer, onReport });
view.then(
  (code) => void stop(code),
  (error) => {
    say(`walship lag failed: ${error.message}\n`);
    void stop(1);
  },
);
