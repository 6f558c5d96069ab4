/**
 * Entry point of the walship program (bin/walship.js imports this file). Runs the command, then
 * exits with its status: exiting explicitly, rather than waiting for the event loop to drain,
 * makes a lingering socket or timer unable to keep a finished command alive. Writes to a pipe are
 * not always synchronous (see `flushed` below), so stdout and stderr are drained before exiting.
 */
import { ExitCode, formatErrorText } from './cli-error.js';
import { runCli } from './program.js';

let finished = false;

// The reader of stdout went away (`walship waldump | head`): stop quietly, as a program killed by
// SIGPIPE does, rather than crash with an unhandled EPIPE error and a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(ExitCode.ok);
  throw error;
});

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

/**
 * Resolves once everything written to the stream so far has been handed to the OS. Node does
 * not write to a pipe synchronously when the reader is slower than the writer (the pipe is
 * non-blocking, and libuv queues what does not fit), so exiting at once cut long outputs short:
 * `walship waldump --json` read through a pipe (spawnSync, `| jq`) ended after about 180 kB, as
 * invalid JSON, with exit status 0. A write's callback runs once it and every write before it
 * are flushed.
 */
function flushed(stream: NodeJS.WriteStream): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded) {
      resolve();
      return;
    }
    stream.write('', () => resolve());
  });
}

const exitCode = await runCli(process.argv.slice(2));
finished = true;
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(exitCode);
