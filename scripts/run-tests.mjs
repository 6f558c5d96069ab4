#!/usr/bin/env node
// The project's test command (`npm test`, which .ci/run calls): installs the Debian programs the
// real-process tests start when they are missing (scripts/lib/test-tools.mjs), builds, runs the
// unit tests in parallel, then the real-process tests one file at a time, and ends with one plain
// line, `N passed, N failed`, summed over both runs. Exits non-zero if anything failed or a run broke.
// `--step NAME=passed|failed` (repeatable) counts a step that ran before it (.ci/run's benchmark)
// in that summary as one item.
//   npm test [-- --step NAME=passed|failed ...]     (node scripts/run-tests.mjs [...])
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseScriptArgs } from './lib/script-args.mjs';
import { installTools, missingTools } from './lib/test-tools.mjs';

const { values: options } = parseScriptArgs(import.meta.url, { options: { step: { type: 'string', multiple: true, default: [] } } });
let passed = 0;
let failed = 0;
for (const step of options.step) {
  const match = /^(.+)=(passed|failed)$/.exec(step);
  if (match === null) {
    console.error(`walship: --step ${step}: expected NAME=passed or NAME=failed`);
    process.exit(2);
  }
  if (match[2] === 'passed') passed++;
  else {
    failed++;
    console.error(`walship: the step "${match[1]}" failed before the tests; it counts as one failure.`);
  }
}

// Before anything else, so that a fresh machine's first run has them; the tests that need a tool
// still missing after this fail with their own instruction.
installTools(missingTools());

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const reports = path.join(root, '.tmp', 'test-reports');
fs.mkdirSync(reports, { recursive: true });
const bin = (name) => path.join(root, 'node_modules', '.bin', name);

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', env: process.env });
  return result.status ?? 1;
}

let broken = false;
if (run(bin('tsc'), ['-b']) !== 0) {
  console.error('walship: the build failed; see the errors above.');
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}

for (const project of ['unit', 'integration']) {
  const output = path.join(reports, `${project}.json`);
  fs.rmSync(output, { force: true });
  const status = run(bin('vitest'), ['run', '--project', project, '--reporter=default', '--reporter=json', `--outputFile=${output}`]);
  if (!fs.existsSync(output)) {
    console.error(`walship: the ${project} tests did not produce a report (exit status ${status}).`);
    broken = true;
    failed++;
    continue;
  }
  const report = JSON.parse(fs.readFileSync(output, 'utf8'));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  // A file that failed to load, or whose beforeAll failed (its tests then report as skipped),
  // counts as a failure even when none of its tests did.
  for (const file of report.testResults ?? []) {
    if (file.status === 'failed' && !(file.assertionResults ?? []).some((test) => test.status === 'failed')) failed++;
  }
  if (status !== 0 && report.numFailedTests === 0) broken = true;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || broken ? 1 : 0);
