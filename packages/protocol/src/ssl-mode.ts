/**
 * The client's side of TLS, as libpq defines `sslmode` and `sslrootcert` (libpq's "SSL Support"
 * section; fe-secure-openssl.c's verify_peer_name_matches_certificate_name): what each mode tries,
 * what Node's TLS must check for it, and what a failed attempt means, in libpq's words.
 *
 * | sslmode       | tries             | encryption | the node's certificate checked |
 * |---------------|-------------------|------------|--------------------------------|
 * | `disable`     | plain             | no         | -                              |
 * | `allow`       | plain, then TLS   | maybe      | no                             |
 * | `prefer`      | TLS, then plain   | maybe      | no (libpq's default)           |
 * | `require`     | TLS               | yes        | no (as verify-ca when an sslrootcert is given, as libpq does) |
 * | `verify-ca`   | TLS               | yes        | signed by a CA in sslrootcert  |
 * | `verify-full` | TLS               | yes        | and names the host connected to |
 *
 * "Then" means: only when the first attempt met a node of the other kind (a plain node answering
 * a TLS hello with plain bytes, or a TLS-only node refusing a plain upgrade with 426); any other
 * failure is the connection's.
 *
 * `sslrootcert` is a PEM file of CA certificates, or `system` for Node's bundled trusted roots.
 * Without it the verify modes read `~/.walship/root.crt` (libpq's `~/.postgresql/root.crt`).
 * `sslcert` and `sslkey` give a client certificate, sent in every TLS attempt (a node with
 * `ssl_ca_file` checks it); unlike libpq there is no default file for them.
 *
 * Pure but for reading the certificate files: strings and buffers in, options and messages
 * out. The client library and the replication connection both build on it.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { homedir } from 'node:os';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { checkServerIdentity, createSecureContext, type PeerCertificate, type SecureContext } from 'node:tls';

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** libpq's default: TLS when the node offers it, plain otherwise, nothing verified. */
export const DEFAULT_SSL_MODE: SslMode = 'prefer';

/** `sslrootcert=system`: Node's bundled trusted roots instead of a file. */
export const SSL_ROOT_CERT_SYSTEM = 'system';

/** The file the verify modes read when no sslrootcert is given (libpq's ~/.postgresql/root.crt). */
export function defaultSslRootCert(): string {
  return join(homedir(), '.walship', 'root.crt');
}

/**
 * libpq's four TLS keywords as a connection string or the environment gives them (an empty value
 * is unset), made ClientSslOptions: each file through `file` (made absolute against whatever
 * directory the caller's relative paths mean), `sslrootcert=system` kept as the keyword it is.
 * The caller has checked sslmode (each reports a bad one in its own terms).
 */
export function clientSslOptionsOf(
  values: { readonly sslmode?: string | undefined; readonly sslrootcert?: string | undefined; readonly sslcert?: string | undefined; readonly sslkey?: string | undefined },
  file: (path: string) => string,
): ClientSslOptions {
  const options: ClientSslOptions = {};
  const set = (value: string | undefined): value is string => value !== undefined && value !== '';
  if (set(values.sslmode)) options.sslmode = values.sslmode as SslMode;
  if (set(values.sslrootcert)) options.sslrootcert = values.sslrootcert === SSL_ROOT_CERT_SYSTEM ? values.sslrootcert : file(values.sslrootcert);
  if (set(values.sslcert)) options.sslcert = file(values.sslcert);
  if (set(values.sslkey)) options.sslkey = file(values.sslkey);
  return options;
}

/** A root certificate file is read whole: a bound so that a wrong path (a disk image) is refused. */
export const MAX_SSL_ROOT_CERT_BYTES = 4 * 1024 * 1024;

/** What a connection is asked to do about TLS (the libpq connection options, same names). */
export interface ClientSslOptions {
  /** Default `prefer`. */
  sslmode?: SslMode;
  /** A PEM file of trusted CA certificates, or `system`. */
  sslrootcert?: string;
  /** A client certificate (PEM) to present, with its key in `sslkey`. */
  sslcert?: string;
  /** The client certificate's private key (PEM, unencrypted). */
  sslkey?: string;
}

/** Stable codes of the TLS failures a client reports. */
export const SslErrorCode = {
  /** sslmode needs TLS and the node has ssl = off. */
  notSupported: 'ssl_not_supported',
  /** The node has ssl = on and sslmode is disable. */
  required: 'ssl_required',
  /** The node's certificate is not signed by a CA in sslrootcert (or expired...). */
  verifyFailed: 'ssl_certificate_verify_failed',
  /** verify-full: the certificate does not name the host connected to. */
  hostMismatch: 'ssl_host_name_mismatch',
  /** sslrootcert cannot be read. */
  rootCertUnreadable: 'ssl_root_cert_unreadable',
  /** sslcert or sslkey cannot be read, or one is given without the other. */
  clientCertUnreadable: 'ssl_client_cert_unreadable',
  /** The node did not accept the client certificate (not signed by a CA in its ssl_ca_file). */
  clientCertRefused: 'ssl_client_certificate_refused',
  /** A bad sslmode value. */
  invalidMode: 'invalid_parameter_value',
} as const;

export interface SslProblem {
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

export function isSslMode(text: string): text is SslMode {
  return (SSL_MODES as readonly string[]).includes(text);
}

/** An sslmode value as libpq checks it; `where` names its source (`WALSHIP_SSLMODE`, `primary_conninfo`). */
export function parseSslMode(text: string, where: string): SslMode | SslProblem {
  if (isSslMode(text)) return text;
  return { code: SslErrorCode.invalidMode, message: `invalid sslmode value: "${text}"`, detail: `In ${where}.`, hint: `Use one of ${SSL_MODES.join(', ')}.` };
}

/** The attempts a mode makes, in order. */
export function sslAttempts(mode: SslMode): ReadonlyArray<'tls' | 'plain'> {
  switch (mode) {
    case 'disable':
      return ['plain'];
    case 'allow':
      return ['plain', 'tls'];
    case 'prefer':
      return ['tls', 'plain'];
    default:
      return ['tls'];
  }
}

/** Whether a mode checks the node's certificate against trusted roots, given an explicit sslrootcert. */
export function sslVerifiesChain(mode: SslMode, sslrootcert: string | undefined): boolean {
  return mode === 'verify-ca' || mode === 'verify-full' || (mode === 'require' && sslrootcert !== undefined && sslrootcert !== '');
}

/** The trusted roots: a file's PEM, or `system` (Node's bundled CAs). */
export type SslRootCerts = { kind: 'file'; path: string; pem: Buffer } | { kind: 'system' };

/**
 * Reads sslrootcert (or the default file) for a mode that verifies. Returns null when the mode
 * does not verify; a problem when the file cannot be read or holds no certificate.
 */
export function loadSslRootCerts(options: ClientSslOptions): SslRootCerts | null | SslProblem {
  const mode = options.sslmode ?? DEFAULT_SSL_MODE;
  if (!sslVerifiesChain(mode, options.sslrootcert)) return null;
  const given = options.sslrootcert !== undefined && options.sslrootcert !== '';
  if (given && options.sslrootcert === SSL_ROOT_CERT_SYSTEM) return { kind: 'system' };
  const path = given ? options.sslrootcert! : defaultSslRootCert();
  const hint = 'Give sslrootcert (WALSHIP_SSLROOTCERT) the CA certificate that signed the node\'s certificate (root.crt in a data directory made by walship init --tls), use sslrootcert=system for the system\'s trusted roots, or sslmode=require to encrypt without verifying the node.';
  let pem: Buffer;
  try {
    pem = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !given) {
      return { code: SslErrorCode.rootCertUnreadable, message: `root certificate file "${path}" does not exist`, detail: `sslmode ${mode} verifies the node's certificate.`, hint };
    }
    return { code: SslErrorCode.rootCertUnreadable, message: `could not read root certificate file "${path}": ${describeFileError(error)}`, hint };
  }
  if (pem.length > MAX_SSL_ROOT_CERT_BYTES || !pem.includes('-----BEGIN CERTIFICATE-----')) {
    return { code: SslErrorCode.rootCertUnreadable, message: `could not read root certificate file "${path}": no PEM certificate found`, detail: 'The file must hold one or more "-----BEGIN CERTIFICATE-----" blocks.', hint };
  }
  try {
    // Parsed here (the context kept for the connections that follow), so that a damaged file is this error.
    new X509Certificate(pem);
    secureContextFor(pem, null);
  } catch (error) {
    return { code: SslErrorCode.rootCertUnreadable, message: `could not read root certificate file "${path}": ${(error as Error).message}`, hint };
  }
  return { kind: 'file', path, pem };
}

function describeFileError(error: unknown): string {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'No such file or directory';
    case 'EACCES':
      return 'Permission denied';
    case 'EISDIR':
      return 'Is a directory';
    default:
      return (error as Error).message;
  }
}

/** A client certificate and its key, read from sslcert and sslkey. */
export interface SslClientCertificate {
  cert: Buffer;
  key: Buffer;
}

/** Reads sslcert and sslkey; null when neither is given, a problem when one is missing or unreadable. */
export function loadSslClientCertificate(options: ClientSslOptions): SslClientCertificate | null | SslProblem {
  const certPath = options.sslcert ?? '';
  const keyPath = options.sslkey ?? '';
  if (certPath === '' && keyPath === '') return null;
  const hint = 'Give both sslcert and sslkey (WALSHIP_SSLCERT, WALSHIP_SSLKEY): a PEM certificate signed by a CA in the node\'s ssl_ca_file, and its unencrypted key.';
  if (keyPath === '') return { code: SslErrorCode.clientCertUnreadable, message: `certificate present, but not private key file "${certPath}"`, detail: 'sslcert is given without sslkey.', hint };
  if (certPath === '') return { code: SslErrorCode.clientCertUnreadable, message: `private key file "${keyPath}" given without a certificate`, detail: 'sslkey is given without sslcert.', hint };
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(certPath);
  } catch (error) {
    return { code: SslErrorCode.clientCertUnreadable, message: `could not open certificate file "${certPath}": ${describeFileError(error)}`, hint };
  }
  try {
    key = readFileSync(keyPath);
  } catch (error) {
    return { code: SslErrorCode.clientCertUnreadable, message: `could not load private key file "${keyPath}": ${describeFileError(error)}`, hint };
  }
  let x509: X509Certificate;
  try {
    if (!cert.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate found');
    x509 = new X509Certificate(cert);
  } catch (error) {
    return { code: SslErrorCode.clientCertUnreadable, message: `could not read certificate file "${certPath}": ${(error as Error).message}`, hint };
  }
  try {
    if (!x509.checkPrivateKey(createPrivateKey(key))) {
      return { code: SslErrorCode.clientCertUnreadable, message: `certificate does not match private key file "${keyPath}"`, detail: `The key is not the key of "${certPath}".`, hint };
    }
  } catch (error) {
    return { code: SslErrorCode.clientCertUnreadable, message: `could not load private key file "${keyPath}": ${(error as Error).message}`, hint };
  }
  return { cert, key };
}

export function isSslProblem(value: unknown): value is SslProblem {
  return typeof value === 'object' && value !== null && 'code' in value && 'message' in value && !('kind' in value);
}

/** The options of Node's tls.connect (through ws) for a TLS attempt. */
export interface TlsClientSettings {
  rejectUnauthorized: boolean;
  /** The trusted roots, built once per root certificate file's content (see secureContextFor). */
  secureContext: SecureContext;
  /** SNI: the host name, never an IP address. */
  servername?: string;
  checkServerIdentity: (hostname: string, cert: PeerCertificate) => Error | undefined;
}

/**
 * What a TLS attempt to `host` checks for `mode`. `host` is the name the user gave (`localhost`),
 * not the address connected to: verify-full checks the certificate against it, as libpq checks
 * `host` and not `hostaddr`.
 */
export function tlsClientSettings(mode: SslMode, host: string, roots: SslRootCerts | null, clientCertificate: SslClientCertificate | null = null): TlsClientSettings {
  const verifyChain = roots !== null;
  const settings: TlsClientSettings = {
    rejectUnauthorized: verifyChain,
    secureContext: secureContextFor(roots?.kind === 'file' ? roots.pem : null, clientCertificate),
    checkServerIdentity: mode === 'verify-full' ? (_hostname, cert) => checkServerIdentity(host, cert) : () => undefined,
  };
  if (isIP(host) === 0 && host !== '') settings.servername = host;
  return settings;
}

/**
 * Runs a connection as `options.sslmode` says (libpq's fallback between kinds): loads the roots
 * and, when TLS may be tried, the client certificate (a problem with either is thrown through
 * `problemError`), then calls `attempt` once per kind in `sslAttempts` order. A failed attempt
 * is followed by one of the other kind only when it met a node of the other kind (its error's
 * code is `notSupported` or `required`) and `mayRetry` still allows it; any other error is
 * thrown as is. Shared by the client's and the standby's connections.
 */
export async function connectBySslMode<T>(
  options: ClientSslOptions & { host: string },
  problemError: (problem: SslProblem) => Error,
  attempt: (tls: TlsClientSettings | null, roots: SslRootCerts | null) => Promise<T>,
  mayRetry: () => boolean = () => true,
): Promise<T> {
  const mode = options.sslmode ?? DEFAULT_SSL_MODE;
  const roots = loadSslRootCerts(options);
  if (isSslProblem(roots)) throw problemError(roots);
  const attempts = sslAttempts(mode);
  const clientCertificate = attempts.includes('tls') ? loadSslClientCertificate(options) : null;
  if (isSslProblem(clientCertificate)) throw problemError(clientCertificate);
  for (let index = 0; ; index++) {
    const tls = attempts[index] === 'tls' ? tlsClientSettings(mode, options.host, roots, clientCertificate) : null;
    try {
      return await attempt(tls, roots);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      const otherKind = code === SslErrorCode.notSupported || code === SslErrorCode.required;
      if (!otherKind || index + 1 >= attempts.length || !mayRetry()) throw error;
    }
  }
}

/**
 * Secure contexts kept for reuse: building one (and, without `ca`, loading Node's bundled roots
 * into it) costs milliseconds, more than the rest of a loopback connection. Few distinct root
 * files ever occur in one process; past the bound the oldest is dropped.
 */
const SECURE_CONTEXTS_MAX = 16;
const secureContexts = new Map<string, SecureContext>();

function secureContextFor(ca: Buffer | null, client: SslClientCertificate | null): SecureContext {
  const key = [ca, client?.cert ?? null, client?.key ?? null].map((part) => (part === null ? '' : part.toString('latin1'))).join('\0');
  let context = secureContexts.get(key);
  if (context === undefined) {
    context = createSecureContext({
      minVersion: 'TLSv1.2',
      ...(ca === null ? {} : { ca }),
      ...(client === null ? {} : { cert: client.cert, key: client.key }),
    });
    if (secureContexts.size >= SECURE_CONTEXTS_MAX) secureContexts.delete(secureContexts.keys().next().value!);
    secureContexts.set(key, context);
  }
  return context;
}

/** The kinds of failed TLS attempt that have their own message. */
export type TlsFailure = 'server_not_tls' | 'verify_failed' | 'host_mismatch';

/** OpenSSL's verification results (X509_V_ERR_*) as Node names them. */
const VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED', 'CERT_REVOKED', 'CERT_UNTRUSTED',
  'CERT_REJECTED', 'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE', 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD', 'CERT_CHAIN_TOO_LONG', 'HOSTNAME_MISMATCH',
]);

/**
 * What a TLS attempt's error means: a node that answered the TLS hello with plain bytes (ssl =
 * off), a certificate that did not verify, one that names another host; null for anything else.
 */
export function classifyTlsError(error: unknown): TlsFailure | null {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : '';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'host_mismatch';
  if (typeof code === 'string' && VERIFY_CODES.has(code)) return 'verify_failed';
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || code === 'ERR_SSL_HTTP_REQUEST' || /wrong version number|packet length too long/i.test(message)) {
    return 'server_not_tls';
  }
  return null;
}

/** The HTTP status a TLS-only node answers a plain WebSocket upgrade with (RFC 2817's "Upgrade Required"). */
export const SSL_REQUIRED_STATUS = 426;

/** The status a node answers an upgrade with when the client's certificate did not verify, and the header saying why. */
export const CLIENT_CERTIFICATE_REFUSED_STATUS = 403;
export const CLIENT_CERTIFICATE_ERROR_HEADER = 'x-walship-client-certificate-error';

/** What the client reports for a failed attempt, in libpq's words where libpq has them. */
export function describeSslFailure(failure: TlsFailure | 'ssl_required' | 'client_certificate_refused', context: { mode: SslMode; endpoint: string; host: string; roots: SslRootCerts | null; reason?: string }): SslProblem {
  const { mode, endpoint, host, roots } = context;
  const rootsName = roots === null ? 'sslrootcert' : roots.kind === 'system' ? 'the system\'s trusted roots (sslrootcert=system)' : `sslrootcert "${roots.path}"`;
  switch (failure) {
    case 'server_not_tls':
      return {
        code: SslErrorCode.notSupported,
        message: 'server does not support SSL, but SSL was required',
        detail: `The node at ${endpoint} answered without TLS (its ssl setting is off); sslmode is "${mode}".`,
        hint: 'Turn ssl on at the node (ssl = on with ssl_cert_file and ssl_key_file; walship init --tls makes them), or connect with sslmode=disable (WALSHIP_SSLMODE=disable) on a network you trust.',
      };
    case 'ssl_required':
      return {
        code: SslErrorCode.required,
        message: 'server requires SSL, but SSL is disabled',
        detail: `The node at ${endpoint} accepts only TLS connections (ssl = on); sslmode is "${mode}".`,
        hint: 'Connect with sslmode=require, or verify-full with sslrootcert naming the CA that signed the node\'s certificate (WALSHIP_SSLMODE=verify-full WALSHIP_SSLROOTCERT=FILE).',
      };
    case 'verify_failed':
      return {
        code: SslErrorCode.verifyFailed,
        message: 'SSL error: certificate verify failed',
        detail: `The certificate of the node at ${endpoint} is not signed by a CA in ${rootsName}${context.reason === undefined ? '' : `: ${context.reason}`}.`,
        hint: 'Give sslrootcert the CA certificate that signed the node\'s certificate (the node\'s root.crt, or the cluster\'s tls/root.crt), or use sslmode=require to encrypt without verifying the node.',
      };
    case 'client_certificate_refused':
      return {
        code: SslErrorCode.clientCertRefused,
        message: 'SSL error: the node refused the client certificate',
        detail: `The node at ${endpoint} checks client certificates against its ssl_ca_file${context.reason === undefined ? '' : `: ${context.reason}`}.`,
        hint: 'Give sslcert a certificate signed by a CA in the node\'s ssl_ca_file (and its key in sslkey), or none.',
      };
    case 'host_mismatch':
      return {
        code: SslErrorCode.hostMismatch,
        message: `server certificate for ${context.reason ?? 'the node'} does not match host name "${host}"`,
        detail: `sslmode verify-full checks that the certificate of the node at ${endpoint} names the host connected to.`,
        hint: 'Connect with a host name the certificate names (walship init --tls names localhost, 127.0.0.1 and every --tls-host), or use sslmode=verify-ca to check only the CA.',
      };
  }
}

/** The names a certificate is for, as libpq's message shows them: `"localhost" (and 2 other names)`. */
export function certificateNames(cert: PeerCertificate | undefined): string | undefined {
  if (cert === undefined) return undefined;
  const names = (cert.subjectaltname ?? '').split(',').map((entry) => entry.trim().replace(/^(DNS|IP Address):/, '')).filter((name) => name !== '');
  if (names.length === 0 && typeof cert.subject?.CN === 'string') names.push(cert.subject.CN);
  if (names.length === 0) return undefined;
  const others = names.length - 1;
  return `"${names[0]}"${others === 0 ? '' : ` (and ${others} other name${others === 1 ? '' : 's'})`}`;
}

/** A failure `describeSslFailure` words, with what it says about it. */
export interface SslFailureReport {
  failure: TlsFailure | 'ssl_required' | 'client_certificate_refused';
  reason?: string;
}

/**
 * What a node's answer to a WebSocket upgrade, when it is not the upgrade, says about TLS: the
 * node requires TLS (SSL_REQUIRED_STATUS), or, on a TLS attempt, refused the client certificate
 * (CLIENT_CERTIFICATE_REFUSED_STATUS with the header saying why); null for any other answer.
 */
export function upgradeRefusalFailure(response: { statusCode?: number; headers: IncomingHttpHeaders }, tls: boolean): SslFailureReport | null {
  if (response.statusCode === SSL_REQUIRED_STATUS) return { failure: 'ssl_required' };
  const certificateError = response.headers[CLIENT_CERTIFICATE_ERROR_HEADER];
  if (tls && response.statusCode === CLIENT_CERTIFICATE_REFUSED_STATUS && certificateError !== undefined) {
    return { failure: 'client_certificate_refused', reason: String(certificateError) };
  }
  return null;
}

/** A socket error of a TLS attempt as the TLS failure it is (classifyTlsError), with its reason; null otherwise. */
export function tlsAttemptFailure(error: Error, tls: boolean): SslFailureReport | null {
  const failure = tls ? classifyTlsError(error) : null;
  if (failure === null) return null;
  return { failure, reason: failure === 'host_mismatch' ? certificateNames((error as { cert?: PeerCertificate }).cert) : error.message };
}
