#!/usr/bin/env node
// Catch-up replay rate, encrypted at rest against plain. For each mode a primary (plain, and one
// made with init --encrypt) and a standby copied from it with walship basebackup and left
// stopped while --mb MB of WAL is written (16 writers of 400-byte upserts, as replication.mjs);
// the stopped standby is the template. Each round, for each mode (the order alternating), a copy
// of the template is started (its server process, as walship start runs it) and timed until it has replayed everything the
// primary wrote: WAL megabytes per second, and the CPU time (all threads, /proc/PID/stat) the
// standby and the primary spent per megabyte meanwhile, the steadier figure on a shared machine,
// and the share of the WAL the standby received as stored (an encrypted standby with its
// primary's WAL key gets ciphertext straight from the primary's files; docs/security.md).
// Medians per mode, and how much slower encrypted is.
//   node scripts/bench/catchup.mjs [--mb 128] [--rounds 5] [--port 56501] [--profile DIR] [--json]
// --profile DIR: each standby's server runs with node --cpu-prof, its profiles (the main thread's
// and each worker's) written to DIR/plain-N and DIR/encrypted-N when it stops.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseScriptArgs } from '../lib/script-args.mjs';
import { cli, median, parseLsn, readPidFile, startWalshipServer, waitReplayed, walship } from './lib/common.mjs';
import { readStat } from './lib/processes.mjs';

const { values: args } = parseScriptArgs(import.meta.url, {
  options: {
    mb: { type: 'string', default: '128' },
    rounds: { type: 'string', default: '5' },
    port: { type: 'string', default: '56501' },
    profile: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const say = (text) => process.stderr.write(`${text}\n`);
const { WalshipClient } = await import('@walship/client');

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-catchupbench-'));
const keyFile = path.join(base, 'cluster.key');
fs.writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
const modes = [
  { name: 'plain', encrypted: false, primaryPort: Number(args.port), standbyPort: Number(args.port) + 1 },
  { name: 'encrypted', encrypted: true, primaryPort: Number(args.port) + 2, standbyPort: Number(args.port) + 3 },
];

/** A primary, a stopped standby copied from it, and --mb MB of WAL the standby has not seen. */
async function prepare(mode) {
  mode.primaryDir = path.join(base, `${mode.name}-primary`);
  mode.templateDir = path.join(base, `${mode.name}-standby`);
  const encryption = mode.encrypted ? ['--encrypt', '--key-file', keyFile] : [];
  walship('init', '-D', mode.primaryDir, '--port', String(mode.primaryPort), '--set', 'max_wal_size=8GB', '--set', 'wal_keep_size=4GB', '--set', 'checkpoint_timeout=1d', ...encryption);
  walship('start', '-D', mode.primaryDir);
  walship('basebackup', '--from', `127.0.0.1:${mode.primaryPort}`, '-D', mode.templateDir, '--standby', '--port', String(mode.standbyPort), '--set', 'application_name=standby', '--quiet');
  const primary = await WalshipClient.connect({ port: mode.primaryPort });
  const startLsn = parseLsn((await primary.status()).flushLsn);
  const bytes = Number(args.mb) * 1048576;
  say(`${mode.name}: writing ${args.mb} MB of WAL...`);
  const writers = await Promise.all(Array.from({ length: 16 }, () => WalshipClient.connect({ port: mode.primaryPort })));
  let done = false;
  const watcher = setInterval(async () => {
    if (parseLsn((await primary.status()).flushLsn) - startLsn >= bytes) done = true;
  }, 250);
  await Promise.all(writers.map(async (writer, i) => {
    for (let n = i; !done; n += writers.length) await writer.put(`bench:${String(n % 100000).padStart(5, '0')}`, randomBytes(400));
  }));
  clearInterval(watcher);
  await Promise.all(writers.map((writer) => writer.close()));
  mode.targetLsn = parseLsn((await primary.status()).flushLsn);
  mode.walMegabytes = (mode.targetLsn - startLsn) / 1048576;
  await primary.close();
}

/** utime + stime of a process (all its threads), in milliseconds; USER_HZ is 100 on Linux. */
function processCpuMs(pid) {
  const stat = readStat(pid);
  if (stat === null) throw new Error(`process ${pid} is gone: no CPU time to read`);
  return (stat.utime + stat.stime) * 10;
}

function primaryPid(mode) {
  const file = readPidFile(mode.primaryDir);
  if (file === null) throw new Error(`${mode.primaryDir}: no postmaster.pid`);
  return file.pid;
}

/** A copy of the template started and timed until it has replayed the primary's WAL: MB/s. */
async function catchUpOnce(mode, round) {
  const dir = path.join(base, `${mode.name}-run-${round}`);
  fs.cpSync(mode.templateDir, dir, { recursive: true });
  // The server process itself, as walship start runs it (node options cannot carry --cpu-prof).
  const profile = [];
  if (args.profile !== undefined) {
    const profileDir = path.resolve(args.profile, `${mode.name}-${round}`);
    fs.mkdirSync(profileDir, { recursive: true });
    profile.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`);
  }
  const primaryCpuBefore = processCpuMs(primaryPid(mode));
  try {
    const started = performance.now();
    const { child } = await startWalshipServer(dir, path.join(base, `${mode.name}-run-${round}.log`), { nodeArgs: profile });
    const standby = await WalshipClient.connect({ port: mode.standbyPort, reconnect: true });
    await waitReplayed(standby, mode.targetLsn);
    const seconds = (performance.now() - started) / 1000;
    const standbyCpuMs = processCpuMs(child.pid);
    const primaryCpuMs = processCpuMs(primaryPid(mode)) - primaryCpuBefore;
    // How much of the WAL came as stored (ciphertext from the primary's files, no cipher run on
    // either side): about all of it for an encrypted standby, none for a plain one.
    const receiver = (await standby.status()).walReceiver ?? {};
    const asStoredShare = receiver.walBytesReceived > 0 ? (receiver.walBytesReceivedAsStored ?? 0) / receiver.walBytesReceived : 0;
    await standby.close();
    return { rate: mode.walMegabytes / seconds, standbyCpuMsPerMb: standbyCpuMs / mode.walMegabytes, primaryCpuMsPerMb: primaryCpuMs / mode.walMegabytes, asStoredShare };
  } finally {
    spawnSync(process.execPath, [cli, 'stop', '-D', dir, '--mode', 'fast'], { stdio: 'ignore' });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const rates = { plain: [], encrypted: [] };
const standbyCpu = { plain: [], encrypted: [] };
const primaryCpu = { plain: [], encrypted: [] };
const asStored = { plain: [], encrypted: [] };
try {
  for (const mode of modes) await prepare(mode);
  for (let round = 0; round < Number(args.rounds); round++) {
    for (const mode of round % 2 === 0 ? modes : [...modes].reverse()) {
      const { rate, standbyCpuMsPerMb, primaryCpuMsPerMb, asStoredShare } = await catchUpOnce(mode, round);
      rates[mode.name].push(rate);
      standbyCpu[mode.name].push(standbyCpuMsPerMb);
      primaryCpu[mode.name].push(primaryCpuMsPerMb);
      asStored[mode.name].push(asStoredShare);
      say(`round ${round + 1} ${mode.name.padEnd(9)}: ${mode.walMegabytes.toFixed(1)} MB replayed at ${rate.toFixed(1)} MB/s; CPU per MB: standby ${standbyCpuMsPerMb.toFixed(1)} ms, primary ${primaryCpuMsPerMb.toFixed(1)} ms; received as stored ${(asStoredShare * 100).toFixed(0)}%`);
    }
  }
} finally {
  for (const mode of modes) if (mode.primaryDir !== undefined) spawnSync(process.execPath, [cli, 'stop', '-D', mode.primaryDir, '--mode', 'immediate'], { stdio: 'ignore' });
  fs.rmSync(base, { recursive: true, force: true });
}
const round1 = (x) => Number(x.toFixed(1));
const result = {
  walMegabytes: round1(modes[0].walMegabytes), rounds: Number(args.rounds),
  plainMegabytesPerSecond: rates.plain.map(round1), encryptedMegabytesPerSecond: rates.encrypted.map(round1),
  plainMedian: round1(median(rates.plain)), encryptedMedian: round1(median(rates.encrypted)),
};
result.encryptedSlowerPercent = round1((1 - result.encryptedMedian / result.plainMedian) * 100);
result.standbyCpuMsPerMb = { plain: round1(median(standbyCpu.plain)), encrypted: round1(median(standbyCpu.encrypted)) };
result.primaryCpuMsPerMb = { plain: round1(median(primaryCpu.plain)), encrypted: round1(median(primaryCpu.encrypted)) };
result.receivedAsStoredPercent = { plain: round1(median(asStored.plain) * 100), encrypted: round1(median(asStored.encrypted) * 100) };
if (args.json) console.log(JSON.stringify(result, null, 2));
else {
  console.log(`catch-up replay, median of ${result.rounds}: plain ${result.plainMedian} MB/s, encrypted ${result.encryptedMedian} MB/s (${result.encryptedSlowerPercent}% slower)`);
  console.log(`CPU per MB of WAL, median: standby plain ${result.standbyCpuMsPerMb.plain} ms, encrypted ${result.standbyCpuMsPerMb.encrypted} ms; primary (walsender) plain ${result.primaryCpuMsPerMb.plain} ms, encrypted ${result.primaryCpuMsPerMb.encrypted} ms`);
  console.log(`WAL received as stored (encrypted, no cipher run), median: plain ${result.receivedAsStoredPercent.plain}%, encrypted ${result.receivedAsStoredPercent.encrypted}%`);
}
process.exit(0);
