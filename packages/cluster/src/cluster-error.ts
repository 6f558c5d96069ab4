/**
 * Operating errors of the cluster toolkit: a stable `code`, a short factual message, a detail with
 * the facts and a hint with what to do (PostgreSQL's message style). The CLI prints them as
 * `walship: error:` / `DETAIL:` / `HINT:` and branches on `code`, never on the text.
 *
 * A config file with mistakes is one ClusterConfigError carrying every problem found, each with
 * the file, the line and column, the field path and what is wrong, so that one `cluster validate`
 * run lists them all.
 */

export const ClusterErrorCode = {
  /** The YAML file has mistakes (ClusterConfigError.problems lists them). */
  invalidConfig: 'invalid_cluster_config',
  /** The config file could not be read at all. */
  configUnreadable: 'cluster_config_unreadable',
  /** The state file in the data root is damaged or belongs to another cluster. */
  invalidState: 'invalid_cluster_state',
  /** Another cluster command holds the data root's lock. */
  locked: 'cluster_locked',
  /** A member name given on the command line is not in the config. */
  unknownMember: 'unknown_member',
  /** The command does not apply to the member in its current role or state. */
  wrongMemberState: 'wrong_member_state',
  /** The failover decision found no standby that may be promoted. */
  noCandidate: 'no_failover_candidate',
  /** A step on a member (start, base backup, promotion, rewind) failed. */
  memberOperationFailed: 'member_operation_failed',
  /** A condition was not reached within its time limit. */
  timeout: 'cluster_timeout',
  /** The state changed under a failover started on an expectation of it (failover-guard.ts): nothing was done. */
  stateChanged: 'cluster_state_changed',
} as const;

export type ClusterErrorCodeValue = (typeof ClusterErrorCode)[keyof typeof ClusterErrorCode];

export interface ClusterErrorOptions {
  detail?: string;
  hint?: string;
  cause?: unknown;
}

export class ClusterError extends Error {
  readonly code: ClusterErrorCodeValue;
  readonly detail: string | undefined;
  readonly hint: string | undefined;

  constructor(code: ClusterErrorCodeValue, message: string, options: ClusterErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ClusterError';
    this.code = code;
    this.detail = options.detail;
    this.hint = options.hint;
  }
}

/** One mistake in a config file. Line and column are 1-based; null when the mistake has no place (a missing key's parent is used when known). */
export interface ConfigProblem {
  file: string;
  /** The field, as `nodes[1].port_offset` or `failover.primary_lease`; '' for the whole file. */
  path: string;
  line: number | null;
  column: number | null;
  message: string;
  hint?: string;
}

/** `FILE:LINE:COL: PATH: MESSAGE`, the form compilers use, so editors can jump to it. */
export function formatConfigProblem(problem: ConfigProblem): string {
  const place = problem.line === null ? problem.file : `${problem.file}:${problem.line}:${problem.column ?? 1}`;
  const field = problem.path === '' ? '' : `${problem.path}: `;
  const hint = problem.hint === undefined ? '' : ` (${problem.hint})`;
  return `${place}: ${field}${problem.message}${hint}`;
}

export class ClusterConfigError extends ClusterError {
  readonly file: string;
  readonly problems: readonly ConfigProblem[];

  constructor(file: string, problems: readonly ConfigProblem[]) {
    const count = problems.length;
    super(ClusterErrorCode.invalidConfig, `invalid cluster config "${file}": ${count} problem${count === 1 ? '' : 's'}`, {
      detail: problems.map(formatConfigProblem).join('\n'),
      hint: 'Fix each field named above; "walship cluster validate -f FILE" checks the file without starting anything.',
    });
    this.name = 'ClusterConfigError';
    this.file = file;
    this.problems = problems;
  }
}
