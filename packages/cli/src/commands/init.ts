/**
 * `walship init -D DIR [--port N] [--set NAME=VALUE]... [--auth scram-sha-256 [-U NAME]]
 * [--tls [--tls-host NAME]... [--tls-ca DIR]]` (initdb): checks the settings, creates the data
 * directory through the engine (control file, first WAL segment, catalog) and writes walship.conf
 * with the port and the given settings. Like initdb, it refuses a directory that is not empty,
 * removes what it created when it fails, and warns that loopback connections are trusted until a
 * password is set. With `--auth scram-sha-256` (initdb -A scram-sha-256 --pwprompt) it sets
 * auth_method and creates the superuser (every right) in walship_authid.json, its password from
 * WALSHIP_PASSWORD or typed twice on a terminal, asked for before anything is created.
 *
 * `--tls` makes a CA and a node certificate for localhost, 127.0.0.1, ::1 and each --tls-host
 * (server.crt, server.key and the CA's root.crt in the data directory: `ssl/certificate-files.ts`)
 * and sets ssl = on with the file settings. The CA's key is kept only in `--tls-ca DIR` (made
 * there when absent, used when present: nodes initialized with the same DIR trust each other);
 * without it, it is thrown away once the node's certificate is signed.
 */
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { LOCAL_HOST_NAMES, ROOT_CERT_FILE, SSL_SETTINGS } from '@walship/server/ssl/ssl-settings';
import {
  formatSettingValue,
  lookupSetting,
  parseSettingValue,
  writeConfigFile,
  type SettingName,
} from '@walship/server/settings/index';
import { buildScramVerifier, DEFAULT_USER, formatScramVerifier, SCRAM_DEFAULT_ITERATIONS } from '@walship/protocol';
import { RIGHTS } from '@walship/server/auth/rights';
import { emptyUsersFile, userNameProblem, USERS_FILE_NAME, writeUsersFile } from '@walship/server/auth/users-file';
import { bootstrapDataDirectory } from '../adapters.js';
import { readNewPassword } from '../credentials.js';
import { CliError, ExitCode, formatErrorText, usageError } from '../cli-error.js';
import type { CliIo } from '../io.js';
import { DEFAULT_PORT } from '../options.js';

export interface InitOptions {
  dataDir: string;
  port?: number;
  set: Array<[string, string]>;
  auth?: 'scram-sha-256' | 'trust';
  username?: string;
  tls?: boolean;
  tlsHost?: string[];
  tlsCa?: string;
  encrypt?: boolean;
  keyFile?: string;
  keyCommand?: string;
}

/** Quotes a path for a shell command line shown to the user, when it needs quoting. */
export function shellQuote(text: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** The settings for walship.conf, checked: usage errors (exit 2) for unknown names and bad values. */
function checkSettings(options: InitOptions): Map<SettingName, string> {
  const entries = new Map<SettingName, string>();
  // --tls's settings first: a --set of the same name overrides them.
  const tlsSettings = options.tls === true ? SSL_SETTINGS.map(([name, value]): [string, string] => [name, value]) : [];
  for (const [rawName, text] of [...tlsSettings, ...options.set]) {
    try {
      const name = lookupSetting(rawName);
      entries.set(name, formatSettingValue(name, parseSettingValue(name, text)));
    } catch (error) {
      const { message, detail, hint } = error as { message: string; detail?: string; hint?: string };
      throw new CliError(ExitCode.usage, `--set ${rawName}=${text}: ${message}`, { detail, hint });
    }
  }
  const portFromSet = entries.get('port');
  if (options.port !== undefined && portFromSet !== undefined && portFromSet !== String(options.port)) {
    throw usageError(`the port is given twice: --port ${options.port} and --set port=${portFromSet}`, 'Give the port once.');
  }
  const port = options.port === undefined ? (portFromSet ?? String(DEFAULT_PORT)) : String(options.port);
  // The port first: it is the line an operator looks for.
  return new Map<SettingName, string>([['port', port], ...[...entries].filter(([name]) => name !== 'port')]);
}

function checkDirectory(dataDir: string): 'missing' | 'empty' {
  if (!existsSync(dataDir)) return 'missing';
  if (!statSync(dataDir).isDirectory()) {
    throw new CliError(ExitCode.failed, `"${dataDir}" exists but is not a directory`, {
      hint: 'Choose another path for the data directory.',
    });
  }
  if (readdirSync(dataDir).length > 0) {
    throw new CliError(ExitCode.failed, `directory "${dataDir}" exists but is not empty`, {
      hint: `If you want to create a new data directory, either remove or empty the directory "${dataDir}" or run walship init with an argument other than "${dataDir}".`,
    });
  }
  return 'empty';
}

/** After a failure, leave the directory as it was found (initdb's "removing data directory"). */
function removeWhatWasCreated(dataDir: string, found: 'missing' | 'empty', io: CliIo): void {
  try {
    if (found === 'missing') {
      io.stderr.write(`walship: removing data directory "${dataDir}"\n`);
      rmSync(dataDir, { recursive: true, force: true });
    } else if (existsSync(dataDir)) {
      io.stderr.write(`walship: removing contents of data directory "${dataDir}"\n`);
      for (const entry of readdirSync(dataDir)) rmSync(join(dataDir, entry), { recursive: true, force: true });
    }
  } catch (error) {
    io.stderr.write(formatErrorText(`failed to remove data directory "${dataDir}": ${(error as Error).message}`, undefined, 'Remove it by hand before trying again.'));
  }
}

/** auth_method from --auth and --set auth_method=..., which must agree. */
function authMethodOf(options: InitOptions, settings: Map<SettingName, string>): 'scram-sha-256' | 'trust' {
  const fromSet = settings.get('auth_method') as 'scram-sha-256' | 'trust' | undefined;
  if (options.auth !== undefined && fromSet !== undefined && fromSet !== options.auth) {
    throw usageError(`the authentication method is given twice: --auth ${options.auth} and --set auth_method=${fromSet}`, 'Give it once.');
  }
  const method = options.auth ?? fromSet ?? 'trust';
  if (method === 'scram-sha-256') settings.set('auth_method', method);
  if (options.username !== undefined && method !== 'scram-sha-256') throw usageError('--username needs --auth scram-sha-256', 'Without SCRAM there are no users to create.');
  return method;
}

/** The CA (from --tls-ca, or one made for this node alone) and the node's certificate; returns what to tell the user. */
async function makeCertificates(options: InitOptions): Promise<string> {
  // Loaded only for --tls: the certificate builder is not small.
  const [{ makeCertificateAuthority }, { ensureCertificateAuthority, writeNodeCertificateFiles }] = await Promise.all([
    import('@walship/server/ssl/make-certificates'), import('@walship/server/ssl/certificate-files'),
  ]);
  const hostNames = [...LOCAL_HOST_NAMES, ...(options.tlsHost ?? [])];
  const dataDir = resolve(options.dataDir);
  let ca;
  let caWhere: string;
  if (options.tlsCa !== undefined) {
    const dir = resolve(options.tlsCa);
    const found = ensureCertificateAuthority(dir, `walship CA ${basename(dir)}`);
    ca = found.ca;
    caWhere = `${found.created ? 'a new CA' : 'the CA'} in ${dir} (its key stays there)`;
  } else {
    ca = makeCertificateAuthority({ commonName: `walship CA for ${basename(dataDir)}` });
    caWhere = 'a CA made for this node alone (its key was not kept: give --tls-ca DIR to keep one for several nodes)';
  }
  writeNodeCertificateFiles(dataDir, ca, { hostNames });
  const rootCert = join(dataDir, ROOT_CERT_FILE);
  return `\nSSL is on: the node's certificate names ${hostNames.join(', ')}, signed by ${caWhere}.\n` +
    `Clients verify it with:\n\n    WALSHIP_SSLMODE=verify-full WALSHIP_SSLROOTCERT=${shellQuote(rootCert)}\n`;
}

/**
 * --encrypt: the cluster key, read now (a bad key file fails before anything is created), and the
 * setting that names it in walship.conf (a key file by its absolute path).
 */
async function checkEncryption(options: InitOptions, settings: Map<SettingName, string>): Promise<Buffer | undefined> {
  const given = (options.keyFile !== undefined ? 1 : 0) + (options.keyCommand !== undefined ? 1 : 0);
  if (options.encrypt !== true) {
    if (given > 0) throw usageError('--key-file and --key-command are for an encrypted data directory', 'Add --encrypt.');
    if (settings.has('cluster_key_file') || settings.has('cluster_key_command')) {
      throw usageError('cluster_key_file and cluster_key_command are set by --encrypt', 'Use walship init --encrypt --key-file FILE (or --key-command CMD).');
    }
    return undefined;
  }
  if (given !== 1) throw usageError('--encrypt needs the cluster key: give --key-file FILE or --key-command CMD (one of them)', 'Make a key with "openssl rand -hex 32 > FILE".');
  const { loadClusterKey } = await import('@walship/engine/crypto/index');
  const source = options.keyFile !== undefined ? { keyFile: resolve(options.keyFile) } : { keyCommand: options.keyCommand! };
  let key: Buffer;
  try {
    key = loadClusterKey(resolve(options.dataDir), source);
  } catch (error) {
    const { message, detail, hint } = error as { message: string; detail?: string; hint?: string };
    throw new CliError(ExitCode.failed, message, { detail, hint });
  }
  if (source.keyFile !== undefined) settings.set('cluster_key_file', source.keyFile);
  else settings.set('cluster_key_command', source.keyCommand!);
  return key;
}

export async function run(options: InitOptions, io: CliIo): Promise<number> {
  if (options.tls !== true && ((options.tlsHost ?? []).length > 0 || options.tlsCa !== undefined)) {
    throw usageError('--tls-host and --tls-ca go with --tls', 'Add --tls to make the node\'s certificate.');
  }
  const settings = checkSettings(options);
  const method = authMethodOf(options, settings);
  const superuser = options.username ?? DEFAULT_USER;
  const nameProblem = userNameProblem(superuser);
  if (nameProblem !== null) throw usageError(`invalid user name "${superuser}": ${nameProblem}`);
  const clusterKey = await checkEncryption(options, settings);
  const walSegmentSize = parseSettingValue('wal_segment_size', settings.get('wal_segment_size') ?? '16MB');
  const checksums = parseSettingValue('data_checksums', settings.get('data_checksums') ?? 'on');
  const found = checkDirectory(options.dataDir);
  // Asked for before anything is created, so that a refusal leaves nothing behind.
  const password = method === 'scram-sha-256' ? await readNewPassword(io, `new superuser "${superuser}"`) : null;

  const out = (text: string) => io.stdout.write(text);
  out(`The files belonging to this database system will be owned by user "${userInfo().username}".\n`);
  out('This user must also own the server process.\n\n');
  out(`Data page checksums are ${checksums ? 'enabled' : 'disabled'}.\n`);
  if (clusterKey !== undefined) out('WAL and data pages are encrypted at rest (AES-256; data keys wrapped by the cluster key).\n');
  out(`The WAL segment size is ${formatSettingValue('wal_segment_size', walSegmentSize)}.\n\n`);
  let systemId: string;
  let tlsNote: string | null = null;
  try {
    out(
      found === 'missing'
        ? `creating data directory ${options.dataDir}: control file, first WAL segment, catalog ... `
        : `filling existing directory ${options.dataDir}: control file, first WAL segment, catalog ... `,
    );
    ({ systemId } = await bootstrapDataDirectory(options.dataDir, { walSegmentSize, ...(clusterKey !== undefined ? { clusterKey } : {}) }));
    out('ok\nwriting configuration file walship.conf ... ');
    writeConfigFile(options.dataDir, [...settings]);
    out('ok\n');
    if (password !== null) {
      out(`creating superuser "${superuser}" in ${USERS_FILE_NAME} (SCRAM-SHA-256 verifier) ... `);
      const users = emptyUsersFile();
      const iterations = parseSettingValue('scram_iterations', settings.get('scram_iterations') ?? String(SCRAM_DEFAULT_ITERATIONS));
      users.users.set(superuser, { rights: [...RIGHTS], verifier: formatScramVerifier(buildScramVerifier(password, { iterations })) });
      writeUsersFile(options.dataDir, users);
      out('ok\n');
    }
    if (options.tls === true) {
      out('creating SSL certificates server.crt, server.key and root.crt ... ');
      tlsNote = await makeCertificates(options);
      out('ok\n');
    }
  } catch (error) {
    out('failed\n');
    removeWhatWasCreated(options.dataDir, found, io);
    throw error;
  }

  out(`\nThe database system identifier is ${systemId}.\n`);
  if (tlsNote !== null) out(tlsNote);
  const hasPassword = (settings.get('password') ?? '') !== '';
  if (method === 'scram-sha-256') {
    out(`\nEvery connection authenticates with SCRAM-SHA-256; add users with "walship user add -D ${shellQuote(options.dataDir)} NAME".\n`);
  } else if (!hasPassword) {
    io.stderr.write(
      'initdb: warning: enabling "trust" authentication for local connections\n' +
        `initdb: hint: Connections from this machine need no password until you set one: use --auth the next time you run walship init, or set a password with "walship set -D ${shellQuote(options.dataDir)} password ..." (and replication_password for standbys).\n`,
    );
  }
  out('\nSuccess. You can now start the node using:\n\n');
  out(`    walship start -D ${shellQuote(options.dataDir)}\n\n`);
  return ExitCode.ok;
}
