/**
 * The cluster key for the tools that read an encrypted data directory themselves (waldump,
 * controldata, rewind, basebackup's check, rotate-key): `--key-file FILE` when given, otherwise
 * the data directory's own cluster_key_file / cluster_key_command from walship.conf. The data
 * keys it unwraps are registered for the engine's storage layer in this process.
 */
import { resolve } from 'node:path';
import { CliError, ExitCode } from './cli-error.js';

/** Registers the data keys of `dataDir` when it is encrypted; returns whether it is. A wrong key is exit 1. */
export async function loadToolKeys(dataDir: string, keyFile?: string): Promise<boolean> {
  // The engine's leaf modules, not its index: a tool on a plain data directory (basebackup's
  // last check) needs only the test, not the database code.
  const [keyFiles, registry] = await Promise.all([import('@walship/engine/crypto/key-file'), import('@walship/engine/crypto/registry')]);
  if (!keyFiles.isEncryptedDataDir(dataDir)) return false;
  const [settings, encryption] = await Promise.all([import('@walship/server/settings/index'), import('@walship/server/encryption')]);
  try {
    if (keyFile !== undefined) registry.registerDataKeys(dataDir, keyFiles.loadDataKeys(dataDir, { keyFile: resolve(keyFile) }));
    else encryption.loadEncryptionKeys(dataDir, settings.readConfigFile(dataDir));
  } catch (error) {
    const { message, detail, hint } = error as { message: string; detail?: string; hint?: string };
    throw new CliError(ExitCode.failed, message, { detail, hint });
  }
  return true;
}
