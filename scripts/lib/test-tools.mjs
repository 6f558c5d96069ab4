// The programs the real-process tests start that npm cannot install: Debian packages, looked for
// where those tests look. `npm test` installs the missing ones with apt-get before it runs
// anything (as root; three tries), so that the README's `npm ci && npm test` works on a fresh
// machine; when it cannot, it says what to run, and the tests that need them fail saying the same.
// None is ever skipped.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

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
 * Installs the Debian packages of `tools` with apt-get, retrying a failed attempt twice; returns
 * whether it did. Not as root, or without apt-get, it prints the command to run instead.
 */
export function installTools(tools, log = (line) => console.error(line)) {
  if (tools.length === 0) return true;
  const packages = tools.map((tool) => tool.debianPackage);
  const command = `apt-get install -y --no-install-recommends ${packages.join(' ')}`;
  const needs = tools.map((tool) => `${tool.name} (${tool.neededBy})`).join(', ');
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root || spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status !== 0) {
    log(`walship: the tests need ${needs}, which are not installed; install them with: sudo ${command}`);
    return false;
  }
  log(`walship: installing ${packages.join(', ')} for ${needs}: ${command}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (let attempt = 1; attempt <= 3; attempt++) {
    const updated = spawnSync('apt-get', ['update'], { stdio: 'inherit', env }).status === 0;
    if (updated && spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { stdio: 'inherit', env }).status === 0) return true;
    if (attempt < 3) {
      log(`walship: apt-get could not install ${packages.join(', ')} (attempt ${attempt}); retrying`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, attempt * 10_000);
    }
  }
  log(`walship: apt-get could not install ${packages.join(', ')} three times; the tests that need them will fail`);
  return false;
}
