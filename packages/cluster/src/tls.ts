/**
 * TLS for a cluster with `tls: true`: one CA for the cluster, in DATA_ROOT/tls (root.crt, and
 * root.key, which never leaves there), and for each member a certificate signed by it, for
 * localhost, 127.0.0.1, ::1, the config's host and the member's name (the names the toolkit, the
 * monitor, the standbys and a person on this machine connect with; the partition proxy is a TCP
 * proxy, so the TLS session and its certificate are the member's behind it). Each member's data
 * directory holds its server.crt, server.key and the CA's root.crt (`ssl/certificate-files.ts`).
 *
 * Who connects how: members stream from each other with `sslmode=verify-full
 * sslrootcert=root.crt` in primary_conninfo (relative: the member's own copy of the CA); the
 * cluster commands, the monitor and the drills connect with verify-full against
 * DATA_ROOT/tls/root.crt (`clusterClientSsl`).
 */
import { join } from 'node:path';
import type { ClientSslOptions } from '@walship/protocol/ssl-mode';
import { LOCAL_HOST_NAMES, ROOT_CERT_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE, SSL_SETTINGS } from '@walship/server/ssl/ssl-settings';
import type { ClusterConfig, MemberConfig } from './config.js';

/** The cluster CA's directory, in the data root. */
export function clusterCaDir(config: ClusterConfig): string {
  return join(config.dataRoot, 'tls');
}

/** The names a member's certificate carries. */
export function memberHostNames(config: ClusterConfig, member: MemberConfig): string[] {
  return [...new Set([...LOCAL_HOST_NAMES, config.host, member.name])];
}

/** The settings a member gets for TLS (none without `tls: true`). */
export function memberSslSettings(config: ClusterConfig): Array<[string, string]> {
  return config.tls ? SSL_SETTINGS.map(([name, value]): [string, string] => [name, value]) : [];
}

/**
 * primary_conninfo's TLS pairs: verify-full against the member's own copy of the CA, and the
 * member's certificate as its client certificate (the upstream checks it against its ssl_ca_file,
 * the same CA: both ends of a stream are members).
 */
export function conninfoSslPairs(config: ClusterConfig): string[] {
  return config.tls ? ['sslmode=verify-full', `sslrootcert=${ROOT_CERT_FILE}`, `sslcert=${SERVER_CERT_FILE}`, `sslkey=${SERVER_KEY_FILE}`] : [];
}

/** How the cluster's own clients connect to members: verify-full against the cluster CA; nothing without TLS. */
export function clusterClientSsl(config: ClusterConfig): ClientSslOptions {
  return config.tls ? { sslmode: 'verify-full', sslrootcert: join(clusterCaDir(config), ROOT_CERT_FILE) } : {};
}

/**
 * Makes sure a member's data directory holds a certificate from the cluster CA for its names
 * (the CA is made first when the data root has none): kept when it still fits, written anew
 * otherwise (a base backup brought the source's). Returns whether it wrote one.
 */
export async function ensureMemberCertificate(config: ClusterConfig, member: MemberConfig): Promise<boolean> {
  if (!config.tls) return false;
  // Loaded only for TLS clusters: the certificate builder is not small.
  const { ensureCertificateAuthority, writeNodeCertificateFiles } = await import('@walship/server/ssl/certificate-files');
  const { ca } = ensureCertificateAuthority(clusterCaDir(config), `walship cluster ${config.name} CA`);
  return writeNodeCertificateFiles(member.dataDir, ca, { hostNames: memberHostNames(config, member), commonName: member.name, keepIfFits: true });
}
