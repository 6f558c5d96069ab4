/**
 * The data keys of each encrypted data directory this process opened. Whoever opens a data
 * directory (the postmaster, init, rewind, waldump) loads its keys first and registers them; the
 * storage layer (smgr, the WAL files, the WAL threads' workerData) asks here when it opens files.
 * An encrypted directory whose keys were not registered is an error, never a silent read of
 * ciphertext as WAL or a write of plaintext.
 */
import * as path from 'node:path';
import { ErrorCode, WalshipError } from '../errors.js';
import { isEncryptedDataDir, type DataKeys } from './key-file.js';
import { PageCipher } from './page-cipher.js';
import { WalCipher } from './wal-cipher.js';

const registered = new Map<string, DataKeys>();

export function registerDataKeys(dataDir: string, keys: DataKeys): void {
  registered.set(path.resolve(dataDir), keys);
}

export function unregisterDataKeys(dataDir: string): void {
  registered.delete(path.resolve(dataDir));
}

/** The data keys of `dataDir`, or null when it is not encrypted. */
export function dataKeysFor(dataDir: string): DataKeys | null {
  const keys = registered.get(path.resolve(dataDir));
  if (keys !== undefined) return keys;
  if (isEncryptedDataDir(dataDir)) {
    throw new WalshipError(ErrorCode.invalidParameter, `data directory "${dataDir}" is encrypted and its keys were not loaded`, {
      severity: 'FATAL',
      hint: 'Give the cluster key: cluster_key_file or cluster_key_command in walship.conf, or --key-file.',
    });
  }
  return null;
}

/** The WAL cipher of `dataDir`, or null when it is not encrypted. */
export function walCipherFor(dataDir: string): WalCipher | null {
  const keys = dataKeysFor(dataDir);
  return keys === null ? null : new WalCipher(keys.walKey);
}

export function pageCipherFor(dataDir: string): PageCipher | null {
  const keys = dataKeysFor(dataDir);
  return keys === null ? null : new PageCipher(keys.relationKey);
}

/** The WAL key for a WAL thread's workerData (threads do not share this registry), when encrypted. */
export function walKeyData(dataDir: string): { walKey?: Uint8Array } {
  const keys = dataKeysFor(dataDir);
  return keys === null ? {} : { walKey: new Uint8Array(keys.walKey) };
}
