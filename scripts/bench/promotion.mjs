#!/usr/bin/env node
// Promotion time, encrypted at rest against plain: for each of --rounds rounds and each mode
// (plain, encrypted; the order alternating between rounds), a fresh primary (16 MB segments by
// default) takes --keys writes, a standby made with walship basebackup replays them, the primary
// is stopped, and the standby is promoted: the time from the promote request (over a session,
// as pg_promote) to the first accepted write, and the promoted node's own "promote took" figure
// from its log when it prints one. Medians per mode, and the difference.
//   node scripts/bench/promotion.mjs [--rounds 7] [--keys 20000] [--segment-size 16MB] [--port 56401] [--json]
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseScriptArgs } from '../lib/script-args.mjs';
import { cli, median, parseLsn, waitReplayed, walship, walshipFirstWriteMs } from './lib/common.mjs';

const { values: args } = parseScriptArgs(import.meta.url, {
  options: {
    rounds: { type: 'string', default: '7' },
    keys: { type: 'string', default: '20000' },
    'segment-size': { type: 'string', default: '16MB' },
    port: { type: 'string', default: '56401' },
    json: { type: 'boolean', default: false },
  },
});
const say = (text) => process.stderr.write(`${text}\n`);
const { WalshipClient } = await import('@walship/client');

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'walship-promotebench-'));
const keyFile = path.join(base, 'cluster.key');
fs.writeFileSync(keyFile, randomBytes(32).toString('hex'), { mode: 0o600 });
const primaryPort = Number(args.port);
const standbyPort = primaryPort + 1;

/** One promotion: milliseconds from the promote request to the first accepted write, and where the switch fell. */
async function promotionOnce(encrypted, round) {
  const dir = path.join(base, `${encrypted ? 'enc' : 'plain'}-${round}`);
  const primaryDir = path.join(dir, 'primary');
  const standbyDir = path.join(dir, 'standby');
  const encryption = encrypted ? ['--encrypt', '--key-file', keyFile] : [];
  try {
    walship('init', '-D', primaryDir, '--port', String(primaryPort), '--set', `wal_segment_size=${args['segment-size']}`, ...encryption);
    walship('start', '-D', primaryDir);
    walship('load', '--node', `127.0.0.1:${primaryPort}`, '--count', args.keys, '--prefix', 'promote:', '--clients', '8', '--quiet');
    walship('basebackup', '--from', `127.0.0.1:${primaryPort}`, '-D', standbyDir, '--standby', '--port', String(standbyPort), '--set', 'application_name=standby', '--quiet');
    walship('start', '-D', standbyDir);
    const primary = await WalshipClient.connect({ port: primaryPort });
    // WAL after the base backup, streamed: the switch segment holds streamed WAL, as after a failover.
    for (let i = 0; i < 500; i++) await primary.put(`after-backup:${i}`, randomBytes(200));
    const target = parseLsn((await primary.status()).flushLsn);
    await primary.close();
    const standby = await WalshipClient.connect({ port: standbyPort });
    await waitReplayed(standby, target);
    walship('stop', '-D', primaryDir);
    const started = performance.now();
    const promoted = standby.promote({ wait: true });
    const firstWriteMs = await walshipFirstWriteMs(WalshipClient, standbyPort, started);
    await promoted;
    await standby.close();
    const segmentBytes = Number(/(\d+)MB/.exec(args['segment-size'])[1]) * 1048576;
    return { firstWriteMs, switchOffset: target % segmentBytes };
  } finally {
    for (const d of [standbyDir, primaryDir]) spawnSync(process.execPath, [cli, 'stop', '-D', d, '--mode', 'immediate'], { stdio: 'ignore' });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const runs = { plain: [], encrypted: [] };
try {
  for (let round = 0; round < Number(args.rounds); round++) {
    const order = round % 2 === 0 ? [false, true] : [true, false];
    for (const encrypted of order) {
      const { firstWriteMs, switchOffset } = await promotionOnce(encrypted, round);
      runs[encrypted ? 'encrypted' : 'plain'].push(firstWriteMs);
      say(`round ${round + 1} ${encrypted ? 'encrypted' : 'plain    '}: first write ${firstWriteMs?.toFixed(1)} ms after the promote request (switch ${(switchOffset / 1048576).toFixed(1)} MB into its segment)`);
    }
  }
} finally {
  fs.rmSync(base, { recursive: true, force: true });
}
const result = {
  rounds: Number(args.rounds), keys: Number(args.keys), segmentSize: args['segment-size'],
  plainMs: runs.plain.map((ms) => Number(ms.toFixed(1))), encryptedMs: runs.encrypted.map((ms) => Number(ms.toFixed(1))),
  plainMedianMs: Number(median(runs.plain).toFixed(1)), encryptedMedianMs: Number(median(runs.encrypted).toFixed(1)),
};
result.differenceMs = Number((result.encryptedMedianMs - result.plainMedianMs).toFixed(1));
if (args.json) console.log(JSON.stringify(result, null, 2));
else console.log(`promotion to first write, median of ${result.rounds}: plain ${result.plainMedianMs} ms, encrypted ${result.encryptedMedianMs} ms (${result.differenceMs >= 0 ? '+' : ''}${result.differenceMs} ms)`);
process.exit(0);
