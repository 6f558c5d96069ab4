/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL does it (auth-scram.c on the server,
 * fe-auth-scram.c in libpq): the key derivation, the verifier PostgreSQL stores in pg_authid
 * (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`), and the four messages of an
 * exchange, parsed and built by two small state machines: ScramServerExchange (the node's side)
 * and ScramClient (the client library's and the walreceiver's side).
 *
 * Pure apart from node:crypto: no sockets, no timers. Randomness (the nonces, the salt) can be
 * given, so that the RFC 7677 test vector runs as it is written.
 *
 * As PostgreSQL:
 * - The client sends an empty user name in its first message (`n=`): the user is the startup
 *   message's, and the server ignores this one.
 * - No channel binding (`p=...` is refused: walship connections do not carry TLS channel data);
 *   `y` (the client could bind, thinks the server cannot) is accepted, as it is without SSL.
 * - An authorization identity (`a=`) is refused.
 * - The server nonce is 18 random bytes in base64 (SCRAM_RAW_NONCE_LEN).
 * - For a user that does not exist the server runs the exchange with a mock salt derived from
 *   the user name and a secret nonce (scram_mock_salt), so that the answer to the first message
 *   does not tell whether the user exists; the exchange then fails at the proof.
 *
 * SASLprep (RFC 4013): PostgreSQL's pg_saslprep normalizes a password when it can and uses its
 * bytes as they are otherwise. This is a simpler approach with the same outcome for nearly every
 * password: ASCII passwords are used as they are; others have non-ASCII spaces mapped to a
 * space and the "commonly mapped to nothing" characters removed, then NFKC normalization; if the
 * result contains a prohibited character (controls, private use, non-characters, surrogates),
 * the password's own UTF-8 bytes are used instead. The bidirectional-text checks of RFC 3454
 * section 6 are not made (a password failing them is normalized anyway, where PostgreSQL would
 * use the raw bytes).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';

/** The SASL mechanism name. */
export const SCRAM_SHA_256_NAME = 'SCRAM-SHA-256';
/** PostgreSQL's scram_iterations default (SCRAM_SHA_256_DEFAULT_ITERATIONS). */
export const SCRAM_DEFAULT_ITERATIONS = 4096;
/** PostgreSQL's SCRAM_DEFAULT_SALT_LEN. */
export const SCRAM_DEFAULT_SALT_BYTES = 16;
/** PostgreSQL's SCRAM_RAW_NONCE_LEN: random bytes behind each side's nonce. */
export const SCRAM_RAW_NONCE_BYTES = 18;
/** SHA-256's output: the length of every key and proof. */
export const SCRAM_KEY_BYTES = 32;
/**
 * The most iterations a client accepts from a server: a hostile server asking for billions would
 * otherwise hold the client's CPU for hours. PostgreSQL's scram_iterations can go higher; ten
 * million is already several seconds of PBKDF2.
 */
export const SCRAM_MAX_ITERATIONS = 10_000_000;
/** The longest SCRAM message either side accepts (a first message is under 100 bytes). */
export const MAX_SCRAM_MESSAGE_BYTES = 1024;

/** A malformed or refused SCRAM message. `message` is PostgreSQL's words, `detail` the reason. */
export class ScramError extends Error {
  override readonly name = 'ScramError';
  constructor(
    message: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// Keys

const NON_ASCII_SPACE = /[\u00A0\u1680\u2000-\u200B\u202F\u205F\u3000]/g;
const MAPPED_TO_NOTHING = /[\u00AD\u034F\u1806\u180B-\u180D\u200B-\u200D\u2060\uFE00-\uFE0F\uFEFF]/g;
// eslint-disable-next-line no-control-regex
const PROHIBITED = /[\u0000-\u001F\u007F-\u009F\u06DD\u070F\u180E\u200E\u200F\u2028-\u202E\u206A-\u206F\uD800-\uDFFF\uE000-\uF8FF\uFFF9-\uFFFF]/;

/** SASLprep, as described above: the bytes PBKDF2 is given. */
export function saslPrep(password: string): Buffer {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(password)) return Buffer.from(password, 'utf8');
  const prepared = password.replace(NON_ASCII_SPACE, ' ').replace(MAPPED_TO_NOTHING, '').normalize('NFKC');
  if (prepared === '' || PROHIBITED.test(prepared)) return Buffer.from(password, 'utf8');
  return Buffer.from(prepared, 'utf8');
}

function hmac(key: Buffer, text: string | Buffer): Buffer {
  return createHmac('sha256', key).update(text).digest();
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

/** SaltedPassword := Hi(Normalize(password), salt, i), Hi being PBKDF2 with HMAC-SHA-256. */
export function scramSaltedPassword(password: string, salt: Buffer, iterations: number): Buffer {
  return pbkdf2Sync(saslPrep(password), salt, iterations, SCRAM_KEY_BYTES, 'sha256');
}

export interface ScramKeys {
  clientKey: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

export function scramKeys(saltedPassword: Buffer): ScramKeys {
  const clientKey = hmac(saltedPassword, 'Client Key');
  return { clientKey, storedKey: sha256(clientKey), serverKey: hmac(saltedPassword, 'Server Key') };
}

// ---------------------------------------------------------------------------------------------
// Verifiers

/** What a server stores for a user: never the password. */
export interface ScramVerifier {
  iterations: number;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** scram_build_secret: a verifier for `password`, with a fresh salt unless one is given. */
export function buildScramVerifier(password: string, options: { iterations?: number; salt?: Buffer } = {}): ScramVerifier {
  const iterations = options.iterations ?? SCRAM_DEFAULT_ITERATIONS;
  if (!Number.isSafeInteger(iterations) || iterations < 1) throw new RangeError(`invalid SCRAM iteration count ${iterations}`);
  const salt = options.salt ?? randomBytes(SCRAM_DEFAULT_SALT_BYTES);
  const { storedKey, serverKey } = scramKeys(scramSaltedPassword(password, salt, iterations));
  return { iterations, salt, storedKey, serverKey };
}

/** PostgreSQL's text form: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. */
export function formatScramVerifier(verifier: ScramVerifier): string {
  return `${SCRAM_SHA_256_NAME}$${verifier.iterations}:${verifier.salt.toString('base64')}$${verifier.storedKey.toString('base64')}:${verifier.serverKey.toString('base64')}`;
}

/** Strict base64: decodes only text that encodes back to itself (Buffer.from is lenient). */
export function decodeBase64Strict(text: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) return null;
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : null;
}

/** parse_scram_secret: the verifier, or null when `text` is not one. */
export function parseScramVerifier(text: string): ScramVerifier | null {
  const match = /^SCRAM-SHA-256\$([0-9]{1,10}):([^$:]+)\$([^$:]+):([^$:]+)$/.exec(text);
  if (match === null) return null;
  const iterations = Number(match[1]);
  if (iterations < 1 || iterations > 0x7fff_ffff) return null;
  const salt = decodeBase64Strict(match[2]!);
  const storedKey = decodeBase64Strict(match[3]!);
  const serverKey = decodeBase64Strict(match[4]!);
  if (salt === null || salt.length === 0 || storedKey?.length !== SCRAM_KEY_BYTES || serverKey?.length !== SCRAM_KEY_BYTES) return null;
  return { iterations, salt, storedKey, serverKey };
}

/** Whether `password` is the one `verifier` was built from (scram_verify_plain_password). */
export function scramVerifyPassword(password: string, verifier: ScramVerifier): boolean {
  const { serverKey } = scramKeys(scramSaltedPassword(password, verifier.salt, verifier.iterations));
  return timingSafeEqual(serverKey, verifier.serverKey);
}

/**
 * scram_mock_salt: the salt shown for a user that does not exist, the same at every attempt for
 * one user name (an attacker comparing two attempts learns nothing), unpredictable without the
 * node's secret `mockNonce`.
 */
export function scramMockSalt(user: string, mockNonce: Buffer): Buffer {
  return createHash('sha256').update(user, 'utf8').update(mockNonce).digest().subarray(0, SCRAM_DEFAULT_SALT_BYTES);
}

// ---------------------------------------------------------------------------------------------
// Message parsing (read_attr_value / read_any_attr)

/** A nonce's characters: printable ASCII except the comma (RFC 5802's `printable`). */
function isPrintable(text: string): boolean {
  return /^[\x21-\x2b\x2d-\x7e]+$/.test(text);
}

function malformed(detail: string): ScramError {
  return new ScramError('malformed SCRAM message', detail);
}

/** Reads `name=value` at `pos`; returns the value and the position after its comma (or the end). */
function readAttribute(input: string, pos: number, name: string, where: string): { value: string; next: number } {
  if (input[pos] !== name || input[pos + 1] !== '=') {
    throw malformed(`Expected attribute "${name}" but found "${input.slice(pos, pos + 1) || 'end of input'}" in ${where}.`);
  }
  const comma = input.indexOf(',', pos + 2);
  const end = comma === -1 ? input.length : comma;
  return { value: input.slice(pos + 2, end), next: comma === -1 ? input.length : comma + 1 };
}

function checkLength(message: string, where: string): void {
  if (message.length === 0) throw malformed(`The ${where} is empty.`);
  if (Buffer.byteLength(message, 'utf8') > MAX_SCRAM_MESSAGE_BYTES) throw malformed(`The ${where} is longer than ${MAX_SCRAM_MESSAGE_BYTES} bytes.`);
}

function randomNonce(): string {
  return randomBytes(SCRAM_RAW_NONCE_BYTES).toString('base64');
}

function xor(a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

// ---------------------------------------------------------------------------------------------
// The server's side

export interface ScramServerOptions {
  /** The user's verifier; null for a user that does not exist or has none (the exchange fails). */
  verifier: ScramVerifier | null;
  /** With `verifier` null: the salt to show (scramMockSalt). */
  mockSalt?: Buffer;
  /** The server's part of the nonce; random unless given (tests). */
  serverNonce?: string;
}

/** The server's outcome of the client's final message. */
export type ScramServerResult = { ok: true; serverFinal: string } | { ok: false };

/**
 * One exchange on the server (auth-scram.c's scram_state): handleClientFirst, then
 * handleClientFinal. A malformed message throws a ScramError; a wrong proof is `{ ok: false }`.
 */
export class ScramServerExchange {
  private state: 'init' | 'continue' | 'finished' = 'init';
  private gs2Header = '';
  private clientFirstBare = '';
  private serverFirst = '';
  private nonce = '';
  private readonly verifier: ScramVerifier;
  private readonly doomed: boolean;

  constructor(private readonly options: ScramServerOptions) {
    this.doomed = options.verifier === null;
    // A doomed exchange still computes everything, with keys nobody can match.
    this.verifier = options.verifier ?? {
      iterations: SCRAM_DEFAULT_ITERATIONS,
      salt: options.mockSalt ?? randomBytes(SCRAM_DEFAULT_SALT_BYTES),
      storedKey: randomBytes(SCRAM_KEY_BYTES),
      serverKey: randomBytes(SCRAM_KEY_BYTES),
    };
  }

  /** read_client_first_message; returns the server-first-message. */
  handleClientFirst(message: string): string {
    if (this.state !== 'init') throw malformed('Unexpected client-first-message.');
    checkLength(message, 'client-first-message');
    let pos = 0;
    const flag = message[0];
    if (flag === 'p') {
      throw new ScramError('channel binding is not supported', 'The client selected channel binding (SCRAM-SHA-256-PLUS), which walship connections do not offer.');
    }
    if (flag !== 'n' && flag !== 'y') throw malformed(`Unexpected channel-binding flag "${flag ?? ''}".`);
    pos = 1;
    if (message[pos] !== ',') throw malformed('Comma expected after the channel-binding flag.');
    pos++;
    if (message[pos] === 'a') throw new ScramError('client uses authorization identity, but it is not supported');
    if (message[pos] !== ',') throw malformed(`Unexpected attribute "${message[pos] ?? ''}" in client-first-message.`);
    pos++;
    this.gs2Header = message.slice(0, pos);
    this.clientFirstBare = message.slice(pos);
    // The user name is ignored: the startup message's user is the one authenticated.
    const user = readAttribute(message, pos, 'n', 'client-first-message');
    pos = user.next;
    if (message[pos] === 'm') throw new ScramError('client requires an unsupported SCRAM extension');
    const clientNonce = readAttribute(message, pos, 'r', 'client-first-message');
    if (!isPrintable(clientNonce.value)) throw malformed('The client nonce contains invalid characters.');
    // Extensions after the nonce are ignored (read_any_attr).
    this.nonce = clientNonce.value + (this.options.serverNonce ?? randomNonce());
    this.serverFirst = `r=${this.nonce},s=${this.verifier.salt.toString('base64')},i=${this.verifier.iterations}`;
    this.state = 'continue';
    return this.serverFirst;
  }

  /** read_client_final_message and verify_client_proof; `serverFinal` is `v=<ServerSignature>`. */
  handleClientFinal(message: string): ScramServerResult {
    if (this.state !== 'continue') throw malformed('Unexpected client-final-message.');
    this.state = 'finished';
    checkLength(message, 'client-final-message');
    const binding = readAttribute(message, 0, 'c', 'client-final-message');
    const bindingBytes = decodeBase64Strict(binding.value);
    if (bindingBytes === null || bindingBytes.toString('latin1') !== this.gs2Header) {
      throw new ScramError('SCRAM channel binding check failed');
    }
    const nonce = readAttribute(message, binding.next, 'r', 'client-final-message');
    if (nonce.value !== this.nonce) throw new ScramError('invalid SCRAM response', 'Nonce does not match.');
    const proofAt = message.lastIndexOf(',p=');
    if (proofAt < nonce.next - 1) throw malformed('Malformed proof in client-final-message.');
    const withoutProof = message.slice(0, proofAt);
    const proof = decodeBase64Strict(message.slice(proofAt + 3));
    if (proof === null || proof.length !== SCRAM_KEY_BYTES) throw malformed('Malformed proof in client-final-message.');
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientSignature = hmac(this.verifier.storedKey, authMessage);
    const clientKey = xor(proof, clientSignature);
    const matches = timingSafeEqual(sha256(clientKey), this.verifier.storedKey);
    if (!matches || this.doomed) return { ok: false };
    return { ok: true, serverFinal: `v=${hmac(this.verifier.serverKey, authMessage).toString('base64')}` };
  }
}

// ---------------------------------------------------------------------------------------------
// The client's side

export interface ScramClientOptions {
  password: string;
  /** Sent in the first message; PostgreSQL's libpq sends it empty. */
  username?: string;
  /** The client's nonce; random unless given (tests). */
  clientNonce?: string;
}

/**
 * One exchange on the client (fe-auth-scram.c): clientFirstMessage, handleServerFirst (returns
 * the client-final-message), verifyServerFinal. Any failure throws a ScramError; `verified`
 * says whether the server proved that it knows the user's verifier.
 */
export class ScramClient {
  private state: 'init' | 'sentFirst' | 'sentFinal' | 'verified' = 'init';
  private readonly clientNonce: string;
  private clientFirstBare = '';
  private expectedServerSignature: Buffer = Buffer.alloc(0);

  constructor(private readonly options: ScramClientOptions) {
    this.clientNonce = options.clientNonce ?? randomNonce();
  }

  get verified(): boolean {
    return this.state === 'verified';
  }

  clientFirstMessage(): string {
    if (this.state !== 'init') throw new ScramError('invalid SCRAM exchange state');
    const username = (this.options.username ?? '').replace(/=/g, '=3D').replace(/,/g, '=2C');
    this.clientFirstBare = `n=${username},r=${this.clientNonce}`;
    this.state = 'sentFirst';
    return `n,,${this.clientFirstBare}`;
  }

  /** read_server_first_message, then the proof: returns the client-final-message. */
  handleServerFirst(serverFirst: string): string {
    if (this.state !== 'sentFirst') throw new ScramError('invalid SCRAM exchange state');
    checkLength(serverFirst, 'server-first-message');
    if (serverFirst.startsWith('m=')) throw new ScramError('server requires an unsupported SCRAM extension');
    const nonce = readAttribute(serverFirst, 0, 'r', 'server-first-message');
    if (!nonce.value.startsWith(this.clientNonce) || nonce.value.length === this.clientNonce.length || !isPrintable(nonce.value)) {
      throw new ScramError('invalid SCRAM response', 'The server nonce does not extend the client nonce.');
    }
    const saltText = readAttribute(serverFirst, nonce.next, 's', 'server-first-message');
    const salt = decodeBase64Strict(saltText.value);
    if (salt === null || salt.length === 0) throw malformed('Invalid salt in server-first-message.');
    const iterationText = readAttribute(serverFirst, saltText.next, 'i', 'server-first-message');
    const iterations = /^[0-9]{1,10}$/.test(iterationText.value) ? Number(iterationText.value) : NaN;
    if (!(iterations >= 1 && iterations <= SCRAM_MAX_ITERATIONS)) {
      throw malformed(`Invalid iteration count "${iterationText.value}" in server-first-message (1 to ${SCRAM_MAX_ITERATIONS}).`);
    }
    if (iterationText.next !== serverFirst.length) throw malformed('Garbage at the end of server-first-message.');
    const saltedPassword = scramSaltedPassword(this.options.password, salt, iterations);
    const { clientKey, storedKey, serverKey } = scramKeys(saltedPassword);
    const withoutProof = `c=${Buffer.from('n,,', 'latin1').toString('base64')},r=${nonce.value}`;
    const authMessage = `${this.clientFirstBare},${serverFirst},${withoutProof}`;
    const proof = xor(clientKey, hmac(storedKey, authMessage));
    this.expectedServerSignature = hmac(serverKey, authMessage);
    this.state = 'sentFinal';
    return `${withoutProof},p=${proof.toString('base64')}`;
  }

  /** read_server_final_message and verify_server_signature. */
  verifyServerFinal(serverFinal: string): void {
    if (this.state !== 'sentFinal') throw new ScramError('invalid SCRAM exchange state');
    checkLength(serverFinal, 'server-final-message');
    if (serverFinal.startsWith('e=')) throw new ScramError(`error received from server in SCRAM exchange: ${serverFinal.slice(2)}`);
    const signature = readAttribute(serverFinal, 0, 'v', 'server-final-message');
    const given = decodeBase64Strict(signature.value);
    if (given === null || given.length !== SCRAM_KEY_BYTES) throw malformed('Malformed server signature in server-final-message.');
    if (!timingSafeEqual(given, this.expectedServerSignature)) throw new ScramError('incorrect server signature');
    this.state = 'verified';
  }

  /**
   * The server's next SASL message, for the client library and the walreceiver alike: the
   * answer to send for its `saslContinue` (the client-final-message), null for its `saslFinal`
   * once its signature is verified. Throws ScramError as the two steps do.
   */
  handleServerMessage(message: { readonly type: 'saslContinue' | 'saslFinal'; readonly data: string }): string | null {
    if (message.type === 'saslContinue') return this.handleServerFirst(message.data);
    this.verifyServerFinal(message.data);
    return null;
  }
}
