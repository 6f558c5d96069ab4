// The programs the real-process tests start that npm cannot install: Debian packages, looked for
// where those tests look. `npm test` installs the missing ones with apt-get before it runs
// anything (as root; three tries), so that the README's `npm ci && npm test` works on a fresh
// machine; when it cannot, it says what to run, and the tests that need them fail saying the same.
// None is ever skipped.
import * as fs from 'node:fs';
import { aptInstall } from './apt.mjs';

/** name: the program; override: the environment variable that points a test at another binary. */
export const TEST_TOOLS = [
  { name: 'prometheus', override: 'PROMETHEUS', debianPackage: 'prometheus', neededBy: 'test/prometheus.test.ts' },
  { name: 'tmux', override: 'TMUX_BINARY', debianPackage: 'tmux', neededBy: 'test/lag-terminal.test.ts' },
];

/** The tools of `tools` found neither at their override nor in /usr/bin or /usr/local/bin. */
export function missingTools(tools = TEST_TOOLS, env = process.env) {
  return tools.filter((tool) => {
    const candidates = env[tool.override] !== undefined ? [env[tool.override]] : [`/usr/bin/${tool.name}`, `/usr/local/bin/${tool.name}`];
    return !candidates.some((candidate) => fs.existsSync(candidate));
  });
}

/**
 * Installs the Debian packages of `tools` (lib/apt.mjs: as root, three tries); returns whether it
 * did. Otherwise it prints the command to run, and the tests that need them fail saying the same.
 */
export function installTools(tools, log = (line) => console.error(line)) {
  if (tools.length === 0) return true;
  const needs = `the tests need ${tools.map((tool) => `${tool.name} (${tool.neededBy})`).join(', ')}`;
  const installed = aptInstall(tools.map((tool) => tool.debianPackage), needs, log);
  if (!installed) log('walship: the tests that need them will fail');
  return installed;
}
