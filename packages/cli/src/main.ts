/**
 * Entry point of the walship program (bin/walship.js imports this file). Runs the command, then
 * exits with its status: exiting explicitly, rather than waiting for the event loop to drain,
 * makes a lingering socket or timer unable to keep a finished command alive. On Linux, writes to
 * stdout and stderr (files, pipes and terminals) are synchronous, so nothing printed is lost.
 */
import { formatErrorText } from './cli-error.js';
import { runCli } from './program.js';

let finished = false;

// If the event loop empties while the command is still awaiting something (a promise nothing will
// ever settle), Node would exit with status 0 as if all went well. Say so and fail instead.
process.once('beforeExit', () => {
  if (finished) return;
  process.stderr.write(
    formatErrorText(
      'the command stopped before it finished',
      'An operation neither completed nor failed: nothing was left for it to wait on.',
      'This is a bug in walship; run again with WALSHIP_DEBUG=1 and report it.',
    ),
  );
  process.exit(1);
});

const exitCode = await runCli(process.argv.slice(2));
finished = true;
process.exit(exitCode);
