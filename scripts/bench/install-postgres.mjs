#!/usr/bin/env node
// Installs PostgreSQL 15 for the benchmark when it is missing (Debian's postgresql package,
// apt-get as root, three tries), and exits 1 saying what to do when it cannot. .ci/run runs it
// before the benchmark's timed run; `npm run bench:pg` does the same itself.
//   node scripts/bench/install-postgres.mjs
import { parseScriptArgs } from '../lib/script-args.mjs';
import { DEFAULT_PG_BIN, findPostgres } from './lib/postgres.mjs';

parseScriptArgs(import.meta.url, { options: {} });
try {
  const { version } = findPostgres(DEFAULT_PG_BIN, { install: true });
  console.error(`install-postgres: PostgreSQL ${version} in ${DEFAULT_PG_BIN}`);
} catch (error) {
  console.error(`install-postgres: ${error.message}`);
  process.exit(1);
}
