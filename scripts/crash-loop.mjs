#!/usr/bin/env node
// The long crash loop: the same check as test/crash-recovery.test.ts (SIGKILL under a concurrent
// write load, restart, verify every acknowledged write), for many cycles.
//   node scripts/crash-loop.mjs [CYCLES] [SEED]     (default 300 cycles)
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseScriptArgs, usageError, wholeNumber } from './lib/script-args.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { positionals } = parseScriptArgs(import.meta.url, { options: {}, allowPositionals: true });
if (positionals.length > 2) usageError(import.meta.url, `unexpected argument ${JSON.stringify(positionals[2])}`);
const cycles = String(wholeNumber(import.meta.url, 'CYCLES', positionals[0] ?? '300'));
const seed = String(wholeNumber(import.meta.url, 'SEED', positionals[1] ?? String(Date.now() % 100000), 0));
console.error(`crash loop: ${cycles} SIGKILL cycles, seed ${seed}`);
const started = Date.now();
const result = spawnSync(path.join(root, 'node_modules', '.bin', 'vitest'),
  ['run', '--project', 'integration', 'test/crash-recovery.test.ts', '--testTimeout', String(Number(cycles) * 30_000)],
  { cwd: root, stdio: 'inherit', env: { ...process.env, WALSHIP_CRASH_CYCLES: cycles, WALSHIP_SEED: seed } });
console.error(`crash loop: ${result.status === 0 ? 'passed' : 'FAILED'} in ${((Date.now() - started) / 1000).toFixed(0)} s (cycles ${cycles}, seed ${seed})`);
process.exit(result.status ?? 1);
