/**
 * ProtocolError: a frame that is not a valid message of the protocol (PostgreSQL's
 * ERRCODE_PROTOCOL_VIOLATION). The decoder returns a valid message or throws this, never
 * anything else; the server answers it with an error and closes that connection.
 */
import { ErrorCode, WalshipError } from '@walship/engine/errors';

export class ProtocolError extends WalshipError {
  constructor(message: string, options: { detail?: string; hint?: string; cause?: unknown } = {}) {
    super(ErrorCode.protocolViolation, message, options);
    this.name = 'ProtocolError';
  }
}

export function isProtocolError(error: unknown): error is ProtocolError {
  return error instanceof ProtocolError;
}
