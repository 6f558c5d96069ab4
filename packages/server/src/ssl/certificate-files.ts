/**
 * The files of `walship init --tls` and of a cluster with `tls: true`, on disk:
 *
 *   CA directory (init --tls-ca DIR, or a cluster's DATA_ROOT/tls):
 *     root.crt   the CA's certificate
 *     root.key   the CA's private key (0600): it signs node certificates and never leaves here
 *   data directory:
 *     server.crt the node's certificate, signed by the CA   (ssl_cert_file)
 *     server.key its private key (0600)                      (ssl_key_file)
 *     root.crt   the CA's certificate: what clients and standbys verify the node with
 *                (sslrootcert), and what client certificates are checked against (ssl_ca_file)
 *
 * PostgreSQL's file names. The CA's key is never written into a data directory, so a base
 * backup (which copies a data directory) never spreads it. Every file is written durably
 * (temporary file, fsync, rename, fsync of the directory) with mode 0600.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileDurably } from '../settings/index.js';
import { makeCertificateAuthority, makeNodeCertificate, nodeCertificateFits, type PemPair } from './make-certificates.js';
import { ROOT_CERT_FILE, ROOT_KEY_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE } from './ssl-settings.js';

export { LOCAL_HOST_NAMES, ROOT_CERT_FILE, ROOT_KEY_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE, SSL_SETTINGS } from './ssl-settings.js';

/** The CA in `dir` (root.crt, root.key), made there first when absent. */
export function ensureCertificateAuthority(dir: string, commonName: string): { ca: PemPair; created: boolean } {
  const certPath = join(dir, ROOT_CERT_FILE);
  const keyPath = join(dir, ROOT_KEY_FILE);
  if (existsSync(certPath) && existsSync(keyPath)) {
    return { ca: { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') }, created: false };
  }
  if (existsSync(certPath) || existsSync(keyPath)) {
    throw new Error(`"${dir}" holds only one of ${ROOT_CERT_FILE} and ${ROOT_KEY_FILE}: a CA needs both (remove the other to make a new CA)`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca = makeCertificateAuthority({ commonName });
  // The key first: a directory with root.crt alone is never left by a crash in between.
  writeFileDurably(keyPath, ca.key);
  writeFileDurably(certPath, ca.cert);
  return { ca, created: true };
}

/**
 * Writes a node certificate for `hostNames` signed by `ca`, its key and the CA's certificate
 * into `dataDir`. With `keepIfFits`, a certificate already there that the CA signed, that names
 * every host and has more than 30 days left is kept (cluster up runs this at every start).
 * Returns whether new files were written.
 */
export function writeNodeCertificateFiles(dataDir: string, ca: PemPair, options: { hostNames: readonly string[]; commonName?: string; keepIfFits?: boolean }): boolean {
  const certPath = join(dataDir, SERVER_CERT_FILE);
  const keyPath = join(dataDir, SERVER_KEY_FILE);
  const rootPath = join(dataDir, ROOT_CERT_FILE);
  if (options.keepIfFits === true && existsSync(certPath) && existsSync(keyPath) && existsSync(rootPath) && readFileSync(rootPath, 'utf8') === ca.cert) {
    const current = { cert: readFileSync(certPath, 'utf8'), key: readFileSync(keyPath, 'utf8') };
    if (nodeCertificateFits(current, ca.cert, options.hostNames)) return false;
  }
  const pair = makeNodeCertificate(ca, { hostNames: options.hostNames, ...(options.commonName === undefined ? {} : { commonName: options.commonName }) });
  writeFileDurably(keyPath, pair.key);
  writeFileDurably(certPath, pair.cert);
  writeFileDurably(rootPath, ca.cert);
  return true;
}
