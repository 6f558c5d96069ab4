/**
 * `walship rotate-key -D DIR (--new-key-file FILE | --new-key-command CMD) [--key-file OLD] [--json]`
 * (pg_alterckey): wraps the data keys of an encrypted data directory under a new cluster key and
 * points walship.conf's cluster_key_file / cluster_key_command at it. No page or WAL byte is
 * rewritten: the data keys stay the same; only who can unwrap them changes.
 *
 * The node may be stopped or running. A running node keeps the data keys it unwrapped at start
 * and reads the new setting at its next start (the settings have context postmaster). Each node
 * of a cluster wraps the shared data keys with its own cluster key: rotate on every node.
 */
import { resolve } from 'node:path';
import { CliError, ExitCode, usageError } from '../cli-error.js';
import type { CliIo } from '../io.js';
import { printJson } from '../output.js';

export interface RotateKeyOptions {
  dataDir: string;
  newKeyFile?: string;
  newKeyCommand?: string;
  /** The current cluster key (default: walship.conf's setting). */
  keyFile?: string;
  json?: boolean;
}

function failed(error: unknown): CliError {
  const { message, detail, hint } = error as { message: string; detail?: string; hint?: string };
  return new CliError(ExitCode.failed, message, { detail, hint });
}

export async function run(options: RotateKeyOptions, io: CliIo): Promise<number> {
  const dataDir = resolve(options.dataDir);
  if ((options.newKeyFile === undefined) === (options.newKeyCommand === undefined)) {
    throw usageError('rotate-key needs the new cluster key: give --new-key-file FILE or --new-key-command CMD (one of them)', 'Make a key with "openssl rand -hex 32 > FILE".');
  }
  const [crypto, settings, encryption] = await Promise.all([
    import('@walship/engine/crypto/index'), import('@walship/server/settings/index'), import('@walship/server/encryption'),
  ]);
  if (!crypto.isEncryptedDataDir(dataDir)) {
    throw new CliError(ExitCode.failed, `data directory "${dataDir}" is not encrypted`, {
      detail: `There is no "${crypto.KEY_FILE}" in it.`,
      hint: 'Encryption is chosen when the data directory is created: walship init --encrypt.',
    });
  }
  const newSource = options.newKeyFile !== undefined ? { keyFile: resolve(options.newKeyFile) } : { keyCommand: options.newKeyCommand! };
  let oldKey: Buffer;
  let newKey: Buffer;
  try {
    const oldSource = options.keyFile !== undefined ? { keyFile: resolve(options.keyFile) } : encryption.clusterKeySource(settings.readConfigFile(dataDir));
    oldKey = crypto.loadClusterKey(dataDir, oldSource);
    newKey = crypto.loadClusterKey(dataDir, newSource);
    crypto.rotateClusterKey(dataDir, oldKey, newKey, () => {
      settings.resetConfigValue(dataDir, newSource.keyFile !== undefined ? 'cluster_key_command' : 'cluster_key_file');
      settings.setConfigValues(dataDir, [newSource.keyFile !== undefined ? ['cluster_key_file', newSource.keyFile] : ['cluster_key_command', newSource.keyCommand!]]);
    });
  } catch (error) {
    throw failed(error);
  }
  const setting = newSource.keyFile !== undefined ? { cluster_key_file: newSource.keyFile } : { cluster_key_command: newSource.keyCommand! };
  if (options.json === true) {
    printJson(io.stdout, { dataDir, rotated: true, keyFile: crypto.KEY_FILE, setting });
  } else {
    io.stdout.write(`data keys of "${dataDir}" wrapped with the new cluster key; walship.conf: ${Object.entries(setting)[0]!.join(' = ')}\n`);
    io.stdout.write('The old cluster key no longer opens this data directory. A running node uses the new key from its next start.\n');
  }
  return ExitCode.ok;
}
