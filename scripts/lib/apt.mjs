// Debian packages the project's scripts need and npm cannot install: apt-get as root, three tries.
// The test command installs the programs its real-process tests start (test-tools.mjs), and the
// benchmark installs PostgreSQL 15 (bench/lib/postgres.mjs): both through here.
import { spawnSync } from 'node:child_process';

/**
 * Installs `packages` with apt-get (after apt-get update), retrying a failed attempt twice, 10
 * and 20 s later; returns whether it did. `needs` says who needs what, for the messages. Not as
 * root, or without apt-get, it prints the command to run instead and returns false.
 */
export function aptInstall(packages, needs, log = (line) => console.error(line)) {
  const command = `apt-get install -y --no-install-recommends ${packages.join(' ')}`;
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!root || spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status !== 0) {
    log(`walship: ${needs}, not installed here; install with: sudo ${command}`);
    return false;
  }
  log(`walship: installing ${packages.join(', ')}: ${needs}: ${command}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (let attempt = 1; attempt <= 3; attempt++) {
    const updated = spawnSync('apt-get', ['update'], { stdio: 'inherit', env }).status === 0;
    if (updated && spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { stdio: 'inherit', env }).status === 0) return true;
    if (attempt < 3) {
      log(`walship: apt-get could not install ${packages.join(', ')} (attempt ${attempt}); retrying`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, attempt * 10_000);
    }
  }
  log(`walship: apt-get could not install ${packages.join(', ')} three times`);
  return false;
}
