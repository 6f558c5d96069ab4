// The command line of the scripts under scripts/: `--help` prints the usage, and a wrong argument
// is named, with the usage, before the script starts anything (exit 2). Without this, parseArgs
// threw a stack trace at an unknown option, and a script reading process.argv by position took
// an option for its count, or started a cluster regardless.
// The usage is the script's own `//   node scripts/...` (or `//   npm ...`) header lines, so that
// it is written once, where a reader of the file looks for it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** The usage lines of the script at `scriptUrl` (its import.meta.url), from its header comment. */
export function scriptUsage(scriptUrl) {
  const usage = [];
  let inUsage = false;
  for (const line of fs.readFileSync(fileURLToPath(scriptUrl), 'utf8').split('\n')) {
    // A usage line, and the indented lines right after it (its continuation, or its settings).
    inUsage = /^\/\/\s+(node|npm) /.test(line) || (inUsage && /^\/\/ {3}/.test(line));
    if (inUsage) usage.push(line.replace(/^\/\/ {3}/, '  '));
  }
  return `usage:\n${usage.join('\n')}`;
}

/** Says what was wrong, then the usage, on stderr; exits 2. `usage` replaces the header's. */
export function usageError(scriptUrl, message, usage = scriptUsage(scriptUrl)) {
  const name = path.basename(fileURLToPath(scriptUrl), '.mjs');
  process.stderr.write(`${name}: ${message}\n${usage}\n`);
  process.exit(2);
}

/**
 * parseArgs with `--help` / `-h` added, and a parse error (an unknown option, a missing value,
 * a stray positional argument) reported as a usage error instead of thrown.
 */
export function parseScriptArgs(scriptUrl, config, usage = undefined) {
  let parsed;
  try {
    parsed = parseArgs({ ...config, options: { ...config.options, help: { type: 'boolean', short: 'h', default: false } } });
  } catch (error) {
    // parseArgs's first sentence names the argument; the rest is advice about '--' that does not apply.
    const message = String(error.message).split('. ')[0];
    usageError(scriptUrl, message.charAt(0).toLowerCase() + message.slice(1), usage);
  }
  if (parsed.values.help) {
    process.stdout.write(`${usage ?? scriptUsage(scriptUrl)}\n`);
    process.exit(0);
  }
  return parsed;
}

/** A whole number of at least `min` from `text`, or a usage error naming `what`. */
export function wholeNumber(scriptUrl, what, text, min = 1) {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min) usageError(scriptUrl, `${what} ${JSON.stringify(text)}: expected a whole number of at least ${min}`);
  return value;
}
