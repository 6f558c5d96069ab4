#!/usr/bin/env node
// `npm start`: the main job, on one machine. Until the cluster toolkit lands (issue 5) it runs a
// single node: initializes `data/demo` if needed, starts the node, puts a light write load on
// it, and prints a status line every second (positions, commits/s, fsyncs, checkpoints).
// Ctrl-C stops the load and the node (fast shutdown) and leaves no process behind.
//   WALSHIP_DEMO_PORT (default 5433), WALSHIP_DEMO_RATE (writes/s, default 200)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'packages', 'cli', 'bin', 'walship.js');
const dataDir = path.join(root, 'data', 'demo');
const port = Number(process.env.WALSHIP_DEMO_PORT ?? 5433);
const rate = Number(process.env.WALSHIP_DEMO_RATE ?? 200);

function walship(...args) {
  const result = spawnSync(process.execPath, [cli, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (result.status !== 0) throw new Error(`walship ${args.join(' ')} failed (exit ${result.status})`);
}

if (!fs.existsSync(path.join(dataDir, 'global', 'control'))) {
  walship('init', '-D', dataDir, '--port', String(port));
}
walship('start', '-D', dataDir);

const { WalshipClient } = await import('@walship/client');
const client = await WalshipClient.connect({ port, reconnect: true });
let stopping = false;
let written = 0;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  process.stderr.write('\nstopping the load and the node...\n');
  await client.close().catch(() => undefined);
  walship('stop', '-D', dataDir, '--mode', 'fast');
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

// The load: `rate` small upserts a second over 1000 keys, so the node always has work to show.
const load = setInterval(() => {
  for (let i = 0; i < rate / 10 && !stopping; i++) {
    const key = `demo-${Math.floor(Math.random() * 1000)}`;
    client.put(key, `value at ${new Date().toISOString()}`).then(() => { written++; }, () => undefined);
  }
}, 100);

console.log(`walship node on 127.0.0.1:${port}, data in ${path.relative(process.cwd(), dataDir) || '.'}; ${rate} writes/s. Ctrl-C stops it.`);
console.log('time      insert LSN   flush LSN    checkpoint   commits/s  fsyncs/s  commits/fsync');
let last = null;
const tick = setInterval(async () => {
  if (stopping) return;
  try {
    const s = await client.status();
    const now = { at: Date.now(), commits: s.commits, fsyncs: s.walFsyncs };
    if (last !== null) {
      const seconds = (now.at - last.at) / 1000;
      const commits = (now.commits - last.commits) / seconds;
      const fsyncs = (now.fsyncs - last.fsyncs) / seconds;
      console.log([
        new Date().toISOString().slice(11, 19), String(s.insertLsn).padEnd(12), String(s.flushLsn).padEnd(12),
        String(s.lastCheckpointLsn).padEnd(12), commits.toFixed(0).padStart(9), fsyncs.toFixed(0).padStart(9),
        (fsyncs > 0 ? commits / fsyncs : 0).toFixed(1).padStart(14),
      ].join('  '));
    }
    last = now;
  } catch (error) {
    console.log(`${new Date().toISOString().slice(11, 19)}  node not answering: ${error.message}`);
  }
}, 1000);
void load;
void tick;
