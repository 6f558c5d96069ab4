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
  const [engine, settings, encryption] = await Promise.all([
    import('@walship/engine'), import('@walship/server/settings/index'), import('@walship/server/encryption'),
  ]);
  if (!engine.isEncryptedDataDir(dataDir)) return false;
  try {
    if (keyFile !== undefined) engine.registerDataKeys(dataDir, engine.loadDataKeys(dataDir, { keyFile: resolve(keyFile) }));
    else encryption.loadEncryptionKeys(dataDir, settings.readConfigFile(dataDir));
  } catch (error) {
    const { message, detail, hint } = error as { message: string; detail?: string; hint?: string };
    throw new CliError(ExitCode.failed, message, { detail, hint });
  }
  return true;
}
