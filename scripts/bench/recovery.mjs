#!/usr/bin/env node
// Crash-recovery speed: writes about --wal-mb of WAL with no checkpoint in between (max_wal_size
// and checkpoint_timeout raised out of the way), SIGKILLs the node, starts it again and reports
// the WAL replayed per second, as MB/s and as transactions/s, both for the redo loop alone and
// from the start of the process to accepting connections.
//   node scripts/bench/recovery.mjs [--wal-mb 1024] [--value-size 100] [--clients 32] [--json]
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseScriptArgs } from '../lib/script-args.mjs';
import { cli, parseLsn as parse, parseWalshipRedoDone, readPidFile, serverMain as server } from './lib/common.mjs';

const { values: args } = parseScriptArgs(import.meta.url, {
  options: {
    'wal-mb': { type: 'string', default: '1024' },
    'value-size': { type: 'string', default: '100' },
    clients: { type: 'string', default: '32' },
    keys: { type: 'string', default: '100000' },
    port: { type: 'string', default: '56101' },
    json: { type: 'boolean', default: false },
  },
});
const walBytes = Number(args['wal-mb']) * 1024 * 1024;
const port = Number(args.port);
// Progress is drawn on a terminal; elsewhere one line every tenth of the way.
let lastTenth = -1;
const progress = (text, fraction = 0) => {
  if (process.stderr.isTTY) process.stderr.write(`\r${text}`.padEnd(78));
  else if (Math.floor(fraction * 10) > lastTenth) {
    lastTenth = Math.floor(fraction * 10);
    process.stderr.write(`${text}\n`);
  }
};

const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'walship-recovery-')), 'data');
const init = spawnSync(process.execPath, [cli, 'init', '-D', dir, '--port', String(port),
  '--set', 'max_wal_size=64GB', '--set', 'checkpoint_timeout=1d', '--set', 'shared_buffers=256MB'], { encoding: 'utf8' });
if (init.status !== 0) throw new Error(init.stderr);

function startNode() {
  const started = performance.now();
  const child = spawn(process.execPath, [server, '-D', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => { output += d; });
  child.stderr.on('data', (d) => { output += d; });
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      const pidFile = readPidFile(dir);
      if (pidFile?.pid === child.pid && pidFile.status === 'ready') {
        clearInterval(timer);
        resolve({ child, readyMs: performance.now() - started, log: () => output });
      }
    }, 5);
    child.once('exit', (code) => { clearInterval(timer); reject(new Error(`node exited with ${code}:\n${output}`)); });
  });
}

const { WalshipClient } = await import('@walship/client');
const first = await startNode();
const clients = await Promise.all(Array.from({ length: Number(args.clients) }, () => WalshipClient.connect({ port })));
// Every value is new random bytes, as real updates carry new data, so each record holds its
// whole value (walship logs the bytes that changed; equal padding would shrink the WAL).
const valueSize = Number(args['value-size']);
const valueOf = () => randomBytes(valueSize);
const startLsn = await clients[0].status().then((s) => s.insertLsn);
let committed = 0;
let done = false;
const loadStarted = performance.now();
const watcher = setInterval(async () => {
  const s = await clients[0].status();
  const bytes = parse(s.insertLsn) - parse(startLsn);
  progress(`loading: ${(bytes / 1048576).toFixed(0)} of ${args['wal-mb']} MB of WAL, ${committed} transactions`, bytes / walBytes);
  if (bytes >= walBytes) done = true;
}, 250);
await Promise.all(clients.map(async (client, c) => {
  let i = c;
  while (!done) {
    await client.put(`key-${i % Number(args.keys)}`, valueOf(i));
    committed++;
    i += clients.length;
  }
}));
clearInterval(watcher);
const loadSeconds = (performance.now() - loadStarted) / 1000;
first.child.kill('SIGKILL');
await new Promise((resolve) => first.child.once('exit', resolve));
await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
progress('restarting after SIGKILL...', 2);

const second = await startNode();
const log = second.log();
const redo = parseWalshipRedoDone(log);
second.child.kill('SIGINT');
await new Promise((resolve) => second.child.once('exit', resolve));
fs.rmSync(path.dirname(dir), { recursive: true, force: true });
if (process.stderr.isTTY) process.stderr.write('\n');
if (redo === null) throw new Error(`no "redo done" line in the log:\n${log}`);
const { records, megabytes, seconds: redoSeconds } = redo;
const result = {
  walMegabytes: megabytes,
  records,
  loadSeconds: Number(loadSeconds.toFixed(1)),
  redoSeconds,
  redoMegabytesPerSecond: Number((megabytes / redoSeconds).toFixed(1)),
  redoTransactionsPerSecond: Math.round(records / redoSeconds),
  startToReadyMs: Math.round(second.readyMs),
  startToReadyMegabytesPerSecond: Number((megabytes / (second.readyMs / 1000)).toFixed(1)),
};
if (args.json) console.log(JSON.stringify(result, null, 2));
else {
  console.log(`WAL replayed:      ${megabytes} MB, ${records} records (load took ${result.loadSeconds} s)`);
  console.log(`redo loop:         ${redoSeconds} s = ${result.redoMegabytesPerSecond} MB/s, ${result.redoTransactionsPerSecond} transactions/s`);
  console.log(`start to ready:    ${(second.readyMs / 1000).toFixed(2)} s = ${result.startToReadyMegabytesPerSecond} MB/s`);
}
process.exit(0);
