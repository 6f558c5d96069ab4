/**
 * The node's SSL files (be-secure-openssl.c's be_tls_init, be-secure-common.c's
 * check_ssl_key_file_permissions): the certificate, its private key and, when set, the CA file,
 * read and checked before the port is opened (a node with ssl = on and a bad file refuses to
 * start, naming the file) and again at each reload (a bad file then keeps the files in use).
 *
 * Checks, in PostgreSQL's words where it has them:
 * - each file exists, is a regular file and can be read (`could not load server certificate file
 *   "server.crt": No such file or directory`);
 * - the certificate and the CA file hold PEM certificates; the key is a PEM private key, not
 *   encrypted (there is no ssl_passphrase_command);
 * - the key file is not readable by group or others (`private key file "server.key" has group or
 *   world access`);
 * - the key is the certificate's (`check of private key failed: key values mismatch`).
 * An expired or not-yet-valid certificate is a warning, as OpenSSL lets PostgreSQL start with one.
 *
 * Relative paths are in the data directory (PostgreSQL's working directory).
 */
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ErrorCode, WalshipError } from '@walship/engine';

/** A certificate, key or CA file is read whole; nothing real comes near this (a wrong path might). */
export const MAX_SSL_FILE_BYTES = 4 * 1024 * 1024;

export interface SslFileSettings {
  certFile: string;
  keyFile: string;
  /** '' when unset. */
  caFile: string;
}

export interface SslFiles {
  certPath: string;
  keyPath: string;
  caPath: string | null;
  cert: Buffer;
  key: Buffer;
  ca: Buffer | null;
  /** The certificate's subject and validity, for the log line at start. */
  subject: string;
  validTo: string;
  /** Things to log as WARNING (an expired certificate). */
  warnings: string[];
}

const PEM_CERTIFICATE = '-----BEGIN CERTIFICATE-----';

/** Reads and checks the SSL files; throws a FATAL WalshipError naming the file. */
export function loadSslFiles(dataDir: string, settings: SslFileSettings, now: Date = new Date()): SslFiles {
  const certPath = resolve(dataDir, settings.certFile);
  const keyPath = resolve(dataDir, settings.keyFile);
  const caPath = settings.caFile === '' ? null : resolve(dataDir, settings.caFile);
  if (settings.certFile === '') throw sslConfigError('ssl is on but ssl_cert_file is empty', undefined, 'Set ssl_cert_file to the node\'s certificate, or turn ssl off.');
  if (settings.keyFile === '') throw sslConfigError('ssl is on but ssl_key_file is empty', undefined, 'Set ssl_key_file to the node\'s private key, or turn ssl off.');

  const cert = readSslFile(certPath, settings.certFile, 'server certificate file');
  let x509: X509Certificate;
  try {
    if (!cert.includes(PEM_CERTIFICATE)) throw new Error('no PEM certificate found');
    x509 = new X509Certificate(cert);
  } catch (error) {
    throw sslConfigError(`could not load server certificate file "${settings.certFile}": ${(error as Error).message}`, `The file is "${certPath}".`, 'ssl_cert_file must name a PEM certificate ("-----BEGIN CERTIFICATE-----").');
  }

  checkKeyFilePermissions(keyPath, settings.keyFile);
  const key = readSslFile(keyPath, settings.keyFile, 'private key file');
  let privateKey: KeyObject;
  try {
    if (key.includes('ENCRYPTED')) throw new Error('the key is encrypted with a passphrase, which walship cannot ask for');
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw sslConfigError(`could not load private key file "${settings.keyFile}": ${(error as Error).message}`, `The file is "${keyPath}".`, 'ssl_key_file must name an unencrypted PEM private key.');
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw sslConfigError('check of private key failed: key values mismatch', `The private key in "${keyPath}" is not the key of the certificate in "${certPath}".`, 'Give ssl_key_file the key made with the certificate, or make both again (walship init --tls makes a pair).');
  }

  let ca: Buffer | null = null;
  if (caPath !== null) {
    ca = readSslFile(caPath, settings.caFile, 'root certificate file');
    try {
      if (!ca.includes(PEM_CERTIFICATE)) throw new Error('no PEM certificate found');
      new X509Certificate(ca);
    } catch (error) {
      throw sslConfigError(`could not load root certificate file "${settings.caFile}": ${(error as Error).message}`, `The file is "${caPath}".`, 'ssl_ca_file must name PEM CA certificates, or be empty.');
    }
  }

  const warnings: string[] = [];
  if (new Date(x509.validTo) < now) warnings.push(`server certificate "${settings.certFile}" expired on ${x509.validTo}: clients that verify it (sslmode verify-ca, verify-full) will refuse it`);
  if (new Date(x509.validFrom) > now) warnings.push(`server certificate "${settings.certFile}" is not valid before ${x509.validFrom}: clients that verify it will refuse it until then`);
  return { certPath, keyPath, caPath, cert, key, ca, subject: x509.subject.replace(/\n/g, ', '), validTo: x509.validTo, warnings };
}

function readSslFile(path: string, name: string, what: string): Buffer {
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw Object.assign(new Error('not a regular file'), { code: 'ENOTREG' });
    if (stat.size > MAX_SSL_FILE_BYTES) throw Object.assign(new Error(`file too large (${stat.size} bytes; the limit is ${MAX_SSL_FILE_BYTES})`), { code: 'EFBIG' });
    return readFileSync(path);
  } catch (error) {
    throw sslConfigError(`could not load ${what} "${name}": ${describeFileError(error)}`, `The file is "${path}".`, hintFor(what));
  }
}

function hintFor(what: string): string {
  const setting = what === 'private key file' ? 'ssl_key_file' : what === 'root certificate file' ? 'ssl_ca_file' : 'ssl_cert_file';
  return `Check ${setting} (relative paths are in the data directory), or make the files with walship init --tls; or turn ssl off.`;
}

/** PostgreSQL refuses a key file that group or others can read (when owned by the server's user). */
function checkKeyFilePermissions(path: string, name: string): void {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    return; // readSslFile reports it.
  }
  if (!stat.isFile()) return;
  const ownedByUs = typeof process.getuid !== 'function' || stat.uid === process.getuid();
  if (ownedByUs && (stat.mode & 0o077) !== 0) {
    throw sslConfigError(`private key file "${name}" has group or world access`, 'File must have permissions u=rw (0600) or less if owned by the database user.', `Run "chmod 600 ${path}".`);
  }
}

function describeFileError(error: unknown): string {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'No such file or directory';
    case 'EACCES':
      return 'Permission denied';
    default:
      return (error as Error).message;
  }
}

function sslConfigError(message: string, detail: string | undefined, hint: string): WalshipError {
  return new WalshipError(ErrorCode.invalidParameter, message, { severity: 'FATAL', ...(detail === undefined ? {} : { detail }), hint });
}
