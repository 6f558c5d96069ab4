/**
 * The node's program: `node packages/server/dist/main.js -D DATADIR`. `walship start` runs it
 * in the background; `walship start --foreground` in the foreground.
 */
import * as path from 'node:path';
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

const postmaster = new Postmaster({ dataDir: path.resolve(dataDir), foreground: process.env.WALSHIP_LOG_STDERR === '1' });
postmaster.run().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`FATAL:  ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
