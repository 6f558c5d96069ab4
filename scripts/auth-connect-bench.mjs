#!/usr/bin/env node
// What a SCRAM-SHA-256 login costs: two fresh nodes on free loopback ports, one with trust (the
// default) and one with `init --auth scram-sha-256`, and the time to open and authenticate a
// client session on each, 10 warm-up connections then 50 measured, one at a time.
//   node scripts/auth-connect-bench.mjs        (after npx tsc -b)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WalshipClient } from '@walship/client';
import { parseScriptArgs } from './lib/script-args.mjs';

parseScriptArgs(import.meta.url, { options: {} });
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cli = path.join(root, 'packages', 'cli', 'bin', 'walship.js');
const PASSWORD = 'bench-password';

function walship(args, env = {}) {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  if (result.status !== 0) throw new Error(`walship ${args.join(' ')}: ${result.stderr}`);
}

function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function measure(port, credentials) {
  const times = [];
  for (let i = 0; i < 60; i++) {
    const started = performance.now();
    const client = await WalshipClient.connect({ port, timeoutMs: 10_000, ...credentials });
    times.push(performance.now() - started);
    await client.close();
  }
  const measured = times.slice(10).sort((a, b) => a - b);
  return { medianMs: measured[25], p90Ms: measured[45] };
}

const dir = mkdtempSync(path.join(tmpdir(), 'walship-auth-bench-'));
const nodes = [
  { name: 'trust', args: [], env: {}, credentials: {} },
  { name: 'scram-sha-256', args: ['--auth', 'scram-sha-256'], env: { WALSHIP_PASSWORD: PASSWORD }, credentials: { user: 'walship', password: PASSWORD } },
];
try {
  for (const node of nodes) {
    const dataDir = path.join(dir, node.name);
    const port = await freePort();
    walship(['init', '-D', dataDir, '--port', String(port), ...node.args], node.env);
    walship(['start', '-D', dataDir]);
    try {
      const { medianMs, p90Ms } = await measure(port, node.credentials);
      console.log(`${node.name.padEnd(14)} connect + authenticate: median ${medianMs.toFixed(2)} ms, p90 ${p90Ms.toFixed(2)} ms (50 sessions)`);
    } finally {
      walship(['stop', '-D', dataDir]);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
