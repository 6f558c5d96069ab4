/**
 * TLS for the CLI's connections, from the environment as libpq takes PGSSLMODE, PGSSLROOTCERT,
 * PGSSLCERT and PGSSLKEY: WALSHIP_SSLMODE (disable, allow, prefer — the default —, require,
 * verify-ca, verify-full), WALSHIP_SSLROOTCERT (a PEM file of trusted CAs, or `system`),
 * WALSHIP_SSLCERT and WALSHIP_SSLKEY (a client certificate and its key). Every command
 * that connects (data, admin, basebackup, rewind, slot, verify, lag, the cluster commands) passes
 * them on; `basebackup --standby` and `rewind` also write them into primary_conninfo, as
 * `pg_basebackup -R` writes the options it connected with.
 */
import { resolve } from 'node:path';
import { clientSslOptionsOf, isSslMode, SSL_MODES, type ClientSslOptions } from '@walship/protocol/ssl-mode';
import { CliError, ExitCode } from './cli-error.js';
import type { CliIo } from './io.js';

/** The sslmode and sslrootcert of WALSHIP_SSLMODE and WALSHIP_SSLROOTCERT; a bad mode is a usage error. */
export function sslOptionsFromEnv(env: NodeJS.ProcessEnv): ClientSslOptions {
  const mode = env.WALSHIP_SSLMODE;
  if (mode !== undefined && mode !== '' && !isSslMode(mode)) {
    throw new CliError(ExitCode.usage, `invalid sslmode value: "${mode}"`, { detail: 'In WALSHIP_SSLMODE.', hint: `Use one of ${SSL_MODES.join(', ')}.` });
  }
  return clientSslOptionsOf(
    { sslmode: mode, sslrootcert: env.WALSHIP_SSLROOTCERT, sslcert: env.WALSHIP_SSLCERT, sslkey: env.WALSHIP_SSLKEY },
    (file) => resolve(file),
  );
}

export function sslOptions(io: CliIo): ClientSslOptions {
  return sslOptionsFromEnv(io.env);
}

/**
 * The conninfo pairs for primary_conninfo (`sslmode=... sslrootcert=...`), only those set: a
 * standby made by a command that connected with TLS streams with it too.
 */
export function sslConninfoPairs(options: ClientSslOptions, quote: (value: string) => string): string[] {
  return [
    ...(options.sslmode === undefined ? [] : [`sslmode=${options.sslmode}`]),
    ...(options.sslrootcert === undefined ? [] : [`sslrootcert=${quote(options.sslrootcert)}`]),
    ...(options.sslcert === undefined ? [] : [`sslcert=${quote(options.sslcert)}`]),
    ...(options.sslkey === undefined ? [] : [`sslkey=${quote(options.sslkey)}`]),
  ];
}
