/**
 * The file names and settings of a node's TLS (certificate-files.ts writes the files), apart so
 * that reading them does not load the certificate builder.
 */
export const ROOT_CERT_FILE = 'root.crt';
export const ROOT_KEY_FILE = 'root.key';
export const SERVER_CERT_FILE = 'server.crt';
export const SERVER_KEY_FILE = 'server.key';

/** The settings that turn a node's TLS on with the files above. */
export const SSL_SETTINGS: ReadonlyArray<readonly [string, string]> = [
  ['ssl', 'on'],
  ['ssl_cert_file', SERVER_CERT_FILE],
  ['ssl_key_file', SERVER_KEY_FILE],
  ['ssl_ca_file', ROOT_CERT_FILE],
];

/** The names a local node's certificate always carries: what clients on this machine connect with. */
export const LOCAL_HOST_NAMES: readonly string[] = ['localhost', '127.0.0.1', '::1'];

