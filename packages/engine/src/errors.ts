/**
 * Operating errors: a stable code, a severity, a short factual message, a detail with the facts
 * and a hint with what to do, after PostgreSQL's error message style guide. Programmer errors are
 * assertions (`assert`), not WalshipErrors.
 */

export type Severity = 'ERROR' | 'FATAL' | 'PANIC';

export interface WalshipErrorOptions {
  detail?: string;
  hint?: string;
  severity?: Severity;
  cause?: unknown;
  /**
   * The commit LSN the error is about, when a transaction committed locally and only its wait
   * for synchronous standbys failed: the client needs it to find out later whether it survived.
   */
  lsn?: number;
}

export class WalshipError extends Error {
  readonly code: string;
  readonly severity: Severity;
  readonly detail: string | undefined;
  readonly hint: string | undefined;
  /** See WalshipErrorOptions.lsn; undefined for every other error. */
  readonly lsn: number | undefined;

  constructor(code: string, message: string, options: WalshipErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WalshipError';
    this.code = code;
    this.severity = options.severity ?? 'ERROR';
    this.detail = options.detail;
    this.hint = options.hint;
    this.lsn = options.lsn;
  }

  /** The message with its detail and hint, one per line, as psql prints them. */
  describe(): string {
    let text = `${this.severity}:  ${this.message}`;
    if (this.detail !== undefined) text += `\nDETAIL:  ${this.detail}`;
    if (this.hint !== undefined) text += `\nHINT:  ${this.hint}`;
    return text;
  }
}

/** Stable error codes. Clients and the CLI branch on these, never on message text. */
export const ErrorCode = {
  invalidParameter: 'invalid_parameter_value',
  unknownSetting: 'unknown_setting',
  dataCorrupted: 'data_corrupted',
  walCorrupted: 'wal_corrupted',
  walRemoved: 'wal_removed',
  controlFileCorrupted: 'control_file_corrupted',
  notADataDirectory: 'not_a_data_directory',
  wrongVersion: 'wrong_version',
  dataDirectoryInUse: 'data_directory_in_use',
  portInUse: 'port_in_use',
  keyTooLarge: 'key_too_large',
  valueTooLarge: 'value_too_large',
  transactionTooLarge: 'transaction_too_large',
  tableNotFound: 'table_not_found',
  readOnly: 'read_only_transaction',
  /**
   * A primary whose lease from the failover monitor has run out refuses to commit (nothing was
   * written): another member may have been promoted. Like read_only_transaction, the write can be
   * sent to the current primary.
   */
  primaryLeaseExpired: 'primary_lease_expired',
  /** Read-your-writes: the LSN asked for was written on a timeline this node's history left before it. */
  lsnNotOnTimeline: 'lsn_not_on_timeline',
  cannotConnectNow: 'cannot_connect_now',
  /** ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE: the node is not in a state where this can be done. */
  objectNotInPrerequisiteState: 'object_not_in_prerequisite_state',
  shuttingDown: 'admin_shutdown',
  authenticationFailed: 'invalid_password',
  protocolViolation: 'protocol_violation',
  timeout: 'timeout',
  indeterminate: 'indeterminate',
  ioError: 'io_error',
  internal: 'internal_error',
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Asserts a programmer invariant. A component that fails one crashes and is restarted. */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionFailure(message);
}

/**
 * assert's failure, for a check on a per-commit or per-message path whose message is built from
 * values: `if (!ok) assertionFailed(\`...\`)` builds it only when the check fails, where assert's
 * argument (LSNs formatted as text, numbers turned to strings) was built on every call.
 */
export function assertionFailed(message: string): never {
  throw new AssertionFailure(message);
}

export class AssertionFailure extends Error {
  constructor(message: string) {
    super(`assertion failed: ${message}`);
    this.name = 'AssertionFailure';
  }
}
