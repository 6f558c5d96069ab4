#!/usr/bin/env node
// Streaming replication figures, on a fresh primary and a standby made with walship basebackup:
//  1. replay lag while the primary takes --clients writers of 100-byte upserts: the primary's
//     pg_stat_replication replay lag (its lag tracker) sampled every 200 ms, p50 / p99 / max;
//  2. catch-up: the standby is stopped while about --catchup-mb of WAL is written, then started;
//     WAL replayed per second from its start until fully replayed (MB/s and transactions/s);
//  3. base backup of the resulting database: MB per second;
//  4. promotion with the old primary stopped: from the promote request (pg_promote's, over a session)
//     to the first accepted write.
//   node scripts/bench/replication.mjs [--catchup-mb 1024] [--lag-seconds 10] [--clients 8] [--encrypt] [--json]
// --encrypt: both nodes encrypted at rest (init --encrypt with a random key file), for the cost of
// encryption against a run without.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseScriptArgs } from '../lib/script-args.mjs';
import { cli, parseLsn as parse, percentile as pct, waitReplayed, walship, walshipFirstWriteMs } from './lib/common.mjs';

const { values: args } = parseScriptArgs(import.meta.url, {
  options: {
    'catchup-mb': { type: 'string', default: '1024' },
    'lag-seconds': { type: 'string', default: '10' },
    clients: { type: 'string', default: '8' },
    port: { type: 'string', default: '56301' },
    json: { type: 'boolean', default: false },
    encrypt: { type: 'boolean', default: false },
  },
});
const say = (text) => process.stderr.write(`${text}\n`);

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-replbench-'));
const primaryDir = path.join(base, 'primary');
const standbyDir = path.join(base, 'standby');
const primaryPort = Number(args.port);
const standbyPort = primaryPort + 1;
const { WalshipClient } = await import('@walship/client');
const result = {};
try {
  // Room for the catch-up WAL: no checkpoint removes it while the standby is away.
  const keyFile = path.join(base, 'cluster.key');
  fs.writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  const encryption = args.encrypt ? ['--encrypt', '--key-file', keyFile] : [];
  walship('init', '-D', primaryDir, '--port', String(primaryPort), '--set', 'max_wal_size=8GB', '--set', 'wal_keep_size=4GB', '--set', 'checkpoint_timeout=1d', ...encryption);
  walship('start', '-D', primaryDir);
  walship('load', '--node', `127.0.0.1:${primaryPort}`, '--count', '100000', '--prefix', 'bench:', '--clients', '8', '--quiet');
  walship('basebackup', '--from', `127.0.0.1:${primaryPort}`, '-D', standbyDir, '--standby', '--port', String(standbyPort), '--set', 'application_name=standby', '--quiet');
  walship('start', '-D', standbyDir);
  const primary = await WalshipClient.connect({ port: primaryPort });
  const standby = await WalshipClient.connect({ port: standbyPort, reconnect: true });

  // 1. Replay lag under load.
  say(`replay lag: ${args.clients} clients for ${args['lag-seconds']} s...`);
  const bench = spawn(process.execPath, [cli, 'bench', '--node', `127.0.0.1:${primaryPort}`, '--clients', args.clients, '--duration', args['lag-seconds'], '--keys', '100000', '--json', '--quiet'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let benchOut = '';
  bench.stdout.on('data', (d) => { benchOut += d; });
  const lags = [];
  const byteLags = [];
  const sampler = setInterval(async () => {
    const s = await primary.status().catch(() => null);
    const row = s?.replication?.find((r) => r.applicationName === 'standby');
    if (row && row.replayLagMs !== null) lags.push(row.replayLagMs);
    if (row) byteLags.push(parse(s.flushLsn) - parse(row.replayLsn));
  }, 200);
  await new Promise((resolve) => bench.once('exit', resolve));
  clearInterval(sampler);
  const benchResult = JSON.parse(benchOut);
  result.replayLag = {
    clients: Number(args.clients), commitsPerSecond: benchResult.commitsPerSecond, samples: lags.length,
    p50Ms: pct(lags, 0.5), p99Ms: pct(lags, 0.99), maxMs: lags.length ? Math.max(...lags) : null,
    bytesP50: pct(byteLags, 0.5), bytesP99: pct(byteLags, 0.99),
  };
  say(`  ${JSON.stringify(result.replayLag)}`);

  // 2. Catch-up after the standby missed --catchup-mb of WAL.
  await standby.close();
  walship('stop', '-D', standbyDir);
  const catchupBytes = Number(args['catchup-mb']) * 1048576;
  const startLsn = parse((await primary.status()).flushLsn);
  say(`catch-up: writing ${args['catchup-mb']} MB of WAL while the standby is stopped...`);
  const writers = await Promise.all(Array.from({ length: 16 }, () => WalshipClient.connect({ port: primaryPort })));
  let transactions = 0;
  let done = false;
  let lastTenth = -1;
  const watcher = setInterval(async () => {
    const written = parse((await primary.status()).flushLsn) - startLsn;
    if (Math.floor((written / catchupBytes) * 10) > lastTenth) {
      lastTenth = Math.floor((written / catchupBytes) * 10);
      say(`  ${Math.round(written / 1048576)} of ${args['catchup-mb']} MB`);
    }
    if (written >= catchupBytes) done = true;
  }, 250);
  await Promise.all(writers.map(async (w, i) => {
    for (let n = i; !done; n += writers.length) {
      await w.put(`bench:${String(n % 100000).padStart(5, '0')}`, randomBytes(400));
      transactions++;
    }
  }));
  clearInterval(watcher);
  await Promise.all(writers.map((w) => w.close()));
  const target = parse((await primary.status()).flushLsn);
  const startedAt = performance.now();
  walship('start', '-D', standbyDir);
  const check = await WalshipClient.connect({ port: standbyPort, reconnect: true });
  await waitReplayed(check, target);
  const catchupSeconds = (performance.now() - startedAt) / 1000;
  await check.close();
  const walMb = (target - startLsn) / 1048576;
  result.catchUp = {
    walMegabytes: Number(walMb.toFixed(1)), transactions, seconds: Number(catchupSeconds.toFixed(2)),
    megabytesPerSecond: Number((walMb / catchupSeconds).toFixed(1)), transactionsPerSecond: Math.round(transactions / catchupSeconds),
  };
  say(`  ${JSON.stringify(result.catchUp)}`);

  // 3. Base backup of the database as it now is.
  say('base backup...');
  const copyDir = path.join(base, 'copy');
  const backup = JSON.parse(walship('basebackup', '--from', `127.0.0.1:${primaryPort}`, '-D', copyDir, '--port', String(primaryPort + 2), '--json', '--quiet'));
  result.baseBackup = { megabytes: Number((backup.bytes / 1048576).toFixed(1)), seconds: backup.elapsedMs / 1000, megabytesPerSecond: backup.megabytesPerSecond };
  say(`  ${JSON.stringify(result.baseBackup)}`);
  fs.rmSync(copyDir, { recursive: true, force: true });

  // 4. Promotion with the old primary stopped: promote request to first accepted write. The
  // request is pg_promote's (a session asks the node), as pg_ctl's start costs nothing next to a
  // node process's; the command line's own start is reported beside it.
  await primary.close();
  walship('stop', '-D', primaryDir);
  say('promotion...');
  const admin = await WalshipClient.connect({ port: standbyPort });
  const promoteStarted = performance.now();
  const promoted = admin.promote({ wait: true });
  const firstWriteMs = await walshipFirstWriteMs(WalshipClient, standbyPort, promoteStarted);
  const { timeline } = await promoted;
  await admin.close();
  const cliStarted = performance.now();
  spawnSync(process.execPath, [cli, '--version']);
  const cliStartMs = performance.now() - cliStarted;
  result.promotion = {
    firstWriteMs: firstWriteMs === null ? null : Number(firstWriteMs.toFixed(1)), timeline, oldPrimary: 'stopped', cliStartMs: Number(cliStartMs.toFixed(1)),
  };
  say(`  ${JSON.stringify(result.promotion)}`);
} finally {
  for (const dir of [standbyDir, primaryDir]) spawnSync(process.execPath, [cli, 'stop', '-D', dir, '--mode', 'immediate'], { stdio: 'ignore' });
  fs.rmSync(base, { recursive: true, force: true });
}
if (args.json) console.log(JSON.stringify(result, null, 2));
else {
  const r = result;
  console.log(`replay lag at ${r.replayLag.clients} clients (${r.replayLag.commitsPerSecond} commits/s, ${r.replayLag.samples} samples every 200 ms): p50 ${r.replayLag.p50Ms} ms, p99 ${r.replayLag.p99Ms} ms, max ${r.replayLag.maxMs} ms; byte lag p50 ${r.replayLag.bytesP50}, p99 ${r.replayLag.bytesP99}`);
  console.log(`catch-up: ${r.catchUp.walMegabytes} MB of WAL (${r.catchUp.transactions} transactions) in ${r.catchUp.seconds} s = ${r.catchUp.megabytesPerSecond} MB/s, ${r.catchUp.transactionsPerSecond} transactions/s`);
  console.log(`base backup: ${r.baseBackup.megabytes} MB in ${r.baseBackup.seconds} s = ${r.baseBackup.megabytesPerSecond} MB/s`);
  console.log(`promotion, old primary stopped: first write accepted ${r.promotion.firstWriteMs} ms after the promote request (walship promote -D adds its own start, ${r.promotion.cliStartMs} ms)`);
}
process.exit(0);
