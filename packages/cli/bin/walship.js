#!/usr/bin/env node
// The walship executable: runs the compiled program (packages/cli/dist/main.js, built by `npx tsc -b`).
import('../dist/main.js').catch((error) => {
  if (error && error.code === 'ERR_MODULE_NOT_FOUND' && String(error.message).includes('dist/main.js')) {
    process.stderr.write('walship: error: the walship program is not built\nHINT:  Run "npx tsc -b" in the repository, then try again.\n');
    process.exit(1);
  }
  throw error;
});
