/**
 * The node's program: `node packages/server/dist/main.js -D DATADIR`. `walship start` runs it
 * in the background; `walship start --foreground` in the foreground.
 */
import * as path from 'node:path';
import { WalshipError } from '@walship/engine';
import { Postmaster } from './postmaster.js';

function usage(): never {
  process.stderr.write('usage: walship-server -D DATADIR\n');
  process.exit(2);
}

const args = process.argv.slice(2);
let dataDir: string | undefined;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '-D') dataDir = args[++i];
  else if (args[i]?.startsWith('-D')) dataDir = args[i]!.slice(2);
  else usage();
}
if (dataDir === undefined) usage();

// The Postmaster reads walship.conf in its constructor, before the logger exists. An error there
// (a missing file, an unknown setting, a bad unit) used to escape as an uncaught exception: a
// Node stack trace instead of the message. Report it as PostgreSQL does a bad postgresql.conf,
// FATAL with the file and line, its DETAIL and HINT, and exit 1.
let postmaster: Postmaster;
try {
  postmaster = new Postmaster({ dataDir: path.resolve(dataDir), foreground: process.env.WALSHIP_LOG_STDERR === '1' || process.stderr.isTTY === true });
} catch (error) {
  if (!(error instanceof WalshipError)) {
    process.stderr.write(`FATAL:  ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  }
  let text = `FATAL:  ${error.message}\n`;
  if (error.detail) text += `DETAIL:  ${error.detail}\n`;
  if (error.hint) text += `HINT:  ${error.hint.replace('-D DIR', `-D ${dataDir}`)}\n`;
  process.stderr.write(text);
  process.exit(1);
}
postmaster.run().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`FATAL:  ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
