#!/usr/bin/env node
// The long synchronous-failover loop: the same check as the failover case of
// test/sync-rep.test.ts (writers at synchronous_commit = on with FIRST 1 (standby), the primary
// SIGKILLed right after an acknowledgement with other commits in flight, the synchronous standby
// promoted, every acknowledged write looked up on it; the promoted node then gets a new standby
// and the next cycle starts), for many cycles; prints a summary.
//   node scripts/sync-failover-loop.mjs [CYCLES]     (default 50)
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseScriptArgs, usageError, wholeNumber } from './lib/script-args.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { positionals } = parseScriptArgs(import.meta.url, { options: {}, allowPositionals: true });
if (positionals.length > 1) usageError(import.meta.url, `unexpected argument ${JSON.stringify(positionals[1])}`);
const cycles = wholeNumber(import.meta.url, 'CYCLES', positionals[0] ?? '50');
const summaryFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'walship-syncloop-')), 'summary.json');
console.error(`synchronous failover loop: ${cycles} cycles`);
const started = Date.now();
const result = spawnSync(path.join(root, 'node_modules', '.bin', 'vitest'),
  ['run', '--project', 'integration', 'test/sync-rep.test.ts', '-t', 'killing the primary', '--testTimeout', String(60_000 + cycles * 30_000)],
  { cwd: root, stdio: 'inherit', env: { ...process.env, WALSHIP_SYNC_FAILOVER_CYCLES: String(cycles), WALSHIP_SYNC_FAILOVER_SUMMARY: summaryFile } });
const seconds = (Date.now() - started) / 1000;
let summary = null;
try {
  summary = JSON.parse(fs.readFileSync(summaryFile, 'utf8'));
} catch {
  // No summary: the test failed before its end; vitest has said why.
}
fs.rmSync(path.dirname(summaryFile), { recursive: true, force: true });
const ok = result.status === 0 && summary !== null;
if (summary !== null) {
  const promotions = [...summary.promotionsMs].sort((a, b) => a - b);
  const pick = (p) => promotions[Math.min(promotions.length - 1, Math.ceil(p * promotions.length) - 1)];
  console.log(`cycles: ${summary.cycles}`);
  console.log(`acknowledged writes: ${summary.ackedWrites}, lost: ${summary.ackedWritesLost}, indeterminate (in flight at the kill): ${summary.indeterminateWrites}`);
  console.log(`promotion (request to writes accepted): p50 ${pick(0.5).toFixed(0)} ms, max ${promotions.at(-1).toFixed(0)} ms`);
}
console.log(`synchronous failover loop: ${ok ? 'passed' : 'FAILED'} in ${seconds.toFixed(0)} s`);
process.exit(ok ? 0 : 1);
