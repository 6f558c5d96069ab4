/**
 * Errors of the walship program and its exit statuses (DESIGN.md section 10): 0 on success, 1 on
 * a failed check or a missing key, 2 on a usage error, 3 when a node cannot be reached. Every
 * error says what was wrong and what to do, in PostgreSQL's frontend style:
 *
 *     walship: error: PID file "/data/n1/postmaster.pid" does not exist
 *     HINT:  Is the server running?
 */

export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  unreachable: 3,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export interface CliErrorOptions {
  detail?: string;
  hint?: string;
  cause?: unknown;
}

export class CliError extends Error {
  readonly exitCode: ExitCodeValue;
  readonly detail: string | undefined;
  readonly hint: string | undefined;

  constructor(exitCode: ExitCodeValue, message: string, options: CliErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.detail = options.detail;
    this.hint = options.hint;
  }
}

/** A usage error (exit 2): the command line itself is wrong. */
export function usageError(message: string, hint?: string): CliError {
  return new CliError(ExitCode.usage, message, { hint });
}

/** The error text as printed on stderr: `walship: error: ...` then DETAIL and HINT lines. */
export function formatErrorText(message: string, detail?: string, hint?: string, level: 'error' | 'warning' = 'error'): string {
  let text = `walship: ${level}: ${message}\n`;
  if (detail !== undefined && detail !== '') text += `DETAIL:  ${detail}\n`;
  if (hint !== undefined && hint !== '') text += `HINT:  ${hint}\n`;
  return text;
}
