/**
 * ClientAuthentication (auth.c's ClientAuthentication, for one connection): what the node asks
 * of a client or a standby after its startup message, and whether it is let in. Shared by client
 * sessions (session.ts) and replication sessions (replication-session.ts), which do the sockets,
 * the logging, the throttling of failures and the timers; this is a state machine over the
 * handshake messages that returns what to send or the outcome.
 *
 * `auth_method`:
 * - `scram-sha-256`: every connection, loopback included, authenticates with SCRAM-SHA-256 as a
 *   user of walship_authid.json (users-file.ts); the user's rights come with it, and a
 *   replication connection needs the replication right. An unknown user goes through the same
 *   exchange (with a mock salt) and fails at the end with the same message as a wrong password.
 *   The `password` and `replication_password` settings are not used.
 * - `trust` (the default, walship's behaviour before SCRAM): with `password` (client sessions)
 *   or `replication_password` (replication connections) set, that password is asked for and
 *   compared (in the clear, over the wire: PostgreSQL's `password` method); without it, loopback
 *   peers are let in and others refused. Every right is granted.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCode } from '@walship/engine';
import {
  SCRAM_SHA_256_NAME,
  ScramError,
  ScramServerExchange,
  scramMockSalt,
  type AuthRequestMessage,
  type PasswordMessage,
  type SaslContinueMessage,
  type SaslFinalMessage,
  type SaslInitialResponseMessage,
  type SaslResponseMessage,
} from '@walship/protocol';
import { RIGHTS, walSenderPermissionDenied, type Right } from './rights.js';
import type { UsersFileCache } from './users-file.js';
import { MOCK_AUTH_NONCE_BYTES } from './users-file.js';

/** The `auth_method` setting's values. */
export type AuthMethodSetting = 'trust' | 'scram-sha-256';

/** What the node's settings say about authentication; read at each handshake (reloadable). */
export interface AuthSettings {
  method: AuthMethodSetting;
  /** The `password` setting ('' when unset): client sessions under trust. */
  password: string;
  /** The `replication_password` setting: replication connections under trust. */
  replicationPassword: string;
  /** walship_authid.json; absent: no users (every SCRAM login fails). */
  users?: UsersFileCache;
}

export type ConnectionKind = 'client' | 'replication';

export type AuthMessage = PasswordMessage | SaslInitialResponseMessage | SaslResponseMessage;

/** Whether a peer's message belongs to the authentication exchange (client and replication connections alike). */
export function isAuthMessage(message: { type: string }): message is AuthMessage {
  return message.type === 'password' || message.type === 'saslInitialResponse' || message.type === 'saslResponse';
}

export type AuthStep =
  | { step: 'send'; message: AuthRequestMessage | SaslContinueMessage }
  | { step: 'ok'; user: string; rights: readonly Right[]; method: 'trust' | 'password' | 'scram-sha-256'; final?: SaslFinalMessage }
  | {
      step: 'fail';
      code: string;
      /** What the peer is told. */
      message: string;
      detail?: string;
      hint?: string;
      /** What only the log says (PostgreSQL's log-only DETAIL: "Role "x" does not exist."). */
      logDetail: string;
      /** A failed proof of identity (counted by the throttle), not a refusal for another reason. */
      counts: boolean;
      /** Sent before the error: SCRAM succeeded, the refusal is about rights. */
      final?: SaslFinalMessage;
    };

/** Used as the mock nonce when there is no users file: per process, secret. */
const PROCESS_MOCK_NONCE = randomBytes(MOCK_AUTH_NONCE_BYTES);

export function isLoopbackAddress(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

function passwordMatches(given: string, expected: string): boolean {
  // Hash both so that the comparison takes the same time whatever the lengths.
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

function passwordFailed(user: string, logDetail: string, hint?: string): AuthStep {
  return {
    step: 'fail', code: ErrorCode.authenticationFailed, message: `password authentication failed for user "${user}"`, logDetail, counts: true,
    ...(hint === undefined ? {} : { hint }),
  };
}

function protocolFailure(message: string, detail: string | undefined, logDetail: string): AuthStep {
  return { step: 'fail', code: ErrorCode.protocolViolation, message, ...(detail === undefined ? {} : { detail }), logDetail, counts: true };
}

export class ClientAuthentication {
  private state: 'start' | 'password' | 'saslInitial' | 'saslResponse' | 'done' = 'start';
  private exchange: ScramServerExchange | null = null;
  private scramUser: { exists: boolean; rights: readonly Right[] } = { exists: false, rights: [] };
  private method: AuthMethodSetting = 'trust';

  constructor(
    private readonly settings: AuthSettings,
    private readonly kind: ConnectionKind,
    private readonly peerAddress: string,
    private readonly user: string,
  ) {}

  /** After the startup message (whose `password`, if any, is legacy and used under trust only). */
  start(startupPassword: string | undefined): AuthStep {
    if (this.state !== 'start') throw new Error('authentication already started');
    this.method = this.settings.method;
    if (this.method === 'scram-sha-256') return this.startScram();
    const required = this.kind === 'client' ? this.settings.password : this.settings.replicationPassword;
    if (required === '') {
      this.state = 'done';
      if (isLoopbackAddress(this.peerAddress)) return this.ok('trust');
      if (this.kind === 'client') {
        return {
          step: 'fail', code: ErrorCode.authenticationFailed, counts: false,
          message: `connection from host "${this.peerAddress}" requires a password, and none is set`,
          logDetail: `no password is set, and host "${this.peerAddress}" is not a loopback address`,
          hint: 'Set the password setting (or auth_method = scram-sha-256 with users) to accept connections from other hosts, or connect over loopback.',
        };
      }
      return {
        step: 'fail', code: ErrorCode.authenticationFailed, counts: false,
        message: 'no replication_password is set: replication connections are only accepted from this machine',
        logDetail: 'no replication_password is set, so only loopback peers may connect',
        hint: 'Set replication_password on the upstream and put password=... in primary_conninfo (or use auth_method = scram-sha-256 with a replication user).',
      };
    }
    if (startupPassword !== undefined) return this.checkPassword(startupPassword);
    this.state = 'password';
    return { step: 'send', message: { type: 'authRequest', method: 'password' } };
  }

  /** A handshake message from the peer. */
  onMessage(message: AuthMessage): AuthStep {
    switch (this.state) {
      case 'password':
        if (message.type !== 'password') return this.unexpected(message.type, 'a password message');
        return this.checkPassword(message.password);
      case 'saslInitial':
        if (message.type !== 'saslInitialResponse') return this.unexpected(message.type, 'a SASL initial response');
        return this.onSaslInitial(message);
      case 'saslResponse':
        if (message.type !== 'saslResponse') return this.unexpected(message.type, 'a SASL response');
        return this.onSaslResponse(message);
      default:
        return this.unexpected(message.type, 'no message');
    }
  }

  private unexpected(type: string, expected: string): AuthStep {
    this.state = 'done';
    return protocolFailure(`expected ${expected}, got "${type}"`, undefined, `unexpected "${type}" message during authentication`);
  }

  private ok(method: 'trust' | 'password' | 'scram-sha-256', rights: readonly Right[] = RIGHTS, final?: SaslFinalMessage): AuthStep {
    this.state = 'done';
    if (this.kind === 'replication' && !rights.includes('replication')) {
      const denied = walSenderPermissionDenied(this.user);
      return {
        step: 'fail', code: denied.code, message: denied.message, detail: denied.detail, hint: denied.hint, counts: false,
        logDetail: `user "${this.user}" has no replication right`, ...(final === undefined ? {} : { final }),
      };
    }
    return { step: 'ok', user: this.user, rights, method, ...(final === undefined ? {} : { final }) };
  }

  private checkPassword(given: string): AuthStep {
    this.state = 'done';
    const required = this.kind === 'client' ? this.settings.password : this.settings.replicationPassword;
    if (!passwordMatches(given, required)) {
      return passwordFailed(
        this.user,
        this.kind === 'client' ? 'password does not match the password setting' : 'password does not match replication_password',
        this.kind === 'client' ? undefined : 'Check the password in primary_conninfo (or WALSHIP_PASSWORD) against replication_password on the upstream.',
      );
    }
    return this.ok('password');
  }

  private startScram(): AuthStep {
    let found: ReturnType<UsersFileCache['lookup']> = null;
    try {
      found = this.settings.users?.lookup(this.user) ?? null;
    } catch (error) {
      this.state = 'done';
      return passwordFailed(this.user, `could not load the users file: ${(error as Error).message}`);
    }
    const user = found?.user ?? null;
    this.scramUser = { exists: user !== null, rights: user?.rights ?? [] };
    this.exchange = new ScramServerExchange({
      verifier: user?.verifier ?? null,
      mockSalt: scramMockSalt(this.user, found?.mockNonce ?? PROCESS_MOCK_NONCE),
    });
    this.state = 'saslInitial';
    return { step: 'send', message: { type: 'authRequest', method: 'scram-sha-256' } };
  }

  private onSaslInitial(message: SaslInitialResponseMessage): AuthStep {
    if (message.mechanism !== SCRAM_SHA_256_NAME) {
      this.state = 'done';
      return protocolFailure('client selected an invalid SASL authentication mechanism', `The server offers ${SCRAM_SHA_256_NAME}, the client chose "${message.mechanism}".`, `mechanism "${message.mechanism}"`);
    }
    try {
      const data = this.exchange!.handleClientFirst(message.data);
      this.state = 'saslResponse';
      return { step: 'send', message: { type: 'saslContinue', data } };
    } catch (error) {
      return this.scramFailure(error);
    }
  }

  private onSaslResponse(message: SaslResponseMessage): AuthStep {
    let result;
    try {
      result = this.exchange!.handleClientFinal(message.data);
    } catch (error) {
      return this.scramFailure(error);
    }
    if (!result.ok) {
      this.state = 'done';
      return passwordFailed(this.user, this.scramUser.exists ? `Password does not match for user "${this.user}".` : `Role "${this.user}" does not exist.`);
    }
    return this.ok('scram-sha-256', this.scramUser.rights, { type: 'saslFinal', data: result.serverFinal });
  }

  private scramFailure(error: unknown): AuthStep {
    this.state = 'done';
    if (!(error instanceof ScramError)) throw error;
    return protocolFailure(error.message, error.detail, `${error.message}${error.detail === undefined ? '' : `: ${error.detail}`}`);
  }
}
