/**
 * Certificates for `walship init --tls` and `cluster up` with `tls: true`: a self-signed CA and
 * node certificates signed by it, as PEM text. Node's crypto makes keys and checks certificates
 * but cannot build one, so the X.509 structure is node-forge's (pure JavaScript, no
 * dependencies); the RSA keys are Node's own (native, fast).
 *
 * What the certificates say:
 * - the CA: `CN=<name>`, basicConstraints CA (critical), keyUsage keyCertSign and cRLSign;
 * - a node: `CN=<node name>`, not a CA, keyUsage digitalSignature and keyEncipherment,
 *   extKeyUsage serverAuth and clientAuth, subjectAltName with every host name (DNS) and
 *   address (IP) clients may use (sslmode=verify-full checks them), the CA's key identifier.
 *
 * Keys are RSA 2048 (every TLS client takes them); PEM PKCS#8, unencrypted (the node has no
 * passphrase prompt), to be written with mode 0600.
 */
import { X509Certificate, createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';

/** RSA key size: what every TLS stack accepts, and quick to make. */
export const CERTIFICATE_KEY_BITS = 2048;
/** A CA outlives many node certificates. */
export const CA_VALID_DAYS = 3650;
/** A node certificate lasts long enough for a local cluster; cluster up makes a new one when it runs out. */
export const NODE_CERTIFICATE_VALID_DAYS = 825;

const DAY_MS = 86_400_000;

export interface PemPair {
  /** The certificate, PEM. */
  cert: string;
  /** Its private key, PEM PKCS#8. */
  key: string;
}

function newKeyPair(): { forgePrivate: forge.pki.rsa.PrivateKey; forgePublic: forge.pki.rsa.PublicKey; pkcs8: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: CERTIFICATE_KEY_BITS });
  const pkcs1 = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const spki = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  return {
    forgePrivate: forge.pki.privateKeyFromPem(pkcs1),
    forgePublic: forge.pki.publicKeyFromPem(spki) as forge.pki.rsa.PublicKey,
    pkcs8: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** A positive random serial number (RFC 5280: up to 20 octets, unique per CA). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

function validity(cert: forge.pki.Certificate, now: Date, days: number): void {
  // A minute back: a clock a little behind on the checking side does not refuse a new certificate.
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + days * DAY_MS);
}

/** A self-signed CA named `commonName`. */
export function makeCertificateAuthority(options: { commonName: string; validDays?: number; now?: Date }): PemPair {
  const keys = newKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.forgePublic;
  cert.serialNumber = serialNumber();
  validity(cert, options.now ?? new Date(), options.validDays ?? CA_VALID_DAYS);
  const name = [{ name: 'commonName', value: options.commonName }];
  cert.setSubject(name);
  cert.setIssuer(name);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.forgePrivate, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.pkcs8 };
}

/**
 * A node certificate for `hostNames` (DNS names and IP addresses, in any order), signed by `ca`.
 * The first name is the common name unless `commonName` is given.
 */
export function makeNodeCertificate(ca: PemPair, options: { hostNames: readonly string[]; commonName?: string; validDays?: number; now?: Date }): PemPair {
  const names = [...new Set(options.hostNames.filter((name) => name !== ''))];
  if (names.length === 0) throw new Error('a node certificate needs at least one host name');
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const caKey = forge.pki.privateKeyFromPem(createPrivateKey(ca.key).export({ type: 'pkcs1', format: 'pem' }).toString());
  const keys = newKeyPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.forgePublic;
  cert.serialNumber = serialNumber();
  validity(cert, options.now ?? new Date(), options.validDays ?? NODE_CERTIFICATE_VALID_DAYS);
  cert.setSubject([{ name: 'commonName', value: options.commonName ?? names[0]! }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
    { name: 'subjectAltName', altNames: names.map((name) => (isIP(name) !== 0 ? { type: 7, ip: name } : { type: 2, value: name })) },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.pkcs8 };
}

/**
 * Whether `pair` is a node certificate that `caCertPem` signed, that its key matches, that is
 * valid for at least `marginDays` more and that names every one of `hostNames`: cluster up keeps
 * a member's certificate when this holds, and makes a new one otherwise.
 */
export function nodeCertificateFits(pair: PemPair, caCertPem: string, hostNames: readonly string[], options: { marginDays?: number; now?: Date } = {}): boolean {
  try {
    const cert = new X509Certificate(pair.cert);
    const ca = new X509Certificate(caCertPem);
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) return false;
    if (!cert.checkPrivateKey(createPrivateKey(pair.key))) return false;
    const now = (options.now ?? new Date()).getTime();
    if (new Date(cert.validTo).getTime() < now + (options.marginDays ?? 30) * DAY_MS) return false;
    return hostNames.every((name) => (isIP(name) !== 0 ? cert.checkIP(name) !== undefined : cert.checkHost(name) !== undefined));
  } catch {
    return false;
  }
}
