/**
 * WalshipClientError: every failure the client library reports. Errors from the server keep the
 * server's code, message, detail, hint and severity; the client adds its own codes for what only
 * it can see (timeouts, lost connections, indeterminate writes).
 */
import { ErrorCode, WalshipError } from '@walship/engine/errors';
import type { Severity } from '@walship/engine';

/** Codes the client itself raises (servers' codes come from `ErrorCode`). */
export const ClientErrorCode = {
  /** A read (or a request never sent) got no reply in time. */
  timeout: ErrorCode.timeout,
  /** A write was sent, and then timed out or lost its connection: it may or may not be committed. */
  indeterminate: ErrorCode.indeterminate,
  /** The connection dropped (or the client was closed) before a read got its reply. */
  connectionLost: 'connection_lost',
  /** No connection could be made (refused, unreachable, handshake cut short). */
  connectionFailure: 'connection_failure',
  /** The client's own request queue is full. */
  tooManyRequests: 'too_many_requests',
  /** The server sent something that is not the protocol. */
  protocolViolation: ErrorCode.protocolViolation,
  /** A bad argument, refused before anything was sent. */
  invalidParameter: ErrorCode.invalidParameter,
  keyTooLarge: ErrorCode.keyTooLarge,
  valueTooLarge: ErrorCode.valueTooLarge,
  authenticationFailed: ErrorCode.authenticationFailed,
} as const;

export interface WalshipClientErrorOptions {
  detail?: string;
  hint?: string;
  severity?: Severity;
  cause?: unknown;
  /** The commit LSN of a write that committed on the node but was not confirmed by its standbys. */
  lsn?: number;
}

export class WalshipClientError extends WalshipError {
  constructor(code: string, message: string, options: WalshipClientErrorOptions = {}) {
    super(code, message, options);
    this.name = 'WalshipClientError';
  }

  /**
   * Whether a write failed in a way that leaves its outcome unknown. When the node ended the
   * write's wait for synchronous standbys, `lsn` holds its commit LSN: committed on that node,
   * not confirmed by the standbys.
   */
  get indeterminate(): boolean {
    return this.code === ClientErrorCode.indeterminate;
  }
}

/** Any error as a WalshipClientError, keeping a WalshipError's code, detail and hint. */
export function toClientError(error: unknown, fallbackCode: string = ErrorCode.internal): WalshipClientError {
  if (error instanceof WalshipClientError) return error;
  if (error instanceof WalshipError) {
    return new WalshipClientError(error.code, error.message, {
      detail: error.detail,
      hint: error.hint,
      severity: error.severity,
      cause: error,
      ...(error.lsn === undefined ? {} : { lsn: error.lsn }),
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new WalshipClientError(fallbackCode, message, { cause: error });
}
